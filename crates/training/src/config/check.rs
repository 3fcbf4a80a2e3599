//! What a training config must satisfy before a run is built: its family
//! can run its mode, every weight is a weight, every options table has an
//! owner, and the settings agree with each other.
use super::TrainConfig;
use crate::term_options::{GradientDifferenceOptions, GuidedOptions, ShapeOptions};
use anyhow::{bail, Result};
use medtrans_datasets::Pairing;
use medtrans_networks::GeneratorKind;

impl TrainConfig {
    pub(super) fn check(&self) -> Result<()> {
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
            ("cycle", l.cycle),
            ("identity", l.identity),
            ("correction", l.correction),
            ("smoothness", l.smoothness),
            ("discriminator", l.discriminator),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                bail!("loss.{name} must be a finite weight >= 0, not {w}");
            }
        }
        if l.identity > 0.0 && l.cycle == 0.0 {
            bail!("loss.identity is a fraction of loss.cycle, which is 0");
        }
        let shape = ShapeOptions::of(self);
        if shape.weight > 0.0 && !self.uses_cycle() {
            bail!("options.shape.weight needs the cycle (F: B -> A) for its second half; set loss.cycle > 0");
        }
        if self.uses_segmentors() && self.segmentor.classes < 2 {
            bail!("segmentor.classes must be at least 2 (background and one structure)");
        }
        let s = &self.segmentor;
        if shape.weight > 0.0
            && shape.segmentation == 0.0
            && !s.learn_from_translations
            && s.init_from.is_none()
        {
            bail!("the segmentors would never learn (options.shape.segmentation = 0, segmentor.learn_from_translations = false): give pretrained ones with segmentor.init_from, or turn one of those on");
        }
        if self.uses_segmentors() && self.segmentor.ngf == 0 {
            bail!("segmentor.ngf must be at least 1");
        }
        if self.uses_predictor() {
            self.predictor.validate().map_err(anyhow::Error::msg)?;
            let g = GuidedOptions::of(self);
            if g.guidance > 0.0 && g.prediction == 0.0 {
                bail!("options.guided.guidance needs a predictor that learns: set options.guided.prediction > 0 (1 is the paper's)");
            }
        }
        if self.discriminator.conditional && self.uses_cycle() {
            bail!("discriminator.conditional (pix2pix) does not combine with the cycle loss");
        }
        if self.data.pairing == Pairing::Unpaired
            && !self.data.unpaired_pixel_losses
            && (l.l1 > 0.0
                || GradientDifferenceOptions::of(self).weight > 0.0
                || self.discriminator.conditional)
        {
            bail!("data.pairing = \"unpaired\" leaves loss.l1, options.gradient_difference.weight and a conditional discriminator nothing to compare; use the cycle or nc presets (or set data.unpaired_pixel_losses = true to train them against unrelated targets, as the RegGAN paper's unpaired baseline does)");
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
}
