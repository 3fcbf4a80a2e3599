//! The convolution weight gradient of Burn's GPU backend that medtrans
//! patches (one im2col kernel instead of one slice assignment per kernel
//! tap; patches/README.md), exposed for its tests.

use burn::tensor::Tensor;

/// d(sum(conv2d(input, w) * out_grad)) / dw for a weight of
/// `weight_shape` ([c_out, c_in, kh, kw], no groups), through Burn's
/// im2col path. `None` off the GPU, under fusion, or where that path
/// declines the shape (a pointwise 1x1).
#[doc(hidden)]
pub fn conv2d_weight_grad_im2col(
    input: &Tensor<4>,
    out_grad: &Tensor<4>,
    weight_shape: [usize; 4],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
) -> Option<Tensor<4>> {
    #[cfg(feature = "gpu-core")]
    {
        crate::cube::conv2d_weight_grad_im2col(
            input,
            out_grad,
            weight_shape,
            stride,
            padding,
            dilation,
        )
    }
    #[cfg(not(feature = "gpu-core"))]
    {
        let _ = (input, out_grad, weight_shape, stride, padding, dilation);
        None
    }
}
