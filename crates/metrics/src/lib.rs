//! Metrics for image-to-image translation, defined as the RegGAN reference
//! code computes them so that medtrans' numbers compare with the paper's.
//!
//! Images are [`Slice`]s in [-1, 1]. The paper's foreground is every pixel
//! whose *real* (target) value is not exactly -1: background was set to -1
//! when the data were normalised. Each function is checked against numpy and
//! scikit-image on real ICBM152 slices (fixtures/metrics, made by
//! scripts/make_fixtures.py).

mod dice;
mod scores;
mod ssim;
mod stats;
mod units;

pub use dice::{dice, dice_best_threshold, dice_per_label, ThresholdDice};
pub use scores::{
    format_p, metric_keys_csv, scores_csv, subject_table, summary_table, Metric, SliceScore,
    Summary,
};
pub use ssim::{ssim, ssim_gaussian};
pub use stats::{mean_std, paired_t_test, wilcoxon_signed_rank, TTest, Wilcoxon};
pub use units::{
    dilate, mae_units, ms_ssim, ms_ssim_units, psnr_units, ssim_units, UnitRange, UnitScores,
    MS_SSIM_WEIGHTS,
};

use medtrans_core::Slice;

/// The paper's foreground rule: pixels where the real image is not -1.
pub fn paper_foreground(real: &Slice) -> Vec<bool> {
    real.data.iter().map(|&v| v != -1.0).collect()
}

fn check_sizes(a: &Slice, b: &Slice) {
    assert_eq!(
        (a.width, a.height),
        (b.width, b.height),
        "metric on slices of different sizes"
    );
}

/// Mean over the masked pixels of `f(fake, real)`; `None` when the mask is empty.
fn masked_mean(
    fake: &Slice,
    real: &Slice,
    mask: &[bool],
    f: impl Fn(f64, f64) -> f64,
) -> Option<f64> {
    check_sizes(fake, real);
    assert_eq!(mask.len(), real.data.len(), "mask does not match the slice");
    let (mut sum, mut n) = (0.0f64, 0usize);
    for ((&x, &y), &m) in fake.data.iter().zip(&real.data).zip(mask) {
        if m {
            sum += f(x as f64, y as f64);
            n += 1;
        }
    }
    (n > 0).then(|| sum / n as f64)
}

/// Normalised MAE: mean |fake - real| over the foreground, divided by 2 so
/// that it reads as a fraction of the [-1, 1] range (RegGAN's `MAE`).
/// `None` when the real slice has no foreground.
pub fn nmae(fake: &Slice, real: &Slice) -> Option<f64> {
    nmae_masked(fake, real, &paper_foreground(real))
}

/// [`nmae`] over an explicit mask (e.g. a brain mask).
pub fn nmae_masked(fake: &Slice, real: &Slice, mask: &[bool]) -> Option<f64> {
    masked_mean(fake, real, mask, |x, y| (x - y).abs()).map(|m| m / 2.0)
}

/// PSNR in dB: both images mapped to [0, 1], MSE over the foreground, peak 1,
/// 100 dB when the MSE is below 1e-10 (RegGAN's `PSNR`).
///
/// The reference code indexes `fake[x][y]` with two index arrays, which picks
/// whole rows instead of the masked pixels; medtrans uses the masked pixels,
/// which is the definition the paper states.
pub fn psnr(fake: &Slice, real: &Slice) -> Option<f64> {
    psnr_masked(fake, real, &paper_foreground(real))
}

/// [`psnr`] over an explicit mask.
pub fn psnr_masked(fake: &Slice, real: &Slice, mask: &[bool]) -> Option<f64> {
    masked_mean(fake, real, mask, |x, y| {
        let d = (x + 1.0) / 2.0 - (y + 1.0) / 2.0;
        d * d
    })
    .map(|mse| {
        if mse < 1e-10 {
            100.0
        } else {
            -10.0 * mse.log10()
        }
    })
}

/// MAE in the target's original units (HU for CT) over the foreground, for
/// images that were normalised by mapping `lo..hi` to [-1, 1].
pub fn mae_in_units(fake: &Slice, real: &Slice, lo: f64, hi: f64) -> Option<f64> {
    let scale = (hi - lo) / 2.0;
    masked_mean(fake, real, &paper_foreground(real), |x, y| {
        (x - y).abs() * scale
    })
}
