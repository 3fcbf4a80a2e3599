//! `medtrans prepare`: volumes to a dataset folder.
use anyhow::{bail, Context, Result};
use medtrans_datasets::{
    prepare, read_subject_csv, GridChoice, PrepareSpec, SplitMethod, SplitSpec, SubjectSpec,
};
use medtrans_registration::{Options as RegistrationOptions, TransformKind};
use medtrans_transforms::Normalization;
use std::path::PathBuf;

/// Turn pairs of volumes into a dataset of normalised N x N slices.
///
/// A is the source contrast, B the target. Give one --a/--b (and optional
/// --mask) per subject, in the same order, or a --subjects CSV. When A and
/// B are not on one voxel grid (other resolution, field of view or slice
/// thickness), B is resampled onto A's grid through the two affines
/// (trilinear; the mask and label maps nearest-neighbour), or both onto
/// B's grid with --grid b, or onto a new isotropic grid with --spacing.
/// When the headers do not align the pair (the patient moved between
/// scans), --align rigid registers B onto A first; with several subjects,
/// one whose registration fails is left out with a warning (and named in
/// the manifest), and the others are prepared. The folder gets a manifest.json
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
    #[arg(long = "a", required_unless_present = "subjects")]
    a: Vec<PathBuf>,
    /// Target-contrast volume of the same subject (repeat, same order).
    #[arg(long = "b", required_unless_present = "subjects")]
    b: Vec<PathBuf>,
    /// Many subjects: a CSV of `subject,a,b[,mask[,labels_a[,labels_b]]]` rows (paths relative
    /// to the CSV). With --split volume, each subject stays whole in one
    /// split, and `evaluate` reports per subject.
    #[arg(long, value_name = "CSV", conflicts_with_all = ["a", "b", "mask"])]
    subjects: Option<PathBuf>,
    /// Whose grid a pair is resampled onto when the two differ: `a` (the
    /// translator's input keeps its resolution) or `b`.
    #[arg(long, value_enum, default_value = "a")]
    grid: GridArg,
    /// Resample onto that grid's field of view at this isotropic voxel size
    /// (mm), e.g. 1.
    #[arg(long, value_name = "MM")]
    spacing: Option<f64>,
    /// Register B onto A first by mutual information: `rigid` (the patient
    /// moved between scans) or `affine`. `none` trusts the headers.
    #[arg(long, value_enum, default_value = "none")]
    align: AlignArg,
    /// Foreground mask per subject (none, or one per subject). Outside it
    /// both images are set to background (-1). It may lie on any grid; it
    /// is taken to be in A's world (a mask made from A), and resampled by
    /// nearest neighbour where needed.
    #[arg(long)]
    mask: Vec<PathBuf>,
    /// Label map of A per subject (integer classes 0..=255 on A's grid),
    /// stored as A_labels.npy: what the shape-consistency loss
    /// (options.shape, segmentor.classes) needs.
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
    /// `slab`: contiguous slabs of each volume; `volume`: whole subjects
    /// per split, so that no subject is both trained on and tested on.
    /// Default: `volume` with three or more subjects, else `slab`.
    #[arg(long, value_enum)]
    split: Option<Split>,
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
enum GridArg {
    A,
    B,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AlignArg {
    None,
    Rigid,
    Affine,
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
    let subjects = match &args.subjects {
        Some(csv) => {
            if !args.labels_a.is_empty() || !args.labels_b.is_empty() {
                bail!("--labels-a/--labels-b go with --a/--b; with --subjects, give label maps as the CSV's labels_a and labels_b columns");
            }
            read_subject_csv(csv)?
        }
        None => args
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
                ..Default::default()
            })
            .collect(),
    };
    if let Some(mm) = args.spacing {
        if !(mm.is_finite() && (0.05..=20.0).contains(&mm)) {
            bail!("--spacing {mm}: give a voxel size in mm between 0.05 and 20");
        }
    }
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
            Some(Split::Slab) => SplitMethod::Slab,
            Some(Split::Volume) => SplitMethod::Volume,
            None if spec.subjects.len() >= 3 => SplitMethod::Volume,
            None => SplitMethod::Slab,
        },
        fractions: parse_fractions(&args.fractions)?,
        gap: args.gap,
    };
    spec.slice_labels = args.slice_labels.clone();
    spec.grid = match args.grid {
        GridArg::A => GridChoice::A,
        GridArg::B => GridChoice::B,
    };
    spec.spacing = args.spacing;
    spec.align = match args.align {
        AlignArg::None => None,
        AlignArg::Rigid => Some(RegistrationOptions::default()),
        AlignArg::Affine => Some(RegistrationOptions {
            kind: TransformKind::Affine,
            ..RegistrationOptions::default()
        }),
    };
    let m = run_prepare(&spec)?;
    for sub in &m.subjects {
        let Some(al) = &sub.alignment else { continue };
        let grid = match al.spacing {
            Some(mm) => format!("{} mm over {}'s field of view", mm, al.grid.to_uppercase()),
            None => format!("{}'s grid", al.grid.to_uppercase()),
        };
        say!(
            "{}: resampled onto {grid} {:?}; {:.1} % of it lies inside both fields of view",
            sub.name,
            sub.geometry.shape,
            100.0 * al.overlap
        );
        if let Some(r) = &al.registration {
            let t = r.translation_mm;
            say!(
                "{}: B registered onto A ({:?}): rotation {:.2} deg, translation ({:.2}, {:.2}, {:.2}) mm; mutual information {:.4} -> {:.4} nats",
                sub.name, r.kind, r.rotation_deg, t[0], t[1], t[2], r.initial_mi, r.final_mi
            );
            if !r.converged {
                eprintln!(
                    "warning: {}: the registration did not converge (final mutual information {:.4}); \
                     check it with `medtrans register` and the written volume",
                    sub.name, r.final_mi
                );
            }
        }
        if al.overlap < 0.5 {
            eprintln!(
                "warning: {}: only {:.0} % of the grid has both images; the rest is masked out when a mask is given",
                sub.name,
                100.0 * al.overlap
            );
        }
    }
    for sk in &m.skipped {
        eprintln!(
            "warning: {}: left out, its registration failed: {}",
            sk.name, sk.reason
        );
    }
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
        if what.starts_with("registering") {
            pb.println(what);
        }
        pb.set_position(done as u64);
        pb.set_message(what.to_string());
    });
    pb.finish_and_clear();
    Ok(m?)
}
