//! The Table 1 experiment end to end on two real NiChart subjects (the
//! committed quick config, skipped without `../shared/data`): every family
//! in every mode trains on moved pairs of one subject and is scored per
//! slice on the other; the table has a row per family, the claims name
//! their unit and n.
use medtrans_experiments::table1::{preset, Table1Mode};
use medtrans_experiments::{Experiment, Table1Config};
use std::path::PathBuf;

#[test]
fn quick_table1_trains_every_cell_and_judges_over_test_slices() {
    if medtrans_io::shared_data_or_skip().is_none() {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::env::set_current_dir(&root).unwrap();
    let mut cfg = Table1Config::load(&root.join("configs/experiments/table1-quick.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    cfg.common_mut().runs = dir.path().join("runs");
    cfg.common_mut().results = dir.path().join("results");
    let grid = cfg.grid().unwrap();
    assert_eq!(grid.len(), 16);
    // Every run trains on the Table 1 misalignment, none on a noise level.
    for r in &grid {
        let m = r.config.data.misalign.unwrap();
        assert_eq!((m.rotation_deg, m.translation, m.scale), (5.0, 0.05, 0.05));
        assert_eq!(r.config.data.noise_level, 0);
    }
    assert_eq!(preset("cyclegan", Table1Mode::NcR), "reggan");
    assert_eq!(preset("nice", Table1Mode::CR), "nice-c+r");
    let r = cfg.run(false, &mut |_| {}).unwrap();

    assert_eq!(r.cells.len(), 16);
    assert!(r.cell("nice", Table1Mode::NcR).is_some());
    // The input scored as the target, over the same slices.
    assert_eq!(r.identity.as_ref().unwrap().slices, r.cells[0].slices.len());
    let slices = r.cells[0].slices.len();
    assert!(slices > 10, "{slices} test slices");
    for c in &r.cells {
        assert_eq!(
            (c.runs, c.slices.len()),
            (1, slices),
            "{} {:?}",
            c.family,
            c.mode
        );
        // One held-out subject.
        assert_eq!(c.patients.len(), 1);
        assert!(c.slices.values().all(|v| v[1].is_finite() && v[0] > 0.0));
    }
    let csv = std::fs::read_to_string(dir.path().join("results/per_slice.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 16 * slices);
    let md = std::fs::read_to_string(dir.path().join("results/results.md")).unwrap();
    for f in ["cyclegan", "unit", "munit", "nice"] {
        assert!(md.contains(&format!("| {f} | ")), "{md}");
    }
    // 8 +R comparisons, 4 NC+R > C+R, the best-cell lines, and 3 headings.
    let tested: Vec<&String> = r
        .verdicts
        .iter()
        .filter(|v| v.contains("Wilcoxon"))
        .collect();
    assert_eq!(tested.len(), 8 + 4 + 1, "{:#?}", r.verdicts);
    for v in tested {
        assert!(v.contains("over test slices, n = "), "{v}");
        assert!(!v.contains("over patients"), "{v}");
        // One seed: no verdict is called held or failed outright.
        assert!(!v.contains("**holds**") && !v.contains("**fails**"), "{v}");
    }
    assert!(dir.path().join("results/patient_Subj1.png").is_file());
    assert!(dir.path().join("results/psnr.png").is_file());
}

#[test]
fn one_volume_is_one_fold_and_a_config_takes_patients_or_a_volume() {
    if medtrans_io::shared_data_or_skip().is_none() {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::env::set_current_dir(&root).unwrap();
    let icbm = root.join("configs/experiments/table1-icbm.toml");
    let cfg = Table1Config::load(&icbm).unwrap();
    assert_eq!((cfg.folds, cfg.run_folds()), (1, &[0][..]));
    assert_eq!(cfg.labels(), (["T1".into(), "T2".into()], "ICBM152".into()));
    for r in cfg.grid().unwrap() {
        assert_eq!(
            r.config.data.path,
            PathBuf::from("runs/table1-icbm/dataset")
        );
    }
    // Both a volume and patients: refused, naming the two.
    let text = std::fs::read_to_string(&icbm).unwrap()
        + "\n[data]\nsubjects = \"configs/subjects/brats.csv\"\n";
    let dir = tempfile::tempdir().unwrap();
    let both = dir.path().join("both.toml");
    std::fs::write(&both, text).unwrap();
    let err = format!("{:#}", Table1Config::load(&both).unwrap_err());
    assert!(err.contains("[data]") && err.contains("[volume]"), "{err}");
}
