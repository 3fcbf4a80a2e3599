//! Checkpoints: each network as safetensors, each Adam state as Burn's
//! burnpack (the only format Burn writes optimiser records in), the image
//! pools as .npy and `state.json` with the step, config and what
//! translation needs. Randomness is derived from (seed, step), so the step
//! is the whole RNG state.
use crate::config::TrainConfig;
use anyhow::{bail, Context, Result};
use medtrans_datasets::SliceDataset;
use medtrans_io::{read_npy, write_npy, Slice};
use medtrans_transforms::{IntensityMap, Normalization};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";

/// What applying the model to a new volume needs to know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Side of the square slices the model was trained on.
    pub size: usize,
    /// Slicing axis of the training volumes (0 sagittal, 1 coronal, 2 axial).
    pub axis: Option<usize>,
    /// How source volumes were scaled to [-1, 1].
    pub normalization_a: Option<Normalization>,
    /// Target units of [-1, 1]: the mean of the training subjects' maps.
    pub target_map: Option<IntensityMap>,
    /// Whether training volumes were masked (outside set to -1).
    pub masked: bool,
}

impl ModelInfo {
    pub fn from_dataset(ds: &SliceDataset) -> Self {
        let (w, h) = ds.dims();
        let size = w.max(h);
        let Some(m) = &ds.manifest else {
            return Self {
                size,
                axis: None,
                normalization_a: None,
                target_map: None,
                masked: false,
            };
        };
        let maps: Vec<&IntensityMap> = m
            .subjects
            .iter()
            .filter(|s| s.split.as_deref().is_none_or(|sp| sp == ds.split))
            .map(|s| &s.map_b)
            .collect();
        let n = maps.len().max(1) as f64;
        let target_map = (!maps.is_empty()).then(|| IntensityMap {
            low: maps.iter().map(|m| m.low).sum::<f64>() / n,
            high: maps.iter().map(|m| m.high).sum::<f64>() / n,
        });
        Self {
            size: m.size,
            axis: Some(m.axis),
            normalization_a: Some(m.normalization_a.clone()),
            target_map,
            masked: m.has_mask,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointState {
    pub format_version: u32,
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
        if s.format_version != 1 {
            bail!(
                "{}: checkpoint format {} is not supported",
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
