//! `medtrans report`: a run's report.html, or several runs on one page.
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Build report.html for finished runs, or overlay several runs' curves.
///
/// Training keeps RUN/report.html current by itself (rewritten at every
/// validation; reload the page to see the new state). Use this for runs
/// trained before reports existed, after `evaluate` wrote elsewhere, or to
/// compare modes and seeds on one page. The page is self-contained: open it
/// in any browser, no server or network needed.
///
/// Examples:
///   medtrans report runs/reggan                      # writes runs/reggan/report.html
///   medtrans report runs/reggan runs/pix2pix --out compare.html
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Run folders (what `medtrans train` wrote).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// With several runs: the comparison page to write (required then).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace an existing comparison page at --out.
    #[arg(long, visible_alias = "force")]
    overwrite: bool,
}

pub fn run(args: Args) -> Result<()> {
    if args.runs.len() == 1 {
        if args.out.is_some() {
            bail!(
                "--out is for comparing several runs; one run's report is always RUN/report.html"
            );
        }
        let out = medtrans_report::write_run_report(&args.runs[0])?;
        say!("wrote {}", out.display());
        return Ok(());
    }
    let Some(out) = args.out else {
        bail!(
            "comparing {} runs needs --out FILE.html for the page",
            args.runs.len()
        );
    };
    if out.exists() && !args.overwrite {
        bail!("{} exists; pass --overwrite to replace it", out.display());
    }
    for r in &args.runs {
        // Each run's own page too, so that the comparison's links work.
        medtrans_report::write_run_report(r)?;
    }
    medtrans_report::write_comparison(&args.runs, &out)?;
    say!("wrote {} ({} runs)", out.display(), args.runs.len());
    Ok(())
}
