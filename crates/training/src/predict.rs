//! Using a trained predictor P (predictor-guided translation): a
//! measurement or class per target slice, from prepared slices or from a
//! whole target volume.
use crate::checkpoint::{last_checkpoint, resolve_checkpoint, CheckpointState, ModelInfo};
use crate::config::TrainConfig;
use crate::device::{device_from_name, read_f32};
use crate::inference::slice_batches;
use crate::nets::{net_of, trained, P};
use crate::tensors::stack;
use crate::terms::{prediction_loss, SampleLabels};
use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::Device;
use medtrans_io::{Slice, Volume};
use medtrans_networks::{Predictor, PredictorTask};
use medtrans_transforms::Augment;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
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
    /// Load P from a run folder (its last checkpoint: `best` is chosen by
    /// the translator's validation, not P's) or a checkpoint folder.
    pub fn load(path: &Path, device: &str) -> Result<Self> {
        let ckpt = if path.join("checkpoints").is_dir() {
            last_checkpoint(path)?
        } else {
            resolve_checkpoint(path)?
        };
        let state = CheckpointState::load(&ckpt)?;
        if !state.config.uses_predictor() {
            bail!(
                "{}: this run has no predictor (its options.guided.prediction is 0); train one with the guided preset",
                ckpt.display()
            );
        }
        let run = crate::inference::RunNetworks::load_only(&ckpt, device, Some(&[P]))?;
        let p = run
            .nets
            .get::<Predictor>(P)
            .context("the checkpoint's predictor")?
            .valid();
        Ok(Self {
            p,
            task: state.config.predictor.task,
            info: state.model,
            config: state.config,
            checkpoint: ckpt,
            step: state.step,
            device: run.device().clone(),
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
        predict_with(&self.p, self.task, xs, batch, &self.device)
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
        let mut out = Vec::with_capacity(vol.shape()[axis]);
        let size = self.info.size;
        slice_batches(
            vol,
            mask,
            norm,
            axis,
            size,
            batch,
            progress,
            |_, _, inputs, _| {
                out.extend(self.predict_slices(&inputs.iter().collect::<Vec<_>>(), batch.max(1))?);
                Ok(())
            },
        )?;
        Ok(out)
    }
}

/// Per slice, `p`'s prediction in label units (a measurement, or class
/// probabilities), `batch` slices at a time on `device` (a plain device).
pub fn predict_with(
    p: &Predictor,
    task: PredictorTask,
    xs: &[&Slice],
    batch: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(xs.len());
    for c in xs.chunks(batch.max(1)) {
        let y = p.predict(stack(c, device), task);
        let [n, k] = y.dims();
        let v = read_f32(y, "the predictor's forward pass")?;
        out.extend((0..n).map(|i| v[i * k..(i + 1) * k].to_vec()));
    }
    Ok(out)
}

/// How [`fit_predictor`] trains.
#[derive(Debug, Clone)]
pub struct FitOptions {
    pub steps: usize,
    pub batch: usize,
    pub seed: u64,
    /// Augment every drawn slice (the simple-augmentation baseline).
    pub augment: Option<Augment>,
}

/// Labelled slices for one stage of [`fit_predictor_stages`].
pub type Stage<'a> = (&'a [&'a Slice], &'a [f32]);

/// Train a predictor alone on labelled slices, as the guided mode's P is
/// built and optimised (`cfg.predictor` and `cfg.optim`'s Adam, at
/// `predictor.lr` with linear decay over the second half): the baselines
/// of cross-modal augmentation train P on real targets, augmented targets
/// or a finished translator's outputs. Returns P on the plain device.
pub fn fit_predictor(
    cfg: &TrainConfig,
    images: &[&Slice],
    labels: &[f32],
    opts: &FitOptions,
) -> Result<Predictor> {
    fit_predictor_stages(cfg, &[(images, labels)], opts)
}

/// [`fit_predictor`] through stages, `opts.steps` each, one P throughout
/// (fresh Adam and schedule per stage): transfer learning pretrains on the
/// source modality, then fine-tunes on the target. Regression labels are
/// standardised by the last stage's labels.
pub fn fit_predictor_stages(
    cfg: &TrainConfig,
    stages: &[Stage<'_>],
    opts: &FitOptions,
) -> Result<Predictor> {
    for (images, labels) in stages {
        if images.is_empty() || images.len() != labels.len() {
            bail!(
                "{} images and {} labels: a predictor needs one label per image, and at least one",
                images.len(),
                labels.len()
            );
        }
        let classes = cfg.predictor.classes;
        if let Some(v) = labels.iter().find(|v| match cfg.predictor.task {
            PredictorTask::Regression => !v.is_finite(),
            PredictorTask::Classification => {
                !(v.fract() == 0.0 && **v >= 0.0 && (**v as usize) < classes)
            }
        }) {
            bail!("label {v} is not a finite value or a class in 0..{classes}");
        }
    }
    let Some((_, last_labels)) = stages.last() else {
        bail!("no labelled slices to fit a predictor on");
    };
    let mut pc = cfg.predictor.clone();
    pc.fill_label_scale(last_labels);
    let plain = device_from_name(&cfg.train.device)?;
    let device = plain.clone().autodiff();
    let seeded = crate::nets::seed_devices(&device, opts.seed);
    let host = crate::nets::init_device(&device);
    let net = crate::nets::to_device(pc.init(cfg.generator.out_channels, &host), &device);
    // Drawn now (parameters initialise lazily), while the seed holds.
    let mut net = medtrans_networks::materialize(net);
    drop(seeded);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let half = opts.steps / 2;
    for (images, labels) in stages {
        let mut entry = trained(P, net, &cfg.optim);
        for step in 0..opts.steps {
            let batch: Vec<usize> = (0..opts.batch.max(1))
                .map(|_| rng.random_range(0..images.len()))
                .collect();
            let slices: Vec<Slice> = batch
                .iter()
                .map(|&i| match &opts.augment {
                    Some(a) => a.apply(images[i], &mut rng),
                    None => images[i].clone(),
                })
                .collect();
            let x = stack(&slices.iter().collect::<Vec<_>>(), &device);
            let y = SampleLabels {
                index: (0..batch.len()).collect(),
                value: batch.iter().map(|&i| labels[i]).collect(),
            };
            let p = net_of::<Predictor>(entry.as_ref());
            let loss = prediction_loss(p, pc.task, &x, &y).expect("every drawn slice is labelled");
            let mut grads = loss.backward();
            // Constant, then linear to 0 over the second half.
            let factor = if step < half {
                1.0
            } else {
                (opts.steps - step) as f64 / (opts.steps - half + 1) as f64
            };
            entry.step(pc.lr * factor, &mut grads, 1.0);
        }
        net = net_of::<Predictor>(entry.as_ref()).clone();
    }
    Ok(net.valid())
}

/// The predictor's validation score: `mse` (label units squared) for a
/// regression, `accuracy` for a classification.
pub fn score_name(cfg: &TrainConfig) -> &'static str {
    match cfg.predictor.task {
        PredictorTask::Regression => "mse",
        PredictorTask::Classification => "accuracy",
    }
}

/// P's score on the validation split's labelled target slices: their
/// count and the MSE (label units squared) or the accuracy.
pub fn validate(
    nets: &crate::nets::Nets,
    cfg: &TrainConfig,
    val: &medtrans_datasets::SliceDataset,
    device: &Device,
) -> Result<Option<(usize, f64)>> {
    let (Some(p), Some(labels)) = (nets.get::<Predictor>(P), &val.slice_labels_b) else {
        return Ok(None);
    };
    let (xs, ys): (Vec<&Slice>, Vec<f32>) = val
        .b
        .iter()
        .zip(labels)
        .filter(|(_, v)| !v.is_nan())
        .map(|(s, &v)| (s, v))
        .unzip();
    if xs.is_empty() {
        return Ok(None);
    }
    let task = cfg.predictor.task;
    let pred = predict_with(&p.valid(), task, &xs, 8, device)?;
    let per: Vec<f64> = pred
        .iter()
        .zip(&ys)
        .map(|(p, &y)| match task {
            PredictorTask::Regression => (p[0] as f64 - y as f64).powi(2),
            PredictorTask::Classification => {
                let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b]));
                (best == Some(y as usize)) as u8 as f64
            }
        })
        .collect();
    Ok(Some((xs.len(), per.iter().sum::<f64>() / per.len() as f64)))
}
