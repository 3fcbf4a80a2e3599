//! The one slice pipeline: how a volume becomes model-sized slices in
//! [-1, 1] and how a model's output goes back onto the volume. `prepare`
//! runs it on training volumes and `translate` on new ones, so the two
//! cannot drift apart.
//!
//! normalise -> background outside the mask -> plane -> square fit, and
//! back: inverse fit -> clamp -> target units -> background outside the mask.
use medtrans_io::{Slice, Volume};
use medtrans_transforms::{IntensityMap, Interp, Normalization, SquareFit};

/// Where a mask volume says "inside" (voxels above 0.5).
pub fn mask_inside(mask: &Volume) -> Vec<bool> {
    mask.data.iter().map(|&v| v > 0.5).collect()
}

/// Background (-1, the value the metrics treat as outside) wherever
/// `inside` is false. The one home of that rule.
pub fn mask_to_background(values: &mut [f32], inside: impl Fn(usize) -> bool) {
    for (i, v) in values.iter_mut().enumerate() {
        if !inside(i) {
            *v = -1.0;
        }
    }
}

/// Fit `norm` on the voxels inside the mask, map the volume to [-1, 1] with
/// it, and set the outside to background. Returns the fitted map.
pub fn normalise(
    vol: &mut Volume,
    norm: &Normalization,
    inside: Option<&[bool]>,
) -> std::result::Result<IntensityMap, String> {
    let map = norm.fit(&vol.data, inside).map_err(|e| e.to_string())?;
    map.apply(&mut vol.data);
    if let Some(m) = inside {
        mask_to_background(&mut vol.data, |i| m[i]);
    }
    Ok(map)
}

/// Planes along `axis`, fitted into `fit`'s square.
#[derive(Debug, Clone, Copy)]
pub struct SlicePipeline {
    pub axis: usize,
    pub fit: SquareFit,
}

impl SlicePipeline {
    /// For `vol`'s planes along `axis` into `size` x `size` slices.
    pub fn new(vol: &Volume, axis: usize, size: usize) -> Self {
        let first = Slice::from_plane(vol, axis, 0);
        Self {
            axis,
            fit: SquareFit::new(first.width, first.height, size),
        }
    }

    /// A plane, fitted (bilinear, background fill), with the background
    /// re-applied where the fitted mask (from [`Self::fit_mask`]) is
    /// outside, so that image and mask agree pixel for pixel.
    pub fn forward(&self, plane: &Slice, fitted_mask: Option<&Slice>) -> Slice {
        let mut s = self.fit.forward(plane, -1.0, Interp::Bilinear);
        if let Some(m) = fitted_mask {
            mask_to_background(&mut s.data, |i| m.data[i] > 0.5);
        }
        s
    }

    /// A 0/1 mask plane, fitted by nearest neighbour.
    pub fn fit_mask(&self, mask: &Slice) -> Slice {
        self.fit.forward(mask, 0.0, Interp::Nearest)
    }

    /// A model output back on the plane's grid, in the target's units
    /// (`target` maps [-1, 1] to them), background outside the mask plane.
    pub fn inverse(&self, out: &Slice, target: &IntensityMap, mask: Option<&Slice>) -> Slice {
        let background = target.inverse(-1.0);
        let mut back = self.fit.inverse(out, Interp::Bilinear);
        for (i, v) in back.data.iter_mut().enumerate() {
            let keep = mask.is_none_or(|m| m.data[i] > 0.5);
            *v = if keep {
                target.inverse(v.clamp(-1.0, 1.0))
            } else {
                background
            };
        }
        back
    }
}
