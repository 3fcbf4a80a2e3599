//! (Leaky) ReLU without a norm before it (R's and the U-Net's, the
//! PatchGAN's first) as one kernel forward and one backward on a GPU.

use burn::tensor::Tensor;

/// `x` where `x` > 0, else `slope` * `x` (`slope` >= 0; 0 is ReLU), with
/// autodiff when `x` ([N, C, H, W]) tracks gradients. `None` where there is
/// no kernel (a CPU tensor, bf16, or a build without `gpu-core`).
pub fn leaky_relu(x: &Tensor<4>, slope: f64) -> Option<Tensor<4>> {
    #[cfg(feature = "gpu-core")]
    {
        crate::cube::leaky_relu(x, slope as f32)
    }
    #[cfg(not(feature = "gpu-core"))]
    {
        let _ = (x, slope);
        None
    }
}
