//! Experiments: grids of training runs that reproduce a paper's table.
//!
//! Each run has its own folder and is resumable, so a sweep that takes
//! longer than one sitting is simply started again: finished runs are
//! skipped, unfinished ones continue from their last checkpoint.
use anyhow::{Context, Result};
use std::path::Path;

pub mod augment;
pub mod figures;
pub mod grid;
pub mod many_to_one;
pub mod noise_sweep;
pub mod plot;
pub mod shape;
pub mod slabs;

pub use augment::{report_augment, run_augment, AugmentConfig};
pub use many_to_one::{report_many_to_one, run_many_to_one, ManyToOneConfig};
pub use noise_sweep::{
    check_claims, check_unpaired_claims, registration_check, report_noise_sweep, run_noise_sweep,
    RegistrationRow, SweepConfig, SweepRow,
};
pub use shape::{report_shape, run_shape, ShapeConfig};

/// An experiment config from TOML: unknown keys name the closest known one.
pub fn read_config<C: serde::de::DeserializeOwned>(path: &Path) -> Result<C> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the experiment config {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: {}",
            path.display(),
            medtrans_training::config::with_suggestion(e.message())
        )
    })
}
