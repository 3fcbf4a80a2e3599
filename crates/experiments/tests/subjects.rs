//! The subjects benchmark end to end on two real NiChart subjects (the
//! committed quick config, skipped without `../shared/data`): folds split
//! by subject, the two training conditions differ only in B's alignment,
//! every run is scored per subject against the registered target, and the
//! claims are judged over subjects.
use medtrans_datasets::SliceDataset;
use medtrans_experiments::subjects::{Condition, IDENTITY};
use medtrans_experiments::{Experiment, SubjectsConfig};
use std::path::PathBuf;

#[test]
fn quick_subjects_benchmark_splits_by_subject_and_scores_per_subject() {
    if medtrans_io::shared_data_or_skip().is_none() {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Paths in the config are relative to the repository root.
    std::env::set_current_dir(&root).unwrap();
    let mut cfg =
        SubjectsConfig::load(&root.join("configs/experiments/subjects-quick.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    cfg.common_mut().runs = dir.path().join("runs");
    cfg.common_mut().results = dir.path().join("results");
    assert_eq!(cfg.names, ["Subj1", "Subj2"]);
    let r = cfg.run(false, &mut |_| {}).unwrap();

    // Each fold tests the one subject its training never saw.
    for fold in 0..2 {
        let names = |c: Condition, split: &str| -> Vec<String> {
            let ds = SliceDataset::open(&cfg.dataset(c, fold), split).unwrap();
            let m = ds.manifest.clone().unwrap();
            let mut v: Vec<String> = ds
                .refs
                .unwrap()
                .iter()
                .map(|r| m.subjects[r.subject].name.clone())
                .collect();
            v.dedup();
            v
        };
        let test = format!("Subj{}", fold + 1);
        let train = format!("Subj{}", 2 - fold);
        assert_eq!(names(Condition::Registered, "test"), [test]);
        for c in [Condition::Registered, Condition::AsScanned] {
            assert_eq!(names(c, "train"), std::slice::from_ref(&train));
        }
        // The conditions share A and differ in B: registration moved it.
        let open = |c| SliceDataset::open(&cfg.dataset(c, fold), "train").unwrap();
        let (reg, scan) = (open(Condition::Registered), open(Condition::AsScanned));
        assert_eq!(reg.a, scan.a);
        assert_ne!(reg.b, scan.b);
    }

    // 2 folds x 2 conditions x 4 modes, and the identity; every row has
    // both subjects, each tested once.
    assert_eq!(r.rows.len(), 1 + 2 * 4);
    assert_eq!(r.rows[0].mode, IDENTITY);
    for row in &r.rows {
        let subjects: Vec<&str> = row.subjects.iter().map(|s| s.subject.as_str()).collect();
        assert_eq!(subjects, ["Subj1", "Subj2"], "{}", row.mode);
        for s in &row.subjects {
            assert!(s.psnr.is_finite() && s.nmae > 0.0 && s.slices > 10, "{s:?}");
        }
    }
    let csv = std::fs::read_to_string(dir.path().join("results/per_subject.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * (1 + 2 * 4));
    // Both subjects have white-matter lesions: the real FLAIR segments them
    // in its best window, and every model is scored in that window.
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (dice, real): (f64, f64) = (f[9].parse().unwrap(), f[10].parse().unwrap());
        assert!(dice.is_finite() && (0.0..=1.0).contains(&dice), "{line}");
        assert!(real > 0.1 && real <= 1.0, "{line}");
    }
    // Two subjects cannot make a difference significant: no claim holds as
    // "better", and each names its unit and n.
    assert_eq!(r.verdicts.len(), 4);
    for v in &r.verdicts {
        assert!(v.contains("over subjects, n = 2"), "{v}");
        assert!(v.contains("**cannot be shown at n = 2**"), "{v}");
    }
    let md = std::fs::read_to_string(dir.path().join("results/results.md")).unwrap();
    assert!(md.contains("| trained on | mode | subjects |"), "{md}");
    for s in ["Subj1", "Subj2"] {
        assert!(dir
            .path()
            .join(format!("results/subject_{s}.png"))
            .is_file());
    }
    // A second run trains nothing and writes the same table.
    let again = cfg.run(false, &mut |_| {}).unwrap();
    assert_eq!(again.verdicts, r.verdicts);
}
