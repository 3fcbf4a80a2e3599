//! Image pyramids: coarse levels see the gross misalignment without the
//! local optima that fine detail creates.
use medtrans_core::{Geometry, Volume};

/// One level: the volume smoothed and subsampled, with its own geometry.
pub struct Level {
    pub data: Vec<f32>,
    pub geometry: Geometry,
}

/// Smooth with a Gaussian of `sigma[k]` voxels along each axis (edges
/// clamped), then keep every `stride[k]`-th voxel from voxel 0, so voxel i
/// of the level sits where voxel `i * stride` sat.
pub fn level(v: &Volume, stride: [usize; 3]) -> Level {
    let mut data = v.data.clone();
    let shape = v.geometry.shape;
    for axis in 0..3 {
        if stride[axis] > 1 {
            blur_axis(&mut data, shape, axis, stride[axis] as f64 / 2.0);
        }
    }
    let new: [usize; 3] = [0, 1, 2].map(|k| shape[k].div_ceil(stride[k]));
    let mut out = Vec::with_capacity(new.iter().product());
    for z in 0..new[2] {
        for y in 0..new[1] {
            for x in 0..new[0] {
                let (sx, sy, sz) = (x * stride[0], y * stride[1], z * stride[2]);
                out.push(data[sx + shape[0] * (sy + shape[1] * sz)]);
            }
        }
    }
    let mut g = v.geometry.clone();
    g.shape = new;
    for k in 0..3 {
        g.spacing[k] *= stride[k] as f64;
        for i in 0..3 {
            g.affine[i][k] *= stride[k] as f64;
        }
    }
    Level {
        data: out,
        geometry: g,
    }
}

/// Strides that bring every axis near `shrink` times the finest spacing:
/// thick slices are not subsampled as hard as the in-plane axes.
pub fn strides(g: &Geometry, shrink: usize) -> [usize; 3] {
    let finest = g.spacing.iter().fold(f64::MAX, |a, &b| a.min(b.abs()));
    let target = finest * shrink as f64;
    [0, 1, 2].map(|k| ((target / g.spacing[k].abs()).round() as usize).clamp(1, g.shape[k].max(1)))
}

fn blur_axis(data: &mut [f32], shape: [usize; 3], axis: usize, sigma: f64) {
    let r = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = {
        let k: Vec<f64> = (-r..=r)
            .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
            .collect();
        let s: f64 = k.iter().sum();
        k.iter().map(|v| (v / s) as f32).collect()
    };
    let n = shape[axis];
    let stride = match axis {
        0 => 1,
        1 => shape[0],
        _ => shape[0] * shape[1],
    };
    let lines: Vec<usize> = (0..data.len()).filter(|&i| (i / stride) % n == 0).collect();
    let mut line = vec![0f32; n];
    for start in lines {
        for (k, v) in line.iter_mut().enumerate() {
            *v = data[start + k * stride];
        }
        for k in 0..n {
            let mut acc = 0f32;
            for (t, w) in kernel.iter().enumerate() {
                let j = (k as isize + t as isize - r).clamp(0, n as isize - 1) as usize;
                acc += w * line[j];
            }
            data[start + k * stride] = acc;
        }
    }
}
