//! Translator families: how a batch of domain A becomes a translation into
//! domain B, which networks that takes, and the loss terms that come with
//! them. The training step (`GeneratorStep`) and inference (`translate`,
//! `evaluate`, `predict`, the demo) both go through the run's family, so a
//! new generator family (UNIT, MUNIT, NICE-GAN) is its own file and one
//! [`register`] call: its networks, its terms, its `translate`.
//!
//! A network belongs to the step its role names (`nets::Role`), whoever
//! uses it: a family may use a discriminator-role network in its
//! translation (NICE-GAN's encoder is the discriminator's first layers);
//! the generator step's gradients pass through it to the generator's
//! weights, and only the discriminator step updates it.
use crate::config::TrainConfig;
use crate::nets::{trained, NetSpec, Nets, Role, F, G};
use crate::terms::{generator, DiscriminatorTerm, GeneratorTerm};
use anyhow::{bail, Result};
use burn::tensor::Tensor;
use rand_chacha::ChaCha8Rng;
use std::sync::RwLock;

/// A translator family.
pub struct Family {
    /// Its name in `family = "..."` of a config.
    pub name: &'static str,
    /// One line for `--help` and errors: what it is and which paper.
    pub about: &'static str,
    /// The networks it brings, built before the shared ones (D, R, ...) in
    /// this order: building draws initial weights from the seeded device,
    /// so the order is part of a run's trajectory.
    pub networks: &'static [NetSpec],
    /// The networks its translation reads under a config, all that
    /// inference loads (NICE-GAN's C reads a discriminator's encoder).
    pub translators: fn(&TrainConfig) -> &'static [&'static str],
    /// Its own loss terms, after the shared ones (`terms`).
    pub generator_terms: &'static [GeneratorTerm],
    pub discriminator_terms: &'static [DiscriminatorTerm],
    /// A batch `[N, C, H, W]` of domain A into domain B. `rng` is the
    /// step's stream for this family during training (for random codes,
    /// such as MUNIT's styles) and `None` at inference, which must be
    /// deterministic.
    pub translate: fn(&Nets, Tensor<4>, Option<&mut ChaCha8Rng>) -> Tensor<4>,
    /// What the family cannot do under a config (a mode it does not
    /// support, settings that contradict each other): the reason, naming
    /// the field.
    pub check: fn(&TrainConfig) -> std::result::Result<(), String>,
    /// Whether its networks take one-channel square slices of this side
    /// (a generator's down-sampling, a style code's size): the reason,
    /// naming the field, when they do not.
    pub fits: fn(&TrainConfig, usize) -> std::result::Result<(), String>,
    /// The config tables it owns (`[options.NAME]`): its architecture's
    /// sizes and its own terms' weights.
    pub options: &'static [Options],
    /// Its modes as presets, (mode name, TOML), beside the shipped ones
    /// (`config::presets`): `medtrans train --mode NAME`.
    pub presets: &'static [(&'static str, &'static str)],
}

/// A config table a family or a term owns: `[options.SECTION]` in a
/// config, `--set options.SECTION.KEY=VALUE` on the command line. The owner
/// reads it with `TrainConfig::options_of::<ItsType>(SECTION)` (its type
/// gives the defaults and refuses unknown keys); `check` runs at config
/// time, also when the table is absent, and names the key it refuses.
pub struct Options {
    pub section: &'static str,
    pub check: fn(&TrainConfig) -> std::result::Result<(), String>,
    /// The table in full, defaults filled in: a new run's config.toml
    /// records it, so a later change of a default does not change what a
    /// resumed run trains.
    pub pin: fn(&TrainConfig) -> std::result::Result<toml::Table, String>,
}

/// `Options::pin` for an owner whose type is `T`.
pub fn pin_as<T: serde::de::DeserializeOwned + serde::Serialize>(
    c: &TrainConfig,
    section: &str,
) -> std::result::Result<toml::Table, String> {
    let full: T = c.options_of(section)?;
    toml::Value::try_from(full)
        .map_err(|e| format!("options.{section}: {e}"))?
        .as_table()
        .cloned()
        .ok_or_else(|| format!("options.{section} is not a table"))
}

impl std::fmt::Debug for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// CycleGAN's family (and pix2pix's, and RegGAN's): a generator G: A -> B,
/// ResNet or U-Net (`generator.kind`), and for cycle modes F: B -> A of the
/// same architecture (Zhu et al. 2017; Isola et al. 2017; Kong et al.
/// 2021). Its cycle, identity and shape terms live with the shared terms,
/// switched on by F's presence.
pub const CYCLEGAN: Family = Family {
    name: "cyclegan",
    about: "ResNet or U-Net generators G (and F for the cycle): pix2pix, CycleGAN, RegGAN",
    networks: &[
        NetSpec {
            name: G,
            role: Role::Generator,
            check_data: None,
            build: |c, size, d| trained(G, c.generator.init(size, d), &c.optim),
        },
        NetSpec {
            name: F,
            role: Role::Generator,
            check_data: None,
            build: |c, size, d| trained(F, c.generator.reversed().init(size, d), &c.optim),
        },
    ],
    translators: |_| &[G],
    generator_terms: &[],
    discriminator_terms: &[],
    translate: |nets, x, _| generator(nets, G).forward(x),
    check: |_| Ok(()),
    fits: cyclegan_fits,
    options: &[],
    // Its modes are the shipped presets (`config::PRESETS`).
    presets: &[],
};

/// CycleGAN's generators: one channel in and out, a side that their
/// down-sampling divides, and 32 px at least for a U-Net of automatic depth.
fn cyclegan_fits(cfg: &TrainConfig, side: usize) -> std::result::Result<(), String> {
    let g = &cfg.generator;
    if (g.in_channels, g.out_channels) != (1, 1) {
        return Err(format!(
            "its slices have one channel, but generator.in_channels = {} and generator.out_channels = {}",
            g.in_channels, g.out_channels
        ));
    }
    let m = g.size_multiple(side);
    if !side.is_multiple_of(m) || side < 16 {
        return Err(format!("{side} px slices do not fit this generator (the side must be a multiple of {m}, at least 16)"));
    }
    if g.kind == medtrans_networks::GeneratorKind::Unet && g.levels == 0 && side.ilog2() < 5 {
        return Err(format!(
            "the U-Net needs slices of at least 32 px; these are {side} px"
        ));
    }
    Ok(())
}

static REGISTRY: RwLock<Vec<&'static Family>> = RwLock::new(Vec::new());

/// Every family: the shipped ones, then those registered.
pub fn all() -> Vec<&'static Family> {
    let mut out = vec![
        &CYCLEGAN,
        &crate::families::unit::UNIT,
        &crate::families::munit::MUNIT,
        &crate::families::nice::NICE,
    ];
    out.extend(
        REGISTRY
            .read()
            .expect("the family registry")
            .iter()
            .copied(),
    );
    out
}

/// Make a family available to configs by its name (for families defined
/// outside this crate, and tests). A name already taken is refused.
pub fn register(family: &'static Family) -> Result<()> {
    if all().iter().any(|f| f.name == family.name) {
        bail!(
            "a translator family named {:?} is already registered",
            family.name
        );
    }
    REGISTRY.write().expect("the family registry").push(family);
    Ok(())
}

/// The family called `name`, or an error listing the known ones.
pub fn get(name: &str) -> Result<&'static Family> {
    let all = all();
    match all.iter().find(|f| f.name == name) {
        Some(f) => Ok(f),
        None => bail!(
            "family = {name:?} is not a translator family; the known ones are {}",
            all.iter()
                .map(|f| format!("{:?} ({})", f.name, f.about))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyclegan_refuses_sizes_and_channels_its_generators_cannot_take() {
        let mut cfg = TrainConfig::default();
        assert_eq!((CYCLEGAN.fits)(&cfg, 64), Ok(()));
        let m = cfg.generator.size_multiple(66);
        let err = (CYCLEGAN.fits)(&cfg, 66).unwrap_err();
        assert!(err.contains(&format!("multiple of {m}")), "{err}");
        cfg.generator.kind = medtrans_networks::GeneratorKind::Unet;
        let err = (CYCLEGAN.fits)(&cfg, 16).unwrap_err();
        assert!(
            err.contains("U-Net needs slices of at least 32 px"),
            "{err}"
        );
        cfg.generator.kind = medtrans_networks::GeneratorKind::Resnet;
        cfg.generator.in_channels = 2;
        let err = (CYCLEGAN.fits)(&cfg, 64).unwrap_err();
        assert!(err.contains("generator.in_channels = 2"), "{err}");
    }

    #[test]
    fn a_family_name_is_registered_once() {
        let err = register(&CYCLEGAN).unwrap_err().to_string();
        assert!(err.contains("already registered"), "{err}");
        assert!(get("cyclegan").is_ok());
    }
}
