//! Loss terms. Each mode of the trainer is a weighted sum of these; the
//! weights live in the training config, never here.
use burn::tensor::activation::log_sigmoid;
use burn::tensor::Tensor;
use medtrans_networks::warp;
use serde::{Deserialize, Serialize};

/// How a discriminator's scores are turned into a loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GanLoss {
    /// Least squares (LSGAN): mean squared distance to 1 (real) or 0 (fake).
    /// The default of CycleGAN and RegGAN; steadier than the log loss.
    #[default]
    Lsgan,
    /// The original GAN loss: binary cross-entropy on logits.
    #[serde(alias = "bce")]
    Vanilla,
}

impl GanLoss {
    /// Loss of scores `pred` against the label real (true) or fake (false),
    /// averaged over every patch and image.
    pub fn loss<const D: usize>(self, pred: Tensor<D>, real: bool) -> Tensor<1> {
        match self {
            GanLoss::Lsgan => {
                let target = if real { 1.0 } else { 0.0 };
                (pred - target).powi_scalar(2).mean()
            }
            // BCE(sigmoid(x), 1) = -log sigmoid(x); BCE(sigmoid(x), 0) = -log sigmoid(-x).
            GanLoss::Vanilla => {
                let x = if real { pred } else { pred.neg() };
                log_sigmoid(x).mean().neg()
            }
        }
    }
}

/// Mean absolute difference.
pub fn l1<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<1> {
    (a - b).abs().mean()
}

/// Mean squared difference: the predictor's regression loss.
pub fn mse<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<1> {
    (a - b).powi_scalar(2).mean()
}

/// RegGAN's correction loss: L1 between the registered translation
/// `warp(fake, field)` and the (possibly misaligned) target.
pub fn correction(fake: Tensor<4>, field: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    l1(warp(fake, field), target)
}

/// The gradient difference loss (Nie et al., MR-to-CT synthesis): the mean
/// squared difference between the magnitudes of the images' forward
/// differences along rows, plus that along columns. It penalises blur that
/// an L1 term tolerates, keeping edges sharp.
pub fn gradient_difference(fake: Tensor<4>, real: Tensor<4>) -> Tensor<1> {
    let [_, _, h, w] = fake.dims();
    let dy = |t: Tensor<4>| (t.clone().narrow(2, 1, h - 1) - t.narrow(2, 0, h - 1)).abs();
    let dx = |t: Tensor<4>| (t.clone().narrow(3, 1, w - 1) - t.narrow(3, 0, w - 1)).abs();
    let rows = (dy(fake.clone()) - dy(real.clone())).powi_scalar(2).mean();
    let cols = (dx(fake) - dx(real)).powi_scalar(2).mean();
    rows + cols
}

/// RegGAN's smoothness loss on a field `[N, 2, H, W]`: the mean squared
/// forward difference along rows plus that along columns.
pub fn smoothness(field: Tensor<4>) -> Tensor<1> {
    let [_, _, h, w] = field.dims();
    let dy = field.clone().narrow(2, 1, h - 1) - field.clone().narrow(2, 0, h - 1);
    let dx = field.clone().narrow(3, 1, w - 1) - field.narrow(3, 0, w - 1);
    dy.powi_scalar(2).mean() + dx.powi_scalar(2).mean()
}

/// Pixel-wise cross-entropy of class `logits` `[N, C, H, W]` against
/// one-hot labels of the same shape, averaged over pixels: PyTorch's
/// `F.cross_entropy(logits, labels)` with integer labels `[N, H, W]`. The
/// shape-consistency loss and the segmentors' own training use it. The
/// log-softmax is computed stably (max subtracted).
pub fn cross_entropy(logits: Tensor<4>, one_hot: Tensor<4>) -> Tensor<1> {
    let log_p = burn::tensor::activation::log_softmax(logits, 1);
    (log_p * one_hot).sum_dim(1).mean().neg()
}
