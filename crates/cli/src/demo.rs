//! `medtrans demo`: the whole pipeline on the shipped demo data.
use anyhow::{bail, Context, Result};
use medtrans_datasets::{PairOptions, PrepareSpec, SliceDataset, SplitSpec, SubjectSpec};
use medtrans_metrics::{mean_std, nmae, psnr, ssim};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Run medtrans end to end on the shipped ICBM152 demo data (CPU, minutes).
///
/// Prepares a T1 -> T2 dataset at 64 px, saves a picture of the misalignment
/// noise at level 5, and scores the identity baseline (T1 offered as the T2
/// guess) on held-out slices with the paper's NMAE, PSNR and SSIM: the
/// numbers a trained model has to beat. Outputs go to OUT.
#[derive(clap::Args)]
pub struct Args {
    /// Output folder (created; an earlier demo's outputs there are replaced).
    #[arg(long, default_value = "medtrans-demo")]
    out: PathBuf,
    /// Demo data folder (default: data/demo of this checkout).
    #[arg(long)]
    data: Option<PathBuf>,
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
    prepare_out(&args.out)?;
    say!("[1/3] preparing a T1 -> T2 dataset from {}", data.display());
    let mut spec = PrepareSpec::new(
        vec![SubjectSpec {
            a: data.join("t1.nii.gz"),
            b: data.join("t2.nii.gz"),
            mask: Some(data.join("mask.nii.gz")),
        }],
        args.out.join("dataset"),
    );
    spec.size = 64;
    spec.min_foreground = 0.1;
    spec.split = SplitSpec::default();
    crate::prepare::run_prepare(&spec)?;

    say!("[2/3] picturing misalignment noise level 5");
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

    say!("[3/3] scoring the identity baseline (T1 as the T2 guess) on the test slab");
    let test = SliceDataset::open(&spec.out, "test")?;
    let csv_path = args.out.join("metrics.csv");
    let mut csv = std::fs::File::create(&csv_path)?;
    writeln!(csv, "model,slice,nmae,psnr,ssim")?;
    let (mut m, mut p, mut s) = (vec![], vec![], vec![]);
    let refs = test.refs.clone().unwrap_or_default();
    for i in 0..test.len() {
        let (fake, real) = (&test.a[i], &test.b[i]);
        let (Some(a), Some(b), Some(c)) = (nmae(fake, real), psnr(fake, real), ssim(fake, real))
        else {
            continue;
        };
        writeln!(
            csv,
            "identity,{},{a:.6},{b:.4},{c:.6}",
            refs.get(i).map_or(i, |r| r.index)
        )?;
        m.push(a);
        p.push(b);
        s.push(c);
    }
    let fmt =
        |v: &[f64]| mean_std(v).map_or("n/a".into(), |(mu, sd)| format!("{mu:.4} +- {sd:.4}"));
    say!("\n| model | slices | NMAE | PSNR (dB) | SSIM |\n|---|---|---|---|---|");
    say!(
        "| identity (T1 as T2) | {} | {} | {} | {} |",
        m.len(),
        fmt(&m),
        fmt(&p),
        fmt(&s)
    );
    say!(
        "\nwrote {}, {} and the dataset in {}",
        csv_path.display(),
        png.display(),
        spec.out.display()
    );
    say!("Training (`medtrans train`) is not built yet: these are the baseline numbers a model must beat.");
    Ok(())
}
