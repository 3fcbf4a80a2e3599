use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, InstanceNorm, InstanceNormConfig};
use burn::tensor::activation::relu;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, FloatDType, Tensor};

/// Reflect-pad then convolve: the padding the reference generators use,
/// which avoids the dark borders zero padding leaves in medical images.
pub(crate) fn reflect(x: Tensor<4>, p: usize) -> Tensor<4> {
    x.pad((p, p, p, p), PadMode::Reflect)
}

/// PyTorch's InstanceNorm2d default: no affine parameters, eps 1e-5.
pub(crate) fn instance_norm(channels: usize, device: &Device) -> InstanceNorm {
    InstanceNormConfig::new(channels)
        .with_affine(false)
        .init(device)
}

/// Instance norm with its statistics in f32 whatever the input's dtype.
/// Burn widens f16 itself; bf16's 8-bit mantissa would lose x - mean to
/// cancellation (gradients 20 % off f32's in the precision test).
pub(crate) fn normalize(norm: &InstanceNorm, x: Tensor<4>) -> Tensor<4> {
    let dtype: FloatDType = x.dtype().into();
    if dtype == FloatDType::BF16 {
        norm.forward(x.cast(FloatDType::F32)).cast(dtype)
    } else {
        norm.forward(x)
    }
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
        let h = relu(normalize(
            &self.norm1,
            self.conv1.forward(reflect(x.clone(), 1)),
        ));
        let h = normalize(&self.norm2, self.conv2.forward(reflect(h, 1)));
        x + h
    }
}
