use medtrans_core::Slice;
use serde::{Deserialize, Serialize};

/// Interpolation for resizing: bilinear for images, nearest for masks and labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interp {
    Bilinear,
    Nearest,
}

/// Resize to `width` x `height` with pixel-centre alignment (PyTorch's
/// `align_corners=False`, scikit-image's `resize(order=1, mode="edge")`),
/// without anti-aliasing.
pub fn resize(s: &Slice, width: usize, height: usize, interp: Interp) -> Slice {
    let sx = s.width as f64 / width as f64;
    let sy = s.height as f64 / height as f64;
    let mut out = Vec::with_capacity(width * height);
    let src = |c: f64, n: usize| -> (usize, usize, f32) {
        let c = c.clamp(0.0, (n - 1) as f64);
        let i0 = c.floor() as usize;
        let i1 = (i0 + 1).min(n - 1);
        (i0, i1, (c - i0 as f64) as f32)
    };
    for r in 0..height {
        let cy = (r as f64 + 0.5) * sy - 0.5;
        for c in 0..width {
            let cx = (c as f64 + 0.5) * sx - 0.5;
            let v = match interp {
                Interp::Nearest => {
                    // The source pixel whose area holds the output pixel centre.
                    let x = (((c as f64 + 0.5) * sx).floor() as usize).min(s.width - 1);
                    let y = (((r as f64 + 0.5) * sy).floor() as usize).min(s.height - 1);
                    s.get(y, x)
                }
                Interp::Bilinear => {
                    let (x0, x1, fx) = src(cx, s.width);
                    let (y0, y1, fy) = src(cy, s.height);
                    let top = s.get(y0, x0) * (1.0 - fx) + s.get(y0, x1) * fx;
                    let bot = s.get(y1, x0) * (1.0 - fx) + s.get(y1, x1) * fx;
                    top * (1.0 - fy) + bot * fy
                }
            };
            out.push(v);
        }
    }
    Slice::new(out, width, height)
}

/// Pad the shorter side symmetrically with `fill` to make a square.
pub fn pad_to_square(s: &Slice, fill: f32) -> Slice {
    let n = s.width.max(s.height);
    let (ox, oy) = ((n - s.width) / 2, (n - s.height) / 2);
    let mut out = Slice::filled(n, n, fill);
    for r in 0..s.height {
        let dst = (r + oy) * n + ox;
        out.data[dst..dst + s.width].copy_from_slice(&s.data[r * s.width..(r + 1) * s.width]);
    }
    out
}

/// How a slice was fitted into the N x N training square, so that a network
/// output can be put back on the original grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SquareFit {
    pub width: usize,
    pub height: usize,
    pub size: usize,
}

impl SquareFit {
    pub fn new(width: usize, height: usize, size: usize) -> Self {
        SquareFit {
            width,
            height,
            size,
        }
    }

    /// Pad to square (keeping the aspect ratio), then resize to `size`.
    pub fn forward(&self, s: &Slice, fill: f32, interp: Interp) -> Slice {
        assert_eq!(
            (s.width, s.height),
            (self.width, self.height),
            "slice does not match the fit"
        );
        let sq = pad_to_square(s, fill);
        if sq.width == self.size {
            sq
        } else {
            resize(&sq, self.size, self.size, interp)
        }
    }

    /// Resize back to the padded square, then crop the padding away.
    pub fn inverse(&self, s: &Slice, interp: Interp) -> Slice {
        let n = self.width.max(self.height);
        let sq = if s.width == n {
            s.clone()
        } else {
            resize(s, n, n, interp)
        };
        let (ox, oy) = ((n - self.width) / 2, (n - self.height) / 2);
        let mut out = Vec::with_capacity(self.width * self.height);
        for r in 0..self.height {
            let start = (r + oy) * n + ox;
            out.extend_from_slice(&sq.data[start..start + self.width]);
        }
        Slice::new(out, self.width, self.height)
    }
}

/// Pad to square and resize to `size` x `size`.
pub fn fit_square(s: &Slice, size: usize, fill: f32, interp: Interp) -> Slice {
    SquareFit::new(s.width, s.height, size).forward(s, fill, interp)
}
