//! `medtrans info`: what the reader sees in a file, like `nib-ls`.
use anyhow::Result;
use medtrans_io::{read_volume, ReadOptions};
use std::path::PathBuf;

/// Show format, shape, spacing, data type, orientation and intensities of an image.
///
/// The first thing to run on new data: it shows whether the reader applies
/// the scaling you expect (NIfTI scl_slope, DICOM rescale to HU), whether the
/// orientation is what you think, and whether NaN/Inf voxels are present.
#[derive(clap::Args)]
pub struct Args {
    /// A NIfTI file, a DICOM file or series folder, a PNG/TIFF image or an NPY array.
    path: PathBuf,
    /// For a DICOM folder holding several series: the SeriesInstanceUID to read.
    #[arg(long)]
    series: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let vol = read_volume(
        &args.path,
        &ReadOptions {
            series_uid: args.series,
        },
    )?;
    let g = &vol.geometry;
    let [nx, ny, nz] = g.shape;
    say!("file:         {}", args.path.display());
    say!("format:       {} ({})", vol.format, vol.dtype);
    say!("shape:        {nx} x {ny} x {nz} voxels");
    say!(
        "spacing:      {} x {} x {} mm",
        fmt_num(g.spacing[0]),
        fmt_num(g.spacing[1]),
        fmt_num(g.spacing[2])
    );
    let source = if vol.format == medtrans_io::Format::Dicom {
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
    Ok(())
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
