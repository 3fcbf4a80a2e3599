//! Reflect padding (the ResNet generator's, 20 pads a pass) as one kernel
//! forward and one backward on a GPU.

use burn::tensor::Tensor;

/// `x` ([N, C, H, W]) reflect-padded by `pad` on every side of H and W,
/// with autodiff when `x` tracks gradients. `None` where there is no
/// kernel (a CPU tensor, bf16, or a build without `gpu-core`).
pub fn reflect_pad(x: &Tensor<4>, pad: usize) -> Option<Tensor<4>> {
    #[cfg(feature = "gpu-core")]
    {
        crate::cube::reflect_pad(x, pad)
    }
    #[cfg(not(feature = "gpu-core"))]
    {
        let _ = (x, pad);
        None
    }
}
