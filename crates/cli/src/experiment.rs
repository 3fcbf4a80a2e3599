//! `medtrans experiment`: the papers' experiments.
use anyhow::Result;
use medtrans_datasets::Pairing;
use medtrans_experiments::{
    report_augment, report_many_to_one, report_noise_sweep, report_shape, run_augment,
    run_many_to_one, run_noise_sweep, run_shape, AugmentConfig, ManyToOneConfig, ShapeConfig,
    SweepConfig,
};
use std::path::{Path, PathBuf};

/// Reproduce a paper's experiment from a config file.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    which: Which,
}

/// What every experiment takes.
#[derive(clap::Args)]
struct Common {
    /// Experiment config (the examples are in configs/experiments/).
    #[arg(long)]
    config: PathBuf,
    /// Train nothing: score the runs finished so far and redraw the table
    /// and figures (for a look at an experiment still under way).
    #[arg(long)]
    report_only: bool,
    /// Device for training and scoring: cpu, gpu or gpu:N (GPU ones need
    /// a build with `--features gpu`). Overrides the config's `device`.
    #[arg(long)]
    device: Option<String>,
}

#[derive(clap::Args)]
struct SweepArgs {
    #[command(flatten)]
    common: Common,
    /// `paired` or `unpaired` training data; overrides the config's
    /// `pairing`. Unpaired runs are named MODE-unpaired-noiseL, and when
    /// the config itself is paired their results go to RESULTS-unpaired,
    /// so the paired sweep's runs and tables stay as they are.
    #[arg(long, value_parser = ["paired", "unpaired"])]
    pairing: Option<String>,
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
    /// `--pairing unpaired` is the paper's unpaired experiment (section
    /// 4.4): every training A meets the B of another slice, while the test
    /// slab is still scored against the aligned truth; results.md then
    /// judges the paper's ranking RegGAN > C > Pix2Pix.
    ///
    /// Example: medtrans experiment noise-sweep --config configs/experiments/noise-sweep.toml
    NoiseSweep(SweepArgs),
    /// Many-to-one (pathological -> healthy): the asymmetric cycle loss
    /// (L_AC, only the healthy domain's cycle at 2 w_c) against the
    /// symmetric one (L_C) at each cycle weight w_c, on ICBM T1 with
    /// synthetic lesions whose clean slices are known. Resumable.
    ///
    /// Writes results.md/.csv (masked NMAE, PSNR, SSIM, the paper's
    /// best-window Dice against white matter, the error inside lesions, and
    /// per-w_c Wilcoxon p-values), per_slice.csv, metrics_vs_weight.png,
    /// examples.png and, with `tumours` in the config, a panel of real
    /// tumour MR translated by the models.
    ///
    /// Example: medtrans experiment many-to-one --config configs/experiments/many-to-one.toml
    ManyToOne(Common),
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
    Shape(Common),
    /// Cross-modal augmentation (predictor-guided translation): a
    /// predictor of the lateral-ventricle area on T2 slices from few
    /// labelled T2 and many labelled T1 slices, trained on the T2 alone
    /// (PURE), with simple augmentation, with the untranslated T1, by
    /// transfer learning (pretrained on T1, fine-tuned on T2), with
    /// CycleGAN-translated T1 (MIX-CycleGAN) and jointly with the guided
    /// translator (MIX-guided), over random splits. Resumable.
    ///
    /// Writes results.md/.csv (test MSE in mm², mean +- std over splits,
    /// paired t-test p-values against MIX-guided, and the translators'
    /// NMAE, PSNR and SSIM on the test slices), per_split.csv, mse.png and
    /// examples.png.
    ///
    /// Example: medtrans experiment augment --config configs/experiments/augment.toml
    Augment(Common),
}

/// Load, pick the device, run (or only report), and print the results.
fn experiment<C>(
    args: Common,
    load: impl FnOnce(&Path) -> Result<C>,
    device: fn(&mut C) -> &mut Option<String>,
    results: fn(&C) -> &Path,
    run: impl FnOnce(&C, bool, &mut dyn FnMut(&str)) -> Result<()>,
) -> Result<()> {
    let mut cfg = load(&args.config)?;
    if args.device.is_some() {
        *device(&mut cfg) = args.device;
    }
    run(&cfg, args.report_only, &mut |line| say!("{line}"))?;
    let dir = results(&cfg);
    say!(
        "{}",
        std::fs::read_to_string(dir.join("results.md")).unwrap_or_default()
    );
    say!("wrote {}", dir.display());
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    match args.which {
        Which::NoiseSweep(SweepArgs { common, pairing }) => experiment(
            common,
            |path| {
                let mut cfg = SweepConfig::load(path)?;
                if pairing.as_deref() == Some("unpaired") && cfg.pairing == Pairing::Paired {
                    cfg.pairing = Pairing::Unpaired;
                    let mut name = cfg.results.file_name().unwrap_or_default().to_owned();
                    name.push("-unpaired");
                    cfg.results.set_file_name(name);
                } else if pairing.as_deref() == Some("paired") {
                    cfg.pairing = Pairing::Paired;
                }
                Ok(cfg)
            },
            |c| &mut c.device,
            |c| &c.results,
            |c, only, say| {
                let rows = if only {
                    report_noise_sweep(c, say)?
                } else {
                    run_noise_sweep(c, say)?
                };
                say(&format!("{} cells", rows.len()));
                Ok(())
            },
        ),
        Which::ManyToOne(a) => experiment(
            a,
            ManyToOneConfig::load,
            |c| &mut c.device,
            |c| &c.results,
            |c, only, say| {
                if only {
                    report_many_to_one(c, say)?;
                } else {
                    run_many_to_one(c, say)?;
                }
                Ok(())
            },
        ),
        Which::Augment(a) => experiment(
            a,
            AugmentConfig::load,
            |c| &mut c.device,
            |c| &c.results,
            |c, only, say| {
                if only {
                    report_augment(c, say)?;
                } else {
                    run_augment(c, say)?;
                }
                Ok(())
            },
        ),
        Which::Shape(a) => experiment(
            a,
            ShapeConfig::load,
            |c| &mut c.device,
            |c| &c.results,
            |c, only, say| {
                if only {
                    report_shape(c, say)?;
                } else {
                    run_shape(c, say)?;
                }
                Ok(())
            },
        ),
    }
}
