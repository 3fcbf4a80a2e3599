//! The kernels on Burn's CubeCL backend (wgpu), and the extension trait
//! that routes a `Tensor` to them through Burn's dispatch (and its fusion
//! backend when that is built in).

use crate::adam::AdamScalars;
use burn::backend::{backend_extension, tensor::FloatTensor, Backend, Dispatch, TensorMetadata};
use burn::tensor::{DType, Device, Tensor};
use burn_autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn_autodiff::Autodiff;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeBackend;
use cubecl::prelude::{CubeCount, CubeDim};

/// The operations medtrans adds to Burn's GPU backend.
#[backend_extension(Cube, Fusion: cfg(feature = "fusion"))]
pub trait MedtransOps: Backend {
    /// Adam on one tensor: (weight, m, v) after the step.
    #[allow(clippy::too_many_arguments)]
    #[fusion(meta = |w, _g, m, v, _wd, _b1, _b2, _c, _e, _lr| (w.clone(), m.clone(), v.clone()))]
    fn adam(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        weight_decay: f32,
        beta_1: f32,
        beta_2: f32,
        correction: f32,
        epsilon_hat: f32,
        lr: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// Instance norm's forward and backward kernels. A trait of its own: it
/// routes autodiff tensors to its own backward (`Autodiff` below), which
/// Adam's, given plain tensors, does not need.
#[backend_extension(Cube, Fusion: cfg(feature = "fusion"), Autodiff)]
pub trait NormOps: Backend {
    /// Instance norm of `x` ([N, C, H, W]) without affine parameters.
    #[fusion(dtype = x, shape = x)]
    fn instance_norm(x: FloatTensor<Self>, epsilon: f32) -> FloatTensor<Self>;

    /// The forward pass and what its backward needs: (y, 1 / sqrt(var +
    /// eps) per plane, f32, [N * C]).
    #[fusion(meta = stats_meta)]
    fn instance_norm_stats(
        x: FloatTensor<Self>,
        epsilon: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// dL/dx from dL/dy, the forward output y and its per-plane `rstd`:
    /// rstd * (g - mean(g) - y * mean(g * y)), per plane.
    #[fusion(dtype = y, shape = y)]
    fn instance_norm_backward(
        y: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

#[cfg(feature = "fusion")]
fn stats_meta(
    x: &burn::backend::fusion::custom::TensorSpec,
    _epsilon: &f32,
) -> (
    burn::backend::fusion::custom::TensorSpec,
    burn::backend::fusion::custom::TensorSpec,
) {
    let planes = x.shape[0] * x.shape[1];
    (
        x.clone(),
        burn::backend::fusion::custom::TensorSpec::new([planes].into(), DType::F32),
    )
}

/// Whether the tensor is one the kernels cover: f32 on a GPU.
fn covered<const D: usize>(t: &Tensor<D>) -> bool {
    t.device() != Device::flex() && t.dtype() == DType::F32
}

pub(crate) fn instance_norm(x: &Tensor<4>, epsilon: f32) -> Option<Tensor<4>> {
    let dtype = x.dtype();
    if x.device() == Device::flex() || !matches!(dtype, DType::F32 | DType::F16) {
        return None;
    }
    let [n, c, h, w] = x.dims();
    if n * c * h * w == 0 || n * c > MAX_PLANES {
        return None;
    }
    Some(Tensor::from_dispatch(<Dispatch as NormOps>::instance_norm(
        x.clone().into_dispatch(),
        epsilon,
    )))
}

/// One cube (workgroup) per plane, along one dimension of the launch grid,
/// whose size WebGPU caps at 65535.
const MAX_PLANES: usize = 65535;
/// Units per cube in the norm kernels (a power of two: the reductions
/// halve it).
const NORM_BLOCK: usize = 256;

pub(crate) fn adam_step<const D: usize>(
    weight: &Tensor<D>,
    grad: &Tensor<D>,
    m: &Tensor<D>,
    v: &Tensor<D>,
    s: AdamScalars,
) -> Option<(Tensor<D>, Tensor<D>, Tensor<D>)> {
    if ![weight, grad, m, v].iter().all(|t| covered(t)) {
        return None;
    }
    let (w, m, v) = <Dispatch as MedtransOps>::adam(
        weight.clone().into_dispatch(),
        grad.clone().into_dispatch(),
        m.clone().into_dispatch(),
        v.clone().into_dispatch(),
        s.weight_decay,
        s.beta_1,
        s.beta_2,
        s.correction,
        s.epsilon_hat,
        s.lr,
    );
    Some((
        Tensor::from_dispatch(w),
        Tensor::from_dispatch(m),
        Tensor::from_dispatch(v),
    ))
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

impl MedtransOps for CubeBackend {
    fn adam(
        weight: CubeTensor,
        grad: CubeTensor,
        m: CubeTensor,
        v: CubeTensor,
        weight_decay: f32,
        beta_1: f32,
        beta_2: f32,
        correction: f32,
        epsilon_hat: f32,
        lr: f32,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        let [weight, grad, m, v] = [weight, grad, m, v].map(into_contiguous);
        let (w_out, m_out, v_out) = (empty_like(&weight), empty_like(&m), empty_like(&v));
        let n = weight.shape().num_elements();
        let client = weight.client.clone();
        let cube_dim = CubeDim::new(&client, n);
        let cube_count = cubecl::calculate_cube_count_elemwise(&client, n, cube_dim);
        kernels::adam_kernel::launch(
            &client,
            cube_count,
            cube_dim,
            weight.into_tensor_arg(),
            grad.into_tensor_arg(),
            m.into_tensor_arg(),
            v.into_tensor_arg(),
            w_out.clone().into_tensor_arg(),
            m_out.clone().into_tensor_arg(),
            v_out.clone().into_tensor_arg(),
            weight_decay,
            beta_1,
            1.0 - beta_1,
            beta_2,
            1.0 - beta_2,
            correction,
            epsilon_hat,
            lr,
        );
        (w_out, m_out, v_out)
    }
}

impl NormOps for CubeBackend {
    fn instance_norm(x: CubeTensor, epsilon: f32) -> CubeTensor {
        Self::instance_norm_stats(x, epsilon).0
    }

    fn instance_norm_stats(x: CubeTensor, epsilon: f32) -> (CubeTensor, CubeTensor) {
        let x = into_contiguous(x);
        let shape = x.shape();
        let (planes, plane) = (shape[0] * shape[1], shape[2] * shape[3]);
        let y = empty_like(&x);
        let rstd = empty_device_contiguous_dtype(
            x.client.clone(),
            x.device.clone(),
            [planes].into(),
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
            rstd.clone().into_tensor_arg(),
            plane as u32,
            epsilon,
            NORM_BLOCK,
            dtype,
        );
        (y, rstd)
    }

    fn instance_norm_backward(y: CubeTensor, rstd: CubeTensor, grad: CubeTensor) -> CubeTensor {
        let [y, rstd, grad] = [y, rstd, grad].map(into_contiguous);
        let shape = y.shape();
        let (planes, plane) = (shape[0] * shape[1], shape[2] * shape[3]);
        let dx = empty_like(&y);
        let client = y.client.clone();
        let dtype = burn::backend::cubecl::dtype_to_storage_type(y.dtype);
        kernels::instance_norm_backward::launch(
            &client,
            CubeCount::Static(planes as u32, 1, 1),
            CubeDim::new_1d(NORM_BLOCK as u32),
            y.into_tensor_arg(),
            rstd.into_tensor_arg(),
            grad.into_tensor_arg(),
            dx.clone().into_tensor_arg(),
            plane as u32,
            NORM_BLOCK,
            dtype,
        );
        dx
    }
}

/// Instance norm's backward node: keeps y and rstd from the forward pass
/// and runs the one backward kernel.
#[derive(Debug)]
struct InstanceNormBackward;

impl<B: Backend + NormOps> Backward<B, 1> for InstanceNormBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (y, rstd) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| {
            B::instance_norm_backward(y, rstd, g)
        });
    }
}

impl<B: Backend + NormOps, C: CheckpointStrategy> NormOps for Autodiff<B, C> {
    fn instance_norm(x: FloatTensor<Self>, epsilon: f32) -> FloatTensor<Self> {
        let guard = x.node();
        let (y, rstd) = B::instance_norm_stats(x.into_primitive(), epsilon);
        match InstanceNormBackward
            .prepare::<C>([guard])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((y.clone(), rstd), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn instance_norm_stats(
        _x: FloatTensor<Self>,
        _epsilon: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        unreachable!("instance_norm_stats is the inner backend's half of instance_norm")
    }

    fn instance_norm_backward(
        _y: FloatTensor<Self>,
        _rstd: FloatTensor<Self>,
        _grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        unreachable!("no second derivative of instance norm")
    }
}

/// The CubeCL kernels themselves (CubeCL's prelude has its own `Tensor`).
mod kernels {
    use cubecl::prelude::*;

    /// Burn's Adam step for one element, its operations in Burn's order
    /// (burn-optim 0.22.1, `Adam::step`), so that results agree to
    /// rounding: decay, both moments, the corrected step, the update.
    #[cube(launch)]
    #[allow(clippy::too_many_arguments)]
    pub fn adam_kernel(
        weight: &Tensor<f32>,
        grad: &Tensor<f32>,
        m: &Tensor<f32>,
        v: &Tensor<f32>,
        weight_out: &mut Tensor<f32>,
        m_out: &mut Tensor<f32>,
        v_out: &mut Tensor<f32>,
        weight_decay: f32,
        beta_1: f32,
        one_minus_beta_1: f32,
        beta_2: f32,
        one_minus_beta_2: f32,
        correction: f32,
        epsilon_hat: f32,
        lr: f32,
    ) {
        let i = ABSOLUTE_POS;
        if i >= weight.len() {
            terminate!();
        }
        let w = weight[i];
        let g = w * weight_decay + grad[i];
        let m1 = m[i] * beta_1 + g * one_minus_beta_1;
        let v1 = v[i] * beta_2 + g * g * one_minus_beta_2;
        let step = m1 * correction / (v1.sqrt() + epsilon_hat);
        m_out[i] = m1;
        v_out[i] = v1;
        weight_out[i] = w - step * lr;
    }

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
    /// the centred values (no cancellation of sum(x^2) - n mean^2).
    #[cube(launch)]
    pub fn instance_norm_forward<F: Float>(
        x: &Tensor<F>,
        y: &mut Tensor<F>,
        rstd: &mut Tensor<f32>,
        plane: u32,
        epsilon: f32,
        #[comptime] block: usize,
        #[define(F)] _dtype: ElemType,
    ) {
        let n = plane as usize;
        let base = CUBE_POS_X as usize * n;
        let tid = UNIT_POS as usize;
        let units = CUBE_DIM_X as usize;
        let mut sa = Shared::<[f32]>::new_slice(block);
        let mut sb = Shared::<[f32]>::new_slice(block);
        let first = f32::cast_from(x[base]);
        let mut sum = f32::new(0.0);
        let mut i = tid;
        while i < n {
            sum += f32::cast_from(x[base + i]) - first;
            i += units;
        }
        cube_sum2(&mut sa, &mut sb, sum, f32::new(0.0));
        let mean = sa[0] / f32::cast_from(plane);
        sync_cube();
        let mut squares = f32::new(0.0);
        let mut j = tid;
        while j < n {
            let d = f32::cast_from(x[base + j]) - first - mean;
            squares += d * d;
            j += units;
        }
        cube_sum2(&mut sa, &mut sb, squares, f32::new(0.0));
        let r = f32::new(1.0) / (sa[0] / f32::cast_from(plane) + epsilon).sqrt();
        let mut k = tid;
        while k < n {
            y[base + k] = F::cast_from((f32::cast_from(x[base + k]) - first - mean) * r);
            k += units;
        }
        if tid == 0 {
            rstd[CUBE_POS_X as usize] = r;
        }
    }

    /// dx = rstd * (g - mean(g) - y * mean(g * y)) per plane (PyTorch's
    /// instance-norm gradient without affine parameters).
    #[cube(launch)]
    pub fn instance_norm_backward<F: Float>(
        y: &Tensor<F>,
        rstd: &Tensor<f32>,
        grad: &Tensor<F>,
        dx: &mut Tensor<F>,
        plane: u32,
        #[comptime] block: usize,
        #[define(F)] _dtype: ElemType,
    ) {
        let n = plane as usize;
        let base = CUBE_POS_X as usize * n;
        let tid = UNIT_POS as usize;
        let units = CUBE_DIM_X as usize;
        let mut sa = Shared::<[f32]>::new_slice(block);
        let mut sb = Shared::<[f32]>::new_slice(block);
        let mut sum_g = f32::new(0.0);
        let mut sum_gy = f32::new(0.0);
        let mut i = tid;
        while i < n {
            let g = f32::cast_from(grad[base + i]);
            sum_g += g;
            sum_gy += g * f32::cast_from(y[base + i]);
            i += units;
        }
        cube_sum2(&mut sa, &mut sb, sum_g, sum_gy);
        let count = f32::cast_from(plane);
        let mean_g = sa[0] / count;
        let mean_gy = sb[0] / count;
        let r = rstd[CUBE_POS_X as usize];
        let mut k = tid;
        while k < n {
            let g = f32::cast_from(grad[base + k]);
            let yk = f32::cast_from(y[base + k]);
            dx[base + k] = F::cast_from(r * (g - mean_g - yk * mean_gy));
            k += units;
        }
    }
}
