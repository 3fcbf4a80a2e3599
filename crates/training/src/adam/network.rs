//! One network's Adam. On a GPU its moments live in two flat buffers and
//! one kernel launch steps every weight (a few where the device binds fewer
//! buffers than the network has tensors), where a per-tensor optimiser
//! launches once per weight tensor (issue 28, item 2).
//!
//! Checkpoints keep Burn's per-tensor format: the flat state is split into
//! Burn's `AdamState`s at save and gathered from them after a load. On the
//! CPU this is Burn's `ModuleOptimizer` over [`Adam`], as before.

use super::{Adam, FlatState, Hook};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsParams, LearningRate, ModuleOptimizer};
use burn::store::RecordError;
use burn::tensor::{DType, Device, Tensor};
use medtrans_kernels::adam::{AdamBatch, AdamStepped};
use std::collections::{HashMap, VecDeque};
use std::path::Path;

/// A network's Adam: per tensor (Burn's `ModuleOptimizer`) on the CPU, and
/// on a GPU until a flat state can be formed; flat after that.
#[derive(Clone)]
pub struct NetworkAdam {
    adam: Adam,
    per_tensor: ModuleOptimizer,
    /// The state while it is flat (then `per_tensor` holds none).
    flat: Option<Flat>,
}

/// Every stepped weight's moments end to end, in the network's parameter
/// order (`lens` elements each), with the one step count they share.
#[derive(Clone)]
struct Flat {
    ids: Vec<ParamId>,
    lens: Vec<usize>,
    time: usize,
    m: Tensor<1>,
    v: Tensor<1>,
}

impl NetworkAdam {
    pub fn new(adam: Adam) -> Self {
        Self {
            per_tensor: ModuleOptimizer::from(adam.clone()),
            adam,
            flat: None,
        }
    }

    /// One Adam step of `module` at rate `lr`, each gradient first
    /// multiplied by `grad_factor` (undoing a loss scale; Adam's weight
    /// decay is not scale-free). Parameters without a gradient are left
    /// alone, as Burn leaves them.
    pub fn step<M: Module>(
        &mut self,
        lr: LearningRate,
        module: M,
        mut grads: GradientsParams,
        grad_factor: f64,
    ) -> M {
        let layout = Layout::of(&module, &grads);
        if layout.flat_kernel {
            if self.flat.as_ref().is_some_and(|f| f.ids != layout.ids) {
                // Another set of parameters has gradients this step: each
                // parameter's step count may now differ, which the flat
                // state cannot hold. Burn's per-tensor states can.
                self.unflatten(&module);
            }
            if self.flat.is_none() {
                self.flat = self.flatten(&module, &layout);
            }
            if let Some(flat) = &mut self.flat {
                if let Some(module) = flat_step(&self.adam, flat, lr, &module, layout, grad_factor)
                {
                    return module;
                }
            }
        }
        // Burn's Adam steps: a flat state (if any) goes back to Burn's
        // per-tensor form first, or its moments would be lost.
        self.unflatten(&module);
        if grad_factor != 1.0 {
            module.visit(&mut Unscale {
                grads: &mut grads,
                factor: grad_factor,
            });
        }
        self.per_tensor.step(lr, module, grads)
    }

    /// Save the state in Burn's per-tensor format (`module`: the network
    /// it steps, whose parameters key the states).
    pub fn save<M: Module>(&self, module: &M, path: &Path) -> Result<(), RecordError> {
        let mut saved = self.clone();
        saved.unflatten(module);
        saved.per_tensor.save(path)
    }

    /// Load a state saved by [`NetworkAdam::save`] or by Burn's
    /// `ModuleOptimizer` over Adam; it is gathered flat at the next step.
    pub fn load(self, path: &Path) -> Result<Self, RecordError> {
        Ok(Self {
            per_tensor: self.per_tensor.load(path)?,
            flat: None,
            adam: self.adam,
        })
    }

    /// Gather Burn's per-tensor states into a flat one for `layout`:
    /// zeros before the first step, the states' moments end to end after a
    /// load. `None` (stay per tensor) when the states' step counts differ
    /// or some parameters have none.
    fn flatten<M: Module>(&mut self, module: &M, layout: &Layout) -> Option<Flat> {
        // Every parameter's state, in the network's order: a state held
        // for a parameter outside the layout must not be dropped.
        let (all, grads) = WeightsAsGrads::of(module, None);
        self.adam.set_hook(Hook::Extract(Vec::new()));
        let _ = self.per_tensor.step(0.0, module.clone(), grads);
        let Hook::Extract(states) = self.adam.set_hook(Hook::Off) else {
            unreachable!("the hook was set to extract")
        };
        assert_eq!(states.len(), all.len(), "one state slot per parameter");
        let mut by_id: HashMap<ParamId, Option<FlatState>> = all.into_iter().zip(states).collect();
        let ours: Vec<Option<FlatState>> = layout
            .ids
            .iter()
            .map(|id| by_id.remove(id).flatten())
            .collect();
        if by_id.values().any(Option::is_some) {
            return None;
        }
        let device = layout.device.clone()?;
        let flat = if ours.iter().all(Option::is_none) {
            let zeros = || Tensor::<1>::zeros([layout.lens.iter().sum::<usize>()], &device);
            Flat {
                ids: layout.ids.clone(),
                lens: layout.lens.clone(),
                time: 0,
                m: zeros(),
                v: zeros(),
            }
        } else {
            let states: Vec<FlatState> = ours.into_iter().collect::<Option<_>>()?;
            let time = states[0].0;
            if states.iter().any(|s| s.0 != time) {
                return None;
            }
            let (m, v) = states.into_iter().map(|(_, m, v)| (m, v)).unzip();
            Flat {
                ids: layout.ids.clone(),
                lens: layout.lens.clone(),
                time,
                m: Tensor::cat(m, 0),
                v: Tensor::cat(v, 0),
            }
        };
        self.per_tensor = ModuleOptimizer::from(self.adam.clone());
        Some(flat)
    }

    /// Split the flat state (if any) into Burn's per-tensor states.
    fn unflatten<M: Module>(&mut self, module: &M) {
        let Some(flat) = self.flat.take() else { return };
        let mut queue = VecDeque::new();
        let mut at = 0;
        for &n in &flat.lens {
            let part = |t: &Tensor<1>| t.clone().slice(at..at + n);
            queue.push_back((flat.time, part(&flat.m), part(&flat.v)));
            at += n;
        }
        let (_, grads) = WeightsAsGrads::of(module, Some(&flat.ids));
        self.adam.set_hook(Hook::Inject(queue));
        let mut per_tensor = ModuleOptimizer::from(self.adam.clone());
        let _ = per_tensor.step(0.0, module.clone(), grads);
        let Hook::Inject(left) = self.adam.set_hook(Hook::Off) else {
            unreachable!("the hook was set to inject")
        };
        assert!(
            left.is_empty(),
            "{} flat Adam states were not taken back: the module's parameters changed",
            left.len()
        );
        self.per_tensor = per_tensor;
    }
}

/// The flat step: every weight with a gradient through one kernel batch,
/// `flat` advanced. `None` (nothing changed) where the kernel does not
/// apply.
fn flat_step<M: Module>(
    adam: &Adam,
    flat: &mut Flat,
    lr: LearningRate,
    module: &M,
    layout: Layout,
    grad_factor: f64,
) -> Option<M> {
    let s = adam.scalars(lr, flat.time + 1);
    let stepped = layout.batch.step(&flat.m, &flat.v, grad_factor as f32, s)?;
    let order = layout
        .ids
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, i))
        .collect();
    let mut apply = Apply { stepped, order };
    let module = module.clone().map(&mut apply);
    flat.time += 1;
    (flat.m, flat.v) = (apply.stepped.m, apply.stepped.v);
    Some(module)
}

/// Which parameters have gradients, in the network's order, and whether
/// the flat kernel can step them (f32 on a GPU); while it can, the kernel
/// batch of their weights and gradients.
struct Layout {
    ids: Vec<ParamId>,
    lens: Vec<usize>,
    device: Option<Device>,
    flat_kernel: bool,
    batch: AdamBatch,
}

impl Layout {
    fn of<M: Module>(module: &M, grads: &GradientsParams) -> Self {
        let mut layout = Self {
            ids: Vec::new(),
            lens: Vec::new(),
            device: None,
            flat_kernel: true,
            batch: AdamBatch::default(),
        };
        module.visit(&mut LayoutVisitor {
            layout: &mut layout,
            grads,
        });
        layout.flat_kernel &= layout.device.is_some();
        layout
    }
}

struct LayoutVisitor<'a> {
    layout: &'a mut Layout,
    grads: &'a GradientsParams,
}

impl ModuleVisitor for LayoutVisitor<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(g) = self.grads.get::<D>(param.id) else {
            return;
        };
        let w = param.val();
        let l = &mut self.layout;
        l.flat_kernel &= w.dtype() == DType::F32
            && g.dtype() == DType::F32
            && AdamBatch::available(l.device.get_or_insert_with(|| g.device()));
        l.ids.push(param.id);
        l.lens.push(w.shape().num_elements());
        if l.flat_kernel {
            // Untracked, as Burn's optimisers take weights.
            l.batch.push(w.inner(), g);
        }
    }
}

/// Each listed parameter's own weight (every one's, with no list) as its
/// "gradient": a step under a [`Hook`] visits exactly these parameters and
/// computes nothing.
struct WeightsAsGrads<'a> {
    only: Option<&'a [ParamId]>,
    ids: Vec<ParamId>,
    grads: GradientsParams,
}

impl<'a> WeightsAsGrads<'a> {
    /// The parameters' ids in the network's order, and their "gradients".
    fn of<M: Module>(module: &M, only: Option<&'a [ParamId]>) -> (Vec<ParamId>, GradientsParams) {
        let mut v = Self {
            only,
            ids: Vec::new(),
            grads: GradientsParams::new(),
        };
        module.visit(&mut v);
        (v.ids, v.grads)
    }
}

impl ModuleVisitor for WeightsAsGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.only.is_none_or(|ids| ids.contains(&param.id)) {
            self.ids.push(param.id);
            self.grads.register(param.id, param.val().inner());
        }
    }
}

/// Puts the stepped weights back, with each parameter's autodiff settings
/// (as Burn's `ModuleOptimizer` does).
struct Apply {
    stepped: AdamStepped,
    order: HashMap<ParamId, usize>,
}

impl ModuleMapper for Apply {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(&i) = self.order.get(&id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let mut updated = Tensor::from_inner(self.stepped.take::<D>(i));
        if let Some(strategy) = tensor.gradient_checkpointing_strategy() {
            updated = updated.with_gradient_checkpointing_strategy(strategy);
        }
        if tensor.is_require_grad() {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

/// Multiplies every parameter's gradient by `factor` (the per-tensor path;
/// the flat kernel does it in place).
struct Unscale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Unscale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g * self.factor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Distribution;

    #[derive(Module, Debug)]
    struct Two {
        a: Linear,
        b: Linear,
    }

    fn grads(net: &Two, seed: u64, d: &Device) -> GradientsParams {
        d.seed(seed);
        let x = Tensor::<2>::random([4, 3], Distribution::Normal(0.0, 1.0), d);
        let loss = net.b.forward(net.a.forward(x)).powf_scalar(2.0).sum();
        GradientsParams::from_grads(loss.backward(), net)
    }

    fn weights(net: &Two) -> Vec<f32> {
        let w = |l: &Linear| l.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let b = |l: &Linear| {
            let b = l.bias.as_ref().unwrap().val();
            b.into_data().try_to_vec::<f32>().unwrap()
        };
        [w(&net.a), b(&net.a), w(&net.b), b(&net.b)].concat()
    }

    /// The conversions between Burn's per-tensor states and the flat one
    /// (run on the CPU, where they are the same code as on a GPU): per
    /// tensor -> flat -> per tensor gives states that step exactly as the
    /// originals; a state kept for a parameter outside the flat layout
    /// keeps the state per tensor.
    #[test]
    fn flat_state_round_trips_through_burns() {
        let d = Device::flex().autodiff();
        d.seed(1);
        // Drawn now (parameters initialise lazily), and shared by both runs.
        let net0 = medtrans_networks::materialize(Two {
            a: LinearConfig::new(3, 5).init(&d),
            b: LinearConfig::new(5, 2).init(&d),
        });
        let mut net = net0.clone();
        let mut opt = NetworkAdam::new(Adam::new(0.5, 0.999, 1e-3));
        for s in 0..3 {
            net = opt.step(1e-2, net.clone(), grads(&net, 10 + s, &d), 1.0);
        }
        let layout = Layout::of(&net, &grads(&net, 20, &d));
        assert_eq!(layout.ids.len(), 4);
        let flat = opt.flatten(&net, &layout).expect("uniform states flatten");
        assert_eq!((flat.time, flat.m.dims()), (3, [3 * 5 + 5 + 5 * 2 + 2]));
        let mut round = opt.clone();
        round.flat = Some(flat);
        round.unflatten(&net);
        // The original per-tensor states, before flattening emptied them.
        let mut original = NetworkAdam::new(Adam::new(0.5, 0.999, 1e-3));
        let mut replay = net.clone();
        let mut start = net0;
        for s in 0..3 {
            start = original.step(1e-2, start.clone(), grads(&start, 10 + s, &d), 1.0);
        }
        assert_eq!(weights(&start), weights(&net));
        for s in 0..2 {
            replay = round.step(1e-2, replay.clone(), grads(&replay, 30 + s, &d), 1.0);
            start = original.step(1e-2, start.clone(), grads(&start, 30 + s, &d), 1.0);
        }
        assert_eq!(weights(&replay), weights(&start));

        // A layout without `b`'s bias, whose state is kept: no flat state.
        let mut partial = grads(&net, 40, &d);
        let _ = partial.remove::<1>(net.b.bias.as_ref().unwrap().id);
        let layout = Layout::of(&net, &partial);
        assert_eq!(layout.ids.len(), 3);
        assert!(original.flatten(&net, &layout).is_none());
    }
}
