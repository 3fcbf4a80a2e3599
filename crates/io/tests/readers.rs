//! Readers against nibabel and pydicom on the real images (fixtures/io.json,
//! made by scripts/make_fixtures.py).
mod common;
use common::*;
use medtrans_io::{read_volume, ReadOptions, Volume};

fn check_stats(vol: &Volume, e: &serde_json::Value, tol: f64) {
    let shape: Vec<usize> = serde_json::from_value(e["shape"].clone()).unwrap();
    assert_eq!(vol.shape().to_vec(), shape, "{}", e["path"]);
    let (mut lo, mut hi, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
    for &v in &vol.data {
        lo = lo.min(v as f64);
        hi = hi.max(v as f64);
        sum += v as f64;
    }
    let mean = sum / vol.data.len() as f64;
    for (name, got) in [("min", lo), ("max", hi), ("mean", mean)] {
        let want = e[name].as_f64().unwrap();
        assert!(
            close(got, want, tol),
            "{} {name}: {got} vs {want}",
            e["path"]
        );
    }
    let coords: Vec<[usize; 3]> = serde_json::from_value(e["coords"].clone()).unwrap();
    let values: Vec<f64> = serde_json::from_value(e["values"].clone()).unwrap();
    for (c, want) in coords.iter().zip(values) {
        let got = vol.data[vol.index(c[0], c[1], c[2])] as f64;
        assert!(
            close(got, want, tol),
            "{} at {c:?}: {got} vs {want}",
            e["path"]
        );
    }
}

#[test]
fn nifti_matches_nibabel() {
    let Some(_) = shared() else { return };
    let fx = fixture_json("io.json");
    for e in fx["nifti"].as_array().unwrap() {
        let path = repo().join(e["path"].as_str().unwrap());
        let vol = read_volume(&path, &ReadOptions::default()).unwrap();
        check_stats(&vol, e, 1e-5);
        let affine: Vec<Vec<f64>> = serde_json::from_value(e["affine"].clone()).unwrap();
        for i in 0..4 {
            for j in 0..4 {
                assert!(
                    (vol.geometry.affine[i][j] - affine[i][j]).abs() < 1e-4,
                    "{}: affine[{i}][{j}]",
                    path.display()
                );
            }
        }
        let zooms: Vec<f64> = serde_json::from_value(e["zooms"].clone()).unwrap();
        for i in 0..3 {
            assert!((vol.geometry.spacing[i] - zooms[i]).abs() < 1e-5);
        }
        assert_eq!(vol.dtype, e["dtype"].as_str().unwrap());
    }
}

#[test]
fn icbm_t1_has_scaled_intensities() {
    let Some(data) = shared() else { return };
    let vol = read_volume(
        data.join("icbm152-2009c/mni_icbm152_t1_tal_nlin_sym_09c.nii.gz"),
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(vol.shape(), [193, 229, 193]);
    assert_eq!(vol.geometry.spacing, [1.0; 3]);
    assert_eq!(vol.geometry.orientation(), "RAS");
    let max = vol.data.iter().cloned().fold(f32::MIN, f32::max);
    assert!(
        (max - 98.56).abs() < 0.01,
        "scl_slope not applied: max {max}"
    );
}

#[test]
fn dicom_matches_pydicom() {
    let Some(_) = shared() else { return };
    let fx = fixture_json("io.json");
    for e in fx["dicom"].as_array().unwrap() {
        let path = repo().join(e["path"].as_str().unwrap());
        let vol = read_volume(&path, &ReadOptions::default()).unwrap_or_else(|err| panic!("{err}"));
        check_stats(&vol, e, 1e-5);
    }
}

#[test]
fn dicom_ct_is_in_hounsfield_units_with_geometry() {
    let Some(data) = shared() else { return };
    let vol = read_volume(data.join("dicom/CT_small.dcm"), &ReadOptions::default()).unwrap();
    assert_eq!(vol.shape(), [128, 128, 1]);
    assert!((vol.geometry.spacing[0] - 0.661468).abs() < 1e-6);
    // IPP (-158.135803, -179.035797, -75.7) in LPS is (158.1, 179.0, -75.7) in RAS.
    assert!((vol.geometry.affine[0][3] - 158.135803).abs() < 1e-6);
    assert!((vol.geometry.affine[1][3] - 179.035797).abs() < 1e-6);
    assert_eq!(vol.geometry.orientation(), "LPS");
    let min = vol.data.iter().cloned().fold(f32::MAX, f32::min);
    assert_eq!(min, 128.0 - 1024.0);
}

#[test]
fn multiframe_dicom_is_64x64x10_in_every_transfer_syntax() {
    let Some(data) = shared() else { return };
    let reference =
        read_volume(data.join("dicom/emri_small.dcm"), &ReadOptions::default()).unwrap();
    assert_eq!(reference.shape(), [64, 64, 10]);
    for f in ["emri_small_RLE.dcm", "emri_small_jpeg_2k_lossless.dcm"] {
        let v = read_volume(data.join("dicom").join(f), &ReadOptions::default()).unwrap();
        assert_eq!(v.data, reference.data, "{f} decodes differently");
    }
    let le = read_volume(data.join("dicom/MR_small.dcm"), &ReadOptions::default()).unwrap();
    let be = read_volume(
        data.join("dicom/MR_small_bigendian.dcm"),
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(le.data, be.data);
}

#[test]
fn qform_only_affine_matches_nibabel() {
    let fx = fixture_json("io.json");
    let q = &fx["qform_only"];
    let vol = read_volume(
        repo().join(q["path"].as_str().unwrap()),
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(vol.geometry.sform_code, 0);
    assert_eq!(vol.geometry.qform.unwrap().qfac, -1.0);
    let want: Vec<Vec<f64>> = serde_json::from_value(q["affine"].clone()).unwrap();
    for i in 0..4 {
        for j in 0..4 {
            assert!(
                (vol.geometry.affine[i][j] - want[i][j]).abs() < 1e-5,
                "affine[{i}][{j}]: {} vs {}",
                vol.geometry.affine[i][j],
                want[i][j]
            );
        }
    }
    // nibabel's array is C-ordered arange over (4, 5, 6): value = 30x + 6y + z.
    assert_eq!(vol.data[vol.index(3, 4, 5)], 119.0);
    assert_eq!(vol.data[vol.index(1, 2, 3)], 30.0 + 12.0 + 3.0);
    assert_eq!(vol.geometry.orientation(), "RAI");
}
