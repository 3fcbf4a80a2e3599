//! medtrans's own GPU kernels (crates/kernels) against the Burn ops they
//! replace, on whatever Vulkan device this machine has (Mesa's lavapipe
//! included). Built with the `gpu` feature only; `scripts/test_gpu.sh`
//! runs it beside tests/gpu.rs.
#![cfg(feature = "gpu-core")]

mod common;
#[path = "../../networks/tests/json_fixture/mod.rs"]
mod json_fixture;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, AdamState, Optimizer};
use burn::tensor::{Device, Distribution, FloatDType, Tensor};
use common::{gpu, rel_diff};
use medtrans_training::LaunchCount;

fn values<const D: usize>(t: &Tensor<D>) -> Vec<f32> {
    t.clone().into_data().try_into_vec_as::<f32>().unwrap()
}

/// A weight, a moment or a gradient drawn on the host (the same on any
/// device), then moved to `d`.
fn drawn<const D: usize>(shape: [usize; D], seed: u64, d: &Device) -> Tensor<D> {
    let flex = Device::flex();
    flex.seed(seed);
    Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), &flex).to_device(d)
}

/// `t` as a convolution leaves its output: the same NCHW values over an
/// NHWC buffer (strides, not a copy, make it NCHW).
fn nhwc(t: Tensor<4>) -> Tensor<4> {
    let d = t.device();
    Tensor::<4>::from_data(t.permute([0, 2, 3, 1]).into_data(), &d).permute([0, 3, 1, 2])
}

/// Launches of `op` on a `[2, 4, 16, 16]` input: every launch of its
/// forward pass, and the launches of kernels named like `name` (case and
/// underscores aside) in the backward pass of sum(op(x) * u). Flushed, not
/// read: reading a channels-last output would launch a copy into NCHW
/// order.
fn launches_each_way(
    d: &Device,
    name: &str,
    op: impl Fn(&Tensor<4>) -> Tensor<4>,
) -> (usize, usize) {
    let x = drawn([2, 4, 16, 16], 9, d).autodiff().require_grad();
    let count = LaunchCount::start().expect("a gpu build counts");
    let y = op(&x);
    d.flush().unwrap();
    let forward = count.finish().total;
    let upstream = drawn(y.dims(), 10, d).autodiff();
    let loss = (y * upstream).sum();
    let _ = values(&loss);
    let count = LaunchCount::start().expect("a gpu build counts");
    let grads = loss.backward();
    d.flush().unwrap();
    let backward = count.finish();
    let _ = x.grad(&grads).unwrap();
    eprintln!(
        "{name}: forward {forward} launch(es); backward {:?}",
        backward.by_kernel
    );
    let named = |k: &str| k.to_lowercase().replace('_', "").contains(name);
    let ours = backward
        .by_kernel
        .iter()
        .filter(|k| named(&k.0))
        .map(|k| k.1)
        .sum();
    (forward, ours)
}

struct Run<const D: usize> {
    w: Tensor<D>,
    state: Option<AdamState<D>>,
}

impl<const D: usize> Run<D> {
    fn step<O: Optimizer<State<D> = AdamState<D>>>(&mut self, o: &O, lr: f64, g: Tensor<D>) {
        let (w, state) = o.step(lr, self.w.clone(), g, self.state.take());
        self.w = w;
        self.state = state;
    }

    fn all(&self) -> [Vec<f32>; 3] {
        let m = &self.state.as_ref().unwrap().momentum;
        [values(&self.w), values(&m.moment_1), values(&m.moment_2)]
    }
}

/// Issue 28, item 2: the one-kernel Adam step equals Burn's Adam on the
/// same GPU to 1e-6 of each tensor's scale, weights and both moments, over
/// 20 steps, with and without weight decay, contiguous and strided
/// gradients; and it launches one kernel per weight tensor per step where
/// Burn's launches many.
#[test]
fn one_kernel_adam_matches_burns_adam() {
    let Some(d) = gpu() else { return };
    for weight_decay in [0.0f32, 1e-2] {
        let ours = medtrans_training::adam::Adam::new(0.5, 0.999, weight_decay);
        let mut config = AdamConfig::new()
            .with_beta_1(0.5)
            .with_beta_2(0.999)
            .with_epsilon(medtrans_training::adam::EPSILON);
        if weight_decay > 0.0 {
            config = config.with_weight_decay(Some(WeightDecayConfig::new(weight_decay)));
        }
        let burns = config.build();
        let shape = [16, 8, 3, 3];
        let w0 = drawn(shape, 1, &d) * 0.1;
        let mut a = Run {
            w: w0.clone(),
            state: None,
        };
        let mut b = Run { w: w0, state: None };
        let mut counted = (0, 0);
        for step in 0..20u64 {
            // Gradients of changing scale, as in training.
            // Every other step a strided gradient (an NCHW view of an NHWC
            // buffer, as a convolution's weight gradient is).
            let scale = 1.0 / (1.0 + step as f32);
            let g = if step % 2 == 0 {
                drawn(shape, 100 + step, &d) * scale
            } else {
                nhwc(drawn([16, 8, 3, 3], 100 + step, &d) * scale)
            };
            // Computed before counting (a fusion build would merge it
            // into whatever reads it first).
            let _ = values(&g);
            let count = (step == 5).then(LaunchCount::start).flatten();
            a.step(&ours, 2e-4, g.clone());
            let ours_read = values(&a.w);
            if let Some(c) = count {
                counted.0 = c.finish().total;
            }
            let count = (step == 5).then(LaunchCount::start).flatten();
            b.step(&burns, 2e-4, g);
            let burns_read = values(&b.w);
            if let Some(c) = count {
                counted.1 = c.finish().total;
            }
            let diff = rel_diff(&ours_read, &burns_read);
            assert!(
                diff <= 1e-6,
                "weight decay {weight_decay}, step {}: weights differ by {diff:e}",
                step + 1
            );
        }
        for (name, (x, y)) in ["weight", "moment 1", "moment 2"]
            .iter()
            .zip(a.all().iter().zip(b.all().iter()))
        {
            let diff = rel_diff(x, y);
            eprintln!("weight decay {weight_decay}: {name} after 20 steps differs by {diff:e}");
            assert!(diff <= 1e-6, "{name}: {diff:e}");
        }
        let (ours_n, burns_n) = counted;
        eprintln!("one Adam step of one tensor: {ours_n} launch(es), Burn's Adam {burns_n}");
        assert_eq!(ours_n, 1, "the one-kernel Adam launched {ours_n} kernels");
        assert!(burns_n >= 1);
        // Both keep Burn's state layout: the same time count.
        assert_eq!(
            a.state.as_ref().unwrap().momentum.time,
            b.state.as_ref().unwrap().momentum.time
        );
    }
}

fn kernel_norm(x: Tensor<4>) -> Tensor<4> {
    medtrans_kernels::norm::instance_norm(&x, 1e-5).expect("an instance-norm kernel on the GPU")
}

/// Issue 28, item 3: instance norm as one kernel forward and one backward
/// matches PyTorch's values and gradients (fixtures/networks/norm.json,
/// float64, constant planes included) in f32 and f16; a constant plane
/// normalises to exactly 0.
#[test]
fn instance_norm_kernel_matches_pytorch() {
    let Some(d) = gpu() else { return };
    let ad = d.clone().autodiff();
    json_fixture::norm::check_instance_cases(&kernel_norm, &ad, FloatDType::F32, 2e-5);
    // f16's 11-bit mantissa: its input alone is rounded by up to 5e-4.
    json_fixture::norm::check_instance_cases(&kernel_norm, &ad, FloatDType::F16, 1e-2);
    // Strided input and upstream gradient (NHWC buffers, as convolutions
    // leave them) give the same values and gradients, bit for bit.
    let run = |strided: bool| {
        let lay = |t: Tensor<4>| if strided { nhwc(t) } else { t };
        let x = lay(drawn([2, 3, 5, 7], 31, &d)).autodiff().require_grad();
        let y = kernel_norm(x.clone());
        let grads = (y.clone() * lay(drawn([2, 3, 5, 7], 32, &d)).autodiff())
            .sum()
            .backward();
        (values(&y), values(&x.grad(&grads).unwrap()))
    };
    assert_eq!(run(true), run(false), "strided against contiguous");
    for dtype in [FloatDType::F32, FloatDType::F16] {
        for value in [0.7f32, -1.0, 300.0] {
            let x = Tensor::<4>::full([1, 2, 9, 7], value, &d).cast(dtype);
            let y = values(&kernel_norm(x).cast(FloatDType::F32));
            assert!(
                y.iter().all(|&v| v == 0.0),
                "a constant plane of {value} in {dtype:?}: {:?}",
                &y[..4]
            );
        }
    }
}

/// One launch forward and one backward, where Burn's composite norm
/// launches about seven each way.
#[test]
fn instance_norm_is_one_launch_each_way() {
    let Some(d) = gpu() else { return };
    let launches = launches_each_way(&d, "instancenorm", |x| kernel_norm(x.clone()));
    assert_eq!(launches, (1, 1), "(forward, backward) launches");
}

/// Norm and (leaky) ReLU in one kernel each way equal the norm kernel
/// followed by Burn's activation: the same values (bit for bit) and the
/// same input gradient (to 1e-6 of its scale), for ReLU and the
/// discriminators' leaky ReLU; in f16 to its rounding.
#[test]
fn norm_and_activation_in_one_kernel_equal_the_two_ops() {
    use burn::tensor::activation::{leaky_relu, relu};
    let Some(d) = gpu() else { return };
    for dtype in [FloatDType::F32, FloatDType::F16] {
        for slope in [0.0f32, 0.2] {
            let run = |fused: bool, x: Tensor<4>, seed: u64| {
                let x = x.cast(dtype).autodiff().require_grad();
                let y = if fused {
                    medtrans_kernels::norm::instance_norm_act(&x, 1e-5, slope).unwrap()
                } else if slope == 0.0 {
                    relu(kernel_norm(x.clone()))
                } else {
                    leaky_relu(kernel_norm(x.clone()), slope as f64)
                };
                let u = drawn(x.dims(), seed, &d).cast(dtype).autodiff();
                let grads = (y.clone() * u).sum().backward();
                let dx = x.grad(&grads).unwrap().cast(FloatDType::F32);
                (values(&y.cast(FloatDType::F32)), values(&dx))
            };
            let x = drawn([2, 3, 12, 10], 21, &d) * 3.0 + 1.0;
            let (fused, apart) = (run(true, x.clone(), 22), run(false, x, 22));
            // A constant plane normalises to exact zeros, where the
            // activation's derivative must be Burn's (1 for the leaky
            // ReLU, 0 for ReLU), as on the CPU.
            let c = Tensor::<4>::full([1, 2, 4, 4], 0.7, &d);
            assert_eq!(
                run(true, c.clone(), 23).1,
                run(false, c, 23).1,
                "{dtype:?} slope {slope}: constant plane"
            );
            let tol = if dtype == FloatDType::F16 { 2e-3 } else { 1e-6 };
            if dtype == FloatDType::F32 {
                assert_eq!(fused.0, apart.0, "{dtype:?} slope {slope}: values");
            } else {
                // f16 rounds once fused, twice apart (the norm, then the
                // leaky slope): one unit in the last place.
                let v = rel_diff(&fused.0, &apart.0);
                assert!(v <= 1e-3, "{dtype:?} slope {slope}: values differ by {v:e}");
            }
            let g = rel_diff(&fused.1, &apart.1);
            eprintln!("{dtype:?} slope {slope}: input gradients differ by {g:e}");
            assert!(
                g <= tol,
                "{dtype:?} slope {slope}: input gradients differ by {g:e}"
            );
        }
    }
}

/// Reflect padding in one kernel each way equals Burn's `pad(Reflect)` on
/// the same GPU: values bit for bit, input gradients to 1e-6 of their
/// scale (the sums' order differs), for pads of 1 and 3 (the ResNet's),
/// odd sizes, a strided (NHWC) input and f16; one launch each way.
#[test]
fn reflect_pad_kernel_equals_burns_pad() {
    use burn::tensor::ops::PadMode;
    let Some(d) = gpu() else { return };
    for (pad, strided, dtype) in [
        (1, false, FloatDType::F32),
        (3, false, FloatDType::F32),
        (3, true, FloatDType::F32),
        (1, true, FloatDType::F16),
    ] {
        let run = |ours: bool| {
            let x = drawn([2, 3, 7, 9], 41, &d);
            let x = if strided { nhwc(x) } else { x };
            let x = x.cast(dtype).autodiff().require_grad();
            let y = if ours {
                medtrans_kernels::pad::reflect_pad(&x, pad).unwrap()
            } else {
                x.clone().pad((pad, pad, pad, pad), PadMode::Reflect)
            };
            let u = drawn(y.dims(), 42, &d).cast(dtype).autodiff();
            let grads = (y.clone() * u).sum().backward();
            let dx = x.grad(&grads).unwrap().cast(FloatDType::F32);
            (values(&y.cast(FloatDType::F32)), values(&dx))
        };
        let (ours, burns) = (run(true), run(false));
        let what = format!("pad {pad}, strided {strided}, {dtype:?}");
        assert_eq!(ours.0, burns.0, "{what}: values");
        let g = rel_diff(&ours.1, &burns.1);
        let tol = if dtype == FloatDType::F16 { 2e-3 } else { 1e-6 };
        assert!(g <= tol, "{what}: gradients differ by {g:e}");
    }
    let launches = launches_each_way(&d, "reflectpad", |x| {
        medtrans_kernels::pad::reflect_pad(x, 3).unwrap()
    });
    assert_eq!(launches, (1, 1), "(forward, backward) launches");
}

/// (Leaky) ReLU in one kernel each way equals Burn's `relu` and
/// `leaky_relu` on the same GPU: values and input gradients bit for bit in
/// f32 (to rounding in f16), from contiguous and strided (NHWC) inputs;
/// one launch each way.
#[test]
fn leaky_relu_kernel_equals_burns() {
    use burn::tensor::activation::{leaky_relu, relu};
    let Some(d) = gpu() else { return };
    for (slope, strided, dtype) in [
        (0.2, false, FloatDType::F32),
        (0.0, true, FloatDType::F32),
        (0.2, true, FloatDType::F16),
    ] {
        let run = |ours: bool| {
            // Exact zeros in it too (relu of a normal draw), where the
            // derivative is Burn's.
            let x = relu(drawn([2, 3, 6, 5], 51, &d)) - relu(drawn([2, 3, 6, 5], 54, &d) - 1.0);
            let x = if strided { nhwc(x) } else { x };
            let x = x.cast(dtype).autodiff().require_grad();
            let y = match (ours, slope == 0.0) {
                (true, _) => medtrans_kernels::act::leaky_relu(&x, slope).unwrap(),
                (false, true) => relu(x.clone()),
                (false, false) => leaky_relu(x.clone(), slope),
            };
            let u = drawn([2, 3, 6, 5], 52, &d).cast(dtype).autodiff();
            let grads = (y.clone() * u).sum().backward();
            let dx = x.grad(&grads).unwrap().cast(FloatDType::F32);
            (values(&y.cast(FloatDType::F32)), values(&dx))
        };
        let what = format!("slope {slope}, strided {strided}, {dtype:?}");
        assert_eq!(run(true), run(false), "{what}");
    }
    let launches = launches_each_way(&d, "leakyrelu", |x| {
        medtrans_kernels::act::leaky_relu(x, 0.2).unwrap()
    });
    assert_eq!(launches, (1, 1), "(forward, backward) launches");
}
