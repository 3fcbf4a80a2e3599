//! Instance norm (no affine parameters, PyTorch's InstanceNorm2d default)
//! as one kernel forward and one backward on a GPU, where Burn composes it
//! from about seven kernels each way.
//!
//! A constant plane normalises to exactly 0 (each plane is shifted by its
//! first element before its statistics, as the CPU kernel's are): empty
//! planes of an unmasked volume translate to the same background on every
//! device (issue 28, item 5).

use burn::tensor::Tensor;

/// `x` ([N, C, H, W]) normalised per plane, with autodiff when `x` tracks
/// gradients. `None` where there is no kernel (a CPU tensor, bf16, or a
/// build without `gpu-core`): the caller keeps Burn's ops.
pub fn instance_norm(x: &Tensor<4>, epsilon: f64) -> Option<Tensor<4>> {
    instance_norm_act(x, epsilon, 1.0)
}

/// [`instance_norm`] followed by a (leaky) ReLU in the same kernel, forward
/// and backward: `slope` is the activation's slope below zero (0 for ReLU,
/// 0.2 for the discriminators' leaky ReLU, 1 for none).
pub fn instance_norm_act(x: &Tensor<4>, epsilon: f64, slope: f32) -> Option<Tensor<4>> {
    #[cfg(feature = "gpu-core")]
    {
        crate::cube::instance_norm(x, epsilon as f32, slope)
    }
    #[cfg(not(feature = "gpu-core"))]
    {
        let _ = (x, epsilon, slope);
        None
    }
}
