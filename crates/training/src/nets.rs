//! A run's networks: a named set, each network with its own Adam. Which
//! networks a run has follows from its config ([`NETWORKS`]); everything
//! else (checkpoints, optimiser steps, parameter counts, `bench`) iterates
//! the set and never names a slot.
use crate::adam::NetworkAdam;
use crate::config::{OptimConfig, TrainConfig};
use crate::device::read_f32;
use anyhow::{Context, Result};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, FloatDType, Gradients, Tensor};
use medtrans_datasets::SliceDataset;
use medtrans_networks::{cast_weights, materialize, stable_param_ids, DiscriminatorConfig};
use std::any::Any;
use std::path::Path;

/// The translator A -> B.
pub const G: &str = "G";
/// The translator B -> A (cycle modes).
pub const F: &str = "F";
/// The discriminator of domain B (G's outputs).
pub const D_B: &str = "D_B";
/// The discriminator of domain A (F's outputs).
pub const D_A: &str = "D_A";
/// RegGAN's registration network.
pub const R: &str = "R";
/// The segmentor of domain A (shape consistency).
pub const S_A: &str = "S_A";
/// The segmentor of domain B (shape consistency).
pub const S_B: &str = "S_B";
/// The predictor of domain B (predictor-guided translation).
pub const P: &str = "P";

/// The networks that compute in half precision under `train.precision`
/// (their forward passes cast in and out; see `medtrans_networks::cast_weights`).
/// The segmentors and the predictor stay in f32.
pub const MIXED_PRECISION: &[&str] = &[G, F, D_B, D_A, R];

/// Which loss a network learns from, and at which learning rate: the
/// generator step's weighted sum (translators, R, segmentors) or the
/// discriminator step's (discriminators; the predictor, at its own rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Generator,
    Discriminator,
    Predictor,
}

impl Role {
    /// The learning rate of the networks of this role in `epoch`: the
    /// predictor learns at its own rate (`predictor.lr`), the rest at
    /// `optim.lr`, both on the schedule's decay.
    pub fn lr(self, cfg: &TrainConfig, epoch: usize) -> f64 {
        let base = match self {
            Role::Predictor => cfg.predictor.lr,
            Role::Generator | Role::Discriminator => cfg.optim.lr,
        };
        base * cfg.lr_factor(epoch)
    }

    /// Every role's learning rate times `factor` (a NaN rollback).
    pub fn scale_learning_rates(cfg: &mut TrainConfig, factor: f64) {
        cfg.optim.lr *= factor;
        cfg.predictor.lr *= factor;
    }
}

/// A network's check of the training split for slices of side `w`.
pub type DataCheck = fn(&mut TrainConfig, &SliceDataset, usize) -> Result<()>;

/// One kind of network a run may have: its name (also its checkpoint file
/// stem), its role and how to build it. A run has it when one of its terms
/// brings it ([`networks_of`]), or when it is a translator of the family.
pub struct NetSpec {
    pub name: &'static str,
    pub role: Role,
    pub build: fn(&TrainConfig, usize, &Device) -> Box<dyn NetEntry>,
    /// What it needs of the training split (label maps, per-slice labels)
    /// for slices of side `w`, checked before the run is built; it may fill
    /// in settings it derives from the data (`data_needs`).
    pub check_data: Option<DataCheck>,
}

/// The networks any translator family may be trained with, built after
/// the family's own (`family::Family::networks`) in this order: building
/// draws initial weights from the device's random stream, so the order is
/// part of a seeded run's trajectory. A new shared network is one row here.
pub const NETWORKS: &[NetSpec] = &[
    NetSpec {
        name: D_B,
        role: Role::Discriminator,
        check_data: None,
        build: |c, _, d| {
            // pix2pix's conditional D sees x beside the image.
            let g = &c.generator;
            let channels = g.out_channels + g.in_channels * c.discriminator.conditional as usize;
            trained(D_B, discriminator(c, channels).init(d), &c.optim)
        },
    },
    NetSpec {
        name: D_A,
        role: Role::Discriminator,
        check_data: None,
        build: |c, _, d| {
            let channels = c.generator.in_channels;
            trained(D_A, discriminator(c, channels).init(d), &c.optim)
        },
    },
    NetSpec {
        name: R,
        role: Role::Generator,
        check_data: None,
        build: |c, size, d| {
            let r = c.registration.init(size, c.generator.out_channels, d);
            trained(R, r, &c.optim)
        },
    },
    NetSpec {
        name: S_A,
        role: Role::Generator,
        check_data: Some(crate::data_needs::segmentors),
        build: |c, size, d| {
            let s = c.segmentor.init(size, c.generator.in_channels, d);
            trained(S_A, s, &c.optim)
        },
    },
    NetSpec {
        name: S_B,
        role: Role::Generator,
        check_data: None,
        build: |c, size, d| {
            let s = c.segmentor.init(size, c.generator.out_channels, d);
            trained(S_B, s, &c.optim)
        },
    },
    NetSpec {
        // Last: the other networks' initial weights stay those of the
        // same run without a predictor.
        name: P,
        role: Role::Predictor,
        check_data: Some(crate::data_needs::predictor),
        build: |c, _, d| trained(P, c.predictor.init(c.generator.out_channels, d), &c.optim),
    },
];

fn discriminator(c: &TrainConfig, in_channels: usize) -> DiscriminatorConfig {
    DiscriminatorConfig {
        in_channels,
        ndf: c.discriminator.ndf,
        per_image: c.discriminator.per_image,
    }
}

/// A network and its Adam, stepped together.
pub struct Trained<M: Module> {
    pub net: M,
    pub optim: NetworkAdam,
    pub name: &'static str,
    /// Run on the weights after each optimiser step: state a network keeps
    /// beside its weights (NICE-GAN's spectral-norm estimates).
    pub after_step: fn(M) -> M,
}

/// A network with its Adam (the run's `optim` settings), ready for a
/// [`NetSpec`]'s `build`: parameters materialised, ids stable by name.
pub fn trained<M: Module + 'static>(
    name: &'static str,
    net: M,
    o: &OptimConfig,
) -> Box<dyn NetEntry> {
    trained_with(name, net, o, |m| m)
}

/// [`trained`] with `after_step` run after each optimiser step.
pub fn trained_with<M: Module + 'static>(
    name: &'static str,
    net: M,
    o: &OptimConfig,
    after_step: fn(M) -> M,
) -> Box<dyn NetEntry> {
    let adam = crate::adam::Adam::new(o.beta1 as f32, o.beta2 as f32, o.weight_decay as f32);
    Box::new(Trained {
        net: materialize(stable_param_ids(net, name)),
        optim: NetworkAdam::new(adam),
        name,
        after_step,
    })
}

/// What the set needs of any trained network, whatever its type.
pub trait NetEntry {
    fn name(&self) -> &'static str;
    /// Take this network's gradients out of `grads`, divide them by the
    /// loss scale, and step its Adam.
    fn step(&mut self, lr: f64, grads: &mut Gradients, loss_scale: f64);
    /// The same network with its weights cast to `dtype` inside the
    /// autodiff graph, for one step's passes.
    fn cast_view(&self, dtype: FloatDType) -> Box<dyn NetEntry>;
    /// The same network on the inner (non-autodiff) backend, its Adam
    /// state left behind.
    fn valid(&self) -> Box<dyn NetEntry>;
    fn save(&self, dir: &Path) -> Result<()>;
    /// The weights alone, for inference.
    fn load_weights(&mut self, dir: &Path) -> Result<()>;
    /// Weights and Adam state, to continue training.
    fn load(&mut self, dir: &Path) -> Result<()>;
    fn num_params(&self) -> usize;
    /// Whether every weight is finite (one read from the device).
    fn is_finite(&self) -> Result<bool>;
    /// Move the network (weights and require-grad flags) to `device`.
    fn fork(&mut self, device: &Device);
    fn as_any(&self) -> &dyn Any;
}

/// Sums |w| over every parameter on the device: NaN or Inf anywhere makes
/// the sum non-finite, so one read checks a whole network.
struct AbsSum(Option<Tensor<1>>);

impl ModuleVisitor for AbsSum {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let s = param.val().detach().abs().sum();
        self.0 = Some(match self.0.take() {
            Some(t) => t + s,
            None => s,
        });
    }
}

impl<M: Module + 'static> NetEntry for Trained<M> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn step(&mut self, lr: f64, grads: &mut Gradients, loss_scale: f64) {
        let g = GradientsParams::from_module(grads, &self.net);
        let net = self.optim.step(lr, self.net.clone(), g, 1.0 / loss_scale);
        self.net = (self.after_step)(net);
    }

    fn cast_view(&self, dtype: FloatDType) -> Box<dyn NetEntry> {
        Box::new(Trained {
            net: cast_weights(self.net.clone(), dtype),
            optim: self.optim.clone(),
            name: self.name,
            after_step: self.after_step,
        })
    }

    fn valid(&self) -> Box<dyn NetEntry> {
        Box::new(Trained {
            net: self.net.valid(),
            optim: self.optim.clone(),
            name: self.name,
            after_step: self.after_step,
        })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let p = dir.join(format!("{}.safetensors", self.name));
        self.net
            .save_into(&mut SafetensorsStore::from_file(&p))
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))?;
        let o = dir.join(format!("{}.adam.bpk", self.name));
        self.optim
            .save(&self.net, &o)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", o.display()))
    }

    fn load_weights(&mut self, dir: &Path) -> Result<()> {
        load_weights(
            &mut self.net,
            &dir.join(format!("{}.safetensors", self.name)),
        )?;
        self.net = stable_param_ids(self.net.clone(), self.name);
        Ok(())
    }

    fn load(&mut self, dir: &Path) -> Result<()> {
        self.load_weights(dir)?;
        let o = dir.join(format!("{}.adam.bpk", self.name));
        self.optim = self
            .optim
            .clone()
            .load(&o)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", o.display()))?;
        Ok(())
    }

    fn num_params(&self) -> usize {
        self.net.num_params()
    }

    fn is_finite(&self) -> Result<bool> {
        let mut sum = AbsSum(None);
        self.net.visit(&mut sum);
        match sum.0 {
            Some(t) => Ok(read_f32(t, "checking the weights")?
                .iter()
                .all(|v| v.is_finite())),
            None => Ok(true),
        }
    }

    fn fork(&mut self, device: &Device) {
        self.net = self.net.clone().fork(device);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Where a network for `device` draws its initial weights: always the host
/// (flex, with autodiff when `device` has it). A GPU's random stream is
/// not flex's, so drawing there gave one seed other networks on the GPU
/// than on the CPU, and runs could not be compared step by step; drawn on
/// the host and moved ([`to_device`]), they are the same everywhere. On
/// the CPU this is `device` itself: its runs are unchanged.
pub fn init_device(device: &Device) -> Device {
    if *device == Device::flex() {
        device.clone()
    } else if device.is_autodiff() {
        // A move keeps a tensor's autodiff association: built untracked,
        // the weights would arrive untrainable.
        Device::flex().autodiff()
    } else {
        Device::flex()
    }
}

/// Seed both the run's device and the host that draws initial weights
/// ([`init_device`]) from one seed. A device's random stream is one per
/// process: two runs seeding and drawing at once on two threads would
/// interleave their draws, and neither would get its seed's weights. Hold
/// the guard until the initial weights are drawn.
#[must_use = "the seed holds only while the guard lives"]
pub fn seed_devices(device: &Device, seed: u64) -> std::sync::MutexGuard<'static, ()> {
    static SEEDED: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = SEEDED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    device.seed(seed);
    Device::flex().seed(seed);
    guard
}

/// `net`, built on [`init_device`], moved to `device` (nothing to do on
/// the CPU).
pub fn to_device<M: Module>(net: M, device: &Device) -> M {
    if *device == Device::flex() {
        net
    } else {
        net.fork(device)
    }
}

/// The network inside an entry, when it is an `M`.
pub(crate) fn net_of<M: Module + 'static>(e: &dyn NetEntry) -> &M {
    &e.as_any()
        .downcast_ref::<Trained<M>>()
        .expect("the entry holds this network type")
        .net
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

/// The networks of one run, by name, in [`NETWORKS`] order.
pub struct Nets {
    entries: Vec<(Role, Box<dyn NetEntry>)>,
}

/// The networks a run of `cfg` has: its family's translators, and every
/// network an enabled term brings. A term is enabled when its weight is
/// above zero and the networks it needs but does not bring are there; what
/// one term brings can enable another (the cycle brings F, then F's
/// adversarial term brings D_A), so this repeats until nothing changes.
pub fn networks_of(cfg: &TrainConfig) -> Result<Vec<&'static str>> {
    use crate::terms::{DISCRIMINATOR_TERMS, GENERATOR_TERMS};
    let family = crate::family::get(&cfg.family)?;
    let terms: Vec<(f64, &[&str], &[&'static str])> = [GENERATOR_TERMS, family.generator_terms]
        .iter()
        .flat_map(|t| t.iter().map(|t| ((t.weight)(cfg), t.needs, t.brings)))
        .chain(
            [DISCRIMINATOR_TERMS, family.discriminator_terms]
                .iter()
                .flat_map(|t| t.iter().map(|t| ((t.weight)(cfg), t.needs, t.brings))),
        )
        .collect();
    let mut have: Vec<&'static str> = (family.translators)(cfg).to_vec();
    loop {
        let before = have.len();
        for (weight, needs, brings) in &terms {
            let ready = needs.iter().all(|n| have.contains(n) || brings.contains(n));
            if *weight > 0.0 && ready {
                for b in *brings {
                    if !have.contains(b) {
                        have.push(b);
                    }
                }
            }
        }
        if have.len() == before {
            return Ok(have);
        }
    }
}

impl Nets {
    /// Build every network the config calls for, for `size` px images: the
    /// family's, then the shared ones.
    pub fn new(cfg: &TrainConfig, size: usize, device: &Device) -> Result<Self> {
        Self::build(cfg, size, device, |_| true)
    }

    /// Only the networks called `names` (those the config has), e.g. the
    /// translators inference needs.
    pub fn only(cfg: &TrainConfig, size: usize, device: &Device, names: &[&str]) -> Result<Self> {
        Self::build(cfg, size, device, |n| names.contains(&n))
    }

    fn build(
        cfg: &TrainConfig,
        size: usize,
        device: &Device,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Self> {
        let family = crate::family::get(&cfg.family)?;
        let have = networks_of(cfg)?;
        let host = init_device(device);
        let entries = family
            .networks
            .iter()
            .chain(NETWORKS)
            .filter(|s| keep(s.name) && have.contains(&s.name))
            .map(|s| {
                let mut net = (s.build)(cfg, size, &host);
                if host != *device {
                    net.fork(device);
                }
                (s.role, net)
            })
            .collect();
        Ok(Self { entries })
    }

    /// The networks called `names` on the inner (non-autodiff) backend:
    /// what a translation outside the training graph runs on (a family's
    /// translators, not the whole run).
    pub fn valid_of(&self, names: &[&str]) -> Nets {
        let entries = self
            .entries
            .iter()
            .filter(|(_, e)| names.contains(&e.name()))
            .map(|(role, e)| (*role, e.valid()))
            .collect();
        Nets { entries }
    }

    /// Whether any network learns in the step of `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.entries.iter().any(|(r, _)| *r == role)
    }

    /// The network called `name`, if the run has it and it is an `M`.
    pub fn get<M: Module + 'static>(&self, name: &str) -> Option<&M> {
        self.entries
            .iter()
            .find(|(_, e)| e.name() == name)
            .and_then(|(_, e)| e.as_any().downcast_ref::<Trained<M>>())
            .map(|t| &t.net)
    }

    /// A copy of the network `name` with its weights frozen: a step that
    /// is not its own needs gradients through it to its input only (D in
    /// G's step, P's guidance, NICE-GAN's encoders). Safe because networks
    /// are materialised when built.
    pub fn frozen<M: Module + 'static>(&self, name: &str) -> M {
        self.get::<M>(name)
            .unwrap_or_else(|| panic!("terms needing {name} run with {name}"))
            .clone()
            .no_grad()
    }

    pub fn has(&self, name: &str) -> bool {
        self.entries.iter().any(|(_, e)| e.name() == name)
    }

    /// Names, in building order.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|(_, e)| e.name()).collect()
    }

    /// Parameters per network.
    pub fn num_params(&self) -> Vec<(&'static str, usize)> {
        self.entries
            .iter()
            .map(|(_, e)| (e.name(), e.num_params()))
            .collect()
    }

    /// Step every network of `role` on its gradients in `grads`, which
    /// came from a loss multiplied by `loss_scale`.
    pub fn step(&mut self, role: Role, lr: f64, grads: &mut Gradients, loss_scale: f64) {
        for (r, e) in &mut self.entries {
            if *r == role {
                e.step(lr, grads, loss_scale);
            }
        }
    }

    /// The same networks for one step's passes, those of
    /// [`MIXED_PRECISION`] computing in `dtype` (see
    /// `medtrans_networks::cast_weights`). Gradients through the view reach
    /// these networks' weights, so [`Nets::step`] is taken on `self`.
    pub fn cast_view(&self, dtype: FloatDType) -> Nets {
        let entries = self
            .entries
            .iter()
            .map(|(role, e)| {
                let d = if MIXED_PRECISION.contains(&e.name()) {
                    dtype
                } else {
                    FloatDType::F32
                };
                (*role, e.cast_view(d))
            })
            .collect();
        Nets { entries }
    }

    /// The first network holding a NaN or Inf weight, if any.
    pub fn non_finite(&self) -> Result<Option<&'static str>> {
        for (_, e) in &self.entries {
            if !e.is_finite()? {
                return Ok(Some(e.name()));
            }
        }
        Ok(None)
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        self.entries.iter().try_for_each(|(_, e)| e.save(dir))
    }

    /// Weights and Adam states from a checkpoint folder.
    pub fn load(&mut self, dir: &Path) -> Result<()> {
        for (_, e) in &mut self.entries {
            let name = e.name();
            e.load(dir).with_context(|| format!("loading {name}"))?;
        }
        Ok(())
    }

    /// Pretrained weights the config names, before training: the
    /// segmentors of `segmentor.init_from`.
    pub fn load_pretrained(&mut self, cfg: &TrainConfig) -> Result<()> {
        if let (true, Some(dir)) = (cfg.uses_segmentors(), &cfg.segmentor.init_from) {
            let ckpt = crate::checkpoint::resolve_checkpoint(dir).context("segmentor.init_from")?;
            self.load_weights_of(&[S_A, S_B], &ckpt)?;
        }
        Ok(())
    }

    /// The weights of the networks called `names` (those the run has) from
    /// a checkpoint folder, e.g. pretrained segmentors.
    pub fn load_weights_of(&mut self, names: &[&str], dir: &Path) -> Result<()> {
        for (_, e) in &mut self.entries {
            let name = e.name();
            if names.contains(&name) {
                e.load_weights(dir)
                    .with_context(|| format!("loading {name} from {}", dir.display()))?;
            }
        }
        Ok(())
    }

    /// Weights alone from a checkpoint folder.
    pub fn load_weights(&mut self, dir: &Path) -> Result<()> {
        for (_, e) in &mut self.entries {
            let name = e.name();
            e.load_weights(dir)
                .with_context(|| format!("loading {name}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod brings_tests {
    use super::*;

    fn networks(mode: &str, set: &[&str]) -> Vec<&'static str> {
        let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
        let mut n = networks_of(&TrainConfig::preset(mode, &set).unwrap()).unwrap();
        n.sort_unstable();
        n
    }

    #[test]
    fn a_run_has_the_networks_its_terms_bring() {
        assert_eq!(networks("pix2pix", &[]), [D_B, G]);
        assert_eq!(networks("nc", &[]), [D_B, G]);
        assert_eq!(networks("reggan", &[]), [D_B, G, R]);
        assert_eq!(networks("cycle", &[]), [D_A, D_B, F, G]);
        assert_eq!(networks("asymmetric", &[]), [D_A, D_B, F, G]);
        assert_eq!(networks("cycle+reg", &[]), [D_A, D_B, F, G, R]);
        assert_eq!(networks("guided", &[]), [D_A, D_B, F, G, P]);
        // The shape loss brings the segmentors, as their own loss does.
        let shape = networks("cycle", &["options.shape.weight=1.0"]);
        assert_eq!(shape, [D_A, D_B, F, G, S_A, S_B]);
        assert_eq!(
            networks("cycle", &["options.shape.segmentation=1.0"]),
            shape
        );
        // Without the adversarial weight no discriminator comes; without
        // the cycle no F, and so no D_A either.
        assert_eq!(networks("reggan", &["loss.adversarial=0.0"]), [G, R]);
        assert_eq!(
            networks("cycle", &["loss.cycle=0.0", "loss.identity=0.0"]),
            [D_B, G]
        );
        // Smoothness alone still brings R (its field is what it smooths).
        assert_eq!(networks("reggan", &["loss.correction=0.0"]), [D_B, G, R]);
    }
}
