//! Using a trained model: translating volumes and scoring test splits.
use crate::checkpoint::{resolve_checkpoint, CheckpointState, ModelInfo};
use crate::config::TrainConfig;
use crate::device::{device_from_name, read_f32};
use crate::family::Family;
use crate::nets::{Nets, R};
use crate::tensors::{generate_with, stack, unstack};
use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::Device;
use medtrans_datasets::{mask_inside, mask_to_background, normalise, SliceDataset, SlicePipeline};
use medtrans_io::{Slice, Volume};
use medtrans_metrics::SliceScore;
use medtrans_networks::{warp, RegistrationNet, Segmentor};
use medtrans_transforms::Normalization;
use std::path::{Path, PathBuf};

/// Every network of a saved run, for looking at what it learned (R's
/// fields, G's outputs) without its optimisers, pools or data.
pub struct RunNetworks {
    pub state: CheckpointState,
    pub nets: Nets,
    device: Device,
}

impl RunNetworks {
    /// The networks of a checkpoint folder.
    pub fn load(ckpt: &Path, device: &str) -> Result<Self> {
        Self::load_only(ckpt, device, None)
    }

    /// The networks called `names` of a checkpoint folder (all with
    /// `None`): what every inference loads through, a translator's
    /// networks or a predictor alone.
    pub fn load_only(ckpt: &Path, device: &str, names: Option<&[&str]>) -> Result<Self> {
        let state = CheckpointState::load(ckpt)?;
        let device = device_from_name(device)?;
        let (cfg, size) = (&state.config, state.model.size);
        let mut nets = match names {
            Some(names) => Nets::only(cfg, size, &device, names)?,
            None => Nets::new(cfg, size, &device)?,
        };
        nets.load_weights(ckpt)?;
        Ok(Self {
            state,
            nets,
            device,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// G(x) for slices.
    pub fn translate(&self, xs: &[&Slice]) -> Result<Vec<Slice>> {
        translate_with(&self.state.config, &self.nets, xs, &self.device)
    }

    /// R's view of (G(x), y); see [`register_with`].
    pub fn register(&self, fakes: &[Slice], ys: &[&Slice]) -> Result<Option<Registered>> {
        register_with(&self.nets, fakes, ys, &self.device)
    }

    /// The label maps segmentor `name` (`S_A`, `S_B`) gives `xs`: the most
    /// likely class per pixel. `None` when the run has no such segmentor.
    pub fn segment(&self, name: &str, xs: &[&Slice]) -> Result<Option<Vec<Slice>>> {
        let Some(s) = self.nets.get::<Segmentor>(name) else {
            return Ok(None);
        };
        let s = s.valid();
        let mut out = Vec::with_capacity(xs.len());
        for chunk in xs.chunks(8) {
            let logits = s.forward(stack(chunk, &self.device));
            let [n, c, h, w] = logits.dims();
            let z = read_f32(logits, "the segmentor's forward pass")?;
            for i in 0..n {
                let data = (0..h * w)
                    .map(|p| {
                        (0..c)
                            .max_by(|&a, &b| {
                                z[(i * c + a) * h * w + p].total_cmp(&z[(i * c + b) * h * w + p])
                            })
                            .unwrap_or(0) as f32
                    })
                    .collect();
                out.push(Slice::new(data, w, h));
            }
        }
        Ok(Some(out))
    }
}

/// R's output for some pairs: warp(G(x)), and the field as two slices
/// (rows, columns, in px) per image.
pub type Registered = (Vec<Slice>, Vec<Slice>);

/// G(x) for slices through the run's translator family, without dropout,
/// 8 at a time, on `device` (a plain device: the networks' own, without
/// autodiff).
pub fn translate_with(
    cfg: &TrainConfig,
    nets: &Nets,
    xs: &[&Slice],
    device: &Device,
) -> Result<Vec<Slice>> {
    let family = crate::family::get(&cfg.family)?;
    let nets = nets.valid_of((family.translators)(cfg));
    generate_with(|x| (family.translate)(&nets, x, None), xs, 8, device)
}

/// R's view of (G(x), y) for runs with R; `None` for modes without it.
pub fn register_with(
    nets: &Nets,
    fakes: &[Slice],
    ys: &[&Slice],
    device: &Device,
) -> Result<Option<Registered>> {
    let Some(r) = nets.get::<RegistrationNet>(R) else {
        return Ok(None);
    };
    let r = r.valid();
    let f = stack(&fakes.iter().collect::<Vec<_>>(), device);
    let field = r.forward(f.clone(), stack(ys, device));
    Ok(Some((
        unstack(warp(f, field.clone()), "R's warp")?,
        unstack(field, "R's field")?,
    )))
}

/// A trained translator, ready for inference: the networks its family's
/// translation reads, and nothing else of the run.
pub struct Model {
    run: RunNetworks,
    family: &'static Family,
    pub info: ModelInfo,
    pub config: TrainConfig,
    pub checkpoint: PathBuf,
    pub step: usize,
}

impl Model {
    /// Load the translator from a run folder (best checkpoint, else last)
    /// or a checkpoint folder.
    pub fn load(path: &Path, device: &str) -> Result<Self> {
        let ckpt = resolve_checkpoint(path)?;
        let state = CheckpointState::load(&ckpt)?;
        let family = crate::family::get(&state.config.family)
            .with_context(|| format!("{}: the run's translator family", ckpt.display()))?;
        let run = RunNetworks::load_only(&ckpt, device, Some((family.translators)(&state.config)))?;
        Ok(Self {
            family,
            info: run.state.model.clone(),
            config: run.state.config.clone(),
            step: run.state.step,
            checkpoint: ckpt,
            run,
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
        generate_with(
            |x| (self.family.translate)(&self.run.nets, x, None),
            xs,
            batch,
            &self.run.device,
        )
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
        let mut out = vol.clone();
        out.data.fill(target.inverse(-1.0));
        let info = &self.info;
        slice_batches(
            vol,
            mask,
            norm,
            axis,
            info.size,
            batch,
            progress,
            |pipe, idx, inputs, masks| {
                let fakes =
                    self.translate_slices(&inputs.iter().collect::<Vec<_>>(), batch.max(1))?;
                for ((&k, fake), ms) in idx.iter().zip(fakes).zip(masks) {
                    pipe.inverse(&fake, &target, ms.as_ref())
                        .write_plane(&mut out, axis, k);
                }
                Ok(())
            },
        )?;
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

/// The one volume loop of inference (`translate`, `predict`): the volume
/// normalised as `prepare` normalised the training volumes (within `mask`),
/// cut into planes along `axis`, each fitted into the model's square by the
/// same `SlicePipeline` `prepare` uses, and handed to `f` `batch` planes at
/// a time with their indices and (unfitted) mask planes.
#[allow(clippy::too_many_arguments)]
pub fn slice_batches(
    vol: &Volume,
    mask: Option<&Volume>,
    norm: &Normalization,
    axis: usize,
    size: usize,
    batch: usize,
    progress: &mut dyn FnMut(usize, usize),
    mut f: impl FnMut(&SlicePipeline, &[usize], Vec<Slice>, Vec<Option<Slice>>) -> Result<()>,
) -> Result<()> {
    let (src, mvol) = normalised_input(vol, mask, norm)?;
    let depth = vol.shape()[axis];
    let pipe = SlicePipeline::new(&src, axis, size);
    let chunk = batch.max(1);
    let mut done = 0;
    for start in (0..depth).step_by(chunk) {
        let idx: Vec<usize> = (start..(start + chunk).min(depth)).collect();
        let mut inputs = Vec::with_capacity(idx.len());
        let mut masks = Vec::with_capacity(idx.len());
        for &k in &idx {
            let ms = mvol.as_ref().map(|m| Slice::from_plane(m, axis, k));
            let fitted = ms.as_ref().map(|m| pipe.fit_mask(m));
            inputs.push(pipe.forward(&Slice::from_plane(&src, axis, k), fitted.as_ref()));
            masks.push(ms);
        }
        f(&pipe, &idx, inputs, masks)?;
        done += idx.len();
        progress(done, depth);
    }
    Ok(())
}

/// A volume scaled to [-1, 1] as `prepare` scaled its training volumes
/// (within `mask`, if given), and the mask as a 0/1 volume.
pub fn normalised_input(
    vol: &Volume,
    mask: Option<&Volume>,
    norm: &Normalization,
) -> Result<(Volume, Option<Volume>)> {
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
    let inside = mask.map(mask_inside);
    let mut src = vol.clone();
    normalise(&mut src, norm, inside.as_deref())
        .map_err(|e| anyhow::anyhow!("{}: {e}", vol.source.display()))?;
    let mvol = mask.map(|m| {
        let mut m = m.clone();
        m.data = inside.iter().flatten().map(|&k| k as u8 as f32).collect();
        m
    });
    Ok((src, mvol))
}

/// With masks, the model answers inside them only, as `translate` does
/// with --mask: outside is background (-1), as in the prepared targets.
pub fn mask_outside(fakes: &mut [Slice], ds: &SliceDataset) {
    if let Some(masks) = &ds.mask {
        for (f, m) in fakes.iter_mut().zip(masks) {
            mask_to_background(&mut f.data, |i| m.data[i] > 0.5);
        }
    }
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
            let (subject, slice) = refs.get(i).map_or((0, i), |r| (r.subject, r.index));
            SliceScore::compute(i, subject, slice, fake, real)
        })
        .collect()
}

/// Read a volume for translation with a clear error naming the file.
pub fn read_input(path: &Path) -> Result<Volume> {
    medtrans_io::read_volume(path, &Default::default())
        .with_context(|| format!("reading {}", path.display()))
}
