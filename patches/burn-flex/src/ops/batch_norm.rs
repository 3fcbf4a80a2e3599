//! Batch normalisation with the batch's own statistics, forward and
//! backward, each as one pass per channel for the statistics and one per
//! plane for the output.
//!
//! medtrans patch (see `patches/README.md` in the medtrans repository).
//! Upstream flex leaves `batch_norm_train` and its backward to Burn's
//! generic versions, built from about ten tensor ops forward and fifteen
//! backward, each a pass over memory with its own allocation. Instance
//! norm, the normaliser of every image-translation network, is this op on
//! the input reshaped to `[1, batch * channels, h, w]`, so those passes
//! were a large share of a CPU training step.
//!
//! Statistics accumulate in f64 whatever the element type, shifted by the
//! channel's first element: the mean of a constant channel is then that
//! element exactly, so `x - mean` is exactly zero and a constant plane
//! normalises to exactly zero (`beta`) rather than to rounding noise
//! divided by `sqrt(epsilon)`.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_std::{Bytes, Shape, bf16, f16};

use crate::{FlexTensor, Layout};

/// Below this many elements the work stays on the calling thread: rayon's
/// wake-ups cost more than they save.
#[cfg(feature = "rayon")]
const PAR_MIN_ELEMS: usize = 1 << 15;

/// Element types the kernels read and write; arithmetic is in f64.
trait NormElem: bytemuck::Pod + Send + Sync + burn_backend::Element {
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

impl NormElem for f32 {
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}
impl NormElem for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}
impl NormElem for f16 {
    fn to_f64(self) -> f64 {
        f16::to_f64(self)
    }
    fn from_f64(v: f64) -> Self {
        f16::from_f64(v)
    }
}
impl NormElem for bf16 {
    fn to_f64(self) -> f64 {
        bf16::to_f64(self)
    }
    fn from_f64(v: f64) -> Self {
        bf16::from_f64(v)
    }
}

/// `[batch, channels, rest]` of a tensor of rank 2 or more.
fn split_dims(t: &FlexTensor) -> (usize, usize, usize) {
    let s = t.layout().shape();
    assert!(s.num_dims() >= 2, "batch norm needs rank >= 2, got {s:?}");
    let (n, c) = (s[0], s[1]);
    let rest = s.num_elements().checked_div(n * c).unwrap_or(0);
    (n, c, rest)
}

fn elems(t: &FlexTensor) -> (FlexTensor, usize, usize) {
    let t = t.to_contiguous();
    let (s, e) = t
        .layout()
        .contiguous_offsets()
        .expect("batch_norm: tensor made contiguous");
    (t, s, e)
}

/// A per-channel tensor's values, whatever its float type (gamma may come
/// at another precision than the input).
fn to_f64(t: &FlexTensor) -> Vec<f64> {
    fn read<T: NormElem>(t: &FlexTensor) -> Vec<f64> {
        let (t, s, e) = elems(t);
        t.storage::<T>()[s..e].iter().map(|v| v.to_f64()).collect()
    }
    match t.dtype() {
        DType::F32 => read::<f32>(t),
        DType::F64 => read::<f64>(t),
        DType::F16 => read::<f16>(t),
        DType::BF16 => read::<bf16>(t),
        dtype => panic!("batch norm: unsupported dtype {dtype:?}"),
    }
}

fn tensor<T: NormElem>(data: Vec<T>, shape: Shape, dtype: DType) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(data), Layout::contiguous(shape), dtype)
}

/// `f(c)` for every channel, in parallel when the tensor is large.
fn per_channel<R: Send>(
    channels: usize,
    total: usize,
    f: impl Fn(usize) -> R + Send + Sync,
) -> Vec<R> {
    #[cfg(feature = "rayon")]
    if total >= PAR_MIN_ELEMS && channels > 1 {
        use rayon::prelude::*;
        return (0..channels).into_par_iter().map(f).collect();
    }
    let _ = total;
    (0..channels).map(f).collect()
}

/// `f(plane, out)` for every `[n, c]` plane of `out`, in parallel when large.
fn per_plane<T: Send>(out: &mut [T], plane: usize, f: impl Fn(usize, &mut [T]) + Send + Sync) {
    if plane == 0 {
        return;
    }
    #[cfg(feature = "rayon")]
    if out.len() >= PAR_MIN_ELEMS {
        use rayon::prelude::*;
        out.par_chunks_mut(plane)
            .enumerate()
            .for_each(|(i, o)| f(i, o));
        return;
    }
    for (i, o) in out.chunks_mut(plane).enumerate() {
        f(i, o);
    }
}

/// Channel `c`'s elements, plane by plane.
fn planes<T: Copy>(
    x: &[T],
    c: usize,
    (n, ch, rest): (usize, usize, usize),
) -> impl Iterator<Item = &[T]> {
    (0..n).map(move |b| &x[(b * ch + c) * rest..(b * ch + c + 1) * rest])
}

/// Mean and biased variance of one channel, shifted by its first element.
fn moments<T: NormElem>(x: &[T], c: usize, dims: (usize, usize, usize)) -> (f64, f64) {
    let count = (dims.0 * dims.2) as f64;
    let Some(&first) = planes(x, c, dims).flat_map(|p| p.first()).next() else {
        return (0.0, 0.0);
    };
    let shift = first.to_f64();
    let mut sum = 0f64;
    for p in planes(x, c, dims) {
        sum += p.iter().map(|v| v.to_f64() - shift).sum::<f64>();
    }
    let mean = shift + sum / count;
    let mut sq = 0f64;
    for p in planes(x, c, dims) {
        sq += p
            .iter()
            .map(|v| {
                let d = v.to_f64() - mean;
                d * d
            })
            .sum::<f64>();
    }
    (mean, sq / count)
}

fn forward<T: NormElem>(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let dims @ (_, ch, rest) = split_dims(x);
    let shape = x.layout().shape().clone();
    let (xt, s, e) = elems(x);
    let xs = &xt.storage::<T>()[s..e];
    let stats = per_channel(ch, xs.len(), |c| moments(xs, c, dims));
    let (g, b) = (to_f64(gamma), to_f64(beta));
    // y = (x - mean) * scale + beta, scale = gamma / sqrt(var + eps).
    let affine: Vec<(f64, f64, f64)> = stats
        .iter()
        .enumerate()
        .map(|(c, &(m, v))| (m, g[c] / (v + epsilon).sqrt(), b[c]))
        .collect();
    let mut out = vec![T::from_f64(0.0); xs.len()];
    per_plane(&mut out, rest, |p, o| {
        let (m, scale, shift) = affine[p % ch];
        let src = &xs[p * rest..(p + 1) * rest];
        for (o, &v) in o.iter_mut().zip(src) {
            *o = T::from_f64((v.to_f64() - m) * scale + shift);
        }
    });
    let mean = stats.iter().map(|s| T::from_f64(s.0)).collect();
    let var = stats.iter().map(|s| T::from_f64(s.1)).collect();
    let dtype = x.dtype();
    (
        tensor(out, shape, dtype),
        tensor(mean, Shape::new([ch]), dtype),
        tensor(var, Shape::new([ch]), dtype),
    )
}

fn backward<T: NormElem>(
    x: &FlexTensor,
    gamma: &FlexTensor,
    _mean: &FlexTensor,
    variance: &FlexTensor,
    epsilon: f64,
    grad: &FlexTensor,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let dims @ (n, ch, rest) = split_dims(x);
    let shape = x.layout().shape().clone();
    let count = (n * rest) as f64;
    let (xt, s, e) = elems(x);
    let xs = &xt.storage::<T>()[s..e];
    let (dt, ds, de) = elems(grad);
    let dy = &dt.storage::<T>()[ds..de];
    // The stored mean is rounded to the element type, which can be most
    // of a small spread far from zero (1000 + 0.01 * sin in f32): the mean
    // is recomputed in f64 here, shifted as in the forward pass, in the
    // same pass as sum(dy) (beta's gradient) and sum(dy * x_hat) (gamma's),
    // the two means the input gradient subtracts.
    let (g, v) = (to_f64(gamma), to_f64(variance));
    let sums = per_channel(ch, xs.len(), |c| {
        let inv_std = 1.0 / (v[c] + epsilon).sqrt();
        let Some(shift) = planes(xs, c, dims).flat_map(|p| p.first()).next() else {
            return (0.0, inv_std, 0.0, 0.0);
        };
        let shift = shift.to_f64();
        let (mut sd, mut sg, mut sgd) = (0f64, 0f64, 0f64);
        for (px, pg) in planes(xs, c, dims).zip(planes(dy, c, dims)) {
            for (&xv, &gv) in px.iter().zip(pg) {
                let (d, gv) = (xv.to_f64() - shift, gv.to_f64());
                sd += d;
                sg += gv;
                sgd += gv * d;
            }
        }
        let mean_d = sd / count;
        (shift + mean_d, inv_std, sg, (sgd - mean_d * sg) * inv_std)
    });
    // dx = gamma * inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat)).
    let mut dx = vec![T::from_f64(0.0); xs.len()];
    per_plane(&mut dx, rest, |p, o| {
        let c = p % ch;
        let (m, inv_std, sg, sgx) = sums[c];
        let (mg, mgx, scale) = (sg / count, sgx / count, g[c] * inv_std);
        let range = p * rest..(p + 1) * rest;
        for ((o, &xv), &gv) in o.iter_mut().zip(&xs[range.clone()]).zip(&dy[range]) {
            let x_hat = (xv.to_f64() - m) * inv_std;
            *o = T::from_f64(scale * (gv.to_f64() - mg - x_hat * mgx));
        }
    });
    let dtype = x.dtype();
    let gamma_grad = sums.iter().map(|s| T::from_f64(s.3)).collect();
    let beta_grad = sums.iter().map(|s| T::from_f64(s.2)).collect();
    (
        tensor(dx, shape, dtype),
        tensor(gamma_grad, Shape::new([ch]), dtype),
        tensor(beta_grad, Shape::new([ch]), dtype),
    )
}

/// Normalised output, per-channel mean and biased variance.
pub fn batch_norm_train(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    match x.dtype() {
        DType::F32 => forward::<f32>(x, gamma, beta, epsilon),
        DType::F64 => forward::<f64>(x, gamma, beta, epsilon),
        DType::F16 => forward::<f16>(x, gamma, beta, epsilon),
        DType::BF16 => forward::<bf16>(x, gamma, beta, epsilon),
        dtype => panic!("batch_norm_train: unsupported dtype {dtype:?}"),
    }
}

/// Gradients of input, `gamma` and `beta`.
pub fn batch_norm_train_backward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    mean: &FlexTensor,
    variance: &FlexTensor,
    epsilon: f64,
    grad: &FlexTensor,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    match x.dtype() {
        DType::F32 => backward::<f32>(x, gamma, mean, variance, epsilon, grad),
        DType::F64 => backward::<f64>(x, gamma, mean, variance, epsilon, grad),
        DType::F16 => backward::<f16>(x, gamma, mean, variance, epsilon, grad),
        DType::BF16 => backward::<bf16>(x, gamma, mean, variance, epsilon, grad),
        dtype => panic!("batch_norm_train_backward: unsupported dtype {dtype:?}"),
    }
}
