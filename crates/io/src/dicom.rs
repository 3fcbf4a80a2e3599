//! DICOM: a single (possibly multi-frame) file, or a folder holding one series.
//!
//! Pixel data is decoded by `dicom-pixeldata` (native, RLE, JPEG and JPEG 2000
//! through the pure-Rust OpenJPEG port), with RescaleSlope/Intercept applied,
//! so CT comes out in Hounsfield units. Geometry follows the DICOM patient
//! coordinate system (LPS) and is converted to the RAS+ convention of NIfTI.

use crate::{list_files, Error, ErrorKind, Format, Geometry, Result, Volume, MAX_VOXELS};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::PixelDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One series found in a folder.
#[derive(Debug, Clone)]
pub struct DicomSeriesInfo {
    pub uid: String,
    pub modality: String,
    pub description: String,
    pub files: usize,
}

impl std::fmt::Display for DicomSeriesInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}  {}  {} file(s)  {}",
            self.uid, self.modality, self.files, self.description
        )
    }
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(
        path,
        ErrorKind::Truncated(format!("cannot parse DICOM: {e}")),
    )
}

/// True when the file carries the "DICM" marker after the 128-byte preamble.
fn is_dicom_file(path: &Path) -> bool {
    let mut head = [0u8; 132];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map(|_| &head[128..] == b"DICM")
        .unwrap_or(false)
}

/// dicom-rs accepts encapsulated pixel data whose closing (FFFE,E0DD) item is
/// missing; such a file was cut short, so look for the delimiter near the end.
fn has_sequence_delimiter(path: &Path, len: u64) -> bool {
    use std::io::{Seek, SeekFrom};
    const DELIM: [u8; 8] = [0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0];
    const DELIM_BE: [u8; 8] = [0xFF, 0xFE, 0xE0, 0xDD, 0, 0, 0, 0];
    let tail = len.min(4096);
    let mut buf = vec![0u8; tail as usize];
    let ok = std::fs::File::open(path).and_then(|mut f| {
        f.seek(SeekFrom::Start(len - tail))?;
        f.read_exact(&mut buf)
    });
    ok.is_ok() && buf.windows(8).any(|w| w == DELIM || w == DELIM_BE)
}

fn text(obj: &DefaultDicomObject, tag: dicom_object::Tag) -> Option<String> {
    obj.element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim().trim_end_matches('\0').to_string())
}

fn floats(obj: &DefaultDicomObject, tag: dicom_object::Tag) -> Option<Vec<f64>> {
    obj.element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_multi_float64().ok())
}

fn uint(obj: &DefaultDicomObject, tag: dicom_object::Tag) -> Option<u32> {
    obj.element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_int::<u32>().ok())
}

fn float(obj: &DefaultDicomObject, tag: dicom_object::Tag) -> Option<f64> {
    floats(obj, tag).and_then(|v| v.first().copied())
}

/// Refuse a file whose element lengths cannot fit in it, before dicom-rs
/// allocates what they claim (see `dicom_scan`).
fn check_element_lengths(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::new(path, ErrorKind::Io(e)))?;
    crate::dicom_scan::check_lengths(&bytes).map_err(|((g, e), claimed, left)| {
        Error::new(
            path,
            ErrorKind::Truncated(format!(
                "element ({g:04X},{e:04X}) claims {claimed} bytes but only {left} follow: \
                 the file is damaged or cut short"
            )),
        )
    })
}

fn open_header(path: &Path) -> Result<DefaultDicomObject> {
    check_element_lengths(path)?;
    OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| corrupt(path, e))
}

/// The series in a folder of DICOM files (files without the DICM marker are skipped).
pub fn list_dicom_series(dir: &Path) -> Result<Vec<(DicomSeriesInfo, Vec<PathBuf>)>> {
    let files: Vec<PathBuf> = list_files(dir)?
        .into_iter()
        .filter(|p| is_dicom_file(p))
        .collect();
    if files.is_empty() {
        return Err(Error::new(dir, ErrorKind::EmptyFolder));
    }
    let mut series: Vec<(DicomSeriesInfo, Vec<PathBuf>)> = Vec::new();
    for p in files {
        let obj = open_header(&p)?;
        let uid = text(&obj, tags::SERIES_INSTANCE_UID)
            .unwrap_or_else(|| "(no SeriesInstanceUID)".into());
        match series.iter_mut().find(|(s, _)| s.uid == uid) {
            Some((s, v)) => {
                s.files += 1;
                v.push(p);
            }
            None => series.push((
                DicomSeriesInfo {
                    uid,
                    modality: text(&obj, tags::MODALITY).unwrap_or_default(),
                    description: text(&obj, tags::SERIES_DESCRIPTION).unwrap_or_default(),
                    files: 1,
                },
                vec![p],
            )),
        }
    }
    Ok(series)
}

/// Read a DICOM file, or the one series in a folder (or the series `series_uid`).
pub fn read_dicom(path: &Path, series_uid: Option<&str>) -> Result<Volume> {
    if path.is_dir() {
        let mut series = list_dicom_series(path)?;
        let chosen = match series_uid {
            Some(uid) => {
                let i = series
                    .iter()
                    .position(|(s, _)| s.uid == uid)
                    .ok_or_else(|| {
                        Error::invalid(
                            path,
                            format!(
                                "no series with SeriesInstanceUID {uid}; the folder holds:\n{}",
                                series
                                    .iter()
                                    .map(|(s, _)| format!("  {s}"))
                                    .collect::<Vec<_>>()
                                    .join("\n")
                            ),
                        )
                    })?;
                series.swap_remove(i)
            }
            None if series.len() == 1 => series.pop().unwrap(),
            None => {
                return Err(Error::new(
                    path,
                    ErrorKind::MultipleSeries(series.into_iter().map(|(s, _)| s).collect()),
                ))
            }
        };
        read_series(path, &chosen.1)
    } else {
        let frames = read_frames(path)?;
        assemble(path, vec![frames])
    }
}

/// One decoded file: its frames and the geometry tags it carries.
struct Frames {
    path: PathBuf,
    rows: usize,
    cols: usize,
    n: usize,
    data: Vec<f32>,
    dtype: String,
    position: Option<[f64; 3]>,
    orientation: Option<[f64; 6]>,
    pixel_spacing: Option<[f64; 2]>,
    slice_step: Option<f64>,
}

fn read_frames(path: &Path) -> Result<Frames> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::new(path, ErrorKind::Io(e)))?
        .len();
    if len == 0 {
        return Err(Error::new(path, ErrorKind::Empty));
    }
    check_element_lengths(path)?;
    let obj = dicom_object::open_file(path).map_err(|e| corrupt(path, e))?;
    let Some(pixel_data) = obj.element_opt(tags::PIXEL_DATA).ok().flatten() else {
        return Err(Error::invalid(path, "the DICOM object has no pixel data"));
    };
    if matches!(
        pixel_data.value(),
        dicom_core::value::Value::PixelSequence(_)
    ) && !has_sequence_delimiter(path, len)
    {
        return Err(Error::new(
            path,
            ErrorKind::Truncated(
                "the compressed pixel data ends without its sequence delimiter: the file was cut short".into(),
            ),
        ));
    }
    let rows = uint(&obj, tags::ROWS).unwrap_or(0) as usize;
    let cols = uint(&obj, tags::COLUMNS).unwrap_or(0) as usize;
    let n_frames = uint(&obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1) as usize;
    if rows == 0 || cols == 0 {
        return Err(Error::invalid(path, "Rows or Columns is missing or zero"));
    }
    if (rows as u128) * (cols as u128) * (n_frames as u128) > MAX_VOXELS as u128 {
        return Err(Error::new(
            path,
            ErrorKind::TooLarge(format!(
                "{rows}x{cols}x{n_frames} voxels exceed {MAX_VOXELS}"
            )),
        ));
    }
    let decoded = quietly(|| obj.decode_pixel_data())
        .ok_or_else(|| {
            Error::new(
                path,
                ErrorKind::Truncated(
                    "cannot decode the pixel data: the decoder failed on damaged data".into(),
                ),
            )
        })?
        .map_err(|e| {
            Error::new(
                path,
                ErrorKind::Truncated(format!("cannot decode the pixel data: {e}")),
            )
        })?;
    let samples = decoded.samples_per_pixel() as usize;
    // dicom-pixeldata asserts on some damaged headers (BitsStored 0, found
    // by fuzzing): caught like a decoder crash.
    let values: Vec<f32> = quietly(|| decoded.to_vec::<f32>())
        .ok_or_else(|| {
            Error::new(
                path,
                ErrorKind::Truncated(
                    "cannot convert the pixel data: its header fields are inconsistent".into(),
                ),
            )
        })?
        .map_err(|e| {
            Error::new(
                path,
                ErrorKind::Truncated(format!("cannot convert the pixel data: {e}")),
            )
        })?;
    let n = decoded.number_of_frames() as usize;
    let expected = rows * cols * n * samples;
    if values.len() != expected {
        return Err(Error::new(
            path,
            ErrorKind::Truncated(format!(
                "pixel data holds {} values, {rows}x{cols}x{n} frames need {expected}",
                values.len()
            )),
        ));
    }
    let data = if samples == 3 {
        // Colour: to gray (BT.601), interleaved or planar.
        let planar = decoded.planar_configuration() as u8 == 1;
        let px = rows * cols;
        (0..n * px)
            .map(|i| {
                let (f, p) = (i / px, i % px);
                let [r, g, b] = if planar {
                    let base = f * px * 3;
                    [
                        values[base + p],
                        values[base + px + p],
                        values[base + 2 * px + p],
                    ]
                } else {
                    [values[3 * i], values[3 * i + 1], values[3 * i + 2]]
                };
                0.299 * r + 0.587 * g + 0.114 * b
            })
            .collect()
    } else if samples == 1 {
        values
    } else {
        return Err(Error::new(
            path,
            ErrorKind::Unsupported(format!("{samples} samples per pixel")),
        ));
    };
    let bits = decoded.bits_allocated();
    let signed = decoded.pixel_representation() as u8 == 1;
    let pos = floats(&obj, tags::IMAGE_POSITION_PATIENT).filter(|v| v.len() == 3);
    let ori = floats(&obj, tags::IMAGE_ORIENTATION_PATIENT).filter(|v| v.len() == 6);
    let ps = floats(&obj, tags::PIXEL_SPACING).filter(|v| v.len() == 2);
    Ok(Frames {
        path: path.to_path_buf(),
        rows,
        cols,
        n,
        data,
        dtype: format!("{}int{bits}", if signed { "" } else { "u" }),
        position: pos.map(|v| [v[0], v[1], v[2]]),
        orientation: ori.map(|v| [v[0], v[1], v[2], v[3], v[4], v[5]]),
        pixel_spacing: ps.map(|v| [v[0], v[1]]),
        slice_step: float(&obj, tags::SPACING_BETWEEN_SLICES)
            .or_else(|| float(&obj, tags::SLICE_THICKNESS))
            .filter(|v| *v > 0.0),
    })
}

/// Slice gaps may differ from their median by this fraction at most
/// (rounding of ImagePositionPatient stays far below it; one missing slice
/// doubles a gap).
const MAX_SPACING_DEVIATION: f64 = 0.2;

fn read_series(dir: &Path, files: &[PathBuf]) -> Result<Volume> {
    let mut frames = Vec::with_capacity(files.len());
    for p in files {
        frames.push(read_frames(p)?);
    }
    assemble(dir, frames)
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Stack the files' frames into one volume, sorted by ImagePositionPatient
/// projected on the slice normal, and build the RAS affine.
fn assemble(source: &Path, mut frames: Vec<Frames>) -> Result<Volume> {
    let (rows, cols) = (frames[0].rows, frames[0].cols);
    for f in &frames {
        if (f.rows, f.cols) != (rows, cols) {
            return Err(Error::invalid(
                &f.path,
                format!(
                    "{}x{} pixels, but other files of the series have {}x{}",
                    f.rows, f.cols, rows, cols
                ),
            ));
        }
    }
    if frames[0].orientation.is_none()
        || frames[0].position.is_none()
        || frames[0].pixel_spacing.is_none()
    {
        // E.g. enhanced multi-frame files keep geometry in functional groups,
        // which medtrans does not read yet.
        tracing::warn!(
            "{}: no ImagePositionPatient/ImageOrientationPatient/PixelSpacing at the top level; assuming an identity orientation, origin 0 and 1 mm pixels",
            source.display()
        );
    }
    let orientation = frames[0]
        .orientation
        .unwrap_or([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    let row_dir = [orientation[0], orientation[1], orientation[2]];
    let col_dir = [orientation[3], orientation[4], orientation[5]];
    let normal = cross(row_dir, col_dir);
    if frames.len() > 1 {
        if let Some(f) = frames.iter().find(|f| f.position.is_none()) {
            return Err(Error::invalid(
                &f.path,
                "no ImagePositionPatient: cannot order the slices of the series",
            ));
        }
        frames.sort_by(|a, b| {
            dot(a.position.unwrap(), normal).total_cmp(&dot(b.position.unwrap(), normal))
        });
    }
    let ps = frames[0].pixel_spacing.unwrap_or([1.0, 1.0]);
    let slice_step = if frames.len() > 1 {
        let d: Vec<f64> = frames
            .windows(2)
            .map(|w| dot(w[1].position.unwrap(), normal) - dot(w[0].position.unwrap(), normal))
            .collect();
        let mut sorted = d.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        if median <= 1e-6 {
            return Err(Error::invalid(
                source,
                "several files share one slice position: is this one series?",
            ));
        }
        let worst = d.iter().map(|x| (x - median).abs()).fold(0.0, f64::max);
        if worst > MAX_SPACING_DEVIATION * median {
            // A missing file, or two stacks in one series: stacking the
            // slices evenly would put anatomy at the wrong place.
            return Err(Error::invalid(
                source,
                format!(
                    "slice spacing varies from {:.3} to {:.3} mm (median {median:.3} mm): \
                     a slice is missing or the folder mixes stacks; medtrans would place \
                     slices wrongly",
                    sorted[0],
                    sorted[sorted.len() - 1]
                ),
            ));
        }
        if worst > 0.01 * median.max(1.0) {
            tracing::warn!(
                "{}: slice spacing varies ({:.3}..{:.3} mm); using the median {median:.3} mm",
                source.display(),
                sorted[0],
                sorted[sorted.len() - 1]
            );
        }
        median
    } else {
        frames[0].slice_step.unwrap_or(1.0)
    };
    let origin = frames[0].position.unwrap_or([0.0; 3]);
    // LPS affine: x = column index along row_dir, y = row index along col_dir.
    let steps = [
        row_dir.map(|v| v * ps[1]),
        col_dir.map(|v| v * ps[0]),
        normal.map(|v| v * slice_step),
    ];
    let mut affine = [[0.0; 4]; 4];
    for i in 0..3 {
        let flip = if i < 2 { -1.0 } else { 1.0 }; // LPS -> RAS
        for (j, s) in steps.iter().enumerate() {
            affine[i][j] = flip * s[i];
        }
        affine[i][3] = flip * origin[i];
    }
    affine[3][3] = 1.0;
    let depth: usize = frames.iter().map(|f| f.n).sum();
    let dtype = frames[0].dtype.clone();
    let mut data = Vec::with_capacity(rows * cols * depth);
    for f in frames {
        data.extend_from_slice(&f.data);
    }
    Ok(Volume {
        data,
        geometry: Geometry {
            shape: [cols, rows, depth],
            spacing: [ps[1], ps[0], slice_step],
            affine,
            sform_code: 1,
            qform: None,
            xyzt_units: 2,
        },
        format: Format::Dicom,
        dtype,
        source: source.to_path_buf(),
    })
}

thread_local! {
    /// Set while a third-party decoder runs: its panics are caught, so the
    /// panic hook must not print them.
    static DECODING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run a third-party decoder that may panic on damaged data (dicom-rs's
/// RLE decoder indexes past its buffer on some corrupt files): `None`
/// instead of a panic, and no panic message on stderr.
fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !DECODING.with(|d| d.get()) {
                previous(info);
            }
        }));
    });
    DECODING.with(|d| d.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    DECODING.with(|d| d.set(false));
    r.ok()
}
