//! Rigid and affine 3-D registration of two volumes by Mattes mutual
//! information, coarse to fine: the RegGAN paper's "rigid registration first
//! in 3-D, then RegGAN" for pairs that no one aligned (section 4.4), and
//! `medtrans register` for users who need one volume on another's grid.
//!
//! The search is regular-step gradient descent on scaled parameters (one
//! radian of rotation counts as the head's radius in mm), started from the
//! two images' centres of mass, over a pyramid (4, 2, 1 x the finest
//! spacing by default). An affine search runs after a rigid one, from its
//! result.
mod metric;
mod pyramid;
mod transform;

pub use transform::{Transform, TransformKind};

use medtrans_core::Volume;
use medtrans_transforms::{
    apply, check_affine, format_bounds, percentile, resample, world_bounds, Interp3, Resampled,
};
use metric::{mattes, Moving, MovingBins, Samples};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("{}: {msg}", path.display())]
    Volume { path: PathBuf, msg: String },
    #[error("{0}")]
    NoOverlap(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{}: not a usable transform file: {msg}", path.display())]
    TransformFile { path: PathBuf, msg: String },
    #[error(transparent)]
    Io(#[from] medtrans_io::Error),
}

pub type Result<T> = std::result::Result<T, RegistrationError>;

/// How to register; [`Options::default`] suits head MR and CT at 1-2 mm.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub kind: TransformKind,
    /// Pyramid levels, coarse to fine, as multiples of the finest spacing.
    pub shrink: Vec<usize>,
    /// Histogram bins per image.
    pub bins: usize,
    /// Fixed-image points sampled per level.
    pub samples: usize,
    /// Iterations per level at most.
    pub max_iterations: usize,
    /// Smallest step (mm) at the finest level: the search stops there.
    pub min_step: f64,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kind: TransformKind::Rigid,
            shrink: vec![4, 2, 1],
            bins: 32,
            samples: 60_000,
            max_iterations: 300,
            min_step: 0.01,
            seed: 1,
        }
    }
}

/// What happened at one pyramid level of one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelReport {
    pub kind: TransformKind,
    pub shrink: usize,
    pub iterations: usize,
    /// The step shrank below its floor before the iteration limit.
    pub converged: bool,
    /// Mutual information (nats) at the end of the level.
    pub mi: f64,
}

/// A finished registration.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Fixed world point -> moving world point.
    pub transform: Transform,
    /// Mutual information at the start (centres of mass aligned) and at
    /// the end, on the finest level's samples.
    pub initial_mi: f64,
    pub final_mi: f64,
    pub levels: Vec<LevelReport>,
}

impl Registration {
    /// Whether the finest level converged and the metric improved: if not,
    /// the result deserves a look (callers warn; it is never silent).
    pub fn converged(&self) -> bool {
        self.levels.last().is_some_and(|l| l.converged) && self.final_mi >= self.initial_mi
    }

    /// The moving volume on the fixed volume's grid.
    pub fn apply(&self, fixed: &Volume, moving: &Volume, interp: Interp3) -> Result<Resampled> {
        let fill = background(moving);
        resample(
            moving,
            &fixed.geometry,
            &self.transform.matrix(),
            interp,
            fill,
        )
        .map_err(|e| volume_err(moving, e.to_string()))
    }
}

/// Progress, for a bar or a log.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    /// A level starts: stage kind, level number (0-based) of `levels`.
    Level {
        kind: TransformKind,
        level: usize,
        levels: usize,
        shrink: usize,
    },
    Iteration {
        iteration: usize,
        mi: f64,
        step: f64,
    },
}

fn volume_err(v: &Volume, msg: String) -> RegistrationError {
    RegistrationError::Volume {
        path: v.source.clone(),
        msg,
    }
}

/// The value outside a volume's field of view: its minimum (air in MR and
/// in CT).
pub fn background(v: &Volume) -> f32 {
    v.data.iter().copied().fold(f32::INFINITY, f32::min)
}

/// Intensity-weighted centre (mm), weights above the 2nd percentile, so
/// that air (0 in MR, -1000 in CT) weighs nothing.
fn centre_of_mass(v: &Volume) -> [f64; 3] {
    let floor = percentile(&v.data, &[2.0]).map_or(0.0, |p| p[0] as f32);
    let [nx, ny, nz] = v.geometry.shape;
    let (mut acc, mut total) = ([0f64; 3], 0f64);
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let w = (v.data[v.index(x, y, z)] - floor).max(0.0) as f64;
                if w > 0.0 {
                    let p = apply(&v.geometry.affine, [x as f64, y as f64, z as f64]);
                    for k in 0..3 {
                        acc[k] += w * p[k];
                    }
                    total += w;
                }
            }
        }
    }
    if total == 0.0 {
        // Flat image: the grid's centre.
        let c = v.geometry.shape.map(|n| (n as f64 - 1.0) / 2.0);
        return apply(&v.geometry.affine, c);
    }
    acc.map(|a| a / total)
}

fn check(v: &Volume) -> Result<()> {
    check_affine(&v.geometry).map_err(|e| volume_err(v, e.to_string()))?;
    if v.data.iter().any(|x| !x.is_finite()) {
        return Err(volume_err(
            v,
            "holds NaN or infinite voxels; registration needs finite intensities".into(),
        ));
    }
    let (lo, hi) = (
        background(v),
        v.data.iter().copied().fold(f32::NEG_INFINITY, f32::max),
    );
    if lo == hi {
        return Err(volume_err(
            v,
            format!("is constant ({lo}): nothing to register"),
        ));
    }
    if v.geometry.shape.iter().filter(|&&n| n > 1).count() < 3 {
        return Err(volume_err(
            v,
            format!("is {:?}: registration needs a 3-D volume", v.geometry.shape),
        ));
    }
    Ok(())
}

/// Refuse two volumes whose fields of view do not meet in the world.
pub fn check_overlap(fixed: &Volume, moving: &Volume) -> Result<()> {
    let (a, b) = (
        world_bounds(&fixed.geometry),
        world_bounds(&moving.geometry),
    );
    let apart = (0..3).any(|k| a.1[k] < b.0[k] || b.1[k] < a.0[k]);
    if apart {
        return Err(RegistrationError::NoOverlap(format!(
            "{} ({}) and {} ({}) do not overlap in the world: their affines put them in different places. \
             Check the headers (or that both are of one patient and one session of coordinates)",
            fixed.source.display(),
            format_bounds(a),
            moving.source.display(),
            format_bounds(b)
        )));
    }
    Ok(())
}

/// Register `moving` onto `fixed`.
pub fn register(
    fixed: &Volume,
    moving: &Volume,
    opts: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<Registration> {
    check(fixed)?;
    check(moving)?;
    check_overlap(fixed, moving)?;
    if opts.shrink.is_empty() || opts.shrink.contains(&0) || opts.bins < 8 || opts.samples < 100 {
        return Err(RegistrationError::Invalid(format!(
            "registration options: shrink factors {:?} must be >= 1 and not empty, bins {} >= 8, samples {} >= 100",
            opts.shrink, opts.bins, opts.samples
        )));
    }
    let cf = centre_of_mass(fixed);
    let cm = centre_of_mass(moving);
    let mut t = Transform::identity(TransformKind::Rigid, cf);
    let n = t.params.len();
    t.params[n - 3..].copy_from_slice(&[cm[0] - cf[0], cm[1] - cf[1], cm[2] - cf[2]]);
    // One radian moves the head's surface by about its radius.
    let (lo, hi) = world_bounds(&fixed.geometry);
    let radius = (0..3).map(|k| (hi[k] - lo[k]) / 2.0).fold(0.0, f64::max) / 2.0;

    let robust = |v: &Volume| -> (f32, f32) {
        let p = percentile(&v.data, &[0.5, 99.5]).unwrap_or(vec![0.0, 1.0]);
        if p[1] > p[0] {
            (p[0] as f32, p[1] as f32)
        } else {
            (
                background(v),
                v.data.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            )
        }
    };
    let (flo, fhi) = robust(fixed);
    let mbins = {
        let (lo, hi) = robust(moving);
        MovingBins {
            lo,
            hi,
            bins: opts.bins,
        }
    };
    let stages: Vec<TransformKind> = match opts.kind {
        TransformKind::Rigid => vec![TransformKind::Rigid],
        TransformKind::Affine => vec![TransformKind::Rigid, TransformKind::Affine],
    };
    let start = t.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut reports = Vec::new();
    let mut initial_mi = f64::NAN;
    let mut final_mi = f64::NAN;
    for (si, &kind) in stages.iter().enumerate() {
        if kind == TransformKind::Affine && t.kind == TransformKind::Rigid {
            t = t.to_affine();
        }
        let scales: Vec<f64> = match kind {
            TransformKind::Rigid => vec![radius, radius, radius, 1.0, 1.0, 1.0],
            TransformKind::Affine => {
                let mut s = vec![radius; 9];
                s.extend([1.0; 3]);
                s
            }
        };
        for (li, &shrink) in opts.shrink.iter().enumerate() {
            progress(Progress::Level {
                kind,
                level: li,
                levels: opts.shrink.len(),
                shrink,
            });
            let fl = pyramid::level(fixed, pyramid::strides(&fixed.geometry, shrink));
            let ml = pyramid::level(moving, pyramid::strides(&moving.geometry, shrink));
            let samples = sample_fixed(&fl, opts.samples, opts.bins, (flo, fhi), &mut rng);
            let mov = Moving::new(&ml.data, ml.geometry.shape, &ml.geometry.affine, mbins);
            let finest = li + 1 == opts.shrink.len();
            let spacing = fl
                .geometry
                .spacing
                .iter()
                .fold(0.0, |a: f64, b| a.max(b.abs()));
            // Steps start near one coarse voxel and stop well below one.
            let first = spacing;
            let floor = if finest {
                opts.min_step
            } else {
                (opts.min_step * shrink as f64).max(spacing / 20.0)
            };
            let min_valid = samples.points.len() / 10;
            let eval = |t: &Transform| mattes(opts.bins, &samples, &mov, t, min_valid);
            let Some((mut mi, mut grad, _)) = eval(&t) else {
                return Err(no_overlap(fixed, moving));
            };
            if finest && si == 0 {
                // The start (centres of mass aligned), on the finest samples.
                initial_mi = eval(&start).map_or(f64::NAN, |r| r.0);
            }
            let mut step = first;
            let mut previous: Option<Vec<f64>> = None;
            let mut converged = false;
            let mut iterations = 0;
            let mut best = (mi, t.clone());
            while iterations < opts.max_iterations {
                // Ascent direction in scaled parameters (mm).
                let g: Vec<f64> = grad.iter().zip(&scales).map(|(g, s)| g / s).collect();
                let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
                if norm < 1e-12 {
                    converged = true;
                    break;
                }
                if let Some(p) = &previous {
                    if p.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>() < 0.0 {
                        step *= 0.5;
                    }
                }
                if step < floor {
                    converged = true;
                    break;
                }
                let mut next = t.clone();
                for (k, p) in next.params.iter_mut().enumerate() {
                    *p += step * g[k] / norm / scales[k];
                }
                iterations += 1;
                match eval(&next) {
                    Some((m, gr, _)) => {
                        t = next;
                        mi = m;
                        grad = gr;
                        if mi > best.0 {
                            best = (mi, t.clone());
                        }
                    }
                    // Stepped out of the moving image: a smaller step.
                    None => {
                        step *= 0.5;
                        continue;
                    }
                }
                previous = Some(g);
                progress(Progress::Iteration {
                    iteration: iterations,
                    mi,
                    step,
                });
            }
            // Gradient steps can overshoot at the end; keep the best seen.
            if best.0 > mi {
                mi = best.0;
                t = best.1;
            }
            reports.push(LevelReport {
                kind,
                shrink,
                iterations,
                converged,
                mi,
            });
            if finest {
                final_mi = mi;
            }
        }
    }
    Ok(Registration {
        transform: t,
        initial_mi,
        final_mi,
        levels: reports,
    })
}

fn no_overlap(fixed: &Volume, moving: &Volume) -> RegistrationError {
    RegistrationError::NoOverlap(format!(
        "fewer than a tenth of the points sampled in {} ({}) land inside {} ({}): \
         the two barely overlap in the world, so there is nothing to register",
        fixed.source.display(),
        format_bounds(world_bounds(&fixed.geometry)),
        moving.source.display(),
        format_bounds(world_bounds(&moving.geometry))
    ))
}

/// Random fixed voxels of a level (without repeats where there are enough),
/// jittered within their voxel so that the samples do not sit on the
/// moving grid's lattice, with their fixed-histogram bins.
fn sample_fixed(
    level: &pyramid::Level,
    count: usize,
    bins: usize,
    (lo, hi): (f32, f32),
    rng: &mut ChaCha8Rng,
) -> Samples {
    let [nx, ny, nz] = level.geometry.shape;
    let total = nx * ny * nz;
    let sampler = medtrans_transforms::Sampler::from_parts(&level.data, level.geometry.shape);
    let mut points = Vec::with_capacity(count.min(total));
    let mut fb = Vec::with_capacity(count.min(total));
    let take_all = total <= count;
    let n = if take_all { total } else { count };
    for k in 0..n {
        let i = if take_all {
            k
        } else {
            rng.random_range(0..total)
        };
        let (x, y, z) = (i % nx, (i / nx) % ny, i / (nx * ny));
        let jitter = |c: usize, n: usize, r: &mut ChaCha8Rng| {
            let v = c as f64 + r.random_range(-0.5..0.5);
            v.clamp(0.0, n as f64 - 1.0)
        };
        let p = [jitter(x, nx, rng), jitter(y, ny, rng), jitter(z, nz, rng)];
        let v = sampler.trilinear(p).unwrap_or(lo);
        let b = (((v - lo) / (hi - lo)) * bins as f32)
            .floor()
            .clamp(0.0, bins as f32 - 1.0);
        points.push(apply(&level.geometry.affine, p));
        fb.push(b as u16);
    }
    Samples { points, bins: fb }
}
