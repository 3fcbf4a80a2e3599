//! Training configuration: TOML, with presets for the paper's modes in
//! `configs/` and `--set key=value` overrides.
use anyhow::{bail, Context, Result};
use medtrans_datasets::Pairing;
use medtrans_losses::GanLoss;
use medtrans_networks::{
    GeneratorConfig, GeneratorKind, PredictorConfig, RegistrationConfig, SegmentorConfig,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The presets shipped in `configs/`, by mode name. Embedded so that the
/// binary works without the checkout.
pub const PRESETS: [(&str, &str); 7] = [
    ("pix2pix", include_str!("../../../configs/pix2pix.toml")),
    ("cycle", include_str!("../../../configs/cycle.toml")),
    ("nc", include_str!("../../../configs/nc.toml")),
    ("cycle+reg", include_str!("../../../configs/cycle+reg.toml")),
    ("reggan", include_str!("../../../configs/reggan.toml")),
    (
        "asymmetric",
        include_str!("../../../configs/asymmetric.toml"),
    ),
    ("guided", include_str!("../../../configs/guided.toml")),
];

/// Every preset: the shipped ones, then each translator family's modes.
pub fn presets() -> Vec<(&'static str, &'static str)> {
    PRESETS
        .into_iter()
        .chain(
            crate::family::all()
                .into_iter()
                .flat_map(|f| f.presets.iter().copied()),
        )
        .collect()
}

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
    /// Gradient difference between G(x) and y (paired modes): sharper
    /// edges than L1 alone.
    pub gradient_difference: f64,
    pub cycle: f64,
    pub cycle_direction: CycleDirection,
    /// Identity loss as a fraction of the cycle weight (CycleGAN: 0.5).
    pub identity: f64,
    pub correction: f64,
    pub smoothness: f64,
    /// Shape consistency: CE(S_B(G(x)), labels of x) + CE(S_A(F(y)),
    /// labels of y), so translation keeps anatomy (needs the cycle and
    /// label maps in the dataset).
    pub shape: f64,
    /// The segmentors' own loss on real labelled images: CE(S_A(x), labels
    /// of x) + CE(S_B(y), labels of y).
    pub segmentation: f64,
    /// The predictor's own loss L_pred on labelled slices: translated
    /// sources P(G(x)) (G's output detached) and real targets P(y). Any
    /// weight > 0 gives the run a predictor P; it needs per-slice labels
    /// (`medtrans prepare --slice-labels`).
    pub prediction: f64,
    /// Predictor guidance (the paper's lambda, 1e-3): L_pred on P(G(x))
    /// joins G's loss, so translations must also help P. 0 trains the plain
    /// translator, P beside it.
    pub guidance: f64,
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
            gradient_difference: 0.0,
            cycle: 0.0,
            cycle_direction: CycleDirection::Both,
            identity: 0.0,
            correction: 0.0,
            smoothness: 0.0,
            shape: 0.0,
            segmentation: 0.0,
            prediction: 0.0,
            guidance: 0.0,
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
    /// Parse TOML text, apply `key.path=value` overrides, and check it.
    pub fn from_toml(text: &str, overrides: &[String], origin: &str) -> Result<Self> {
        let mut value: toml::Table =
            toml::from_str(text).with_context(|| format!("{origin}: not valid TOML"))?;
        for o in overrides {
            apply_override(&mut value, o)?;
        }
        let cfg: TrainConfig = value.try_into().map_err(|e: toml::de::Error| {
            anyhow::anyhow!("{origin}: {}", with_suggestion(e.message()))
        })?;
        cfg.check()
            .with_context(|| format!("{origin}: invalid config"))?;
        Ok(cfg)
    }

    /// A config file. A file whose `mode` names a shipped preset must switch
    /// on the terms that preset does (its weights may differ): the name
    /// would otherwise say one method and train another.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config {}", path.display()))?;
        let cfg = Self::from_toml(&text, overrides, &path.display().to_string())?;
        if presets().iter().any(|(m, _)| *m == cfg.mode) {
            let preset = Self::preset(&cfg.mode, &[])?;
            if cfg.family != preset.family {
                bail!(
                    "{}: mode = {mode:?} names the {mode:?} preset, whose family is {:?}, but the file sets family = {:?}; give it a mode name of its own",
                    path.display(),
                    preset.family,
                    cfg.family,
                    mode = cfg.mode,
                );
            }
            let (ours, theirs) = (cfg.term_names(), preset.term_names());
            if ours != theirs {
                let only = |a: &[&str], b: &[&str]| -> String {
                    let v: Vec<&str> = a.iter().filter(|t| !b.contains(t)).copied().collect();
                    if v.is_empty() {
                        "none".into()
                    } else {
                        v.join(", ")
                    }
                };
                bail!(
                    "{}: mode = {mode:?} names the {mode:?} preset, but the file switches on other loss terms (here only: {}; the preset only: {}); give it a mode name of its own, or match the preset's terms",
                    path.display(),
                    only(&ours, &theirs),
                    only(&theirs, &ours),
                    mode = cfg.mode,
                );
            }
        }
        Ok(cfg)
    }

    /// A shipped preset by mode name (`reggan`, `pix2pix`, ...). Its `mode`
    /// is the preset's: `--set mode=...` cannot relabel it.
    pub fn preset(mode: &str, overrides: &[String]) -> Result<Self> {
        let all = presets();
        let Some((_, text)) = all.iter().find(|(m, _)| *m == mode) else {
            bail!(
                "unknown mode {mode:?}; the presets are {}",
                all.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
            );
        };
        let cfg = Self::from_toml(text, overrides, &format!("preset {mode}"))?;
        if cfg.mode != mode {
            bail!(
                "--set mode={:?} contradicts --mode {mode}: a preset's mode is its name; to train other terms under another name, write a config file",
                cfg.mode
            );
        }
        Ok(cfg)
    }

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

    fn check(&self) -> Result<()> {
        let family = crate::family::get(&self.family)?;
        (family.check)(self).map_err(|why| {
            anyhow::anyhow!(
                "family {:?} cannot run mode {:?}: {why}",
                family.name,
                self.mode
            )
        })?;
        // Every options table has an owner in this run, and its owner
        // accepts it (absent tables are checked too: defaults must pass).
        let owners: Vec<&crate::family::Options> = family
            .options
            .iter()
            .chain(crate::terms::TERM_OPTIONS)
            .collect();
        for section in self.options.keys() {
            if !owners.iter().any(|o| o.section == section) {
                let known: Vec<&str> = owners.iter().map(|o| o.section).collect();
                bail!(
                    "[options.{section}]: nothing in this run reads it (family {:?} and the \
                     terms own: {})",
                    family.name,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
            }
        }
        for o in owners {
            (o.check)(self).map_err(|why| anyhow::anyhow!("{why}"))?;
        }
        let l = &self.loss;
        for (name, w) in [
            ("adversarial", l.adversarial),
            ("l1", l.l1),
            ("gradient_difference", l.gradient_difference),
            ("cycle", l.cycle),
            ("identity", l.identity),
            ("correction", l.correction),
            ("smoothness", l.smoothness),
            ("shape", l.shape),
            ("segmentation", l.segmentation),
            ("prediction", l.prediction),
            ("guidance", l.guidance),
            ("discriminator", l.discriminator),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                bail!("loss.{name} must be a finite weight >= 0, not {w}");
            }
        }
        if l.identity > 0.0 && l.cycle == 0.0 {
            bail!("loss.identity is a fraction of loss.cycle, which is 0");
        }
        if l.shape > 0.0 && !self.uses_cycle() {
            bail!("loss.shape needs the cycle (F: B -> A) for its second half; set loss.cycle > 0");
        }
        if self.uses_segmentors() && self.segmentor.classes < 2 {
            bail!("segmentor.classes must be at least 2 (background and one structure)");
        }
        let s = &self.segmentor;
        if l.shape > 0.0
            && l.segmentation == 0.0
            && !s.learn_from_translations
            && s.init_from.is_none()
        {
            bail!("the segmentors would never learn (loss.segmentation = 0, segmentor.learn_from_translations = false): give pretrained ones with segmentor.init_from, or turn one of those on");
        }
        if self.uses_segmentors() && self.segmentor.ngf == 0 {
            bail!("segmentor.ngf must be at least 1");
        }
        if self.uses_predictor() {
            self.predictor.validate().map_err(anyhow::Error::msg)?;
            if l.guidance > 0.0 && l.prediction == 0.0 {
                bail!("loss.guidance needs a predictor that learns: set loss.prediction > 0 (1 is the paper's)");
            }
        }
        if self.discriminator.conditional && self.uses_cycle() {
            bail!("discriminator.conditional (pix2pix) does not combine with the cycle loss");
        }
        if self.data.pairing == Pairing::Unpaired
            && !self.data.unpaired_pixel_losses
            && (l.l1 > 0.0 || l.gradient_difference > 0.0 || self.discriminator.conditional)
        {
            bail!("data.pairing = \"unpaired\" leaves loss.l1, loss.gradient_difference and a conditional discriminator nothing to compare; use the cycle or nc presets (or set data.unpaired_pixel_losses = true to train them against unrelated targets, as the RegGAN paper's unpaired baseline does)");
        }
        if self.discriminator.conditional && self.train.pool_size > 0 {
            bail!("train.pool_size must be 0 with a conditional discriminator (a pooled fake would meet another x)");
        }
        let o = &self.optim;
        let betas_ok = (0.0..1.0).contains(&o.beta1) && (0.0..1.0).contains(&o.beta2);
        // Written so that NaN fails too.
        let decay_ok = o.weight_decay.is_finite() && o.weight_decay >= 0.0;
        if !betas_ok || !decay_ok {
            bail!("optim.beta1 and optim.beta2 must lie in [0, 1) and optim.weight_decay be >= 0");
        }
        if self.generator.kind == GeneratorKind::Unet
            && self.generator.levels != 0
            && self.generator.levels < 5
        {
            bail!("generator.levels must be at least 5 for the U-Net (0 picks log2 of the image size)");
        }
        if let Some(m) = &self.data.misalign {
            m.check()
                .map_err(|e| anyhow::anyhow!("data.misalign: {e}"))?;
        }
        if self.data.noise_level > medtrans_transforms::MAX_NOISE_LEVEL {
            bail!("data.noise_level must be 0-5");
        }
        let t = &self.train;
        if t.batch_size == 0 || t.epochs == 0 || t.keep_checkpoints == 0 {
            bail!("train.batch_size, train.epochs and train.keep_checkpoints must be at least 1");
        }
        if !(t.loss_scale.is_finite() && t.loss_scale > 0.0) {
            bail!("train.loss_scale must be a finite number > 0 (1: no scaling)");
        }
        if !(t.nan_lr_factor > 0.0 && t.nan_lr_factor < 1.0) {
            bail!("train.nan_lr_factor must lie in (0, 1): a rollback lowers the learning rates");
        }
        if !(self.optim.lr > 0.0 && self.optim.lr.is_finite()) {
            bail!("optim.lr must be > 0");
        }
        if self.generator.in_channels == 0 || self.generator.out_channels == 0 {
            bail!("generator.in_channels and generator.out_channels must be at least 1");
        }
        if self.generator.ngf == 0 || self.discriminator.ndf == 0 {
            bail!("generator.ngf and discriminator.ndf must be at least 1");
        }
        Ok(())
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

/// `a.b.c=value`: value as TOML (number, bool, string, array) or, failing
/// that, as a bare string. Keys are checked when the table is read back.
fn apply_override(table: &mut toml::Table, o: &str) -> Result<()> {
    let Some((key, raw)) = o.split_once('=') else {
        bail!("--set {o:?}: expected key=value, e.g. --set train.epochs=5");
    };
    let key = key.trim();
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    let mut t = table;
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() {
            bail!("--set {o:?}: empty key part");
        }
        if i == parts.len() - 1 {
            t.insert(p.to_string(), value);
            return Ok(());
        }
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        t = entry
            .as_table_mut()
            .with_context(|| format!("--set {o:?}: {p} is a value, not a section"))?;
    }
    Ok(())
}

/// Serde's "unknown field `lrr`, expected one of `lr`, ..." with the
/// closest known name added, so that a typo's fix is one glance away.
pub fn with_suggestion(message: &str) -> String {
    if !message.starts_with("unknown field") && !message.starts_with("unknown variant") {
        return message.to_string();
    }
    let names: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let Some((wrong, known)) = names.split_first() else {
        return message.to_string();
    };
    let best = known
        .iter()
        .map(|k| (edit_distance(wrong, k), *k))
        .min()
        .filter(|(d, k)| *d <= 2.max(k.len() / 3));
    match best {
        Some((_, k)) => format!("{message} (did you mean `{k}`?)"),
        None => message.to_string(),
    }
}

/// Levenshtein distance (insertions, deletions, substitutions).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
