//! NICE-GAN as a translator family (Chen et al., CVPR 2020), as the RegGAN
//! paper's Table 1 trains it (Kid-Liet/Reg-GAN `trainer/NiceTrainer.py`,
//! `Model/NiceGan.py`, `Yaml/Nice.yaml`).
//!
//! Networks (`medtrans_networks::nice`): in C, a discriminator per domain
//! (`nice_D_A`, `nice_D_B`) whose first layers are that domain's encoder,
//! and two decoders: A -> B is `nice_G` on D_A's encoding of x, B -> A is
//! `nice_F` on D_B's encoding of y. The encoders are trained by the
//! discriminator loss alone (NICE-GAN's decoupled training): the generator
//! step passes gradients through them to its translations but never
//! updates them, as their role is the discriminator's. In NC the RegGAN code
//! has no B -> A and so no use for D_A's encoder: `nice_G` has an encoder
//! of its own (`ResnetGenerator2`), and `nice_D_B` is that code's
//! narrower `Discriminator2` (`dis_dim`, replicate padding, a 3x3 global
//! head).
//!
//! Terms and weights (`[options.nice]`, the RegGAN YAML's: adversarial 1,
//! cycle 10, and the identity reconstruction at the cycle's weight 10, as
//! both that code and NICE-GAN's own use):
//! - C (`bidirect = true`): LSGAN on each discriminator's local, global
//!   and CAM outputs for both translations; both cycles (each translation
//!   re-encoded by the other domain's discriminator, then decoded back);
//!   both within-domain reconstructions (a domain's encoding decoded by the
//!   decoder into that domain);
//! - NC (`bidirect = false`): the adversarial term on A -> B alone, as
//!   that code: NICE-GAN needs no within-domain term to train one way.
//!
//! R's terms act on A -> B. Differences from that code: it takes D's step
//! before G's in C, where every family here takes G's first (with
//! `train.regenerate_fake`, D scores A -> B remade after G's step; B -> A
//! as G's step made it); its NC discriminator and translator take a batch
//! of one (their CAM logit flattens the batch), these any batch; its
//! translator's MLP input is sized for 256 px slices only, here for the
//! run's side; and spectral norm's power iteration runs once per optimiser
//! step, not once per forward pass.
use super::{check_values, memo_pair, one_channel, own_adversary_and_cycle};
use crate::config::TrainConfig;
use crate::family::{Family, Options};
use crate::nets::{trained_with, NetSpec, Nets, Role};
use crate::terms::{GeneratorStep, Term};
use burn::tensor::Tensor;
use medtrans_losses::l1;
use medtrans_networks::{
    ms_lsgan, NiceDiscriminator, NiceDiscriminatorConfig, NiceGenerator, NiceGeneratorConfig,
};
use serde::{Deserialize, Serialize};

/// A -> B.
pub const NICE_G: &str = "nice_G";
/// B -> A (C).
pub const NICE_F: &str = "nice_F";
pub const NICE_D_A: &str = "nice_D_A";
pub const NICE_D_B: &str = "nice_D_B";

/// `[options.nice]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NiceOptions {
    /// The encoders' first width (the discriminators' in C, NC's
    /// translator's own); z has twice as many channels, the decoder four
    /// times.
    pub dim: usize,
    /// AdaILN residual blocks of each decoder.
    pub n_blocks: usize,
    /// U-GAT-IT's light MLP (from pooled features) to AdaILN's parameters.
    pub light: bool,
    /// The reference's `n_layers` of each discriminator (at least 6; 7
    /// takes slices of 96 px or more in C, of 64 px in NC).
    pub dis_layers: usize,
    /// NC's discriminator's width (in C the discriminators are the
    /// encoders, of `dim`).
    pub dis_dim: usize,
    /// C (both directions) or NC (A -> B only).
    pub bidirect: bool,
    pub adversarial: f64,
    pub cycle: f64,
    /// Within-domain (identity) reconstruction.
    pub recon: f64,
}

impl Default for NiceOptions {
    fn default() -> Self {
        Self {
            dim: 64,
            n_blocks: 7,
            light: false,
            dis_layers: 7,
            dis_dim: 32,
            bidirect: true,
            adversarial: 1.0,
            cycle: 10.0,
            recon: 10.0,
        }
    }
}

impl NiceOptions {
    fn of(c: &TrainConfig) -> NiceOptions {
        c.options_of("nice").expect("checked at config time")
    }

    fn translator(&self, own_encoder: bool) -> NiceGeneratorConfig {
        NiceGeneratorConfig::new()
            .with_dim(self.dim)
            .with_n_blocks(self.n_blocks)
            .with_light(self.light)
            .with_own_encoder(own_encoder)
    }

    /// C's discriminators (`Discriminator`) or NC's (`Discriminator2`).
    fn discriminator(&self) -> NiceDiscriminatorConfig {
        let c = NiceDiscriminatorConfig::new().with_n_layers(self.dis_layers);
        if self.bidirect {
            c.with_dim(self.dim)
        } else {
            c.with_dim(self.dis_dim)
                .with_replicate(true)
                .with_global_kernel(3)
        }
    }

    /// A weight that only C's terms take: `pick`'s, or 0 in NC.
    fn in_c(c: &TrainConfig, pick: fn(&NiceOptions) -> f64) -> f64 {
        let o = NiceOptions::of(c);
        if o.bidirect {
            pick(&o)
        } else {
            0.0
        }
    }
}

fn check(c: &TrainConfig) -> Result<(), String> {
    let o: NiceOptions = c.options_of("nice")?;
    check_values(
        "nice",
        &[("dim", o.dim), ("dis_dim", o.dis_dim)],
        &[
            ("adversarial", o.adversarial),
            ("cycle", o.cycle),
            ("recon", o.recon),
        ],
    )?;
    if o.bidirect && o.adversarial == 0.0 && (o.cycle > 0.0 || o.recon > 0.0) {
        return Err("options.nice.adversarial = 0 with bidirect = true: C's encoders are its discriminators' first layers and learn from the adversarial loss alone, so they would stay random; give adversarial a weight".into());
    }
    if o.dis_layers < 6 {
        return Err(format!(
            "options.nice.dis_layers = {} is below NICE-GAN's least, 6 (its local head needs the encoder's 2 layers and 4 more)",
            o.dis_layers
        ));
    }
    Ok(())
}

fn fits(c: &TrainConfig, side: usize) -> Result<(), String> {
    let o: NiceOptions = c.options_of("nice")?;
    one_channel(c, "NICE-GAN")?;
    o.translator(!o.bidirect)
        .fits(side)
        .map_err(|e| format!("options.nice: {e}"))?;
    o.discriminator()
        .fits(side)
        .map_err(|e| format!("options.nice: {e}"))
}

fn discriminator<'n>(nets: &'n Nets, name: &str) -> &'n NiceDiscriminator {
    nets.get(name)
        .unwrap_or_else(|| panic!("NICE-GAN's terms run with {name}"))
}

fn translator<'n>(nets: &'n Nets, name: &str) -> &'n NiceGenerator {
    nets.get(name)
        .unwrap_or_else(|| panic!("NICE-GAN's terms run with {name}"))
}

/// A discriminator with its weights frozen: the generator step's gradients
/// reach its input only.
fn frozen(nets: &Nets, name: &str) -> NiceDiscriminator {
    nets.frozen(name)
}

/// A real image's encoding by its domain's discriminator: a constant of
/// G's step.
fn real_z(s: &mut GeneratorStep<'_>, d: &'static str) -> Tensor<4> {
    let key = if d == NICE_D_A {
        "nice_z_a"
    } else {
        "nice_z_b"
    };
    s.memo(key, |s| {
        let img = if d == NICE_D_A {
            s.x.clone()
        } else {
            s.y.clone()
        };
        frozen(s.nets, d).encoder.forward(img).0.detach()
    })
}

/// B -> A: F on D_B's encoding of y; also what D_A scores.
fn x_ba(s: &mut GeneratorStep<'_>) -> Tensor<4> {
    s.memo("nice_x_ba", |s| {
        let z = real_z(s, NICE_D_B);
        let x_ba = translator(s.nets, NICE_F).decode(z);
        s.set_fake_a(x_ba.clone());
        x_ba
    })
}

/// A translation's (encoding, CAM logit) under the other domain's frozen
/// discriminator: A -> B under D_B, B -> A under D_A. Made once per step
/// for the adversarial and the cycle terms.
fn fake_code(s: &mut GeneratorStep<'_>, d: &'static str) -> (Tensor<4>, Tensor<4>) {
    let keys = if d == NICE_D_B {
        ["nice_fake_b_z", "nice_fake_b_cam"]
    } else {
        ["nice_fake_a_z", "nice_fake_a_cam"]
    };
    memo_pair(s, keys, |s| {
        let fake = if d == NICE_D_B {
            s.fake_b.clone()
        } else {
            x_ba(s)
        };
        frozen(s.nets, d).encoder.forward(fake)
    })
}

/// G's LSGAN term against discriminator `d`: local, global and CAM
/// outputs all pushed to "real".
fn adversarial(s: &mut GeneratorStep<'_>, d: &'static str) -> Tensor<1> {
    let (z, cam) = fake_code(s, d);
    let [local, global] = frozen(s.nets, d).classify(z);
    ms_lsgan(vec![local, global, cam], true)
}

/// A discriminator's own LSGAN loss over its three outputs.
fn d_loss(nets: &Nets, d: &str, real: Tensor<4>, fake: Tensor<4>) -> Tensor<1> {
    let d = discriminator(nets, d);
    ms_lsgan(d.forward(real), true) + ms_lsgan(d.forward(fake), false)
}

const fn net(
    name: &'static str,
    role: Role,
    build: fn(&TrainConfig, usize, &burn::tensor::Device) -> Box<dyn crate::nets::NetEntry>,
) -> NetSpec {
    NetSpec {
        name,
        role,
        check_data: None,
        build,
    }
}

/// C's networks beyond A -> B's: both discriminators (encoders) and F.
const BOTH_WAYS: &[&str] = &[NICE_D_A, NICE_D_B, NICE_F];

/// NICE-GAN's family.
pub const NICE: Family = Family {
    name: "nice",
    about:
        "NICE-GAN (Chen et al. 2020): discriminators whose first layers encode for the translators",
    networks: &[
        net(NICE_G, Role::Generator, |c, size, d| {
            let o = NiceOptions::of(c);
            if !o.light && size > 256 {
                tracing::warn!("NICE-GAN's decoder MLP reads every position of the encoding: at {size} px its first layer alone has {} M parameters per decoder; options.nice.light = true pools first", (size / 4).pow(2) * 16 * o.dim * o.dim / 1_000_000);
            }
            let g = o.translator(!o.bidirect).init(size, d);
            trained_with(NICE_G, g, &c.optim, NiceGenerator::refreshed)
        }),
        net(NICE_F, Role::Generator, |c, size, d| {
            let g = NiceOptions::of(c).translator(false).init(size, d);
            trained_with(NICE_F, g, &c.optim, NiceGenerator::refreshed)
        }),
        net(NICE_D_B, Role::Discriminator, |c, _, d| {
            let net = NiceOptions::of(c).discriminator().init(d);
            trained_with(NICE_D_B, net, &c.optim, NiceDiscriminator::refreshed)
        }),
        net(NICE_D_A, Role::Discriminator, |c, _, d| {
            let net = NiceOptions::of(c).discriminator().init(d);
            trained_with(NICE_D_A, net, &c.optim, NiceDiscriminator::refreshed)
        }),
    ],
    translators: |c| {
        if NiceOptions::of(c).bidirect {
            &[NICE_G, NICE_D_A]
        } else {
            &[NICE_G]
        }
    },
    generator_terms: &[
        Term {
            name: "nice_adv_b",
            weight: |c| NiceOptions::of(c).adversarial,
            needs: &[NICE_D_B],
            brings: &[NICE_D_B],
            compute: |s| adversarial(s, NICE_D_B),
        },
        Term {
            name: "nice_adv_a",
            weight: |c| NiceOptions::in_c(c, |o| o.adversarial),
            needs: &[NICE_D_A, NICE_F],
            brings: &[NICE_D_A, NICE_F],
            compute: |s| adversarial(s, NICE_D_A),
        },
        Term {
            name: "nice_cycle",
            weight: |c| NiceOptions::in_c(c, |o| o.cycle),
            needs: BOTH_WAYS,
            brings: BOTH_WAYS,
            compute: |s| {
                let (z_b, _) = fake_code(s, NICE_D_B);
                let (z_a, _) = fake_code(s, NICE_D_A);
                let aba = translator(s.nets, NICE_F).decode(z_b);
                let bab = translator(s.nets, NICE_G).decode(z_a);
                l1(aba, s.x.clone()) + l1(bab, s.y.clone())
            },
        },
        Term {
            name: "nice_recon",
            weight: |c| NiceOptions::in_c(c, |o| o.recon),
            needs: BOTH_WAYS,
            brings: BOTH_WAYS,
            compute: |s| {
                let (z_a, z_b) = (real_z(s, NICE_D_A), real_z(s, NICE_D_B));
                let aa = translator(s.nets, NICE_F).decode(z_a);
                let bb = translator(s.nets, NICE_G).decode(z_b);
                l1(aa, s.x.clone()) + l1(bb, s.y.clone())
            },
        },
    ],
    discriminator_terms: &[
        Term {
            name: "nice_d_b",
            weight: |c| NiceOptions::of(c).adversarial,
            needs: &[NICE_D_B],
            brings: &[NICE_D_B],
            compute: |s| d_loss(s.nets, NICE_D_B, s.y.clone(), s.fake_b.clone()),
        },
        Term {
            name: "nice_d_a",
            weight: |c| NiceOptions::in_c(c, |o| o.adversarial),
            needs: &[NICE_D_A],
            brings: &[NICE_D_A],
            compute: |s| {
                let fake = s
                    .fake_a
                    .clone()
                    .expect("nice_adv_a made B -> A in G's step");
                d_loss(s.nets, NICE_D_A, s.x.clone(), fake)
            },
        },
    ],
    translate: |nets, x, _| {
        let g = translator(nets, NICE_G);
        match &g.encoder {
            Some(_) => g.forward(x),
            // C: D_A's encoding, frozen (only D's step trains it).
            None => g.decode(frozen(nets, NICE_D_A).encoder.forward(x).0),
        }
    },
    check: |c| own_adversary_and_cycle(c, "NICE-GAN", "nice"),
    fits,
    options: &[Options {
        section: "nice",
        check,
        pin: |c| crate::family::pin_as::<NiceOptions>(c, "nice"),
    }],
    presets: &[
        ("nice-c", include_str!("../../../../configs/nice/c.toml")),
        (
            "nice-c+r",
            include_str!("../../../../configs/nice/c+r.toml"),
        ),
        ("nice-nc", include_str!("../../../../configs/nice/nc.toml")),
        (
            "nice-nc+r",
            include_str!("../../../../configs/nice/nc+r.toml"),
        ),
    ],
};
