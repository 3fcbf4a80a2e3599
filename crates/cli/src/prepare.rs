//! `medtrans prepare`: volumes to a dataset folder.
use anyhow::{bail, Context, Result};
use medtrans_datasets::{prepare, PrepareSpec, SplitMethod, SplitSpec, SubjectSpec};
use medtrans_transforms::Normalization;
use std::path::PathBuf;

/// Turn co-registered volumes into a dataset of normalised N x N slices.
///
/// A is the source contrast, B the target. Give one --a/--b (and optional
/// --mask) per subject, in the same order. The folder gets a manifest.json
/// (sources, axis, normalisation per volume, splits) and one array per split
/// and side, loaded whole into memory at training time. Misalignment noise
/// and pairing are applied on the fly later, so one dataset serves every
/// noise level.
///
/// Example (MR): medtrans prepare --a t1.nii.gz --b t2.nii.gz --mask brain.nii.gz --out data/t1t2
///
/// Example (MR -> CT): ... --norm-b window:-1024,2000
#[derive(clap::Args)]
pub struct Args {
    /// Source-contrast volume (repeat for several subjects).
    #[arg(long = "a", required = true)]
    a: Vec<PathBuf>,
    /// Target-contrast volume on the same grid as its A (repeat, same order).
    #[arg(long = "b", required = true)]
    b: Vec<PathBuf>,
    /// Foreground mask per subject (none, or one per subject). Outside it
    /// both images are set to background (-1).
    #[arg(long)]
    mask: Vec<PathBuf>,
    /// Label map of A per subject (integer classes 0..=255 on A's grid),
    /// stored as A_labels.npy: what the shape-consistency loss
    /// (loss.shape, segmentor.classes) needs.
    #[arg(long)]
    labels_a: Vec<PathBuf>,
    /// Label map of B per subject, stored as B_labels.npy.
    #[arg(long)]
    labels_b: Vec<PathBuf>,
    /// Per-slice labels for a predictor (predictor-guided translation): a
    /// CSV of `volume,slice,label` rows, `volume` one of the --a or --b
    /// files (path relative to the CSV, or its file name), `slice` the index
    /// along --axis in that volume. Stored per split as
    /// A_slice_labels.npy / B_slice_labels.npy.
    #[arg(long, value_name = "CSV")]
    slice_labels: Option<PathBuf>,
    /// New dataset folder (must not exist or be empty).
    #[arg(long)]
    out: PathBuf,
    /// Slicing axis.
    #[arg(long, value_enum, default_value = "axial")]
    axis: Axis,
    /// Keep slices START:END (end exclusive) along the axis.
    #[arg(long, value_name = "START:END")]
    slices: Option<String>,
    /// Drop slices whose foreground (mask, or target above background) covers
    /// less than this fraction.
    #[arg(long, default_value_t = 0.05)]
    min_foreground: f64,
    /// Output slices are SIZE x SIZE (padded to square, aspect kept).
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Normalisation of A: `percentile:LOW,HIGH` (MR) or `window:LOW,HIGH` (CT, in HU).
    #[arg(long, default_value = "percentile:0.5,99.5")]
    norm_a: String,
    /// Normalisation of B, as for --norm-a.
    #[arg(long, default_value = "percentile:0.5,99.5")]
    norm_b: String,
    /// `slab`: contiguous slabs of each volume; `volume`: whole volumes per split.
    #[arg(long, value_enum, default_value = "slab")]
    split: Split,
    /// Train, val and test fractions.
    #[arg(long, default_value = "0.7,0.1,0.2", value_name = "TRAIN,VAL,TEST")]
    fractions: String,
    /// Slices left out between neighbouring slabs.
    #[arg(long, default_value_t = 2)]
    gap: usize,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Axis {
    Sagittal,
    Coronal,
    Axial,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Split {
    Slab,
    Volume,
}

pub fn parse_norm(s: &str) -> Result<Normalization> {
    let (method, rest) = s.split_once(':').unwrap_or((s, ""));
    let nums: Vec<f64> = rest
        .split(',')
        .filter(|t| !t.is_empty())
        .map(|t| t.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .with_context(|| format!("normalisation '{s}': bad number"))?;
    match (method, nums.as_slice()) {
        ("percentile", []) => Ok(Normalization::default()),
        ("percentile", [low, high]) => Ok(Normalization::Percentile {
            low: *low,
            high: *high,
        }),
        ("window", [low, high]) => Ok(Normalization::Window {
            low: *low,
            high: *high,
        }),
        _ => bail!("normalisation '{s}': expected percentile:LOW,HIGH or window:LOW,HIGH"),
    }
}

fn parse_fractions(s: &str) -> Result<[f64; 3]> {
    let v: Vec<f64> = s
        .split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .with_context(|| format!("--fractions '{s}'"))?;
    match v.as_slice() {
        [a, b, c] => Ok([*a, *b, *c]),
        _ => bail!("--fractions '{s}': expected three numbers TRAIN,VAL,TEST"),
    }
}

pub fn run(args: Args) -> Result<()> {
    if args.a.len() != args.b.len() {
        bail!(
            "{} --a volumes but {} --b volumes: give one of each per subject",
            args.a.len(),
            args.b.len()
        );
    }
    if !args.mask.is_empty() && args.mask.len() != args.a.len() {
        bail!(
            "{} --mask files for {} subjects: give none or one per subject",
            args.mask.len(),
            args.a.len()
        );
    }
    for (flag, v) in [
        ("--labels-a", &args.labels_a),
        ("--labels-b", &args.labels_b),
    ] {
        if !v.is_empty() && v.len() != args.a.len() {
            bail!(
                "{} {flag} files for {} subjects: give none or one per subject",
                v.len(),
                args.a.len()
            );
        }
    }
    let subjects = args
        .a
        .iter()
        .zip(&args.b)
        .enumerate()
        .map(|(i, (a, b))| SubjectSpec {
            a: a.clone(),
            b: b.clone(),
            mask: args.mask.get(i).cloned(),
            labels_a: args.labels_a.get(i).cloned(),
            labels_b: args.labels_b.get(i).cloned(),
        })
        .collect();
    let mut spec = PrepareSpec::new(subjects, &args.out);
    spec.axis = args.axis as usize;
    spec.slice_range = match &args.slices {
        None => None,
        Some(s) => {
            let (a, b) = s.split_once(':').context("--slices expects START:END")?;
            Some((
                a.trim().parse().context("--slices START")?,
                b.trim().parse().context("--slices END")?,
            ))
        }
    };
    spec.min_foreground = args.min_foreground;
    spec.size = args.size;
    spec.norm_a = parse_norm(&args.norm_a)?;
    spec.norm_b = parse_norm(&args.norm_b)?;
    spec.split = SplitSpec {
        method: match args.split {
            Split::Slab => SplitMethod::Slab,
            Split::Volume => SplitMethod::Volume,
        },
        fractions: parse_fractions(&args.fractions)?,
        gap: args.gap,
    };
    spec.slice_labels = args.slice_labels.clone();
    let m = run_prepare(&spec)?;
    say!("dataset written to {}", args.out.display());
    for split in medtrans_datasets::SPLITS {
        say!(
            "  {split:<5} {:>5} slices",
            m.splits.get(split).map_or(0, |r| r.len())
        );
    }
    if let Some(l) = &m.slice_labels {
        say!(
            "  slice labels: {} A and {} B slices labelled",
            l.stored[0],
            l.stored[1]
        );
        if l.dropped > 0 {
            say!(
                "  warning: {} labelled slices were dropped by --slices or --min-foreground",
                l.dropped
            );
        }
    }
    Ok(())
}

/// Run `prepare` with a progress bar.
pub fn run_prepare(spec: &PrepareSpec) -> Result<medtrans_datasets::Manifest> {
    let pb = crate::progress::bar(spec.subjects.len() as u64, "reading");
    let m = prepare(spec, &mut |done, _, what| {
        pb.set_position(done as u64);
        pb.set_message(what.to_string());
    });
    pb.finish_and_clear();
    Ok(m?)
}
