//! The transforms registration searches over, and their file format.
use crate::RegistrationError;
use medtrans_transforms::{Mat4, IDENTITY};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which transforms to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransformKind {
    /// Rotation and translation: the same head, moved (6 parameters).
    Rigid,
    /// Also scaling and shear: scanner gradient scaling, different
    /// patients (12 parameters). Searched after a rigid stage.
    Affine,
}

impl TransformKind {
    pub fn parameters(self) -> usize {
        match self {
            TransformKind::Rigid => 6,
            TransformKind::Affine => 12,
        }
    }
}

/// `p -> L (p - c) + c + t` in world millimetres (RAS+), mapping a point of
/// the fixed image to the point of the moving image that lands on it (the
/// convention of ITK, ANTs and elastix). Rigid: `L = Rz Ry Rx`, parameters
/// `[rx, ry, rz (radians), tx, ty, tz (mm)]`; affine: `L` row-major, then `t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transform {
    pub kind: TransformKind,
    pub center: [f64; 3],
    pub params: Vec<f64>,
}

fn rot(axis: usize, a: f64, derivative: bool) -> [[f64; 3]; 3] {
    let (s, c) = a.sin_cos();
    // d/da of [c -s; s c] is [-s -c; c -s]; the fixed axis row and column
    // become 0 in the derivative.
    let (cc, ss, one) = if derivative {
        (-s, c, 0.0)
    } else {
        (c, s, 1.0)
    };
    let (i, j) = [(1, 2), (0, 2), (0, 1)][axis];
    let mut m = [[0.0; 3]; 3];
    m[axis][axis] = one;
    m[i][i] = cc;
    m[j][j] = cc;
    // Ry turns z towards x: its sine sits the other way round.
    let sign = if axis == 1 { -1.0 } else { 1.0 };
    m[i][j] = -ss * sign;
    m[j][i] = ss * sign;
    m
}

fn mul3(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut m = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

impl Transform {
    /// No motion, about `center`.
    pub fn identity(kind: TransformKind, center: [f64; 3]) -> Self {
        let params = match kind {
            TransformKind::Rigid => vec![0.0; 6],
            TransformKind::Affine => vec![1., 0., 0., 0., 1., 0., 0., 0., 1., 0., 0., 0.],
        };
        Transform {
            kind,
            center,
            params,
        }
    }

    /// The linear part `L`.
    pub fn linear(&self) -> [[f64; 3]; 3] {
        match self.kind {
            TransformKind::Rigid => {
                let p = &self.params;
                mul3(
                    &rot(2, p[2], false),
                    &mul3(&rot(1, p[1], false), &rot(0, p[0], false)),
                )
            }
            TransformKind::Affine => {
                let p = &self.params;
                [[p[0], p[1], p[2]], [p[3], p[4], p[5]], [p[6], p[7], p[8]]]
            }
        }
    }

    pub fn translation(&self) -> [f64; 3] {
        let n = self.params.len();
        [self.params[n - 3], self.params[n - 2], self.params[n - 1]]
    }

    /// The same motion as an affine (where a rigid stage hands over).
    pub fn to_affine(&self) -> Transform {
        let l = self.linear();
        let t = self.translation();
        let mut params: Vec<f64> = l.iter().flatten().copied().collect();
        params.extend(t);
        Transform {
            kind: TransformKind::Affine,
            center: self.center,
            params,
        }
    }

    /// The world-to-world matrix.
    pub fn matrix(&self) -> Mat4 {
        let l = self.linear();
        let (c, t) = (self.center, self.translation());
        let mut m = IDENTITY;
        for i in 0..3 {
            m[i][..3].copy_from_slice(&l[i]);
            m[i][3] = c[i] + t[i] - (0..3).map(|k| l[i][k] * c[k]).sum::<f64>();
        }
        m
    }

    /// `d T(p) / d param_k` for every parameter, as rows x, y, z.
    pub fn jacobian(&self, p: [f64; 3], out: &mut [[f64; 12]; 3]) {
        let d = [0, 1, 2].map(|k| p[k] - self.center[k]);
        *out = [[0.0; 12]; 3];
        match self.kind {
            TransformKind::Rigid => {
                let a = &self.params;
                let (rx, ry, rz) = (
                    [rot(0, a[0], false), rot(0, a[0], true)],
                    [rot(1, a[1], false), rot(1, a[1], true)],
                    [rot(2, a[2], false), rot(2, a[2], true)],
                );
                let dr = [
                    mul3(&rz[0], &mul3(&ry[0], &rx[1])),
                    mul3(&rz[0], &mul3(&ry[1], &rx[0])),
                    mul3(&rz[1], &mul3(&ry[0], &rx[0])),
                ];
                for (k, m) in dr.iter().enumerate() {
                    for i in 0..3 {
                        out[i][k] = (0..3).map(|j| m[i][j] * d[j]).sum();
                    }
                }
                for i in 0..3 {
                    out[i][3 + i] = 1.0;
                }
            }
            TransformKind::Affine => {
                for i in 0..3 {
                    for j in 0..3 {
                        out[i][3 * i + j] = d[j];
                    }
                    out[i][9 + i] = 1.0;
                }
            }
        }
    }

    /// Rotation angle (degrees) of the rotation closest to `L`, and the
    /// translation of the centre: how far this moves a head.
    pub fn rotation_degrees(&self) -> f64 {
        let l = self.linear();
        let trace = l[0][0] + l[1][1] + l[2][2];
        ((trace - 1.0) / 2.0).clamp(-1.0, 1.0).acos().to_degrees()
    }

    /// Write as an ITK transform file (`.tfm`/`.txt`, read by ANTs,
    /// elastix's transformix via conversion, SimpleITK and 3D Slicer). ITK
    /// works in LPS; medtrans in RAS, so x and y flip sign.
    pub fn write_itk(&self, path: &Path) -> Result<(), RegistrationError> {
        let f = [-1.0, -1.0, 1.0];
        let l = self.linear();
        let t = self.translation();
        let mut params = Vec::with_capacity(12);
        for i in 0..3 {
            for j in 0..3 {
                params.push(f[i] * l[i][j] * f[j]);
            }
        }
        params.extend((0..3).map(|i| f[i] * t[i]));
        let c: Vec<f64> = (0..3).map(|i| f[i] * self.center[i]).collect();
        let join = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.17e}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let text = format!(
            "#Insight Transform File V1.0\n#Transform 0\n\
             Transform: AffineTransform_double_3_3\n\
             Parameters: {}\nFixedParameters: {}\n",
            join(&params),
            join(&c)
        );
        // Temp file and rename: never a half-written file under the name.
        medtrans_io::write_file_atomic(path, text.as_bytes()).map_err(RegistrationError::Io)
    }

    /// Read an ITK affine transform file written by [`Transform::write_itk`]
    /// or by ITK itself (AffineTransform or MatrixOffsetTransformBase).
    pub fn read_itk(path: &Path) -> Result<Transform, RegistrationError> {
        let bad = |msg: String| RegistrationError::TransformFile {
            path: path.to_path_buf(),
            msg,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let numbers = |key: &str| -> Result<Vec<f64>, RegistrationError> {
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .ok_or_else(|| bad(format!("no '{key}' line")))?;
            line.split_whitespace()
                .map(|t| {
                    t.parse::<f64>()
                        .map_err(|_| bad(format!("'{t}' is not a number")))
                })
                .collect()
        };
        let p = numbers("Parameters:")?;
        let c = numbers("FixedParameters:")?;
        if p.len() != 12 || c.len() != 3 || p.iter().chain(&c).any(|v| !v.is_finite()) {
            return Err(bad(format!(
                "expected 12 finite parameters and a 3-D centre, found {} and {}",
                p.len(),
                c.len()
            )));
        }
        let f = [-1.0, -1.0, 1.0];
        let mut params = Vec::with_capacity(12);
        for i in 0..3 {
            for j in 0..3 {
                params.push(f[i] * p[3 * i + j] * f[j]);
            }
        }
        params.extend((0..3).map(|i| f[i] * p[9 + i]));
        Ok(Transform {
            kind: TransformKind::Affine,
            center: [0, 1, 2].map(|i| f[i] * c[i]),
            params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medtrans_transforms::apply;

    #[test]
    fn jacobian_matches_finite_differences() {
        for kind in [TransformKind::Rigid, TransformKind::Affine] {
            let mut t = Transform::identity(kind, [10.0, -20.0, 5.0]);
            let base: Vec<f64> = match kind {
                TransformKind::Rigid => vec![0.1, -0.2, 0.3, 4.0, -5.0, 6.0],
                TransformKind::Affine => {
                    vec![
                        1.1, 0.1, -0.05, 0.02, 0.9, 0.1, 0.0, -0.1, 1.2, 3.0, 2.0, 1.0,
                    ]
                }
            };
            t.params = base.clone();
            let p = [30.0, 40.0, -50.0];
            let mut jac = [[0.0; 12]; 3];
            t.jacobian(p, &mut jac);
            for k in 0..base.len() {
                let h = 1e-6;
                let mut a = t.clone();
                a.params[k] += h;
                let mut b = t.clone();
                b.params[k] -= h;
                let (pa, pb) = (apply(&a.matrix(), p), apply(&b.matrix(), p));
                for i in 0..3 {
                    let fd = (pa[i] - pb[i]) / (2.0 * h);
                    assert!(
                        (fd - jac[i][k]).abs() < 1e-5,
                        "{kind:?} d{i}/d{k}: {fd} vs {}",
                        jac[i][k]
                    );
                }
            }
            // The affine form of a rigid transform is the same motion.
            let m1 = t.matrix();
            let m2 = t.to_affine().matrix();
            for i in 0..3 {
                for j in 0..4 {
                    assert!((m1[i][j] - m2[i][j]).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn rotation_is_proper_and_angle_is_reported() {
        let mut t = Transform::identity(TransformKind::Rigid, [0.0; 3]);
        t.params[1] = 5f64.to_radians();
        assert!((t.rotation_degrees() - 5.0).abs() < 1e-9);
        let m = t.matrix();
        assert!((medtrans_transforms::det3(&m) - 1.0).abs() < 1e-12);
        // Ry by +90 degrees takes z to x (right-handed).
        t.params[1] = std::f64::consts::FRAC_PI_2;
        let q = apply(&t.matrix(), [0.0, 0.0, 1.0]);
        assert!((q[0] - 1.0).abs() < 1e-12 && q[2].abs() < 1e-12, "{q:?}");
    }

    #[test]
    fn itk_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("medtrans-tfm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.tfm");
        let mut t = Transform::identity(TransformKind::Rigid, [1.0, 2.0, 3.0]);
        t.params = vec![0.05, -0.03, 0.02, 1.5, -2.5, 3.5];
        t.write_itk(&path).unwrap();
        let back = Transform::read_itk(&path).unwrap();
        let (a, b) = (t.matrix(), back.matrix());
        for i in 0..3 {
            for j in 0..4 {
                assert!((a[i][j] - b[i][j]).abs() < 1e-12);
            }
        }
        std::fs::write(&path, "Parameters: 1 2\n").unwrap();
        let err = Transform::read_itk(&path).unwrap_err().to_string();
        assert!(
            err.contains("t.tfm") && err.contains("FixedParameters"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
