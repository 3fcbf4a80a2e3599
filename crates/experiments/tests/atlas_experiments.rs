//! The many-to-one and shape experiments end to end at a tiny budget, on
//! the real ICBM152 T1/T2 and CerebrA atlas of `../shared/data` (skipped
//! without it): the datasets they build, every run trained and scored, and
//! the tables written.
use medtrans_datasets::SliceDataset;
use medtrans_experiments::slabs::read_maps;
use medtrans_experiments::{report_many_to_one, Experiment, ManyToOneConfig, ShapeConfig};
use std::path::Path;

fn icbm() -> Option<std::path::PathBuf> {
    medtrans_io::shared_data_or_skip().map(|d| d.join("icbm152-2009c"))
}

const TINY: &str = r#"set = ["generator.ngf=4", "generator.n_blocks=1", "discriminator.ndf=4",
       "segmentor.ngf=4", "train.epochs=1", "train.steps_per_epoch=3", "train.samples=0"]"#;

fn data_section(d: &Path, b: &str) -> String {
    let f = |n: &str| format!("{:?}", d.join(n).display().to_string());
    format!(
        "[data]\na = {}\nb = {}\nmask = {}\natlas = {}\nsize = 32\n",
        f("mni_icbm152_t1_tal_nlin_sym_09c.nii.gz"),
        f(b),
        f("mni_icbm152_t1_tal_nlin_sym_09c_mask.nii.gz"),
        f("mni_icbm152_CerebrA_tal_nlin_sym_09c.nii.gz"),
    )
}

#[test]
fn many_to_one_builds_lesioned_data_trains_both_losses_and_tabulates() {
    let Some(d) = icbm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "runs = {:?}\nresults = {:?}\ncycle_weights = [0.5]\nseeds = [1]\n{TINY}\n{}",
        dir.path().join("runs").display().to_string(),
        dir.path().join("results").display().to_string(),
        data_section(&d, "mni_icbm152_t1_tal_nlin_sym_09c.nii.gz"),
    );
    let path = dir.path().join("m2o.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = ManyToOneConfig::load(&path).unwrap();
    let rows = cfg.run(false, &mut |_| {}).unwrap();
    let methods: Vec<&str> = rows.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["lesioned input", "clean truth", "L_C", "L_AC"]);

    // The test split: lesioned A, clean B of the same slices, lesions only
    // inside the brain, and every slice lesioned.
    let ds = cfg.dataset();
    let test = SliceDataset::open(&ds, "test").unwrap();
    let lesion = read_maps(&ds, "test", "lesion").unwrap();
    let mask = test.mask.as_ref().unwrap();
    for i in 0..test.len() {
        let mut changed = 0;
        for k in 0..test.a[i].data.len() {
            let differs = test.a[i].data[k] != test.b[i].data[k];
            if mask[i].data[k] < 0.5 {
                assert!(!differs, "slice {i}: a lesion outside the brain at {k}");
            }
            changed += differs as usize;
            if lesion[i].data[k] > 0.5 {
                assert!(differs, "slice {i}: a lesion pixel left unchanged");
            }
        }
        assert!(changed > 0, "slice {i} has no lesion");
    }
    // Lesions spoil the segmentation score: the clean slice scores higher
    // than the lesioned one, on average and on most slices.
    let (input, clean) = (&rows[0].runs[0].1, &rows[1].runs[0].1);
    let better = input
        .iter()
        .zip(clean)
        .filter(|(a, b)| b.dice > a.dice)
        .count();
    assert!(better * 3 >= input.len() * 2, "{better} of {}", input.len());
    assert!(clean.iter().all(|e| e.lesion_mae == 0.0 && e.psnr == 100.0));

    let md = std::fs::read_to_string(cfg.common.results.join("results.md")).unwrap();
    assert!(
        md.contains("| L_AC | 0.5 | 1 |") && md.contains("| 0.5 | Dice |"),
        "{md}"
    );
    for f in [
        "results.csv",
        "per_slice.csv",
        "examples.png",
        "metrics_vs_weight.png",
    ] {
        assert!(cfg.common.results.join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(cfg.common.results.join("per_slice.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4 * test.len());
    // A second report reads the same runs to the same table.
    report_many_to_one(&cfg, &mut |_| {}).unwrap();
    assert_eq!(
        std::fs::read_to_string(cfg.common.results.join("results.md")).unwrap(),
        md
    );
}

#[test]
fn shape_builds_labelled_unpaired_data_and_scores_with_one_reference_segmentor() {
    let Some(d) = icbm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "runs = {:?}\nresults = {:?}\nnoise_levels = [0]\nseeds = [1]\n{TINY}\n{}",
        dir.path().join("runs").display().to_string(),
        dir.path().join("results").display().to_string(),
        data_section(&d, "mni_icbm152_t2_tal_nlin_sym_09c.nii.gz"),
    );
    let path = dir.path().join("shape.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = ShapeConfig::load(&path).unwrap();
    let rows = cfg.run(false, &mut |_| {}).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].cell.shape, 0.0);
    assert_eq!(rows[1].cell.shape, 1.0);
    assert!(rows
        .iter()
        .all(|r| r.dice[0].1.iter().all(|d| (0.0..=1.0).contains(d))));

    // Four classes, ventricles among them in the test slab; A and B
    // labels of the aligned test slices agree.
    let test = SliceDataset::open(&cfg.dataset(), "test").unwrap();
    let (la, lb) = (test.labels_a.unwrap(), test.labels_b.unwrap());
    assert_eq!(la, lb);
    let classes: std::collections::BTreeSet<u8> = la
        .iter()
        .flat_map(|l| l.data.iter().map(|&v| v as u8))
        .collect();
    assert_eq!(classes.into_iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
    // Unpaired training: A (T1) and B (T2) slabs are different slices.
    let train = SliceDataset::open(&cfg.dataset(), "train").unwrap();
    assert_ne!(train.labels_a, train.labels_b);

    let md = std::fs::read_to_string(cfg.common.results.join("results.md")).unwrap();
    assert!(md.contains("| cycle + shape 1 | 0 | 1 |"), "{md}");
    assert!(md.contains("reference segmentor scores Dice"), "{md}");
    for f in [
        "results.csv",
        "per_slice.csv",
        "metrics_vs_noise.png",
        "examples.png",
    ] {
        assert!(cfg.common.results.join(f).is_file(), "{f} missing");
    }
}

#[test]
fn augment_builds_labelled_splits_trains_and_scores_every_setting() {
    let Some(d) = icbm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tiny = r#"set = ["generator.ngf=4", "generator.n_blocks=1", "discriminator.ndf=4",
       "predictor.width=4", "predictor.blocks=[1]", "train.epochs=1",
       "train.steps_per_epoch=4", "train.samples=0"]"#;
    let text = format!(
        "runs = {:?}\nresults = {:?}\nsplits = 2\ntarget_labelled = 6\n{tiny}\n{}axis = 1\n",
        dir.path().join("runs").display().to_string(),
        dir.path().join("results").display().to_string(),
        data_section(&d, "mni_icbm152_t2_tal_nlin_sym_09c.nii.gz"),
    );
    let path = dir.path().join("augment.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = medtrans_experiments::AugmentConfig::load(&path).unwrap();
    let r = cfg.run(false, &mut |_| {}).unwrap();
    for (setting, per_split) in &r.mse {
        assert_eq!(per_split.len(), 2, "{setting:?}");
        assert!(per_split.iter().all(|(_, m)| m.is_finite() && *m > 0.0));
    }
    assert_eq!(r.quality.len(), 2, "CycleGAN and the guided runs");

    // Each split labels the same source slices and its own target subset;
    // the labels are CerebrA's lateral-ventricle areas per coronal slice.
    let area = medtrans_experiments::augment::structure_area(
        &d.join("mni_icbm152_CerebrA_tal_nlin_sym_09c.nii.gz"),
        1,
        &medtrans_experiments::augment::LATERAL_VENTRICLES,
    )
    .unwrap();
    let mut subsets = Vec::new();
    for k in 0..2 {
        let ds = SliceDataset::open(&cfg.dataset(k), "train").unwrap();
        let refs = ds.refs.clone().unwrap();
        let a = ds.slice_labels_a.clone().unwrap();
        for (r, v) in refs.iter().zip(&a) {
            assert_eq!(*v, area[r.index], "source slice {}", r.index);
        }
        let b = ds.slice_labels_b.clone().unwrap();
        let labelled: Vec<usize> = (0..b.len()).filter(|&i| !b[i].is_nan()).collect();
        assert_eq!(labelled.len(), 6);
        subsets.push(labelled);
    }
    assert_ne!(subsets[0], subsets[1], "splits must label different slices");
    let test = SliceDataset::open(&cfg.dataset(0), "test").unwrap();
    let train = SliceDataset::open(&cfg.dataset(0), "train").unwrap();
    let (tr, te) = (train.refs.unwrap(), test.refs.unwrap());
    assert!(
        te.iter().all(|t| tr.iter().all(|s| s.index != t.index)),
        "test slices must not be training slices"
    );
    let md = std::fs::read_to_string(cfg.common.results.join("results.md")).unwrap();
    assert!(
        md.contains("| MIX-guided λ=0.001 | 2 |") && md.contains("PURE + aug."),
        "{md}"
    );
    assert!(
        cfg.common.results.join("mse.png").is_file()
            && cfg.common.results.join("examples.png").is_file()
    );
}
