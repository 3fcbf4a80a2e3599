//! Where a grid's runs train: in this process one after another, or in
//! several child processes at once.
//!
//! At the sweeps' sizes (64 px, 16 channels) a training step is made of
//! ops too small to split, so one thread trains as fast as two, and a run's
//! numbers do not depend on the thread count (docs/benchmarks.md). Two runs
//! at once, one thread each, then nearly double an experiment's
//! throughput. Runs of one process would share Burn's seeded device, so
//! each is a process of its own: `medtrans train` on the run's config.
use crate::grid::{finished_steps, tag, GridRun, Report};
use anyhow::{bail, Context, Result};
use medtrans_training::checkpoint::last_checkpoint;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a grid trains its runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Runner {
    /// In this process, one after another.
    #[default]
    InProcess,
    /// `jobs` runs at once, each `program train` (the medtrans binary) on
    /// one thread, its output in `RUN.log` beside the run folder.
    Processes { program: PathBuf, jobs: usize },
}

/// One child at work.
struct Job<'a> {
    index: usize,
    run: &'a GridRun,
    child: Child,
    started: Instant,
    log: PathBuf,
}

/// Train the unfinished runs of `runs`, `jobs` at a time, each by `program
/// train` in a child process (`--resume` where a checkpoint exists, with
/// `resume_overrides`). A failed run stops the others and names its log.
pub fn train_in_processes(
    runs: &[GridRun],
    resume_overrides: &[String],
    program: &std::path::Path,
    jobs: usize,
    report: Report,
) -> Result<()> {
    let mut todo = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (k, run) in runs.iter().enumerate() {
        // A grid that lists a run twice trains it once, as in-process.
        if !seen.insert(run.dir().to_path_buf()) {
            continue;
        }
        if finished_steps(run.dir())?.is_some() {
            report(&format!("{}: finished earlier, skipped", tag(k, runs)));
        } else {
            todo.push((k, run));
        }
    }
    todo.reverse(); // popped from the end: training order
    let mut running: Vec<Job> = Vec::new();
    let result = (|| -> Result<()> {
        loop {
            while running.len() < jobs.max(1) {
                let Some((index, run)) = todo.pop() else {
                    break;
                };
                running.push(spawn(program, index, run, resume_overrides)?);
                let job = running.last().expect("just pushed");
                report(&format!(
                    "{}: started ({jobs} at once; output in {})",
                    tag(index, runs),
                    job.log.display()
                ));
            }
            if running.is_empty() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
            let mut i = 0;
            while i < running.len() {
                let status = running[i]
                    .child
                    .try_wait()
                    .context("waiting for a training process")?;
                let Some(status) = status else {
                    i += 1;
                    continue;
                };
                let job = running.swap_remove(i);
                if !status.success() {
                    bail!(
                        "run {} failed ({status}); its output is in {}",
                        job.run.label,
                        job.log.display()
                    );
                }
                // The run folder holds its own config.toml now.
                let _ = std::fs::remove_file(beside(job.run, "config.toml"));
                let secs = job.started.elapsed().as_secs_f64();
                report(&format!(
                    "{}: finished in {}",
                    tag(job.index, runs),
                    if secs < 120.0 {
                        format!("{secs:.0} s")
                    } else {
                        format!("{:.1} min", secs / 60.0)
                    }
                ));
            }
        }
    })();
    // On an error the other children are stopped as `running` drops
    // (`Job`'s Drop); a stopped run resumes from its last checkpoint.
    drop(running);
    result
}

impl Drop for Job<'_> {
    /// A child outlives no error or panic of the grid that started it.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A file beside the run folder: `RUN.config.toml` (the child's config),
/// `RUN.log` (its output).
fn beside(run: &GridRun, ext: &str) -> PathBuf {
    let dir = run.dir();
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    dir.with_file_name(format!("{name}.{ext}"))
}

/// Start `program train` for one run: from a checkpoint if there is one,
/// else from the run's config, written beside the run folder.
fn spawn<'a>(
    program: &std::path::Path,
    index: usize,
    run: &'a GridRun,
    resume_overrides: &[String],
) -> Result<Job<'a>> {
    let dir = run.dir();
    let log = beside(run, "log");
    let mut cmd = Command::new(program);
    cmd.arg("train");
    let resumable = last_checkpoint(dir).is_ok();
    if !resumable && dir.join("checkpoints").exists() {
        // Never start over on top of checkpoints that cannot be read: the
        // user decides what they were worth.
        bail!(
            "{}: its checkpoints cannot be read; move the folder away to train {} again",
            dir.display(),
            run.label
        );
    }
    if resumable {
        cmd.arg("--resume").arg(dir);
        for o in resume_overrides {
            cmd.arg("--set").arg(o);
        }
    } else {
        let config = beside(run, "config.toml");
        medtrans_io::write_file_atomic(&config, run.config.to_toml().as_bytes())?;
        // No checkpoints: a folder left by a run killed before its first
        // one holds nothing to keep.
        cmd.arg("--run-config").arg(&config).arg("--overwrite");
    }
    // Appended to: a failed sitting's output stays above the next one's.
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    let child = cmd
        .env("RAYON_NUM_THREADS", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    Ok(Job {
        index,
        run,
        child,
        started: Instant::now(),
        log,
    })
}
