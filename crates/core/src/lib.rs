//! The image types every medtrans crate shares: [`Slice`], [`Volume`] and its
//! [`Geometry`]. No codec and no Burn, so that metrics and transforms build
//! without pulling in the DICOM, PNG or NIfTI readers (`medtrans-io` fills
//! these types from files).

mod geometry;
mod slice;

pub use geometry::{Geometry, Qform};
pub use slice::{plane_axes, Slice};

use std::path::PathBuf;

/// Refuse any image with more voxels than this (4 GiB as `f32`) before allocating.
pub const MAX_VOXELS: usize = 1 << 30;

/// The on-disk format a volume came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Format {
    Nifti,
    Dicom,
    Png,
    Tiff,
    Npy,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Format::Nifti => "NIfTI-1",
            Format::Dicom => "DICOM",
            Format::Png => "PNG",
            Format::Tiff => "TIFF",
            Format::Npy => "NPY",
        };
        f.write_str(s)
    }
}

/// A 3-D image in physical units.
#[derive(Clone)]
pub struct Volume {
    /// Intensities, x fastest, then y, then z (`data[x + nx*(y + ny*z)]`).
    pub data: Vec<f32>,
    pub geometry: Geometry,
    pub format: Format,
    /// The stored data type before scaling, e.g. `int16`.
    pub dtype: String,
    /// Where the volume was read from.
    pub source: PathBuf,
}

impl std::fmt::Debug for Volume {
    /// Summarised: a volume's voxels are far too many to print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Volume")
            .field("source", &self.source)
            .field("format", &self.format)
            .field("dtype", &self.dtype)
            .field("geometry", &self.geometry)
            .finish_non_exhaustive()
    }
}

impl Volume {
    pub fn shape(&self) -> [usize; 3] {
        self.geometry.shape
    }

    /// Index into `data` of voxel (x, y, z).
    #[inline]
    pub fn index(&self, x: usize, y: usize, z: usize) -> usize {
        let [nx, ny, _] = self.geometry.shape;
        x + nx * (y + ny * z)
    }
}
