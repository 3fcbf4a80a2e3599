//! Bilinear resizing with PyTorch's `interpolate(mode="bilinear",
//! align_corners=False)` semantics, built only from ops that have a backward
//! on every Burn backend. Burn 0.22's `interpolate` has none on the cubecl
//! (GPU) backends, which made RegGAN's R fail there.
use burn::tensor::Tensor;

/// Resize `[N, C, H, W]` to `[N, C, out_h, out_w]`. Bilinear interpolation
/// is separable, so each axis is resized on its own: a doubling (R's only
/// case at power-of-two sizes) by a two-tap stencil, any other ratio by a
/// product with the interpolation matrix.
pub fn resize_bilinear(x: Tensor<4>, [out_h, out_w]: [usize; 2]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    if (out_h, out_w) == (2 * h, 2 * w) {
        // One kernel each way on a GPU (medtrans-kernels), where the
        // stencil below takes about a dozen launches per axis.
        if let Some(y) = medtrans_kernels::resize::double_bilinear(&x) {
            return y;
        }
    }
    let x = resize_axis(x, 3, out_w);
    resize_axis(x, 2, out_h)
}

fn resize_axis(x: Tensor<4>, dim: usize, out: usize) -> Tensor<4> {
    let n = x.dims()[dim];
    if n == out {
        x
    } else if out == 2 * n && n >= 2 {
        double(x, dim)
    } else if dim == 3 {
        by_matrix(x, out)
    } else {
        by_matrix(x.swap_dims(2, 3), out).swap_dims(2, 3)
    }
}

/// Doubling along `dim`: output 2i = 0.25 x[i-1] + 0.75 x[i] and 2i+1 =
/// 0.75 x[i] + 0.25 x[i+1], neighbours clamped at the edges (PyTorch clamps
/// the source coordinate at 0 and the upper index at n-1).
fn double(x: Tensor<4>, dim: usize) -> Tensor<4> {
    let mut dims = x.dims();
    let n = dims[dim];
    let prev = Tensor::cat(
        vec![x.clone().narrow(dim, 0, 1), x.clone().narrow(dim, 0, n - 1)],
        dim,
    );
    let next = Tensor::cat(
        vec![
            x.clone().narrow(dim, 1, n - 1),
            x.clone().narrow(dim, n - 1, 1),
        ],
        dim,
    );
    let centre = x * 0.75;
    let even = prev * 0.25 + centre.clone();
    let odd = centre + next * 0.25;
    dims[dim] = 2 * n;
    Tensor::stack::<5>(vec![even, odd], dim + 1).reshape(dims)
}

/// Resize the last axis by `x @ A^T` with A the `[out, n]` matrix of
/// bilinear weights.
fn by_matrix(x: Tensor<4>, out: usize) -> Tensor<4> {
    let [b, c, h, n] = x.dims();
    let device = x.device();
    let dtype = burn::tensor::FloatDType::from(x.dtype());
    let a_t = crate::constants::constant(format!("resize {n}->{out} {dtype:?}"), &device, || {
        let weights = interpolation_matrix(n, out);
        Tensor::<2>::from_data(burn::tensor::TensorData::new(weights, [n, out]), &device)
            .cast(dtype)
    });
    x.reshape([b * c * h, n])
        .matmul(a_t)
        .reshape([b, c, h, out])
}

/// `[n, out]` row-major (the transpose of the interpolation matrix): entry
/// (i, j) is the weight of input i in output j, with PyTorch's source
/// coordinate `(j + 0.5) * n / out - 0.5`, clamped below at 0.
fn interpolation_matrix(n: usize, out: usize) -> Vec<f32> {
    let scale = n as f64 / out as f64;
    let mut m = vec![0f32; n * out];
    for j in 0..out {
        let src = ((j as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(n - 1);
        let i1 = (i0 + 1).min(n - 1);
        let t = src - i0 as f64;
        m[i0 * out + j] += (1.0 - t) as f32;
        m[i1 * out + j] += t as f32;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn ramp(shape: [usize; 4]) -> Tensor<4> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
        Tensor::from_data(burn::tensor::TensorData::new(v, shape), &Device::flex())
    }

    /// The stencil and the matrix are two routes to the same numbers.
    #[test]
    fn doubling_stencil_matches_the_matrix() {
        let x = ramp([2, 3, 5, 7]);
        let stencil = double(double(x.clone(), 3), 2);
        let matrix = by_matrix(by_matrix(x, 14).swap_dims(2, 3), 10).swap_dims(2, 3);
        let d = (stencil - matrix).abs().max().into_scalar::<f32>();
        assert!(d < 1e-5, "max difference {d}");
    }

    #[test]
    fn weights_of_each_output_sum_to_one() {
        for (n, out) in [(2, 5), (5, 2), (3, 8), (7, 7)] {
            let m = interpolation_matrix(n, out);
            for j in 0..out {
                let s: f32 = (0..n).map(|i| m[i * out + j]).sum();
                assert!((s - 1.0).abs() < 1e-6, "{n}->{out}, output {j}: {s}");
            }
        }
    }
}
