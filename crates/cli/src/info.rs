//! `medtrans info`: what the reader sees in one file or a whole folder,
//! like `nib-ls` and `fslinfo`.
use anyhow::{bail, Result};
use medtrans_io::{detect_format, list_dicom_series, list_files, read_volume, ReadOptions};
use medtrans_io::{Format, Volume};
use std::path::{Path, PathBuf};

/// Show format, shape, spacing, data type, orientation and intensities of images.
///
/// The first thing to run on new data: it shows whether the reader applies
/// the scaling you expect (NIfTI scl_slope, DICOM rescale to HU), whether the
/// orientation is what you think, and whether NaN/Inf voxels are present.
///
/// Give one or more files or folders. A folder is searched (with its
/// subfolders) for images; a folder holding only DICOM files of one series
/// is shown as that series. A file that cannot be read gets its own error
/// line, the others are still shown, and the exit status is 1.
///
/// Examples:
///   medtrans info t1.nii.gz
///   medtrans info --table scans/            # one row per image, like nib-ls
///   medtrans info dicom/series_folder --series 1.2.840...
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// NIfTI files, DICOM files or series folders, PNG/TIFF images, NPY arrays, or folders of them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// One row per image (file, format, data type, shape, spacing, orientation, range) instead of a block each.
    #[arg(long)]
    table: bool,
    /// For a DICOM folder holding several series: the SeriesInstanceUID to read.
    #[arg(long)]
    series: Option<String>,
}

/// One image to show: a file, or a DICOM series (a folder and its UID).
struct Entry {
    path: PathBuf,
    series: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let mut entries = Vec::new();
    let mut skipped = 0usize;
    for p in &args.paths {
        if p.is_dir() && args.series.is_none() {
            expand_folder(p, &mut entries, &mut skipped);
        } else {
            entries.push(Entry {
                path: p.clone(),
                series: args.series.clone(),
            });
        }
    }
    if entries.is_empty() {
        let list: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        bail!(
            "{}: no image files found (NIfTI, DICOM, PNG, TIFF or NPY)",
            list.join(", ")
        );
    }
    if args.table {
        say!(
            "{:<50} {:<8} {:<8} {:<17} {:<22} {:<6} range",
            "file",
            "format",
            "dtype",
            "shape",
            "spacing (mm)",
            "orient"
        );
    }
    let mut failed = 0usize;
    for (i, e) in entries.iter().enumerate() {
        let opts = ReadOptions {
            series_uid: e.series.clone(),
        };
        let name = match &e.series {
            Some(uid) if args.series.is_none() => format!("{} (series {uid})", e.path.display()),
            _ => e.path.display().to_string(),
        };
        match read_volume(&e.path, &opts) {
            Ok(vol) if args.table => say!("{}", table_row(&name, &vol)),
            Ok(vol) => {
                if i > 0 {
                    say!();
                }
                block(&name, &vol);
            }
            // One image: its error is the command's one error line.
            Err(err) if entries.len() == 1 => return Err(err.into()),
            Err(err) => {
                failed += 1;
                // An error line on stderr, and the row or block on stdout
                // says so too, so that a table keeps one row per image.
                eprintln!("error: {err}");
                if args.table {
                    say!("{name:<50} error: {err}");
                } else {
                    if i > 0 {
                        say!();
                    }
                    say!("file:         {name}");
                    say!("error:        {err}");
                }
            }
        }
    }
    if skipped > 0 && entries.len() > 1 {
        let s = if skipped == 1 { "" } else { "s" };
        say!(
            "\n({skipped} file{s} that {} not images {} passed over)",
            if skipped == 1 { "is" } else { "are" },
            if skipped == 1 { "was" } else { "were" }
        );
    }
    match failed {
        0 => Ok(()),
        n => bail!(
            "{n} of {} images could not be read (see the errors above)",
            entries.len()
        ),
    }
}

/// The images in `dir` and its subfolders, in sorted order. A folder whose
/// files are all DICOM (two or more) is one entry per series; elsewhere
/// every file the reader recognises is an entry, and the rest (licences,
/// CSVs) are counted in `skipped`.
fn expand_folder(dir: &Path, entries: &mut Vec<Entry>, skipped: &mut usize) {
    let files = match list_files(dir) {
        Ok(f) => f,
        Err(_) => {
            // Unreadable folder: let the reader name the problem.
            entries.push(Entry {
                path: dir.to_path_buf(),
                series: None,
            });
            return;
        }
    };
    let formats: Vec<Option<Format>> = files.iter().map(|f| image_format(f)).collect();
    let all_dicom = files.len() >= 2 && formats.iter().all(|f| *f == Some(Format::Dicom));
    let series = if all_dicom {
        list_dicom_series(dir).ok()
    } else {
        None
    };
    match series {
        Some(series) if series.iter().all(|(s, _)| s.files > 1) => {
            for (s, _) in series {
                entries.push(Entry {
                    path: dir.to_path_buf(),
                    series: Some(s.uid),
                });
            }
        }
        _ => {
            for (f, fmt) in files.iter().zip(&formats) {
                match fmt {
                    Some(_) => entries.push(Entry {
                        path: f.clone(),
                        series: None,
                    }),
                    None => *skipped += 1,
                }
            }
        }
    }
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_dir()
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect()
        })
        .unwrap_or_default();
    subdirs.sort();
    for d in subdirs {
        expand_folder(&d, entries, skipped);
    }
}

/// The format of a file that looks like an image, by its first bytes or
/// its name; `None` for other files. An image-named file that is empty or
/// damaged still counts, so that its error is shown.
fn image_format(path: &Path) -> Option<Format> {
    if let Ok(f) = detect_format(path) {
        return Some(f);
    }
    let name = path.file_name()?.to_string_lossy().to_lowercase();
    let by_name = [
        (".nii", Format::Nifti),
        (".nii.gz", Format::Nifti),
        (".dcm", Format::Dicom),
        (".png", Format::Png),
        (".tif", Format::Tiff),
        (".tiff", Format::Tiff),
        (".npy", Format::Npy),
    ];
    by_name
        .iter()
        .find(|(ext, _)| name.ends_with(ext))
        .map(|(_, f)| *f)
}

fn block(name: &str, vol: &Volume) {
    let g = &vol.geometry;
    let [nx, ny, nz] = g.shape;
    say!("file:         {name}");
    say!("format:       {} ({})", vol.format, vol.dtype);
    say!("shape:        {nx} x {ny} x {nz} voxels");
    say!(
        "spacing:      {} x {} x {} mm",
        fmt_num(g.spacing[0]),
        fmt_num(g.spacing[1]),
        fmt_num(g.spacing[2])
    );
    let source = if vol.format == Format::Dicom {
        "DICOM position/orientation tags"
    } else if g.sform_code > 0 {
        "sform"
    } else if g.qform.is_some() {
        "qform"
    } else {
        "voxel sizes only"
    };
    say!("orientation:  {} (affine from {source})", g.orientation());
    for (i, row) in g.affine.iter().take(3).enumerate() {
        let label = if i == 0 { "affine:" } else { "" };
        say!(
            "{label:<13} [{:>9.3} {:>9.3} {:>9.3} {:>9.3}]",
            row[0],
            row[1],
            row[2],
            row[3]
        );
    }
    let nan = vol.data.iter().filter(|v| v.is_nan()).count();
    let inf = vol.data.iter().filter(|v| v.is_infinite()).count();
    let finite: Vec<f32> = vol.data.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        say!("intensity:    no finite voxels");
    } else {
        let sum: f64 = finite.iter().map(|&v| v as f64).sum();
        let qs = [0.0, 0.5, 1.0, 50.0, 99.0, 99.5, 100.0];
        let p = medtrans_transforms::percentile(&finite, &qs).expect("non-empty");
        say!(
            "intensity:    min {}  max {}  mean {}",
            fmt_num(p[0]),
            fmt_num(p[6]),
            fmt_num(sum / finite.len() as f64)
        );
        let list: Vec<String> = qs[1..6]
            .iter()
            .zip(&p[1..6])
            .map(|(q, v)| format!("p{q} {}", fmt_num(*v)))
            .collect();
        say!("percentiles:  {}", list.join("  "));
        if p[0] == p[6] {
            say!("warning:      the image is constant");
        }
    }
    say!("non-finite:   {nan} NaN, {inf} Inf");
}

/// One `--table` row: file, format, dtype, shape, spacing, orientation and
/// the finite intensity range (with a NaN/Inf count when there are any).
fn table_row(name: &str, vol: &Volume) -> String {
    let g = &vol.geometry;
    let [nx, ny, nz] = g.shape;
    let spacing = g.spacing.map(fmt_num).join(" x ");
    let (mut lo, mut hi, mut bad) = (f32::INFINITY, f32::NEG_INFINITY, 0usize);
    for &v in &vol.data {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        } else {
            bad += 1;
        }
    }
    let range = if lo > hi {
        "no finite voxels".to_string()
    } else {
        format!("{} .. {}", fmt_num(lo as f64), fmt_num(hi as f64))
    };
    let bad = if bad > 0 {
        format!(" ({bad} NaN/Inf)")
    } else {
        String::new()
    };
    format!(
        "{name:<50} {:<8} {:<8} {:<17} {spacing:<22} {:<6} {range}{bad}",
        vol.format.to_string(),
        vol.dtype,
        format!("{nx} x {ny} x {nz}"),
        g.orientation()
    )
}

fn fmt_num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e9 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}
