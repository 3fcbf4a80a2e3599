//! The UNIT family (families/unit.rs) in its four modes at a tiny size:
//! the networks each mode brings, its loss terms finite and learning, a
//! save -> load -> translate round trip, a bit-exact resume, and what it
//! refuses.
mod common;
use common::{small_config, term};
use medtrans_datasets::SliceDataset;
use medtrans_training::families::unit::{UNIT_A, UNIT_B, UNIT_D_A, UNIT_D_B};
use medtrans_training::nets::R;
use medtrans_training::{Model, Trainer};
use std::path::Path;

/// UNIT at a CPU test size: 4 channels, one residual block, two-scale
/// discriminators of two layers.
const TINY: [&str; 6] = [
    "options.unit.dim=4",
    "options.unit.n_res=1",
    "options.unit.dis_dim=4",
    "options.unit.dis_layers=2",
    "options.unit.dis_scales=2",
    "optim.lr=5e-4",
];

fn config(mode: &str, out: &Path, extra: &[&str]) -> medtrans_training::TrainConfig {
    let mut set: Vec<&str> = TINY.to_vec();
    set.extend(["train.epochs=2", "train.steps_per_epoch=3"]);
    set.extend(extra);
    small_config(mode, out, &set)
}

#[test]
fn every_mode_brings_its_networks_and_trains() {
    let _lock = common::rng_lock();
    for (mode, d_a, r) in [
        ("unit-c", true, false),
        ("unit-c+r", true, true),
        ("unit-nc", false, false),
        ("unit-nc+r", false, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Trainer::new(config(mode, &dir.path().join("run"), &[])).unwrap();
        let nets = &t.nets;
        assert!(
            nets.has(UNIT_A) && nets.has(UNIT_B) && nets.has(UNIT_D_B),
            "{mode}"
        );
        assert_eq!((nets.has(UNIT_D_A), nets.has(R)), (d_a, r), "{mode}");
        // Not the shared PatchGAN D, nor CycleGAN's G.
        assert!(!nets.has("D_B") && !nets.has("G"), "{mode}");
        let rows: Vec<_> = (0..12).map(|_| t.train_step().unwrap()).collect();
        for row in &rows {
            for (name, v) in row {
                assert!(v.is_finite(), "{mode}: {name} = {v}");
            }
        }
        for name in [
            "unit_adv_b",
            "unit_recon",
            "unit_kl",
            "unit_cycle",
            "unit_d_b",
        ] {
            assert!(term(&rows[0], name).is_some(), "{mode}: no {name}");
        }
        assert_eq!(term(&rows[0], "unit_adv_a").is_some(), d_a, "{mode}");
        assert_eq!(term(&rows[0], "unit_d_a").is_some(), d_a, "{mode}");
        assert_eq!(term(&rows[0], "correction").is_some(), r, "{mode}");
        // The reconstructions learn within a dozen steps.
        let recon = |k: usize| term(&rows[k], "unit_recon").unwrap();
        assert!(
            recon(11) < recon(0),
            "{mode}: recon {} -> {}",
            recon(0),
            recon(11)
        );
    }
}

#[test]
fn a_unit_run_resumes_bit_exactly_and_translates_from_its_checkpoint() {
    let _lock = common::rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    Trainer::new(config("unit-nc+r", &whole, &[]))
        .unwrap()
        .run(true)
        .unwrap();
    let parts = dir.path().join("parts");
    let mut t = Trainer::new(config("unit-nc+r", &parts, &["train.stop_at_step=4"])).unwrap();
    t.run(true).unwrap();
    drop(t);
    let mut t = Trainer::resume(&parts, &["train.stop_at_step=0".into()]).unwrap();
    t.run(true).unwrap();
    let losses = |p: &Path| std::fs::read_to_string(p.join("losses.csv")).unwrap();
    assert_eq!(
        losses(&parts),
        losses(&whole),
        "resuming UNIT changed its trajectory"
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
}

#[test]
fn unit_refuses_what_it_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let err = |mode: &str, extra: &[&str]| {
        let mut set: Vec<String> = TINY.iter().map(|s| s.to_string()).collect();
        set.push(format!(
            "data.path={:?}",
            common::dataset(32).display().to_string()
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
        e.contains("loss.cycle") && e.contains("options.unit.cycle"),
        "{e}"
    );
    // 32 px halved four times leaves 2 px: too small, named.
    let e = err("unit-nc", &["options.unit.n_downsample=4"]);
    assert!(
        e.contains("options.unit") && e.contains("n_downsample"),
        "{e}"
    );
    let e = err("unit-nc", &["options.unit.klw=1"]);
    assert!(e.contains("options.unit") && e.contains("`kl`"), "{e}");
}
