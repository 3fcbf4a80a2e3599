//! World-space resampling: a volume onto another voxel grid through the two
//! voxel-to-world affines (and optionally a world-to-world transform, e.g.
//! one found by registration). Scans of one patient from two sessions or
//! scanners never share a grid; their affines place both in scanner space.
use crate::TransformError;
use medtrans_core::{Geometry, Volume};

/// A 4 x 4 homogeneous matrix, row-major (last row 0 0 0 1).
pub type Mat4 = [[f64; 4]; 4];

/// The identity transform.
pub const IDENTITY: Mat4 = [
    [1.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
];

/// Interpolation for volumes: trilinear for intensities, nearest for masks
/// and label maps (classes never blend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interp3 {
    Trilinear,
    Nearest,
}

/// `a * b`.
pub fn mat_mul(a: &Mat4, b: &Mat4) -> Mat4 {
    let mut m = [[0.0; 4]; 4];
    for i in 0..4 {
        for j in 0..4 {
            m[i][j] = (0..4).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

/// `m` applied to point `p`.
#[inline]
pub fn apply(m: &Mat4, p: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| m[i][0] * p[0] + m[i][1] * p[1] + m[i][2] * p[2] + m[i][3])
}

/// Determinant of the linear (3 x 3) part.
pub fn det3(m: &Mat4) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

/// The inverse of an affine, or `None` when it is singular or not finite.
pub fn invert(m: &Mat4) -> Option<Mat4> {
    let d = det3(m);
    if !d.is_finite() || d.abs() < 1e-12 || m.iter().flatten().any(|v| !v.is_finite()) {
        return None;
    }
    let c = |i: usize, j: usize| {
        // Cofactor of the 3 x 3 part, transposed into place.
        let (r0, r1) = ((j + 1) % 3, (j + 2) % 3);
        let (c0, c1) = ((i + 1) % 3, (i + 2) % 3);
        m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]
    };
    let mut inv = IDENTITY;
    for i in 0..3 {
        for j in 0..3 {
            inv[i][j] = c(i, j) / d;
        }
    }
    let t = [m[0][3], m[1][3], m[2][3]];
    for i in 0..3 {
        inv[i][3] = -(0..3).map(|k| inv[i][k] * t[k]).sum::<f64>();
    }
    Some(inv)
}

/// Refuse an affine that cannot place a volume in the world.
pub fn check_affine(g: &Geometry) -> Result<(), TransformError> {
    if invert(&g.affine).is_none() {
        return Err(TransformError::Geometry(format!(
            "its voxel-to-world affine is {} ({:?}); the file's header does not place it in space",
            if g.affine.iter().flatten().all(|v| v.is_finite()) {
                "singular"
            } else {
                "not finite"
            },
            &g.affine[..3]
        )));
    }
    Ok(())
}

/// The world bounding box (mm) of a grid, voxel edges included.
pub fn world_bounds(g: &Geometry) -> ([f64; 3], [f64; 3]) {
    let (mut lo, mut hi) = ([f64::MAX; 3], [f64::MIN; 3]);
    for corner in 0..8 {
        let p = [0, 1, 2].map(|k| {
            if corner >> k & 1 == 0 {
                -0.5
            } else {
                g.shape[k] as f64 - 0.5
            }
        });
        let w = apply(&g.affine, p);
        for k in 0..3 {
            lo[k] = lo[k].min(w[k]);
            hi[k] = hi[k].max(w[k]);
        }
    }
    (lo, hi)
}

/// A bounding box for messages: `[x0, x1] x [y0, y1] x [z0, z1] mm`.
pub fn format_bounds((lo, hi): ([f64; 3], [f64; 3])) -> String {
    format!(
        "[{:.1}, {:.1}] x [{:.1}, {:.1}] x [{:.1}, {:.1}] mm",
        lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]
    )
}

/// A grid over the same field of view as `g`, with the same axes, at an
/// isotropic `spacing` (mm): the outer voxel edges stay where they were
/// (up to rounding the voxel count).
pub fn regrid(g: &Geometry, spacing: f64) -> Geometry {
    let mut out = g.clone();
    for k in 0..3 {
        let old = g.spacing[k].abs().max(1e-9);
        let n = ((g.shape[k] as f64 * old / spacing).round() as usize).max(1);
        out.shape[k] = n;
        out.spacing[k] = spacing;
        let scale = spacing / old;
        // Column k of the affine: the world step of one voxel along axis k.
        let col = [0, 1, 2].map(|i| g.affine[i][k]);
        for (i, c) in col.iter().enumerate() {
            out.affine[i][k] = c * scale;
            // Keep the outer edge: move voxel 0's centre by half the change.
            out.affine[i][3] += c * (scale - 1.0) / 2.0;
        }
    }
    out.qform = None;
    if out.sform_code == 0 {
        out.sform_code = 1;
    }
    out
}

/// A volume resampled onto another grid.
#[derive(Debug, Clone)]
pub struct Resampled {
    /// Values on the target grid, x fastest.
    pub data: Vec<f32>,
    /// Whether each target voxel fell inside the source's field of view.
    pub inside: Vec<bool>,
}

impl Resampled {
    /// Fraction of target voxels inside the source's field of view.
    pub fn overlap(&self) -> f64 {
        self.inside.iter().filter(|&&v| v).count() as f64 / self.inside.len().max(1) as f64
    }
}

/// Resample `src` onto the grid `dst`. `moving_from_fixed` maps a world
/// point of `dst` to the world point of `src` to sample (the registration
/// convention; [`IDENTITY`] when the affines alone are right). Outside the
/// source's field of view the value is `fill`. Sampling follows
/// `scipy.ndimage.map_coordinates` with `mode="constant"` (as nibabel's
/// `resample_from_to`): a point is inside when every voxel coordinate lies
/// in `[0, n - 1]`.
pub fn resample(
    src: &Volume,
    dst: &Geometry,
    moving_from_fixed: &Mat4,
    interp: Interp3,
    fill: f32,
) -> Result<Resampled, TransformError> {
    check_affine(&src.geometry)?;
    check_affine(dst)?;
    let inv = invert(&src.geometry.affine).expect("checked above");
    // Target voxel -> source voxel in one affine.
    let m = mat_mul(&inv, &mat_mul(moving_from_fixed, &dst.affine));
    let [nx, ny, nz] = dst.shape;
    let sampler = Sampler::new(src);
    let mut data = Vec::with_capacity(nx * ny * nz);
    let mut inside = Vec::with_capacity(nx * ny * nz);
    for z in 0..nz {
        for y in 0..ny {
            let row = apply(&m, [0.0, y as f64, z as f64]);
            for x in 0..nx {
                let xf = x as f64;
                let p = [
                    row[0] + m[0][0] * xf,
                    row[1] + m[1][0] * xf,
                    row[2] + m[2][0] * xf,
                ];
                let v = match interp {
                    Interp3::Trilinear => sampler.trilinear(p),
                    Interp3::Nearest => sampler.nearest(p),
                };
                inside.push(v.is_some());
                data.push(v.unwrap_or(fill));
            }
        }
    }
    Ok(Resampled { data, inside })
}

/// Point sampling of a volume in voxel coordinates.
pub struct Sampler<'a> {
    data: &'a [f32],
    shape: [usize; 3],
    /// `n - 1` per axis, the largest coordinate inside.
    max: [f64; 3],
}

impl<'a> Sampler<'a> {
    pub fn new(v: &'a Volume) -> Self {
        Self::from_parts(&v.data, v.geometry.shape)
    }

    pub fn from_parts(data: &'a [f32], shape: [usize; 3]) -> Self {
        Sampler {
            data,
            shape,
            max: shape.map(|n| n as f64 - 1.0),
        }
    }

    #[inline]
    fn at(&self, x: usize, y: usize, z: usize) -> f32 {
        self.data[x + self.shape[0] * (y + self.shape[1] * z)]
    }

    #[inline]
    fn contains(&self, p: [f64; 3]) -> bool {
        // Tolerance for points on the edge that rounding pushed out.
        (0..3).all(|k| p[k] >= -1e-9 && p[k] <= self.max[k] + 1e-9)
    }

    /// Trilinear value at `p`, or `None` outside `[0, n-1]` on any axis.
    #[inline]
    pub fn trilinear(&self, p: [f64; 3]) -> Option<f32> {
        self.trilinear_with_gradient(p).map(|(v, _)| v)
    }

    /// Trilinear value and its gradient (per voxel step) at `p`.
    #[inline]
    pub fn trilinear_with_gradient(&self, p: [f64; 3]) -> Option<(f32, [f32; 3])> {
        if !self.contains(p) {
            return None;
        }
        let mut i0 = [0usize; 3];
        let mut i1 = [0usize; 3];
        let mut f = [0f32; 3];
        for k in 0..3 {
            let c = p[k].clamp(0.0, self.max[k]);
            let lo = (c.floor() as usize).min(self.shape[k].saturating_sub(2));
            i0[k] = lo;
            i1[k] = (lo + 1).min(self.shape[k] - 1);
            f[k] = (c - lo as f64) as f32;
        }
        let c000 = self.at(i0[0], i0[1], i0[2]);
        let c100 = self.at(i1[0], i0[1], i0[2]);
        let c010 = self.at(i0[0], i1[1], i0[2]);
        let c110 = self.at(i1[0], i1[1], i0[2]);
        let c001 = self.at(i0[0], i0[1], i1[2]);
        let c101 = self.at(i1[0], i0[1], i1[2]);
        let c011 = self.at(i0[0], i1[1], i1[2]);
        let c111 = self.at(i1[0], i1[1], i1[2]);
        let [fx, fy, fz] = f;
        let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
        let c00 = lerp(c000, c100, fx);
        let c10 = lerp(c010, c110, fx);
        let c01 = lerp(c001, c101, fx);
        let c11 = lerp(c011, c111, fx);
        let c0 = lerp(c00, c10, fy);
        let c1 = lerp(c01, c11, fy);
        let v = lerp(c0, c1, fz);
        let gx = lerp(
            lerp(c100 - c000, c110 - c010, fy),
            lerp(c101 - c001, c111 - c011, fy),
            fz,
        );
        let gy = lerp(
            lerp(c010 - c000, c110 - c100, fx),
            lerp(c011 - c001, c111 - c101, fx),
            fz,
        );
        let gz = c1 - c0;
        Some((v, [gx, gy, gz]))
    }

    /// Nearest voxel's value at `p` (coordinates rounded half up), or `None`
    /// outside.
    #[inline]
    pub fn nearest(&self, p: [f64; 3]) -> Option<f32> {
        if !self.contains(p) {
            return None;
        }
        let i = [0, 1, 2].map(|k| ((p[k] + 0.5).floor().max(0.0) as usize).min(self.shape[k] - 1));
        Some(self.at(i[0], i[1], i[2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_undoes_an_oblique_affine() {
        let m: Mat4 = [
            [0.9, -0.2, 0.1, 12.0],
            [0.3, 1.1, -0.05, -40.0],
            [0.0, 0.2, 2.5, 7.5],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let p = mat_mul(&invert(&m).unwrap(), &m);
        for i in 0..4 {
            for j in 0..4 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((p[i][j] - want).abs() < 1e-12, "{p:?}");
            }
        }
        let mut flat = m;
        flat[2] = [0.0, 0.0, 0.0, 1.0];
        assert!(invert(&flat).is_none());
        let mut nan = m;
        nan[0][3] = f64::NAN;
        assert!(invert(&nan).is_none());
    }

    #[test]
    fn regrid_keeps_the_field_of_view() {
        let mut g = Geometry::identity([10, 20, 5]);
        g.spacing = [2.0, 1.0, 3.0];
        g.affine[0][0] = -2.0;
        g.affine[1][1] = 1.0;
        g.affine[2][2] = 3.0;
        g.affine[0][3] = 100.0;
        let r = regrid(&g, 1.0);
        assert_eq!(r.shape, [20, 20, 15]);
        let (lo, hi) = world_bounds(&g);
        let (lo2, hi2) = world_bounds(&r);
        for k in 0..3 {
            assert!((lo[k] - lo2[k]).abs() < 1e-9 && (hi[k] - hi2[k]).abs() < 1e-9);
        }
        assert_eq!(r.orientation(), g.orientation());
    }
}
