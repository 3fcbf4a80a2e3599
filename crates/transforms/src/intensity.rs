use serde::{Deserialize, Serialize};

/// Why a volume cannot be normalised.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransformError {
    #[error("{count} voxels are NaN or infinite (first at index {first}); medtrans refuses them rather than guess a value: fix or mask them first")]
    NonFinite { count: usize, first: usize },
    #[error("intensities are constant ({value}) over the voxels used for normalisation: nothing to learn from")]
    Constant { value: f32 },
    #[error("no voxels to normalise (empty volume or empty mask)")]
    Empty,
    #[error("invalid normalisation: {0}")]
    Invalid(String),
    /// A grid or affine that cannot be used to place voxels in the world.
    #[error("{0}")]
    Geometry(String),
}

/// NaN/Inf voxels would turn into NaN losses; refuse them with a count.
pub fn check_finite(data: &[f32]) -> Result<(), TransformError> {
    let mut first = None;
    let mut count = 0;
    for (i, v) in data.iter().enumerate() {
        if !v.is_finite() {
            count += 1;
            first.get_or_insert(i);
        }
    }
    match first {
        None => Ok(()),
        Some(first) => Err(TransformError::NonFinite { count, first }),
    }
}

/// `q`-th percentile (0..100) with numpy's default linear interpolation.
/// Sorts a copy of the values; `None` if there are none.
pub fn percentile(values: &[f32], q: &[f64]) -> Option<Vec<f64>> {
    if values.is_empty() {
        return None;
    }
    let mut v: Vec<f32> = values.to_vec();
    v.sort_unstable_by(f32::total_cmp);
    let n = v.len();
    Some(
        q.iter()
            .map(|&q| {
                let pos = q.clamp(0.0, 100.0) / 100.0 * (n - 1) as f64;
                let i = pos.floor() as usize;
                let frac = pos - i as f64;
                let a = v[i] as f64;
                let b = v[(i + 1).min(n - 1)] as f64;
                a + (b - a) * frac
            })
            .collect(),
    )
}

/// How a volume's intensities are mapped to [-1, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Normalization {
    /// Clip to the volume's `low`..`high` percentiles, then scale: for MR,
    /// whose units are arbitrary and differ per scan. Percentiles are taken
    /// over the mask when one is given, else over all voxels.
    Percentile { low: f64, high: f64 },
    /// Clip to a fixed window in physical units, then scale: for CT in HU.
    Window { low: f64, high: f64 },
}

impl Default for Normalization {
    fn default() -> Self {
        Normalization::Percentile {
            low: 0.5,
            high: 99.5,
        }
    }
}

impl Normalization {
    /// The map for one volume; `mask` restricts the voxels that set the percentiles.
    pub fn fit(&self, data: &[f32], mask: Option<&[bool]>) -> Result<IntensityMap, TransformError> {
        check_finite(data)?;
        let (lo, hi) = match *self {
            Normalization::Window { low, high } => {
                if !low.is_finite() || !high.is_finite() || high <= low {
                    return Err(TransformError::Invalid(format!(
                        "window {low}..{high} is empty"
                    )));
                }
                (low, high)
            }
            Normalization::Percentile { low, high } => {
                if !(0.0..=100.0).contains(&low) || !(0.0..=100.0).contains(&high) || high <= low {
                    return Err(TransformError::Invalid(format!(
                        "percentiles {low}..{high} must satisfy 0 <= low < high <= 100"
                    )));
                }
                let picked: Vec<f32>;
                let vals: &[f32] = match mask {
                    Some(m) => {
                        picked = data
                            .iter()
                            .zip(m)
                            .filter(|(_, &k)| k)
                            .map(|(v, _)| *v)
                            .collect();
                        &picked
                    }
                    None => data,
                };
                let p = percentile(vals, &[low, high]).ok_or(TransformError::Empty)?;
                if p[1] <= p[0] {
                    return Err(TransformError::Constant { value: p[0] as f32 });
                }
                (p[0], p[1])
            }
        };
        Ok(IntensityMap { low: lo, high: hi })
    }
}

/// A fitted linear map from physical units `low..high` to [-1, 1], kept in
/// the dataset manifest so outputs can be mapped back to the target's units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IntensityMap {
    pub low: f64,
    pub high: f64,
}

impl IntensityMap {
    /// Units to [-1, 1], clipping outside `low..high`.
    #[inline]
    pub fn forward(&self, v: f32) -> f32 {
        let t = ((v as f64 - self.low) / (self.high - self.low)).clamp(0.0, 1.0);
        (2.0 * t - 1.0) as f32
    }

    /// [-1, 1] back to units (the inverse of [`forward`](Self::forward) inside the window).
    #[inline]
    pub fn inverse(&self, v: f32) -> f32 {
        ((v as f64 + 1.0) / 2.0 * (self.high - self.low) + self.low) as f32
    }

    pub fn apply(&self, data: &mut [f32]) {
        data.iter_mut().for_each(|v| *v = self.forward(*v));
    }

    pub fn invert(&self, data: &mut [f32]) {
        data.iter_mut().for_each(|v| *v = self.inverse(*v));
    }
}
