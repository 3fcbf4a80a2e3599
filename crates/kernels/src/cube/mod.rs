//! The kernels on Burn's CubeCL backend (wgpu), and the extension traits
//! that route a `Tensor` to them through Burn's dispatch (and its fusion
//! backend when that is built in). One file per operation.

mod act;
mod adam;
mod conv;
mod norm;
mod pad;
mod resize;

pub(crate) use act::leaky_relu;
pub(crate) use adam::{adam_flat, adam_step};
pub(crate) use conv::conv2d_weight_grad_im2col;
pub(crate) use norm::instance_norm;
pub(crate) use pad::reflect_pad;
pub(crate) use resize::double_bilinear;

use burn::backend::TensorMetadata;
use burn::tensor::{DType, Device, Shape, Tensor};
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::ops::permute_nhwc_to_nchw;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::{CubeCount, CubeDim};

/// The CubeCL tensor inside an untracked f32 tensor of Burn's unfused GPU
/// backend, for ops Burn's backend extension cannot express (lists of
/// tensors; a tensor handed to a kernel of Burn's own).
#[cfg(not(feature = "fusion"))]
fn cube(t: burn::tensor::DispatchTensor) -> Option<CubeTensor> {
    use burn::backend::{BackendTensor, DispatchTensorKind};
    match t.kind {
        DispatchTensorKind::Cube(BackendTensor::Float(c)) if c.dtype == DType::F32 => Some(c),
        _ => None,
    }
}

/// [`cube`]'s inverse: an untracked tensor of Burn's GPU backend.
#[cfg(not(feature = "fusion"))]
fn dispatch(c: CubeTensor) -> burn::tensor::DispatchTensor {
    use burn::backend::{BackendTensor, DispatchAutodiffContext, DispatchTensorKind};
    burn::tensor::DispatchTensor {
        kind: DispatchTensorKind::Cube(BackendTensor::Float(c)),
        autodiff: DispatchAutodiffContext::Disabled,
    }
}

/// Float types the element-wise kernels take (WGSL has no bf16).
const HALF_OR_SINGLE: &[DType] = &[DType::F32, DType::F16];

/// Whether a kernel covers `t`: on a GPU, in one of `dtypes`.
fn covered<const D: usize>(t: &Tensor<D>, dtypes: &[DType]) -> bool {
    t.device() != Device::flex() && dtypes.contains(&t.dtype())
}

/// One unit per element of a tensor of `n` elements.
fn elementwise(client: &cubecl::client::Client, n: usize) -> (CubeCount, CubeDim) {
    let cube_dim = CubeDim::new(client, n);
    (
        cubecl::calculate_cube_count_elemwise(client, n, cube_dim),
        cube_dim,
    )
}

/// A new contiguous tensor shaped and typed like `like`, uninitialised
/// (no kernel: the allocation alone).
fn empty_like(like: &CubeTensor) -> CubeTensor {
    empty_device_contiguous_dtype(
        like.client.clone(),
        like.device.clone(),
        like.shape(),
        like.dtype,
    )
}

/// A new tensor of NCHW `shape` over an NHWC buffer, uninitialised: the
/// layout Burn's GPU convolutions work in. A convolution given it as its
/// input (or output gradient) reads it without first copying it into that
/// layout, as it must an NCHW tensor (a launch per call).
fn empty_channels_last(like: &CubeTensor, shape: Shape) -> CubeTensor {
    let nhwc: Shape = [shape[0], shape[2], shape[3], shape[1]].into();
    permute_nhwc_to_nchw(empty_device_contiguous_dtype(
        like.client.clone(),
        like.device.clone(),
        nhwc,
        like.dtype,
    ))
}

/// Helpers the kernels share: where an element lies, and the
/// activation's derivative.
mod index {
    use cubecl::prelude::*;

    /// Where element `i` (row-major over H, W) of plane `p` (n * C + c) of
    /// a rank-4 tensor lies, through its strides: NCHW, or the NHWC buffer
    /// a convolution leaves (and these kernels write), alike.
    #[cube]
    pub fn offset<F: Float>(t: &Tensor<F>, p: usize, i: usize) -> usize {
        let (c, w) = (t.shape(1), t.shape(3));
        (p / c) * t.stride(0)
            + (p % c) * t.stride(1)
            + (i / w) * t.stride(2)
            + (i % w) * t.stride(3)
    }

    /// [`offset`] in a tensor the kernel writes (CubeCL does not lend a
    /// written tensor as a read-only one).
    #[cube]
    pub fn offset_out<F: Float>(t: &mut Tensor<F>, p: usize, i: usize) -> usize {
        let (c, w) = (t.shape(1), t.shape(3));
        (p / c) * t.stride(0)
            + (p % c) * t.stride(1)
            + (i / w) * t.stride(2)
            + (i % w) * t.stride(3)
    }

    /// A (leaky) ReLU's derivative at x^ (or at its output: the same
    /// sign), as Burn's ops have it on the CPU path: 0 at exactly 0 for
    /// ReLU, 1 there for a leaky ReLU (PyTorch takes the slope). A constant
    /// plane normalises to exact zeros, so this shows.
    #[cube]
    pub fn act_slope(h: f32, slope: f32) -> f32 {
        let at_zero = select(slope > f32::new(0.0), f32::new(1.0), f32::new(0.0));
        let below = select(h == f32::new(0.0), at_zero, slope);
        select(h > f32::new(0.0), f32::new(1.0), below)
    }
}
