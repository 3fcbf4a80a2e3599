//! Mixed precision: a network computes in its weights' dtype and answers in
//! f32.
//!
//! Burn 0.22 has no autocast. Instead the trainer runs each step through a
//! half-precision *view* of its f32 networks ([`cast_weights`]): every weight
//! is cast inside the autodiff graph, so the backward pass brings the
//! gradients back to the f32 master weights, and Adam updates those. The
//! networks' entry points cast their inputs to the weights' dtype and their
//! outputs back to f32, so losses, warps and image pools stay in f32, as
//! under PyTorch's autocast. Burn's group and instance norms widen their
//! statistics to f32 themselves. With f32 weights every cast is a no-op: no
//! kernel, no graph node.
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{FloatDType, Tensor};

/// A view of `module` whose weights are cast to `dtype`, still tracked by
/// autodiff: gradients of a loss computed through the view reach the
/// original (master) weights, in their own dtype.
pub fn cast_weights<M: Module>(module: M, dtype: FloatDType) -> M {
    module.map(&mut CastWeights(dtype))
}

struct CastWeights(FloatDType);

impl ModuleMapper for CastWeights {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        // `Param::map` keeps the id and does not make the cast a new leaf
        // (which `require_grad` would), so the graph reaches the master.
        param.map(|t| t.cast(self.0))
    }
}

/// The dtype of a module's first float weight (f32 for a module without
/// any).
pub fn weights_dtype<M: Module>(module: &M) -> FloatDType {
    let mut first = FirstDtype(None);
    module.visit(&mut first);
    first.0.unwrap_or(FloatDType::F32)
}

struct FirstDtype(Option<FloatDType>);

impl ModuleVisitor for FirstDtype {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.0.is_none() {
            self.0 = Some(param.val().dtype().into());
        }
    }
}

/// An input, cast to the dtype the network computes in.
pub(crate) fn enter<const D: usize, M: Module>(net: &M, x: Tensor<D>) -> Tensor<D> {
    x.cast(weights_dtype(net))
}

/// An output, back in f32.
pub(crate) fn leave<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.cast(FloatDType::F32)
}
