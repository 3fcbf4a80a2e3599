//! Loss terms against PyTorch (scripts/make_torch_fixtures.py).
use burn::tensor::{Device, Tensor, TensorData};
use medtrans_losses::{correction, cross_entropy, gradient_difference, l1, smoothness, GanLoss};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/torch")
        .join(name)
}

fn load(name: &str, device: &Device) -> Tensor<4> {
    let a = medtrans_io::read_npy(&fixture(name)).unwrap();
    let s = &a.shape;
    let shape = match s.len() {
        2 => [1, 1, s[0], s[1]],
        4 => [s[0], s[1], s[2], s[3]],
        _ => panic!("unexpected fixture shape {s:?}"),
    };
    Tensor::from_data(TensorData::new(a.data, shape), device)
}

fn expected(key: &str) -> f64 {
    let text = std::fs::read_to_string(fixture("expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v[key].as_f64().unwrap_or_else(|| panic!("{key} missing"))
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f32>() as f64
}

fn assert_rel(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-5 * want.abs().max(1.0),
        "{what}: {got} vs PyTorch {want}"
    );
}

#[test]
fn smoothness_value_and_gradient_match_pytorch() {
    let d = Device::flex().autodiff();
    let field = load("field.npy", &d).require_grad();
    let loss = smoothness(field.clone());
    let grads = loss.clone().backward();
    assert_rel(scalar(loss), expected("smoothness"), "smoothness");
    let got: Vec<f32> = field
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap();
    let want = medtrans_io::read_npy(&fixture("smoothness_grad.npy"))
        .unwrap()
        .data;
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-6, "smoothness gradient differs by {worst}");
}

#[test]
fn gan_losses_match_pytorch() {
    let d = Device::flex();
    let scores = load("weights.npy", &d);
    assert_rel(
        scalar(GanLoss::Lsgan.loss(scores.clone(), true)),
        expected("lsgan_real"),
        "LSGAN real",
    );
    assert_rel(
        scalar(GanLoss::Lsgan.loss(scores.clone(), false)),
        expected("lsgan_fake"),
        "LSGAN fake",
    );
    assert_rel(
        scalar(GanLoss::Vanilla.loss(scores.clone(), true)),
        expected("bce_real"),
        "BCE real",
    );
    assert_rel(
        scalar(GanLoss::Vanilla.loss(scores, false)),
        expected("bce_fake"),
        "BCE fake",
    );
}

#[test]
fn correction_loss_is_l1_after_the_warp() {
    let d = Device::flex();
    let img = load("t1_32.npy", &d);
    let field = load("field.npy", &d);
    assert_rel(
        scalar(correction(img.clone(), field, img.clone())),
        expected("l1_warped_vs_image"),
        "correction",
    );
    // A zero field leaves nothing to correct.
    let zero = Tensor::zeros([1, 2, 32, 32], &d);
    assert!(scalar(correction(img.clone(), zero, img.clone())) < 1e-6);
    assert_eq!(scalar(l1(img.clone(), img)), 0.0);
}

#[test]
fn gradient_difference_matches_pytorch() {
    let d = Device::flex();
    let img = load("t1_32.npy", &d);
    let warped = medtrans_networks::warp(img.clone(), load("field.npy", &d));
    assert_rel(
        scalar(gradient_difference(warped, img.clone())),
        expected("gdl_warped_vs_image"),
        "gradient difference",
    );
    // Same edges, any offset: nothing to penalise.
    assert!(scalar(gradient_difference(img.clone() + 0.5, img)) < 1e-10);
}

#[test]
fn cross_entropy_value_and_gradient_match_pytorch() {
    let d = Device::flex().autodiff();
    let logits = load("ce_logits.npy", &d).require_grad();
    let [n, c, h, w] = logits.dims();
    let labels = medtrans_io::read_npy(&fixture("ce_labels.npy")).unwrap();
    assert_eq!(labels.shape, [n, h, w]);
    // One-hot [N, C, H, W] from the integer labels [N, H, W].
    let mut one_hot = vec![0f32; n * c * h * w];
    for i in 0..n {
        for p in 0..h * w {
            let k = labels.data[i * h * w + p] as usize;
            one_hot[(i * c + k) * h * w + p] = 1.0;
        }
    }
    let one_hot = Tensor::from_data(TensorData::new(one_hot, [n, c, h, w]), &d);
    let loss = cross_entropy(logits.clone(), one_hot);
    let grads = loss.clone().backward();
    assert_rel(scalar(loss), expected("cross_entropy"), "cross-entropy");
    let got: Vec<f32> = logits
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap();
    let want = medtrans_io::read_npy(&fixture("ce_grad.npy")).unwrap().data;
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-6, "cross-entropy gradient differs by {worst}");
}
