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
use core::mem::MaybeUninit;

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

/// `f(plane, out, state)` for every `[n, c]` plane of `out` and its state,
/// in parallel when large.
fn per_plane_with<T: Send, S: Send>(
    out: &mut [T],
    states: &mut [S],
    plane: usize,
    f: impl Fn(usize, &mut [T], &mut S) + Send + Sync,
) {
    if plane == 0 {
        return;
    }
    // Every plane must get its state, or `filled` would leave planes unwritten.
    assert_eq!(states.len(), out.len() / plane, "one state per plane");
    #[cfg(feature = "rayon")]
    if out.len() >= PAR_MIN_ELEMS {
        use rayon::prelude::*;
        out.par_chunks_mut(plane)
            .zip(states.par_iter_mut())
            .enumerate()
            .for_each(|(i, (o, s))| f(i, o, s));
        return;
    }
    for (i, (o, s)) in out.chunks_mut(plane).zip(states.iter_mut()).enumerate() {
        f(i, o, s);
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

/// Lanes of the sums below: independent running sums, which the compiler
/// keeps in one vector register. A single running sum is a chain of
/// dependent adds it may neither vectorise nor reorder (4-5 cycles per
/// element; instance norm then cost more than the convolutions around it at
/// 256 px).
const LANES: usize = 8;

/// `(sum f(x), ...)` of `K` quantities over `x` (and the matching `y`),
/// in [`LANES`] lanes added in a fixed order: deterministic.
fn lane_sums<T: NormElem, const K: usize>(
    x: &[T],
    y: &[T],
    f: impl Fn(f64, f64) -> [f64; K],
) -> [f64; K] {
    let mut acc = [[0f64; LANES]; K];
    let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (xs, ys) in xc.zip(yc) {
        for l in 0..LANES {
            let v = f(xs[l].to_f64(), ys[l].to_f64());
            for k in 0..K {
                acc[k][l] += v[k];
            }
        }
    }
    let mut out = [0f64; K];
    for k in 0..K {
        out[k] = acc[k].iter().sum();
    }
    for (a, b) in xr.iter().zip(yr) {
        let v = f(a.to_f64(), b.to_f64());
        for k in 0..K {
            out[k] += v[k];
        }
    }
    out
}

/// Mean and biased variance of one channel, from sums of `d = x - shift`
/// and `d^2` in one pass; `shift` is the channel's first element, so `d`
/// is on the scale of the spread (no cancellation to speak of in f64), and
/// a constant channel's mean is exact.
fn moments<T: NormElem>(x: &[T], c: usize, dims: (usize, usize, usize)) -> (f64, f64) {
    let count = (dims.0 * dims.2) as f64;
    let Some(&first) = planes(x, c, dims).flat_map(|p| p.first()).next() else {
        return (0.0, 0.0);
    };
    let shift = first.to_f64();
    let (mut sum, mut sq) = (0f64, 0f64);
    for p in planes(x, c, dims) {
        let [s, q] = lane_sums(p, p, |v, _| {
            let d = v - shift;
            [d, d * d]
        });
        sum += s;
        sq += q;
    }
    let mean_d = sum / count;
    // Clamped at 0 against rounding, keeping NaN (`max` would drop it).
    let var = sq / count - mean_d * mean_d;
    (shift + mean_d, if var < 0.0 { 0.0 } else { var })
}

/// A buffer of `len` elements for [`per_plane_with`] to fill: every element is
/// written before the buffer is read, so it is not zeroed first (a pass
/// over memory as large as the tensor).
fn filled<T: NormElem>(len: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(len);
    fill(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: `fill` wrote every one of the `len` elements.
    unsafe { v.set_len(len) };
    v
}

/// The per-channel statistics `stat(c)` and the output, `write(c,
/// stat, plane, out)` for every plane. With a batch of one (instance
/// norm's case) each plane is one channel, so its statistics and its output
/// are made in one visit, while the plane is still in cache; otherwise
/// every channel's statistics come first.
fn by_plane<T: NormElem, S: Copy + Default + Send + Sync>(
    len: usize,
    (n, ch, rest): (usize, usize, usize),
    stat: impl Fn(usize) -> S + Send + Sync,
    write: impl Fn(usize, S, usize, &mut [MaybeUninit<T>]) + Send + Sync,
) -> (Vec<T>, Vec<S>) {
    let mut stats = vec![S::default(); ch];
    let out = if n == 1 {
        filled(len, |buf| {
            per_plane_with(buf, &mut stats, rest, |c, o, st| {
                *st = stat(c);
                write(c, *st, c, o);
            })
        })
    } else {
        stats = per_channel(ch, len, stat);
        filled(len, |buf| {
            per_plane_with(buf, &mut vec![(); n * ch], rest, |p, o, _| {
                write(p % ch, stats[p % ch], p, o)
            })
        })
    };
    (out, stats)
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
    let (g, b) = (to_f64(gamma), to_f64(beta));
    assert!(
        g.len() == ch && b.len() == ch,
        "batch norm: gamma and beta have {} and {} values for {ch} channels",
        g.len(),
        b.len()
    );
    // y = (x - mean) * scale + beta, scale = gamma / sqrt(var + eps).
    let write = |c: usize, (m, v): (f64, f64), p: usize, o: &mut [MaybeUninit<T>]| {
        let (scale, shift) = (g[c] / (v + epsilon).sqrt(), b[c]);
        for (o, &v) in o.iter_mut().zip(&xs[p * rest..(p + 1) * rest]) {
            o.write(T::from_f64((v.to_f64() - m) * scale + shift));
        }
    };
    let (out, stats) = by_plane(xs.len(), dims, |c| moments(xs, c, dims), write);
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
    _variance: &FlexTensor,
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
    // The stored mean and variance are rounded to the element type: the
    // mean can lose most of a small spread far from zero (1000 + 0.01 * sin
    // in f32), and an f16 variance overflows above 65504. Both are
    // recomputed in f64 here, shifted as in the forward pass, in the same
    // pass as sum(dy) (beta's gradient) and sum(dy * x_hat) (gamma's), the
    // two means the input gradient subtracts.
    let g = to_f64(gamma);
    assert_eq!(
        g.len(),
        ch,
        "batch norm: gamma has {} values for {ch} channels",
        g.len()
    );
    let channel_sums = |c: usize| {
        let Some(shift) = planes(xs, c, dims).flat_map(|p| p.first()).next() else {
            return (0.0, 1.0 / epsilon.sqrt(), 0.0, 0.0);
        };
        let shift = shift.to_f64();
        let (mut sd, mut sdd, mut sg, mut sgd) = (0f64, 0f64, 0f64, 0f64);
        for (px, pg) in planes(xs, c, dims).zip(planes(dy, c, dims)) {
            let [d, dd, g, gd] = lane_sums(px, pg, |xv, gv| {
                let d = xv - shift;
                [d, d * d, gv, gv * d]
            });
            sd += d;
            sdd += dd;
            sg += g;
            sgd += gd;
        }
        let mean_d = sd / count;
        let var = sdd / count - mean_d * mean_d;
        let inv_std = 1.0 / (if var < 0.0 { 0.0 } else { var } + epsilon).sqrt();
        (shift + mean_d, inv_std, sg, (sgd - mean_d * sg) * inv_std)
    };
    // dx = gamma * inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat)).
    let write = |c: usize,
                 (m, inv_std, sg, sgx): (f64, f64, f64, f64),
                 p: usize,
                 o: &mut [MaybeUninit<T>]| {
        let (mg, mgx, scale) = (sg / count, sgx / count, g[c] * inv_std);
        let range = p * rest..(p + 1) * rest;
        for ((o, &xv), &gv) in o.iter_mut().zip(&xs[range.clone()]).zip(&dy[range]) {
            let x_hat = (xv.to_f64() - m) * inv_std;
            o.write(T::from_f64(scale * (gv.to_f64() - mg - x_hat * mgx)));
        }
    };
    let (dx, sums) = by_plane(xs.len(), dims, channel_sums, write);
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
