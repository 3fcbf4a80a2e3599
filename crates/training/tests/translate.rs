//! Inference: translating whole volumes keeps their grid; evaluation scores
//! the test split.
mod common;
use medtrans_datasets::SliceDataset;
use medtrans_io::{read_volume, write_nifti};
use medtrans_training::{Model, Trainer};

fn trained_run(dir: &std::path::Path) -> std::path::PathBuf {
    let run = dir.join("run");
    let mut t = Trainer::new(common::small_config(
        "reggan",
        &run,
        &["train.epochs=1", "train.steps_per_epoch=10"],
    ))
    .unwrap();
    t.run(true).unwrap();
    run
}

#[test]
fn translate_keeps_shape_and_affine_and_maps_to_target_units() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path());
    let model = Model::load(&run, "cpu").unwrap();
    assert_eq!(model.info.size, 32);
    let d = common::demo_data();
    let t1 = read_volume(d.join("t1.nii.gz"), &Default::default()).unwrap();
    let mask = read_volume(d.join("mask.nii.gz"), &Default::default()).unwrap();
    let mut calls = 0;
    let out = model
        .translate_volume(&t1, Some(&mask), 8, &mut |_, _| calls += 1)
        .unwrap();
    assert!(calls > 1, "progress is reported");
    assert_eq!(out.len(), t1.data.len());
    let target = model.info.target_map.unwrap();
    assert!(out.iter().all(|v| v.is_finite()));
    assert!(out
        .iter()
        .all(|&v| v >= target.low as f32 - 1e-3 && v <= target.high as f32 + 1e-3));
    // Outside the mask: the target's background value.
    let bg = target.low as f32;
    let (i, _) = mask
        .data
        .iter()
        .enumerate()
        .find(|(_, &m)| m < 0.5)
        .unwrap();
    assert!((out[i] - bg).abs() < 1e-3);
    let p = dir.path().join("synth.nii.gz");
    write_nifti(&p, &out, &t1.geometry, false).unwrap();
    let back = read_volume(&p, &Default::default()).unwrap();
    assert_eq!(back.shape(), t1.shape());
    assert_eq!(back.geometry.affine, t1.geometry.affine);
}

#[test]
fn translate_works_on_a_t1_no_model_has_seen() {
    let Some(shared) = medtrans_io::shared_data_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = Model::load(&trained_run(dir.path()), "cpu").unwrap();
    // 1 mm ICBM152 T1, another grid than the 2 mm demo crop.
    let t1 = read_volume(
        shared.join("icbm152-2009c/mni_icbm152_t1_tal_nlin_sym_09c.nii.gz"),
        &Default::default(),
    )
    .unwrap();
    let out = model
        .translate_volume(&t1, None, 32, &mut |_, _| {})
        .unwrap();
    assert_eq!(out.len(), t1.data.len());
    assert!(out.iter().all(|v| v.is_finite()));
}

#[test]
fn evaluate_scores_every_test_slice_and_refuses_other_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let model = Model::load(&trained_run(dir.path()), "cpu").unwrap();
    let test = SliceDataset::open(common::dataset(32), "test").unwrap();
    let scores = model.evaluate(&test, 4).unwrap();
    assert_eq!(scores.len(), test.len());
    assert!(scores
        .iter()
        .all(|s| s.nmae > 0.0 && s.psnr.is_finite() && s.ssim <= 1.0));
    let err = Model::load(dir.path(), "cpu").err().unwrap().to_string();
    assert!(err.contains("neither a checkpoint"), "{err}");
}
