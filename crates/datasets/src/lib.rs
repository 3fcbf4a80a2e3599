//! From volumes to training data: `prepare` writes a dataset folder of
//! normalised slices with a manifest; [`SliceDataset`] loads one split into
//! memory and serves pairs with the paper's misalignment noise applied on the
//! fly, so one prepared dataset serves every noise level and pairing mode.
//!
//! Existing RegGAN data (folders `A/` and `B/` of `.npy` slices in [-1, 1],
//! paired by sorted name) loads as is.

mod calibration;
mod dataset;
mod manifest;
mod pipeline;
mod prepare;
pub mod seeds;
mod slice_labels;
mod subjects;

pub use calibration::ModelInfo;
pub use dataset::{Pair, PairOptions, Pairing, SliceDataset};
pub use manifest::{
    AlignmentRecord, Manifest, RegistrationRecord, SkippedSubject, SliceLabelSummary, SliceRef,
    SplitMethod, SplitSpec, SubjectRecord, MANIFEST_FILE, SPLITS,
};
pub use pipeline::{mask_inside, mask_to_background, normalise, SlicePipeline};
pub use prepare::{prepare, GridChoice, PrepareSpec, SubjectSpec};
pub use slice_labels::{SliceLabelRow, SliceLabelTable, SLICE_LABEL_FILES};
pub use subjects::read_subject_csv;

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, DatasetError>;

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error(transparent)]
    Io(#[from] medtrans_io::Error),
    #[error("{}: {msg}", path.display())]
    Volume { path: PathBuf, msg: String },
    #[error("{0}")]
    Mismatch(String),
    /// A subject's registration failed: with several subjects, `prepare`
    /// skips that subject and goes on.
    #[error("{0}")]
    Registration(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}
