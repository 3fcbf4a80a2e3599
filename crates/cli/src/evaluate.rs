//! `medtrans evaluate`: the paper's metrics on a test split.
use anyhow::{bail, Context, Result};
use medtrans_datasets::SliceDataset;
use medtrans_metrics::{scores_csv, subject_table, summary_table};
use medtrans_training::Model;
use std::path::{Path, PathBuf};

/// Score a model on a dataset split: per-slice and mean +- std NMAE, PSNR
/// and SSIM of G(A) against B, as CSV and a markdown table; with several
/// subjects in the split, also per subject (subjects.csv). With --compare,
/// a second model is scored on the same slices and each metric gets a
/// paired Wilcoxon signed-rank test.
///
/// Example:
///   medtrans evaluate --model runs/reggan --data data/t1t2 --compare runs/pix2pix
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// A run folder (its best checkpoint) or a checkpoint folder.
    #[arg(long)]
    model: PathBuf,
    /// A dataset made by `medtrans prepare` (or RegGAN's A/ B/ layout).
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value = "test")]
    split: String,
    /// A second model to compare against, slice by slice.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Folder for scores.csv and summary.md (default: MODEL/evaluation-SPLIT).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Device: cpu (Burn's flex backend), gpu (the best Vulkan GPU) or gpu:N (the N-th discrete GPU); the GPU ones need a build with `--features gpu`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Replace the scores of an earlier evaluation in the output folder.
    #[arg(long, visible_alias = "force")]
    overwrite: bool,
}

pub fn run(args: Args) -> Result<()> {
    let ds = SliceDataset::open(&args.data, &args.split)?;
    if ds.is_empty() {
        bail!("{}: the {} split is empty", args.data.display(), args.split);
    }
    let mut models = vec![(label(&args.model), Model::load(&args.model, &args.device)?)];
    if let Some(c) = &args.compare {
        let mut name = label(c);
        if name == models[0].0 {
            name.push_str(" (2)");
        }
        models.push((name, Model::load(c, &args.device)?));
    }
    let out = args.out.clone().unwrap_or_else(|| {
        run_folder(&models[0].1.checkpoint).join(format!("evaluation-{}", args.split))
    });
    if out.join("scores.csv").exists() && !args.overwrite {
        bail!("{} already holds an evaluation; pass --overwrite to replace it or --out to write elsewhere", out.display());
    }
    let mut scores = Vec::new();
    for (name, m) in &models {
        say!("scoring {name} on {} {} slices", ds.len(), args.split);
        scores.push(m.evaluate(&ds, 16)?);
    }
    let out = args.out.clone().unwrap_or_else(|| {
        run_folder(&models[0].1.checkpoint).join(format!("evaluation-{}", args.split))
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let names: Vec<String> = models.iter().map(|m| m.0.clone()).collect();
    let csv = out.join("scores.csv");
    medtrans_io::write_file_atomic(&csv, scores_csv(&names, &scores).as_bytes())?;
    let mut md = summary_table(&names, &scores);
    // Several subjects in the split: each one's means too.
    let subjects = scores[0]
        .iter()
        .map(|s| s.subject)
        .collect::<std::collections::BTreeSet<_>>();
    if subjects.len() > 1 {
        let name_of = |i: usize| {
            ds.manifest
                .as_ref()
                .and_then(|m| m.subjects.get(i))
                .map_or_else(|| format!("subject{i:03}"), |s| s.name.clone())
        };
        let (table, csv) = subject_table(&names, &scores, &name_of);
        md += &format!("\nPer subject:\n\n{table}");
        medtrans_io::write_file_atomic(&out.join("subjects.csv"), csv.as_bytes())?;
    }
    medtrans_io::write_file_atomic(&out.join("summary.md"), md.as_bytes())?;
    say!("{md}");
    say!(
        "wrote {} and {}",
        out.join("scores.csv").display(),
        out.join("summary.md").display()
    );
    Ok(())
}

/// The run a checkpoint belongs to (`RUN/checkpoints/best` -> `RUN`).
fn run_folder(ckpt: &Path) -> PathBuf {
    match ckpt.parent() {
        Some(p) if p.file_name().is_some_and(|n| n == "checkpoints") => {
            p.parent().unwrap_or(p).to_path_buf()
        }
        _ => ckpt.to_path_buf(),
    }
}

fn label(p: &Path) -> String {
    p.file_name()
        .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
}
