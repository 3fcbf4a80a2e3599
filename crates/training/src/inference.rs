//! Using a trained model: translating volumes and scoring test splits.
use crate::checkpoint::{resolve_checkpoint, CheckpointState, ModelInfo};
use crate::config::TrainConfig;
use crate::device::device_from_name;
use crate::nets::load_weights;
use crate::tensors::generate;
use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::Device;
use medtrans_datasets::SliceDataset;
use medtrans_io::{Slice, Volume};
use medtrans_metrics::{nmae, psnr, ssim};
use medtrans_networks::Generator;
use medtrans_transforms::{Interp, SquareFit};
use std::path::{Path, PathBuf};

/// A trained translator G, ready for inference.
pub struct Model {
    pub g: Generator,
    pub info: ModelInfo,
    pub config: TrainConfig,
    pub checkpoint: PathBuf,
    pub step: usize,
    device: Device,
}

impl Model {
    /// Load G from a run folder (best checkpoint, else last) or a
    /// checkpoint folder.
    pub fn load(path: &Path, device: &str) -> Result<Self> {
        let ckpt = resolve_checkpoint(path)?;
        let state = CheckpointState::load(&ckpt)?;
        let device = device_from_name(device)?;
        let mut g = state.config.generator.init(state.model.size, &device);
        load_weights(&mut g, &ckpt.join("G.safetensors"))?;
        Ok(Self {
            g: g.valid(),
            info: state.model,
            config: state.config,
            checkpoint: ckpt,
            step: state.step,
            device,
        })
    }

    /// G(x) for model-sized slices in [-1, 1], `batch` at a time.
    pub fn translate_slices(&self, xs: &[&Slice], batch: usize) -> Result<Vec<Slice>> {
        let s = self.info.size;
        if let Some(bad) = xs.iter().find(|x| x.width != s || x.height != s) {
            bail!(
                "a {}x{} slice was given to a model for {s}x{s}",
                bad.width,
                bad.height
            );
        }
        generate(&self.g, xs, batch, &self.device)
    }

    /// Translate a whole volume slice by slice along the training axis.
    /// The result has the input's grid, in the target contrast's units.
    /// `mask` (same grid) restricts the translation as in training.
    pub fn translate_volume(
        &self,
        vol: &Volume,
        mask: Option<&Volume>,
        batch: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<f32>> {
        let (Some(axis), Some(norm), Some(target)) = (
            self.info.axis,
            self.info.normalization_a.as_ref(),
            self.info.target_map,
        ) else {
            bail!("{}: this model was trained on slices without intensity calibration (no `medtrans prepare` manifest), so volumes cannot be mapped to and from its range", self.checkpoint.display());
        };
        if let Some(m) = mask {
            if m.shape() != vol.shape() {
                bail!(
                    "{}: mask shape {:?} differs from the volume's {:?}",
                    m.source.display(),
                    m.shape(),
                    vol.shape()
                );
            }
        }
        let inside: Option<Vec<bool>> = mask.map(|m| m.data.iter().map(|&v| v > 0.5).collect());
        let map_a = norm
            .fit(&vol.data, inside.as_deref())
            .map_err(|e| anyhow::anyhow!("{}: {e}", vol.source.display()))?;
        let mut src = vol.clone();
        map_a.apply(&mut src.data);
        let background = target.inverse(-1.0);
        let mut out = vol.clone();
        out.data.iter_mut().for_each(|v| *v = background);
        let mut mvol = mask.cloned();
        if let (Some(inside), Some(m)) = (&inside, &mut mvol) {
            for (v, &k) in src.data.iter_mut().zip(inside) {
                if !k {
                    *v = -1.0;
                }
            }
            m.data = inside.iter().map(|&k| k as u8 as f32).collect();
        }
        let depth = vol.shape()[axis];
        let first = Slice::from_plane(&src, axis, 0);
        let fit = SquareFit::new(first.width, first.height, self.info.size);
        let chunk = batch.max(1);
        let mut done = 0;
        for start in (0..depth).step_by(chunk) {
            let idx: Vec<usize> = (start..(start + chunk).min(depth)).collect();
            let mut inputs = Vec::with_capacity(idx.len());
            let mut masks = Vec::with_capacity(idx.len());
            for &k in &idx {
                let mut s = fit.forward(&Slice::from_plane(&src, axis, k), -1.0, Interp::Bilinear);
                let ms = mvol.as_ref().map(|m| Slice::from_plane(m, axis, k));
                if let Some(ms) = &ms {
                    let small = fit.forward(ms, 0.0, Interp::Nearest);
                    for (v, &k) in s.data.iter_mut().zip(&small.data) {
                        if k < 0.5 {
                            *v = -1.0;
                        }
                    }
                }
                inputs.push(s);
                masks.push(ms);
            }
            let fakes = self.translate_slices(&inputs.iter().collect::<Vec<_>>(), chunk)?;
            for ((&k, fake), ms) in idx.iter().zip(fakes).zip(masks) {
                let mut back = fit.inverse(&fake, Interp::Bilinear);
                for (i, v) in back.data.iter_mut().enumerate() {
                    let keep = ms.as_ref().is_none_or(|m| m.data[i] > 0.5);
                    *v = if keep {
                        target.inverse(v.clamp(-1.0, 1.0))
                    } else {
                        background
                    };
                }
                back.write_plane(&mut out, axis, k);
            }
            done += idx.len();
            progress(done, depth);
        }
        Ok(out.data)
    }

    /// Per-slice NMAE, PSNR and SSIM of G(A) against B on a dataset split
    /// (the aligned targets: no noise is applied here).
    pub fn evaluate(&self, ds: &SliceDataset, batch: usize) -> Result<Vec<SliceScore>> {
        let fakes = self.translate_split(ds, batch)?;
        Ok(score_slices(ds, &fakes))
    }

    /// G(A) for every slice of a split, background outside its masks.
    pub fn translate_split(&self, ds: &SliceDataset, batch: usize) -> Result<Vec<Slice>> {
        let (w, h) = ds.dims();
        if (w, h) != (self.info.size, self.info.size) {
            bail!(
                "{}: slices are {w}x{h} but the model was trained at {s}x{s}",
                ds.root.display(),
                s = self.info.size
            );
        }
        let xs: Vec<&Slice> = ds.a.iter().collect();
        let mut fakes = self.translate_slices(&xs, batch)?;
        mask_outside(&mut fakes, ds);
        Ok(fakes)
    }
}

/// With masks, the model answers inside them only, as `translate` does
/// with --mask: outside is background (-1), as in the prepared targets.
pub fn mask_outside(fakes: &mut [Slice], ds: &SliceDataset) {
    if let Some(masks) = &ds.mask {
        for (f, m) in fakes.iter_mut().zip(masks) {
            for (v, &k) in f.data.iter_mut().zip(&m.data) {
                if k < 0.5 {
                    *v = -1.0;
                }
            }
        }
    }
}

/// One test slice's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceScore {
    /// Position in the split: the key two models are paired on.
    pub position: usize,
    /// Subject (volume) and slice index in it, where the dataset knows them.
    pub subject: usize,
    pub slice: usize,
    pub nmae: f64,
    pub psnr: f64,
    pub ssim: f64,
}

/// Score `fakes` against the split's targets, skipping slices where a
/// metric is undefined (an empty foreground).
pub fn score_slices(ds: &SliceDataset, fakes: &[Slice]) -> Vec<SliceScore> {
    let refs = ds.refs.clone().unwrap_or_default();
    fakes
        .iter()
        .zip(&ds.b)
        .enumerate()
        .filter_map(|(i, (fake, real))| {
            Some(SliceScore {
                position: i,
                subject: refs.get(i).map_or(0, |r| r.subject),
                slice: refs.get(i).map_or(i, |r| r.index),
                nmae: nmae(fake, real)?,
                psnr: psnr(fake, real)?,
                ssim: ssim(fake, real)?,
            })
        })
        .collect()
}

/// Read a volume for translation with a clear error naming the file.
pub fn read_input(path: &Path) -> Result<Volume> {
    medtrans_io::read_volume(path, &Default::default())
        .with_context(|| format!("reading {}", path.display()))
}
