//! MUNIT as a translator family (Huang et al., ECCV 2018), as the RegGAN
//! paper's Table 1 trains it (Kid-Liet/Reg-GAN `trainer/MunitTrainer.py`,
//! `Model/Munit.py`, `Yaml/Munit.yaml`).
//!
//! Networks: a generator per domain (`munit_A`, `munit_B`: content and
//! style encoders, an AdaIN decoder and its MLP; nothing shared) and UNIT's
//! multi-scale LSGAN discriminator per domain (`munit_D_B`, and
//! `munit_D_A` in C). A -> B is B's decoder on A's content in a style code:
//! in training a random one (unit Gaussian, fresh each step), and at
//! inference (`translate`, `evaluate`, validation) the prior's mean, the
//! zero code, so that a translation is deterministic. (The RegGAN code
//! samples a random style at test time too.)
//!
//! Terms and weights (`[options.munit]`, the RegGAN code's, equal to
//! MUNIT's defaults: adversarial 1, image reconstruction 10, style and
//! content reconstruction 1 each; no cycle term, whose weight is 0 in
//! both codes):
//! - C (`bidirect = true`): adversarial on both translations, both
//!   within-domain reconstructions, both styles and both contents
//!   recovered from the translations;
//! - NC (`bidirect = false`): what that code keeps without the cycle: the
//!   adversarial term on A -> B, both reconstructions, and A's style and
//!   content recovered (B -> A is still made, without an adversary). That
//!   code weights NC+R's adversarial term by the cycle weight (10) and
//!   NC's by 1; here both take `adversarial`, so NC and NC+R differ by R
//!   alone.
//!
//! R's terms act on the training translation (random style), as in that
//! code. In C, D_A scores B -> A as G's step made it, before G's update
//! (D_B scores A -> B remade after it, with `train.regenerate_fake`), where
//! that code remakes both.
use super::{
    check_values, frozen_scores, gaussian, ms_d_loss, one_channel, own_adversary_and_cycle,
};
use crate::config::TrainConfig;
use crate::family::{Family, Options};
use crate::nets::{trained, NetSpec, Nets, Role};
use crate::terms::{GeneratorStep, Term};
use burn::tensor::Tensor;
use medtrans_losses::l1;
use medtrans_networks::{ms_lsgan, MsDiscriminatorConfig, MunitConfig, MunitGenerator};
use serde::{Deserialize, Serialize};

pub const MUNIT_A: &str = "munit_A";
pub const MUNIT_B: &str = "munit_B";
pub const MUNIT_D_A: &str = "munit_D_A";
pub const MUNIT_D_B: &str = "munit_D_B";

/// `[options.munit]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MunitOptions {
    pub dim: usize,
    pub n_downsample: usize,
    pub n_res: usize,
    pub style_dim: usize,
    pub mlp_dim: usize,
    pub dis_dim: usize,
    pub dis_layers: usize,
    pub dis_scales: usize,
    /// C (both directions) or NC (A -> B only).
    pub bidirect: bool,
    pub adversarial: f64,
    /// Within-domain image reconstruction.
    pub recon_x: f64,
    /// Style code recovered from a translation.
    pub recon_s: f64,
    /// Content code recovered from a translation.
    pub recon_c: f64,
}

impl Default for MunitOptions {
    fn default() -> Self {
        Self {
            dim: 64,
            n_downsample: 2,
            n_res: 4,
            style_dim: 8,
            mlp_dim: 256,
            dis_dim: 64,
            dis_layers: 4,
            dis_scales: 3,
            bidirect: true,
            adversarial: 1.0,
            recon_x: 10.0,
            recon_s: 1.0,
            recon_c: 1.0,
        }
    }
}

impl MunitOptions {
    fn of(c: &TrainConfig) -> MunitOptions {
        c.options_of("munit").expect("checked at config time")
    }

    fn generator(&self) -> MunitConfig {
        MunitConfig::new()
            .with_dim(self.dim)
            .with_n_downsample(self.n_downsample)
            .with_n_res(self.n_res)
            .with_style_dim(self.style_dim)
            .with_mlp_dim(self.mlp_dim)
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
    let o: MunitOptions = c.options_of("munit")?;
    check_values(
        "munit",
        &[
            ("dim", o.dim),
            ("n_res", o.n_res),
            ("style_dim", o.style_dim),
            ("mlp_dim", o.mlp_dim),
            ("dis_dim", o.dis_dim),
            ("dis_layers", o.dis_layers),
            ("dis_scales", o.dis_scales),
        ],
        &[
            ("adversarial", o.adversarial),
            ("recon_x", o.recon_x),
            ("recon_s", o.recon_s),
            ("recon_c", o.recon_c),
        ],
    )
}

fn family_check(c: &TrainConfig) -> Result<(), String> {
    own_adversary_and_cycle(c, "MUNIT", "munit")
}

fn fits(c: &TrainConfig, side: usize) -> Result<(), String> {
    let o: MunitOptions = c.options_of("munit")?;
    one_channel(c, "MUNIT")?;
    o.generator()
        .fits(side)
        .map_err(|e| format!("options.munit: {e}"))?;
    o.discriminator()
        .fits(side)
        .map_err(|e| format!("options.munit: {e}"))?;
    Ok(())
}

fn generator<'n>(nets: &'n Nets, name: &str) -> &'n MunitGenerator {
    nets.get(name)
        .unwrap_or_else(|| panic!("MUNIT's terms run with {name}"))
}

/// A style code per image of `x`: random from `rng`, or the prior's mean.
fn style_for(
    g: &MunitGenerator,
    x: &Tensor<4>,
    rng: Option<&mut rand_chacha::ChaCha8Rng>,
) -> Tensor<4> {
    let [n, ..] = x.dims();
    let zero = Tensor::zeros([n, g.style_dim(), 1, 1], &x.device());
    match rng {
        Some(rng) => gaussian(&zero, rng),
        None => zero,
    }
}

/// The step's codes, each made once: A's content, B's content, and the
/// random styles (B's drawn from the family's stream, as `translate` drew
/// it for G(x)).
fn c_a(s: &mut GeneratorStep<'_>) -> Tensor<4> {
    s.memo("munit_c_a", |s| {
        generator(s.nets, MUNIT_A).content.forward(s.x.clone())
    })
}

fn c_b(s: &mut GeneratorStep<'_>) -> Tensor<4> {
    s.memo("munit_c_b", |s| {
        generator(s.nets, MUNIT_B).content.forward(s.y.clone())
    })
}

fn random_style(s: &mut GeneratorStep<'_>, of: &'static str, stream: &'static str) -> Tensor<4> {
    s.memo(of, |s| {
        let g = generator(s.nets, MUNIT_A);
        style_for(g, &s.x, Some(&mut s.ctx.rng(stream)))
    })
}

fn s_a(s: &mut GeneratorStep<'_>) -> Tensor<4> {
    random_style(s, "munit_s_a", "munit_s_a")
}

fn s_b(s: &mut GeneratorStep<'_>) -> Tensor<4> {
    random_style(s, "munit_s_b", "munit")
}

/// B -> A in a random A style; also what D_A scores.
fn x_ba(s: &mut GeneratorStep<'_>) -> Tensor<4> {
    s.memo("munit_x_ba", |s| {
        let (c, st) = (c_b(s), s_a(s));
        let x_ba = generator(s.nets, MUNIT_A).decode(c, st);
        s.set_fake_a(x_ba.clone());
        x_ba
    })
}

/// MUNIT's family.
pub const MUNIT: Family = Family {
    name: "munit",
    about: "MUNIT (Huang et al. 2018): content and style codes per domain, AdaIN decoders, multi-scale LSGAN discriminators",
    networks: &[
        NetSpec {
            name: MUNIT_A,
            role: Role::Generator,
            check_data: None,
            build: |c, _, d| trained(MUNIT_A, MunitOptions::of(c).generator().init(d), &c.optim),
        },
        NetSpec {
            name: MUNIT_B,
            role: Role::Generator,
            check_data: None,
            build: |c, _, d| trained(MUNIT_B, MunitOptions::of(c).generator().init(d), &c.optim),
        },
        NetSpec {
            name: MUNIT_D_B,
            role: Role::Discriminator,
            check_data: None,
            build: |c, _, d| trained(MUNIT_D_B, MunitOptions::of(c).discriminator().init(d), &c.optim),
        },
        NetSpec {
            name: MUNIT_D_A,
            role: Role::Discriminator,
            check_data: None,
            build: |c, _, d| trained(MUNIT_D_A, MunitOptions::of(c).discriminator().init(d), &c.optim),
        },
    ],
    translators: |_| &[MUNIT_A, MUNIT_B],
    generator_terms: &[
        Term {
            name: "munit_adv_b",
            weight: |c| MunitOptions::of(c).adversarial,
            needs: &[MUNIT_D_B],
            brings: &[MUNIT_D_B],
            compute: |s| ms_lsgan(frozen_scores(s.nets, MUNIT_D_B, s.fake_b.clone()), true),
        },
        Term {
            name: "munit_adv_a",
            weight: |c| MunitOptions::of(c).adversarial_a(),
            needs: &[MUNIT_D_A],
            brings: &[MUNIT_D_A],
            compute: |s| {
                let x_ba = x_ba(s);
                ms_lsgan(frozen_scores(s.nets, MUNIT_D_A, x_ba), true)
            },
        },
        Term {
            name: "munit_recon_x",
            weight: |c| MunitOptions::of(c).recon_x,
            needs: &[],
            brings: &[],
            compute: |s| {
                let (ga, gb) = (generator(s.nets, MUNIT_A), generator(s.nets, MUNIT_B));
                let (ca, cb) = (c_a(s), c_b(s));
                let a = ga.decode(ca, ga.style.forward(s.x.clone()));
                let b = gb.decode(cb, gb.style.forward(s.y.clone()));
                l1(a, s.x.clone()) + l1(b, s.y.clone())
            },
        },
        Term {
            name: "munit_recon_s",
            weight: |c| MunitOptions::of(c).recon_s,
            needs: &[],
            brings: &[],
            compute: |s| {
                // A's style back from B -> A; in C, B's from A -> B too.
                let (x_ba, sa) = (x_ba(s), s_a(s));
                let mut loss = l1(generator(s.nets, MUNIT_A).style.forward(x_ba), sa);
                if MunitOptions::of(s.cfg).bidirect {
                    let sb = s_b(s);
                    let back = generator(s.nets, MUNIT_B).style.forward(s.fake_b.clone());
                    loss = loss + l1(back, sb);
                }
                loss
            },
        },
        Term {
            name: "munit_recon_c",
            weight: |c| MunitOptions::of(c).recon_c,
            needs: &[],
            brings: &[],
            compute: |s| {
                // A's content back from A -> B; in C, B's from B -> A too.
                let ca = c_a(s);
                let back = generator(s.nets, MUNIT_B).content.forward(s.fake_b.clone());
                let mut loss = l1(back, ca);
                if MunitOptions::of(s.cfg).bidirect {
                    let (x_ba, cb) = (x_ba(s), c_b(s));
                    loss = loss + l1(generator(s.nets, MUNIT_A).content.forward(x_ba), cb);
                }
                loss
            },
        },
    ],
    discriminator_terms: &[
        Term {
            name: "munit_d_b",
            weight: |c| MunitOptions::of(c).adversarial,
            needs: &[MUNIT_D_B],
            brings: &[MUNIT_D_B],
            compute: |s| {
                ms_d_loss(s.nets, MUNIT_D_B, s.y.clone(), s.fake_b.clone())
            },
        },
        Term {
            name: "munit_d_a",
            weight: |c| MunitOptions::of(c).adversarial_a(),
            needs: &[MUNIT_D_A],
            brings: &[MUNIT_D_A],
            compute: |s| {
                let fake = s.fake_a.clone().expect("munit_adv_a made B -> A in G's step");
                ms_d_loss(s.nets, MUNIT_D_A, s.x.clone(), fake)
            },
        },
    ],
    translate: |nets, x, rng| {
        let (ga, gb) = (generator(nets, MUNIT_A), generator(nets, MUNIT_B));
        let style = style_for(gb, &x, rng);
        gb.decode(ga.content.forward(x), style)
    },
    check: family_check,
    fits,
    options: &[Options {
        section: "munit",
        check,
        pin: |c| crate::family::pin_as::<MunitOptions>(c, "munit"),
    }],
    presets: &[
        ("munit-c", include_str!("../../../../configs/munit/c.toml")),
        ("munit-c+r", include_str!("../../../../configs/munit/c+r.toml")),
        ("munit-nc", include_str!("../../../../configs/munit/nc.toml")),
        ("munit-nc+r", include_str!("../../../../configs/munit/nc+r.toml")),
    ],
};
