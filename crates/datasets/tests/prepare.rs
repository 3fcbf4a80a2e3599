//! `prepare` and `SliceDataset` on the real ICBM152 T1/T2 pair.
use medtrans_datasets::*;
use medtrans_io::{read_volume, write_nifti, write_npy, ReadOptions};
use std::path::PathBuf;

fn shared() -> Option<PathBuf> {
    medtrans_io::shared_data_or_skip()
}

mod common;
use common::icbm;

#[test]
fn prepare_icbm_builds_contiguous_slab_splits() {
    let Some(data) = shared() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let mut spec = PrepareSpec::new(vec![icbm(&data)], &out);
    spec.size = 48;
    spec.min_foreground = 0.1;
    let mut calls = 0;
    let m = prepare(&spec, &mut |_, _, _| calls += 1).unwrap();
    assert!(calls >= 2, "progress is reported");
    assert!(out.join("manifest.json").is_file());
    // Contiguous slabs in order train < val < test, with the 2-slice gap.
    let idx = |s: &str| m.splits[s].iter().map(|r| r.index).collect::<Vec<_>>();
    let (tr, va, te) = (idx("train"), idx("val"), idx("test"));
    assert!(!tr.is_empty() && !va.is_empty() && !te.is_empty());
    for w in [&tr, &va, &te] {
        assert!(
            w.windows(2).all(|p| p[1] == p[0] + 1),
            "slabs are contiguous"
        );
    }
    assert!(*tr.last().unwrap() + 2 < va[0] && *va.last().unwrap() + 2 < te[0]);
    let total = tr.len() + va.len() + te.len() + 4;
    assert!((tr.len() as f64 / total as f64 - 0.7).abs() < 0.03);
    // Normalisation parameters are kept to map outputs back to T2 units.
    let sub = &m.subjects[0];
    assert!(sub.map_b.low > 0.0 && sub.map_b.high > sub.map_b.low);
    assert_eq!(sub.geometry.shape, [193, 229, 193]);
    assert_eq!((sub.fit.width, sub.fit.height), (193, 229));

    let ds = SliceDataset::open(&out, "train").unwrap();
    assert_eq!(ds.len(), tr.len());
    assert_eq!(ds.dims(), (48, 48));
    let mask = ds.mask.as_ref().unwrap();
    for k in 0..ds.len() {
        for ((&a, &b), &mk) in ds.a[k].data.iter().zip(&ds.b[k].data).zip(&mask[k].data) {
            assert!((-1.0..=1.0).contains(&a) && (-1.0..=1.0).contains(&b));
            if mk == 0.0 {
                assert!(a == -1.0 && b == -1.0, "outside the mask is background");
            }
        }
    }
    // A folder that is not empty is never overwritten.
    let e = prepare(&spec, &mut |_, _, _| {}).unwrap_err();
    assert!(e.to_string().contains("not empty"), "{e}");
    let e = SliceDataset::open(&out, "nope").unwrap_err();
    assert!(e.to_string().contains("train:"), "{e}");
}

#[test]
fn pairs_are_seeded_and_noise_levels_apply_on_the_fly() {
    let Some(data) = shared() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let mut spec = PrepareSpec::new(vec![icbm(&data)], &out);
    spec.size = 32;
    spec.slice_range = Some((80, 110));
    spec.split = SplitSpec {
        method: SplitMethod::Slab,
        fractions: [1.0, 0.0, 0.0],
        gap: 0,
    };
    prepare(&spec, &mut |_, _, _| {}).unwrap();
    let ds = SliceDataset::open(&out, "train").unwrap();
    assert_eq!(ds.len(), 30);
    let clean = PairOptions::default();
    let p = ds.pair(3, 0, &clean);
    assert_eq!(p.a, ds.a[3]);
    assert_eq!(p.b, ds.b[3]);
    let noisy = PairOptions {
        noise_level: 5,
        seed: 11,
        ..Default::default()
    };
    let p1 = ds.pair(3, 0, &noisy);
    assert_eq!(
        p1.a.data,
        ds.pair(3, 0, &noisy).a.data,
        "same seed, same pair"
    );
    assert_ne!(
        p1.a.data,
        ds.pair(3, 1, &noisy).a.data,
        "new epoch, new noise"
    );
    assert_ne!(p1.a, ds.a[3]);
    assert_ne!(p1.noise_a, p1.noise_b, "A and B get independent transforms");
    assert_eq!(p1.b_aligned, ds.b[3], "ground truth stays aligned");
    let unpaired = PairOptions {
        pairing: Pairing::Unpaired,
        seed: 5,
        ..Default::default()
    };
    for i in 0..ds.len() {
        assert_ne!(ds.pair(i, 0, &unpaired).b_index, i);
    }
}

#[test]
fn bad_inputs_are_refused_with_the_file_named() {
    let Some(data) = shared() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // B's header puts it a metre away: refused, with both boxes in mm.
    let ct = read_volume(
        data.join("ct-head/ct_head_hu.nii.gz"),
        &ReadOptions::default(),
    )
    .unwrap();
    let mut g = ct.geometry.clone();
    g.affine[0][3] += 1000.0;
    let far = tmp.path().join("far.nii.gz");
    write_nifti(&far, &ct.data, &g, false).unwrap();
    let mut s = icbm(&data);
    s.b = far;
    let e = prepare(
        &PrepareSpec::new(vec![s], tmp.path().join("x")),
        &mut |_, _, _| {},
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("far.nii.gz")
            && e.to_string().contains("do not overlap")
            && e.to_string().contains("[-96.5, 96.5]"),
        "{e}"
    );
    assert!(!tmp.path().join("x").exists(), "nothing written on failure");
    // NaN voxels and constant volumes.
    let t1 = read_volume(icbm(&data).a, &ReadOptions::default()).unwrap();
    let mut nan = t1.data.clone();
    nan[1000] = f32::NAN;
    let nan_path = tmp.path().join("nan.nii.gz");
    write_nifti(&nan_path, &nan, &t1.geometry, false).unwrap();
    let mut s = icbm(&data);
    s.a = nan_path.clone();
    let e = prepare(
        &PrepareSpec::new(vec![s], tmp.path().join("y")),
        &mut |_, _, _| {},
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("nan.nii.gz") && e.to_string().contains("NaN"),
        "{e}"
    );
    let flat_path = tmp.path().join("flat.nii.gz");
    write_nifti(&flat_path, &vec![7.0; t1.data.len()], &t1.geometry, false).unwrap();
    let mut s = icbm(&data);
    s.b = flat_path;
    s.mask = None;
    let e = prepare(
        &PrepareSpec::new(vec![s], tmp.path().join("z")),
        &mut |_, _, _| {},
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("flat.nii.gz") && e.to_string().contains("constant"),
        "{e}"
    );
    // A volume split of one subject cannot work.
    let mut spec = PrepareSpec::new(vec![icbm(&data)], tmp.path().join("v"));
    spec.split.method = SplitMethod::Volume;
    let e = prepare(&spec, &mut |_, _, _| {}).unwrap_err();
    assert!(e.to_string().contains("at least"), "{e}");
}

#[test]
fn reggan_npy_folders_load_as_is() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for split in ["train2D", "val2D"] {
        for side in ["A", "B"] {
            let d = root.join(split).join(side);
            std::fs::create_dir_all(&d).unwrap();
            for k in 0..3 {
                let v: Vec<f32> = (0..20).map(|i| ((i + k) % 7) as f32 / 3.5 - 1.0).collect();
                write_npy(&d.join(format!("{k:04}.npy")), &[4, 5], &v).unwrap();
            }
        }
    }
    let ds = SliceDataset::open(root, "train").unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!((ds.a[0].width, ds.a[0].height), (5, 4));
    assert_eq!(ds.a[1].data[0], 1.0 / 3.5 - 1.0, "sorted by name");
    let ds = SliceDataset::open(&root.join("val2D"), "whatever").unwrap();
    assert_eq!(ds.len(), 3);
    // Unequal counts, out-of-range values and empty folders are refused.
    std::fs::remove_file(root.join("val2D/B/0002.npy")).unwrap();
    let e = SliceDataset::open(&root.join("val2D"), "val").unwrap_err();
    assert!(
        e.to_string().contains("A/ holds 3 slices but B/ holds 2"),
        "{e}"
    );
    write_npy(&root.join("train2D/A/0001.npy"), &[4, 5], &[300.0f32; 20]).unwrap();
    let e = SliceDataset::open(root, "train").unwrap_err();
    assert!(
        e.to_string().contains("0001.npy") && e.to_string().contains("outside [-1, 1]"),
        "{e}"
    );
    let e = SliceDataset::open(&root.join("nothing"), "train").unwrap_err();
    assert!(e.to_string().contains("not a dataset"), "{e}");
}

#[test]
fn headers_are_obeyed_and_empty_selections_are_explained() {
    let Some(data) = shared() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // Same voxels, but B's header says x runs right to left: resampled
    // through the affines, B must equal the voxels mirrored under the
    // plain header, exactly (a flip moves voxels onto voxels).
    let t2 = read_volume(icbm(&data).b, &ReadOptions::default()).unwrap();
    let mut g = t2.geometry.clone();
    g.affine[0][0] = -1.0;
    g.affine[0][3] = 96.0;
    let flipped = tmp.path().join("t2_flipped.nii.gz");
    write_nifti(&flipped, &t2.data, &g, false).unwrap();
    let [nx, ny, nz] = t2.shape();
    let mut mirror = t2.data.clone();
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                mirror[t2.index(x, y, z)] = t2.data[t2.index(nx - 1 - x, y, z)];
            }
        }
    }
    let mirrored = tmp.path().join("t2_mirrored_voxels.nii.gz");
    write_nifti(&mirrored, &mirror, &t2.geometry, false).unwrap();
    let mut stored = Vec::new();
    for (b, out) in [(flipped, "header"), (mirrored, "voxels")] {
        let mut s = icbm(&data);
        s.b = b;
        let mut spec = PrepareSpec::new(vec![s], tmp.path().join(out));
        spec.size = 32;
        let m = prepare(&spec, &mut |_, _, _| {}).unwrap();
        let resampled = m.subjects[0].alignment.clone();
        stored.push((
            SliceDataset::open(&tmp.path().join(out), "train").unwrap(),
            resampled,
        ));
    }
    let (by_header, by_voxels) = (&stored[0], &stored[1]);
    assert_eq!(by_header.1.as_ref().map(|a| a.overlap), Some(1.0));
    assert!(by_voxels.1.is_none(), "same grid: nothing resampled");
    assert_eq!(by_header.0.len(), by_voxels.0.len());
    for k in 0..by_header.0.len() {
        assert_eq!(by_header.0.b[k].data, by_voxels.0.b[k].data, "slice {k}");
    }
    // Slices outside the brain only: a clear error, not a panic.
    let mut spec = PrepareSpec::new(vec![icbm(&data)], tmp.path().join("b"));
    spec.slice_range = Some((0, 3));
    let e = prepare(&spec, &mut |_, _, _| {}).unwrap_err();
    assert!(e.to_string().contains("no training slices"), "{e}");
    spec.min_foreground = f64::NAN;
    assert!(prepare(&spec, &mut |_, _, _| {})
        .unwrap_err()
        .to_string()
        .contains("0..1"));
}

#[test]
fn label_maps_are_sliced_like_the_images_and_bad_ones_refused() {
    let Some(data) = shared() else { return };
    let d = data.join("icbm152-2009c");
    let atlas = d.join("mni_icbm152_CerebrA_tal_nlin_sym_09c.nii.gz");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let mut subject = icbm(&data);
    subject.labels_a = Some(atlas.clone());
    subject.labels_b = Some(atlas.clone());
    let mut spec = PrepareSpec::new(vec![subject.clone()], &out);
    spec.size = 48;
    spec.min_foreground = 0.1;
    let m = prepare(&spec, &mut |_, _, _| {}).unwrap();
    let ds = SliceDataset::open(&out, "test").unwrap();
    let (la, lb) = (ds.labels_a.as_ref().unwrap(), ds.labels_b.as_ref().unwrap());
    assert_eq!(la.len(), ds.len());
    assert_eq!(la, lb);
    // Each stored label is the atlas value at the nearest source pixel:
    // whole classes that CerebrA has.
    let vol = read_volume(&atlas, &ReadOptions::default()).unwrap();
    let known: std::collections::BTreeSet<i64> = vol.data.iter().map(|&v| v as i64).collect();
    let mut labelled = 0;
    for &v in la.iter().flat_map(|l| &l.data) {
        assert_eq!(v.fract(), 0.0);
        assert!(known.contains(&(v as i64)), "label {v} is not in the atlas");
        labelled += usize::from(v > 0.0);
    }
    assert!(labelled > 100, "the test slab holds atlas structures");
    // The middle test slice against a direct nearest-neighbour fit of the
    // atlas plane, done here with the manifest's fit.
    let k = ds.len() / 2;
    let r = m.splits["test"][k];
    let pipe = SlicePipeline {
        axis: m.axis,
        fit: m.subjects[0].fit,
    };
    let want = pipe.fit_mask(&medtrans_io::Slice::from_plane(&vol, m.axis, r.index));
    assert_eq!(la[k].data, want.data);

    // Intensities are not labels: refused, naming the file.
    let mut bad = subject;
    bad.labels_a = Some(d.join("mni_icbm152_t1_tal_nlin_sym_09c.nii.gz"));
    let spec = PrepareSpec::new(vec![bad], tmp.path().join("bad"));
    let e = prepare(&spec, &mut |_, _, _| {}).unwrap_err().to_string();
    assert!(
        e.contains("mni_icbm152_t1_tal_nlin_sym_09c.nii.gz") && e.contains("whole class numbers"),
        "{e}"
    );
}
