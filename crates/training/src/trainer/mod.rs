//! The one trainer. Every mode is a set of loss weights (see `config`):
//! this file never asks which mode it runs, only which terms are on.
use crate::batch::Batch;
use crate::checkpoint::{
    last_checkpoint, load_pool, save_pool, settle_last_checkpoint, write_atomic, CheckpointState,
    ModelInfo, FORMAT_VERSION,
};
use crate::config::{OnNan, Precision, TrainConfig};
use crate::device::{device_from_name, read_f32};
use crate::inference::{register_with, score_slices, translate_with, Registered};
use crate::nets::{Nets, Role};
use crate::pool::ImagePool;
use crate::samples::write_sample_grid;

use crate::terms::{
    weighted, DiscriminatorStep, GeneratorStep, StepContext, DISCRIMINATOR_TERMS, GENERATOR_TERMS,
};
use crate::validation::NET_VALIDATIONS;
use anyhow::{bail, Context, Result};
use burn::tensor::{Device, Tensor};
use medtrans_datasets::seeds::{stream_rng, stream_seed, Stream};
use medtrans_datasets::{PairOptions, Pairing, SliceDataset};
use medtrans_io::Slice;
use medtrans_metrics::{metric_keys_csv, Metric, Summary};
use rand::seq::SliceRandom;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Config keys `--set` may change when resuming: neither alters the
/// trajectory.
const RESUMABLE_KEYS: [&str; 6] = [
    "train.stop_at_step",
    "train.device",
    "train.keep_checkpoints",
    "train.on_nan",
    "train.nan_lr_factor",
    "train.max_rollbacks",
];

/// A loss or weight became NaN or Inf: what `train.on_nan` acts on.
#[derive(Debug)]
pub struct NonFinite(pub String);

impl std::fmt::Display for NonFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NonFinite {}

/// Loss values of one step, in a fixed order for a given config.
pub type LossRow = Vec<(&'static str, f64)>;

/// The losses of a step that was submitted but not yet read back.
pub struct PendingLosses {
    step: usize,
    lr: f64,
    names: Vec<&'static str>,
    values: Tensor<1>,
    /// What to add to a non-finite loss's error for this run's settings.
    hint: &'static str,
}

impl PendingLosses {
    /// Wait for the step and read its losses; a non-finite loss is an
    /// error naming the step and the term.
    pub fn read(self) -> Result<LossRow> {
        // Numbered from 1, as losses.csv numbers steps.
        let step = self.step + 1;
        let values = read_f32(self.values, &format!("training step {step}"))?;
        let mut row: LossRow = vec![("lr", self.lr)];
        row.extend(
            self.names
                .into_iter()
                .zip(values.into_iter().map(f64::from)),
        );
        if let Some((name, v)) = row.iter().find(|(_, v)| !v.is_finite()) {
            return Err(NonFinite(format!(
                "step {step}: the {name} loss became {v}; lower optim.lr (or train with --on-nan rollback) or check the data{}", self.hint
            ))
            .into());
        }
        Ok(row)
    }
}

pub struct Trainer {
    pub cfg: TrainConfig,
    /// The autodiff device the networks train on.
    device: Device,
    pub train: SliceDataset,
    pub val: Option<SliceDataset>,
    pub nets: Nets,
    pool_a: ImagePool,
    pool_b: ImagePool,
    /// Steps completed.
    pub step: usize,
    best_val_nmae: Option<f64>,
    pub info: ModelInfo,
    pub steps_per_epoch: usize,
    /// NaN rollbacks so far (`train.on_nan = "rollback"`).
    pub rollbacks: usize,
    /// Wall-clock time per phase of each step, when set (`bench --phases`).
    pub phases: Option<PhaseTimes>,
}

/// Seconds spent in each phase of the steps timed, summed. On the CPU
/// every op runs when called, so these are the phases' own times; on a GPU
/// ops queue up and a phase's time is mostly the host's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhaseTimes {
    pub steps: usize,
    /// Names and seconds, in step order.
    pub seconds: [f64; 7],
}

impl PhaseTimes {
    pub const NAMES: [&'static str; 7] = [
        "data (pairs, noise, batch)",
        "generator step: forward and loss terms",
        "generator step: backward",
        "generator step: optimisers",
        "discriminator step: forward and loss terms",
        "discriminator step: backward",
        "discriminator step: optimisers",
    ];

    fn add(&mut self, marks: &[std::time::Instant; 8]) {
        for k in 0..7 {
            self.seconds[k] += (marks[k + 1] - marks[k]).as_secs_f64();
        }
        self.steps += 1;
    }
}

/// What a finished (or stopped) run reports.
pub struct RunSummary {
    pub steps: usize,
    pub last_val: Option<Summary>,
    pub run_dir: PathBuf,
    pub seconds_per_step: f64,
}

impl Trainer {
    /// Set up a new run from a config: opens the data, builds the networks.
    pub fn new(mut cfg: TrainConfig) -> Result<Self> {
        // The run records every option it trains with, defaults included.
        cfg.pin_options()?;
        let mut t = Self::build(cfg)?;
        // Pretrained networks (segmentors): their weights, this run's fresh Adam.
        t.nets.load_pretrained(&t.cfg)?;
        Ok(t)
    }

    /// The run as configured, networks freshly initialised.
    fn build(mut cfg: TrainConfig) -> Result<Self> {
        let device = device_from_name(&cfg.train.device)?.autodiff();
        // Initial weights are drawn on the host from this seed, whatever
        // the device (nets::init_device).
        let _seeded = crate::nets::seed_devices(&device, cfg.train.seed);
        let precision = cfg.train.precision;
        if precision != Precision::F32 && !device.supports_dtype(precision.dtype()) {
            let other = match precision {
                Precision::Bf16 => "train.precision = \"f16\"",
                _ => "train.precision = \"bf16\"",
            };
            bail!(
                "train.precision = {:?}: device {:?} cannot compute in it; try {other}, or f32 (WGSL GPUs have f16 only where the driver offers it, and no bf16)",
                format!("{precision:?}").to_lowercase(),
                cfg.train.device
            );
        }
        if cfg.data.path.as_os_str().is_empty() {
            bail!("data.path is not set: pass --set data.path=DATASET (a folder made by `medtrans prepare`)");
        }
        let train = SliceDataset::open(&cfg.data.path, &cfg.data.train_split)
            .with_context(|| format!("opening the training data in {}", cfg.data.path.display()))?;
        if train.is_empty() {
            bail!(
                "{}: the {} split has no slices",
                cfg.data.path.display(),
                cfg.data.train_split
            );
        }
        let val = open_validation(&cfg)?;
        let w = check_data(&mut cfg, &train, val.as_ref())?;
        let nets = Nets::new(&cfg, w, &device)?;
        let info = ModelInfo::from_dataset(&train);
        let spe = if cfg.train.steps_per_epoch > 0 {
            cfg.train.steps_per_epoch
        } else {
            train.len().div_ceil(cfg.train.batch_size)
        };
        Ok(Self {
            pool_a: ImagePool::new(cfg.train.pool_size),
            pool_b: ImagePool::new(cfg.train.pool_size),
            cfg,
            device,
            train,
            val,
            nets,
            step: 0,
            best_val_nmae: None,
            info,
            steps_per_epoch: spe,
            rollbacks: 0,
            phases: None,
        })
    }

    /// Continue the run in `run_dir` from its last checkpoint; `overrides`
    /// may change only the schedule's end (`train.stop_at_step`).
    pub fn resume(run_dir: &Path, overrides: &[String]) -> Result<Self> {
        for o in overrides {
            let key = o.split('=').next().unwrap_or("").trim();
            if !RESUMABLE_KEYS.contains(&key) {
                bail!(
                    "--set {o}: a resumed run keeps its config; only {} may change",
                    RESUMABLE_KEYS.join(" and ")
                );
            }
        }
        let ckpt = settle_last_checkpoint(run_dir)?;
        let state = CheckpointState::load(&ckpt)?;
        let text = state.config.to_toml();
        let mut cfg = TrainConfig::from_toml(&text, overrides, &format!("{}", ckpt.display()))?;
        // The run lives where it is now, wherever it was started from, and
        // a relative dataset path is relative to it.
        cfg.out = run_dir.to_path_buf();
        if cfg.data.path.is_relative() {
            cfg.data.path = run_dir.join(&cfg.data.path);
        }
        let mut t = Self::build(cfg)?;
        t.restore(&ckpt, &state)?;
        Ok(t)
    }

    /// Networks, Adam states, step and pools from a checkpoint.
    fn restore(&mut self, ckpt: &Path, state: &CheckpointState) -> Result<()> {
        self.nets.load(ckpt)?;
        self.step = state.step;
        self.best_val_nmae = state.best_val_nmae;
        self.pool_a
            .load_slices(&load_pool(&ckpt.join("pool_A.npy"))?, &self.device);
        self.pool_b
            .load_slices(&load_pool(&ckpt.join("pool_B.npy"))?, &self.device);
        Ok(())
    }

    pub fn total_steps(&self) -> usize {
        self.cfg.train.epochs * self.steps_per_epoch
    }

    fn pair_options(&self) -> PairOptions {
        PairOptions {
            noise_level: self.cfg.data.noise_level,
            misalign: self.cfg.data.misalign,
            pairing: self.cfg.data.pairing,
            seed: self.cfg.train.seed,
        }
    }

    /// Training indices of global step `step`: a fresh permutation each
    /// epoch, seeded by (seed, epoch).
    fn batch_indices(&self, step: usize) -> (usize, Vec<usize>) {
        let epoch = step / self.steps_per_epoch;
        let within = step % self.steps_per_epoch;
        let n = self.train.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut stream_rng(
            self.cfg.train.seed,
            Stream::Shuffle,
            epoch as u64,
        ));
        let bs = self.cfg.train.batch_size;
        let idx = (0..bs).map(|k| order[(within * bs + k) % n]).collect();
        (epoch, idx)
    }

    /// One optimisation step: generators (and R) on the weighted sum of
    /// their terms, then the discriminators; returns its losses.
    pub fn train_step(&mut self) -> Result<LossRow> {
        self.submit_step()?.read()
    }

    /// One optimisation step, its losses left on the device: a GPU goes on
    /// with the next step while the host waits for this one's numbers.
    pub fn submit_step(&mut self) -> Result<PendingLosses> {
        // Phase boundaries, for `medtrans bench --phases` (a few ns each).
        let mut marks = [std::time::Instant::now(); 8];
        let step = self.step;
        let (epoch, idx) = self.batch_indices(step);
        let lr = Role::Generator.lr(&self.cfg, epoch);
        // Dropout and any other device randomness replay on resume.
        self.device.seed(stream_seed(
            self.cfg.train.seed,
            Stream::Device,
            step as u64,
        ));
        let opts = self.pair_options();
        let pairs: Vec<_> = idx
            .iter()
            .map(|&i| self.train.pair(i, epoch as u64, &opts))
            .collect();
        let batch = Batch::of(&pairs, &self.cfg, &self.device);
        marks[1] = std::time::Instant::now();
        // Mixed precision: each pass runs through a half-precision view of
        // the networks, made after the last update; Adam steps the f32
        // originals (`Nets::cast_view`).
        let precision = self.cfg.train.precision;
        let scale = self.cfg.train.loss_scale;
        let view =
            |nets: &Nets| (precision != Precision::F32).then(|| nets.cast_view(precision.dtype()));
        // --- generators and R: the weighted sum of the enabled terms -----
        let g_view = view(&self.nets);
        let nets = g_view.as_ref().unwrap_or(&self.nets);
        let family = crate::family::get(&self.cfg.family)?;
        let ctx = StepContext {
            step,
            epoch,
            seed: self.cfg.train.seed,
        };
        let mut g_step = GeneratorStep::new(&self.cfg, nets, ctx, &batch)?;
        let tables = [GENERATOR_TERMS, family.generator_terms];
        let mut terms = weighted(&tables, &self.cfg, nets, &mut g_step);
        if terms.is_empty() {
            bail!("every loss weight is 0: nothing to train");
        }
        let fake_b = g_step.fake_b.clone();
        let fake_a = g_step.take_fake_a();
        let total = sum(&terms);
        marks[2] = std::time::Instant::now();
        let mut grads = scaled(total.clone(), scale).backward();
        marks[3] = std::time::Instant::now();
        drop(g_view);
        self.nets.step(Role::Generator, lr, &mut grads, scale);
        terms.push(("g_total", total));
        marks[4] = std::time::Instant::now();

        // --- discriminators ---------------------------------------------
        let mut rng = stream_rng(self.cfg.train.seed, Stream::Pool, step as u64);
        let d_view = view(&self.nets);
        let nets = d_view.as_ref().unwrap_or(&self.nets);
        let fake_b = if self.cfg.train.regenerate_fake && self.nets.has_role(Role::Discriminator) {
            // G after its step; inference only: no autodiff graph.
            let mut rng = ctx.rng(family.name);
            Tensor::from_inner((family.translate)(
                &nets.valid_of((family.translators)(&self.cfg)),
                batch.x.clone().inner(),
                Some(&mut rng),
            ))
        } else {
            fake_b.detach()
        };
        let mut d_step = DiscriminatorStep {
            cfg: &self.cfg,
            nets,
            batch: &batch,
            x: batch.x.clone(),
            y: batch.y.clone(),
            fake_b,
            fake_a: fake_a.map(|t| t.detach()),
            pool_a: &mut self.pool_a,
            pool_b: &mut self.pool_b,
            rng: &mut rng,
        };
        let tables = [DISCRIMINATOR_TERMS, family.discriminator_terms];
        let d_terms = weighted(&tables, &self.cfg, nets, &mut d_step);
        drop(d_step);
        drop(d_view);
        marks[5] = std::time::Instant::now();
        marks[6] = marks[5];
        if !d_terms.is_empty() {
            let mut grads = scaled(sum(&d_terms), scale).backward();
            marks[6] = std::time::Instant::now();
            for role in [Role::Discriminator, Role::Predictor] {
                self.nets
                    .step(role, role.lr(&self.cfg, epoch), &mut grads, scale);
            }
        }
        terms.extend(d_terms);
        marks[7] = std::time::Instant::now();
        if let Some(p) = &mut self.phases {
            p.add(&marks);
        }

        // All terms in one tensor: one read-back per step.
        let names: Vec<&'static str> = terms.iter().map(|t| t.0).collect();
        let values = Tensor::cat(terms.into_iter().map(|t| t.1.detach()).collect(), 0);
        self.step += 1;
        let hint = match precision {
            Precision::F16 => {
                "; with train.precision = \"f16\", a lower train.loss_scale or bf16 may help"
            }
            _ => "",
        };
        Ok(PendingLosses {
            step,
            lr,
            names,
            values,
            hint,
        })
    }

    /// G(x) for slices, on the plain device and without dropout.
    pub fn translate(&self, xs: &[&Slice]) -> Result<Vec<Slice>> {
        translate_with(&self.cfg, &self.nets, xs, &self.device.clone().inner())
    }

    /// NMAE, PSNR and SSIM of G(x) against the aligned target on the
    /// validation split.
    pub fn validate(&self) -> Result<Option<Summary>> {
        let Some(val) = self.val.as_ref() else {
            return Ok(None);
        };
        let xs: Vec<&Slice> = val.a.iter().collect();
        let mut fakes = self.translate(&xs)?;
        crate::inference::mask_outside(&mut fakes, val);
        Ok(Summary::of(&score_slices(val, &fakes)))
    }

    fn checkpoint(&self, dir: &Path, val: Option<Summary>) -> Result<()> {
        let state = CheckpointState {
            format_version: FORMAT_VERSION,
            networks: self.nets.names().iter().map(|n| n.to_string()).collect(),
            step: self.step,
            epoch: self.step / self.steps_per_epoch,
            best_val_nmae: self.best_val_nmae,
            val: val.map(|v| v.means()),
            model: self.info.clone(),
            config: self.portable_config(),
        };
        // A non-finite weight would make every later checkpoint worthless:
        // stop, and keep the last good one.
        if let Some(bad) = self.nets.non_finite()? {
            return Err(NonFinite(format!(
                "step {}: {bad} holds NaN or Inf; the last good checkpoint is kept. Lower optim.lr (or train with --on-nan rollback) or check the data",
                self.step
            ))
            .into());
        }
        let history = if dir.ends_with("last") {
            self.cfg.train.keep_checkpoints - 1
        } else {
            0
        };
        write_atomic(dir, history, |tmp| {
            self.nets.save(tmp)?;
            save_pool(&tmp.join("pool_A.npy"), &self.pool_a.to_slices()?)?;
            save_pool(&tmp.join("pool_B.npy"), &self.pool_b.to_slices()?)?;
            state.save(tmp)
        })
    }

    /// The config as a checkpoint keeps it: the dataset path relative to
    /// the run folder where both share a root, so that a project folder
    /// holding runs and data can be moved or copied and still resume.
    fn portable_config(&self) -> TrainConfig {
        let mut cfg = self.cfg.clone();
        let abs = |p: &Path| std::fs::canonicalize(p).ok();
        if let (Some(data), Some(run)) = (abs(&cfg.data.path), abs(&cfg.out)) {
            if let Some(rel) = medtrans_io::relative_path(&run, &data) {
                cfg.data.path = rel;
            }
        }
        cfg
    }

    /// Sample grid rows for the first validation (or training) slices:
    /// x, G(x), warped G(x), y, |G(x) - y| and |field|.
    fn write_samples(&self, path: &Path) -> Result<()> {
        let ds = self.val.as_ref().unwrap_or(&self.train);
        let n = self.cfg.train.samples.min(ds.len());
        if n == 0 {
            return Ok(());
        }
        let opts = PairOptions {
            pairing: Pairing::Paired,
            ..self.pair_options()
        };
        let pairs: Vec<_> = (0..n)
            .map(|i| ds.pair(i * ds.len() / n, 0, &opts))
            .collect();
        let xs: Vec<&Slice> = pairs.iter().map(|p| &p.a).collect();
        let ys: Vec<&Slice> = pairs.iter().map(|p| &p.b).collect();
        let fakes = self.translate(&xs)?;
        let registered = self.register(&fakes, &ys)?;
        write_sample_grid(path, &xs, &fakes, registered.as_ref(), &ys)
    }

    /// R's view of (G(x), y): warp(G(x)) and the field, two slices (rows,
    /// columns, in px) per image. `None` for modes without R.
    pub fn register(&self, fakes: &[Slice], ys: &[&Slice]) -> Result<Option<Registered>> {
        register_with(&self.nets, fakes, ys, &self.device.clone().inner())
    }

    /// Train to the end of the schedule (or `train.stop_at_step`), with a
    /// progress bar, CSV logs, validation, samples and checkpoints. With
    /// `train.on_nan = "rollback"`, a NaN or Inf sends the run back to its
    /// last checkpoint (one is written before the first step) with the
    /// learning rates times `train.nan_lr_factor`, up to
    /// `train.max_rollbacks` times; the logs lose the rows after it.
    pub fn run(&mut self, quiet: bool) -> Result<RunSummary> {
        let rollback = self.cfg.train.on_nan == OnNan::Rollback;
        let out = self.cfg.out.clone();
        if rollback && last_checkpoint(&out).is_err() {
            std::fs::create_dir_all(&out)
                .with_context(|| format!("creating the run folder {}", out.display()))?;
            self.checkpoint(&out.join("checkpoints/last"), None)?;
        }
        let mut rollbacks = 0;
        loop {
            let err = match self.run_once(quiet) {
                Err(e) if rollback && e.downcast_ref::<NonFinite>().is_some() => e,
                done => return done,
            };
            if rollbacks == self.cfg.train.max_rollbacks {
                return Err(err.context(format!(
                    "still not finite after {rollbacks} rollbacks (train.max_rollbacks)"
                )));
            }
            rollbacks += 1;
            let ckpt = settle_last_checkpoint(&out)?;
            let state = CheckpointState::load(&ckpt)?;
            self.restore(&ckpt, &state)?;
            let f = self.cfg.train.nan_lr_factor;
            Role::scale_learning_rates(&mut self.cfg, f);
            tracing::warn!(
                "{err}; rolled back to step {} (rollback {rollbacks} of {}), optim.lr now {:e}",
                self.step,
                self.cfg.train.max_rollbacks,
                self.cfg.optim.lr
            );
            self.rollbacks += 1;
        }
    }

    fn run_once(&mut self, quiet: bool) -> Result<RunSummary> {
        let out = self.cfg.out.clone();
        std::fs::create_dir_all(out.join("samples"))
            .with_context(|| format!("creating the run folder {}", out.display()))?;
        medtrans_io::write_file_atomic(&out.join("config.toml"), self.cfg.to_toml().as_bytes())?;
        let total = self.total_steps();
        let stop = match self.cfg.train.stop_at_step {
            0 => total,
            s => s.min(total),
        };
        let mut log = LossLog::open(&out.join("losses.csv"), self.step)?;
        let mut val_log = ValLog::open(&out.join("validation.csv"), self.step)?;
        // The networks' own validations (the predictor's error), each in
        // its CSV beside validation.csv.
        let mut net_logs = Vec::new();
        if self.val.is_some() {
            for v in NET_VALIDATIONS.iter().filter(|v| self.nets.has(v.network)) {
                net_logs.push((
                    v,
                    NetValLog::open(&out.join(v.file), self.step, (v.score)(&self.cfg))?,
                ));
            }
        }
        let bar = progress(total as u64, self.step as u64, quiet);
        let start = std::time::Instant::now();
        let first = self.step;
        let mut last_val = None;
        // Losses are read one step late, so that a GPU is never idle while
        // the host waits; every epoch end reads all before going on.
        let mut pending: Option<PendingLosses> = None;
        let spe = self.steps_per_epoch;
        let mut record = |p: PendingLosses| -> Result<()> {
            // Logged under the count of steps done, as the bar counts.
            let (done, epoch) = (p.step + 1, p.step / spe);
            let row = p.read()?;
            log.write(done, epoch, &row)?;
            bar.set_position(done as u64);
            bar.set_message(
                row.iter()
                    .filter(|(n, _)| *n != "lr")
                    .map(|(n, v)| format!("{n} {v:.3}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            Ok(())
        };
        while self.step < stop {
            let submitted = self.submit_step()?;
            if let Some(p) = pending.replace(submitted) {
                record(p)?;
            }
            if self.step.is_multiple_of(self.steps_per_epoch) {
                if let Some(p) = pending.take() {
                    record(p)?;
                }
                let epoch = self.step / self.steps_per_epoch;
                let val = self.validate()?;
                if let Some(v) = &val {
                    val_log.write(epoch, self.step, v)?;
                    bar.println(format!("epoch {epoch}: val {}", v.brief()));
                    let nmae = v.mean(Metric::NMAE);
                    if self
                        .best_val_nmae
                        .is_none_or(|b| Metric::NMAE.better(nmae, b))
                    {
                        self.best_val_nmae = Some(nmae);
                        self.checkpoint(&out.join("checkpoints/best"), val.clone())?;
                    }
                }
                last_val = val.clone().or(last_val);
                for (v, log) in &mut net_logs {
                    let val = self
                        .val
                        .as_ref()
                        .expect("logs exist with a validation split");
                    let inner = self.device.clone().inner();
                    if let Some((n, score)) = (v.run)(&self.nets, &self.cfg, val, &inner)? {
                        log.write(epoch, self.step, n, score)?;
                        bar.println(format!(
                            "epoch {epoch}: {} val {} {score:.4} ({n} slices)",
                            v.label, log.score
                        ));
                    }
                }
                self.write_samples(&out.join(format!("samples/epoch_{epoch:03}.png")))?;
                self.checkpoint(&out.join("checkpoints/last"), val)?;
                self.write_report(&start, first, false, &bar);
            }
        }
        if let Some(p) = pending.take() {
            record(p)?;
        }
        if !self.step.is_multiple_of(self.steps_per_epoch) {
            self.checkpoint(&out.join("checkpoints/last"), None)?;
        }
        self.write_report(&start, first, true, &bar);
        bar.finish_and_clear();
        let done = self.step - first;
        Ok(RunSummary {
            steps: self.step,
            last_val,
            run_dir: out,
            seconds_per_step: start.elapsed().as_secs_f64() / done.max(1) as f64,
        })
    }
}

/// The sum of weighted terms, in order.
/// A loss times the loss scale, for the backward pass alone.
fn scaled(loss: Tensor<1>, scale: f64) -> Tensor<1> {
    if scale == 1.0 {
        loss
    } else {
        loss * scale
    }
}

fn sum(terms: &[(&'static str, Tensor<1>)]) -> Tensor<1> {
    terms
        .iter()
        .map(|t| t.1.clone())
        .reduce(|a, b| a + b)
        .expect("at least one term")
}

mod checks;
mod logs;
use checks::{check_data, open_validation};
use logs::{progress, LossLog, NetValLog, ValLog};
