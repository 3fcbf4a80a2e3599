use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, InstanceNorm, InstanceNormConfig};
use burn::tensor::activation::{leaky_relu, relu};
use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};

/// Reflect-pad H and W by `p` (PyTorch's `ReflectionPad2d`): the padding
/// the reference generators use, which avoids the dark borders zero
/// padding leaves in medical images.
///
/// How depends on the device. On a GPU, medtrans's own kernel
/// (medtrans-kernels): one launch forward, one backward. Without it (bf16),
/// two index selects: one kernel each, and a zero fill and a scatter-add
/// each backward, where Burn's `pad(.., PadMode::Reflect)` launched about
/// 44 kernels forward and backward (slices, flips, slice assigns) per
/// call. On the CPU the selects
/// scatter-adds were 5-6 % of a training step, and Burn's pad (copies, no
/// scatter) made a step 10-24 % faster (docs/benchmarks.md).
pub(crate) fn reflect(x: Tensor<4>, p: usize) -> Tensor<4> {
    if on_cpu(&x.device()) {
        x.pad((p, p, p, p), burn::tensor::ops::PadMode::Reflect)
    } else if let Some(y) = medtrans_kernels::pad::reflect_pad(&x, p) {
        y
    } else {
        reflect_by_selects(x, p)
    }
}

/// Whether `device` is Burn's flex CPU backend (plain or with autodiff:
/// devices compare by hardware, not by autodiff).
fn on_cpu(device: &Device) -> bool {
    *device == Device::flex()
}

/// Reflect padding as two index selects (the GPU's way).
pub(crate) fn reflect_by_selects(x: Tensor<4>, p: usize) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let device = x.device();
    x.select(3, reflect_index(w, p, &device))
        .select(2, reflect_index(h, p, &device))
}

/// Source index of each of `n + 2p` padded positions: -1 reads 1, n reads
/// n - 2 (the edge itself is not repeated). Made once per (n, p, device):
/// a GPU then gets no upload per pad and step.
fn reflect_index(n: usize, p: usize, device: &Device) -> Tensor<1, Int> {
    crate::constants::constant(format!("reflect index {n} {p}"), device, || {
        reflect_index_new(n, p, device)
    })
}

fn reflect_index_new(n: usize, p: usize, device: &Device) -> Tensor<1, Int> {
    assert!(
        p < n,
        "reflect padding {p} needs more than {p} pixels, got {n}"
    );
    let (n, p) = (n as i64, p as i64);
    let idx: Vec<i32> = (-p..n + p)
        .map(|i| {
            let i = i.abs();
            (if i >= n { 2 * (n - 1) - i } else { i }) as i32
        })
        .collect();
    let len = idx.len();
    Tensor::from_data(TensorData::new(idx, [len]), device)
}

/// PyTorch's InstanceNorm2d default: no affine parameters, eps 1e-5.
pub(crate) fn instance_norm(channels: usize, device: &Device) -> InstanceNorm {
    InstanceNormConfig::new(channels)
        .with_affine(false)
        .init(device)
}

/// Instance norm (no affine), by device.
///
/// On the CPU, Burn's `batch_norm_train` on the input seen as `[1, n * c,
/// h, w]`: one op that autodiff differentiates as a whole, which the
/// patched flex (patches/README.md) runs as one pass per plane forward and
/// backward instead of about ten tensor ops each way. Its statistics are
/// in f64 and shifted, so a constant plane comes out exactly zero.
///
/// On a GPU in f32 or f16, medtrans's own kernel (medtrans-kernels): one
/// launch forward and one backward, statistics in f32, each plane shifted
/// by its first element as the CPU's are. Otherwise (bf16, or a build
/// without the kernels) Burn's instance norm (group norm per channel),
/// with its statistics in f32 whatever the input's dtype: Burn widens f16
/// itself; bf16's 8-bit mantissa would lose x - mean to cancellation
/// (gradients 20 % off f32's in the precision test), and the same shift
/// first (see [`shift_planes`]).
pub(crate) fn normalize(norm: &InstanceNorm, x: Tensor<4>) -> Tensor<4> {
    // instance_norm_2d and the kernel have no affine parameters; an affine
    // norm (none is built today) keeps Burn's path.
    if norm.gamma.is_none() && norm.beta.is_none() {
        if on_cpu(&x.device()) {
            return instance_norm_2d(x, norm.epsilon);
        }
        if let Some(y) = medtrans_kernels::norm::instance_norm(&x, norm.epsilon) {
            return y;
        }
    }
    let dtype: FloatDType = x.dtype().into();
    if dtype == FloatDType::BF16 {
        norm.forward(shift_planes(x.cast(FloatDType::F32)))
            .cast(dtype)
    } else {
        norm.forward(shift_planes(x))
    }
}

/// `act(normalize(x))`, `act` a (leaky) ReLU of `slope` below zero (0 is
/// ReLU). On a GPU one kernel each way (medtrans-kernels) instead of the
/// norm's and the activation's two comparisons and masked fills.
pub(crate) fn normalize_act(norm: &InstanceNorm, x: Tensor<4>, slope: f64) -> Tensor<4> {
    if norm.gamma.is_none() && norm.beta.is_none() && !on_cpu(&x.device()) {
        if let Some(y) = medtrans_kernels::norm::instance_norm_act(&x, norm.epsilon, slope as f32) {
            return y;
        }
    }
    leaky(normalize(norm, x), slope)
}

/// A (leaky) ReLU of `slope` below zero (0 is ReLU) with no norm before
/// it: on a GPU one kernel each way (medtrans-kernels) instead of Burn's
/// comparison, product and masked fill.
pub(crate) fn leaky(x: Tensor<4>, slope: f64) -> Tensor<4> {
    if !on_cpu(&x.device()) {
        if let Some(y) = medtrans_kernels::act::leaky_relu(&x, slope) {
            return y;
        }
    }
    if slope == 0.0 {
        relu(x)
    } else {
        leaky_relu(x, slope)
    }
}

/// `x` minus each plane's first element. Instance norm does not change
/// under a per-plane shift (so the shift is detached: its gradient is zero
/// in exact arithmetic), but a constant plane becomes exact zeros, whose
/// mean and variance are exactly 0: it normalises to exactly 0 rather than
/// to rounding noise over sqrt(eps). Without it the empty planes of an
/// unmasked head came out of a GPU up to 39 intensity units away from the
/// CPU's (issue 28). It also centres the sums a little, as the CPU's shifted
/// sums do.
pub(crate) fn shift_planes(x: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    if h * w == 0 {
        return x;
    }
    let first = x.clone().slice([0..n, 0..c, 0..1, 0..1]).detach();
    x - first
}

/// Instance norm without affine parameters as one `batch_norm_train` op
/// (works on any device; [`normalize`]'s CPU path).
pub fn instance_norm_2d(x: Tensor<4>, epsilon: f64) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let dtype = x.dtype();
    // Identity affine: untracked constants, so autodiff sends no gradient
    // to them.
    let ones = Tensor::<1>::ones([n * c], (&device, dtype));
    let zeros = Tensor::<1>::zeros([n * c], (&device, dtype));
    burn::tensor::module::batch_norm_train(x.reshape([1, n * c, h, w]), ones, zeros, epsilon)
        .output
        .reshape([n, c, h, w])
}

/// A convolution without built-in padding (padding comes from `reflect`).
pub(crate) fn conv(
    cin: usize,
    cout: usize,
    k: usize,
    init: &Initializer,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_initializer(init.clone())
        .init(device)
}

/// ResNet block: reflect-pad 1, 3x3 conv, IN, ReLU, reflect-pad 1, 3x3 conv,
/// IN, plus the input. Shared by the ResNet generator and R.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    conv1: Conv2d,
    norm1: InstanceNorm,
    conv2: Conv2d,
    norm2: InstanceNorm,
}

impl ResidualBlock {
    pub(crate) fn new(channels: usize, init: &Initializer, device: &Device) -> Self {
        Self {
            conv1: conv(channels, channels, 3, init, device),
            norm1: instance_norm(channels, device),
            conv2: conv(channels, channels, 3, init, device),
            norm2: instance_norm(channels, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = normalize_act(&self.norm1, self.conv1.forward(reflect(x.clone(), 1)), 0.0);
        let h = normalize(&self.norm2, self.conv2.forward(reflect(h, 1)));
        x + h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::ops::PadMode;

    /// The selects give Burn's own reflect padding (which matches PyTorch's,
    /// tests/torch_reference.rs), values and gradients, at the sizes the
    /// networks use.
    #[test]
    fn the_cpu_is_told_apart() {
        assert!(on_cpu(&Device::flex()));
        assert!(on_cpu(&Device::flex().autodiff()));
    }

    #[test]
    fn reflect_padding_equals_burns_pad() {
        let d = Device::flex().autodiff();
        for (shape, p) in [([2, 3, 7, 5], 1), ([1, 2, 9, 8], 3), ([1, 1, 4, 4], 3)] {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n).map(|i| ((i * 37) % 23) as f32 - 11.0).collect();
            let x = Tensor::<4>::from_data(TensorData::new(v, shape), &d).require_grad();
            let probe = |t: Tensor<4>| {
                let m: usize = t.dims().iter().product();
                let w: Vec<f32> = (0..m).map(|i| ((i * 13) % 7) as f32).collect();
                (t.clone() * Tensor::<4>::from_data(TensorData::new(w, t.dims()), &d)).sum()
            };
            let ours = reflect_by_selects(x.clone(), p);
            let burns = x.clone().pad((p, p, p, p), PadMode::Reflect);
            assert_eq!(ours.dims(), burns.dims());
            let diff = (ours.clone() - burns.clone())
                .abs()
                .max()
                .into_scalar::<f32>();
            assert_eq!(diff, 0.0, "{shape:?} pad {p}: values");
            let g_ours = x.grad(&probe(ours).backward()).unwrap();
            let g_burn = x.grad(&probe(burns).backward()).unwrap();
            let diff = (g_ours - g_burn).abs().max().into_scalar::<f32>();
            assert!(diff < 1e-5, "{shape:?} pad {p}: gradients differ by {diff}");
        }
    }

    /// The GPU's path, run here on flex: Burn's instance norm of the
    /// shifted planes. A constant plane (one huge, one small, one zero)
    /// comes out exactly 0, where Burn's norm alone leaves rounding noise
    /// over sqrt(eps); other planes, values and gradients, are those of
    /// Burn's norm without the shift.
    #[test]
    fn shifted_planes_normalise_constants_to_zero() {
        let d = Device::flex().autodiff();
        let norm = instance_norm(4, &d);
        let (h, w) = (37, 41);
        let mut v: Vec<f32> = Vec::new();
        for c in [1234.5678f32, 0.1, 0.0] {
            v.extend(std::iter::repeat_n(c, h * w));
        }
        v.extend((0..h * w).map(|i| 100.0 + ((i * 37) % 23) as f32 * 0.37));
        let x = Tensor::<4>::from_data(TensorData::new(v, [1, 4, h, w]), &d).require_grad();
        let plain = norm.forward(x.clone());
        let noise = plain.clone().slice([0..1, 0..1, 0..h, 0..w]).abs().max();
        assert!(
            noise.into_scalar::<f32>() > 0.0,
            "Burn's norm alone: this constant plane is expected to show noise"
        );
        let shifted = norm.forward(shift_planes(x.clone()));
        let consts = shifted.clone().slice([0..1, 0..3, 0..h, 0..w]);
        assert_eq!(consts.abs().max().into_scalar::<f32>(), 0.0);
        let a = shifted.clone().slice([0..1, 3..4, 0..h, 0..w]);
        let b = plain.clone().slice([0..1, 3..4, 0..h, 0..w]);
        let diff = (a - b).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-4, "varying plane differs by {diff}");
        let probe = |t: Tensor<4>| {
            let wts: Vec<f32> = (0..4 * h * w)
                .map(|i| ((i * 13) % 7) as f32 - 3.0)
                .collect();
            (t * Tensor::<4>::from_data(TensorData::new(wts, [1, 4, h, w]), &d)).sum()
        };
        let g_s = x.grad(&probe(shifted).backward()).unwrap();
        let g_p = x.grad(&probe(plain).backward()).unwrap();
        let g_s = g_s.slice([0..1, 3..4, 0..h, 0..w]);
        let g_p = g_p.slice([0..1, 3..4, 0..h, 0..w]);
        let diff = (g_s - g_p).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-3, "varying plane's gradient differs by {diff}");
    }
}
