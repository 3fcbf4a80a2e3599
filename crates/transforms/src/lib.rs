//! Transforms between a volume as read and a training slice in [-1, 1].
//!
//! Everything here is deterministic given its inputs (randomness comes in as
//! an explicit RNG), so the same prepared dataset and seed always produce the
//! same training pairs.

mod augment;
mod intensity;
mod lesions;
mod misalign;
mod resample;
mod world;

pub use augment::Augment;
pub use intensity::{check_finite, percentile, IntensityMap, Normalization, TransformError};
pub use lesions::{paint_lesions, LesionSpec, Lesioned};
pub use misalign::{
    affine_warp, affine_warp_labels, ideal_field, MisalignParams, MisalignRange, MAX_NOISE_LEVEL,
};
pub use resample::{fit_square, pad_to_square, resize, Interp, SquareFit};
pub use world::{
    apply, check_affine, det3, format_bounds, invert, mat_mul, regrid, resample, world_bounds,
    Interp3, Mat4, Resampled, Sampler, IDENTITY,
};

use medtrans_core::Slice;

/// Fraction of pixels above `threshold`: slices below a minimum foreground
/// fraction are dropped as near-empty.
pub fn foreground_fraction(s: &Slice, threshold: f32) -> f64 {
    if s.data.is_empty() {
        return 0.0;
    }
    s.data.iter().filter(|&&v| v > threshold).count() as f64 / s.data.len() as f64
}
