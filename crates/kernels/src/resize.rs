//! Bilinear doubling of height and width (PyTorch's `interpolate` with
//! scale 2, `align_corners=False`) as one kernel each way on a GPU: the
//! registration U-Net's upsampling.

use burn::tensor::Tensor;

/// `x` ([N, C, H, W]) resized to [N, C, 2H, 2W], with autodiff when `x`
/// tracks gradients. `None` where there is no kernel (a CPU tensor, bf16,
/// H or W below 2, a build without `gpu-core`): the caller keeps its ops.
pub fn double_bilinear(x: &Tensor<4>) -> Option<Tensor<4>> {
    #[cfg(feature = "gpu-core")]
    {
        crate::cube::double_bilinear(x)
    }
    #[cfg(not(feature = "gpu-core"))]
    {
        let _ = x;
        None
    }
}
