//! Training and inference for medtrans.
//!
//! One [`Trainer`] runs every mode; a mode is a [`TrainConfig`] whose loss
//! weights switch terms (and the networks they need) on. Presets for the
//! papers' modes ship in `configs/`.
pub mod adam;
pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod data_needs;
pub mod device;
pub mod evaluation;
pub mod families;
pub mod family;
pub mod inference;
pub mod launches;
pub mod nets;
mod pool;
pub mod predict;
mod samples;
mod tensors;
pub mod term_options;
pub mod terms;
mod trainer;
pub mod validation;

pub use checkpoint::{resolve_checkpoint, CheckpointState, ModelInfo};
pub use config::{presets, TrainConfig, PRESETS};
pub use device::{device_from_name, host_reads, read_f32, DEVICE_NAMES};
pub use inference::{score_slices, Model, Registered, RunNetworks};
pub use launches::{gpu_build, LaunchCount, Launches};
/// The metric set, re-exported for the trainer's users (see medtrans-metrics).
pub use medtrans_metrics::{Metric, SliceScore, Summary};
pub use pool::ImagePool;
pub use predict::{
    fit_predictor, fit_predictor_stages, predict_with, FitOptions, PredictorModel, Stage,
};
pub use tensors::{generate, generate_with, one_hot, stack, unstack};
pub use trainer::{LossRow, PendingLosses, PhaseTimes, RunSummary, Trainer};
