//! Reading and writing medical images, with no dependency on Burn.
//!
//! Every reader returns a [`Volume`]: `f32` intensities in the file's physical
//! units (NIfTI `scl_slope`/`scl_inter` and DICOM rescale applied), stored with
//! x varying fastest as in NIfTI, plus the voxel-to-world [`Geometry`] needed to
//! write a result that lines up with its input in any viewer.
//!
//! Every failure is an [`Error`] that names the file and what is wrong with it;
//! readers check sizes before allocating, so a corrupt header cannot make them
//! reserve gigabytes or panic.

mod decode;
mod dicom;
mod dicom_scan;
mod error;
mod nifti_io;
mod npy;
mod raster;

// The image types live in the codec-free core; readers and writers here
// fill and consume them.
pub use dicom::{list_dicom_series, read_dicom, DicomSeriesInfo};
pub use error::{Error, ErrorKind, Result};
pub use medtrans_core::{Format, Geometry, Qform, Slice, Volume, MAX_VOXELS};
pub use nifti_io::{read_nifti, write_nifti};
pub use npy::{read_npy, write_npy, NpyArray};
pub use raster::{montage, read_raster, write_png_atomic, write_png_gray};

use std::path::{Path, PathBuf};

/// Options for [`read_volume`].
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// With a DICOM folder of several series, the SeriesInstanceUID to read.
    pub series_uid: Option<String>,
}

/// Read any supported image: a NIfTI-1 file, a DICOM file or series folder, a
/// PNG/TIFF image or a folder of them (a stack sorted by name), or an NPY array.
pub fn read_volume(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<Volume> {
    let path = path.as_ref();
    let meta = std::fs::metadata(path).map_err(|e| Error::new(path, ErrorKind::Io(e)))?;
    if meta.is_dir() {
        return read_folder(path, opts);
    }
    match detect_format(path)? {
        Format::Nifti => read_nifti(path),
        Format::Dicom => read_dicom(path, opts.series_uid.as_deref()),
        Format::Png | Format::Tiff => read_raster(path),
        Format::Npy => read_npy(path).and_then(|a| a.into_volume(path)),
    }
}

/// Guess a file's format from its first bytes, falling back on its extension.
pub fn detect_format(path: &Path) -> Result<Format> {
    use std::io::Read;
    let mut head = [0u8; 132];
    let mut f = std::fs::File::open(path).map_err(|e| Error::new(path, ErrorKind::Io(e)))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(Error::new(path, ErrorKind::Io(e))),
        }
    }
    if n == 0 {
        return Err(Error::new(path, ErrorKind::Empty));
    }
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    // DICOM first: a DICOM preamble may itself look like a TIFF header.
    if n >= 132 && &head[128..132] == b"DICM" {
        return Ok(Format::Dicom);
    }
    if head[..n].starts_with(b"\x93NUMPY") {
        return Ok(Format::Npy);
    }
    if head[..n].starts_with(b"\x89PNG") {
        return Ok(Format::Png);
    }
    if head[..n].starts_with(b"II*\0") || head[..n].starts_with(b"MM\0*") {
        return Ok(Format::Tiff);
    }
    if name.ends_with(".nii") || name.ends_with(".nii.gz") || head[..n].starts_with(&[0x1f, 0x8b]) {
        return Ok(Format::Nifti);
    }
    if n >= 4 && (head[..4] == 348i32.to_le_bytes() || head[..4] == 348i32.to_be_bytes()) {
        return Ok(Format::Nifti);
    }
    let ext = Path::new(&name)
        .extension()
        .map(|e| e.to_string_lossy().to_string())
        .unwrap_or_default();
    match ext.as_str() {
        "dcm" | "ima" => Ok(Format::Dicom),
        "png" => Ok(Format::Png),
        "tif" | "tiff" => Ok(Format::Tiff),
        "npy" => Ok(Format::Npy),
        _ => Err(Error::new(
            path,
            ErrorKind::UnknownFormat(
                "expected NIfTI (.nii, .nii.gz), DICOM, PNG, TIFF or NPY".into(),
            ),
        )),
    }
}

/// Sorted regular files of a folder (hidden files skipped).
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::new(dir, ErrorKind::Io(e)))?;
    let mut files = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::new(dir, ErrorKind::Io(e)))?;
        let p = entry.path();
        let hidden = p
            .file_name()
            .map(|n| n.to_string_lossy().starts_with('.'))
            .unwrap_or(true);
        if p.is_file() && !hidden {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

fn has_ext(p: &Path, exts: &[&str]) -> bool {
    p.extension()
        .map(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
        .unwrap_or(false)
}

/// A folder is a DICOM series, or a stack of 2-D PNG/TIFF/NPY slices sorted by name.
fn read_folder(dir: &Path, opts: &ReadOptions) -> Result<Volume> {
    let files = list_files(dir)?;
    if files.is_empty() {
        return Err(Error::new(dir, ErrorKind::EmptyFolder));
    }
    let slices: Vec<&PathBuf> = files
        .iter()
        .filter(|p| has_ext(p, &["png", "tif", "tiff", "npy"]))
        .collect();
    let any_dicom = files
        .iter()
        .any(|p| matches!(detect_format(p), Ok(Format::Dicom)));
    if slices.is_empty() || any_dicom {
        return read_dicom(dir, opts.series_uid.as_deref());
    }
    let mut stack: Vec<Slice> = Vec::with_capacity(slices.len());
    let mut format = Format::Png;
    let mut dtype = String::new();
    for p in &slices {
        let v = if has_ext(p, &["npy"]) {
            read_npy(p)?.into_volume(p)?
        } else {
            read_raster(p)?
        };
        if v.shape()[2] != 1 {
            return Err(Error::new(
                p.as_path(),
                ErrorKind::Invalid("a folder stack must hold 2-D images only".into()),
            ));
        }
        let s = Slice::from_plane(&v, 2, 0);
        if let Some(first) = stack.first() {
            if (first.width, first.height) != (s.width, s.height) {
                return Err(Error::new(
                    p.as_path(),
                    ErrorKind::Invalid(format!(
                        "image is {}x{} but the first image of the folder is {}x{}",
                        s.width, s.height, first.width, first.height
                    )),
                ));
            }
        }
        format = v.format;
        dtype = v.dtype;
        stack.push(s);
    }
    let (w, h) = (stack[0].width, stack[0].height);
    let mut geometry = Geometry::identity([w, h, stack.len()]);
    geometry.spacing = [1.0; 3];
    let mut vol = Volume {
        data: vec![0.0; w * h * stack.len()],
        geometry,
        format,
        dtype,
        source: dir.to_path_buf(),
    };
    for (z, s) in stack.iter().enumerate() {
        s.write_plane(&mut vol, 2, z);
    }
    Ok(vol)
}

/// Write a whole file so that it is either complete or absent under its
/// name: into `NAME.part` beside it, fsynced, then renamed. An interrupted
/// run or a full disk never leaves a half-written output that looks done;
/// the error names the path.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".part");
    let tmp = PathBuf::from(tmp);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| Error::new(path, ErrorKind::Io(e)))
}

/// `target` as a path relative to `base` (both absolute), through their
/// common ancestor; `None` when they share nothing but the root. A run's
/// config keeps its dataset this way, and a report links other files.
pub fn relative_path(base: &Path, target: &Path) -> Option<PathBuf> {
    let (b, t): (Vec<_>, Vec<_>) = (base.components().collect(), target.components().collect());
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    if common <= 1 {
        return None;
    }
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &t[common..] {
        rel.push(c.as_os_str());
    }
    Some(rel)
}

/// The project's shared real-data folder (`../shared/data` beside a checkout),
/// found through `MEDTRANS_SHARED_DATA` or by walking up from the working
/// directory. Tests, benchmarks and experiments read real images from it.
pub fn shared_data_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MEDTRANS_SHARED_DATA") {
        return Some(PathBuf::from(p));
    }
    let start = std::env::current_dir().ok()?;
    start
        .ancestors()
        .map(|a| a.join("shared").join("data"))
        .find(|p| p.join("README.md").is_file())
}

/// For tests and benchmarks: the shared data folder, or `None` with a notice
/// when it is missing outside CI. Under CI (`CI` set) a missing folder is a
/// failure, so CI can never pass without real data.
pub fn shared_data_or_skip() -> Option<PathBuf> {
    let p = shared_data_dir();
    if p.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "../shared/data is missing in CI"
        );
        eprintln!("skipped: ../shared/data not found (set MEDTRANS_SHARED_DATA)");
    }
    p
}
