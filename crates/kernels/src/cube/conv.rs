//! Burn's im2col weight gradient, reached directly: medtrans patches it
//! (patches/burn-cubecl) and tests it, though autotune decides by timing
//! whether a given device ever runs it.

use burn::tensor::Tensor;

/// See [`crate::conv::conv2d_weight_grad_im2col`].
pub(crate) fn conv2d_weight_grad_im2col(
    input: &Tensor<4>,
    out_grad: &Tensor<4>,
    weight_shape: [usize; 4],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
) -> Option<Tensor<4>> {
    #[cfg(not(feature = "fusion"))]
    {
        use super::{cube, dispatch};
        use burn::tensor::ops::ConvOptions;
        use burn_cubecl::kernel::conv::wgrad_im2col;
        use burn_cubecl::ops::{
            permute_nchw_to_nhwc, permute_nchw_to_nhwc_shape, permute_nhwc_to_nchw,
        };
        let input = permute_nchw_to_nhwc(cube(input.clone().into_dispatch())?);
        let out_grad = permute_nchw_to_nhwc(cube(out_grad.clone().into_dispatch())?);
        let shape = permute_nchw_to_nhwc_shape(weight_shape.into());
        let options = ConvOptions::new(stride, padding, dilation, 1);
        let grad = wgrad_im2col::<2>(input, out_grad, shape, options).ok()?;
        Some(Tensor::from_dispatch(dispatch(permute_nhwc_to_nchw(grad))))
    }
    #[cfg(feature = "fusion")]
    {
        let _ = (input, out_grad, weight_shape, stride, padding, dilation);
        None
    }
}
