//! Mattes mutual information (Mattes et al., IEEE TMI 2003): a joint
//! histogram of fixed and moving intensities at sampled fixed points, the
//! moving side smoothed by a cubic B-spline Parzen window so that the
//! metric has an exact gradient. It asks only that intensities be
//! *predictable* from each other, not equal, so T1 meets T2 and MR meets CT.
use crate::transform::Transform;
use medtrans_transforms::{apply, invert, Mat4, Sampler};
use rayon::prelude::*;

/// Fixed-image samples of one level.
pub struct Samples {
    /// World points (mm).
    pub points: Vec<[f64; 3]>,
    /// Fixed histogram bin of each point.
    pub bins: Vec<u16>,
}

/// Histogram layout of the moving image: its robust range over the bins
/// left between two padding bins at each end (room for the cubic window).
#[derive(Clone, Copy)]
pub struct MovingBins {
    pub lo: f32,
    pub hi: f32,
    pub bins: usize,
}

impl MovingBins {
    /// Continuous bin coordinate of value `v` and its derivative d/dv
    /// (0 where `v` is clamped to the range).
    #[inline]
    fn coord(&self, v: f32) -> (f64, f64) {
        let width = (self.hi - self.lo) as f64 / (self.bins - 4) as f64;
        if v <= self.lo {
            (2.0, 0.0)
        } else if v >= self.hi {
            (self.bins as f64 - 2.0, 0.0)
        } else {
            (2.0 + (v - self.lo) as f64 / width, 1.0 / width)
        }
    }
}

#[inline]
fn bspline3(t: f64) -> f64 {
    let a = t.abs();
    if a < 1.0 {
        (4.0 - 6.0 * a * a + 3.0 * a * a * a) / 6.0
    } else if a < 2.0 {
        let b = 2.0 - a;
        b * b * b / 6.0
    } else {
        0.0
    }
}

#[inline]
fn bspline3_derivative(t: f64) -> f64 {
    let a = t.abs();
    if a < 1.0 {
        -2.0 * t + 1.5 * t * a
    } else if a < 2.0 {
        let b = 2.0 - a;
        -0.5 * b * b * t.signum()
    } else {
        0.0
    }
}

/// The moving image as the metric samples it.
pub struct Moving<'a> {
    pub sampler: Sampler<'a>,
    /// World to moving voxel.
    pub world_to_voxel: Mat4,
    pub bins: MovingBins,
}

impl<'a> Moving<'a> {
    pub fn new(data: &'a [f32], shape: [usize; 3], affine: &Mat4, bins: MovingBins) -> Self {
        Moving {
            sampler: Sampler::from_parts(data, shape),
            world_to_voxel: invert(affine).expect("affine checked before registration"),
            bins,
        }
    }
}

/// Mutual information (nats) and its gradient with respect to the
/// transform's parameters; `None` when fewer than `min_valid` samples map
/// inside the moving image.
pub fn mattes(
    fixed_bins: usize,
    samples: &Samples,
    moving: &Moving,
    t: &Transform,
    min_valid: usize,
) -> Option<(f64, Vec<f64>, usize)> {
    let nb = moving.bins.bins;
    let np = t.params.len();
    let m = t.matrix();
    let w2v = &moving.world_to_voxel;
    // Pass 1, per sample: moving bin coordinate and d(coord)/d(params).
    let per: Vec<Option<(u16, f64, [f64; 12])>> = samples
        .points
        .par_iter()
        .zip(&samples.bins)
        .map(|(p, &fb)| {
            let q = apply(&m, *p);
            let u = apply(w2v, q);
            let (v, gv) = moving.sampler.trilinear_with_gradient(u)?;
            let (eta, deta_dv) = moving.bins.coord(v);
            let mut d = [0.0; 12];
            if deta_dv != 0.0 {
                // World gradient of the moving image: voxel gradient through
                // the world-to-voxel map.
                let gw: [f64; 3] =
                    [0, 1, 2].map(|j| (0..3).map(|i| gv[i] as f64 * w2v[i][j]).sum::<f64>());
                let mut jac = [[0.0; 12]; 3];
                t.jacobian(*p, &mut jac);
                for k in 0..np {
                    d[k] = deta_dv * (0..3).map(|i| gw[i] * jac[i][k]).sum::<f64>();
                }
            }
            Some((fb, eta, d))
        })
        .collect();
    let valid = per.iter().flatten().count();
    if valid < min_valid.max(1) {
        return None;
    }
    let alpha = 1.0 / valid as f64;
    let mut joint = vec![0f64; fixed_bins * nb];
    for (fb, eta, _) in per.iter().flatten() {
        let k0 = eta.floor() as isize - 1;
        for k in k0..k0 + 4 {
            if (0..nb as isize).contains(&k) {
                joint[*fb as usize * nb + k as usize] += alpha * bspline3(k as f64 - eta);
            }
        }
    }
    let mut pf = vec![0f64; fixed_bins];
    let mut pm = vec![0f64; nb];
    for i in 0..fixed_bins {
        for k in 0..nb {
            pf[i] += joint[i * nb + k];
            pm[k] += joint[i * nb + k];
        }
    }
    let mut mi = 0.0;
    // log(p(i,k) / pM(k)), what the gradient weighs each bin's change by.
    let mut weight = vec![0f64; fixed_bins * nb];
    for i in 0..fixed_bins {
        for k in 0..nb {
            let p = joint[i * nb + k];
            if p > 1e-16 {
                mi += p * (p / (pf[i] * pm[k])).ln();
                weight[i * nb + k] = (p / pm[k]).ln();
            }
        }
    }
    // Pass 2: dMI/dmu = sum over bins of dp/dmu * log(p / pM), with
    // dp/dmu = -alpha * sum over samples of B3'(k - eta) d(eta)/d(mu).
    let grad = per
        .par_iter()
        .flatten()
        .fold(
            || vec![0f64; np],
            |mut g, (fb, eta, d)| {
                let k0 = eta.floor() as isize - 1;
                let mut s = 0.0;
                for k in k0..k0 + 4 {
                    if (0..nb as isize).contains(&k) {
                        s -= bspline3_derivative(k as f64 - eta)
                            * weight[*fb as usize * nb + k as usize];
                    }
                }
                for (gk, dk) in g.iter_mut().zip(d) {
                    *gk += alpha * s * dk;
                }
                g
            },
        )
        .reduce(
            || vec![0f64; np],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        );
    Some((mi, grad, valid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bspline_is_a_partition_of_unity_with_the_right_derivative() {
        for eta in [2.0f64, 2.3, 5.5, 7.99] {
            let k0 = eta.floor() as i32 - 1;
            let s: f64 = (k0..k0 + 4).map(|k| bspline3(k as f64 - eta)).sum();
            assert!((s - 1.0).abs() < 1e-12, "{eta}: {s}");
        }
        for t in [-1.7, -0.6, 0.2, 1.3] {
            let h = 1e-6;
            let fd = (bspline3(t + h) - bspline3(t - h)) / (2.0 * h);
            assert!((fd - bspline3_derivative(t)).abs() < 1e-6, "{t}");
        }
    }
}
