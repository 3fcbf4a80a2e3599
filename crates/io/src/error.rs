use std::path::{Path, PathBuf};

pub type Result<T> = std::result::Result<T, Error>;

/// A read or write failure, always naming the file it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct Error {
    pub path: PathBuf,
    pub kind: ErrorKind,
}

impl Error {
    pub fn new(path: impl AsRef<Path>, kind: ErrorKind) -> Self {
        Error {
            path: path.as_ref().to_path_buf(),
            kind,
        }
    }

    pub fn invalid(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::new(path, ErrorKind::Invalid(msg.into()))
    }
}

/// What went wrong. The messages are written for the person whose file it is.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the file is empty (0 bytes)")]
    Empty,
    #[error("the folder holds no image files")]
    EmptyFolder,
    #[error("unrecognised format: {0}")]
    UnknownFormat(String),
    #[error("not a valid {format} file: {detail}")]
    BadHeader {
        format: &'static str,
        detail: String,
    },
    #[error("truncated or corrupt: {0}")]
    Truncated(String),
    #[error("too large: {0}")]
    TooLarge(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the folder holds {} DICOM series; pick one by SeriesInstanceUID (--series UID):\n{}", .0.len(), .0.iter().map(|s| format!("  {s}")).collect::<Vec<_>>().join("\n"))]
    MultipleSeries(Vec<crate::DicomSeriesInfo>),
}
