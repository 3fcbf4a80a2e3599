//! Checkpoints: each network as safetensors, each Adam state as Burn's
//! burnpack (the only format Burn writes optimiser records in), the image
//! pools as .npy and `state.json` with the step, config and what
//! translation needs. Randomness is derived from (seed, step), so the step
//! is the whole RNG state.
//!
//! A checkpoint must survive a kill or a full disk at any moment: each is
//! written into a sibling `.part` folder, fsynced, given `checksums.txt`
//! (CRC-32 of every file) and only then renamed into place. The previous
//! `last` checkpoints move to `history/` (the newest `train.keep_checkpoints`
//! are kept), and resume takes the newest one whose checksums hold.
use crate::config::TrainConfig;
use anyhow::{bail, Context, Result};
use medtrans_io::{read_npy, write_npy, Slice};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
/// CRC-32 of every other file of a checkpoint, written last.
pub const CHECKSUM_FILE: &str = "checksums.txt";

/// The checkpoint layout this medtrans writes. 1: the networks followed
/// from the config alone; 2: `state.json` lists them too; 3: with
/// `checksums.txt`. All load; only 3 is verified.
pub const FORMAT_VERSION: u32 = 3;

/// The intensity calibration a checkpoint carries; it comes from the
/// dataset's manifest.
pub use medtrans_datasets::ModelInfo;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointState {
    pub format_version: u32,
    /// The networks saved beside this file (`NAME.safetensors`, with
    /// `NAME.adam.bpk`). Empty in format 1, whose networks follow from the
    /// config.
    #[serde(default)]
    pub networks: Vec<String>,
    /// Training steps completed.
    pub step: usize,
    pub epoch: usize,
    pub best_val_nmae: Option<f64>,
    /// Validation scores (NMAE, PSNR, SSIM means) at this checkpoint.
    pub val: Option<[f64; 3]>,
    pub model: ModelInfo,
    pub config: TrainConfig,
}

/// Write `dir` atomically: into a sibling temporary folder, fsynced and
/// checksummed, then renamed over the old one. With `history` > 0 the old
/// one moves to `history/step_NNNNNNNN` beside `dir`, and only the newest
/// `history` of those are kept.
pub fn write_atomic(
    dir: &Path,
    history: usize,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let tmp = dir.with_extension("part");
    if tmp.exists() {
        remove_checkpoint(&tmp)?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    fill(&tmp)?;
    write_checksums(&tmp)?;
    // Old aside, new in, old kept or gone: a crash leaves a complete
    // checkpoint in `dir`, `dir.part`, `dir.old` or the history (see
    // `last_checkpoint`).
    let old = dir.with_extension("old");
    if old.exists() {
        remove_checkpoint(&old)?;
    }
    if dir.exists() {
        std::fs::rename(dir, &old).with_context(|| format!("moving {} aside", dir.display()))?;
    }
    std::fs::rename(&tmp, dir).with_context(|| format!("renaming into {}", dir.display()))?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    if old.exists() {
        match (history, CheckpointState::load(&old)) {
            (1.., Ok(state)) => keep_in_history(&old, state.step, history)?,
            _ => remove_checkpoint(&old)?,
        }
    }
    Ok(())
}

/// The folder of earlier `last` checkpoints.
fn history_dir(last: &Path) -> PathBuf {
    last.with_file_name("history")
}

fn keep_in_history(old: &Path, step: usize, keep: usize) -> Result<()> {
    let hist = history_dir(&old.with_extension(""));
    std::fs::create_dir_all(&hist).with_context(|| format!("creating {}", hist.display()))?;
    let to = hist.join(format!("step_{step:08}"));
    if to.exists() {
        remove_checkpoint(&to)?;
    }
    std::fs::rename(old, &to)
        .with_context(|| format!("moving {} to {}", old.display(), to.display()))?;
    // Folders a kill left half-deleted earlier.
    for e in std::fs::read_dir(&hist).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().ends_with(".trash") {
            std::fs::remove_dir_all(e.path())
                .with_context(|| format!("removing {}", e.path().display()))?;
        }
    }
    let mut kept = history_entries(&hist);
    while kept.len() > keep {
        let oldest = kept.remove(kept.len() - 1);
        remove_checkpoint(&oldest)?;
    }
    Ok(())
}

/// Delete a checkpoint folder so that a kill midway never leaves a
/// half-deleted one under a checkpoint's name: it is renamed aside
/// (`.NAME.trash`, which nothing reads) and then removed.
fn remove_checkpoint(p: &Path) -> Result<()> {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let trash = p.with_file_name(format!(".{name}.trash"));
    if trash.exists() {
        std::fs::remove_dir_all(&trash).with_context(|| format!("removing {}", trash.display()))?;
    }
    std::fs::rename(p, &trash).with_context(|| format!("moving {} aside", p.display()))?;
    std::fs::remove_dir_all(&trash).with_context(|| format!("removing {}", trash.display()))
}

/// `history/step_*` folders, newest first.
fn history_entries(hist: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(hist)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("step_"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.reverse();
    v
}

fn crc32_of(path: &Path) -> Result<u32> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes);
    Ok(h.finalize())
}

/// The checkpoint's files (all but the checksum list), by name.
fn checkpoint_files(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != CHECKSUM_FILE)
        .collect();
    names.sort();
    Ok(names)
}

/// fsync every file, then write `checksums.txt` (fsynced) and fsync the
/// folder: once this returns, the checkpoint is on disk.
fn write_checksums(dir: &Path) -> Result<()> {
    let mut list = String::new();
    for name in checkpoint_files(dir)? {
        let p = dir.join(&name);
        std::fs::File::open(&p)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("syncing {}", p.display()))?;
        list += &format!("{:08x}  {name}\n", crc32_of(&p)?);
    }
    let p = dir.join(CHECKSUM_FILE);
    let mut f = std::fs::File::create(&p).with_context(|| format!("writing {}", p.display()))?;
    f.write_all(list.as_bytes())
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", p.display()))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    // Directories can be fsynced on Unix only; elsewhere the rename is
    // as durable as the OS makes it.
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    Ok(())
}

/// Check a checkpoint against its `checksums.txt`: every listed file is
/// there with its CRC. Formats 1 and 2 had no checksums and pass unchecked.
pub fn verify_checkpoint(dir: &Path) -> Result<CheckpointState> {
    let state = CheckpointState::load(dir)?;
    if state.format_version < 3 {
        return Ok(state);
    }
    let p = dir.join(CHECKSUM_FILE);
    let list = std::fs::read_to_string(&p).with_context(|| {
        format!(
            "{}: incomplete checkpoint (no {CHECKSUM_FILE})",
            dir.display()
        )
    })?;
    let mut listed = 0;
    for line in list.lines() {
        let Some((crc, name)) = line.split_once("  ") else {
            bail!("{}: unreadable line {line:?}", p.display());
        };
        let f = dir.join(name);
        if !f.is_file() {
            bail!("{}: {name} is missing", dir.display());
        }
        let got = format!("{:08x}", crc32_of(&f)?);
        if got != crc {
            bail!(
                "{}: {name} is corrupt (CRC-32 {got}, written as {crc})",
                dir.display()
            );
        }
        listed += 1;
    }
    if listed < checkpoint_files(dir)?.len() {
        bail!(
            "{}: files beyond {CHECKSUM_FILE}; incomplete or edited",
            dir.display()
        );
    }
    Ok(state)
}

impl CheckpointState {
    /// Whether the run had reached the end of its schedule. A checkpoint
    /// is written at step = epoch x steps per epoch, so only the final one
    /// has as many epochs as the config asks for.
    pub fn finished(&self) -> bool {
        self.epoch >= self.config.train.epochs
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("serialisable");
        Ok(medtrans_io::write_file_atomic(
            &dir.join(STATE_FILE),
            text.as_bytes(),
        )?)
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let p = dir.join(STATE_FILE);
        if !p.is_file() {
            bail!(
                "{}: not a medtrans checkpoint (no {STATE_FILE})",
                dir.display()
            );
        }
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("{}: unreadable checkpoint state", p.display()))?;
        let mut json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: unreadable checkpoint state", p.display()))?;
        // A run saved before some [loss] keys moved to their tables.
        if let Some(config) = json.get_mut("config") {
            crate::term_options::migrate_json(config);
        }
        let s: CheckpointState = serde_json::from_value(json)
            .with_context(|| format!("{}: unreadable checkpoint state", p.display()))?;
        if !(1..=FORMAT_VERSION).contains(&s.format_version) {
            bail!(
                "{}: checkpoint format {} was written by a newer medtrans; this one reads formats 1 to {FORMAT_VERSION}",
                p.display(),
                s.format_version
            );
        }
        Ok(s)
    }
}

/// The newest sound `last` checkpoint of a run: of `last`, the folders a
/// crash mid-write leaves (`last.part`, `last.old`) and `history/`, the one
/// with the most steps whose checksums hold. A corrupt one is reported
/// (a warning naming the file) and passed over.
pub fn last_checkpoint(run_dir: &Path) -> Result<PathBuf> {
    let last = run_dir.join("checkpoints/last");
    let mut candidates = vec![
        last.clone(),
        last.with_extension("part"),
        last.with_extension("old"),
    ];
    candidates.extend(history_entries(&history_dir(&last)));
    // Newest first by the step in each state.json (cheap), then verify the
    // files (a full read) only until one is sound.
    let mut problems = Vec::new();
    let mut by_step: Vec<(usize, PathBuf)> = Vec::new();
    for p in candidates {
        if !p.join(STATE_FILE).is_file() {
            continue;
        }
        match CheckpointState::load(&p) {
            Ok(s) => by_step.push((s.step, p)),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    by_step.sort_by_key(|c| std::cmp::Reverse(c.0));
    let mut best = None;
    for (_, p) in by_step {
        match verify_checkpoint(&p) {
            Ok(_) => {
                best = Some(p);
                break;
            }
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    match best {
        Some(p) => {
            for e in &problems {
                tracing::warn!("passing over a damaged checkpoint: {e}");
            }
            Ok(p)
        }
        None if !problems.is_empty() => bail!(
            "{}: no sound checkpoint: {}",
            run_dir.display(),
            problems.join("; ")
        ),
        None if run_dir.join("checkpoints").is_dir() => bail!(
            "{}: the run stopped before its first checkpoint was complete; \
             nothing to resume (start it again with --overwrite)",
            run_dir.display()
        ),
        None => bail!(
            "{}: not a medtrans checkpoint (no checkpoints/last/{STATE_FILE}); is this a run folder?",
            run_dir.display()
        ),
    }
}

/// [`last_checkpoint`], moved back to `checkpoints/last` when a kill
/// interrupted the swap in [`write_atomic`]: a complete `last.part` not yet
/// renamed in, or `last.old` with no `last`. The swap is finished as it
/// would have been (the replaced `last` goes to the history). Without this,
/// a run killed inside its final checkpoint's swap resumed from `last.part`,
/// found nothing left to train, and ended with `last` a checkpoint behind.
pub fn settle_last_checkpoint(run_dir: &Path) -> Result<PathBuf> {
    let found = last_checkpoint(run_dir)?;
    let last = run_dir.join("checkpoints/last");
    let (part, old) = (last.with_extension("part"), last.with_extension("old"));
    if found != part && found != old {
        return Ok(found);
    }
    if found == part {
        if old.exists() {
            remove_checkpoint(&old)?;
        }
        if last.exists() {
            std::fs::rename(&last, &old)
                .with_context(|| format!("moving {} aside", last.display()))?;
        }
    } else if last.exists() {
        // `last` failed its checksums: kept for inspection, out of the way.
        let damaged = last.with_extension("damaged");
        if damaged.exists() {
            remove_checkpoint(&damaged)?;
        }
        std::fs::rename(&last, &damaged)
            .with_context(|| format!("moving {} aside", last.display()))?;
    }
    std::fs::rename(&found, &last)
        .with_context(|| format!("renaming {} into {}", found.display(), last.display()))?;
    if let Some(parent) = last.parent() {
        sync_dir(parent)?;
    }
    if found == part && old.exists() {
        let keep = CheckpointState::load(&last)?
            .config
            .train
            .keep_checkpoints
            .saturating_sub(1);
        match (keep, CheckpointState::load(&old)) {
            (1.., Ok(state)) => keep_in_history(&old, state.step, keep)?,
            _ => remove_checkpoint(&old)?,
        }
    }
    tracing::info!(
        "finished the checkpoint swap a stop interrupted: {} is now {}",
        found.display(),
        last.display()
    );
    Ok(last)
}

/// A checkpoint folder from a run folder (its best, else last checkpoint)
/// or a checkpoint folder itself.
pub fn resolve_checkpoint(path: &Path) -> Result<PathBuf> {
    if path.join(STATE_FILE).is_file() {
        return Ok(path.to_path_buf());
    }
    for sub in ["checkpoints/best", "checkpoints/last"] {
        let p = path.join(sub);
        if p.join(STATE_FILE).is_file() {
            return Ok(p);
        }
    }
    if !path.exists() {
        bail!("{}: no such run or checkpoint", path.display());
    }
    bail!(
        "{}: neither a checkpoint (no {STATE_FILE}) nor a run folder with checkpoints/best or checkpoints/last",
        path.display()
    )
}

pub fn save_pool(path: &Path, images: &[Slice]) -> Result<()> {
    let Some(first) = images.first() else {
        return Ok(());
    };
    let data: Vec<f32> = images.iter().flat_map(|s| s.data.iter().copied()).collect();
    write_npy(path, &[images.len(), first.height, first.width], &data)?;
    Ok(())
}

pub fn load_pool(path: &Path) -> Result<Vec<Slice>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    Ok(read_npy(path)?.into_slices(path)?)
}
