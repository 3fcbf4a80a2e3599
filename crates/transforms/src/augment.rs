//! Simple data augmentation for training a predictor on few slices: the
//! baseline that cross-modal augmentation has to beat. Every change keeps
//! the physical size of what is in the slice (no zoom), so per-slice
//! measurements such as an area stay valid labels.
use crate::misalign::{affine_warp, MisalignParams};
use medtrans_core::Slice;
use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Augment {
    /// Mirror left-right with probability 1/2 (the brain is near symmetric).
    pub flip: bool,
    /// Rotation uniform in +- this many degrees.
    pub rotate_deg: f64,
    /// Crop-and-pad: a shift uniform in +- this fraction of the size on
    /// each axis, background filling what comes in.
    pub shift: f64,
    /// Intensity jitter inside the foreground: a gain uniform in 1 +- this
    /// and an offset uniform in +- this (images in [-1, 1]).
    pub intensity: f64,
}

impl Default for Augment {
    fn default() -> Self {
        Self {
            flip: true,
            rotate_deg: 10.0,
            shift: 0.06,
            intensity: 0.1,
        }
    }
}

impl Augment {
    /// A randomly augmented copy of `s` (in [-1, 1], background -1).
    pub fn apply<R: Rng + ?Sized>(&self, s: &Slice, rng: &mut R) -> Slice {
        let (w, h) = (s.width, s.height);
        let mut out = s.clone();
        if self.flip && rng.random_bool(0.5) {
            for row in out.data.chunks_mut(w) {
                row.reverse();
            }
        }
        let p = MisalignParams {
            angle_deg: rng.random_range(-self.rotate_deg..=self.rotate_deg),
            scale: 1.0,
            tx: rng.random_range(-self.shift..=self.shift) * w as f64,
            ty: rng.random_range(-self.shift..=self.shift) * h as f64,
        };
        out = affine_warp(&out, &p, -1.0);
        if self.intensity > 0.0 {
            let gain = 1.0 + rng.random_range(-self.intensity..=self.intensity) as f32;
            let offset = rng.random_range(-self.intensity..=self.intensity) as f32;
            for v in out.data.iter_mut().filter(|v| **v > -1.0 + 1e-6) {
                // Background stays background.
                *v = ((*v + 1.0) * gain - 1.0 + offset).clamp(-1.0, 1.0);
            }
        }
        debug_assert_eq!((out.width, out.height), (w, h));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn augmenting_keeps_size_background_and_roughly_the_foreground_area() {
        let (w, h) = (32, 32);
        // A disc of radius 8 on background.
        let data = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32 - 15.5, (i / w) as f32 - 15.5);
                if x * x + y * y < 64.0 {
                    0.2
                } else {
                    -1.0
                }
            })
            .collect();
        let s = Slice::new(data, w, h);
        let area = |s: &Slice| s.data.iter().filter(|v| **v > -0.4).count() as f64;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let a = Augment::default();
        let mut changed = 0;
        for _ in 0..20 {
            let out = a.apply(&s, &mut rng);
            assert_eq!((out.width, out.height), (w, h));
            assert!((area(&out) / area(&s) - 1.0).abs() < 0.1, "area kept");
            assert!(out.data.iter().all(|v| (-1.0..=1.0).contains(v)));
            changed += (out != s) as usize;
        }
        assert_eq!(changed, 20);
        let none = Augment {
            flip: false,
            rotate_deg: 0.0,
            shift: 0.0,
            intensity: 0.0,
        };
        assert_eq!(none.apply(&s, &mut rng), s);
    }
}
