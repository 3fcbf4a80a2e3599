//! Checkpoints: each network as safetensors, each Adam state as Burn's
//! burnpack (the only format Burn writes optimiser records in), the image
//! pools as .npy and `state.json` with the step, config and what
//! translation needs. Randomness is derived from (seed, step), so the step
//! is the whole RNG state.
use crate::config::TrainConfig;
use anyhow::{bail, Context, Result};
use medtrans_io::{read_npy, write_npy, Slice};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";

/// The checkpoint layout this medtrans writes. 1: the networks followed
/// from the config alone; 2: `state.json` lists them too. Both load.
pub const FORMAT_VERSION: u32 = 2;

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

/// Write `dir` atomically: into a sibling temporary folder, then renamed
/// over the old one.
pub fn write_atomic(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = dir.with_extension("part");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    fill(&tmp)?;
    // Old aside, new in, old gone: a crash leaves a complete checkpoint in
    // `dir`, `dir.part` or `dir.old` (see `last_checkpoint`).
    let old = dir.with_extension("old");
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    if dir.exists() {
        std::fs::rename(dir, &old).with_context(|| format!("moving {} aside", dir.display()))?;
    }
    std::fs::rename(&tmp, dir).with_context(|| format!("renaming into {}", dir.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}

impl CheckpointState {
    /// Whether the run had reached the end of its schedule. A checkpoint
    /// is written at step = epoch x steps per epoch, so only the final one
    /// has as many epochs as the config asks for.
    pub fn finished(&self) -> bool {
        self.epoch >= self.config.train.epochs
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::write(
            dir.join(STATE_FILE),
            serde_json::to_string_pretty(self).expect("serialisable"),
        )?;
        Ok(())
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let p = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("{}: not a medtrans checkpoint", dir.display()))?;
        let s: CheckpointState = serde_json::from_str(&text)
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

/// The newest complete `last` checkpoint of a run. `state.json` is written
/// last, so a folder holding it is complete.
pub fn last_checkpoint(run_dir: &Path) -> Result<PathBuf> {
    let last = run_dir.join("checkpoints/last");
    for p in [
        last.clone(),
        last.with_extension("part"),
        last.with_extension("old"),
    ] {
        if p.join(STATE_FILE).is_file() {
            return Ok(p);
        }
    }
    bail!(
        "{}: not a medtrans checkpoint (no checkpoints/last/{STATE_FILE}); is this a run folder?",
        run_dir.display()
    )
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
