//! What a run writes as it goes: the CSV logs (continued on resume), the
//! progress bar, `progress.json` and `report.html`.
use super::*;
impl Trainer {
    /// `progress.json` and `report.html` in the run folder. A report that
    /// cannot be written (a full disk) is a warning: training goes on, and
    /// `medtrans report` rebuilds it later.
    pub(super) fn write_report(
        &self,
        start: &std::time::Instant,
        first: usize,
        finished: bool,
        bar: &indicatif::ProgressBar,
    ) {
        let out = &self.cfg.out;
        let progress = medtrans_report::Progress {
            step: self.step,
            total_steps: self.total_steps(),
            epoch: self.step / self.steps_per_epoch,
            epochs: self.cfg.train.epochs,
            seconds_per_step: start.elapsed().as_secs_f64() / (self.step - first).max(1) as f64,
            device: self.cfg.train.device.clone(),
            mode: self.cfg.mode.clone(),
            finished: finished && self.step >= self.total_steps(),
            updated_unix: medtrans_report::now_unix(),
        };
        let written = progress
            .write(out)
            .and_then(|_| medtrans_report::write_run_report(out));
        if let Err(e) = written {
            bar.suspend(|| tracing::warn!("the run's report was not updated: {e:#}"));
        }
    }
}

pub(super) fn progress(total: u64, pos: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} train [{bar:30}] {pos}/{len} {per_sec} ETA {eta} | {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_position(pos);
    bar
}

/// CSV files that a resumed run continues: rows past the checkpoint are
/// dropped so the log matches an uninterrupted run.
pub(super) fn reopen_csv(
    path: &Path,
    resume_step: usize,
    step_col: usize,
) -> Result<(std::fs::File, bool)> {
    let mut has_header = false;
    if resume_step == 0 {
        // A new run: an old log there is stale.
        if path.exists() {
            std::fs::remove_file(path).with_context(|| format!("replacing {}", path.display()))?;
        }
    } else if path.exists() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut keep = String::new();
        let columns = text.lines().next().map_or(0, |h| h.split(',').count());
        for (i, line) in text.lines().enumerate() {
            let step: Option<usize> = line.split(',').nth(step_col).and_then(|s| s.parse().ok());
            // A row cut short by a kill has fewer columns: dropped.
            let whole = line.split(',').count() == columns;
            if i == 0 || (whole && step.is_some_and(|s| s <= resume_step)) {
                has_header |= i == 0;
                keep.push_str(line);
                keep.push('\n');
            }
        }
        medtrans_io::write_file_atomic(path, keep.as_bytes())?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    Ok((f, has_header))
}

pub(super) struct LossLog {
    file: std::fs::File,
    has_header: bool,
}

impl LossLog {
    pub(super) fn open(path: &Path, resume_step: usize) -> Result<Self> {
        let (file, has_header) = reopen_csv(path, resume_step, 0)?;
        Ok(Self { file, has_header })
    }

    pub(super) fn write(&mut self, step: usize, epoch: usize, row: &LossRow) -> Result<()> {
        if !self.has_header {
            let names: Vec<&str> = row.iter().map(|r| r.0).collect();
            writeln!(self.file, "step,epoch,{}", names.join(","))?;
            self.has_header = true;
        }
        let vals: Vec<String> = row.iter().map(|r| format!("{:.7e}", r.1)).collect();
        writeln!(self.file, "{step},{epoch},{}", vals.join(","))?;
        Ok(())
    }
}

pub(super) struct ValLog {
    file: std::fs::File,
}

impl ValLog {
    pub(super) fn open(path: &Path, resume_step: usize) -> Result<Self> {
        let (mut file, has_header) = reopen_csv(path, resume_step, 1)?;
        if !has_header {
            writeln!(file, "epoch,step,{}", metric_keys_csv())?;
        }
        Ok(Self { file })
    }

    pub(super) fn write(&mut self, epoch: usize, step: usize, v: &Summary) -> Result<()> {
        writeln!(self.file, "{epoch},{step},{}", v.means_csv())?;
        Ok(())
    }
}

/// A network's own validation log (`predictor_validation.csv`):
/// `epoch,step,slices,SCORE` per epoch.
pub(super) struct NetValLog {
    file: std::fs::File,
    pub(super) score: &'static str,
}

impl NetValLog {
    pub(super) fn open(path: &Path, resume_step: usize, score: &'static str) -> Result<Self> {
        let (mut file, has_header) = reopen_csv(path, resume_step, 1)?;
        if !has_header {
            writeln!(file, "epoch,step,slices,{score}")?;
        }
        Ok(Self { file, score })
    }

    pub(super) fn write(&mut self, epoch: usize, step: usize, n: usize, score: f64) -> Result<()> {
        writeln!(self.file, "{epoch},{step},{n},{score}")?;
        Ok(())
    }
}
