//! SSIM as scikit-image's `structural_similarity` computes it.

use medtrans_core::Slice;

const K1: f64 = 0.01;
const K2: f64 = 0.03;

/// SSIM with scikit-image's defaults, as RegGAN reports it: a 7x7 uniform
/// window, sample covariance (N/(N-1)), data range 2 for [-1, 1] images, and
/// the mean over the whole slice with a 3-pixel border cropped. `None` for
/// slices smaller than the window.
pub fn ssim(a: &Slice, b: &Slice) -> Option<f64> {
    let w = vec![1.0 / 7.0; 7];
    mean_ssim(a, b, &w, 49.0 / 48.0)
}

/// The "standard" SSIM of Wang et al.: an 11x11 Gaussian window with sigma
/// 1.5 (scikit-image's `gaussian_weights=True`, truncate 3.5), population
/// covariance, data range 2, 5-pixel border cropped.
pub fn ssim_gaussian(a: &Slice, b: &Slice) -> Option<f64> {
    let sigma = 1.5f64;
    let radius = (3.5 * sigma + 0.5) as i64;
    let mut w: Vec<f64> = (-radius..=radius)
        .map(|x| (-0.5 * (x * x) as f64 / (sigma * sigma)).exp())
        .collect();
    let s: f64 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= s);
    mean_ssim(a, b, &w, 1.0)
}

/// Mean SSIM over the pixels whose window lies inside the image (exactly the
/// region scikit-image keeps after cropping), with a separable window `w`.
fn mean_ssim(a: &Slice, b: &Slice, w: &[f64], cov_norm: f64) -> Option<f64> {
    assert_eq!(
        (a.width, a.height),
        (b.width, b.height),
        "SSIM of slices of different sizes"
    );
    let k = w.len();
    let (wd, ht) = (a.width, a.height);
    if wd < k || ht < k {
        return None;
    }
    let r = 2.0; // data range of [-1, 1]
    let c1 = (K1 * r) * (K1 * r);
    let c2 = (K2 * r) * (K2 * r);
    let (ow, oh) = (wd - k + 1, ht - k + 1);
    // Horizontal pass: for each row, windowed sums of x, y, xx, yy, xy.
    let mut hsum = vec![[0.0f64; 5]; ht * ow];
    for row in 0..ht {
        for col in 0..ow {
            let mut acc = [0.0f64; 5];
            for (t, &wt) in w.iter().enumerate() {
                let x = a.data[row * wd + col + t] as f64;
                let y = b.data[row * wd + col + t] as f64;
                acc[0] += wt * x;
                acc[1] += wt * y;
                acc[2] += wt * x * x;
                acc[3] += wt * y * y;
                acc[4] += wt * x * y;
            }
            hsum[row * ow + col] = acc;
        }
    }
    let mut total = 0.0f64;
    for row in 0..oh {
        for col in 0..ow {
            let mut m = [0.0f64; 5];
            for (t, &wt) in w.iter().enumerate() {
                let h = &hsum[(row + t) * ow + col];
                for i in 0..5 {
                    m[i] += wt * h[i];
                }
            }
            let [ux, uy, uxx, uyy, uxy] = m;
            let vx = cov_norm * (uxx - ux * ux);
            let vy = cov_norm * (uyy - uy * uy);
            let vxy = cov_norm * (uxy - ux * uy);
            let num = (2.0 * ux * uy + c1) * (2.0 * vxy + c2);
            let den = (ux * ux + uy * uy + c1) * (vx + vy + c2);
            total += num / den;
        }
    }
    Some(total / (ow * oh) as f64)
}
