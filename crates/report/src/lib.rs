//! `report.html`: one page per run folder that shows how training went,
//! kept current during training and rebuilt by `medtrans report`.
//!
//! Everything on the page comes from files the run already writes (its CSV
//! logs, sample grids, config, `progress.json`), so a report can be rebuilt
//! for any finished run, and several runs can be overlaid on one page. The
//! page is self-contained: plots are inline SVG (plotters' SVG backend),
//! images are the run's own PNGs by relative path, there is no network
//! access, and it reads without JavaScript (a little script only adds a
//! slider over the sample grids).
//!
//! Like nnU-Net's `progress.png` and the CycleGAN repository's HTML page,
//! it is for looking at a run; the numbers behind it stay in the CSVs.
mod page;
pub mod plot;
mod run;

pub use run::{Evaluation, RunData, Sample, Table};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The report's file name in a run folder.
pub const REPORT_FILE: &str = "report.html";
/// Where the trainer records its progress for the report.
pub const PROGRESS_FILE: &str = "progress.json";
/// Links other commands (evaluate, experiments) add to a run's report.
pub const LINKS_FILE: &str = "report_links.json";

/// How far a run has come, written by the trainer at each validation and
/// at the end: the report's steps/s, ETA and device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub step: usize,
    pub total_steps: usize,
    pub epoch: usize,
    pub epochs: usize,
    /// Wall-clock seconds per step since this process started training.
    pub seconds_per_step: f64,
    pub device: String,
    pub mode: String,
    pub finished: bool,
    /// Seconds since the Unix epoch.
    pub updated_unix: u64,
}

impl Progress {
    pub fn write(&self, run: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        medtrans_io::write_file_atomic(&run.join(PROGRESS_FILE), text.as_bytes())?;
        Ok(())
    }

    /// Seconds left at the current pace; `None` when finished or unknown.
    pub fn eta_seconds(&self) -> Option<f64> {
        (!self.finished && self.seconds_per_step > 0.0 && self.step < self.total_steps)
            .then(|| (self.total_steps - self.step) as f64 * self.seconds_per_step)
    }
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A page linked from a run's report: an evaluation written elsewhere, an
/// experiment's results that include the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub title: String,
    /// Absolute, or relative to the run folder.
    pub target: PathBuf,
}

/// Add (or replace, by title) a link in `run`'s report and rebuild it.
pub fn add_link(run: &Path, title: &str, target: &Path) -> Result<()> {
    let file = run.join(LINKS_FILE);
    let mut links: Vec<Link> = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let target = std::path::absolute(target).unwrap_or_else(|_| target.to_path_buf());
    links.retain(|l| l.title != title);
    links.push(Link {
        title: title.to_string(),
        target,
    });
    let text = serde_json::to_string_pretty(&links)?;
    medtrans_io::write_file_atomic(&file, text.as_bytes())?;
    write_run_report(run)?;
    Ok(())
}

/// Write `RUN/report.html` from the run folder's files (atomically: a
/// browser reloading it sees the old page or the new one, never half).
pub fn write_run_report(run: &Path) -> Result<PathBuf> {
    let data = RunData::read(run)?;
    let html = page::run_page(&data)?;
    let out = run.join(REPORT_FILE);
    medtrans_io::write_file_atomic(&out, html.as_bytes())
        .with_context(|| format!("writing the report of {}", run.display()))?;
    Ok(out)
}

/// One page overlaying several runs' curves (modes, seeds), written to
/// `out`, with links to each run's own report.
pub fn write_comparison(runs: &[PathBuf], out: &Path) -> Result<()> {
    if runs.len() < 2 {
        bail!("a comparison needs two runs or more");
    }
    let data = runs
        .iter()
        .map(|r| RunData::read(r))
        .collect::<Result<Vec<_>>>()?;
    let base = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let html = page::comparison_page(&data, base)?;
    medtrans_io::write_file_atomic(out, html.as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
