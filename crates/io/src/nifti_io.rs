//! NIfTI-1 single files (`.nii`, `.nii.gz`).
//!
//! The header is parsed by the `nifti` crate; voxel data is read here so that
//! every size is checked against the file before anything is allocated, and
//! so that writing needs no ndarray dependency.

use crate::Qform;
use crate::{Error, ErrorKind, Format, Geometry, Result, Volume, MAX_VOXELS};
use flate2::read::GzDecoder;
use nifti::{Endianness, NiftiHeader};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

const HEADER_LEN: usize = 348;
const FORMAT: &str = "NIfTI-1";

fn bad(path: &Path, detail: impl Into<String>) -> Error {
    Error::new(
        path,
        ErrorKind::BadHeader {
            format: FORMAT,
            detail: detail.into(),
        },
    )
}

/// Map a read error in the middle of the stream to a message about truncation.
fn stream_err(path: &Path, e: std::io::Error, what: &str) -> Error {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::new(
            path,
            ErrorKind::Truncated(format!("the file ends before the {what} is complete")),
        ),
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => Error::new(
            path,
            ErrorKind::Truncated(format!(
                "gzip stream is damaged while reading the {what}: {e}"
            )),
        ),
        _ => Error::new(path, ErrorKind::Io(e)),
    }
}

/// (type name, numeric kind, bytes per voxel) for the NIfTI datatype codes medtrans reads.
fn datatype_info(code: i16) -> Option<(&'static str, u8, usize)> {
    Some(match code {
        2 => ("uint8", b'u', 1),
        4 => ("int16", b'i', 2),
        8 => ("int32", b'i', 4),
        16 => ("float32", b'f', 4),
        64 => ("float64", b'f', 8),
        256 => ("int8", b'i', 1),
        512 => ("uint16", b'u', 2),
        768 => ("uint32", b'u', 4),
        1024 => ("int64", b'i', 8),
        1280 => ("uint64", b'u', 8),
        _ => return None,
    })
}

/// Read a NIfTI-1 volume, applying `scl_slope`/`scl_inter` and taking the
/// affine from the sform, else the qform, else the voxel sizes.
pub fn read_nifti(path: &Path) -> Result<Volume> {
    let file = std::fs::File::open(path).map_err(|e| Error::new(path, ErrorKind::Io(e)))?;
    let file_len = file
        .metadata()
        .map_err(|e| Error::new(path, ErrorKind::Io(e)))?
        .len();
    if file_len == 0 {
        return Err(Error::new(path, ErrorKind::Empty));
    }
    let mut raw = BufReader::new(file);
    let mut magic = [0u8; 2];
    raw.read_exact(&mut magic)
        .map_err(|e| stream_err(path, e, "header"))?;
    let gz = magic == [0x1f, 0x8b];
    let name = path.to_string_lossy().to_lowercase();
    if name.ends_with(".gz") && !gz {
        return Err(bad(
            path,
            "the name ends in .gz but the file is not gzip-compressed",
        ));
    }
    // Re-open so the stream starts at byte 0.
    let file = std::fs::File::open(path).map_err(|e| Error::new(path, ErrorKind::Io(e)))?;
    let mut reader: Box<dyn Read> = if gz {
        Box::new(GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };

    let mut hbytes = [0u8; HEADER_LEN];
    reader
        .read_exact(&mut hbytes)
        .map_err(|e| stream_err(path, e, "348-byte header"))?;
    let sizeof_hdr = i32::from_le_bytes(hbytes[..4].try_into().unwrap());
    if sizeof_hdr == 540 || sizeof_hdr.swap_bytes() == 540 {
        return Err(Error::new(
            path,
            ErrorKind::Unsupported("NIfTI-2 files; convert to NIfTI-1".into()),
        ));
    }
    if sizeof_hdr != 348 && sizeof_hdr.swap_bytes() != 348 {
        return Err(bad(
            path,
            format!("sizeof_hdr is {sizeof_hdr}, expected 348"),
        ));
    }
    let hdr = NiftiHeader::from_reader(&hbytes[..]).map_err(|e| bad(path, e.to_string()))?;
    if &hdr.magic != b"n+1\0" {
        return Err(if &hdr.magic == b"ni1\0" {
            Error::new(
                path,
                ErrorKind::Unsupported(
                    "two-file NIfTI (.hdr/.img); convert to a single .nii".into(),
                ),
            )
        } else {
            bad(
                path,
                format!(
                    "magic is {:?}, expected \"n+1\"",
                    String::from_utf8_lossy(&hdr.magic)
                ),
            )
        });
    }

    // Dimensions: stored as int16; the nifti crate hands them over as u16.
    let ndim = hdr.dim[0] as i16;
    if !(1..=7).contains(&ndim) {
        return Err(bad(path, format!("dim[0] is {ndim}, expected 1..7")));
    }
    let mut shape = [1usize; 3];
    let mut total: u128 = 1;
    for i in 1..=ndim as usize {
        let d = hdr.dim[i] as i16;
        if d <= 0 {
            return Err(bad(
                path,
                format!("dim[{i}] is {d}; dimensions must be positive"),
            ));
        }
        total *= d as u128;
        if i <= 3 {
            shape[i - 1] = d as usize;
        } else if d > 1 {
            return Err(Error::new(
                path,
                ErrorKind::Unsupported(format!(
                    "a {ndim}-D image ({} along axis {i}); medtrans reads 3-D volumes",
                    d
                )),
            ));
        }
    }
    if total > MAX_VOXELS as u128 {
        return Err(Error::new(
            path,
            ErrorKind::TooLarge(format!(
                "the header declares {total} voxels; the limit is {MAX_VOXELS}"
            )),
        ));
    }
    let n = total as usize;
    let (dtype, kind, bpv) = datatype_info(hdr.datatype).ok_or_else(|| {
        Error::new(
            path,
            ErrorKind::Unsupported(format!("NIfTI datatype code {}", hdr.datatype)),
        )
    })?;
    let vox_offset = hdr.vox_offset;
    if !vox_offset.is_finite() || vox_offset < HEADER_LEN as f32 || vox_offset > 1e12 {
        return Err(bad(path, format!("vox_offset is {vox_offset}")));
    }
    let offset = vox_offset as u64;
    let nbytes = (n * bpv) as u64;
    if !gz && offset + nbytes > file_len {
        return Err(Error::new(
            path,
            ErrorKind::Truncated(format!(
                "the header promises {nbytes} bytes of voxels from byte {offset}, but the file has {file_len} bytes"
            )),
        ));
    }

    // Skip extensions up to vox_offset, then read the voxels.
    let skip = offset - HEADER_LEN as u64;
    let skipped = std::io::copy(&mut (&mut reader).take(skip), &mut std::io::sink())
        .map_err(|e| stream_err(path, e, "header extensions"))?;
    if skipped < skip {
        return Err(Error::new(
            path,
            ErrorKind::Truncated(format!("vox_offset {offset} lies past the end of the data")),
        ));
    }
    let mut bytes = vec![0u8; nbytes as usize];
    reader
        .read_exact(&mut bytes)
        .map_err(|e| stream_err(path, e, "voxel data"))?;

    let big = hdr.endianness == Endianness::Big;
    let mut data = crate::decode::decode(&bytes, kind, bpv, big).expect("datatype checked above");
    // nibabel's rule: a slope of 0 or NaN means "no scaling".
    let (slope, inter) = (hdr.scl_slope, hdr.scl_inter);
    if slope.is_finite() && slope != 0.0 {
        let inter = if inter.is_finite() { inter } else { 0.0 };
        if slope != 1.0 || inter != 0.0 {
            // f64 arithmetic, then rounded once, as nibabel does for float32 output.
            for v in &mut data {
                *v = (*v as f64 * slope as f64 + inter as f64) as f32;
            }
        }
    }

    let spacing = [
        hdr.pixdim[1].abs() as f64,
        hdr.pixdim[2].abs() as f64,
        hdr.pixdim[3].abs() as f64,
    ];
    let qform = (hdr.qform_code > 0).then(|| Qform {
        code: hdr.qform_code,
        b: hdr.quatern_b,
        c: hdr.quatern_c,
        d: hdr.quatern_d,
        offset: [hdr.quatern_x, hdr.quatern_y, hdr.quatern_z],
        qfac: if hdr.pixdim[0] < 0.0 { -1.0 } else { 1.0 },
    });
    let affine = if hdr.sform_code > 0 {
        let mut m = [[0.0; 4]; 4];
        for (row, src) in m.iter_mut().zip([hdr.srow_x, hdr.srow_y, hdr.srow_z]) {
            for (d, s) in row.iter_mut().zip(src) {
                *d = s as f64;
            }
        }
        m[3][3] = 1.0;
        m
    } else if let Some(q) = &qform {
        q.affine(spacing)
    } else {
        let mut g = Geometry::identity(shape);
        for (i, s) in spacing.iter().enumerate() {
            g.affine[i][i] = *s;
        }
        g.affine
    };
    if affine.iter().flatten().any(|v| !v.is_finite()) {
        return Err(bad(path, "the affine holds NaN or infinite values"));
    }
    Ok(Volume {
        data,
        geometry: Geometry {
            shape,
            spacing,
            affine,
            sform_code: hdr.sform_code,
            qform,
            xyzt_units: hdr.xyzt_units,
        },
        format: Format::Nifti,
        dtype: dtype.into(),
        source: path.to_path_buf(),
    })
}

/// Write `data` (x fastest) as a float32 NIfTI-1 file on `geometry`'s grid,
/// keeping its affine (as sform, and its qform when it had one) and units, so
/// the output overlays the volume the geometry came from. A name ending in
/// `.gz` is compressed. The file is written to a temporary name and renamed,
/// and an existing file is only replaced when `overwrite` is set.
pub fn write_nifti(path: &Path, data: &[f32], geometry: &Geometry, overwrite: bool) -> Result<()> {
    if data.len() != geometry.voxel_count() {
        return Err(Error::invalid(
            path,
            format!(
                "{} values do not fill a {:?} grid",
                data.len(),
                geometry.shape
            ),
        ));
    }
    if geometry
        .shape
        .iter()
        .any(|&d| d == 0 || d > i16::MAX as usize)
    {
        return Err(Error::invalid(
            path,
            format!(
                "NIfTI-1 dimensions must be 1..=32767, got {:?}",
                geometry.shape
            ),
        ));
    }
    if path.exists() && !overwrite {
        return Err(Error::invalid(
            path,
            "already exists; refusing to overwrite it (choose another name or pass --overwrite)",
        ));
    }
    let header = build_header(data, geometry);
    let tmp = path.with_extension(format!(
        "{}.part",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let io = |e: std::io::Error| Error::new(path, ErrorKind::Io(e));
    let result = (|| -> std::io::Result<()> {
        let write_body = |out: &mut dyn Write| -> std::io::Result<()> {
            out.write_all(&header)?;
            out.write_all(&[0u8; 4])?; // no extensions
            let mut buf = Vec::with_capacity(data.len().min(1 << 20) * 4);
            for chunk in data.chunks(1 << 20) {
                buf.clear();
                for v in chunk {
                    buf.extend_from_slice(&v.to_le_bytes());
                }
                out.write_all(&buf)?;
            }
            Ok(())
        };
        let file = BufWriter::new(std::fs::File::create(&tmp)?);
        // Every layer is finished explicitly so that a failure (a full disk)
        // surfaces here, before the rename makes the file look complete.
        let file = if path.to_string_lossy().to_lowercase().ends_with(".gz") {
            let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::new(6));
            write_body(&mut gz)?;
            gz.finish()?
        } else {
            let mut file = file;
            write_body(&mut file)?;
            file
        };
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// The 348 bytes of a little-endian NIfTI-1 header for float32 data.
fn build_header(data: &[f32], g: &Geometry) -> Vec<u8> {
    let mut h = vec![0u8; HEADER_LEN];
    let put_i16 =
        |h: &mut [u8], off: usize, v: i16| h[off..off + 2].copy_from_slice(&v.to_le_bytes());
    let put_f32 =
        |h: &mut [u8], off: usize, v: f32| h[off..off + 4].copy_from_slice(&v.to_le_bytes());
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    h[38] = b'r'; // regular
    let ndim = if g.shape[2] > 1 { 3 } else { 2 };
    put_i16(&mut h, 40, ndim);
    for i in 0..3 {
        put_i16(&mut h, 42 + 2 * i, g.shape[i] as i16);
    }
    for i in 3..7 {
        put_i16(&mut h, 42 + 2 * i, 1);
    }
    put_i16(&mut h, 70, 16); // datatype float32
    put_i16(&mut h, 72, 32); // bitpix
    let qfac = g.qform.map(|q| q.qfac).unwrap_or(1.0);
    put_f32(&mut h, 76, qfac);
    for i in 0..3 {
        put_f32(&mut h, 80 + 4 * i, g.spacing[i] as f32);
    }
    put_f32(&mut h, 108, 352.0); // vox_offset
    put_f32(&mut h, 112, 1.0); // scl_slope
    put_f32(&mut h, 116, 0.0); // scl_inter
    h[123] = if g.xyzt_units == 0 { 2 } else { g.xyzt_units };
    let (lo, hi) = data
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if lo.is_finite() {
        put_f32(&mut h, 124, hi); // cal_max
        put_f32(&mut h, 128, lo); // cal_min
    }
    let descrip = b"medtrans";
    h[148..148 + descrip.len()].copy_from_slice(descrip);
    if let Some(q) = g.qform {
        put_i16(&mut h, 252, q.code);
        put_f32(&mut h, 256, q.b);
        put_f32(&mut h, 260, q.c);
        put_f32(&mut h, 264, q.d);
        for i in 0..3 {
            put_f32(&mut h, 268 + 4 * i, q.offset[i]);
        }
    }
    let sform_code = if g.sform_code > 0 { g.sform_code } else { 1 };
    put_i16(&mut h, 254, sform_code);
    for r in 0..3 {
        for c in 0..4 {
            put_f32(&mut h, 280 + 16 * r + 4 * c, g.affine[r][c] as f32);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    h
}
