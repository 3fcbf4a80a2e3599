//! Adam's update of one weight tensor and its two moments in one kernel.

use burn::tensor::Tensor;

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
