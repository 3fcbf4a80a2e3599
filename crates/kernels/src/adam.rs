//! Adam's update in one kernel: of one weight tensor and its two moments
//! ([`adam_step`]), or of a whole network whose moments lie end to end in
//! two flat buffers ([`AdamBatch`]).

use burn::tensor::{Device, Tensor};

/// The host-side numbers of one Adam step, computed exactly as Burn's Adam
/// computes them (burn-optim's `AdaptiveMomentum::transform`), so that the
/// kernel's result matches Burn's to rounding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamScalars {
    /// L2 weight decay (Burn's `WeightDecay`: `grad + weight * decay`), 0 for none.
    pub weight_decay: f32,
    pub beta_1: f32,
    pub beta_2: f32,
    /// `sqrt(1 - beta_2^t) / (1 - beta_1^t)`.
    pub correction: f32,
    /// `epsilon * sqrt(1 - beta_2^t)`.
    pub epsilon_hat: f32,
    pub lr: f32,
}

impl AdamScalars {
    /// The scalars of step `time` (1 for the first step).
    pub fn new(
        lr: f64,
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
        weight_decay: f32,
        time: usize,
    ) -> Self {
        let t = time as i32;
        let bias_correction2_sqrt = (1.0 - beta_2.powi(t)).sqrt();
        Self {
            weight_decay,
            beta_1,
            beta_2,
            correction: bias_correction2_sqrt / (1.0 - beta_1.powi(t)),
            epsilon_hat: epsilon * bias_correction2_sqrt,
            lr: lr as f32,
        }
    }
}

/// One Adam step of `weight` with gradient `grad` and moments `m`, `v`
/// (zeros before the first step): the new weight, m and v, from one kernel
/// launch. `None` (inputs unused) where there is no kernel: tensors not on
/// a GPU, not f32, or a build without `gpu-core`. The tensors must not
/// track gradients (Burn's optimisers receive them without).
pub fn adam_step<const D: usize>(
    weight: &Tensor<D>,
    grad: &Tensor<D>,
    m: &Tensor<D>,
    v: &Tensor<D>,
    s: AdamScalars,
) -> Option<(Tensor<D>, Tensor<D>, Tensor<D>)> {
    #[cfg(feature = "gpu-core")]
    {
        crate::cube::adam_step(weight, grad, m, v, s)
    }
    #[cfg(not(feature = "gpu-core"))]
    {
        let _ = (weight, grad, m, v, s);
        None
    }
}

/// The weights and gradients of one network's Adam step, gathered for
/// [`AdamBatch::step`]: one kernel launch for all of them (a few where the
/// device binds fewer buffers than the network has tensors), against one
/// per tensor. Its moments live in two flat tensors, each weight's
/// elements end to end in the order they were pushed.
#[derive(Default)]
pub struct AdamBatch {
    #[cfg(feature = "gpu-core")]
    weights: Vec<burn::tensor::DispatchTensor>,
    #[cfg(feature = "gpu-core")]
    grads: Vec<burn::tensor::DispatchTensor>,
}

impl AdamBatch {
    /// Whether a batch steps on `device`: a GPU, in a build with the
    /// kernels (and without Burn's fusion, whose tensors the batch cannot
    /// reach). Elsewhere the caller keeps Burn's per-tensor Adam.
    pub fn available(device: &Device) -> bool {
        cfg!(all(feature = "gpu-core", not(feature = "fusion")))
            && device.clone().inner() != Device::flex()
    }

    /// Add one weight tensor and its gradient (the same shape).
    pub fn push<const D: usize>(&mut self, weight: Tensor<D>, grad: Tensor<D>) {
        #[cfg(feature = "gpu-core")]
        {
            self.weights.push(weight.into_dispatch());
            self.grads.push(grad.into_dispatch());
        }
        #[cfg(not(feature = "gpu-core"))]
        {
            let _ = (weight, grad);
        }
    }

    /// One Adam step of every pushed weight, its gradient first multiplied
    /// by `grad_factor` (undoing a loss scale). `m` and `v` hold the
    /// moments of all of them, end to end (zeros before the first step).
    /// `None` where there is no kernel (see [`AdamBatch::available`]; an
    /// f16 or bf16 tensor), the batch then spent.
    pub fn step(
        self,
        m: &Tensor<1>,
        v: &Tensor<1>,
        grad_factor: f32,
        s: AdamScalars,
    ) -> Option<AdamStepped> {
        #[cfg(feature = "gpu-core")]
        {
            let (weights, m, v) =
                crate::cube::adam_flat(self.weights, self.grads, m, v, grad_factor, s)?;
            Some(AdamStepped {
                weights: weights.into_iter().map(Some).collect(),
                m,
                v,
            })
        }
        #[cfg(not(feature = "gpu-core"))]
        {
            let _ = (self, m, v, grad_factor, s);
            None
        }
    }
}

/// What [`AdamBatch::step`] gives back: the moments, and the new weights to
/// take in push order.
pub struct AdamStepped {
    #[cfg(feature = "gpu-core")]
    weights: Vec<Option<burn::tensor::DispatchTensor>>,
    pub m: Tensor<1>,
    pub v: Tensor<1>,
}

impl AdamStepped {
    /// The new value of the `i`-th pushed weight (each taken once).
    pub fn take<const D: usize>(&mut self, i: usize) -> Tensor<D> {
        #[cfg(feature = "gpu-core")]
        {
            Tensor::from_dispatch(self.weights[i].take().expect("each weight is taken once"))
        }
        #[cfg(not(feature = "gpu-core"))]
        {
            unreachable!("no batch steps without gpu-core (weight {i})")
        }
    }
}
