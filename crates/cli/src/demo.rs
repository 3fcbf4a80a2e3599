//! `medtrans demo`: the whole pipeline on the shipped demo data.
use anyhow::{bail, Context, Result};
use medtrans_datasets::{PairOptions, PrepareSpec, SliceDataset, SplitSpec, SubjectSpec};
use medtrans_training::{score_slices, Model, TrainConfig, Trainer};
use std::path::{Path, PathBuf};

/// Run medtrans end to end on the shipped ICBM152 demo data (CPU, minutes).
///
/// 1. prepares a T1 -> T2 dataset at 64 px (train/val/test slabs);
/// 2. pictures misalignment noise level 5;
/// 3. trains a small model in the chosen mode (RegGAN by default);
/// 4. scores it on the held-out test slab against the identity baseline
///    (T1 offered as the T2 guess), with a paired Wilcoxon test;
/// 5. translates the whole demo T1 volume into OUT/translated_t2.nii.gz.
///
/// Outputs: OUT/metrics.csv, OUT/summary.md, OUT/samples.png, the run in
/// OUT/run (open OUT/run/report.html in a browser) and the dataset in
/// OUT/dataset.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Output folder (created; an earlier demo's outputs there are replaced).
    #[arg(long, default_value = "medtrans-demo")]
    out: PathBuf,
    /// Demo data folder (default: data/demo of this checkout).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Training mode: a preset from configs/ (reggan, pix2pix, cycle, nc, cycle+reg, asymmetric).
    #[arg(long, default_value = "reggan")]
    mode: String,
    /// Override a training config field, e.g. --set train.epochs=2 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Device: cpu (Burn's flex backend), gpu (the best Vulkan GPU) or gpu:N (the N-th discrete GPU); the GPU ones need a build with `--features gpu`.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// The demo's small network and schedule: a few minutes on two CPU cores.
const DEMO_SETTINGS: [&str; 8] = [
    "generator.ngf=16",
    "generator.n_blocks=4",
    "discriminator.ndf=16",
    "train.epochs=24",
    "data.noise_level=0",
    "optim.lr=5e-4",
    "optim.decay_epochs=8",
    "train.seed=1",
];

/// The demo head as a T1 -> T2 dataset of `size` px slices, slab split.
pub fn demo_spec(data: &Path, out: &Path, size: usize) -> PrepareSpec {
    let mut spec = PrepareSpec::new(
        vec![SubjectSpec {
            a: data.join("t1.nii.gz"),
            b: data.join("t2.nii.gz"),
            mask: Some(data.join("mask.nii.gz")),
            ..Default::default()
        }],
        out,
    );
    spec.size = size;
    spec.min_foreground = 0.1;
    spec.split = SplitSpec::default();
    // Each slice's brain area (mm²): labels for the guided mode's predictor.
    let labels = data.join("brain_area.csv");
    spec.slice_labels = labels.is_file().then_some(labels);
    spec
}

const MARKER: &str = ".medtrans-demo";

/// The shipped demo data: `MEDTRANS_DEMO_DATA`, `data/demo` under the working
/// directory or one of its parents, or the checkout the binary was built from.
pub fn find_demo_data() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MEDTRANS_DEMO_DATA") {
        return Some(PathBuf::from(p));
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .map(|a| a.join("data/demo"))
        .chain(std::iter::once(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/demo"),
        ))
        .find(|p| p.join("t1.nii.gz").is_file())
}

fn prepare_out(out: &Path) -> Result<()> {
    if out.exists() {
        let non_empty = std::fs::read_dir(out)?.next().is_some();
        if non_empty && !out.join(MARKER).exists() {
            bail!(
                "{} exists and holds files that are not from a medtrans demo; choose another --out (nothing was touched)",
                out.display()
            );
        }
        if non_empty {
            std::fs::remove_dir_all(out)
                .with_context(|| format!("clearing the earlier demo in {}", out.display()))?;
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(
        out.join(MARKER),
        "outputs of `medtrans demo`; rerunning the demo replaces this folder\n",
    )?;
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    let data = match args.data {
        Some(d) => d,
        None => {
            find_demo_data().context("the demo data (data/demo) was not found; pass --data DIR")?
        }
    };
    // Check the mode and overrides before touching anything.
    let run_dir = args.out.join("run");
    let dataset = args.out.join("dataset");
    let mut set: Vec<String> = DEMO_SETTINGS.iter().map(|s| s.to_string()).collect();
    set.extend(args.set.iter().cloned());
    // The demo's own folders come last: --set cannot point it elsewhere.
    set.push(format!("data.path={:?}", dataset.display().to_string()));
    set.push(format!("out={:?}", run_dir.display().to_string()));
    set.push(format!("train.device={:?}", args.device));
    let cfg = TrainConfig::preset(&args.mode, &set)?;
    prepare_out(&args.out)?;

    say!("[1/5] preparing a T1 -> T2 dataset from {}", data.display());
    let spec = demo_spec(&data, &dataset, 64);
    crate::prepare::run_prepare(&spec)?;

    say!("[2/5] picturing misalignment noise level 5");
    let train = SliceDataset::open(&spec.out, "train")?;
    let png = args.out.join("misalignment_level5.png");
    crate::preview::write_preview(
        &train,
        &PairOptions {
            noise_level: 5,
            seed: 1,
            ..Default::default()
        },
        4,
        &png,
    )?;

    say!(
        "[3/5] training {} (noise level {}) for {} epochs on {} slices",
        cfg.mode,
        cfg.data.noise_level,
        cfg.train.epochs,
        train.len()
    );
    let mut trainer = Trainer::new(cfg)?;
    let summary = trainer.run(false)?;
    say!(
        "      {} steps, {:.3} s/step",
        summary.steps,
        summary.seconds_per_step
    );

    say!("[4/5] scoring on the held-out test slab");
    let test = SliceDataset::open(&spec.out, "test")?;
    let model = Model::load(&run_dir, &args.device)?;
    let names = vec!["identity".to_string(), model.config.mode.clone()];
    let identity = score_slices(&test, &test.a);
    let trained = model.evaluate(&test, 16)?;
    let scores = vec![identity, trained];
    let csv = args.out.join("metrics.csv");
    medtrans_io::write_file_atomic(
        &csv,
        medtrans_metrics::scores_csv(&names, &scores).as_bytes(),
    )?;
    let md = medtrans_metrics::summary_table(&names, &scores);
    medtrans_io::write_file_atomic(&args.out.join("summary.md"), md.as_bytes())?;
    say!("\n{md}");

    say!("[5/5] translating the demo T1 volume");
    let t1 = medtrans_training::inference::read_input(&data.join("t1.nii.gz"))?;
    let mask = medtrans_training::inference::read_input(&data.join("mask.nii.gz"))?;
    let out_vol = args.out.join("translated_t2.nii.gz");
    let synth = model.translate_volume(&t1, Some(&mask), 16, &mut |_, _| {})?;
    medtrans_io::write_nifti(&out_vol, &synth, &t1.geometry, false)?;
    let last_sample = std::fs::read_dir(run_dir.join("samples"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .max();
    if let Some(p) = last_sample {
        std::fs::copy(&p, args.out.join("samples.png"))?;
    }
    // The run's report links the demo's test-slab table.
    medtrans_report::add_link(
        &run_dir,
        "demo: test-slab scores against the identity baseline",
        &args.out.join("summary.md"),
    )?;
    say!(
        "\nwrote {}, {}, {} and the run in {} (open {} in a browser)",
        args.out.join("metrics.csv").display(),
        out_vol.display(),
        args.out.join("samples.png").display(),
        run_dir.display(),
        run_dir.join(medtrans_report::REPORT_FILE).display()
    );
    Ok(())
}
