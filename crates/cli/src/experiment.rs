//! `medtrans experiment`: the papers' experiments.
use anyhow::{Context, Result};
use medtrans_datasets::Pairing;
use medtrans_experiments::runner::Runner;
use medtrans_experiments::{
    AugmentConfig, Experiment, ManyToOneConfig, ShapeConfig, SubjectsConfig, SweepConfig,
    Table1Config,
};
use std::path::PathBuf;

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
    /// Train this many runs at once, each a `medtrans train` process on one
    /// thread, its output in RUN.log beside the run folder. With the
    /// sweeps' small networks one thread trains as fast as two, and a run's
    /// numbers do not depend on the thread count, so `--jobs 2` nearly
    /// doubles an experiment's throughput on two cores
    /// (docs/benchmarks.md). 1 (the default): one after another, in this
    /// process.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
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
    /// `seeds = [1, 2, 3]` in the config trains every cell with seed 1 and
    /// repeats it per further seed beside that base run, to show how much
    /// of a difference is seed noise.
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
    /// How each mode does on the next patient: real pairs of many subjects
    /// (a subjects CSV, e.g. NiChart T1 -> FLAIR), k-fold cross-validation
    /// over subjects, trained on rigidly registered pairs and on pairs as
    /// scanned (the real motion between the scans stays), always tested
    /// against the registered target. Pix2Pix, C, RegGAN (NC+R) and C+R
    /// beside the identity. Resumable.
    ///
    /// Writes results.md/.csv (mean +- std over subjects of NMAE, PSNR,
    /// SSIM and lesion Dice, and the RegGAN paper's claims judged by paired
    /// Wilcoxon tests over subjects), per_subject.csv and a figure per
    /// subject (input, target, each mode, R's field).
    ///
    /// Example: medtrans experiment subjects --config configs/experiments/subjects-nichart.toml
    /// (configs/experiments/subjects-quick.toml: two subjects in a minute)
    Subjects(Common),
    /// The RegGAN paper's Table 1: is R a plug-in for any translator? Each
    /// family (CycleGAN's ResNet, UNIT, MUNIT, NICE-GAN) in C, C+R, NC
    /// and NC+R, trained on patients' pairs moved by the paper's Table 1
    /// misalignment (rotation +-5 deg, translation and scaling +-5 %),
    /// tested on a held-out patient against its untouched target, over
    /// seeds. Patients and folds are prepared as in `subjects`; `run_folds`
    /// picks the folds a budget allows. Resumable.
    ///
    /// Writes results.md/.csv (the 16-cell table per metric with what
    /// adding R changes, and the paper's three conclusions judged by paired
    /// Wilcoxon tests per family over test slices, and over patients when
    /// every fold ran), per_slice.csv, psnr.png (every cell, seed spread)
    /// and a figure per held-out patient.
    ///
    /// Example: medtrans experiment table1 --config configs/experiments/table1-brats.toml
    Table1(Common),
}

impl Common {
    /// Load `E`'s config, pick the device, run (or only report), and print
    /// the results. `adjust` applies an experiment's own flags.
    fn run<E: Experiment>(self, adjust: impl FnOnce(&mut E)) -> Result<()> {
        let mut cfg = E::load(&self.config)?;
        if self.device.is_some() {
            cfg.common_mut().device = self.device;
        }
        if self.jobs > 1 {
            cfg.common_mut().runner = Runner::Processes {
                program: std::env::current_exe()
                    .context("finding the medtrans binary for --jobs")?,
                jobs: self.jobs as usize,
            };
        }
        adjust(&mut cfg);
        cfg.run(self.report_only, &mut |line| say!("{line}"))?;
        let dir = &cfg.common().results;
        say!(
            "{}",
            std::fs::read_to_string(dir.join("results.md")).unwrap_or_default()
        );
        say!("wrote {}", dir.display());
        Ok(())
    }
}

/// `--pairing` on a sweep config: unpaired results go beside the paired
/// ones (RESULTS-unpaired) unless the config is unpaired itself.
fn pairing(cfg: &mut SweepConfig, pairing: Option<String>) {
    if pairing.as_deref() == Some("unpaired") && cfg.pairing == Pairing::Paired {
        cfg.pairing = Pairing::Unpaired;
        let results = &mut cfg.common.results;
        let mut name = results.file_name().unwrap_or_default().to_owned();
        name.push("-unpaired");
        results.set_file_name(name);
    } else if pairing.as_deref() == Some("paired") {
        cfg.pairing = Pairing::Paired;
    }
}

pub fn run(args: Args) -> Result<()> {
    match args.which {
        Which::NoiseSweep(a) => a.common.run(|c: &mut SweepConfig| pairing(c, a.pairing)),
        Which::ManyToOne(a) => a.run::<ManyToOneConfig>(|_| {}),
        Which::Augment(a) => a.run::<AugmentConfig>(|_| {}),
        Which::Shape(a) => a.run::<ShapeConfig>(|_| {}),
        Which::Subjects(a) => a.run::<SubjectsConfig>(|_| {}),
        Which::Table1(a) => a.run::<Table1Config>(|_| {}),
    }
}
