//! The networks of one run and their optimisers. Which exist follows from
//! the config: F and D_A with a cycle loss, R with the correction and
//! smoothness losses, D_B with an adversarial weight.
use crate::config::TrainConfig;
use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use burn::tensor::Gradients;
use medtrans_networks::{
    materialize, stable_param_ids, Discriminator, DiscriminatorConfig, Generator, RegistrationNet,
};
use std::path::Path;

/// A network and its Adam, stepped together.
pub struct Trained<M: Module> {
    pub net: M,
    pub optim: ModuleOptimizer,
    /// File stem in checkpoints: `G`, `F`, `D_A`, `D_B`, `R`.
    pub name: &'static str,
}

impl<M: Module> Trained<M> {
    fn new(net: M, name: &'static str, cfg: &TrainConfig) -> Self {
        let o = &cfg.optim;
        let mut adam = AdamConfig::new()
            .with_beta_1(o.beta1 as f32)
            .with_beta_2(o.beta2 as f32)
            // PyTorch's default; Burn's is 1e-5.
            .with_epsilon(1e-8);
        if o.weight_decay > 0.0 {
            adam = adam.with_weight_decay(Some(WeightDecayConfig::new(o.weight_decay as f32)));
        }
        Self {
            net: materialize(stable_param_ids(net, name)),
            optim: adam.init(),
            name,
        }
    }

    /// Take this network's gradients out of `grads` and step.
    pub fn step(&mut self, lr: f64, grads: &mut Gradients) {
        let g = GradientsParams::from_module(grads, &self.net);
        self.net = self.optim.step(lr, self.net.clone(), g);
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let p = dir.join(format!("{}.safetensors", self.name));
        self.net
            .save_into(&mut SafetensorsStore::from_file(&p))
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))?;
        let o = dir.join(format!("{}.adam.bpk", self.name));
        self.optim
            .save(&o)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", o.display()))
    }

    pub fn load(&mut self, dir: &Path) -> Result<()> {
        load_weights(
            &mut self.net,
            &dir.join(format!("{}.safetensors", self.name)),
        )?;
        self.net = stable_param_ids(self.net.clone(), self.name);
        let o = dir.join(format!("{}.adam.bpk", self.name));
        self.optim = self
            .optim
            .clone()
            .load(&o)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", o.display()))?;
        Ok(())
    }
}

/// Load a network's safetensors, refusing files that do not fit it.
pub fn load_weights<M: ModuleSnapshot>(net: &mut M, path: &Path) -> Result<()> {
    if !path.is_file() {
        anyhow::bail!("{}: no such checkpoint file", path.display());
    }
    let res = net
        .load_from(&mut SafetensorsStore::from_file(path))
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if !res.missing.is_empty() || !res.errors.is_empty() {
        anyhow::bail!(
            "{}: does not match the network in the config (missing {:?}, errors {:?})",
            path.display(),
            res.missing.iter().map(|m| &m.0).collect::<Vec<_>>(),
            res.errors
        );
    }
    Ok(())
}

pub struct Nets {
    pub g: Trained<Generator>,
    pub f: Option<Trained<Generator>>,
    pub d_b: Option<Trained<Discriminator>>,
    pub d_a: Option<Trained<Discriminator>>,
    pub r: Option<Trained<RegistrationNet>>,
}

impl Nets {
    /// Build every network the config calls for, for `size` px images.
    pub fn new(cfg: &TrainConfig, size: usize, device: &Device) -> Self {
        let adv = cfg.loss.adversarial > 0.0;
        let d_cfg = |conditional: bool| DiscriminatorConfig {
            in_channels: if conditional { 2 } else { 1 },
            ndf: cfg.discriminator.ndf,
            per_image: cfg.discriminator.per_image,
        };
        let g = Trained::new(cfg.generator.init(size, device), "G", cfg);
        let f = cfg
            .uses_cycle()
            .then(|| Trained::new(cfg.generator.init(size, device), "F", cfg));
        let d_b = adv.then(|| {
            Trained::new(
                d_cfg(cfg.discriminator.conditional).init(device),
                "D_B",
                cfg,
            )
        });
        let d_a =
            (adv && cfg.uses_cycle()).then(|| Trained::new(d_cfg(false).init(device), "D_A", cfg));
        let r = cfg
            .uses_registration()
            .then(|| Trained::new(cfg.registration.init(size, device), "R", cfg));
        Self { g, f, d_b, d_a, r }
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        self.g.save(dir)?;
        if let Some(n) = &self.f {
            n.save(dir)?;
        }
        if let Some(n) = &self.d_b {
            n.save(dir)?;
        }
        if let Some(n) = &self.d_a {
            n.save(dir)?;
        }
        if let Some(n) = &self.r {
            n.save(dir)?;
        }
        Ok(())
    }

    pub fn load(&mut self, dir: &Path) -> Result<()> {
        self.g.load(dir).context("loading G")?;
        if let Some(n) = &mut self.f {
            n.load(dir).context("loading F")?;
        }
        if let Some(n) = &mut self.d_b {
            n.load(dir).context("loading D_B")?;
        }
        if let Some(n) = &mut self.d_a {
            n.load(dir).context("loading D_A")?;
        }
        if let Some(n) = &mut self.r {
            n.load(dir).context("loading R")?;
        }
        Ok(())
    }
}
