//! `medtrans predict`: a trained predictor on a target volume.
use anyhow::{bail, Context, Result};
use medtrans_training::PredictorModel;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Apply the predictor of a predictor-guided run (`--mode guided`) to every
/// slice of a target-modality volume, along the training axis, scaled as
/// the training targets were. Prints (or writes) a CSV: `slice,prediction`
/// in label units for a regression, `slice,class,p0,p1,...` for a
/// classification.
///
/// Example:
///   medtrans predict --model runs/guided --input ct.nii.gz --mask body.nii.gz --output areas.csv
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// A run folder (its last checkpoint; `best` is picked by the translator's validation, not the predictor's) or a checkpoint folder.
    #[arg(long)]
    model: PathBuf,
    /// The target-modality volume: .nii/.nii.gz, a DICOM file or a DICOM series folder.
    #[arg(long)]
    input: PathBuf,
    /// Mask on the input's grid, as given to `prepare` for the training data.
    #[arg(long)]
    mask: Option<PathBuf>,
    /// CSV to write; without it the CSV goes to stdout.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Slices per forward pass.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Device: cpu, gpu or gpu:N (the GPU ones need a build with `--features gpu`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Replace OUTPUT if it exists.
    #[arg(long, visible_alias = "force")]
    overwrite: bool,
}

pub fn run(args: Args) -> Result<()> {
    if let Some(out) = &args.output {
        if out.exists() && !args.overwrite {
            bail!("{} exists; pass --overwrite to replace it", out.display());
        }
    }
    let model = PredictorModel::load(&args.model, &args.device)?;
    let (_, rows) = crate::translate::slice_by_slice(
        &args.input,
        args.mask.as_deref(),
        &model.info,
        "predict",
        |vol, mask, progress| model.predict_volume(vol, mask, args.batch, progress),
    )?;
    let classify = model.columns().len() > 1;
    let mut csv = String::from("slice");
    if classify {
        csv += ",class";
    }
    for c in model.columns() {
        csv += &format!(",{c}");
    }
    csv.push('\n');
    for (k, r) in rows.iter().enumerate() {
        write!(csv, "{k}")?;
        if classify {
            let best = (0..r.len())
                .max_by(|&a, &b| r[a].total_cmp(&r[b]))
                .unwrap_or(0);
            write!(csv, ",{best}")?;
        }
        for v in r {
            write!(csv, ",{v}")?;
        }
        csv.push('\n');
    }
    match &args.output {
        Some(out) => {
            medtrans_io::write_file_atomic(out, csv.as_bytes())
                .with_context(|| format!("writing {}", out.display()))?;
            say!(
                "wrote {} ({} slices) from {} (step {})",
                out.display(),
                rows.len(),
                model.checkpoint.display(),
                model.step
            );
        }
        None => say!("{}", csv.trim_end()),
    }
    Ok(())
}
