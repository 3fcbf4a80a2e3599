//! A tiny sweep end to end: every cell trains and is scored; a rerun skips
//! the finished runs and reproduces the table.
use medtrans_experiments::{run_noise_sweep, SweepConfig};
use std::path::PathBuf;

#[test]
fn sweep_trains_every_cell_then_skips_finished_runs() {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/demo");
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
runs = {runs:?}
results = {results:?}
modes = ["pix2pix", "reggan"]
noise_levels = [0, 3]
set = ["generator.ngf=4", "generator.n_blocks=1", "discriminator.ndf=4",
       "train.epochs=1", "train.steps_per_epoch=2", "train.samples=1"]
[data]
a = {a:?}
b = {b:?}
mask = {m:?}
size = 32
"#,
        runs = dir.path().join("runs").display().to_string(),
        results = dir.path().join("results").display().to_string(),
        a = demo.join("t1.nii.gz").display().to_string(),
        b = demo.join("t2.nii.gz").display().to_string(),
        m = demo.join("mask.nii.gz").display().to_string(),
    );
    let path = dir.path().join("sweep.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = SweepConfig::load(&path).unwrap();
    let mut log = Vec::new();
    let rows = run_noise_sweep(&cfg, &mut |l| log.push(l.to_string())).unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.slices > 0 && r.psnr.0.is_finite()));
    assert!(dir.path().join("runs/reggan-noise3/losses.csv").is_file());
    let md = std::fs::read_to_string(dir.path().join("results/results.md")).unwrap();
    assert_eq!(md.lines().count(), 6, "{md}");

    let mut log2 = Vec::new();
    let again = run_noise_sweep(&cfg, &mut |l| log2.push(l.to_string())).unwrap();
    assert_eq!(
        log2.iter().filter(|l| l.contains("skipped")).count(),
        4,
        "{log2:?}"
    );
    assert_eq!(rows, again);
}

#[test]
fn unknown_sweep_keys_and_modes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "runs = \"r\"\nresults = \"x\"\nmodez = []\n[data]\na = \"a\"\nb = \"b\"\n",
    )
    .unwrap();
    let err = SweepConfig::load(&path).unwrap_err().to_string();
    assert!(err.contains("modez") && err.contains("bad.toml"), "{err}");
}
