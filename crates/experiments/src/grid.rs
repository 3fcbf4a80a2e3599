//! The run grid every experiment is made of: a list of runs, each a
//! training config built by typed changes to a preset, trained in order
//! (resumed where a checkpoint exists, skipped when finished) with an ETA,
//! then scored from its last checkpoint and tabulated. What an experiment
//! adds is its cells, its claims and its figures.
use anyhow::{Context, Result};
use medtrans_datasets::SliceDataset;
use medtrans_io::Slice;
use medtrans_metrics::{Metric, SliceScore, Summary};
use medtrans_training::checkpoint::{last_checkpoint, CheckpointState};
use medtrans_training::{score_slices, Model, TrainConfig, Trainer};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use crate::experiment::Common;
pub use crate::runner::Runner;

/// One training run of a grid.
#[derive(Debug, Clone)]
pub struct GridRun {
    /// For progress lines, e.g. `reggan noise 3 seed 2`.
    pub label: String,
    /// Runs of one group share a measured step rate for the ETA (the mode:
    /// a CycleGAN step costs several pix2pix steps).
    pub group: String,
    /// Its complete config; `config.out` is the run folder.
    pub config: TrainConfig,
}

impl GridRun {
    pub fn dir(&self) -> &Path {
        &self.config.out
    }
}

/// Train every run in order: a finished run is skipped, a run with a
/// checkpoint continues (with `resume_overrides`, e.g. the device), the
/// rest start. `report` gets one line per run, with the grid's ETA once a
/// run of a group has been timed.
pub fn train_grid(
    runs: &[GridRun],
    resume_overrides: &[String],
    runner: &Runner,
    report: &mut dyn FnMut(&str),
) -> Result<()> {
    if let Runner::Processes { program, jobs } = runner {
        return crate::runner::train_in_processes(runs, resume_overrides, program, *jobs, report);
    }
    // Seconds and steps per group, measured as the grid goes.
    let mut rates: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for (k, run) in runs.iter().enumerate() {
        let tag = tag(k, runs);
        if finished_steps(run.dir())?.is_some() {
            report(&format!("{tag}: finished earlier, skipped"));
            continue;
        }
        let mut trainer = if last_checkpoint(run.dir()).is_ok() {
            Trainer::resume(run.dir(), resume_overrides)?
        } else {
            Trainer::new(run.config.clone())?
        };
        let total = trainer.total_steps();
        let (mut eta, mut untimed) = (0.0, Vec::new());
        for (j, r) in runs.iter().enumerate().skip(k) {
            let steps = if j == k { total - trainer.step } else { total };
            match rates.get(r.group.as_str()) {
                Some((s, n)) => eta += s / *n as f64 * steps as f64,
                None if !untimed.contains(&r.group) => untimed.push(r.group.clone()),
                None => {}
            }
        }
        let eta = match (rates.is_empty(), untimed.is_empty()) {
            (true, _) => String::new(),
            (false, true) => format!(", ETA ~{:.0} min", eta / 60.0),
            (false, false) => format!(
                ", ETA ~{:.0} min plus the {} runs (not timed yet)",
                eta / 60.0,
                untimed.join(", ")
            ),
        };
        report(&format!("{tag}: steps {}..{total}{eta}", trainer.step));
        let start = Instant::now();
        let first = trainer.step;
        trainer.run(true)?;
        let r = rates.entry(run.group.as_str()).or_default();
        r.0 += start.elapsed().as_secs_f64();
        r.1 += trainer.step - first;
    }
    Ok(())
}

/// The start of run `k`'s progress lines: `[k+1/n] label`.
pub(crate) fn tag(k: usize, runs: &[GridRun]) -> String {
    format!("[{}/{}] {}", k + 1, runs.len(), runs[k].label)
}

/// Progress lines go here.
pub type Report<'a> = &'a mut dyn FnMut(&str);

/// What an experiment's run command does before it reports: create the
/// runs folder, build the experiment's data (`build`, once: it skips a
/// dataset already there), then train the grid on the experiment's device,
/// the way its runner says.
pub fn build_and_train(
    common: &Common,
    runs: &[GridRun],
    build: &mut dyn FnMut(Report) -> Result<()>,
    report: Report,
) -> Result<()> {
    std::fs::create_dir_all(&common.runs)
        .with_context(|| format!("creating {}", common.runs.display()))?;
    build(report)?;
    let device = common.device();
    train_grid(
        runs,
        &[format!("train.device={device:?}")],
        &common.runner,
        report,
    )
}

/// The step count of a run that reached the end of its schedule, from its
/// last checkpoint's state alone (no networks loaded); `None` for a run not
/// started or not finished.
pub fn finished_steps(dir: &Path) -> Result<Option<usize>> {
    let Ok(last) = last_checkpoint(dir) else {
        return Ok(None);
    };
    let state = CheckpointState::load(&last)?;
    Ok(state.finished().then_some(state.step))
}

/// A run's outputs and per-slice scores on `test`, from its last
/// checkpoint: the fixed budget's end, not the best validation epoch (which
/// would choose with aligned data a user may not have).
pub fn score_run(
    dir: &Path,
    device: &str,
    test: &SliceDataset,
) -> Result<(Vec<Slice>, Vec<SliceScore>)> {
    let model = Model::load(&dir.join("checkpoints/last"), device)?;
    let fakes = model.translate_split(test, 16)?;
    let scores = score_slices(test, &fakes);
    Ok((fakes, scores))
}

/// A results table: rows of cell keys, their metric summary and optional
/// extra columns, written as CSV (mean and std columns per metric) and as
/// markdown (mean +- std).
#[derive(Debug, Clone, Default)]
pub struct ResultsTable {
    /// (CSV name, markdown heading) of the key columns.
    pub keys: Vec<(String, String)>,
    /// Markdown heading of the slice count.
    pub slices_heading: String,
    /// (CSV name, markdown heading) of the extra columns, after the metrics.
    pub extras: Vec<(String, String)>,
    pub rows: Vec<ResultsRow>,
}

#[derive(Debug, Clone)]
pub struct ResultsRow {
    pub keys: Vec<String>,
    pub scores: Summary,
    /// (CSV value, markdown value) per extra column.
    pub extras: Vec<(String, String)>,
}

impl ResultsTable {
    /// The metric columns: every metric of any row, in first-seen order
    /// (the paper's three first).
    pub fn metrics(&self) -> Vec<Metric> {
        let mut out: Vec<Metric> = Metric::ALL.to_vec();
        for m in self.rows.iter().flat_map(|r| r.scores.metrics()) {
            if !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }

    pub fn csv(&self) -> String {
        let metrics = self.metrics();
        let mut head: Vec<String> = self.keys.iter().map(|k| k.0.clone()).collect();
        head.push("slices".into());
        for &m in &metrics {
            head.push(format!("{}_mean", m.key()));
            head.push(format!("{}_std", m.key()));
        }
        head.extend(self.extras.iter().map(|e| e.0.clone()));
        let mut out = head.join(",") + "\n";
        for r in &self.rows {
            let mut cells = r.keys.clone();
            cells.push(r.scores.slices.to_string());
            for &m in &metrics {
                let d = m.csv_decimals();
                cells.push(format!("{:.d$}", r.scores.mean(m)));
                cells.push(format!("{:.d$}", r.scores.std(m)));
            }
            cells.extend(r.extras.iter().map(|e| e.0.clone()));
            out += &(cells.join(",") + "\n");
        }
        out
    }

    pub fn markdown(&self) -> String {
        let metrics = self.metrics();
        let mut head: Vec<String> = self.keys.iter().map(|k| k.1.clone()).collect();
        head.push(self.slices_heading.clone());
        head.extend(metrics.iter().map(|m| m.label().to_string()));
        head.extend(self.extras.iter().map(|e| e.1.clone()));
        let mut out = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
        for r in &self.rows {
            let mut cells = r.keys.clone();
            cells.push(r.scores.slices.to_string());
            cells.extend(metrics.iter().map(|&m| r.scores.cell(m)));
            cells.extend(r.extras.iter().map(|e| e.1.clone()));
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out
    }
}

/// Every run folder under `runs` links the experiment's results from its
/// report.html, so a reader who opens one run finds the table it is part
/// of. A report that cannot be rewritten is a warning, not a failure.
pub fn link_results(runs: &Path, title: &str, results: &Path) {
    let mut stack = vec![runs.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if dir.join("config.toml").is_file() {
            if let Err(e) = medtrans_report::add_link(&dir, title, results) {
                eprintln!(
                    "warning: {}: the report was not updated: {e:#}",
                    dir.display()
                );
            }
            continue;
        }
        if let Ok(rd) = std::fs::read_dir(&dir) {
            stack.extend(
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.is_dir()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_results_table_lists_keys_scores_and_extras() {
        let t = ResultsTable {
            keys: vec![("mode".into(), "mode".into())],
            slices_heading: "slices".into(),
            extras: vec![("runs".into(), "runs".into())],
            rows: vec![ResultsRow {
                keys: vec!["reggan".into()],
                scores: Summary::from_parts(12, [0.1, 20.0, 0.8], [0.01, 1.5, 0.02]),
                extras: vec![("2".into(), "2".into())],
            }],
        };
        assert_eq!(
            t.csv(),
            "mode,slices,nmae_mean,nmae_std,psnr_mean,psnr_std,ssim_mean,ssim_std,runs\n\
             reggan,12,0.100000,0.010000,20.0000,1.5000,0.800000,0.020000,2\n"
        );
        assert_eq!(
            t.markdown(),
            "| mode | slices | NMAE | PSNR (dB) | SSIM | runs |\n|---|---|---|---|---|---|\n\
             | reggan | 12 | 0.1000 +- 0.0100 | 20.00 +- 1.50 | 0.8000 +- 0.0200 | 2 |\n"
        );
    }
}
