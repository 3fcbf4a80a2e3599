//! Round trips and the less common layouts: DICOM series folders, NIfTI
//! writing with a reference geometry, PNG/TIFF in 8 and 16 bit, NPY slices.
mod common;
use common::*;
use medtrans_io::*;
use std::path::Path;

/// Copies of the shared CT_small.dcm as a series: per slice (file number,
/// instance number for its UID, z position in mm).
fn write_ct_series(data: &Path, dir: &Path, slices: &[(usize, usize, f64)]) {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    let src = dicom_object::open_file(data.join("dicom/CT_small.dcm")).unwrap();
    for &(file, k, z) in slices {
        let mut obj = src.clone();
        obj.put(DataElement::new(
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            PrimitiveValue::from(format!("-158.135803\\-179.035797\\{z:.4}")),
        ));
        obj.put(DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(format!("1.2.3.4.{k}")),
        ));
        obj.write_to_file(dir.join(format!("img{file}.dcm")))
            .unwrap();
    }
}

#[test]
fn dicom_series_folder_is_sorted_by_position_along_the_normal() {
    let Some(data) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Five slices 2.5 mm apart, written in a shuffled order with shuffled names.
    let order = [3usize, 0, 4, 1, 2];
    let slices: Vec<(usize, usize, f64)> = order
        .iter()
        .enumerate()
        .map(|(name_i, &k)| (name_i, k, -75.7 + 2.5 * k as f64))
        .collect();
    write_ct_series(&data, dir.path(), &slices);
    let vol = read_volume(dir.path(), &ReadOptions::default()).unwrap();
    assert_eq!(vol.shape(), [128, 128, 5]);
    assert!((vol.geometry.spacing[2] - 2.5).abs() < 1e-4);
    assert!(
        (vol.geometry.affine[2][3] - -75.7).abs() < 1e-4,
        "origin is the lowest slice"
    );
    assert!((vol.geometry.affine[2][2] - 2.5).abs() < 1e-4);
    let single = read_volume(data.join("dicom/CT_small.dcm"), &ReadOptions::default()).unwrap();
    for z in 0..5 {
        let s = Slice::from_plane(&vol, 2, z);
        assert_eq!(s, Slice::from_plane(&single, 2, 0));
    }
}

/// A series with a missing slice (one gap twice the others) is refused,
/// naming the folder; small jitter in positions is accepted.
#[test]
fn a_dicom_series_with_a_missing_slice_is_refused() {
    let Some(data) = shared() else { return };
    let write = |dir: &Path, zs: &[f64]| {
        let slices: Vec<(usize, usize, f64)> =
            zs.iter().enumerate().map(|(k, &z)| (k, k, z)).collect();
        write_ct_series(&data, dir, &slices);
    };
    let gap = tempfile::tempdir().unwrap();
    write(gap.path(), &[0.0, 2.5, 5.0, 10.0, 12.5]);
    let err = read_volume(gap.path(), &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("slice spacing varies") && err.contains(&gap.path().display().to_string()),
        "{err}"
    );
    let jitter = tempfile::tempdir().unwrap();
    write(jitter.path(), &[0.0, 2.5, 5.01, 7.5, 10.0]);
    let vol = read_volume(jitter.path(), &ReadOptions::default()).unwrap();
    assert_eq!(vol.shape()[2], 5);
}

#[test]
fn nifti_write_keeps_geometry_and_values() {
    let Some(data) = shared() else { return };
    let src = data.join("ct-head/ct_head_hu.nii.gz");
    let vol = read_volume(&src, &ReadOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for name in ["out.nii", "out.nii.gz"] {
        let out = dir.path().join(name);
        write_nifti(&out, &vol.data, &vol.geometry, false).unwrap();
        let back = read_volume(&out, &ReadOptions::default()).unwrap();
        assert_eq!(back.data, vol.data);
        assert_eq!(back.geometry.shape, vol.geometry.shape);
        assert_eq!(back.geometry.spacing, vol.geometry.spacing);
        assert_eq!(back.geometry.affine, vol.geometry.affine);
        assert_eq!(back.geometry.qform, vol.geometry.qform);
        assert_eq!(back.dtype, "float32");
        // Never overwrite silently.
        let e = write_nifti(&out, &vol.data, &vol.geometry, false).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        write_nifti(&out, &vol.data, &vol.geometry, true).unwrap();
    }
    let e = write_nifti(
        &dir.path().join("bad.nii"),
        &vol.data[1..],
        &vol.geometry,
        false,
    )
    .unwrap_err();
    assert!(e.to_string().contains("do not fill"), "{e}");
    assert!(!dir.path().join("bad.nii").exists());
}

#[test]
fn nifti_from_dicom_geometry_keeps_the_ras_affine() {
    let Some(data) = shared() else { return };
    let vol = read_volume(data.join("dicom/MR2_UNCR.dcm"), &ReadOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mr.nii.gz");
    write_nifti(&out, &vol.data, &vol.geometry, false).unwrap();
    let back = read_volume(&out, &ReadOptions::default()).unwrap();
    for i in 0..3 {
        for j in 0..4 {
            assert!((back.geometry.affine[i][j] - vol.geometry.affine[i][j]).abs() < 1e-4);
        }
    }
    assert_eq!(back.data, vol.data);
}

fn save_gray16(path: &Path, w: u32, h: u32) -> Vec<u16> {
    let px: Vec<u16> = (0..w * h).map(|i| (i * 397 % 65535) as u16).collect();
    image::ImageBuffer::<image::Luma<u16>, _>::from_raw(w, h, px.clone())
        .unwrap()
        .save(path)
        .unwrap();
    px
}

#[test]
fn png_and_tiff_in_8_and_16_bit() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.png", "a.tif"] {
        let p = dir.path().join(name);
        let px = save_gray16(&p, 7, 5);
        let v = read_volume(&p, &ReadOptions::default()).unwrap();
        assert_eq!(v.shape(), [7, 5, 1]);
        assert_eq!(v.dtype, "uint16");
        let s = Slice::from_plane(&v, 2, 0);
        let want: Vec<f32> = px.iter().map(|&x| x as f32).collect();
        assert_eq!(s.data, want, "{name}: rows come back in file order");
    }
    let p = dir.path().join("rgb.png");
    image::RgbImage::from_fn(4, 3, |x, y| {
        image::Rgb([(10 * x) as u8, (20 * y) as u8, 200])
    })
    .save(&p)
    .unwrap();
    let v = read_volume(&p, &ReadOptions::default()).unwrap();
    let s = Slice::from_plane(&v, 2, 0);
    let expect = 0.299 * 30.0 + 0.587 * 40.0 + 0.114 * 200.0;
    assert!((s.get(2, 3) - expect).abs() < 1e-3);
    // A folder of equally sized PNGs is a stack sorted by name.
    let stack = dir.path().join("stack");
    std::fs::create_dir(&stack).unwrap();
    for i in 0..3 {
        image::GrayImage::from_pixel(6, 4, image::Luma([i as u8 * 10]))
            .save(stack.join(format!("s{i}.png")))
            .unwrap();
    }
    let v = read_volume(&stack, &ReadOptions::default()).unwrap();
    assert_eq!(v.shape(), [6, 4, 3]);
    assert_eq!(v.data[v.index(0, 0, 2)], 20.0);
    image::GrayImage::new(5, 4)
        .save(stack.join("s9.png"))
        .unwrap();
    let e = read_volume(&stack, &ReadOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("s9.png") && e.to_string().contains("5x4"),
        "{e}"
    );
}

#[test]
fn npy_round_trip_and_reggan_slices() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.npy");
    let data: Vec<f32> = (0..12).map(|i| i as f32 / 6.0 - 1.0).collect();
    write_npy(&p, &[3, 4], &data).unwrap();
    let a = read_npy(&p).unwrap();
    assert_eq!(a.shape, vec![3, 4]);
    let s = a.into_slices(&p).unwrap();
    assert_eq!(s[0].width, 4);
    assert_eq!(s[0].get(2, 1), data[9]);
    // As a volume, the 2-D slice comes back unchanged through the slice convention.
    let v = read_volume(&p, &ReadOptions::default()).unwrap();
    assert_eq!(Slice::from_plane(&v, 2, 0).data, data);
    // float64 and fortran order, as numpy can write them.
    let mut f = b"\x93NUMPY\x01\x00".to_vec();
    let mut header = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    f.extend((header.len() as u16).to_le_bytes());
    f.extend(header.as_bytes());
    for v in [0.0f64, 3.0, 1.0, 4.0, 2.0, 5.0] {
        f.extend(v.to_le_bytes());
    }
    std::fs::write(&p, f).unwrap();
    let a = read_npy(&p).unwrap();
    assert_eq!(a.data, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
}

#[test]
fn npy_fixtures_written_by_numpy_read_back() {
    let p = repo().join("fixtures/metrics/real_2.npy");
    let a = read_npy(&p).unwrap();
    assert_eq!(a.shape, vec![180, 150]);
    assert!(a.data.iter().all(|v| (-1.0..=1.0).contains(v)));
}

#[test]
fn slices_along_every_axis_invert_exactly() {
    let shape = [5usize, 4, 3];
    let n: usize = shape.iter().product();
    let vol = Volume {
        data: (0..n).map(|i| i as f32).collect(),
        geometry: Geometry::identity(shape),
        format: Format::Nifti,
        dtype: "float32".into(),
        source: "synthetic".into(),
    };
    for axis in 0..3 {
        let mut back = vol.clone();
        back.data.iter_mut().for_each(|v| *v = -1.0);
        for k in 0..shape[axis] {
            let s = Slice::from_plane(&vol, axis, k);
            s.write_plane(&mut back, axis, k);
        }
        assert_eq!(back.data, vol.data, "axis {axis}");
    }
    // Axial: columns run along x, row 0 is the largest y.
    let s = Slice::from_plane(&vol, 2, 1);
    assert_eq!((s.width, s.height), (5, 4));
    assert_eq!(s.get(0, 2), vol.data[vol.index(2, 3, 1)]);
    // Sagittal: columns along y, rows along z from the top.
    let s = Slice::from_plane(&vol, 0, 4);
    assert_eq!((s.width, s.height), (4, 3));
    assert_eq!(s.get(0, 1), vol.data[vol.index(4, 1, 2)]);
}
