//! Networks against PyTorch: fixtures from scripts/make_torch_fixtures.py.
mod reference;
use burn::tensor::{Device, Tensor};
use medtrans_networks::{
    identity_grid, warp, Discriminator, DiscriminatorConfig, GeneratorConfig, GeneratorKind,
    RegistrationConfig, ResnetGenerator, ResnetGeneratorConfig,
};
use reference::{assert_close, fixture, load, values};

#[test]
fn warp_and_its_gradients_match_pytorch() {
    reference::check_warp(&Device::flex());
}

#[test]
fn bilinear_upsampling_and_its_gradient_match_pytorch() {
    reference::check_resize(&Device::flex());
}

#[test]
fn zero_field_warp_is_the_identity() {
    let d = Device::flex();
    let img = load("t1_32.npy", &d);
    let out = warp(img.clone(), Tensor::zeros([1, 2, 32, 32], &d));
    assert_close(&values(out), &values(img), 1e-5, "identity warp");
    let g = identity_grid(2, 3, &d);
    assert_eq!(
        values(g),
        vec![0., 0., 1., 0., 2., 0., 0., 1., 1., 1., 2., 1.]
    );
}

#[test]
fn resnet_generator_with_pytorch_weights_matches_pytorch() {
    let d = Device::flex();
    reference::check_resnet_with_pytorch_weights(&d);
    let cfg = ResnetGeneratorConfig {
        in_channels: 1,
        out_channels: 1,
        ngf: 8,
        n_blocks: 2,
    };
    // A file for another architecture is refused, not half-loaded.
    let wrong = ResnetGeneratorConfig { n_blocks: 3, ..cfg };
    let err =
        ResnetGenerator::load_pytorch(&wrong, &fixture("resnet_ngf8_blocks2.safetensors"), &d)
            .unwrap_err();
    assert!(err.contains("resnet_ngf8_blocks2"), "{err}");
}

/// The same weights as a PyTorch checkpoint (zip and legacy formats) give
/// the same output; checkpoints whose pickle asks for anything but tensors
/// are refused, and nothing in them runs.
#[test]
fn pth_checkpoints_load_and_hostile_pickles_are_refused() {
    let d = Device::flex();
    let cfg = ResnetGeneratorConfig {
        in_channels: 1,
        out_channels: 1,
        ngf: 8,
        n_blocks: 2,
    };
    let x = reference::load("t1_32.npy", &d);
    let want = reference::npy("resnet_out.npy");
    for f in ["resnet_ngf8_blocks2.pth", "resnet_ngf8_blocks2_legacy.pth"] {
        let g =
            ResnetGenerator::load_pytorch(&cfg, &fixture(f), &d).unwrap_or_else(|e| panic!("{e}"));
        reference::assert_close(&reference::values(g.forward(x.clone())), &want, 1e-4, f);
    }
    let marker = std::path::Path::new("/tmp/medtrans-pth-was-executed");
    let _ = std::fs::remove_file(marker);
    let err = ResnetGenerator::load_pytorch(&cfg, &fixture("hostile.pth"), &d).unwrap_err();
    assert!(
        err.contains("hostile.pth") && err.contains("`posix.system`") && err.contains("payload"),
        "{err}"
    );
    assert!(!marker.exists(), "the pickle's command ran");
    let err = ResnetGenerator::load_pytorch(&cfg, &fixture("numpy_scalar.pth"), &d).unwrap_err();
    assert!(err.contains("numpy") && err.contains("epoch"), "{err}");
    // Not a checkpoint at all.
    let err =
        ResnetGenerator::load_pytorch(&cfg, &fixture("resnet_out.npy").with_extension("pth"), &d)
            .unwrap_err();
    assert!(err.contains("resnet_out.pth"), "{err}");
}

#[test]
fn output_shapes() {
    let d = Device::flex();
    let x = Tensor::<4>::zeros([2, 1, 64, 64], &d);
    for kind in [GeneratorKind::Resnet, GeneratorKind::Unet] {
        let g = GeneratorConfig {
            kind,
            ngf: 4,
            n_blocks: 1,
            ..Default::default()
        }
        .init(64, &d);
        assert_eq!(g.forward(x.clone()).dims(), [2, 1, 64, 64], "{kind:?}");
    }
    let patch: Discriminator = DiscriminatorConfig {
        ndf: 4,
        ..Default::default()
    }
    .init(&d);
    assert_eq!(patch.forward(x.clone()).dims(), [2, 1, 6, 6]);
    let per_image = DiscriminatorConfig {
        ndf: 4,
        per_image: true,
        ..Default::default()
    }
    .init(&d);
    assert_eq!(per_image.forward(x.clone()).dims(), [2, 1, 1, 1]);
    // R adapts its depth: 5 levels at 64 px, 7 at 256 px; the field is
    // near zero at initialisation.
    let rc = RegistrationConfig::default();
    assert_eq!(rc.levels_for(64), 5);
    assert_eq!(rc.levels_for(256), 7);
    let r = rc.init(64, 1, &d);
    let field = r.forward(x.clone(), x);
    assert_eq!(field.dims(), [2, 2, 64, 64]);
    let max = values(field.abs()).into_iter().fold(0f32, f32::max);
    assert!(
        max < 1e-2,
        "R should start near the identity, max |field| {max}"
    );
}

#[test]
fn biases_start_at_zero_and_train() {
    use burn::module::Module;
    let d = Device::flex().autodiff();
    let g = ResnetGeneratorConfig {
        ngf: 4,
        n_blocks: 1,
        ..Default::default()
    }
    .init(&d);
    let out = g.forward(Tensor::ones([1, 1, 16, 16], &d)).mean();
    let grads = out.backward();
    let mut biases = 0;
    g.visit(&mut BiasCheck {
        grads: &grads,
        path: vec![],
        biases: &mut biases,
    });
    assert!(biases > 5, "{biases}");
}

struct BiasCheck<'a> {
    grads: &'a burn::tensor::Gradients,
    path: Vec<String>,
    biases: &'a mut usize,
}

impl burn::module::ModuleVisitor for BiasCheck<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        let name = self.path.join(".");
        assert!(
            param.val().grad(self.grads).is_some(),
            "{name} gets no gradient"
        );
        if name.ends_with("bias") {
            *self.biases += 1;
            let v = param.val().abs().max().into_scalar::<f32>();
            assert_eq!(v, 0.0, "{name} starts at {v}");
        }
    }
}
