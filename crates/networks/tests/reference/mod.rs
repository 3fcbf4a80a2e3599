//! Checks of the networks' ops against PyTorch (fixtures/torch, from
//! scripts/make_torch_fixtures.py), on any Burn device: the flex tests in
//! this crate and the GPU tests of medtrans-training both run them.
#![allow(dead_code)]
use burn::tensor::{Device, Tensor, TensorData};
use medtrans_networks::{resize_bilinear, warp, ResnetGenerator, ResnetGeneratorConfig};
use std::path::PathBuf;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/torch")
        .join(name)
}

pub fn npy(name: &str) -> Vec<f32> {
    medtrans_io::read_npy(&fixture(name)).unwrap().data
}

/// A fixture as `[N, C, H, W]` (leading 1s added).
pub fn load(name: &str, device: &Device) -> Tensor<4> {
    let a = medtrans_io::read_npy(&fixture(name)).unwrap();
    let mut shape = a.shape.clone();
    while shape.len() < 4 {
        shape.insert(0, 1);
    }
    Tensor::from_data(
        TensorData::new(a.data, [shape[0], shape[1], shape[2], shape[3]]),
        device,
    )
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

pub fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst <= tol, "{what}: max abs difference {worst} > {tol}");
}

/// RegGAN's warp, and its gradients to the image and to the field.
pub fn check_warp(device: &Device) {
    let d = device.clone().autodiff();
    let img = load("t1_32.npy", &d).require_grad();
    let field = load("field.npy", &d).require_grad();
    let weights = load("weights.npy", &d);
    let warped = warp(img.clone(), field.clone());
    let grads = (warped.clone() * weights).sum().backward();
    assert_close(&values(warped), &npy("warped.npy"), 1e-5, "warped image");
    let gi = img.grad(&grads).unwrap();
    let gf = field.grad(&grads).unwrap();
    assert_close(
        &values(gi),
        &npy("warp_grad_image.npy"),
        1e-4,
        "d warp / d image",
    );
    assert_close(
        &values(gf),
        &npy("warp_grad_field.npy"),
        1e-4,
        "d warp / d field",
    );
}

/// R's bilinear upsampling against `F.interpolate(..., mode="bilinear",
/// align_corners=False)`: a doubling and an odd ratio, with gradients.
pub fn check_resize(device: &Device) {
    let d = device.clone().autodiff();
    for name in ["resize_double", "resize_odd"] {
        let x = load(&format!("{name}_in.npy"), &d).require_grad();
        let w = load(&format!("{name}_weights.npy"), &d);
        let [_, _, oh, ow] = w.dims();
        let out = resize_bilinear(x.clone(), [oh, ow]);
        assert_eq!(out.dims(), w.dims(), "{name}: shape");
        let grads = (out.clone() * w).sum().backward();
        assert_close(
            &values(out),
            &npy(&format!("{name}_out.npy")),
            1e-6,
            &format!("{name}: output"),
        );
        assert_close(
            &values(x.grad(&grads).unwrap()),
            &npy(&format!("{name}_grad.npy")),
            1e-5,
            &format!("{name}: gradient"),
        );
    }
}

/// CycleGAN's ResnetGenerator with PyTorch's weights gives PyTorch's output.
pub fn check_resnet_with_pytorch_weights(device: &Device) {
    let cfg = ResnetGeneratorConfig {
        in_channels: 1,
        out_channels: 1,
        ngf: 8,
        n_blocks: 2,
    };
    let g =
        ResnetGenerator::load_pytorch(&cfg, &fixture("resnet_ngf8_blocks2.safetensors"), device)
            .unwrap();
    let out = g.forward(load("t1_32.npy", device));
    assert_close(
        &values(out),
        &npy("resnet_out.npy"),
        1e-4,
        "generator output",
    );
}
