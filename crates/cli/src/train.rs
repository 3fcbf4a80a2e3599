//! `medtrans train`: one trainer, every mode.
use anyhow::{bail, Context, Result};
use medtrans_training::{presets, TrainConfig, Trainer};
use std::path::PathBuf;

/// Train a translation model.
///
/// The mode is a config: start from a preset in configs/ (pix2pix, cycle,
/// nc, cycle+reg, reggan, asymmetric, guided; and the RegGAN paper's Table 1
/// families in C, C+R, NC and NC+R: unit-c ... unit-nc+r in configs/unit/,
/// munit-* in configs/munit/, nice-* in configs/nice/) and override fields
/// with --set (a family's own settings: --set options.nice.light=true). The
/// run folder gets config.toml (the effective config), losses.csv,
/// validation.csv, samples/epoch_NNN.png and checkpoints/{best,last}.
///
/// Examples:
///   medtrans train --config configs/reggan.toml --set data.path=data/t1t2 --set data.noise_level=3
///   medtrans train --mode pix2pix --set data.path=data/t1t2 --set out=runs/p2p
///   medtrans train --mode nice-nc+r --set data.path=data/t1t2 --set options.nice.dis_layers=6
///   medtrans train --resume runs/reggan
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// TOML config file (see configs/).
    #[arg(long, conflicts_with_all = ["mode", "resume"])]
    config: Option<PathBuf>,
    /// Start from a shipped preset instead of a file.
    #[arg(long, conflicts_with = "resume")]
    mode: Option<String>,
    /// Continue a stopped run from its last checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// A run's effective config (the config.toml a run writes), taken as it
    /// is, without the preset check of --config: experiment grids start
    /// their child processes (`--jobs`) with it.
    #[arg(long, hide = true, conflicts_with_all = ["config", "mode", "resume"])]
    run_config: Option<PathBuf>,
    /// Override a config field, e.g. --set train.epochs=5 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Device: cpu (Burn's flex backend), gpu (the best Vulkan GPU) or gpu:N (the N-th discrete GPU); the GPU ones need a build with `--features gpu`.
    #[arg(long)]
    device: Option<String>,
    /// When a loss or weight becomes NaN or Inf: `stop` keeps the last good
    /// checkpoint and exits non-zero; `rollback` continues from the last
    /// checkpoint with the learning rates halved (train.nan_lr_factor), at
    /// most 3 times (train.max_rollbacks). Sets train.on_nan.
    #[arg(long, value_enum)]
    on_nan: Option<OnNan>,
    /// Start over in a folder that is not empty (an earlier run's checkpoints and logs are replaced).
    #[arg(long, visible_alias = "force")]
    overwrite: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OnNan {
    Stop,
    Rollback,
}

pub fn run(args: Args) -> Result<()> {
    let mut set = args.set.clone();
    if let Some(o) = args.on_nan {
        let v = match o {
            OnNan::Stop => "stop",
            OnNan::Rollback => "rollback",
        };
        set.push(format!("train.on_nan=\"{v}\""));
    }
    if let Some(d) = &args.device {
        set.push(format!("train.device=\"{d}\""));
    }
    let mut trainer = if let Some(run) = &args.resume {
        let t = Trainer::resume(run, &set)?;
        say!(
            "resuming {} at step {}/{}",
            run.display(),
            t.step,
            t.total_steps()
        );
        t
    } else {
        let cfg = match (&args.config, &args.mode) {
            _ if args.run_config.is_some() => {
                let p = args.run_config.as_ref().expect("checked");
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading the run config {}", p.display()))?;
                TrainConfig::from_toml(&text, &set, &p.display().to_string())?
            }
            (Some(p), _) => TrainConfig::load(p, &set)?,
            (None, Some(m)) => TrainConfig::preset(m, &set)?,
            (None, None) => bail!(
                "give --config FILE or --mode MODE (one of {})",
                presets().iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
            ),
        };
        let out = cfg.out.clone();
        let is_run = out.join("checkpoints").exists();
        let non_empty = std::fs::read_dir(&out).is_ok_and(|mut d| d.next().is_some());
        if non_empty && !args.overwrite {
            if is_run {
                bail!(
                    "{} already holds a run; use --resume {} to continue it, --overwrite to start over, or --set out=OTHER",
                    out.display(),
                    out.display()
                );
            }
            bail!(
                "{} exists and is not empty; choose another --set out=DIR (or --overwrite)",
                out.display()
            );
        }
        // Check data and config before anything is removed.
        let trainer = Trainer::new(cfg)?;
        if args.overwrite && is_run {
            std::fs::remove_dir_all(out.join("checkpoints"))?;
            for f in ["losses.csv", "validation.csv"] {
                let _ = std::fs::remove_file(out.join(f));
            }
        }
        trainer
    };
    say!(
        "mode {}: {} train slices of {}px, {} steps/epoch x {} epochs, device {}",
        trainer.cfg.mode,
        trainer.train.len(),
        trainer.info.size,
        trainer.steps_per_epoch,
        trainer.cfg.train.epochs,
        trainer.cfg.train.device
    );
    let summary = trainer.run(false)?;
    if let Some(v) = summary.last_val {
        say!("validation: {}", v.brief());
    }
    say!(
        "{} steps done ({:.3} s/step); run folder {}",
        summary.steps,
        summary.seconds_per_step,
        summary.run_dir.display()
    );
    Ok(())
}
