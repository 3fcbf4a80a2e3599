//! Validations that belong to a network rather than to the translation:
//! each runs at every epoch's end when the run has its network and a
//! validation split, and logs to its own CSV beside `validation.csv` (the
//! report plots it). A network with its own score is one row here.
use crate::config::TrainConfig;
use crate::nets::{Nets, P};
use anyhow::Result;
use burn::tensor::Device;
use medtrans_datasets::SliceDataset;

/// Scores a network on the validation split: the number of slices scored
/// and the score, or `None` when there is nothing to score.
pub type Validate = fn(&Nets, &TrainConfig, &SliceDataset, &Device) -> Result<Option<(usize, f64)>>;

/// A network's validation.
pub struct NetValidation {
    /// The network it scores.
    pub network: &'static str,
    /// For log lines: `epoch 3: predictor val mse ...`.
    pub label: &'static str,
    /// Its CSV in the run folder.
    pub file: &'static str,
    /// The score's name (the CSV column) under a config.
    pub score: fn(&TrainConfig) -> &'static str,
    /// Its score on the validation split, on a plain device.
    pub run: Validate,
}

pub const NET_VALIDATIONS: &[NetValidation] = &[NetValidation {
    network: P,
    label: "predictor",
    file: "predictor_validation.csv",
    score: crate::predict::score_name,
    run: crate::predict::validate,
}];
