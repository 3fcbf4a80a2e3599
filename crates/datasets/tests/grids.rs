//! `prepare` on pairs that do not share a grid: the ICBM T2 rescanned on a
//! tilted 1.4 mm grid (and moved, for `align`), prepared against the T1 and
//! compared with the dataset the original, co-registered T2 gives.
use medtrans_datasets::*;
use medtrans_io::{read_volume, write_nifti, ReadOptions, Volume};
use medtrans_registration::{Options, Transform, TransformKind};
use medtrans_transforms::{mat_mul, regrid, resample, Interp3, IDENTITY};
use std::path::{Path, PathBuf};

mod common;
use common::icbm;

/// The T2 sampled through `motion` onto a 1.4 mm grid tilted by 8 degrees
/// about x: another session on another scanner.
fn rescanned(t2: &Volume, motion: &Transform, path: &Path) -> PathBuf {
    let mut grid = regrid(&t2.geometry, 1.4);
    let mut tilt = Transform::identity(TransformKind::Rigid, [0.0; 3]);
    tilt.params[0] = 8f64.to_radians();
    grid.affine = mat_mul(&tilt.matrix(), &grid.affine);
    let r = resample(t2, &grid, &motion.matrix(), Interp3::Trilinear, 0.0).unwrap();
    write_nifti(path, &r.data, &grid, false).unwrap();
    path.to_path_buf()
}

fn prepared(
    subject: SubjectSpec,
    out: PathBuf,
    edit: impl Fn(&mut PrepareSpec),
) -> (Manifest, SliceDataset) {
    let mut spec = PrepareSpec::new(vec![subject], &out);
    spec.size = 64;
    spec.axis = 2;
    spec.slice_range = Some((60, 120));
    edit(&mut spec);
    let m = prepare(&spec, &mut |_, _, _| {}).unwrap();
    (m, SliceDataset::open(&out, "train").unwrap())
}

/// Mean |B - B'| inside the mask over all training slices.
fn mean_abs_diff(x: &SliceDataset, y: &SliceDataset) -> f64 {
    assert_eq!(x.len(), y.len());
    let (mut sum, mut n) = (0f64, 0usize);
    for k in 0..x.len() {
        let mask = &x.mask.as_ref().unwrap()[k];
        for ((p, q), m) in x.b[k].data.iter().zip(&y.b[k].data).zip(&mask.data) {
            if *m > 0.5 {
                sum += (p - q).abs() as f64;
                n += 1;
            }
        }
    }
    sum / n as f64
}

#[test]
fn a_rescanned_t2_is_resampled_onto_the_t1_grid() {
    let Some(data) = medtrans_io::shared_data_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let base = icbm(&data);
    let t2 = read_volume(&base.b, &ReadOptions::default()).unwrap();
    let still = Transform::identity(TransformKind::Rigid, [0.0; 3]);
    let b = rescanned(&t2, &still, &tmp.path().join("t2_tilted.nii.gz"));
    let (_, truth) = prepared(base.clone(), tmp.path().join("truth"), |_| {});
    let (m, ds) = prepared(
        SubjectSpec {
            b: b.clone(),
            ..base.clone()
        },
        tmp.path().join("tilted"),
        |_| {},
    );
    let al = m.subjects[0].alignment.as_ref().unwrap();
    assert!(
        al.overlap > 0.8 && al.overlap < 1.0,
        "overlap {}",
        al.overlap
    );
    assert_eq!(m.subjects[0].geometry.shape, [193, 229, 193]);
    // Two trilinear resamplings blur; misplaced anatomy would cost far more.
    let d = mean_abs_diff(&truth, &ds);
    assert!(d < 0.045, "mean |B - B_true| = {d}");

    // B's grid, and a 2 mm grid over A's field of view.
    let (m, _) = prepared(
        SubjectSpec {
            b: b.clone(),
            ..base.clone()
        },
        tmp.path().join("on_b"),
        |s| {
            s.grid = GridChoice::B;
            s.slice_range = None;
        },
    );
    let bg = read_volume(&b, &ReadOptions::default()).unwrap().geometry;
    assert_eq!(m.subjects[0].geometry.affine, bg.affine);
    assert_eq!(m.subjects[0].alignment.as_ref().unwrap().grid, "b");
    let (m, _) = prepared(base.clone(), tmp.path().join("two_mm"), |s| {
        s.spacing = Some(2.0);
        s.slice_range = None;
    });
    assert_eq!(m.subjects[0].geometry.shape, [97, 115, 97]);
    assert_eq!(m.subjects[0].geometry.spacing, [2.0; 3]);
}

#[test]
fn align_rigid_undoes_a_patient_moving_between_scans() {
    let Some(data) = medtrans_io::shared_data_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let base = icbm(&data);
    let t2 = read_volume(&base.b, &ReadOptions::default()).unwrap();
    let mut motion = Transform::identity(TransformKind::Rigid, [0.0, -18.0, 18.0]);
    motion.params = vec![0.06, -0.04, 0.05, 5.0, -4.0, 3.0];
    let b = rescanned(&t2, &motion, &tmp.path().join("t2_moved.nii.gz"));
    let moved = SubjectSpec { b, ..base.clone() };
    let (_, truth) = prepared(base, tmp.path().join("truth"), |_| {});
    let (_, trusted) = prepared(moved.clone(), tmp.path().join("headers"), |_| {});
    let (m, aligned) = prepared(moved, tmp.path().join("aligned"), |s| {
        s.align = Some(Options::default());
    });
    let reg = m.subjects[0]
        .alignment
        .as_ref()
        .unwrap()
        .registration
        .as_ref()
        .unwrap();
    assert!(reg.converged && reg.final_mi > reg.initial_mi, "{reg:?}");
    assert_ne!(reg.b_from_a, IDENTITY);
    let (before, after) = (
        mean_abs_diff(&truth, &trusted),
        mean_abs_diff(&truth, &aligned),
    );
    eprintln!("mean |B - B_true|: headers only {before:.4}, aligned {after:.4}");
    assert!(
        after < 0.045 && before > 3.0 * after,
        "headers only {before}, aligned {after}"
    );
}

#[test]
fn a_header_that_places_nothing_is_refused_by_name() {
    let Some(data) = medtrans_io::shared_data_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let base = icbm(&data);
    let t2 = read_volume(&base.b, &ReadOptions::default()).unwrap();
    let mut g = t2.geometry.clone();
    g.affine[2] = [0.0, 0.0, 0.0, 0.0];
    g.qform = None;
    let flat = tmp.path().join("t2_flat.nii.gz");
    write_nifti(&flat, &t2.data, &g, false).unwrap();
    let subject = SubjectSpec { b: flat, ..base };
    let err = prepare(
        &PrepareSpec::new(vec![subject], tmp.path().join("ds")),
        &mut |_, _, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("t2_flat.nii.gz") && err.contains("singular"),
        "{err}"
    );
    assert!(!tmp.path().join("ds").exists());
}

/// A cohort where one subject's registration fails: that subject is left
/// out with its reason in the manifest, and the others are prepared; when
/// every subject fails, the error names them.
#[test]
fn a_subject_whose_registration_fails_is_skipped_and_the_rest_prepared() {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/demo");
    let tmp = tempfile::tempdir().unwrap();
    // One plane of the demo T2, where it lies: registration needs 3-D.
    let t2 = read_volume(demo.join("t2.nii.gz"), &ReadOptions::default()).unwrap();
    let [nx, ny, _] = t2.geometry.shape;
    let k = t2.geometry.shape[2] / 2;
    let mut g = t2.geometry.clone();
    g.shape[2] = 1;
    for r in 0..3 {
        g.affine[r][3] += k as f64 * g.affine[r][2];
    }
    let flat = tmp.path().join("t2_one_plane.nii.gz");
    write_nifti(&flat, &t2.data[k * nx * ny..(k + 1) * nx * ny], &g, false).unwrap();
    let subject = |name: &str, b: &Path| SubjectSpec {
        name: Some(name.into()),
        a: demo.join("t1.nii.gz"),
        b: b.to_path_buf(),
        mask: Some(demo.join("mask.nii.gz")),
        ..Default::default()
    };
    let t2_path = demo.join("t2.nii.gz");
    let subjects = vec![
        subject("s1", &t2_path),
        subject("broken", &flat),
        subject("s3", &t2_path),
        subject("s4", &t2_path),
    ];
    let out = tmp.path().join("cohort");
    let mut spec = PrepareSpec::new(subjects, &out);
    spec.size = 32;
    spec.align = Some(Options::default());
    let mut said = Vec::new();
    let m = prepare(&spec, &mut |_, _, what| said.push(what.to_string())).unwrap();
    let names: Vec<&str> = m.subjects.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["s1", "s3", "s4"]);
    assert_eq!(m.skipped.len(), 1);
    assert_eq!(m.skipped[0].name, "broken");
    assert!(
        m.skipped[0].reason.contains("3-D"),
        "{}",
        m.skipped[0].reason
    );
    assert!(
        said.iter().any(|w| w.starts_with("skipped broken: ")),
        "{said:?}"
    );
    // Every split refers to a kept subject.
    for refs in m.splits.values() {
        assert!(refs.iter().all(|r| r.subject < 3));
    }
    // Nothing left to prepare: one error naming the subjects.
    let mut spec = PrepareSpec::new(
        vec![subject("b1", &flat), subject("b2", &flat)],
        tmp.path().join("none"),
    );
    spec.align = Some(Options::default());
    let err = prepare(&spec, &mut |_, _, _| {}).unwrap_err().to_string();
    assert!(
        err.contains("every subject's registration failed") && err.contains("b1"),
        "{err}"
    );
}
