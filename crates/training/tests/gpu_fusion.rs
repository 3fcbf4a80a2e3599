//! Burn 0.22.1's fusion backend computes wrong values in medtrans's
//! networks, with autotune on or off (docs/fusion-bug.md). This is the
//! smallest program found that shows it: `x + conv(x)` with `x` tracking
//! gradients reads back wrong after a backward pass.
//!
//! Ignored: it passes in the `gpu` build, which leaves fusion out; in a
//! build with the `fusion` feature it fails. Run it with
//!
//!   MEDTRANS_GPU_FEATURES=gpu,fusion scripts/test_gpu.sh --ignored fusion
//!
//! to check a later Burn before turning fusion on.
#![cfg(feature = "gpu-core")]

mod common;
use burn::module::Param;
use burn::nn::conv::Conv2dConfig;
use burn::nn::PaddingConfig2d;
use burn::tensor::{Tensor, TensorData};
use common::gpu;

#[test]
#[ignore = "fails with the `fusion` feature (Burn 0.22.1): docs/fusion-bug.md"]
fn fusion_reads_a_residual_back_right_after_backward() {
    let Some(gpu) = gpu() else { return };
    let d = gpu.autodiff();
    // A 1-channel 3x3 convolution with fixed weights (0.1 * (k - 4)) and
    // bias 0.05, so that every run reads the same numbers.
    let mut conv = Conv2dConfig::new([1, 1], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(&d);
    let w: Vec<f32> = (0..9).map(|k| 0.1 * (k as f32 - 4.0)).collect();
    conv.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w, [1, 1, 3, 3]), &d));
    conv.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(vec![0.05f32], [1]),
        &d,
    )));
    let n = 32 * 32;
    let v: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
    let x = Tensor::<4>::from_data(TensorData::new(v, [1, 1, 32, 32]), &d);
    let read = |t: Tensor<4>| t.into_data().try_into_vec_as::<f32>().unwrap();
    let want = read(x.clone() + conv.forward(x.clone()));
    let x = x.require_grad();
    let out = x.clone() + conv.forward(x.clone());
    // An upstream gradient that is not all ones.
    let w: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.4)
        .collect();
    let w = Tensor::<4>::from_data(TensorData::new(w, [1, 1, 32, 32]), &d);
    let _grads = (out.clone() * w).sum().backward();
    let got = read(out);
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let first_wrong = got.iter().zip(&want).position(|(a, b)| a != b);
    assert!(
        worst == 0.0,
        "x + conv(x) read after backward differs by up to {worst} (first at index {first_wrong:?}): got {:?}, want {:?}",
        &got[..8],
        &want[..8]
    );
}
