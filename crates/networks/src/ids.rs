use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::Tensor;

/// Give every parameter an id derived from `namespace` and its path.
///
/// Burn keys optimiser state by parameter id, and ids are random per
/// process. With stable ids, a network rebuilt and loaded from safetensors
/// on resume meets its saved Adam moments again.
pub fn stable_param_ids<M: Module>(module: M, namespace: &str) -> M {
    let mut mapper = StableIds {
        path: vec![namespace.to_string()],
    };
    module.map(&mut mapper)
}

struct StableIds {
    path: Vec<String>,
}

/// FNV-1a: stable across runs and platforms, unlike `DefaultHasher`.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

impl ModuleMapper for StableIds {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.id = ParamId::from(fnv1a(&self.path.join(".")));
        param
    }
}

/// Materialise every lazily initialised parameter now.
///
/// Burn 0.22 parameters start lazy, and clones share that lazy state: a
/// `clone().no_grad()` of a module never run yet would switch gradients
/// off for the original too once it initialises. Materialised parameters
/// make clones independent, so a frozen copy (D inside G's step) is safe.
pub fn materialize<M: Module>(module: M) -> M {
    module.visit(&mut Materialize);
    module
}

struct Materialize;

impl ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// Set every bias to zero, as the reference `init_weights` does (Burn's
/// initialisers fill biases from the weight distribution).
pub(crate) fn zero_biases<M: Module>(module: M) -> M {
    module.map(&mut ZeroBias { path: Vec::new() })
}

struct ZeroBias {
    path: Vec<String>,
}

impl ModuleMapper for ZeroBias {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.path.last().is_some_and(|n| n == "bias") {
            // zeros_like drops the autodiff flag; keep the bias trainable.
            param.map(|t| {
                let trainable = t.is_require_grad();
                t.zeros_like().set_require_grad(trainable)
            })
        } else {
            param
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DiscriminatorConfig;
    use burn::tensor::Device;

    struct AllTrainable(bool);

    impl ModuleVisitor for AllTrainable {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 &= param.val().is_require_grad();
        }
    }

    fn trainable<M: Module>(m: &M) -> bool {
        let mut v = AllTrainable(true);
        m.visit(&mut v);
        v.0
    }

    /// Without `materialize` this fails: the frozen clone's setting
    /// reaches the original through the shared lazy state.
    #[test]
    fn a_frozen_clone_leaves_a_materialised_module_trainable() {
        let device = Device::flex().autodiff();
        let d = materialize(DiscriminatorConfig::default().init(&device));
        let frozen = d.clone().no_grad();
        assert!(!trainable(&frozen));
        assert!(trainable(&d));
    }
}
