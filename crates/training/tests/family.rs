//! A translator family added from outside the crate, as the next one
//! (UNIT, MUNIT, NICE-GAN) will be: its networks, its terms and its
//! translation in one place, and one registration line. It trains, resumes
//! bit-exactly, translates a volume and is evaluated through the same code
//! as the shipped family, and it shares a network with its discriminator
//! (NICE-GAN's decoupled encoder): the encoder E is part of the toy
//! discriminator and of the translation, and only the discriminator's step
//! updates it.
mod common;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use medtrans_training::family::{register, Family, Options};
use medtrans_training::nets::{trained, NetSpec, Role};
use medtrans_training::terms::Term;
use medtrans_training::{Model, Trainer};
use std::path::Path;

/// One 3x3 convolution.
#[derive(Module, Debug)]
struct Layer {
    conv: Conv2d,
}

impl Layer {
    fn new(cin: usize, cout: usize, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.forward(x)
    }
}

/// The toy's own config table, `[options.toy]`: the family's settings live
/// with the family, not in the shared config.
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
struct ToyOptions {
    /// Channels of E's features.
    features: usize,
}

impl Default for ToyOptions {
    fn default() -> Self {
        Self { features: 8 }
    }
}

fn toy_options(c: &medtrans_training::TrainConfig) -> ToyOptions {
    c.options_of("toy").expect("checked at config time")
}

const E: &str = "toy_E";
const DEC: &str = "toy_Dec";
const HEAD: &str = "toy_D";

fn layer<'n>(nets: &'n medtrans_training::nets::Nets, name: &str) -> &'n Layer {
    nets.get::<Layer>(name).expect("the toy family's networks")
}

/// The toy discriminator: E's features, then a head.
fn toy_scores(nets: &medtrans_training::nets::Nets, img: Tensor<4>, frozen: bool) -> Tensor<4> {
    let (e, h) = (layer(nets, E).clone(), layer(nets, HEAD).clone());
    let (e, h) = if frozen {
        (e.no_grad(), h.no_grad())
    } else {
        (e, h)
    };
    h.forward(relu(e.forward(img)))
}

static TOY: Family = Family {
    name: "toy",
    about: "a test family: an encoder shared with its discriminator, and a decoder",
    networks: &[
        NetSpec {
            name: E,
            // Part of the discriminator: only D's step updates it.
            role: Role::Discriminator,
            check_data: None,
            build: |c, _, d| trained(E, Layer::new(1, toy_options(c).features, d), &c.optim),
        },
        NetSpec {
            name: DEC,
            role: Role::Generator,
            check_data: None,
            build: |c, _, d| trained(DEC, Layer::new(toy_options(c).features, 1, d), &c.optim),
        },
        NetSpec {
            name: HEAD,
            role: Role::Discriminator,
            check_data: None,
            build: |c, _, d| trained(HEAD, Layer::new(toy_options(c).features, 1, d), &c.optim),
        },
    ],
    translators: |_| &[E, DEC],
    generator_terms: &[Term {
        name: "toy_adv",
        weight: |c| c.loss.adversarial,
        needs: &[E, HEAD],
        brings: &[HEAD],
        compute: |s| {
            let scores = toy_scores(s.nets, s.fake_b.clone(), true);
            s.cfg.loss.gan.loss(scores, true)
        },
    }],
    discriminator_terms: &[Term {
        name: "toy_d",
        weight: |c| c.loss.discriminator * c.loss.adversarial,
        needs: &[E, HEAD],
        brings: &[HEAD],
        compute: |s| {
            let gan = s.cfg.loss.gan;
            let real = gan.loss(toy_scores(s.nets, s.y.clone(), false), true);
            real + gan.loss(toy_scores(s.nets, s.fake_b.clone(), false), false)
        },
    }],
    translate: |nets, x, _| {
        let features = relu(layer(nets, E).forward(x));
        layer(nets, DEC).forward(features).tanh()
    },
    check: |c| match c.uses_cycle() {
        true => Err("it has no B -> A translator, so loss.cycle must be 0".into()),
        false => Ok(()),
    },
    // Same-padded 3x3 convolutions take any size.
    fits: |_, _| Ok(()),
    presets: &[],
    options: &[Options {
        section: "toy",
        pin: |c| medtrans_training::family::pin_as::<ToyOptions>(c, "toy"),
        check: |c| match c.options_of::<ToyOptions>("toy")?.features {
            0 => Err("options.toy.features must be at least 1".into()),
            _ => Ok(()),
        },
    }],
};

/// Registered once per test process (the one line a family needs).
fn toy() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| register(&TOY).unwrap());
}

fn config(mode: &str, out: &Path, extra: &[&str]) -> medtrans_training::TrainConfig {
    toy();
    let mut set = vec![
        "family=\"toy\"",
        "train.epochs=2",
        "train.steps_per_epoch=3",
    ];
    set.extend(extra);
    common::small_config(mode, out, &set)
}

/// A network's weights as bytes, from a checkpoint: the safetensors data
/// after its JSON header (whose metadata keys come in any order).
fn weights(run: &Path, name: &str) -> Vec<u8> {
    let b = std::fs::read(run.join(format!("checkpoints/last/{name}.safetensors"))).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    b[8 + n..].to_vec()
}

#[test]
fn a_family_from_outside_trains_resumes_translates_and_is_evaluated() {
    let _lock = common::rng_lock();
    let dir = tempfile::tempdir().unwrap();
    // RegGAN's NC+R: R's correction and smoothness apply to any family's
    // translation; the adversarial terms are the shipped D_B's and the toy's.
    let whole = dir.path().join("whole");
    let mut t = Trainer::new(config("reggan", &whole, &[])).unwrap();
    assert_eq!(
        t.nets.names(),
        vec![E, DEC, HEAD, "D_B", "R"],
        "the family's networks first, then the shared ones it needs"
    );
    t.run(true).unwrap();
    let head = std::fs::read_to_string(whole.join("losses.csv")).unwrap();
    let cols = head.lines().next().unwrap();
    for c in [
        "g_adv",
        "correction",
        "smoothness",
        "toy_adv",
        "d_b",
        "toy_d",
    ] {
        assert!(cols.split(',').any(|x| x == c), "{c} in {cols}");
    }

    // Stopped at step 4 and resumed: the same run.
    let parts = dir.path().join("parts");
    let mut t = Trainer::new(config("reggan", &parts, &["train.stop_at_step=4"])).unwrap();
    t.run(true).unwrap();
    drop(t);
    let mut t = Trainer::resume(&parts, &["train.stop_at_step=0".into()]).unwrap();
    t.run(true).unwrap();
    assert_eq!(
        std::fs::read_to_string(parts.join("losses.csv")).unwrap(),
        head,
        "resuming the toy family changed its trajectory"
    );
    for n in [E, DEC, HEAD, "D_B", "R"] {
        assert_eq!(weights(&whole, n), weights(&parts, n), "{n} after resuming");
    }

    // Inference loads only the translation's networks, through the family.
    let model = Model::load(&whole, "cpu").unwrap();
    let d = common::demo_data();
    let t1 = medtrans_training::inference::read_input(&d.join("t1.nii.gz")).unwrap();
    let mask = medtrans_training::inference::read_input(&d.join("mask.nii.gz")).unwrap();
    let out = model
        .translate_volume(&t1, Some(&mask), 8, &mut |_, _| {})
        .unwrap();
    assert_eq!(out.len(), t1.data.len());
    assert!(out.iter().all(|v| v.is_finite()));
    let test = medtrans_datasets::SliceDataset::open(common::dataset(32), "test").unwrap();
    let scores = model.evaluate(&test, 8).unwrap();
    assert!(!scores.is_empty() && scores.iter().all(|s| s.psnr.is_finite()));
    // The same translation as the trainer's own.
    let xs: Vec<&medtrans_io::Slice> = test.a.iter().take(3).collect();
    let a = model.translate_slices(&xs, 8).unwrap();
    let t = Trainer::resume(&whole, &[]).unwrap();
    let b = t.translate(&xs).unwrap();
    assert_eq!(a, b, "inference and the trainer translate alike");
}

#[test]
fn the_shared_encoder_learns_only_in_the_discriminator_step() {
    let _lock = common::rng_lock();
    let dir = tempfile::tempdir().unwrap();
    // One step each: without the discriminator's terms (loss.discriminator
    // = 0) E must not move, though the generator's loss reaches it; with
    // them it must.
    let step_once = |name: &str, extra: &[&str]| {
        let mut set = vec!["train.epochs=1", "train.steps_per_epoch=1"];
        set.extend(extra);
        let mut t = Trainer::new(config("reggan", &dir.path().join(name), &set)).unwrap();
        let before: Vec<Layer> = [E, DEC].iter().map(|n| layer(&t.nets, n).clone()).collect();
        t.train_step().unwrap();
        let after: Vec<Layer> = [E, DEC].iter().map(|n| layer(&t.nets, n).clone()).collect();
        let moved = |i: usize| {
            let d = (before[i].conv.weight.val() - after[i].conv.weight.val())
                .abs()
                .sum()
                .into_scalar::<f32>();
            d > 0.0
        };
        (moved(0), moved(1))
    };
    assert_eq!(step_once("no_d", &["loss.discriminator=0"]), (false, true));
    assert_eq!(step_once("with_d", &[]), (true, true));
}

#[test]
fn a_family_is_refused_where_it_cannot_run_and_by_an_unknown_name() {
    toy();
    let dir = tempfile::tempdir().unwrap();
    let set = [
        "family=\"toy\"".to_string(),
        format!("data.path={:?}", common::dataset(32).display().to_string()),
        format!("out={:?}", dir.path().display().to_string()),
    ];
    let err = medtrans_training::TrainConfig::preset("cycle", &set)
        .err()
        .unwrap();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("family \"toy\" cannot run mode \"cycle\"") && msg.contains("loss.cycle"),
        "{msg}"
    );
    let err = medtrans_training::TrainConfig::preset("reggan", &["family=\"unitt\"".to_string()])
        .err()
        .unwrap();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("\"unitt\"") && msg.contains("\"cyclegan\"") && msg.contains("\"unit\""),
        "{msg}"
    );
}

#[test]
fn a_family_owns_its_config_table() {
    toy();
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "family=\"toy\"".to_string(),
        format!("data.path={:?}", common::dataset(32).display().to_string()),
        format!("out={:?}", dir.path().display().to_string()),
    ];
    let with = |extra: &str| {
        let mut set = base.to_vec();
        set.push(extra.to_string());
        medtrans_training::TrainConfig::preset("reggan", &set)
    };
    // Its table sizes its networks, with the family's defaults.
    let cfg = with("options.toy.features=4").unwrap();
    assert_eq!(toy_options(&cfg).features, 4);
    let device = medtrans_training::device_from_name("cpu").unwrap();
    // Building draws from the process's one random stream: not while a
    // seeded test builds its own.
    let _lock = common::rng_lock();
    let nets = medtrans_training::nets::Nets::new(&cfg, 32, &device).unwrap();
    let weight = layer(&nets, E).conv.weight.val();
    assert_eq!(weight.dims(), [4, 1, 3, 3]);
    // A misspelt key, a bad value and a table nobody owns are refused,
    // each named.
    let err = format!("{:#}", with("options.toy.featurs=4").err().unwrap());
    assert!(
        err.contains("options.toy") && err.contains("`features`"),
        "{err}"
    );
    let err = format!("{:#}", with("options.toy.features=0").err().unwrap());
    assert!(
        err.contains("options.toy.features must be at least 1"),
        "{err}"
    );
    let err = format!("{:#}", with("options.unit.kl=0.01").err().unwrap());
    assert!(
        err.contains("[options.unit]") && err.contains("family \"toy\"") && err.contains("toy"),
        "{err}"
    );
}
