//! Training configuration: TOML, with presets for the paper's modes in
//! `configs/` and `--set key=value` overrides.
use anyhow::{Context, Result};
use medtrans_datasets::Pairing;
use medtrans_losses::GanLoss;
use medtrans_networks::{GeneratorConfig, PredictorConfig, RegistrationConfig, SegmentorConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

mod check;
mod load;
pub use load::{presets, with_suggestion, PRESETS};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Free-form name of the mode, for logs; the loss weights define it.
    pub mode: String,
    /// The translator family (`family::all`): how G translates and which
    /// networks that takes. "cyclegan": ResNet/U-Net generators.
    pub family: String,
    /// Run folder: checkpoints, logs, samples and the effective config.
    pub out: PathBuf,
    pub data: DataConfig,
    pub generator: GeneratorConfig,
    pub discriminator: DiscriminatorSettings,
    pub registration: RegistrationConfig,
    /// The segmentors S_A and S_B of the shape-consistency loss.
    pub segmentor: SegmentorConfig,
    /// The predictor P of predictor-guided translation.
    pub predictor: PredictorConfig,
    pub loss: LossConfig,
    pub optim: OptimConfig,
    pub train: ScheduleConfig,
    /// Options that a translator family or a term owns, one table per
    /// owner (`[options.NAME]`): each owner declares, reads and checks its
    /// own (`family::Options`), so a new method's settings are new code in
    /// its own file, not new fields here. A table no owner of the run
    /// claims is refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, toml::Table>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// A folder made by `medtrans prepare`, or RegGAN's A/ B/ npy layout.
    pub path: PathBuf,
    pub train_split: String,
    pub val_split: String,
    /// RegGAN's misalignment noise level applied to training pairs (0-5).
    pub noise_level: u32,
    /// A misalignment range of its own instead of `noise_level`'s, e.g. the
    /// paper's Table 1: `misalign = { rotation_deg = 5.0, translation =
    /// 0.05, scale = 0.05 }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misalign: Option<medtrans_transforms::MisalignRange>,
    pub pairing: Pairing,
    /// Train pixel losses (L1, correction) against unrelated targets when
    /// unpaired: meaningless for a user's model, but the RegGAN paper's
    /// unpaired baseline (its section 4.4) is exactly this.
    pub unpaired_pixel_losses: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscriminatorSettings {
    pub ndf: usize,
    /// Score one value per image (RegGAN code) instead of per patch.
    pub per_image: bool,
    /// Feed (x, y) pairs, as pix2pix does.
    pub conditional: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CycleDirection {
    /// x -> y -> x and y -> x -> y (CycleGAN).
    #[serde(alias = "symmetric")]
    Both,
    /// Only y -> x -> y, at twice the weight: the asymmetric cycle loss for
    /// many-to-one mappings, where x cannot be recovered from G(x).
    #[serde(alias = "asymmetric")]
    TargetOnly,
}

/// Loss weights. A zero weight removes the term, and with it any network
/// only that term needs (F and D_A without cycle, R without correction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    pub gan: GanLoss,
    pub adversarial: f64,
    pub l1: f64,
    pub cycle: f64,
    pub cycle_direction: CycleDirection,
    /// Identity loss as a fraction of the cycle weight (CycleGAN: 0.5).
    pub identity: f64,
    pub correction: f64,
    pub smoothness: f64,
    /// Factor on the discriminators' real + fake loss: 0.5 in the
    /// CycleGAN/pix2pix code, 1 in the RegGAN code.
    pub discriminator: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    /// Decay the learning rate linearly to 0 over the last this-many epochs
    /// (when larger than train.epochs, the decay is already under way at
    /// the first epoch).
    pub decay_epochs: usize,
}

/// The arithmetic of the networks' forward and backward passes. Weights,
/// Adam and losses stay f32 in every case (see `medtrans_networks::cast_weights`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    #[default]
    F32,
    /// bfloat16: f32's range, so no loss scaling. CPU and Vulkan GPUs whose
    /// driver offers it (not the WGSL `gpu` build).
    Bf16,
    /// IEEE half: the type WGSL GPUs have. Its narrow range may call for
    /// `train.loss_scale`.
    F16,
}

impl Precision {
    pub fn dtype(self) -> burn::tensor::FloatDType {
        use burn::tensor::FloatDType;
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::Bf16 => FloatDType::BF16,
            Precision::F16 => FloatDType::F16,
        }
    }
}

/// What training does when a loss or weight stops being finite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnNan {
    #[default]
    Stop,
    Rollback,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// `cpu` (Burn's flex backend), `gpu` or `gpu:N` (built with the `gpu`
    /// feature; see `device::device_from_name`).
    pub device: String,
    pub epochs: usize,
    /// Steps per epoch; 0 means one pass over the training split.
    pub steps_per_epoch: usize,
    pub batch_size: usize,
    pub seed: u64,
    /// Fakes the discriminators see come from a pool of this many earlier
    /// fakes (CycleGAN: 50); 0 uses the current fake.
    pub pool_size: usize,
    /// The D step scores a fresh G(x) made after the G step (RegGAN's
    /// order) instead of the fake from the G step.
    pub regenerate_fake: bool,
    /// Stop (with a checkpoint) after this global step; 0 runs to the end.
    /// The schedule is unchanged, so a resumed run continues exactly.
    pub stop_at_step: usize,
    /// Images in each epoch's sample grid.
    pub samples: usize,
    /// What a NaN or Inf loss or weight does: `stop` (keep the last good
    /// checkpoint and fail) or `rollback` (continue from it with lower
    /// learning rates).
    pub on_nan: OnNan,
    /// Rollback: both learning rates are multiplied by this.
    pub nan_lr_factor: f64,
    /// Rollback: give up after this many.
    pub max_rollbacks: usize,
    /// `last` checkpoints kept: the newest plus this many minus one in
    /// `checkpoints/history/`, for resume to fall back on if the newest
    /// is damaged.
    pub keep_checkpoints: usize,
    /// `f32`, or mixed precision: `bf16` or `f16` for the networks' passes,
    /// with f32 weights, Adam and losses.
    pub precision: Precision,
    /// The generator and discriminator losses are multiplied by this before
    /// the backward pass and the gradients divided by it after. Raise it
    /// (e.g. 128) if f16 gradients round to zero, lower it if they overflow
    /// (a NaN loss). A fixed scale: the step is never skipped, as PyTorch's
    /// GradScaler would on an overflow, because deciding that needs a
    /// device read per step. 1 (no scaling) suits medtrans' losses: with
    /// 1024 an f16 step overflowed in the tests.
    pub loss_scale: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            mode: "custom".into(),
            family: crate::family::CYCLEGAN.name.into(),
            out: PathBuf::from("runs/run"),
            data: DataConfig::default(),
            generator: GeneratorConfig::default(),
            discriminator: DiscriminatorSettings::default(),
            registration: RegistrationConfig::default(),
            segmentor: SegmentorConfig::default(),
            predictor: PredictorConfig::default(),
            loss: LossConfig::default(),
            optim: OptimConfig::default(),
            train: ScheduleConfig::default(),
            options: BTreeMap::new(),
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            train_split: "train".into(),
            val_split: "val".into(),
            noise_level: 0,
            misalign: None,
            pairing: Pairing::Paired,
            unpaired_pixel_losses: false,
        }
    }
}

impl Default for DiscriminatorSettings {
    fn default() -> Self {
        Self {
            ndf: 64,
            per_image: false,
            conditional: false,
        }
    }
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            gan: GanLoss::Lsgan,
            adversarial: 1.0,
            l1: 0.0,
            cycle: 0.0,
            cycle_direction: CycleDirection::Both,
            identity: 0.0,
            correction: 0.0,
            smoothness: 0.0,
            discriminator: 0.5,
        }
    }
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 1e-4,
            beta1: 0.5,
            beta2: 0.999,
            weight_decay: 1e-4,
            decay_epochs: 0,
        }
    }
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            device: "cpu".into(),
            epochs: 80,
            steps_per_epoch: 0,
            batch_size: 1,
            seed: 0,
            pool_size: 0,
            regenerate_fake: false,
            stop_at_step: 0,
            keep_checkpoints: 3,
            precision: Precision::F32,
            loss_scale: 1.0,
            samples: 4,
            on_nan: OnNan::Stop,
            nan_lr_factor: 0.5,
            max_rollbacks: 3,
        }
    }
}

impl TrainConfig {
    /// The loss terms whose weight this config sets above zero, by name:
    /// the shared ones and its family's.
    pub fn term_names(&self) -> Vec<&'static str> {
        let family = crate::family::get(&self.family).ok();
        let own_g = family.map_or(&[][..], |f| f.generator_terms);
        let own_d = family.map_or(&[][..], |f| f.discriminator_terms);
        crate::terms::GENERATOR_TERMS
            .iter()
            .chain(own_g)
            .map(|t| (t.name, (t.weight)(self)))
            .chain(
                crate::terms::DISCRIMINATOR_TERMS
                    .iter()
                    .chain(own_d)
                    .map(|t| (t.name, (t.weight)(self))),
            )
            .filter(|(_, w)| *w > 0.0)
            .map(|(n, _)| n)
            .collect()
    }

    /// The config after a typed change, checked again: how experiments
    /// derive their runs' configs from a preset.
    pub fn with(mut self, change: impl FnOnce(&mut TrainConfig)) -> Result<Self> {
        change(&mut self);
        self.check().context("invalid config")?;
        Ok(self)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a config always serialises")
    }

    pub fn uses_cycle(&self) -> bool {
        self.loss.cycle > 0.0
    }

    /// Whether a run of this config has the network `name`: whether one of
    /// its terms brings it (`nets::networks_of`).
    pub fn has_network(&self, name: &str) -> bool {
        crate::nets::networks_of(self).is_ok_and(|n| n.contains(&name))
    }

    /// Whether the run has the segmentors S_A and S_B (and needs labels).
    pub fn uses_segmentors(&self) -> bool {
        self.has_network(crate::nets::S_A)
    }

    /// Whether the run has the predictor P (and needs per-slice labels).
    pub fn uses_predictor(&self) -> bool {
        self.has_network(crate::nets::P)
    }

    /// Whether the run has the registration network R.
    pub fn uses_registration(&self) -> bool {
        self.has_network(crate::nets::R)
    }

    /// Write each options table of the run's owners out in full (defaults
    /// filled in), for the run's config.toml.
    pub fn pin_options(&mut self) -> Result<()> {
        let family = crate::family::get(&self.family)?;
        for o in family.options.iter().chain(crate::terms::TERM_OPTIONS) {
            let table = (o.pin)(self).map_err(|e| anyhow::anyhow!("{e}"))?;
            self.options.insert(o.section.to_string(), table);
        }
        Ok(())
    }

    /// The `[options.SECTION]` table as its owner's type `T` (which gives
    /// defaults and refuses unknown keys), the empty table when the config
    /// has none; an error names the section and the key.
    pub fn options_of<T: serde::de::DeserializeOwned>(
        &self,
        section: &str,
    ) -> std::result::Result<T, String> {
        let table = self.options.get(section).cloned().unwrap_or_default();
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| {
                format!("options.{section}: {}", with_suggestion(e.message()))
            })
    }

    /// Change the `[options.SECTION]` table through its owner's type `T`
    /// (an experiment's typed change: `ShapeOptions`'s weight). A table
    /// that does not read as `T` is left as it is, for `check` to name.
    pub fn edit_options<T: serde::de::DeserializeOwned + serde::Serialize>(
        &mut self,
        section: &str,
        change: impl FnOnce(&mut T),
    ) {
        let Ok(mut o) = self.options_of::<T>(section) else {
            return;
        };
        change(&mut o);
        if let Some(t) = toml::Value::try_from(o)
            .ok()
            .and_then(|v| v.as_table().cloned())
        {
            self.options.insert(section.to_string(), t);
        }
    }

    /// Learning-rate factor for `epoch` (0-based): 1, then a linear decay
    /// towards 0 over the last `decay_epochs` (the line ends at 0 one epoch
    /// after the last, as in the CycleGAN code).
    pub fn lr_factor(&self, epoch: usize) -> f64 {
        let (e, k) = (self.train.epochs, self.optim.decay_epochs);
        if k == 0 || epoch + k < e {
            1.0
        } else {
            (e - epoch) as f64 / (k + 1) as f64
        }
    }
}
