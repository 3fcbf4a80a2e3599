use serde::{Deserialize, Serialize};

/// Where a volume's voxels sit in the world: enough to write an output that
/// overlays its input exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Geometry {
    /// Voxel counts along x, y, z.
    pub shape: [usize; 3],
    /// Voxel size in mm along x, y, z.
    pub spacing: [f64; 3],
    /// Voxel index (x, y, z, 1) to RAS+ world millimetres, row-major.
    pub affine: [[f64; 4]; 4],
    /// NIfTI sform code (0 = none); `affine` came from the sform when > 0.
    pub sform_code: i16,
    /// NIfTI qform, kept verbatim so that a rewritten file keeps both transforms.
    pub qform: Option<Qform>,
    /// NIfTI `xyzt_units` (2 = mm).
    pub xyzt_units: u8,
}

/// The NIfTI quaternion transform, as stored in the header.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Qform {
    pub code: i16,
    pub b: f32,
    pub c: f32,
    pub d: f32,
    pub offset: [f32; 3],
    pub qfac: f32,
}

impl Qform {
    /// The voxel-to-world matrix this quaternion describes (NIfTI-1 method 2).
    pub fn affine(&self, spacing: [f64; 3]) -> [[f64; 4]; 4] {
        let (mut b, mut c, mut d) = (self.b as f64, self.c as f64, self.d as f64);
        let norm2 = b * b + c * c + d * d;
        // As nifti1_io: a 180-degree rotation rounded in float32 can push
        // b^2+c^2+d^2 past 1; renormalise so the rotation stays orthonormal.
        let a = if 1.0 - norm2 < 1e-7 {
            let k = 1.0 / norm2.sqrt();
            (b, c, d) = (b * k, c * k, d * k);
            0.0
        } else {
            (1.0 - norm2).sqrt()
        };
        let spacing = spacing.map(|s| if s > 0.0 { s } else { 1.0 });
        let r = [
            [
                a * a + b * b - c * c - d * d,
                2.0 * (b * c - a * d),
                2.0 * (b * d + a * c),
            ],
            [
                2.0 * (b * c + a * d),
                a * a + c * c - b * b - d * d,
                2.0 * (c * d - a * b),
            ],
            [
                2.0 * (b * d - a * c),
                2.0 * (c * d + a * b),
                a * a + d * d - c * c - b * b,
            ],
        ];
        let q = if self.qfac < 0.0 { -1.0 } else { 1.0 };
        let s = [spacing[0], spacing[1], spacing[2] * q];
        let mut m = [[0.0; 4]; 4];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] = r[i][j] * s[j];
            }
            m[i][3] = self.offset[i] as f64;
        }
        m[3][3] = 1.0;
        m
    }
}

impl Geometry {
    /// A plain grid: unit spacing, identity affine (for 2-D images and arrays).
    pub fn identity(shape: [usize; 3]) -> Self {
        let mut affine = [[0.0; 4]; 4];
        for (i, row) in affine.iter_mut().enumerate() {
            row[i] = 1.0;
        }
        Geometry {
            shape,
            spacing: [1.0; 3],
            affine,
            sform_code: 0,
            qform: None,
            xyzt_units: 2,
        }
    }

    /// Axis codes such as "RAS" or "LPS": the world direction each voxel axis
    /// points to most, as nibabel's `aff2axcodes` reports for ordinary affines.
    pub fn orientation(&self) -> String {
        const POS: [char; 3] = ['R', 'A', 'S'];
        const NEG: [char; 3] = ['L', 'P', 'I'];
        (0..3)
            .map(|j| {
                let col = [self.affine[0][j], self.affine[1][j], self.affine[2][j]];
                let (i, v) = col
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                    .unwrap();
                if *v == 0.0 {
                    '?'
                } else if *v > 0.0 {
                    POS[i]
                } else {
                    NEG[i]
                }
            })
            .collect()
    }

    pub fn voxel_count(&self) -> usize {
        self.shape.iter().product()
    }
}
