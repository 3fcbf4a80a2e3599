//! The Table 1 families (families/unit.rs, munit.rs, nice.rs) in their
//! four modes at a tiny size: the networks each mode brings, the loss terms
//! finite and learning, a save -> load -> translate round trip, a bit-exact
//! resume, and what each refuses.
mod common;
use common::term;
use medtrans_datasets::SliceDataset;
use medtrans_training::nets::R;
use medtrans_training::{Model, TrainConfig, Trainer};
use std::path::Path;

/// MUNIT's style encoder needs 64 px; both families train at it.
const SIZE: usize = 64;

/// A family at a CPU test size: 4 channels, one residual block, two-scale
/// discriminators of two layers.
fn tiny(family: &str) -> Vec<String> {
    let keys: &[&str] = if family == "nice" {
        &["dim=4", "n_blocks=1", "dis_dim=4", "dis_layers=6"]
    } else {
        &[
            "dim=4",
            "n_res=1",
            "dis_dim=4",
            "dis_layers=2",
            "dis_scales=2",
        ]
    };
    let mut set: Vec<String> = keys
        .iter()
        .map(|kv| format!("options.{family}.{kv}"))
        .collect();
    if family == "munit" {
        set.push("options.munit.mlp_dim=8".into());
    }
    set.push("optim.lr=5e-4".into());
    set
}

fn config(mode: &str, out: &Path, extra: &[&str]) -> TrainConfig {
    let family = mode.split('-').next().unwrap();
    let mut set = tiny(family);
    set.push(format!(
        "data.path={:?}",
        common::dataset(SIZE).display().to_string()
    ));
    set.push(format!("out={:?}", out.display().to_string()));
    set.extend(["train.epochs=2".into(), "train.steps_per_epoch=3".into()]);
    set.extend(extra.iter().map(|s| s.to_string()));
    TrainConfig::preset(mode, &set).unwrap()
}

/// A family's networks and generator terms: those of every mode, and
/// those of C alone; the term that must learn within a dozen steps.
struct Parts {
    nets: [&'static str; 2],
    c_nets: [&'static str; 2],
    terms: &'static [&'static str],
    c_terms: &'static [&'static str],
    learns: &'static str,
}

fn parts(family: &str) -> Parts {
    match family {
        "unit" => Parts {
            nets: ["unit_A", "unit_B"],
            c_nets: ["unit_D_A", "unit_D_A"],
            terms: &[
                "unit_adv_b",
                "unit_recon",
                "unit_kl",
                "unit_cycle",
                "unit_d_b",
            ],
            c_terms: &["unit_adv_a", "unit_d_a"],
            learns: "unit_recon",
        },
        "munit" => Parts {
            nets: ["munit_A", "munit_B"],
            c_nets: ["munit_D_A", "munit_D_A"],
            terms: &[
                "munit_adv_b",
                "munit_recon_x",
                "munit_recon_s",
                "munit_recon_c",
                "munit_d_b",
            ],
            c_terms: &["munit_adv_a", "munit_d_a"],
            learns: "munit_recon_x",
        },
        // NICE-GAN's NC is one translator with its own encoder and D_B.
        _ => Parts {
            nets: ["nice_G", "nice_D_B"],
            c_nets: ["nice_F", "nice_D_A"],
            terms: &["nice_adv_b", "nice_d_b"],
            c_terms: &["nice_adv_a", "nice_d_a", "nice_cycle", "nice_recon"],
            learns: "nice_recon",
        },
    }
}

#[test]
fn every_mode_brings_its_networks_and_trains() {
    let _lock = common::rng_lock();
    for family in ["unit", "munit", "nice"] {
        let p = parts(family);
        let d_b = format!("{family}_D_B");
        for (mode, c, r) in [
            ("c", true, false),
            ("c+r", true, true),
            ("nc", false, false),
            ("nc+r", false, true),
        ] {
            let mode = format!("{family}-{mode}");
            let dir = tempfile::tempdir().unwrap();
            let mut t = Trainer::new(config(&mode, &dir.path().join("run"), &[])).unwrap();
            let nets = &t.nets;
            assert!(
                p.nets.iter().all(|n| nets.has(n)) && nets.has(&d_b),
                "{mode}"
            );
            for n in p.c_nets {
                assert_eq!(nets.has(n), c, "{mode}: {n}");
            }
            assert_eq!(nets.has(R), r, "{mode}");
            // Not the shared PatchGAN D, nor CycleGAN's G.
            assert!(!nets.has("D_B") && !nets.has("G"), "{mode}");
            let rows: Vec<_> = (0..12).map(|_| t.train_step().unwrap()).collect();
            for row in &rows {
                for (name, v) in row {
                    assert!(v.is_finite(), "{mode}: {name} = {v}");
                }
            }
            for name in p.terms {
                assert!(term(&rows[0], name).is_some(), "{mode}: no {name}");
            }
            for name in p.c_terms {
                assert_eq!(term(&rows[0], name).is_some(), c, "{mode}: {name}");
            }
            assert_eq!(term(&rows[0], "correction").is_some(), r, "{mode}");
            // The within-domain reconstructions learn within a dozen steps.
            if let Some(first) = term(&rows[0], p.learns) {
                let last = term(&rows[11], p.learns).unwrap();
                assert!(last < first, "{mode}: {} {first} -> {last}", p.learns);
            }
        }
    }
}

#[test]
fn a_family_run_resumes_bit_exactly_and_translates_from_its_checkpoint() {
    let _lock = common::rng_lock();
    for family in ["unit", "munit", "nice"] {
        for mode in ["c", "c+r", "nc", "nc+r"] {
            resumes_and_translates(&format!("{family}-{mode}"));
        }
    }
}

fn resumes_and_translates(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    Trainer::new(config(mode, &whole, &[]))
        .unwrap()
        .run(true)
        .unwrap();
    let parts = dir.path().join("parts");
    let mut t = Trainer::new(config(mode, &parts, &["train.stop_at_step=4"])).unwrap();
    t.run(true).unwrap();
    drop(t);
    let mut t = Trainer::resume(&parts, &["train.stop_at_step=0".into()]).unwrap();
    t.run(true).unwrap();
    let losses = |p: &Path| std::fs::read_to_string(p.join("losses.csv")).unwrap();
    // The run's config records the family's options in full.
    let family = mode.split('-').next().unwrap();
    let saved = std::fs::read_to_string(whole.join("config.toml")).unwrap();
    let key = match family {
        "unit" => "kl = 0.01",
        "munit" => "recon_s = 1.0",
        _ => "dis_layers = 6",
    };
    assert!(
        saved.contains(&format!("[options.{family}]")) && saved.contains(key),
        "{saved}"
    );
    assert_eq!(
        losses(&parts),
        losses(&whole),
        "resuming {mode} changed its trajectory"
    );

    // Inference loads the two autoencoders only, and is deterministic (no
    // latent noise), the same from either run's last checkpoint.
    let test = SliceDataset::open(common::dataset(32), "test").unwrap();
    let out = |run: &Path| {
        Model::load(&run.join("checkpoints/last"), "cpu")
            .unwrap()
            .translate_split(&test, 4)
            .unwrap()
    };
    let (a, b) = (out(&whole), out(&parts));
    assert_eq!(a.len(), test.len());
    assert_eq!(a, b);
    assert_eq!(out(&whole), a);
    assert!(a
        .iter()
        .all(|s| s.data.iter().all(|v| v.is_finite() && v.abs() <= 1.0)));
    // `translate` (a volume in, a volume out) and `evaluate` load it too.
    let model = Model::load(&whole.join("checkpoints/last"), "cpu").unwrap();
    let d = common::demo_data();
    let read = |f: &str| medtrans_training::inference::read_input(&d.join(f)).unwrap();
    let (t1, mask) = (read("t1.nii.gz"), read("mask.nii.gz"));
    let vol = model
        .translate_volume(&t1, Some(&mask), 8, &mut |_, _| {})
        .unwrap();
    assert_eq!(vol.len(), t1.data.len(), "{mode}");
    assert!(vol.iter().all(|v| v.is_finite()), "{mode}");
    let scores = model.evaluate(&test, 8).unwrap();
    assert_eq!(scores.len(), test.len(), "{mode}");
    assert!(scores.iter().all(|s| s.psnr.is_finite()), "{mode}");
}

#[test]
fn the_families_refuse_what_they_cannot_run() {
    // Trainer::new seeds the process's one random stream before it refuses:
    // not while another test builds seeded networks.
    let _lock = common::rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let err = |mode: &str, extra: &[&str]| {
        let mut set = tiny(mode.split('-').next().unwrap());
        set.push(format!(
            "data.path={:?}",
            common::dataset(SIZE).display().to_string()
        ));
        set.push(format!("out={:?}", run.display().to_string()));
        set.extend(extra.iter().map(|s| s.to_string()));
        match medtrans_training::TrainConfig::preset(mode, &set) {
            Ok(cfg) => format!("{:#}", Trainer::new(cfg).err().expect("refused")),
            Err(e) => format!("{e:#}"),
        }
    };
    let e = err("unit-c", &["loss.adversarial=1.0"]);
    assert!(
        e.contains("\"unit\"") && e.contains("loss.adversarial"),
        "{e}"
    );
    let e = err("unit-nc", &["loss.cycle=10.0"]);
    assert!(
        e.contains("loss.cycle") && e.contains("options.unit.bidirect"),
        "{e}"
    );
    // 64 px halved five times leaves 2 px: too small, named.
    let e = err("unit-nc", &["options.unit.n_downsample=5"]);
    assert!(
        e.contains("options.unit") && e.contains("n_downsample"),
        "{e}"
    );
    let e = err("unit-nc", &["options.unit.klw=1"]);
    assert!(e.contains("options.unit") && e.contains("`kl`"), "{e}");
    let e = err("munit-nc+r", &["loss.adversarial=1.0"]);
    assert!(
        e.contains("\"munit\"") && e.contains("loss.adversarial"),
        "{e}"
    );
    let e = err("munit-c", &["options.munit.recon_c=-1"]);
    assert!(e.contains("options.munit.recon_c"), "{e}");
    // NICE-GAN's C discriminators of 7 layers need 128 px; these are 64.
    let e = err("nice-c", &["options.nice.dis_layers=7"]);
    assert!(
        e.contains("options.nice") && e.contains("dis_layers = 7") && e.contains("64 px"),
        "{e}"
    );
    let e = err("nice-c", &["options.nice.adversarial=0"]);
    assert!(
        e.contains("options.nice.adversarial = 0") && e.contains("encoders"),
        "{e}"
    );
    let e = err("nice-nc", &["options.nice.dis_layers=5"]);
    assert!(e.contains("options.nice.dis_layers = 5"), "{e}");
    let e = err("nice-c+r", &["loss.cycle=10.0"]);
    assert!(
        e.contains("loss.cycle") && e.contains("options.nice.bidirect"),
        "{e}"
    );
}
