//! Mixed precision: a network's half-precision view (`cast_weights`)
//! computes close to the f32 network on a real slice, and its gradients
//! reach the f32 master weights, close to the f32 gradients.
mod reference;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, FloatDType, Gradients, Tensor};
use medtrans_networks::{
    cast_weights, materialize, weights_dtype, DiscriminatorConfig, GeneratorConfig, GeneratorKind,
    RegistrationConfig,
};
use reference::{load, values};

/// Every parameter's gradient, flattened, in visiting order.
struct Grads<'a>(&'a Gradients, Vec<Vec<f32>>);

impl ModuleVisitor for Grads<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let g = p.val().grad(self.0).expect("every weight has a gradient");
        assert_eq!(
            g.dtype(),
            FloatDType::F32.into(),
            "master gradients are f32"
        );
        self.1.push(values(g));
    }
}

fn grads_of<M: Module>(net: &M, grads: &Gradients) -> Vec<Vec<f32>> {
    let mut v = Grads(grads, Vec::new());
    net.visit(&mut v);
    v.1
}

/// ||a - b|| / ||b|| over all values.
fn rel_err(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

/// A fixed linear read-out of the output: its gradient is a fixed pattern,
/// as a loss's would be, not a multiple of the output (which instance
/// norms project out, leaving rounding noise to compare).
fn probe(out: Tensor<4>) -> Tensor<1> {
    let n = out.dims().iter().product::<usize>();
    let w: Vec<f32> = (0..n).map(|i| ((i * 37) % 11) as f32 / 5.0 - 1.0).collect();
    let w = Tensor::<1>::from_floats(w.as_slice(), &out.device()).reshape(out.dims());
    (out * w).mean()
}

/// Output and gradients through the `dtype` view against f32: `out_tol`
/// on the output, `grad_tol` on each weight's gradient (as a whole).
fn check<M: Module>(
    net: M,
    forward: impl Fn(&M, Tensor<4>) -> Tensor<4>,
    x: Tensor<4>,
    dtype: FloatDType,
    (out_tol, grad_tol): (f64, f64),
    what: &str,
) {
    let net = materialize(net);
    let out32 = forward(&net, x.clone());
    let g32 = grads_of(&net, &probe(out32.clone()).backward());

    let view = cast_weights(net.clone(), dtype);
    assert_eq!(weights_dtype(&view), dtype, "{what}: the view's weights");
    assert_eq!(weights_dtype(&net), FloatDType::F32, "{what}: the master's");
    let out = forward(&view, x);
    assert_eq!(
        out.dtype(),
        FloatDType::F32.into(),
        "{what}: answers in f32"
    );
    let e = rel_err(&values(out.clone()), &values(out32));
    assert!(e < out_tol, "{what} {dtype:?}: output differs by {e:.2e}");
    // Gradients of the master, through the view.
    let g = grads_of(&net, &probe(out).backward());
    assert_eq!(g.len(), g32.len());
    // Gradients that are zero in exact arithmetic (a conv bias just before
    // an instance norm) are rounding noise in both: each is measured
    // against at least 5 % of the largest gradient.
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let floor = g32.iter().map(|v| norm(v)).fold(0.0, f64::max) / 20.0;
    let worst = g
        .iter()
        .zip(&g32)
        .map(|(a, b)| rel_err(a, b) * norm(b) / norm(b).max(floor))
        .fold(0.0, f64::max);
    assert!(
        worst < grad_tol,
        "{what} {dtype:?}: a gradient differs by {worst:.2e}"
    );
}

/// (output, gradient) tolerances. PyTorch's autocast on the same slice and
/// probe (`scripts/autocast_error.py`) moves the ResNet G's output by 1.7 %
/// and a gradient by up to 24 % in bf16 (0.2 % and 8 % in f16), and D's by
/// 0.4 % and 10 % (0.2 % and 2 %): instance norms' backward subtracts
/// nearly equal terms. The bars are PyTorch's errors with some room.
const TOLERANCES: [(FloatDType, (f64, f64)); 2] = [
    (FloatDType::BF16, (0.05, 0.3)),
    (FloatDType::F16, (0.01, 0.15)),
];

#[test]
fn half_precision_views_match_f32_on_a_real_slice() {
    let d = Device::flex().autodiff();
    d.seed(3);
    // A T1 slice of the ICBM template, 32 px.
    let x = load("t1_32.npy", &d);
    for (dtype, tol) in TOLERANCES {
        let g = GeneratorConfig {
            kind: GeneratorKind::Resnet,
            ngf: 8,
            n_blocks: 2,
            ..Default::default()
        }
        .init(32, &d);
        check(g, |g, x| g.forward(x), x.clone(), dtype, tol, "ResNet G");
        let dcfg = DiscriminatorConfig {
            in_channels: 1,
            ndf: 8,
            per_image: false,
        };
        check(
            dcfg.init(&d),
            |n, x| n.forward(x),
            x.clone(),
            dtype,
            tol,
            "D",
        );
        let r = RegistrationConfig::default().init(32, 1, &d);
        // R registers the slice to a shifted copy of itself.
        let moved = Tensor::cat(
            vec![x.clone().narrow(3, 1, 31), x.clone().narrow(3, 0, 1)],
            3,
        );
        check(
            r,
            move |r, x| r.forward(x, moved.clone()),
            x.clone(),
            dtype,
            tol,
            "R",
        );
    }
}
