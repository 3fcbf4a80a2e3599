//! Adam's update of a weight tensor and both its moments in one kernel.

use super::{covered, elementwise, empty_like};
use crate::adam::AdamScalars;
use burn::backend::{backend_extension, tensor::FloatTensor, Backend, Dispatch, TensorMetadata};
use burn::tensor::DispatchTensor;
use burn::tensor::{DType, Tensor};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeBackend;
#[cfg(not(feature = "fusion"))]
use cubecl::prelude::{OwnedTensor, SequenceArg};

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

/// Adam on every weight tensor of a network, their moments end to end in
/// `m` and `v` (in `weights` order): the new weights, m and v, from as few
/// launches as the device's binding limit allows (one where it allows them
/// all). Gradients are multiplied by `grad_factor` first. `None` where a
/// tensor is not an untracked f32 tensor of Burn's (unfused) GPU backend.
///
/// Burn's backend extension takes no lists of tensors, so this reaches the
/// CubeCL tensors through the dispatch enum itself.
pub(crate) fn adam_flat(
    weights: Vec<DispatchTensor>,
    grads: Vec<DispatchTensor>,
    m: &Tensor<1>,
    v: &Tensor<1>,
    grad_factor: f32,
    s: AdamScalars,
) -> Option<(Vec<DispatchTensor>, Tensor<1>, Tensor<1>)> {
    #[cfg(not(feature = "fusion"))]
    {
        use super::{cube, dispatch};
        let all = |ts: Vec<DispatchTensor>| ts.into_iter().map(cube).collect::<Option<Vec<_>>>();
        let (weights, grads) = (all(weights)?, all(grads)?);
        let m = cube(m.clone().into_dispatch())?;
        let v = cube(v.clone().into_dispatch())?;
        let (w, m, v) = flat_launches(weights, grads, m, v, grad_factor, s);
        Some((
            w.into_iter().map(dispatch).collect(),
            Tensor::from_dispatch(dispatch(m)),
            Tensor::from_dispatch(dispatch(v)),
        ))
    }
    #[cfg(feature = "fusion")]
    {
        let _ = (weights, grads, m, v, grad_factor, s);
        None
    }
}

#[cfg(not(feature = "fusion"))]
/// Storage bindings a flat-Adam launch needs besides its weight tensors:
/// m and v in and out, and CubeCL's metadata buffer.
const FLAT_FIXED_BINDINGS: u32 = 5;

#[cfg(not(feature = "fusion"))]
/// Weight tensors per flat-Adam launch, each bound three times (weight,
/// gradient, new weight): as many as the device binds (lavapipe: 31
/// bindings, so 8), at most 64 (the kernel unrolls a branch per tensor).
fn tensors_per_launch(client: &cubecl::client::Client) -> usize {
    let bindings = client.properties().hardware.max_bindings;
    (bindings.saturating_sub(FLAT_FIXED_BINDINGS) / 3).clamp(1, 64) as usize
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

#[cfg(not(feature = "fusion"))]
/// [`adam_flat`]'s launches: the weights in groups the device can bind,
/// each group's moments a range of the flat ones.
fn flat_launches(
    weights: Vec<CubeTensor>,
    grads: Vec<CubeTensor>,
    m: CubeTensor,
    v: CubeTensor,
    grad_factor: f32,
    s: AdamScalars,
) -> (Vec<CubeTensor>, CubeTensor, CubeTensor) {
    assert_eq!(weights.len(), grads.len(), "one gradient per weight");
    let [m, v] = [m, v].map(into_contiguous);
    let (m_out, v_out) = (empty_like(&m), empty_like(&v));
    let client = m.client.clone();
    let outs: Vec<CubeTensor> = weights.iter().map(empty_like).collect();
    let per_launch = tensors_per_launch(&client);
    let mut base = 0usize;
    for at in (0..weights.len()).step_by(per_launch) {
        let group = at..(at + per_launch).min(weights.len());
        let n: usize = weights[group.clone()]
            .iter()
            .map(|w| w.shape().num_elements())
            .sum();
        if n == 0 {
            continue;
        }
        let args = |ts: &[CubeTensor]| -> SequenceArg<OwnedTensor<f32>> {
            ts.iter().map(|t| t.clone().into_tensor_arg()).collect()
        };
        let (cube_count, cube_dim) = elementwise(&client, n);
        kernels::adam_flat_kernel::launch(
            &client,
            cube_count,
            cube_dim,
            args(&weights[group.clone()]),
            args(&grads[group.clone()]),
            args(&outs[group]),
            m.clone().into_tensor_arg(),
            v.clone().into_tensor_arg(),
            m_out.clone().into_tensor_arg(),
            v_out.clone().into_tensor_arg(),
            base,
            n,
            grad_factor,
            s.weight_decay,
            s.beta_1,
            1.0 - s.beta_1,
            s.beta_2,
            1.0 - s.beta_2,
            s.correction,
            s.epsilon_hat,
            s.lr,
        );
        base += n;
    }
    (outs, m_out, v_out)
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
        grad: &OwnedTensor<f32>,
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
        let (w1, m1, v1) = update(
            weight[i],
            grad[strided(grad, i)],
            m[i],
            v[i],
            weight_decay,
            beta_1,
            one_minus_beta_1,
            beta_2,
            one_minus_beta_2,
            correction,
            epsilon_hat,
            lr,
        );
        m_out[i] = m1;
        v_out[i] = v1;
        weight_out[i] = w1;
    }

    /// One element's step, its operations in Burn's order: (weight, m, v)
    /// after it.
    #[cube]
    #[allow(clippy::too_many_arguments)]
    fn update(
        w: f32,
        g: f32,
        m: f32,
        v: f32,
        weight_decay: f32,
        beta_1: f32,
        one_minus_beta_1: f32,
        beta_2: f32,
        one_minus_beta_2: f32,
        correction: f32,
        epsilon_hat: f32,
        lr: f32,
    ) -> (f32, f32, f32) {
        // Burn applies no decay at all when there is none: w * 0 would turn
        // an infinite weight's gradient into NaN.
        let g = select(weight_decay != 0.0, w * weight_decay + g, g);
        let m1 = m * beta_1 + g * one_minus_beta_1;
        let v1 = v * beta_2 + g * g * one_minus_beta_2;
        let step = m1 * correction / (v1.sqrt() + epsilon_hat);
        (w - step * lr, m1, v1)
    }

    /// [`adam_kernel`] over a group of weight tensors: unit `i` of `n`
    /// updates element `i` of the group's elements laid end to end, whose
    /// moments lie at `base + i` of the network's flat `m` and `v`. Each
    /// tensor is a branch (a sequence is indexed at compile time).
    #[cube(launch)]
    #[allow(clippy::too_many_arguments)]
    pub fn adam_flat_kernel(
        weights: &Sequence<OwnedTensor<f32>>,
        grads: &Sequence<OwnedTensor<f32>>,
        outs: &mut Sequence<OwnedTensor<f32>>,
        m: &Tensor<f32>,
        v: &Tensor<f32>,
        m_out: &mut Tensor<f32>,
        v_out: &mut Tensor<f32>,
        base: usize,
        n: usize,
        grad_factor: f32,
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
        if i >= n {
            terminate!();
        }
        let count = comptime![weights.len()];
        let mut start = 0usize;
        #[unroll]
        for t in 0..count {
            let weight = &weights[t];
            let len = weight.len();
            if i >= start && i < start + len {
                let k = i - start;
                let grad = &grads[t];
                let j = base + i;
                // Burn unscales the gradient (a separate multiply) before
                // its decay; x * 1 is exact, so 1 leaves it unchanged.
                let (w1, m1, v1) = update(
                    weight[strided(weight, k)],
                    grad[strided(grad, k)] * grad_factor,
                    m[j],
                    v[j],
                    weight_decay,
                    beta_1,
                    one_minus_beta_1,
                    beta_2,
                    one_minus_beta_2,
                    correction,
                    epsilon_hat,
                    lr,
                );
                m_out[j] = m1;
                v_out[j] = v1;
                let out = outs.index_mut(t);
                out[k] = w1;
            }
            start += len;
        }
    }

    /// Where the element at row-major index `linear` of `t`'s logical shape
    /// lies, through its strides (any rank). CubeCL's sized tensor, the
    /// kind a sequence holds.
    #[cube]
    fn strided(t: &OwnedTensor<f32>, linear: usize) -> usize {
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
