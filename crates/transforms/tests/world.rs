//! World-space resampling against nibabel's `resample_from_to` (fixture
//! fixtures/world/resample.json, made by scripts/make_world_fixture.py): the
//! ICBM T2 and mask with an oblique, anisotropic, shifted header, resampled
//! onto the T1 grid.
use medtrans_io::{read_volume, shared_data_or_skip, ReadOptions};
use medtrans_transforms::{resample, Interp3, IDENTITY};
use std::path::PathBuf;

#[test]
fn resampling_matches_nibabel() {
    let Some(shared) = shared_data_or_skip() else {
        return;
    };
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fx: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo.join("fixtures/world/resample.json")).unwrap(),
    )
    .unwrap();
    let icbm = shared.join("icbm152-2009c");
    let read = |f: &str| read_volume(icbm.join(f), &ReadOptions::default()).unwrap();
    let t1 = read("mni_icbm152_t1_tal_nlin_sym_09c.nii.gz");
    let mut t2 = read("mni_icbm152_t2_tal_nlin_sym_09c.nii.gz");
    let mut mask = read("mni_icbm152_t1_tal_nlin_sym_09c_mask.nii.gz");
    let mut affine = IDENTITY;
    for (i, row) in fx["b_affine"].as_array().unwrap().iter().enumerate() {
        for (j, v) in row.as_array().unwrap().iter().enumerate() {
            affine[i][j] = v.as_f64().unwrap();
        }
    }
    t2.geometry.affine = affine;
    mask.geometry.affine = affine;
    let fill = fx["fill"].as_f64().unwrap() as f32;
    let img = resample(&t2, &t1.geometry, &IDENTITY, Interp3::Trilinear, fill).unwrap();
    let msk = resample(&mask, &t1.geometry, &IDENTITY, Interp3::Nearest, 0.0).unwrap();

    let inside = img.inside.iter().filter(|&&v| v).count();
    assert_eq!(inside as u64, fx["inside_count"].as_u64().unwrap());
    let mean = img.data.iter().map(|&v| v as f64).sum::<f64>() / img.data.len() as f64;
    let want = fx["mean"].as_f64().unwrap();
    assert!((mean - want).abs() < 1e-4 * want.abs(), "{mean} vs {want}");
    let mask_sum: f64 = msk.data.iter().map(|&v| v as f64).sum();
    let want_sum = fx["mask_sum"].as_f64().unwrap();
    assert!(
        (mask_sum - want_sum).abs() < 1e-6 * want_sum,
        "{mask_sum} vs {want_sum}"
    );

    let [nx, ny, _] = t1.shape();
    let mut worst = 0f64;
    for s in fx["samples"].as_array().unwrap() {
        let at = |k: &str| s[k].as_u64().unwrap() as usize;
        let i = at("x") + nx * (at("y") + ny * at("z"));
        let want = s["image"].as_f64().unwrap();
        worst = worst.max((img.data[i] as f64 - want).abs());
        // The mask file's scale factor makes its 1 a float32 1.00000006.
        let m = s["mask"].as_f64().unwrap();
        assert!(
            (msk.data[i] as f64 - m).abs() < 1e-6,
            "mask {} at {s}",
            msk.data[i]
        );
    }
    assert!(worst < 1e-3, "largest image difference {worst}");
}
