//! Synthetic lesions painted into healthy slices: the many-to-one
//! experiment's pathological domain. Because the clean slice is kept, every
//! lesioned slice has ground truth for its pseudo-healthy translation.
//!
//! A lesion is a soft-edged, rotated ellipse whose centre lies in tissue,
//! blended towards its own intensity (dark like a T1 black hole or necrotic
//! tumour core, or mid-grey like oedema) with a little texture, and clipped
//! to the brain. Count, size, position and intensity vary per slice.
use medtrans_core::Slice;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Ranges the painter draws from. Sizes are fractions of the slice width so
/// that one spec serves every training size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LesionSpec {
    /// Lesions per slice, inclusive.
    pub count: (u32, u32),
    /// Semi-axis length as a fraction of the slice width.
    pub radius: (f64, f64),
    /// Lesion intensity in the normalised [-1, 1] range.
    pub intensity: (f64, f64),
    /// Width of the soft rim as a fraction of the radius.
    pub rim: f64,
    /// Amplitude of the per-pixel texture inside a lesion.
    pub texture: f64,
}

impl Default for LesionSpec {
    fn default() -> Self {
        Self {
            count: (1, 4),
            radius: (0.03, 0.11),
            intensity: (-0.9, 0.1),
            rim: 0.35,
            texture: 0.05,
        }
    }
}

impl LesionSpec {
    pub fn check(&self) -> Result<(), String> {
        let ordered = |(a, b): (f64, f64)| a.is_finite() && b.is_finite() && a <= b;
        if self.count.0 == 0 || self.count.0 > self.count.1 {
            return Err("lesions.count must be [min, max] with 1 <= min <= max".into());
        }
        if !ordered(self.radius) || self.radius.0 <= 0.0 || self.radius.1 > 0.5 {
            return Err("lesions.radius must be [min, max] within (0, 0.5]".into());
        }
        if !ordered(self.intensity) || self.intensity.0 < -1.0 || self.intensity.1 > 1.0 {
            return Err("lesions.intensity must be [min, max] within [-1, 1]".into());
        }
        if !(self.rim > 0.0 && self.rim <= 1.0 && (0.0..=0.5).contains(&self.texture)) {
            return Err("lesions.rim must lie in (0, 1] and lesions.texture in [0, 0.5]".into());
        }
        Ok(())
    }
}

/// A lesioned slice and where its lesions are.
#[derive(Debug, Clone)]
pub struct Lesioned {
    pub image: Slice,
    /// Pixels at least half lesion.
    pub lesion: Vec<bool>,
    /// Lesions painted (a centre is only drawn where `tissue` holds).
    pub count: usize,
}

/// Paint lesions into `clean`. Centres are drawn among `tissue` pixels, and
/// only pixels inside `brain` change. A slice without tissue comes back
/// unchanged with `count` 0.
pub fn paint_lesions<R: Rng + ?Sized>(
    clean: &Slice,
    tissue: &[bool],
    brain: &[bool],
    spec: &LesionSpec,
    rng: &mut R,
) -> Lesioned {
    let (w, h) = (clean.width, clean.height);
    assert_eq!(tissue.len(), w * h, "tissue mask and slice differ in size");
    assert_eq!(brain.len(), w * h, "brain mask and slice differ in size");
    let centres: Vec<usize> = (0..w * h).filter(|&i| tissue[i]).collect();
    let mut image = clean.clone();
    let mut alpha_max = vec![0f32; w * h];
    if centres.is_empty() {
        return Lesioned {
            image,
            lesion: vec![false; w * h],
            count: 0,
        };
    }
    let n = rng.random_range(spec.count.0..=spec.count.1) as usize;
    for _ in 0..n {
        let c = centres[rng.random_range(0..centres.len())];
        let (cx, cy) = ((c % w) as f64, (c / w) as f64);
        let ra = rng.random_range(spec.radius.0..=spec.radius.1) * w as f64;
        let rb = ra * rng.random_range(0.6..=1.0);
        let theta = rng.random_range(0.0..std::f64::consts::PI);
        let value = rng.random_range(spec.intensity.0..=spec.intensity.1) as f32;
        let (sin, cos) = theta.sin_cos();
        let reach = ra.max(1.0).ceil() as isize + 1;
        for dy in -reach..=reach {
            for dx in -reach..=reach {
                let (x, y) = (cx as isize + dx, cy as isize + dy);
                if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
                    continue;
                }
                let i = y as usize * w + x as usize;
                if !brain[i] {
                    continue;
                }
                let (u, v) = (
                    dx as f64 * cos + dy as f64 * sin,
                    -dx as f64 * sin + dy as f64 * cos,
                );
                let r = ((u / ra).powi(2) + (v / rb).powi(2)).sqrt();
                // 1 inside, a linear rim of width `rim`, 0 beyond the ellipse.
                let alpha = ((1.0 - r) / spec.rim).clamp(0.0, 1.0) as f32;
                if alpha <= 0.0 {
                    continue;
                }
                let grain = spec.texture as f32 * rng.random_range(-1.0f32..=1.0);
                let target = (value + grain).clamp(-1.0, 1.0);
                image.data[i] = image.data[i] * (1.0 - alpha) + target * alpha;
                alpha_max[i] = alpha_max[i].max(alpha);
            }
        }
    }
    Lesioned {
        image,
        lesion: alpha_max.iter().map(|&a| a >= 0.5).collect(),
        count: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn disc(w: usize, r: f64) -> Vec<bool> {
        (0..w * w)
            .map(|i| {
                let (x, y) = (
                    (i % w) as f64 - w as f64 / 2.0,
                    (i / w) as f64 - w as f64 / 2.0,
                );
                (x * x + y * y).sqrt() < r
            })
            .collect()
    }

    #[test]
    fn lesions_change_only_the_brain_and_start_in_tissue() {
        let w = 64;
        let clean = Slice::filled(w, w, 0.7);
        let brain = disc(w, 28.0);
        let tissue = disc(w, 14.0);
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let out = paint_lesions(&clean, &tissue, &brain, &LesionSpec::default(), &mut rng);
            assert!((1..=4).contains(&out.count));
            assert!(
                out.lesion.iter().any(|&l| l),
                "seed {seed}: no lesion pixel"
            );
            for i in 0..w * w {
                if !brain[i] {
                    assert_eq!(
                        out.image.data[i], 0.7,
                        "seed {seed}: pixel {i} outside the brain changed"
                    );
                }
                if out.lesion[i] {
                    // Default intensities reach at most 0.1 + texture.
                    assert!(
                        out.image.data[i] < 0.7 - 0.2,
                        "seed {seed}: lesion pixel {i} barely changed"
                    );
                }
            }
            // A lesion's extent is bounded by the largest radius around a
            // tissue centre.
            let reach = 14.0 + 0.11 * w as f64 + 1.5;
            assert!(disc(w, reach)
                .iter()
                .zip(&out.lesion)
                .all(|(&inside, &l)| inside || !l));
        }
    }

    #[test]
    fn painting_is_deterministic_in_the_seed_and_varies_across_seeds() {
        let w = 32;
        let clean = Slice::filled(w, w, 0.5);
        let m = disc(w, 12.0);
        let paint = |seed| {
            paint_lesions(
                &clean,
                &m,
                &m,
                &LesionSpec::default(),
                &mut ChaCha8Rng::seed_from_u64(seed),
            )
            .image
        };
        assert_eq!(paint(3), paint(3));
        assert_ne!(paint(3), paint(4));
    }

    #[test]
    fn no_tissue_means_no_lesion() {
        let clean = Slice::filled(8, 8, 0.2);
        let none = vec![false; 64];
        let out = paint_lesions(
            &clean,
            &none,
            &[true; 64],
            &LesionSpec::default(),
            &mut ChaCha8Rng::seed_from_u64(0),
        );
        assert_eq!(out.count, 0);
        assert_eq!(out.image, clean);
    }

    #[test]
    fn bad_specs_are_refused() {
        let ok = LesionSpec::default();
        assert!(ok.check().is_ok());
        for bad in [
            LesionSpec {
                count: (0, 2),
                ..ok.clone()
            },
            LesionSpec {
                count: (3, 2),
                ..ok.clone()
            },
            LesionSpec {
                radius: (0.2, 0.1),
                ..ok.clone()
            },
            LesionSpec {
                radius: (0.0, 0.1),
                ..ok.clone()
            },
            LesionSpec {
                intensity: (-2.0, 0.0),
                ..ok.clone()
            },
            LesionSpec {
                rim: 0.0,
                ..ok.clone()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?} passed");
        }
    }
}
