//! Using a trained predictor P (predictor-guided translation): a
//! measurement or class per target slice, from prepared slices or from a
//! whole target volume.
use crate::checkpoint::{resolve_checkpoint, CheckpointState, ModelInfo};
use crate::config::TrainConfig;
use crate::device::{device_from_name, read_f32};
use crate::nets::{load_weights, P};
use crate::tensors::stack;
use anyhow::{bail, Result};
use burn::module::Module;
use burn::tensor::Device;
use crate::inference::normalised_input;
use medtrans_datasets::SlicePipeline;
use medtrans_io::{Slice, Volume};
use medtrans_networks::{Predictor, PredictorTask};
use std::path::{Path, PathBuf};

/// A trained predictor, ready for inference.
pub struct PredictorModel {
    pub p: Predictor,
    pub task: PredictorTask,
    pub info: ModelInfo,
    pub config: TrainConfig,
    pub checkpoint: PathBuf,
    pub step: usize,
    device: Device,
}

impl PredictorModel {
    /// Load P from a run folder (best checkpoint, else last) or a
    /// checkpoint folder.
    pub fn load(path: &Path, device: &str) -> Result<Self> {
        let ckpt = resolve_checkpoint(path)?;
        let state = CheckpointState::load(&ckpt)?;
        if !state.config.uses_predictor() {
            bail!(
                "{}: this run has no predictor (its loss.prediction is 0); train one with the guided preset",
                ckpt.display()
            );
        }
        let device = device_from_name(device)?;
        let cfg = &state.config;
        let mut p = cfg.predictor.init(cfg.generator.out_channels, &device);
        load_weights(&mut p, &ckpt.join(format!("{P}.safetensors")))?;
        Ok(Self {
            p: p.valid(),
            task: cfg.predictor.task,
            info: state.model,
            config: state.config,
            checkpoint: ckpt,
            step: state.step,
            device,
        })
    }

    /// Column names of [`PredictorModel::predict_slices`]' rows.
    pub fn columns(&self) -> Vec<String> {
        match self.task {
            PredictorTask::Regression => vec!["prediction".into()],
            PredictorTask::Classification => (0..self.config.predictor.classes)
                .map(|c| format!("p{c}"))
                .collect(),
        }
    }

    /// Per slice: the measurement (regression) or the class probabilities
    /// (classification), for model-sized target slices in [-1, 1].
    pub fn predict_slices(&self, xs: &[&Slice], batch: usize) -> Result<Vec<Vec<f32>>> {
        let s = self.info.size;
        if let Some(bad) = xs.iter().find(|x| x.width != s || x.height != s) {
            bail!(
                "a {}x{} slice was given to a predictor for {s}x{s}",
                bad.width,
                bad.height
            );
        }
        let mut out = Vec::with_capacity(xs.len());
        for c in xs.chunks(batch.max(1)) {
            let y = self.p.predict(stack(c, &self.device), self.task);
            let [n, k] = y.dims();
            let v = read_f32(y, "the predictor's forward pass")?;
            out.extend((0..n).map(|i| v[i * k..(i + 1) * k].to_vec()));
        }
        Ok(out)
    }

    /// Predictions for every slice of a target volume along the training
    /// axis, normalised as the training targets were (with `mask`, inside
    /// it).
    pub fn predict_volume(
        &self,
        vol: &Volume,
        mask: Option<&Volume>,
        batch: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<Vec<f32>>> {
        let (Some(axis), Some(norm)) = (self.info.axis, self.info.normalization_b.as_ref()) else {
            bail!("{}: this predictor was trained on slices without a `medtrans prepare` manifest (or before medtrans recorded the target normalisation), so volumes cannot be scaled as its training images were", self.checkpoint.display());
        };
        let (src, mvol) = normalised_input(vol, mask, norm)?;
        let depth = vol.shape()[axis];
        let pipe = SlicePipeline::new(&src, axis, self.info.size);
        let chunk = batch.max(1);
        let mut out = Vec::with_capacity(depth);
        for start in (0..depth).step_by(chunk) {
            let inputs: Vec<Slice> = (start..(start + chunk).min(depth))
                .map(|k| {
                    let fitted = mvol
                        .as_ref()
                        .map(|m| pipe.fit_mask(&Slice::from_plane(m, axis, k)));
                    pipe.forward(&Slice::from_plane(&src, axis, k), fitted.as_ref())
                })
                .collect();
            out.extend(self.predict_slices(&inputs.iter().collect::<Vec<_>>(), chunk)?);
            progress(out.len(), depth);
        }
        Ok(out)
    }
}
