//! `medtrans experiment`: the papers' experiments.
use anyhow::Result;
use medtrans_experiments::{
    report_many_to_one, report_noise_sweep, report_shape, run_many_to_one, run_noise_sweep,
    run_shape, ManyToOneConfig, ShapeConfig, SweepConfig,
};
use std::path::PathBuf;

/// Reproduce a paper's experiment from a config file.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    which: Which,
}

#[derive(clap::Subcommand)]
enum Which {
    /// RegGAN's noise sweep: each mode at each misalignment level, scored
    /// on a disjoint test slab against the aligned targets. Resumable: run
    /// the same command again to continue; finished runs are skipped.
    ///
    /// Writes results.md/.csv (with the paper's claims checked), plots,
    /// example panels and, for modes with R, how much of the injected
    /// misalignment R undoes on validation pairs (registration.csv).
    /// `extra_seeds = [2, 3]` in the config repeats every cell per seed
    /// beside its base run, to show how much of a difference is seed noise.
    ///
    /// Example: medtrans experiment noise-sweep --config configs/experiments/noise-sweep.toml
    NoiseSweep {
        /// Sweep config (see configs/experiments/noise-sweep.toml).
        #[arg(long)]
        config: PathBuf,
        /// Train nothing: score the runs finished so far and redraw the
        /// table and figures (for a look at a sweep still under way).
        #[arg(long)]
        report_only: bool,
        /// Device for training and scoring: cpu, gpu or gpu:N (GPU ones need
        /// a build with `--features gpu`). Overrides the config's `device`.
        #[arg(long)]
        device: Option<String>,
    },
    /// Many-to-one (pathological -> healthy): the asymmetric cycle loss
    /// (L_AC, only the healthy domain's cycle at 2 w_c) against the
    /// symmetric one (L_C) at each cycle weight w_c, on ICBM T1 slabs with
    /// synthetic lesions whose clean slices are known. Resumable.
    ///
    /// Writes results.md/.csv (masked NMAE, PSNR, SSIM, the paper's
    /// best-window Dice against white matter, the error inside lesions, and
    /// per-w_c Wilcoxon p-values), per_slice.csv, metrics_vs_weight.png,
    /// examples.png and, with `tumours` in the config, a panel of real
    /// tumour MR translated by the models.
    ///
    /// Example: medtrans experiment many-to-one --config configs/experiments/many-to-one.toml
    ManyToOne {
        /// Experiment config (see configs/experiments/many-to-one.toml).
        #[arg(long)]
        config: PathBuf,
        /// Train nothing: score the runs finished so far and redraw.
        #[arg(long)]
        report_only: bool,
        /// Device for training and scoring: cpu, gpu or gpu:N.
        #[arg(long)]
        device: Option<String>,
    },
    /// Shape consistency: the cycle mode with and without the shape loss
    /// (segmentors S_A, S_B on CerebrA-derived labels: white matter,
    /// ventricles, grey matter), ICBM T1 -> T2 unpaired, at each noise
    /// level. Resumable.
    ///
    /// Writes results.md/.csv: masked NMAE, PSNR, SSIM against the real T2,
    /// and the Dice of one fixed reference segmentor on G(x) against x's
    /// labels, per structure, with Wilcoxon p-values; and examples.png.
    ///
    /// Example: medtrans experiment shape --config configs/experiments/shape.toml
    Shape {
        /// Experiment config (see configs/experiments/shape.toml).
        #[arg(long)]
        config: PathBuf,
        /// Train nothing: score the runs finished so far and redraw.
        #[arg(long)]
        report_only: bool,
        /// Device for training and scoring: cpu, gpu or gpu:N.
        #[arg(long)]
        device: Option<String>,
    },
}

pub fn run(args: Args) -> Result<()> {
    match args.which {
        Which::NoiseSweep {
            config,
            report_only,
            device,
        } => {
            let mut cfg = SweepConfig::load(&config)?;
            if device.is_some() {
                cfg.device = device;
            }
            let rows = if report_only {
                report_noise_sweep(&cfg, &mut |line| say!("{line}"))?
            } else {
                run_noise_sweep(&cfg, &mut |line| say!("{line}"))?
            };
            say!(
                "{}",
                std::fs::read_to_string(cfg.results.join("results.md")).unwrap_or_default()
            );
            say!("{} cells; wrote {}", rows.len(), cfg.results.display());
            Ok(())
        }
        Which::ManyToOne {
            config,
            report_only,
            device,
        } => {
            let mut cfg = ManyToOneConfig::load(&config)?;
            if device.is_some() {
                cfg.device = device;
            }
            if report_only {
                report_many_to_one(&cfg, &mut |line| say!("{line}"))?;
            } else {
                run_many_to_one(&cfg, &mut |line| say!("{line}"))?;
            }
            say!(
                "{}",
                std::fs::read_to_string(cfg.results.join("results.md")).unwrap_or_default()
            );
            say!("wrote {}", cfg.results.display());
            Ok(())
        }
        Which::Shape {
            config,
            report_only,
            device,
        } => {
            let mut cfg = ShapeConfig::load(&config)?;
            if device.is_some() {
                cfg.device = device;
            }
            if report_only {
                report_shape(&cfg, &mut |line| say!("{line}"))?;
            } else {
                run_shape(&cfg, &mut |line| say!("{line}"))?;
            }
            say!(
                "{}",
                std::fs::read_to_string(cfg.results.join("results.md")).unwrap_or_default()
            );
            say!("wrote {}", cfg.results.display());
            Ok(())
        }
    }
}
