//! Adam as Burn computes it, with each GPU weight tensor stepped by one
//! kernel (medtrans-kernels) instead of Burn's ~16 element-wise ones
//! (issue 28: Adam was about 930 of a pix2pix step's 3158 launches).
//!
//! The state is Burn's own `AdamState`, so checkpoints keep their format
//! and a run saved by either optimiser loads in the other. On the CPU, or
//! where the kernel does not apply, Burn's Adam does the step.
//!
//! [`NetworkAdam`] goes further on a GPU: one network's moments in two flat
//! buffers, all its weights stepped by one kernel launch.

mod network;
pub use network::NetworkAdam;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};
use medtrans_kernels::adam::{adam_step, AdamScalars};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// PyTorch's Adam epsilon (Burn's default is 1e-5).
pub const EPSILON: f32 = 1e-8;

/// Adam with (beta_1, beta_2), PyTorch's epsilon and L2 weight decay.
#[derive(Clone)]
pub struct Adam {
    burn: burn::optim::Adam,
    beta_1: f32,
    beta_2: f32,
    weight_decay: f32,
    /// Shared with the `ModuleOptimizer` built from this Adam (see [`Hook`]).
    hook: Arc<Mutex<Hook>>,
}

/// One parameter's Adam state with its moments flattened: (time, m, v).
pub(crate) type FlatState = (usize, Tensor<1>, Tensor<1>);

/// Moves per-parameter states into and out of Burn's `ModuleOptimizer`,
/// whose state map is private: with a hook set, a step hands over (or
/// records) the parameter's state instead of computing. [`NetworkAdam`]
/// converts between its flat state and Burn's per-tensor one this way, so
/// checkpoints keep Burn's format.
#[derive(Default)]
pub(crate) enum Hook {
    /// Step as Adam.
    #[default]
    Off,
    /// Give each stepped parameter the next of these states, in step order.
    Inject(VecDeque<FlatState>),
    /// Record each stepped parameter's state (None: none yet), in order.
    Extract(Vec<Option<FlatState>>),
}

impl Adam {
    pub fn new(beta_1: f32, beta_2: f32, weight_decay: f32) -> Self {
        let mut config = AdamConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(EPSILON);
        if weight_decay > 0.0 {
            config = config.with_weight_decay(Some(WeightDecayConfig::new(weight_decay)));
        }
        Self {
            burn: config.build(),
            beta_1,
            beta_2,
            weight_decay,
            hook: Arc::default(),
        }
    }

    /// The scalars of step `time` (1 for the first).
    fn scalars(&self, lr: LearningRate, time: usize) -> AdamScalars {
        AdamScalars::new(
            lr,
            self.beta_1,
            self.beta_2,
            EPSILON,
            self.weight_decay,
            time,
        )
    }

    /// Set the hook, returning what it held.
    pub(crate) fn set_hook(&self, hook: Hook) -> Hook {
        std::mem::replace(&mut self.hook.lock().expect("adam hook"), hook)
    }

    /// The step under a set hook; `None` when the hook is off.
    fn hooked<const D: usize>(
        &self,
        tensor: &Tensor<D>,
        state: &Option<AdamState<D>>,
    ) -> Option<Option<AdamState<D>>> {
        let mut hook = self.hook.lock().expect("adam hook");
        match &mut *hook {
            Hook::Off => None,
            Hook::Inject(queue) => Some(queue.pop_front().map(|(time, m, v)| {
                let dims = tensor.dims();
                AdamState::new(AdaptiveMomentumState::new(
                    time,
                    m.reshape(dims),
                    v.reshape(dims),
                ))
            })),
            Hook::Extract(out) => {
                out.push(state.as_ref().map(|s| {
                    let s = &s.momentum;
                    let n = [tensor.shape().num_elements()];
                    (
                        s.time,
                        s.moment_1.clone().reshape(n),
                        s.moment_2.clone().reshape(n),
                    )
                }));
                Some(state.clone())
            }
        }
    }
}

impl Optimizer for Adam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        if let Some(state) = self.hooked(&tensor, &state) {
            return (tensor, state);
        }
        if tensor.device() == Device::flex() {
            return self.burn.step(lr, tensor, grad, state);
        }
        let (time, m, v) = match &state {
            Some(s) => (
                s.momentum.time + 1,
                s.momentum.moment_1.clone(),
                s.momentum.moment_2.clone(),
            ),
            // Burn's first step starts the moments at (1 - beta) * g,
            // which is beta * 0 + (1 - beta) * g exactly.
            None => (1, grad.zeros_like(), grad.zeros_like()),
        };
        let s = self.scalars(lr, time);
        match adam_step(&tensor, &grad, &m, &v, s) {
            Some((w, m, v)) => (
                w,
                Some(AdamState::new(AdaptiveMomentumState::new(time, m, v))),
            ),
            None => self.burn.step(lr, tensor, grad, state),
        }
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        burn::optim::Adam::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// On the CPU the optimiser is Burn's Adam itself: identical bits,
    /// weights and moments, with weight decay.
    #[test]
    fn on_the_cpu_it_is_burns_adam() {
        let d = Device::flex();
        let ours = Adam::new(0.5, 0.999, 1e-4);
        let burns = AdamConfig::new()
            .with_beta_1(0.5)
            .with_beta_2(0.999)
            .with_epsilon(EPSILON)
            .with_weight_decay(Some(WeightDecayConfig::new(1e-4)))
            .build();
        d.seed(3);
        let w0 = Tensor::<2>::random([4, 5], Distribution::Normal(0.0, 1.0), &d);
        let (mut a, mut b) = ((w0.clone(), None), (w0, None));
        for _ in 0..3 {
            let g = Tensor::<2>::random([4, 5], Distribution::Normal(0.0, 1.0), &d);
            a = ours.step(1e-3, a.0, g.clone(), a.1);
            b = burns.step(1e-3, b.0, g, b.1);
        }
        let read = |x: &(Tensor<2>, Option<AdamState<2>>)| {
            let m = &x.1.as_ref().unwrap().momentum;
            [&x.0, &m.moment_1, &m.moment_2]
                .map(|t| t.clone().into_data().try_to_vec::<f32>().unwrap())
        };
        assert_eq!(read(&a), read(&b));
        assert_eq!(a.1.unwrap().momentum.time, 3);
    }

    /// The optimiser state keeps Burn's format: a state saved by Burn's
    /// Adam loads into this one, which then steps as Burn's would.
    #[test]
    fn a_state_saved_by_burns_adam_loads() {
        use burn::nn::LinearConfig;
        use burn::optim::{GradientsParams, ModuleOptimizer};
        let d = Device::flex().autodiff();
        d.seed(5);
        let net = LinearConfig::new(3, 2).init(&d);
        let x = Tensor::<2>::random([4, 3], Distribution::Normal(0.0, 1.0), &d);
        let step = |o: &mut ModuleOptimizer, net: burn::nn::Linear| {
            let grads = net.forward(x.clone()).powf_scalar(2.0).sum().backward();
            let g = GradientsParams::from_grads(grads, &net);
            o.step(1e-2, net, g)
        };
        let burns = || {
            ModuleOptimizer::from(
                AdamConfig::new()
                    .with_beta_1(0.5)
                    .with_beta_2(0.999)
                    .with_epsilon(EPSILON)
                    .build(),
            )
        };
        let mut saved = burns();
        let net = step(&mut saved, net);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("adam.bpk");
        saved.save(&path).unwrap();
        let mut ours = ModuleOptimizer::from(Adam::new(0.5, 0.999, 0.0))
            .load(&path)
            .unwrap();
        let mut theirs = burns().load(&path).unwrap();
        let a = step(&mut ours, net.clone());
        let b = step(&mut theirs, net);
        let w = |m: &burn::nn::Linear| m.weight.val().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(w(&a), w(&b));
    }
}
