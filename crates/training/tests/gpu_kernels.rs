//! medtrans's own GPU kernels (crates/kernels) against the Burn ops they
//! replace, on whatever Vulkan device this machine has (Mesa's lavapipe
//! included). Built with the `gpu` feature only; `scripts/test_gpu.sh`
//! runs it beside tests/gpu.rs.
#![cfg(feature = "gpu-core")]

mod common;
#[path = "../../networks/tests/json_fixture/mod.rs"]
mod json_fixture;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, AdamState, GradientsParams, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Distribution, FloatDType, Tensor};
use common::{gpu, rel_diff};
use medtrans_training::adam::NetworkAdam;
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
    let (d, dtype) = (t.device(), t.dtype());
    // With its dtype: `from_data` alone would make it the device's f32.
    Tensor::<4>::from_data(t.permute([0, 2, 3, 1]).into_data(), (&d, dtype)).permute([0, 3, 1, 2])
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

/// A network of independent branches, so that a step can leave one
/// branch without a gradient: 5 convolutions, 10 weight tensors (more than
/// lavapipe binds in one flat-Adam launch), their weight gradients
/// channels-last as Burn's GPU convolutions leave them.
#[derive(Module, Debug)]
struct Branches {
    convs: Vec<Conv2d>,
}

impl Branches {
    fn new(d: &Device) -> Self {
        d.seed(11);
        let convs = (0..5)
            .map(|_| {
                Conv2dConfig::new([3, 4], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(d)
            })
            .collect();
        Self { convs }
    }

    /// The gradients of sum_i conv_i(x) * u_i at step `step` (the branches
    /// in `skip` left out of the loss: they get no gradient).
    fn grads(&self, step: u64, skip: Option<usize>, d: &Device) -> GradientsParams {
        let x = drawn([2, 3, 8, 8], 200 + step, d).autodiff();
        let u = drawn([2, 4, 8, 8], 300 + step, d).autodiff();
        let loss = self
            .convs
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != skip)
            .map(|(_, c)| (c.forward(x.clone()) * u.clone()).sum())
            .reduce(|a, b| a + b)
            .unwrap();
        GradientsParams::from_grads(loss.backward(), self)
    }

    fn values(&self) -> Vec<f32> {
        self.convs
            .iter()
            .flat_map(|c| {
                let mut v = values(&c.weight.val());
                v.extend(values(&c.bias.as_ref().unwrap().val()));
                v
            })
            .collect()
    }
}

fn burns_adam() -> ModuleOptimizer {
    ModuleOptimizer::from(
        AdamConfig::new()
            .with_beta_1(0.5)
            .with_beta_2(0.999)
            .with_epsilon(medtrans_training::adam::EPSILON)
            .with_weight_decay(Some(WeightDecayConfig::new(1e-2)))
            .build(),
    )
}

fn network_adam() -> NetworkAdam {
    NetworkAdam::new(medtrans_training::adam::Adam::new(0.5, 0.999, 1e-2))
}

/// Issue 28, item 2: a network's Adam in one pass over flat moments
/// matches Burn's per-tensor Adam to 1e-6 over 20 steps, in a few launches
/// (one per group of tensors the device can bind) where a per-tensor
/// optimiser launches once per tensor. A step where one branch has no
/// gradient (Burn leaves its state alone) falls back to the per-tensor
/// states and still agrees; so does a loss scale undone inside the kernel.
#[test]
fn network_adam_matches_burns_adam() {
    let Some(d) = gpu() else { return };
    let d = d.autodiff();
    let mut ours = (Branches::new(&d), network_adam());
    let mut burns = (ours.0.clone(), burns_adam());
    let tensors = 10;
    let mut launches = None;
    for step in 0..20u64 {
        // Step 12 leaves branch 4 out; from then on its step count differs
        // from the others', and the optimiser keeps per-tensor states.
        let skip = (step == 12).then_some(4);
        let (lr, factor) = (2e-4, if step % 3 == 0 { 0.5 } else { 1.0 });
        let g = ours.0.grads(step, skip, &d);
        let _ = ours.0.values();
        let count = (step == 5).then(LaunchCount::start).flatten();
        let net = ours.1.step(lr, ours.0.clone(), g, factor);
        d.flush().unwrap();
        if let Some(c) = count {
            launches = Some(c.finish().total);
        }
        ours.0 = net;
        // Burn's Adam gets the same gradients, multiplied by the factor.
        let g = scaled_grads(&burns.0, step, skip, factor, &d);
        burns.0 = burns.1.step(lr, burns.0.clone(), g);
        let diff = rel_diff(&ours.0.values(), &burns.0.values());
        assert!(
            diff <= 1e-6,
            "step {}: weights differ by {diff:e}",
            step + 1
        );
    }
    let launches = launches.unwrap();
    eprintln!("one network Adam step of {tensors} tensors: {launches} launch(es)");
    // Under Burn's fusion the batch cannot reach its tensors, and Burn's
    // per-tensor path steps (the values above still agree).
    if !cfg!(feature = "fusion") {
        assert!(
            (1..=tensors / 2).contains(&launches),
            "the flat Adam launched {launches} kernels for {tensors} tensors"
        );
    }
}

/// The gradients Burn's optimiser gets in [`network_adam_matches_burns_adam`]:
/// the same loss's, scaled by `factor` as the loss scale's undoing does.
fn scaled_grads(
    net: &Branches,
    step: u64,
    skip: Option<usize>,
    factor: f64,
    d: &Device,
) -> GradientsParams {
    let mut g = net.grads(step, skip, d);
    if factor != 1.0 {
        for c in &net.convs {
            let (w, b) = (c.weight.id, c.bias.as_ref().unwrap().id);
            if let Some(t) = g.remove::<4>(w) {
                g.register(w, t * factor);
            }
            if let Some(t) = g.remove::<1>(b) {
                g.register(b, t * factor);
            }
        }
    }
    g
}

/// The flat state saves in Burn's per-tensor format: Burn's Adam loads it
/// and steps as the network Adam goes on stepping; and a state Burn's Adam
/// saved loads into the network Adam, which gathers it flat.
#[test]
fn network_adam_checkpoints_are_burns_format() {
    let Some(d) = gpu() else { return };
    let d = d.autodiff();
    let dir = tempfile::tempdir().unwrap();
    let (ours_path, burns_path) = (dir.path().join("ours.bpk"), dir.path().join("burns.bpk"));
    let mut ours = (Branches::new(&d), network_adam());
    let mut burns = (ours.0.clone(), burns_adam());
    for step in 0..4u64 {
        let g = ours.0.grads(step, None, &d);
        ours.0 = ours.1.step(1e-3, ours.0.clone(), g, 1.0);
        let g = burns.0.grads(step, None, &d);
        burns.0 = burns.1.step(1e-3, burns.0.clone(), g);
    }
    ours.1.save(&ours.0, &ours_path).unwrap();
    burns.1.save(&burns_path).unwrap();
    // Crossed: Burn's Adam from our file, ours from Burn's.
    let mut a = (ours.0.clone(), burns_adam().load(&ours_path).unwrap());
    let mut b = (burns.0.clone(), network_adam().load(&burns_path).unwrap());
    for step in 4..8u64 {
        let g = a.0.grads(step, None, &d);
        a.0 = a.1.step(1e-3, a.0.clone(), g);
        let g = ours.0.grads(step, None, &d);
        ours.0 = ours.1.step(1e-3, ours.0.clone(), g, 1.0);
        let g = b.0.grads(step, None, &d);
        b.0 = b.1.step(1e-3, b.0.clone(), g, 1.0);
        let g = burns.0.grads(step, None, &d);
        burns.0 = burns.1.step(1e-3, burns.0.clone(), g);
        let diff = rel_diff(&a.0.values(), &ours.0.values());
        assert!(
            diff <= 1e-6,
            "step {}: Burn's Adam from our file: {diff:e}",
            step + 1
        );
        let diff = rel_diff(&b.0.values(), &burns.0.values());
        assert!(
            diff <= 1e-6,
            "step {}: ours from Burn's file: {diff:e}",
            step + 1
        );
    }
}

/// The patched im2col of Burn's GPU weight gradient (patches/burn-cubecl:
/// one gather kernel instead of a slice assignment per kernel tap) equals
/// the CPU's weight gradient (flex, patched and checked against PyTorch in
/// conv_reference.rs) on the shapes medtrans's networks use and the edges
/// of its tap geometry: 7x7 and 3x3 at stride 1 with padding, 3x3 and 4x4
/// at stride 2, dilation, a kernel wider than the padded image's reach in
/// places, batch 2, odd sizes, a channels-last input; one launch builds the
/// columns.
#[test]
// Under fusion, Burn's tensors are fusion's: the patched path is reached
// only through a fused program.
#[cfg(not(feature = "fusion"))]
fn im2col_weight_gradient_matches_the_cpu() {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    let Some(d) = gpu() else { return };
    // (input, weight, stride, padding, dilation)
    type Case = ([usize; 4], [usize; 4], usize, usize, usize);
    let cases: &[Case] = &[
        ([1, 3, 16, 16], [4, 3, 7, 7], 1, 3, 1),
        ([2, 4, 9, 11], [5, 4, 3, 3], 1, 1, 1),
        ([1, 4, 16, 16], [8, 4, 3, 3], 2, 1, 1),
        ([2, 3, 17, 15], [6, 3, 4, 4], 2, 1, 1),
        ([1, 2, 12, 12], [3, 2, 3, 3], 1, 2, 2),
        ([1, 2, 5, 5], [3, 2, 5, 5], 1, 4, 1),
    ];
    for (i, &(x_shape, w_shape, stride, padding, dilation)) in cases.iter().enumerate() {
        let options = ConvOptions::new([stride; 2], [padding; 2], [dilation; 2], 1);
        let flex = Device::flex();
        let x = drawn(x_shape, 400 + i as u64, &flex);
        let w = drawn(w_shape, 500 + i as u64, &flex);
        let y_shape = conv2d(x.clone(), w.clone(), None, options.clone()).dims();
        let u = drawn(y_shape, 600 + i as u64, &flex);
        let cpu = {
            let w = w.clone().autodiff().require_grad();
            let y = conv2d(x.clone().autodiff(), w.clone(), None, options.clone());
            let grads = (y * u.clone().autodiff()).sum().backward();
            values(&w.grad(&grads).unwrap())
        };
        // The input as a convolution leaves it (channels-last) in every
        // other case: the kernel reads through strides.
        let x_gpu = x.to_device(&d);
        let x_gpu = if i % 2 == 1 { nhwc(x_gpu) } else { x_gpu };
        let u_gpu = u.to_device(&d);
        let _ = (values(&x_gpu), values(&u_gpu));
        let count = LaunchCount::start().expect("a gpu build counts");
        let gpu = medtrans_kernels::conv::conv2d_weight_grad_im2col(
            &x_gpu,
            &u_gpu,
            w_shape,
            [stride; 2],
            [padding; 2],
            [dilation; 2],
        )
        .expect("the im2col weight gradient takes a dense 2-D convolution");
        d.flush().unwrap();
        let launched = count.finish();
        let gpu = values(&gpu);
        let diff = rel_diff(&gpu, &cpu);
        eprintln!(
            "case {i}: differs by {diff:e}; launches {:?}",
            launched.by_kernel
        );
        assert!(
            diff <= 1e-5,
            "case {i} ({x_shape:?} * {w_shape:?}): {diff:e}"
        );
        let slices: usize = launched
            .by_kernel
            .iter()
            .filter(|k| k.0.contains("Slice"))
            .map(|k| k.1)
            .sum();
        let im2col: usize = launched
            .by_kernel
            .iter()
            .filter(|k| k.0.to_lowercase().contains("im2col"))
            .map(|k| k.1)
            .sum();
        assert_eq!(
            (slices, im2col),
            (0, 1),
            "case {i}: {:?}",
            launched.by_kernel
        );
    }
}

/// The bilinear doubling kernel (R's upsampling) equals the CPU's
/// separable stencil (`networks::resize_bilinear`, itself checked against
/// PyTorch's `interpolate`; tests/gpu.rs checks the kernel against the same
/// fixture) in values and input gradient: the smallest input (2 x 2), odd
/// and unequal sizes, batch 2, a channels-last input, f32 and f16; one
/// launch each way.
#[test]
fn bilinear_doubling_kernel_matches_the_cpu() {
    let Some(d) = gpu() else { return };
    let shapes = [[2, 3, 8, 8], [1, 2, 2, 2], [1, 4, 3, 5], [2, 1, 16, 4]];
    for (i, shape) in shapes.into_iter().enumerate() {
        let flex = Device::flex();
        let x = drawn(shape, 700 + i as u64, &flex);
        let out = [2 * shape[2], 2 * shape[3]];
        let u = drawn([shape[0], shape[1], out[0], out[1]], 800 + i as u64, &flex);
        let (y_cpu, dx_cpu) = {
            let x = x.clone().autodiff().require_grad();
            let y = medtrans_networks::resize_bilinear(x.clone(), out);
            let grads = (y.clone() * u.clone().autodiff()).sum().backward();
            (values(&y), values(&x.grad(&grads).unwrap()))
        };
        for (dtype, tolerance) in [(FloatDType::F32, 1e-6), (FloatDType::F16, 1e-2)] {
            let x_gpu = x.clone().to_device(&d).cast(dtype);
            let x_gpu = if i % 2 == 1 { nhwc(x_gpu) } else { x_gpu };
            let x_gpu = x_gpu.autodiff().require_grad();
            let y = medtrans_kernels::resize::double_bilinear(&x_gpu)
                .expect("a doubling kernel on the GPU");
            let upstream = u.clone().to_device(&d).cast(dtype).autodiff();
            let grads = (y.clone() * upstream).sum().backward();
            let y = values(&y.cast(FloatDType::F32));
            let dx = values(&x_gpu.grad(&grads).unwrap());
            let (dy, ddx) = (rel_diff(&y, &y_cpu), rel_diff(&dx, &dx_cpu));
            eprintln!("{shape:?} {dtype:?}: values {dy:e}, gradient {ddx:e}");
            assert!(
                dy <= tolerance,
                "{shape:?} {dtype:?}: values differ by {dy:e}"
            );
            assert!(
                ddx <= tolerance,
                "{shape:?} {dtype:?}: gradients differ by {ddx:e}"
            );
        }
    }
    let launches = launches_each_way(&d, "double", |x| {
        medtrans_kernels::resize::double_bilinear(x).unwrap()
    });
    assert_eq!(launches, (1, 1), "(forward, backward) launches");
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
