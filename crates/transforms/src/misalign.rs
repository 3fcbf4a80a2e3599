//! The RegGAN paper's misalignment noise (Table 2): at level L, each image of
//! a pair gets its own random affine transform, so aligned data becomes the
//! kind of imperfectly registered pairs clinics actually have.

use medtrans_core::Slice;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The paper's levels run 0 (no noise) to 5.
pub const MAX_NOISE_LEVEL: u32 = 5;

/// How far a random misalignment may go: rotation within +-`rotation_deg`,
/// translation within +-`translation` of the image size on each axis,
/// scaling within 1 +- `scale`. The paper's level L is (L, 2L %, 2L %)
/// ([`MisalignRange::level`]); its Table 1 uses (5, 5 %, 5 %)
/// ([`MisalignRange::TABLE1`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MisalignRange {
    pub rotation_deg: f64,
    pub translation: f64,
    pub scale: f64,
}

impl MisalignRange {
    /// The RegGAN paper's Table 1 misalignment (rotation +-5 degrees,
    /// translation +-5 %, scaling +-5 %).
    pub const TABLE1: MisalignRange = MisalignRange {
        rotation_deg: 5.0,
        translation: 0.05,
        scale: 0.05,
    };

    /// The paper's noise level `level` (Table 2).
    pub fn level(level: u32) -> MisalignRange {
        let l = level as f64;
        MisalignRange {
            rotation_deg: l,
            translation: 0.02 * l,
            scale: 0.02 * l,
        }
    }

    pub fn is_none(&self) -> bool {
        self.rotation_deg == 0.0 && self.translation == 0.0 && self.scale == 0.0
    }

    /// Finite, non-negative, and a scale range below 1; the reason when not.
    pub fn check(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        if !(ok(self.rotation_deg) && ok(self.translation) && ok(self.scale) && self.scale < 1.0) {
            return Err(format!(
                "misalignment range {self:?}: rotation_deg, translation and scale must be finite and >= 0, scale below 1"
            ));
        }
        Ok(())
    }
}

/// One random affine: rotation about the image centre, isotropic scaling,
/// then translation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MisalignParams {
    /// Degrees; positive turns +x towards +y (clockwise on screen, rows down).
    pub angle_deg: f64,
    pub scale: f64,
    /// Shift in pixels along columns (x) and rows (y).
    pub tx: f64,
    pub ty: f64,
}

impl MisalignParams {
    pub const IDENTITY: MisalignParams = MisalignParams {
        angle_deg: 0.0,
        scale: 1.0,
        tx: 0.0,
        ty: 0.0,
    };

    /// Draw the transform of noise level `level` for a `width` x `height`
    /// image: rotation uniform in +-L degrees, translation uniform in +-2L %
    /// of the image size on each axis, scale uniform in 1 +- 2L %. Level 0 is
    /// the identity and draws nothing from the RNG.
    pub fn sample<R: Rng + ?Sized>(level: u32, width: usize, height: usize, rng: &mut R) -> Self {
        Self::sample_in(&MisalignRange::level(level), width, height, rng)
    }

    /// Draw a transform within `range`, in the order rotation, x shift, y
    /// shift, scale. No range (all zero) is the identity and draws nothing.
    pub fn sample_in<R: Rng + ?Sized>(
        range: &MisalignRange,
        width: usize,
        height: usize,
        rng: &mut R,
    ) -> Self {
        if range.is_none() {
            return Self::IDENTITY;
        }
        let (r, t, s) = (range.rotation_deg, range.translation, range.scale);
        MisalignParams {
            angle_deg: rng.random_range(-r..=r),
            tx: rng.random_range(-t..=t) * width as f64,
            ty: rng.random_range(-t..=t) * height as f64,
            scale: rng.random_range(1.0 - s..=1.0 + s),
        }
    }

    pub fn is_identity(&self) -> bool {
        *self == Self::IDENTITY
    }

    /// Where the content at `(x, y)` (column, row) of the untouched
    /// `width` x `height` image lands after [`affine_warp`].
    pub fn map(&self, x: f64, y: f64, width: usize, height: usize) -> (f64, f64) {
        let (cx, cy) = centre(width, height);
        let (s, c) = self.angle_deg.to_radians().sin_cos();
        let (dx, dy) = (x - cx, y - cy);
        (
            self.scale * (c * dx - s * dy) + cx + self.tx,
            self.scale * (s * dx + c * dy) + cy + self.ty,
        )
    }

    /// The inverse of [`map`](Self::map): where output pixel `(x, y)` of
    /// [`affine_warp`] reads the untouched image.
    pub fn unmap(&self, x: f64, y: f64, width: usize, height: usize) -> (f64, f64) {
        let (cx, cy) = centre(width, height);
        let (s, c) = self.angle_deg.to_radians().sin_cos();
        let (dx, dy) = (
            (x - cx - self.tx) / self.scale,
            (y - cy - self.ty) / self.scale,
        );
        (c * dx + s * dy + cx, -s * dx + c * dy + cy)
    }
}

fn centre(width: usize, height: usize) -> (f64, f64) {
    ((width as f64 - 1.0) / 2.0, (height as f64 - 1.0) / 2.0)
}

/// The displacement field that undoes a pair's misalignment: the source was
/// moved by `a`, the target by `b`, and output pixel p of a warp should read
/// the moved source at p + field(p) to line up with the moved target. This
/// is what RegGAN's R should find; returned as (rows, columns) in px, the
/// layout of R's fields.
pub fn ideal_field(
    a: &MisalignParams,
    b: &MisalignParams,
    width: usize,
    height: usize,
) -> (Slice, Slice) {
    let mut dy = Vec::with_capacity(width * height);
    let mut dx = Vec::with_capacity(width * height);
    for r in 0..height {
        for col in 0..width {
            let (ux, uy) = b.unmap(col as f64, r as f64, width, height);
            let (sx, sy) = a.map(ux, uy, width, height);
            dx.push((sx - col as f64) as f32);
            dy.push((sy - r as f64) as f32);
        }
    }
    (Slice::new(dy, width, height), Slice::new(dx, width, height))
}

/// Apply `p` to `s` by bilinear resampling; samples falling outside the
/// image blend towards `fill` (-1, the background), as scipy's
/// `affine_transform(order=1, mode="grid-constant")` does.
pub fn affine_warp(s: &Slice, p: &MisalignParams, fill: f32) -> Slice {
    if p.is_identity() {
        return s.clone();
    }
    let (w, h) = (s.width, s.height);
    let px = |x: isize, y: isize| -> f32 {
        if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
            fill
        } else {
            s.data[y as usize * w + x as usize]
        }
    };
    let mut out = Vec::with_capacity(w * h);
    for r in 0..h {
        for col in 0..w {
            let (sx, sy) = p.unmap(col as f64, r as f64, w, h);
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = ((sx - x0) as f32, (sy - y0) as f32);
            let (x0, y0) = (x0 as isize, y0 as isize);
            let top = px(x0, y0) * (1.0 - fx) + px(x0 + 1, y0) * fx;
            let bot = px(x0, y0 + 1) * (1.0 - fx) + px(x0 + 1, y0 + 1) * fx;
            out.push(top * (1.0 - fy) + bot * fy);
        }
    }
    Slice::new(out, w, h)
}

/// Apply `p` to a label map by nearest neighbour (labels must not blend);
/// samples outside the image are `fill`.
pub fn affine_warp_labels(s: &Slice, p: &MisalignParams, fill: f32) -> Slice {
    if p.is_identity() {
        return s.clone();
    }
    let (w, h) = (s.width, s.height);
    let mut out = Vec::with_capacity(w * h);
    for r in 0..h {
        for col in 0..w {
            let (sx, sy) = p.unmap(col as f64, r as f64, w, h);
            let (x, y) = (sx.round(), sy.round());
            out.push(if x < 0.0 || y < 0.0 || x >= w as f64 || y >= h as f64 {
                fill
            } else {
                s.data[y as usize * w + x as usize]
            });
        }
    }
    Slice::new(out, w, h)
}
