//! Instance norm, with an optional (leaky) ReLU, as one kernel forward
//! and one backward, with its own autodiff node.

use super::{covered, empty_channels_last, HALF_OR_SINGLE};
use burn::backend::{backend_extension, tensor::FloatTensor, Backend, Dispatch, TensorMetadata};
use burn::tensor::{DType, Tensor};
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeBackend;
use cubecl::prelude::{CubeCount, CubeDim};

/// Instance norm's forward and backward kernels, each with an optional
/// (leaky) ReLU after the norm: `slope` is the activation's slope below 0
/// (1: none, 0: ReLU, 0.2: the discriminators' leaky ReLU). A trait of its
/// own: it routes autodiff tensors to its own backward (`Autodiff` below),
/// which Adam's, given plain tensors, does not need.
#[backend_extension(Cube, Fusion: cfg(feature = "fusion"), Autodiff)]
pub trait NormOps: Backend {
    /// act(instance norm of `x`) for `x` [N, C, H, W], no affine parameters.
    #[fusion(dtype = x, shape = x)]
    fn instance_norm(x: FloatTensor<Self>, epsilon: f32, slope: f32) -> FloatTensor<Self>;

    /// The forward pass and the statistics its backward needs: (y, per
    /// plane its first element, shifted mean and 1 / sqrt(var + eps), f32,
    /// [N * C * 3]).
    #[fusion(meta = stats_meta)]
    fn instance_norm_stats(
        x: FloatTensor<Self>,
        epsilon: f32,
        slope: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// dL/dx from dL/dy. `saved` is the forward's input `x` when
    /// `from_input` (the normalised values are recomputed from it and the
    /// statistics), else its output y (no activation: y is the normalised
    /// values). Per plane, with g' = g * act'(x^):
    /// rstd * (g' - mean(g') - x^ * mean(g' * x^)).
    #[fusion(dtype = saved, shape = saved)]
    fn instance_norm_backward(
        saved: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        slope: f32,
        from_input: bool,
    ) -> FloatTensor<Self>;
}

#[cfg(feature = "fusion")]
fn stats_meta(
    x: &burn::backend::fusion::custom::TensorSpec,
    _epsilon: &f32,
    _slope: &f32,
) -> (
    burn::backend::fusion::custom::TensorSpec,
    burn::backend::fusion::custom::TensorSpec,
) {
    let planes = x.shape[0] * x.shape[1];
    (
        x.clone(),
        burn::backend::fusion::custom::TensorSpec::new([planes * 3].into(), DType::F32),
    )
}

pub(crate) fn instance_norm(x: &Tensor<4>, epsilon: f32, slope: f32) -> Option<Tensor<4>> {
    if !covered(x, HALF_OR_SINGLE) {
        return None;
    }
    let [n, c, h, w] = x.dims();
    if n * c * h * w == 0 || n * c > MAX_PLANES {
        return None;
    }
    Some(Tensor::from_dispatch(<Dispatch as NormOps>::instance_norm(
        x.clone().into_dispatch(),
        epsilon,
        slope,
    )))
}

/// One cube (workgroup) per plane, along one dimension of the launch grid,
/// whose size WebGPU caps at 65535.
const MAX_PLANES: usize = 65535;
/// Units per cube in the norm kernels (a power of two: the reductions
/// halve it).
const NORM_BLOCK: usize = 256;

impl NormOps for CubeBackend {
    fn instance_norm(x: CubeTensor, epsilon: f32, slope: f32) -> CubeTensor {
        Self::instance_norm_stats(x, epsilon, slope).0
    }

    fn instance_norm_stats(x: CubeTensor, epsilon: f32, slope: f32) -> (CubeTensor, CubeTensor) {
        // Read through its strides: a convolution's output is an NHWC
        // buffer seen as NCHW, and a copy to NCHW first would be a launch.
        // Written the same way, for the next convolution.
        let shape = x.shape();
        let (planes, plane) = (shape[0] * shape[1], shape[2] * shape[3]);
        let y = empty_channels_last(&x, shape.clone());
        let stats = empty_device_contiguous_dtype(
            x.client.clone(),
            x.device.clone(),
            [planes * 3].into(),
            DType::F32,
        );
        let client = x.client.clone();
        let dtype = burn::backend::cubecl::dtype_to_storage_type(x.dtype);
        kernels::instance_norm_forward::launch(
            &client,
            CubeCount::Static(planes as u32, 1, 1),
            CubeDim::new_1d(NORM_BLOCK as u32),
            x.into_tensor_arg(),
            y.clone().into_tensor_arg(),
            stats.clone().into_tensor_arg(),
            plane as u32,
            epsilon,
            slope,
            NORM_BLOCK,
            dtype,
        );
        (y, stats)
    }

    fn instance_norm_backward(
        saved: CubeTensor,
        stats: CubeTensor,
        grad: CubeTensor,
        slope: f32,
        from_input: bool,
    ) -> CubeTensor {
        // `saved` and `grad` are read through their strides (see above).
        assert_eq!(grad.dtype, saved.dtype, "instance norm: gradient dtype");
        let stats = into_contiguous(stats);
        let shape = saved.shape();
        let (planes, plane) = (shape[0] * shape[1], shape[2] * shape[3]);
        let dx = empty_channels_last(&saved, shape.clone());
        let client = saved.client.clone();
        let dtype = burn::backend::cubecl::dtype_to_storage_type(saved.dtype);
        kernels::instance_norm_backward::launch(
            &client,
            CubeCount::Static(planes as u32, 1, 1),
            CubeDim::new_1d(NORM_BLOCK as u32),
            saved.into_tensor_arg(),
            stats.into_tensor_arg(),
            grad.into_tensor_arg(),
            dx.clone().into_tensor_arg(),
            plane as u32,
            slope,
            NORM_BLOCK,
            from_input,
            dtype,
        );
        dx
    }
}

/// Instance norm's backward node. It keeps the forward's output y when
/// there is no activation (y is the normalised values, and the next layer
/// keeps it alive anyway), else its input x, from which the backward
/// kernel recomputes them exactly; and the statistics.
#[derive(Debug)]
struct InstanceNormBackward;

impl<B: Backend + NormOps> Backward<B, 1> for InstanceNormBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (saved, stats, slope) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| {
            B::instance_norm_backward(saved, stats, g, slope, slope != 1.0)
        });
    }
}

impl<B: Backend + NormOps, C: CheckpointStrategy> NormOps for Autodiff<B, C> {
    fn instance_norm(x: FloatTensor<Self>, epsilon: f32, slope: f32) -> FloatTensor<Self> {
        let guard = x.node();
        let x = x.into_primitive();
        let (y, stats) = B::instance_norm_stats(x.clone(), epsilon, slope);
        match InstanceNormBackward
            .prepare::<C>([guard])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let saved = if slope == 1.0 { y.clone() } else { x };
                prep.finish((saved, stats, slope), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn instance_norm_stats(
        _x: FloatTensor<Self>,
        _epsilon: f32,
        _slope: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        unreachable!("instance_norm_stats is the inner backend's half of instance_norm")
    }

    fn instance_norm_backward(
        _saved: FloatTensor<Self>,
        _stats: FloatTensor<Self>,
        _grad: FloatTensor<Self>,
        _slope: f32,
        _from_input: bool,
    ) -> FloatTensor<Self> {
        unreachable!("no second derivative of instance norm")
    }
}

mod kernels {
    use super::super::index::{act_slope, offset, offset_out};
    use cubecl::prelude::*;

    /// Sums `a` and `b` over the cube's units into `sa[0]` and `sb[0]`
    /// (shared memory, `block` units, a power of two), every unit taking
    /// part; ends synchronised.
    #[cube]
    fn cube_sum2(sa: &mut Shared<[f32]>, sb: &mut Shared<[f32]>, a: f32, b: f32) {
        let tid = UNIT_POS as usize;
        sa[tid] = a;
        sb[tid] = b;
        sync_cube();
        let mut stride = CUBE_DIM_X as usize / 2;
        while stride > 0 {
            if tid < stride {
                let a2 = sa[tid + stride];
                let b2 = sb[tid + stride];
                sa[tid] += a2;
                sb[tid] += b2;
            }
            sync_cube();
            stride /= 2;
        }
    }

    /// One plane per cube: its mean and variance in f32, each element
    /// first shifted by the plane's first (a constant plane is exact zeros
    /// and normalises to exactly 0), the variance from a second pass over
    /// the centred values (no cancellation of sum(x^2) - n mean^2); then
    /// the activation (x^ below 0 times `slope`).
    #[cube(launch)]
    pub fn instance_norm_forward<F: Float>(
        x: &Tensor<F>,
        y: &mut Tensor<F>,
        stats: &mut Tensor<f32>,
        plane: u32,
        epsilon: f32,
        slope: f32,
        #[comptime] block: usize,
        #[define(F)] _dtype: ElemType,
    ) {
        let n = plane as usize;
        let p = CUBE_POS_X as usize;
        let tid = UNIT_POS as usize;
        let units = CUBE_DIM_X as usize;
        let mut sa = Shared::<[f32]>::new_slice(block);
        let mut sb = Shared::<[f32]>::new_slice(block);
        let first = f32::cast_from(x[offset(x, p, 0)]);
        let mut sum = f32::new(0.0);
        let mut i = tid;
        while i < n {
            sum += f32::cast_from(x[offset(x, p, i)]) - first;
            i += units;
        }
        cube_sum2(&mut sa, &mut sb, sum, f32::new(0.0));
        let mean = sa[0] / f32::cast_from(plane);
        sync_cube();
        let mut squares = f32::new(0.0);
        let mut j = tid;
        while j < n {
            let d = f32::cast_from(x[offset(x, p, j)]) - first - mean;
            squares += d * d;
            j += units;
        }
        cube_sum2(&mut sa, &mut sb, squares, f32::new(0.0));
        let r = f32::new(1.0) / (sa[0] / f32::cast_from(plane) + epsilon).sqrt();
        let mut k = tid;
        while k < n {
            let h = (f32::cast_from(x[offset(x, p, k)]) - first - mean) * r;
            let out = select(h > f32::new(0.0), h, h * slope);
            let o = offset_out(y, p, k);
            y[o] = F::cast_from(out);
            k += units;
        }
        if tid == 0 {
            stats[3 * p] = first;
            stats[3 * p + 1] = mean;
            stats[3 * p + 2] = r;
        }
    }

    /// dx = rstd * (g' - mean(g') - x^ * mean(g' * x^)) per plane, g' = g
    /// times the activation's slope at x^ (PyTorch's instance-norm
    /// gradient without affine parameters, after its ReLU's). x^ comes
    /// from the saved input and the statistics when `from_input`, else it
    /// is the saved output.
    #[cube(launch)]
    pub fn instance_norm_backward<F: Float>(
        saved: &Tensor<F>,
        stats: &Tensor<f32>,
        grad: &Tensor<F>,
        dx: &mut Tensor<F>,
        plane: u32,
        slope: f32,
        #[comptime] block: usize,
        #[comptime] from_input: bool,
        #[define(F)] _dtype: ElemType,
    ) {
        let n = plane as usize;
        let p = CUBE_POS_X as usize;
        let tid = UNIT_POS as usize;
        let units = CUBE_DIM_X as usize;
        let mut sa = Shared::<[f32]>::new_slice(block);
        let mut sb = Shared::<[f32]>::new_slice(block);
        let first = stats[3 * p];
        let mean = stats[3 * p + 1];
        let r = stats[3 * p + 2];
        let mut sum_g = f32::new(0.0);
        let mut sum_gh = f32::new(0.0);
        let mut i = tid;
        while i < n {
            let h = normalised(saved, p, i, first, mean, r, from_input);
            let g = f32::cast_from(grad[offset(grad, p, i)]) * act_slope(h, slope);
            sum_g += g;
            sum_gh += g * h;
            i += units;
        }
        cube_sum2(&mut sa, &mut sb, sum_g, sum_gh);
        let count = f32::cast_from(plane);
        let mean_g = sa[0] / count;
        let mean_gh = sb[0] / count;
        let mut k = tid;
        while k < n {
            let h = normalised(saved, p, k, first, mean, r, from_input);
            let g = f32::cast_from(grad[offset(grad, p, k)]) * act_slope(h, slope);
            let o = offset_out(dx, p, k);
            dx[o] = F::cast_from(r * (g - mean_g - h * mean_gh));
            k += units;
        }
    }

    /// x^ at element `i` of plane `p`: recomputed from the input as the
    /// forward computed it, or read from the saved output.
    #[cube]
    fn normalised<F: Float>(
        saved: &Tensor<F>,
        p: usize,
        i: usize,
        first: f32,
        mean: f32,
        r: f32,
        #[comptime] from_input: bool,
    ) -> f32 {
        let v = f32::cast_from(saved[offset(saved, p, i)]);
        if from_input {
            (v - first - mean) * r
        } else {
            v
        }
    }
}
