//! Adam's update of a weight tensor and both its moments in one kernel.

use super::{covered, elementwise, empty_like};
use crate::adam::AdamScalars;
use burn::backend::{backend_extension, tensor::FloatTensor, Backend, Dispatch, TensorMetadata};
use burn::tensor::{DType, Tensor};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeBackend;

/// Adam on one weight tensor, on Burn's GPU backend.
#[backend_extension(Cube, Fusion: cfg(feature = "fusion"))]
pub trait AdamOps: Backend {
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

pub(crate) fn adam_step<const D: usize>(
    weight: &Tensor<D>,
    grad: &Tensor<D>,
    m: &Tensor<D>,
    v: &Tensor<D>,
    s: AdamScalars,
) -> Option<(Tensor<D>, Tensor<D>, Tensor<D>)> {
    if ![weight, grad, m, v]
        .iter()
        .all(|t| covered(t, &[DType::F32]))
    {
        return None;
    }
    let (w, m, v) = <Dispatch as AdamOps>::adam(
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

impl AdamOps for CubeBackend {
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
        // The gradient is read through its strides (a convolution's weight
        // gradient is an NHWC buffer seen as NCHW; a copy would be a
        // launch); weights and moments are this kernel's own contiguous
        // outputs after the first step.
        let [weight, m, v] = [weight, m, v].map(into_contiguous);
        let (w_out, m_out, v_out) = (empty_like(&weight), empty_like(&m), empty_like(&v));
        let n = weight.shape().num_elements();
        let client = weight.client.clone();
        let (cube_count, cube_dim) = elementwise(&client, n);
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
        let g = grad[strided(grad, i)];
        // Burn applies no decay at all when there is none: w * 0 would turn
        // an infinite weight's gradient into NaN.
        let g = select(weight_decay != 0.0, w * weight_decay + g, g);
        let m1 = m[i] * beta_1 + g * one_minus_beta_1;
        let v1 = v[i] * beta_2 + g * g * one_minus_beta_2;
        let step = m1 * correction / (v1.sqrt() + epsilon_hat);
        m_out[i] = m1;
        v_out[i] = v1;
        weight_out[i] = w - step * lr;
    }

    /// Where the element at row-major index `linear` of `t`'s logical shape
    /// lies, through its strides (any rank).
    #[cube]
    fn strided(t: &Tensor<f32>, linear: usize) -> usize {
        let mut rest = linear;
        let mut at = 0usize;
        let mut d = t.rank();
        while d > 0 {
            d -= 1;
            let size = t.shape(d);
            at += (rest % size) * t.stride(d);
            rest /= size;
        }
        at
    }
}
