//! Corrupt and hostile files: each gives a typed error naming the file, never
//! a panic, a hang or a huge allocation.
mod common;
use common::*;
use medtrans_io::{read_volume, ErrorKind, ReadOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

fn read_err(p: &Path) -> medtrans_io::Error {
    let e = read_volume(p, &ReadOptions::default()).expect_err("corrupt input was accepted");
    assert_eq!(e.path, p, "the error must name the file");
    assert!(e.to_string().contains(&*p.to_string_lossy()));
    e
}

/// A valid little-endian NIfTI-1 header for an int16 volume of `dims`.
fn header(dims: [i16; 3], vox_offset: f32) -> Vec<u8> {
    let mut h = vec![0u8; 352];
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    h[40..42].copy_from_slice(&3i16.to_le_bytes());
    for (i, d) in dims.iter().enumerate() {
        h[42 + 2 * i..44 + 2 * i].copy_from_slice(&d.to_le_bytes());
    }
    for i in 3..7 {
        h[42 + 2 * i..44 + 2 * i].copy_from_slice(&1i16.to_le_bytes());
    }
    h[70..72].copy_from_slice(&4i16.to_le_bytes());
    h[72..74].copy_from_slice(&16i16.to_le_bytes());
    for i in 0..4 {
        h[76 + 4 * i..80 + 4 * i].copy_from_slice(&1f32.to_le_bytes());
    }
    h[108..112].copy_from_slice(&vox_offset.to_le_bytes());
    h[344..348].copy_from_slice(b"n+1\0");
    h
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn well_formed_synthetic_header_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = header([4, 3, 2], 352.0);
    b.extend((0..24i16).flat_map(|v| v.to_le_bytes()));
    let v = read_volume(write(dir.path(), "ok.nii", &b), &ReadOptions::default()).unwrap();
    assert_eq!(v.shape(), [4, 3, 2]);
    assert_eq!(v.data[v.index(3, 2, 1)], 23.0);
}

#[test]
fn zero_length_file() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "empty.nii",
        "empty.nii.gz",
        "empty.dcm",
        "empty.png",
        "empty.npy",
    ] {
        let e = read_err(&write(dir.path(), name, b""));
        assert!(matches!(e.kind, ErrorKind::Empty), "{name}: {e}");
    }
}

#[test]
fn wrong_magic() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = header([4, 3, 2], 352.0);
    b[344..348].copy_from_slice(b"xyz\0");
    b.extend([0u8; 48]);
    let e = read_err(&write(dir.path(), "magic.nii", &b));
    assert!(e.to_string().contains("magic"), "{e}");
    let e = read_err(&write(
        dir.path(),
        "text.nii",
        b"this is not an image at all, just text",
    ));
    assert!(
        matches!(
            e.kind,
            ErrorKind::Truncated(_) | ErrorKind::BadHeader { .. }
        ),
        "{e}"
    );
    let e = read_err(&write(dir.path(), "notgz.nii.gz", &b));
    assert!(e.to_string().contains("not gzip"), "{e}");
    let e = read_err(&write(
        dir.path(),
        "notnpy.npy",
        b"\x93NUMPZ\x01\x00\x10\x00{}",
    ));
    assert!(matches!(e.kind, ErrorKind::BadHeader { .. }), "{e}");
}

#[test]
fn truncated_gzip() {
    let Some(data) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let full =
        std::fs::read(data.join("icbm152-2009c/mni_icbm152_t1_tal_nlin_sym_09c_mask.nii.gz"))
            .unwrap();
    for cut in [10, 200, full.len() / 2, full.len() - 9] {
        let e = read_err(&write(dir.path(), "cut.nii.gz", &full[..cut]));
        assert!(
            matches!(e.kind, ErrorKind::Truncated(_)),
            "cut at {cut}: {e}"
        );
    }
}

#[test]
fn negative_and_enormous_dimensions_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let e = read_err(&write(dir.path(), "neg.nii", &header([4, -3, 2], 352.0)));
    assert!(e.to_string().contains("dim[2] is -3"), "{e}");
    // 30000^3 int16 voxels would need 54 TB: refused from the header alone.
    let e = read_err(&write(
        dir.path(),
        "huge.nii",
        &header([30000, 30000, 30000], 352.0),
    ));
    assert!(matches!(e.kind, ErrorKind::TooLarge(_)), "{e}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&header([30000, 30000, 30000], 352.0)).unwrap();
    let e = read_err(&write(dir.path(), "huge.nii.gz", &gz.finish().unwrap()));
    assert!(matches!(e.kind, ErrorKind::TooLarge(_)), "{e}");
    let e = read_err(&write(dir.path(), "huge.npy", b"\x93NUMPY\x01\x00\x46\x00{'descr': '<f4', 'fortran_order': False, 'shape': (99999999, 99999999), }\n"));
    assert!(matches!(e.kind, ErrorKind::TooLarge(_)), "{e}");
}

#[test]
fn vox_offset_past_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = header([4, 3, 2], 1_000_000.0);
    b.extend([0u8; 48]);
    let e = read_err(&write(dir.path(), "offset.nii", &b));
    assert!(matches!(e.kind, ErrorKind::Truncated(_)), "{e}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&b).unwrap();
    let e = read_err(&write(dir.path(), "offset.nii.gz", &gz.finish().unwrap()));
    assert!(matches!(e.kind, ErrorKind::Truncated(_)), "{e}");
    // Data shorter than the header promises.
    let mut b = header([4, 3, 2], 352.0);
    b.extend([0u8; 10]);
    let e = read_err(&write(dir.path(), "short.nii", &b));
    assert!(e.to_string().contains("promises 48 bytes"), "{e}");
}

#[test]
fn truncated_dicom() {
    let Some(data) = shared() else { return };
    let p = data.join("dicom/emri_small_jpeg_2k_lossless_too_short.dcm");
    let e = read_err(&p);
    assert!(matches!(e.kind, ErrorKind::Truncated(_)), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(data.join("dicom/CT_small.dcm")).unwrap();
    let e = read_err(&write(dir.path(), "cut.dcm", &full[..full.len() / 2]));
    assert!(matches!(e.kind, ErrorKind::Truncated(_)), "{e}");
}

/// Found by fuzzing (scripts/fuzz.sh, dicom target): bytes after the pixel
/// data that read as an element claiming ~4 GB made dicom-rs allocate and
/// zero-fill 4 GB for 20 s before failing. The length pre-scan refuses the
/// file at once, naming the element.
#[test]
fn a_dicom_element_longer_than_the_file_is_refused_before_allocating() {
    let Some(data) = shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut b = std::fs::read(data.join("dicom/MR_small.dcm")).unwrap();
    b.extend_from_slice(&[0xA9, 0x05, 0x59, 0x05, b'i', 0x04, 0, 0]);
    b.extend_from_slice(&0xFFFD_0000u32.to_le_bytes());
    b.extend_from_slice(&[0u8; 64]);
    let p = write(dir.path(), "long.dcm", &b);
    let t = std::time::Instant::now();
    let e = read_err(&p);
    assert!(t.elapsed().as_secs() < 2, "took {:?}", t.elapsed());
    assert!(
        matches!(e.kind, ErrorKind::Truncated(_)) && e.to_string().contains("(05A9,0559) claims"),
        "{e}"
    );
}

/// Found by fuzzing: BitsStored 0 trips an assertion inside
/// dicom-pixeldata's value conversion; it is a clean error naming the file.
#[test]
fn a_dicom_with_zero_bits_stored_is_an_error_not_a_panic() {
    let Some(data) = shared() else { return };
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    let dir = tempfile::tempdir().unwrap();
    let mut obj = dicom_object::open_file(data.join("dicom/MR_small.dcm")).unwrap();
    obj.put(DataElement::new(
        tags::BITS_STORED,
        VR::US,
        PrimitiveValue::from(0u16),
    ));
    let p = dir.path().join("bits0.dcm");
    obj.write_to_file(&p).unwrap();
    let e = read_err(&p);
    assert!(e.to_string().contains("bits0.dcm"), "{e}");
}

#[test]
fn empty_folder() {
    let dir = tempfile::tempdir().unwrap();
    let e = read_err(dir.path());
    assert!(matches!(e.kind, ErrorKind::EmptyFolder), "{e}");
}

#[test]
fn folder_of_several_dicom_series_lists_them() {
    let Some(data) = shared() else { return };
    let dir = data.join("dicom");
    let e = read_err(&dir);
    match &e.kind {
        ErrorKind::MultipleSeries(list) => {
            assert!(list.len() >= 5);
            assert!(e
                .to_string()
                .contains("1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322"));
        }
        _ => panic!("{e}"),
    }
    // Picking one by UID works (the truncated file belongs to another series
    // but still breaks the listing, so use a clean folder).
    let tmp = tempfile::tempdir().unwrap();
    for f in ["CT_small.dcm", "MR_small.dcm"] {
        std::fs::copy(dir.join(f), tmp.path().join(f)).unwrap();
    }
    std::fs::write(tmp.path().join("LICENSE"), "not dicom").unwrap();
    let v = read_volume(
        tmp.path(),
        &ReadOptions {
            series_uid: Some("1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322".into()),
        },
    )
    .unwrap();
    assert_eq!(v.shape(), [128, 128, 1]);
}

#[test]
fn npy_with_no_pixels_or_odd_dtypes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let npy = |descr: &str, shape: &str| {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((h.len() as u16).to_le_bytes());
        b.extend(h.as_bytes());
        b
    };
    let e = read_err(&write(dir.path(), "zero.npy", &npy("<f4", "(0, 4, 4)")));
    assert!(e.to_string().contains("holds no pixels"), "{e}");
    let e = read_err(&write(
        dir.path(),
        "odd.npy",
        &npy("<f100000000000", "(1000000000,)"),
    ));
    assert!(matches!(e.kind, ErrorKind::Unsupported(_)), "{e}");
    let e = read_err(&write(dir.path(), "utf.npy", &npy("<\u{e9}4", "(2, 2)")));
    assert!(matches!(e.kind, ErrorKind::BadHeader { .. }), "{e}");
}
