//! Registration recovers known motions of real heads: the ICBM T2, moved
//! and resampled to 1.5 mm, registered back to the ICBM T1 (T2 to T1 by
//! mutual information); and the head CT moved against itself.
use medtrans_core::Volume;
use medtrans_io::{read_volume, shared_data_or_skip, ReadOptions};
use medtrans_registration::{register, Options, Transform, TransformKind};
use medtrans_transforms::{apply, mat_mul, regrid, resample, Interp3};

/// A rigid motion: rotations (degrees) about x, y, z and a shift (mm),
/// about `center`.
fn motion(deg: [f64; 3], mm: [f64; 3], center: [f64; 3]) -> Transform {
    let mut t = Transform::identity(TransformKind::Rigid, center);
    t.params = vec![
        deg[0].to_radians(),
        deg[1].to_radians(),
        deg[2].to_radians(),
        mm[0],
        mm[1],
        mm[2],
    ];
    t
}

/// `moving(p) = source(s(p))` on a new grid at `spacing` mm: the head
/// moved by the inverse of `s`, scanned again at another resolution.
fn moved(source: &Volume, s: &Transform, spacing: f64) -> Volume {
    let grid = regrid(&source.geometry, spacing);
    let fill = medtrans_registration::background(source);
    let r = resample(source, &grid, &s.matrix(), Interp3::Trilinear, fill).unwrap();
    Volume {
        data: r.data,
        geometry: grid,
        ..source.clone()
    }
}

/// Worst and mean distance (mm) between where the found transform and
/// the truth send the voxels of `region` (voxels > 0.5), and the residual
/// rotation (degrees).
fn errors(found: &Transform, truth_inverse: &Transform, region: &Volume) -> (f64, f64, f64) {
    let (a, b) = (found.matrix(), truth_inverse.matrix());
    let [nx, ny, nz] = region.shape();
    let (mut worst, mut sum, mut n) = (0f64, 0f64, 0usize);
    for z in (0..nz).step_by(3) {
        for y in (0..ny).step_by(3) {
            for x in (0..nx).step_by(3) {
                if region.data[region.index(x, y, z)] > 0.5 {
                    let p = apply(&region.geometry.affine, [x as f64, y as f64, z as f64]);
                    let (pa, pb) = (apply(&a, p), apply(&b, p));
                    let d = (0..3).map(|k| (pa[k] - pb[k]).powi(2)).sum::<f64>().sqrt();
                    worst = worst.max(d);
                    sum += d;
                    n += 1;
                }
            }
        }
    }
    assert!(n > 1000, "region too small");
    // found o truth: should be no motion at all.
    let both = mat_mul(&truth_inverse_to_forward(truth_inverse), &a);
    let trace = both[0][0] + both[1][1] + both[2][2];
    let angle = ((trace - 1.0) / 2.0).clamp(-1.0, 1.0).acos().to_degrees();
    (worst, sum / n as f64, angle)
}

fn truth_inverse_to_forward(t: &Transform) -> [[f64; 4]; 4] {
    medtrans_transforms::invert(&t.matrix()).unwrap()
}

fn inverse(t: &Transform) -> Transform {
    let m = medtrans_transforms::invert(&t.matrix()).unwrap();
    let mut params: Vec<f64> = (0..3).flat_map(|i| m[i][..3].to_vec()).collect();
    params.extend([m[0][3], m[1][3], m[2][3]]);
    Transform {
        kind: TransformKind::Affine,
        center: [0.0; 3],
        params,
    }
}

fn check_case(fixed: &Volume, source: &Volume, region: &Volume, s: &Transform, spacing: f64) {
    let moving = moved(source, s, spacing);
    let t0 = std::time::Instant::now();
    let r = register(fixed, &moving, &Options::default(), &mut |_| {}).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let (worst, mean, angle) = errors(&r.transform, &inverse(s), region);
    eprintln!(
        "motion {:?}: worst {worst:.3} mm, mean {mean:.3} mm, rotation {angle:.3} deg, MI {:.3} -> {:.3}, {secs:.1} s, levels {:?}",
        s.params, r.initial_mi, r.final_mi, r.levels.iter().map(|l| l.iterations).collect::<Vec<_>>()
    );
    assert!(r.converged(), "{:?}", r.levels);
    assert!(
        mean < 0.5 && worst < 1.0,
        "mean {mean} mm, worst {worst} mm"
    );
    assert!(angle < 0.5, "rotation error {angle} degrees");
}

/// The ICBM152 T1, T2 and brain mask, or `None` without ../shared/data.
fn icbm() -> Option<(Volume, Volume, Volume)> {
    let icbm = shared_data_or_skip()?.join("icbm152-2009c");
    let read = |f: &str| read_volume(icbm.join(f), &ReadOptions::default()).unwrap();
    Some((
        read("mni_icbm152_t1_tal_nlin_sym_09c.nii.gz"),
        read("mni_icbm152_t2_tal_nlin_sym_09c.nii.gz"),
        read("mni_icbm152_t1_tal_nlin_sym_09c_mask.nii.gz"),
    ))
}

/// The head CT, or `None` without ../shared/data.
fn head_ct() -> Option<Volume> {
    let path = shared_data_or_skip()?.join("ct-head/ct_head_hu.nii.gz");
    Some(read_volume(path, &ReadOptions::default()).unwrap())
}

#[test]
fn t2_moved_and_resampled_registers_back_to_t1() {
    let Some((t1, t2, brain)) = icbm() else {
        return;
    };
    for (deg, mm) in [
        ([3.0, -2.0, 4.0], [4.0, -3.0, 5.0]),
        ([-5.0, 4.0, -2.0], [-6.0, 2.0, -4.0]),
    ] {
        check_case(&t1, &t2, &brain, &motion(deg, mm, [0.0, -18.0, 18.0]), 1.5);
    }
}

#[test]
fn head_ct_moved_against_itself_registers_back() {
    let Some(ct) = head_ct() else {
        return;
    };
    // The head: everything denser than fat-free soft tissue's lower end.
    let mut head = ct.clone();
    head.data = ct.data.iter().map(|&v| (v > -200.0) as u8 as f32).collect();
    let c = medtrans_transforms::apply(&ct.geometry.affine, ct.shape().map(|n| n as f64 / 2.0));
    check_case(
        &ct,
        &ct,
        &head,
        &motion([2.0, -3.0, 5.0], [-4.0, 5.0, 3.0], c),
        1.2,
    );
}

#[test]
fn bad_pairs_are_refused_and_unfinished_searches_say_so() {
    let Some(ct) = head_ct() else {
        return;
    };
    // A second head a metre away: no overlap, and the message gives both
    // boxes in mm.
    let mut far = ct.clone();
    far.geometry.affine[0][3] += 1000.0;
    let err = register(&ct, &far, &Options::default(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("do not overlap") && err.contains(" mm") && err.contains("ct_head_hu"),
        "{err}"
    );
    // A singular affine names the file.
    let mut flat = ct.clone();
    flat.geometry.affine[2] = [0.0, 0.0, 0.0, 0.0];
    let err = register(&ct, &flat, &Options::default(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ct_head_hu") && err.contains("singular"),
        "{err}"
    );
    // Two iterations per level cannot converge from 6 degrees away: the
    // result says so (the CLI warns with the final metric).
    let c = apply(&ct.geometry.affine, ct.shape().map(|n| n as f64 / 2.0));
    let moving = moved(&ct, &motion([6.0, 0.0, 0.0], [5.0, 0.0, 0.0], c), 1.2);
    let opts = Options {
        max_iterations: 2,
        ..Options::default()
    };
    let r = register(&ct, &moving, &opts, &mut |_| {}).unwrap();
    assert!(!r.converged(), "{:?}", r.levels);
}

/// A scanner whose gradients scale differently per axis: an affine search
/// (after its rigid stage) recovers the scaling, which a rigid one cannot.
#[test]
fn affine_recovers_per_axis_scaling() {
    let Some((t1, t2, brain)) = icbm() else {
        return;
    };
    let mut s = motion([2.0, -3.0, 1.0], [3.0, -2.0, 4.0], [0.0, -18.0, 18.0]).to_affine();
    for (i, k) in [(0, 1.05), (4, 0.96), (8, 1.03)] {
        s.params[i] *= k;
    }
    let moving = moved(&t2, &s, 1.5);
    let truth = inverse(&s);
    let mut found = Vec::new();
    for kind in [TransformKind::Rigid, TransformKind::Affine] {
        let opts = Options {
            kind,
            ..Options::default()
        };
        let r = register(&t1, &moving, &opts, &mut |_| {}).unwrap();
        let (worst, mean, _) = errors(&r.transform, &truth, &brain);
        eprintln!("{kind:?}: worst {worst:.3} mm, mean {mean:.3} mm");
        found.push(mean);
    }
    assert!(found[1] < 0.5, "affine: mean error {} mm", found[1]);
    assert!(
        found[0] > 2.0 * found[1],
        "rigid {} vs affine {}",
        found[0],
        found[1]
    );
}
