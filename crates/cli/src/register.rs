//! `medtrans register`: one volume onto another's grid, rigid or affine.
use anyhow::{bail, Context, Result};
use medtrans_io::{read_volume, ReadOptions};
use medtrans_registration::{register, Options, Progress, Registration, TransformKind};
use medtrans_transforms::Interp3;
use std::path::{Path, PathBuf};

/// Register MOVING onto FIXED by mutual information (Mattes), so it works
/// across contrasts (T1/T2) and modalities (MR/CT): a rigid search (or
/// rigid, then affine), coarse to fine, from the centres of mass. Writes
/// MOVING resampled onto FIXED's grid and the transform as an ITK text file
/// (read by ANTs, SimpleITK and 3D Slicer), and prints the final metric.
///
/// For training pairs, `medtrans prepare --align rigid` does the same
/// inside `prepare`. A search that does not converge is reported with its
/// final metric, never passed off as a result.
///
/// Example:
///   medtrans register --fixed t1.nii.gz --moving ct.nii.gz --out ct_on_t1.nii.gz
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The volume whose grid and position are kept.
    #[arg(long)]
    fixed: PathBuf,
    /// The volume to move onto it.
    #[arg(long)]
    moving: PathBuf,
    /// Output NIfTI: MOVING on FIXED's grid.
    #[arg(long)]
    out: PathBuf,
    /// `rigid` (same head, moved: 6 parameters) or `affine` (also scale
    /// and shear: 12, after a rigid stage).
    #[arg(long, value_enum, default_value = "rigid")]
    transform: Kind,
    /// Where to write the transform (default: OUT with .tfm in place of
    /// .nii/.nii.gz). It maps FIXED's world points to MOVING's.
    #[arg(long)]
    transform_out: Option<PathBuf>,
    /// Interpolation of the output: `linear` for images, `nearest` for
    /// masks and label maps.
    #[arg(long, value_enum, default_value = "linear")]
    interp: InterpArg,
    /// Pyramid levels, coarse to fine, as multiples of the finest voxel size.
    #[arg(long, value_delimiter = ',', default_value = "4,2,1")]
    shrink: Vec<usize>,
    /// Fixed-image points sampled per level.
    #[arg(long, default_value_t = 60_000)]
    samples: usize,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Replace OUT and the transform file if they exist.
    #[arg(long, visible_alias = "force")]
    overwrite: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Kind {
    Rigid,
    Affine,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum InterpArg {
    Linear,
    Nearest,
}

/// `x.nii.gz` -> `x.tfm`.
fn default_transform_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let stem = name
        .strip_suffix(".nii.gz")
        .or_else(|| name.strip_suffix(".nii"))
        .unwrap_or(&name);
    out.with_file_name(format!("{stem}.tfm"))
}

/// Print what a registration found, with a warning when it did not settle.
pub fn report(r: &Registration) {
    let t = &r.transform;
    let tr = t.translation();
    say!(
        "{:?}: rotation {:.2} deg, translation ({:.2}, {:.2}, {:.2}) mm (of FIXED's centre of mass); mutual information {:.4} -> {:.4} nats",
        t.kind,
        t.rotation_degrees(),
        tr[0],
        tr[1],
        tr[2],
        r.initial_mi,
        r.final_mi
    );
    if !r.converged() {
        eprintln!(
            "warning: the registration did not converge (levels: {}); final mutual information {:.4} (start {:.4}). \
             Check the result by eye; more --samples, a finer --shrink or a rough manual pre-alignment may help",
            r.levels
                .iter()
                .map(|l| format!("{}x {} its{}", l.shrink, l.iterations, if l.converged { "" } else { " (limit)" }))
                .collect::<Vec<_>>()
                .join(", "),
            r.final_mi,
            r.initial_mi
        );
    }
}

pub fn run(args: Args) -> Result<()> {
    let name = args.out.to_string_lossy();
    if !(name.ends_with(".nii") || name.ends_with(".nii.gz")) {
        bail!(
            "{}: the output must be a NIfTI file (.nii or .nii.gz)",
            args.out.display()
        );
    }
    let tfm = args
        .transform_out
        .clone()
        .unwrap_or_else(|| default_transform_path(&args.out));
    for p in [&args.out, &tfm] {
        if p.exists() && !args.overwrite {
            bail!("{} exists; pass --overwrite to replace it", p.display());
        }
    }
    let fixed = read_volume(&args.fixed, &ReadOptions::default())?;
    let moving = read_volume(&args.moving, &ReadOptions::default())?;
    let opts = Options {
        kind: match args.transform {
            Kind::Rigid => TransformKind::Rigid,
            Kind::Affine => TransformKind::Affine,
        },
        shrink: args.shrink.clone(),
        samples: args.samples,
        seed: args.seed,
        ..Options::default()
    };
    let stages = if opts.kind == TransformKind::Affine {
        2
    } else {
        1
    };
    let bar = crate::progress::bar((stages * opts.shrink.len()) as u64, "register");
    let mut levels_done = 0u64;
    let r = register(&fixed, &moving, &opts, &mut |p| match p {
        Progress::Level { kind, shrink, .. } => {
            bar.set_position(levels_done);
            levels_done += 1;
            bar.set_message(format!("{kind:?} at {shrink}x"));
        }
        Progress::Iteration {
            iteration,
            mi,
            step,
        } => {
            bar.set_message(format!(
                "iteration {iteration}: MI {mi:.4}, step {step:.3} mm"
            ));
        }
    })?;
    bar.finish_and_clear();
    report(&r);
    let interp = match args.interp {
        InterpArg::Linear => Interp3::Trilinear,
        InterpArg::Nearest => Interp3::Nearest,
    };
    let out = r.apply(&fixed, &moving, interp)?;
    r.transform.write_itk(&tfm)?;
    medtrans_io::write_nifti(&args.out, &out.data, &fixed.geometry, args.overwrite)
        .with_context(|| format!("writing {}", args.out.display()))?;
    say!(
        "wrote {} ({:?} voxels, {:.1} % inside {}'s field of view) and {}",
        args.out.display(),
        fixed.shape(),
        100.0 * out.overlap(),
        args.moving.display(),
        tfm.display()
    );
    Ok(())
}
