//! `medtrans evaluate`: the paper's metrics on a test split.
use anyhow::{bail, Context, Result};
use medtrans_datasets::SliceDataset;
use medtrans_metrics::{scores_csv, subject_table, summary_table};
use medtrans_training::evaluation::{self, UnitOptions, Units};
use medtrans_training::{score_slices, Model};
use std::path::{Path, PathBuf};

/// Score a model on a dataset split: per-slice and mean +- std NMAE, PSNR
/// and SSIM of G(A) against B, as CSV and a markdown table; with several
/// subjects in the split, also per subject (subjects.csv). With --compare,
/// a second model is scored on the same slices and each metric gets a
/// paired Wilcoxon signed-rank test.
///
/// --units target scores in the target's own units (HU for CT), as the
/// SynthRAD challenge does for MR -> synthetic CT: each slice is mapped back
/// through its volume's intensity window, then MAE and PSNR inside the mask
/// (the dataset's mask, grown by --dilate pixels), PSNR over --range
/// (default SynthRAD's -1024 to 3000 HU), SSIM and 5-scale MS-SSIM
/// (scores_units.csv). MS-SSIM needs slices over 160 pixels a side.
///
/// --volume also scores each volume of the split whole (its slices stacked:
/// a slab, or the whole subject with per-subject splits): the per-slice
/// scores averaged per volume, and MAE, PSNR, SSIM (7x7x7 window) and
/// MS-SSIM computed in 3-D (volumes.csv).
///
/// The tables land in the run folder and its report.html links them.
///
/// Examples:
///   medtrans evaluate --model runs/reggan --data data/t1t2 --compare runs/pix2pix
///   medtrans evaluate --model runs/mr2ct --data data/mrct --units target --dilate 5 --volume
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
    /// Score in `normalised` units (the [-1, 1] slices the model sees) or in the `target`'s own units (HU for CT), mapping each slice back through its volume's intensity window.
    #[arg(long, default_value = "normalised", value_parser = ["normalised", "target"])]
    units: String,
    /// PSNR's peak and the clipping range for --units target, as LOW,HIGH (default SynthRAD's CT range -1024,3000 HU; set it for MR targets).
    #[arg(long, value_name = "LOW,HIGH", allow_hyphen_values = true)]
    range: Option<String>,
    /// Grow the scoring mask by this many pixels (voxels with --volume) in every direction: SynthRAD scores inside a dilated body outline.
    #[arg(long, default_value_t = 0)]
    dilate: usize,
    /// Also score each volume of the split whole, in 3-D (volumes.csv).
    #[arg(long)]
    volume: bool,
    /// Replace the scores of an earlier evaluation in the output folder.
    #[arg(long, visible_alias = "force")]
    overwrite: bool,
}

pub fn run(args: Args) -> Result<()> {
    // Options first, so that a typo fails before any model runs.
    let units = match args.units.as_str() {
        "target" => Units::Target(parse_range(args.range.as_deref())?),
        _ if args.range.is_some() => bail!("--range is for --units target"),
        _ => Units::Normalised,
    };
    let opts = UnitOptions {
        units,
        dilate: args.dilate,
    };
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
    let run = run_folder(&models[0].1.checkpoint);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| run.join(format!("evaluation-{}", args.split)));
    if out.join("scores.csv").exists() && !args.overwrite {
        bail!("{} already holds an evaluation; pass --overwrite to replace it or --out to write elsewhere", out.display());
    }
    let mut fakes = Vec::new();
    for (name, m) in &models {
        say!("scoring {name} on {} {} slices", ds.len(), args.split);
        fakes.push(m.translate_split(&ds, 16)?);
    }
    let scores: Vec<_> = fakes.iter().map(|f| score_slices(&ds, f)).collect();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let names: Vec<String> = models.iter().map(|m| m.0.clone()).collect();
    let csv = out.join("scores.csv");
    medtrans_io::write_file_atomic(&csv, scores_csv(&names, &scores).as_bytes())?;
    let mut md = summary_table(&names, &scores);
    let subject_name = |i: usize| {
        ds.manifest
            .as_ref()
            .and_then(|m| m.subjects.get(i))
            .map_or_else(|| format!("subject{i:03}"), |s| s.name.clone())
    };
    // Several subjects in the split: each one's means too.
    let subjects = scores[0]
        .iter()
        .map(|s| s.subject)
        .collect::<std::collections::BTreeSet<_>>();
    if subjects.len() > 1 {
        let (table, csv) = subject_table(&names, &scores, &subject_name);
        md += &format!("\nPer subject:\n\n{table}");
        medtrans_io::write_file_atomic(&out.join("subjects.csv"), csv.as_bytes())?;
    }
    if units != Units::Normalised || args.volume {
        let slices = fakes
            .iter()
            .map(|f| evaluation::in_units(&ds, f, units))
            .collect::<Result<Vec<_>>>()?;
        let mut section = |volumes: bool, heading: String, csv_name: &str| -> Result<()> {
            let sc: Vec<Vec<_>> = slices
                .iter()
                .map(|s| match volumes {
                    true => evaluation::volume_scores(s, opts),
                    false => evaluation::unit_scores(s, opts),
                })
                .collect();
            if volumes && sc.iter().all(|s| s.is_empty()) {
                bail!(
                    "{}: no volume of the {} split has the 7 slices a 3-D SSIM window needs",
                    args.data.display(),
                    args.split
                );
            }
            let unit = if volumes { "volumes" } else { "slices" };
            md += &format!(
                "\n{heading}:\n\n{}",
                evaluation::unit_table(&names, &sc, unit)
            );
            let csv = evaluation::unit_csv(&names, &sc, &subject_name, volumes);
            medtrans_io::write_file_atomic(&out.join(csv_name), csv.as_bytes())?;
            Ok(())
        };
        if units != Units::Normalised {
            let heading = format!(
                "In {} (mask grown by {} px), per slice",
                units.label(),
                args.dilate
            );
            section(false, heading, "scores_units.csv")?;
        }
        if args.volume {
            let heading = format!(
                "Whole volumes in 3-D, in {} (mask grown by {} voxels); `slices` counts each volume's slices",
                units.label(),
                args.dilate
            );
            section(true, heading, "volumes.csv")?;
        }
    }
    medtrans_io::write_file_atomic(&out.join("summary.md"), md.as_bytes())?;
    link_from_report(&run, &out, &args);
    say!("{md}");
    say!(
        "wrote {} and {}",
        out.join("scores.csv").display(),
        out.join("summary.md").display()
    );
    Ok(())
}

/// The run's report shows the new tables: evaluations inside the run
/// folder are found there, others are linked through its links file.
fn link_from_report(run: &Path, out: &Path, args: &Args) {
    if !run.join("config.toml").is_file() {
        return;
    }
    let linked = if out.starts_with(run) {
        medtrans_report::write_run_report(run).map(|_| ())
    } else {
        let title = format!(
            "evaluation on {} ({} split)",
            args.data.display(),
            args.split
        );
        medtrans_report::add_link(run, &title, &out.join("summary.md"))
    };
    if let Err(e) = linked {
        tracing::warn!("the run's report was not updated: {e:#}");
    }
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

/// `LOW,HIGH` (default SynthRAD's CT range).
fn parse_range(s: Option<&str>) -> Result<medtrans_metrics::UnitRange> {
    let Some(s) = s else {
        return Ok(medtrans_metrics::UnitRange::SYNTHRAD_CT);
    };
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let nums: Vec<f64> = parts.iter().filter_map(|p| p.parse().ok()).collect();
    match nums[..] {
        [low, high] if parts.len() == 2 && low < high && low.is_finite() && high.is_finite() => {
            Ok(medtrans_metrics::UnitRange { low, high })
        }
        _ => bail!("--range {s}: expected LOW,HIGH with LOW < HIGH, e.g. --range=-1024,3000"),
    }
}
