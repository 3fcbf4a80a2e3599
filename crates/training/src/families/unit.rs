//! UNIT as a translator family (Liu, Breuel and Kautz, NeurIPS 2017), as
//! the RegGAN paper's Table 1 trains it (Kid-Liet/Reg-GAN
//! `trainer/UnitTrainer.py`, `Model/Unit.py`, `Yaml/Unit.yaml`).
//!
//! Networks: an autoencoder per domain (`unit_A`, `unit_B`; no layers
//! shared between them, as in that code) and a multi-scale LSGAN
//! discriminator per domain (`unit_D_B`, and `unit_D_A` in C). A -> B is
//! B's decoder on A's latent: `dec_B(enc_A(x) + n)`, with unit Gaussian
//! noise n in training and none at inference.
//!
//! Terms and weights (`[options.unit]`, the RegGAN code's defaults, equal
//! to UNIT's own: adversarial 1, recon 10, kl 0.01, cycle 10):
//! - C (`bidirect = true`): adversarial on both translations, both
//!   within-domain reconstructions, KL on both latents and on both
//!   re-encoded latents, both cycles A -> B -> A and B -> A -> B;
//! - NC (`bidirect = false`): what that code keeps without the cycle: the
//!   adversarial term on A -> B only, both reconstructions, the A -> B -> A
//!   cycle, KL on both latents and on A's re-encoded one. UNIT cannot do
//!   without its reconstructions: they are what ties a latent to an image.
//!
//! R's terms (`loss.correction`, `loss.smoothness`) act on the training
//! translation `dec_B(enc_A(x) + n)`, as in that code. Two differences
//! from it: the discriminator step scores the same noisy translation the
//! generator step made (with `train.regenerate_fake`, G's after its step,
//! with the same noise) where that code draws new noise; in C, D_A scores
//! B -> A as G's step made it, before G's update, where that code remakes
//! it; and Adam's settings come from `[optim]` as for every family.
use super::{
    check_values, frozen_scores, gaussian as noise, memo_pair, ms_d_loss, one_channel,
    own_adversary_and_cycle,
};
use crate::config::TrainConfig;
use crate::family::{Family, Options};
use crate::nets::{trained, NetSpec, Nets, Role};
use crate::terms::{GeneratorStep, Term};
use burn::tensor::Tensor;
use medtrans_losses::l1;
use medtrans_networks::{ms_lsgan, unit_kl, MsDiscriminatorConfig, UnitAutoencoder, UnitConfig};
use serde::{Deserialize, Serialize};

/// Domain A's autoencoder (the RegGAN code's `netG_A2B`).
pub const UNIT_A: &str = "unit_A";
/// Domain B's autoencoder (`netG_B2A` there).
pub const UNIT_B: &str = "unit_B";
pub const UNIT_D_A: &str = "unit_D_A";
pub const UNIT_D_B: &str = "unit_D_B";

/// `[options.unit]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnitOptions {
    /// Channels of the first encoder layer (doubled per down-sampling).
    pub dim: usize,
    pub n_downsample: usize,
    pub n_res: usize,
    pub dis_dim: usize,
    pub dis_layers: usize,
    pub dis_scales: usize,
    /// C (both directions) or NC (A -> B only).
    pub bidirect: bool,
    pub adversarial: f64,
    /// Within-domain reconstruction.
    pub recon: f64,
    pub kl: f64,
    pub cycle: f64,
}

impl Default for UnitOptions {
    fn default() -> Self {
        Self {
            dim: 64,
            n_downsample: 2,
            n_res: 4,
            dis_dim: 64,
            dis_layers: 4,
            dis_scales: 3,
            bidirect: true,
            adversarial: 1.0,
            recon: 10.0,
            kl: 0.01,
            cycle: 10.0,
        }
    }
}

impl UnitOptions {
    fn of(c: &TrainConfig) -> UnitOptions {
        c.options_of("unit").expect("checked at config time")
    }

    fn autoencoder(&self) -> UnitConfig {
        UnitConfig::new()
            .with_dim(self.dim)
            .with_n_downsample(self.n_downsample)
            .with_n_res(self.n_res)
    }

    fn discriminator(&self) -> MsDiscriminatorConfig {
        MsDiscriminatorConfig::new()
            .with_dim(self.dis_dim)
            .with_n_layer(self.dis_layers)
            .with_num_scales(self.dis_scales)
    }

    /// The B -> A adversarial weight: C's alone.
    fn adversarial_a(&self) -> f64 {
        if self.bidirect {
            self.adversarial
        } else {
            0.0
        }
    }
}

fn check(c: &TrainConfig) -> Result<(), String> {
    let o: UnitOptions = c.options_of("unit")?;
    check_values(
        "unit",
        &[
            ("dim", o.dim),
            ("n_res", o.n_res),
            ("dis_dim", o.dis_dim),
            ("dis_layers", o.dis_layers),
            ("dis_scales", o.dis_scales),
        ],
        &[
            ("adversarial", o.adversarial),
            ("recon", o.recon),
            ("kl", o.kl),
            ("cycle", o.cycle),
        ],
    )
}

fn family_check(c: &TrainConfig) -> Result<(), String> {
    own_adversary_and_cycle(c, "UNIT", "unit")
}

fn fits(c: &TrainConfig, side: usize) -> Result<(), String> {
    let o: UnitOptions = c.options_of("unit")?;
    one_channel(c, "UNIT")?;
    o.autoencoder()
        .fits(side)
        .map_err(|e| format!("options.unit: {e}"))?;
    o.discriminator()
        .fits(side)
        .map_err(|e| format!("options.unit: {e}"))?;
    Ok(())
}

fn autoencoder<'n>(nets: &'n Nets, name: &str) -> &'n UnitAutoencoder {
    nets.get(name)
        .unwrap_or_else(|| panic!("UNIT's terms run with {name}"))
}

/// `enc(img) + noise`, the noise drawn from the step's stream `stream`.
fn sample(
    s: &mut GeneratorStep<'_>,
    enc: &str,
    img: Tensor<4>,
    stream: &str,
) -> (Tensor<4>, Tensor<4>) {
    let h = autoencoder(s.nets, enc).encoder.forward(img);
    let n = noise(&h, &mut s.ctx.rng(stream));
    (h.clone(), h + n)
}

/// A's latent and its noisy sample; the noise comes from the family's
/// stream, so it is the noise `translate` drew for G(x).
fn latent_a(s: &mut GeneratorStep<'_>) -> (Tensor<4>, Tensor<4>) {
    memo_pair(s, ["unit_h_a", "unit_z_a"], |s| {
        sample(s, UNIT_A, s.x.clone(), "unit")
    })
}

/// B's latent and its noisy sample.
fn latent_b(s: &mut GeneratorStep<'_>) -> (Tensor<4>, Tensor<4>) {
    memo_pair(s, ["unit_h_b", "unit_z_b"], |s| {
        sample(s, UNIT_B, s.y.clone(), "unit_b")
    })
}

/// B -> A: A's decoder on B's noisy latent; also what D_A scores.
fn x_ba(s: &mut GeneratorStep<'_>) -> Tensor<4> {
    s.memo("unit_x_ba", |s| {
        let (_, z) = latent_b(s);
        let x_ba = autoencoder(s.nets, UNIT_A).decoder.forward(z);
        s.set_fake_a(x_ba.clone());
        x_ba
    })
}

/// A -> B re-encoded by B's encoder: (its latent, A -> B -> A), made once.
fn a_cycle(s: &mut GeneratorStep<'_>) -> (Tensor<4>, Tensor<4>) {
    memo_pair(s, ["unit_h_a_recon", "unit_aba"], |s| {
        let (h, z) = sample(s, UNIT_B, s.fake_b.clone(), "unit_a_recon");
        (h, autoencoder(s.nets, UNIT_A).decoder.forward(z))
    })
}

/// B -> A re-encoded by A's encoder: (its latent, B -> A -> B), made once.
fn b_cycle(s: &mut GeneratorStep<'_>) -> (Tensor<4>, Tensor<4>) {
    memo_pair(s, ["unit_h_b_recon", "unit_bab"], |s| {
        let x_ba = x_ba(s);
        let (h, z) = sample(s, UNIT_A, x_ba, "unit_b_recon");
        (h, autoencoder(s.nets, UNIT_B).decoder.forward(z))
    })
}

/// UNIT's family.
pub const UNIT: Family = Family {
    name: "unit",
    about: "UNIT (Liu et al. 2017): VAE-style autoencoders per domain, multi-scale LSGAN discriminators",
    networks: &[
        NetSpec {
            name: UNIT_A,
            role: Role::Generator,
            check_data: None,
            build: |c, _, d| trained(UNIT_A, UnitOptions::of(c).autoencoder().init(d), &c.optim),
        },
        NetSpec {
            name: UNIT_B,
            role: Role::Generator,
            check_data: None,
            build: |c, _, d| trained(UNIT_B, UnitOptions::of(c).autoencoder().init(d), &c.optim),
        },
        NetSpec {
            name: UNIT_D_B,
            role: Role::Discriminator,
            check_data: None,
            build: |c, _, d| trained(UNIT_D_B, UnitOptions::of(c).discriminator().init(d), &c.optim),
        },
        NetSpec {
            name: UNIT_D_A,
            role: Role::Discriminator,
            check_data: None,
            build: |c, _, d| trained(UNIT_D_A, UnitOptions::of(c).discriminator().init(d), &c.optim),
        },
    ],
    translators: |_| &[UNIT_A, UNIT_B],
    generator_terms: &[
        Term {
            name: "unit_adv_b",
            weight: |c| UnitOptions::of(c).adversarial,
            needs: &[UNIT_D_B],
            brings: &[UNIT_D_B],
            compute: |s| ms_lsgan(frozen_scores(s.nets, UNIT_D_B, s.fake_b.clone()), true),
        },
        Term {
            name: "unit_adv_a",
            weight: |c| UnitOptions::of(c).adversarial_a(),
            needs: &[UNIT_D_A],
            brings: &[UNIT_D_A],
            compute: |s| {
                let x_ba = x_ba(s);
                ms_lsgan(frozen_scores(s.nets, UNIT_D_A, x_ba), true)
            },
        },
        Term {
            name: "unit_recon",
            weight: |c| UnitOptions::of(c).recon,
            needs: &[],
            brings: &[],
            compute: |s| {
                let (za, zb) = (latent_a(s).1, latent_b(s).1);
                let a = autoencoder(s.nets, UNIT_A).decoder.forward(za);
                let b = autoencoder(s.nets, UNIT_B).decoder.forward(zb);
                l1(a, s.x.clone()) + l1(b, s.y.clone())
            },
        },
        Term {
            name: "unit_kl",
            weight: |c| UnitOptions::of(c).kl,
            needs: &[],
            brings: &[],
            compute: |s| {
                let (ha, hb) = (latent_a(s).0, latent_b(s).0);
                let (ha_recon, _) = a_cycle(s);
                let mut kl = unit_kl(ha) + unit_kl(hb) + unit_kl(ha_recon);
                if UnitOptions::of(s.cfg).bidirect {
                    kl = kl + unit_kl(b_cycle(s).0);
                }
                kl
            },
        },
        Term {
            name: "unit_cycle",
            weight: |c| UnitOptions::of(c).cycle,
            needs: &[],
            brings: &[],
            compute: |s| {
                let (_, aba) = a_cycle(s);
                let mut loss = l1(aba, s.x.clone());
                if UnitOptions::of(s.cfg).bidirect {
                    let (_, bab) = b_cycle(s);
                    loss = loss + l1(bab, s.y.clone());
                }
                loss
            },
        },
    ],
    discriminator_terms: &[
        Term {
            name: "unit_d_b",
            weight: |c| UnitOptions::of(c).adversarial,
            needs: &[UNIT_D_B],
            brings: &[UNIT_D_B],
            compute: |s| {
                ms_d_loss(s.nets, UNIT_D_B, s.y.clone(), s.fake_b.clone())
            },
        },
        Term {
            name: "unit_d_a",
            weight: |c| UnitOptions::of(c).adversarial_a(),
            needs: &[UNIT_D_A],
            brings: &[UNIT_D_A],
            compute: |s| {
                let fake = s.fake_a.clone().expect("unit_adv_a made B -> A in G's step");
                ms_d_loss(s.nets, UNIT_D_A, s.x.clone(), fake)
            },
        },
    ],
    translate: |nets, x, rng| {
        let h = autoencoder(nets, UNIT_A).encoder.forward(x);
        let z = match rng {
            Some(rng) => {
                let n = noise(&h, rng);
                h + n
            }
            None => h,
        };
        autoencoder(nets, UNIT_B).decoder.forward(z)
    },
    check: family_check,
    fits,
    options: &[Options {
        section: "unit",
        check,
        pin: |c| crate::family::pin_as::<UnitOptions>(c, "unit"),
    }],
    presets: &[
        ("unit-c", include_str!("../../../../configs/unit/c.toml")),
        ("unit-c+r", include_str!("../../../../configs/unit/c+r.toml")),
        ("unit-nc", include_str!("../../../../configs/unit/nc.toml")),
        ("unit-nc+r", include_str!("../../../../configs/unit/nc+r.toml")),
    ],
};
