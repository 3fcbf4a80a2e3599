use burn::module::{Module, ModuleMapper, Param, ParamId};
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
