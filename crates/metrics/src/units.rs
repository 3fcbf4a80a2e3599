//! Scores in the target's own units, as the SynthRAD challenge computes them
//! for MR -> synthetic CT: MAE and PSNR in HU inside a body mask, with PSNR
//! over a fixed dynamic range (-1024 to 3000 HU by default), SSIM and
//! MS-SSIM, on slices or on whole 3-D volumes.
//!
//! The paper's metrics ([`crate::nmae`], [`crate::psnr`], [`crate::ssim`])
//! work on normalised [-1, 1] slices, which makes numbers comparable across
//! contrasts but not with the CT literature, which reports HU. These work on
//! any array in row-major order with its `dims` (rows, columns) or (planes,
//! rows, columns). Each is checked against scikit-image and pytorch-msssim
//! on real CT and MR data (fixtures/metrics/synthrad.json, made by
//! scripts/make_synthrad_fixtures.py).

/// The intensity range that PSNR's peak and SSIM's constants refer to, and
/// that images are clipped to first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitRange {
    pub low: f64,
    pub high: f64,
}

impl UnitRange {
    /// SynthRAD's CT range, -1024 to 3000 HU.
    pub const SYNTHRAD_CT: UnitRange = UnitRange {
        low: -1024.0,
        high: 3000.0,
    };

    pub fn width(&self) -> f64 {
        self.high - self.low
    }

    fn clip(&self, v: f32) -> f64 {
        (v as f64).clamp(self.low, self.high)
    }
}

/// One image's scores in units; MS-SSIM is `None` when the image is too
/// small for five scales (the smaller of its last two sides must exceed 160
/// pixels, as pytorch-msssim requires).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitScores {
    pub mae: f64,
    pub psnr: f64,
    pub ssim: f64,
    pub ms_ssim: Option<f64>,
}

impl UnitScores {
    /// All four scores of `fake` against `real` inside `mask`; `None` when
    /// the mask is empty or the image is smaller than SSIM's 7-pixel window.
    pub fn compute(
        fake: &[f32],
        real: &[f32],
        mask: &[bool],
        dims: &[usize],
        range: UnitRange,
    ) -> Option<UnitScores> {
        Some(UnitScores {
            mae: mae_units(fake, real, mask)?,
            psnr: psnr_units(fake, real, mask, range)?,
            ssim: ssim_units(fake, real, mask, dims, range)?,
            ms_ssim: ms_ssim_units(fake, real, mask, dims, range),
        })
    }
}

fn check(fake: &[f32], real: &[f32], mask: &[bool]) {
    assert_eq!(fake.len(), real.len(), "images of different sizes");
    assert_eq!(mask.len(), real.len(), "mask does not match the image");
}

/// Mean absolute error over the mask, unclipped (SynthRAD's MAE).
pub fn mae_units(fake: &[f32], real: &[f32], mask: &[bool]) -> Option<f64> {
    check(fake, real, mask);
    let (mut sum, mut n) = (0.0f64, 0usize);
    for i in 0..real.len() {
        if mask[i] {
            sum += (fake[i] as f64 - real[i] as f64).abs();
            n += 1;
        }
    }
    (n > 0).then(|| sum / n as f64)
}

/// PSNR in dB over the mask, both images clipped to `range` and the peak
/// taken as its width (SynthRAD's "population range"). Infinite for equal
/// images.
pub fn psnr_units(fake: &[f32], real: &[f32], mask: &[bool], range: UnitRange) -> Option<f64> {
    check(fake, real, mask);
    let (mut sum, mut n) = (0.0f64, 0usize);
    for i in 0..real.len() {
        if mask[i] {
            let d = range.clip(fake[i]) - range.clip(real[i]);
            sum += d * d;
            n += 1;
        }
    }
    (n > 0).then(|| 10.0 * (range.width() * range.width() / (sum / n as f64)).log10())
}

/// Both images clipped to `range`, set to its low end outside the mask and
/// shifted to start at zero: what SynthRAD feeds its SSIM.
fn masked_for_ssim(img: &[f32], mask: &[bool], range: UnitRange) -> Vec<f64> {
    img.iter()
        .zip(mask)
        .map(|(&v, &m)| if m { range.clip(v) - range.low } else { 0.0 })
        .collect()
}

/// Both images as SynthRAD's SSIM and MS-SSIM take them.
fn prepared_pair(
    fake: &[f32],
    real: &[f32],
    mask: &[bool],
    range: UnitRange,
) -> (Vec<f64>, Vec<f64>) {
    check(fake, real, mask);
    (
        masked_for_ssim(fake, mask, range),
        masked_for_ssim(real, mask, range),
    )
}

/// SSIM as SynthRAD computes it: scikit-image's SSIM map (7-pixel uniform
/// window in every dimension, sample covariance, data range = the range's
/// width) on the images prepared by clipping and masking, averaged over the
/// mask's pixels whose window lies inside the image.
pub fn ssim_units(
    fake: &[f32],
    real: &[f32],
    mask: &[bool],
    dims: &[usize],
    range: UnitRange,
) -> Option<f64> {
    let (x, y) = prepared_pair(fake, real, mask, range);
    let (map, out_dims) = ssim_map(&x, &y, dims, range.width())?;
    // The map covers the interior region that skimage's crop(.., 3) keeps.
    let k = 3;
    let (mut sum, mut n) = (0.0f64, 0usize);
    for (j, s) in map.iter().enumerate() {
        if mask[interior_to_full(j, &out_dims, dims, k)] {
            sum += s;
            n += 1;
        }
    }
    (n > 0).then(|| sum / n as f64)
}

/// The flat index in the full image of interior position `j`, the interior
/// being the image less `k` pixels on every side.
fn interior_to_full(mut j: usize, inner: &[usize], full: &[usize], k: usize) -> usize {
    let mut idx = 0;
    let mut stride = 1;
    for a in (0..full.len()).rev() {
        let c = j % inner[a] + k;
        j /= inner[a];
        idx += c * stride;
        stride *= full[a];
    }
    idx
}

/// scikit-image's SSIM map on its valid region: a uniform window of 7 in
/// every dimension, covariances with the N/(N-1) sample correction.
fn ssim_map(
    x: &[f64],
    y: &[f64],
    dims: &[usize],
    data_range: f64,
) -> Option<(Vec<f64>, Vec<usize>)> {
    const W: usize = 7;
    if dims.iter().any(|&d| d < W) {
        return None;
    }
    let w = vec![1.0 / W as f64; W];
    let np = (W as f64).powi(dims.len() as i32);
    let cov_norm = np / (np - 1.0);
    let (m, out_dims) = windowed_moments(x, y, dims, &w, |_| true);
    let c1 = (0.01 * data_range).powi(2);
    let c2 = (0.03 * data_range).powi(2);
    let map = m
        .iter()
        .map(|&[ux, uy, uxx, uyy, uxy]| {
            let vx = cov_norm * (uxx - ux * ux);
            let vy = cov_norm * (uyy - uy * uy);
            let vxy = cov_norm * (uxy - ux * uy);
            ((2.0 * ux * uy + c1) * (2.0 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        })
        .collect();
    Some((map, out_dims))
}

/// Windowed means of x, y, x², y² and xy over the valid region: a separable
/// filter `w` along every axis for which `filter_axis(axis)` holds (other
/// axes are left as they are).
fn windowed_moments(
    x: &[f64],
    y: &[f64],
    dims: &[usize],
    w: &[f64],
    filter_axis: impl Fn(usize) -> bool,
) -> (Vec<[f64; 5]>, Vec<usize>) {
    let mut cur: Vec<[f64; 5]> = x
        .iter()
        .zip(y)
        .map(|(&a, &b)| [a, b, a * a, b * b, a * b])
        .collect();
    let mut d = dims.to_vec();
    for axis in (0..dims.len()).rev() {
        if filter_axis(axis) {
            (cur, d) = filter_valid(&cur, &d, axis, w);
        }
    }
    (cur, d)
}

/// Correlate every channel with `w` along `axis`, keeping only positions
/// where the window fits (no padding).
fn filter_valid<const C: usize>(
    data: &[[f64; C]],
    dims: &[usize],
    axis: usize,
    w: &[f64],
) -> (Vec<[f64; C]>, Vec<usize>) {
    let k = w.len();
    let n = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product();
    let outer: usize = dims[..axis].iter().product();
    let m = n - k + 1;
    let mut out = vec![[0.0f64; C]; outer * m * inner];
    for o in 0..outer {
        for i in 0..m {
            let dst = &mut out[(o * m + i) * inner..(o * m + i + 1) * inner];
            for (t, &wt) in w.iter().enumerate() {
                let src = &data[(o * n + i + t) * inner..(o * n + i + t + 1) * inner];
                for (dv, sv) in dst.iter_mut().zip(src) {
                    for c in 0..C {
                        dv[c] += wt * sv[c];
                    }
                }
            }
        }
    }
    let mut nd = dims.to_vec();
    nd[axis] = m;
    (out, nd)
}

/// MS-SSIM on images prepared as for [`ssim_units`] (clipped, background at
/// the range's low end, shifted to zero), with the range's width as data
/// range. `None` when the smaller of the last two sides is 160 or less.
pub fn ms_ssim_units(
    fake: &[f32],
    real: &[f32],
    mask: &[bool],
    dims: &[usize],
    range: UnitRange,
) -> Option<f64> {
    let (x, y) = prepared_pair(fake, real, mask, range);
    ms_ssim(&x, &y, dims, range.width())
}

/// The five MS-SSIM scales' weights of Wang, Simoncelli and Bovik (2003).
pub const MS_SSIM_WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];

/// Multi-scale SSIM (Wang et al. 2003) as pytorch-msssim computes it, in 2-D
/// or 3-D: an 11-sample Gaussian window (sigma 1.5) applied separably
/// without padding (an axis shorter than the window is not filtered),
/// population covariances, contrast-structure terms at the first four
/// scales and full SSIM at the fifth, each clamped at zero, and 2x average
/// pooling between scales (zero padding of one on odd sides, counted in
/// the average). `None` when the smaller of the last two sides is 160 or
/// less, where five scales do not fit the window.
pub fn ms_ssim(x: &[f64], y: &[f64], dims: &[usize], data_range: f64) -> Option<f64> {
    const WIN: usize = 11;
    assert_eq!(x.len(), y.len(), "images of different sizes");
    assert!(dims.len() >= 2, "MS-SSIM needs at least two dimensions");
    let smaller = dims[dims.len() - 2].min(dims[dims.len() - 1]);
    if smaller <= (WIN - 1) * 16 {
        return None;
    }
    // The taps in f32, then widened, exactly as pytorch-msssim builds them
    // (a window computed in f64 moves a 3-D score by about 1e-6).
    let sigma = 1.5f32;
    let mut w32: Vec<f32> = (0..WIN)
        .map(|i| {
            let c = i as f32 - (WIN / 2) as f32;
            (-(c * c) / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    // PyTorch's f32 sum rounds like a wide sum rounded once.
    let s = w32.iter().map(|&v| v as f64).sum::<f64>() as f32;
    w32.iter_mut().for_each(|v| *v /= s);
    let w: Vec<f64> = w32.into_iter().map(f64::from).collect();
    let c1 = (0.01 * data_range).powi(2);
    let c2 = (0.03 * data_range).powi(2);
    let (mut x, mut y, mut d) = (x.to_vec(), y.to_vec(), dims.to_vec());
    let mut result = 1.0f64;
    for (level, &weight) in MS_SSIM_WEIGHTS.iter().enumerate() {
        let (m, _) = windowed_moments(&x, &y, &d, &w, |a| d[a] >= WIN);
        let (mut ssim_sum, mut cs_sum) = (0.0f64, 0.0f64);
        for &[ux, uy, uxx, uyy, uxy] in &m {
            let vx = uxx - ux * ux;
            let vy = uyy - uy * uy;
            let vxy = uxy - ux * uy;
            let cs = (2.0 * vxy + c2) / (vx + vy + c2);
            cs_sum += cs;
            ssim_sum += (2.0 * ux * uy + c1) / (ux * ux + uy * uy + c1) * cs;
        }
        let n = m.len() as f64;
        let last = level == MS_SSIM_WEIGHTS.len() - 1;
        let term = if last { ssim_sum / n } else { cs_sum / n };
        result *= term.max(0.0).powf(weight);
        if !last {
            (x, _) = avg_pool2(&x, &d);
            (y, d) = avg_pool2(&y, &d);
        }
    }
    Some(result)
}

/// 2x average pooling along every axis, stride 2, with one zero of padding
/// in front of odd-sized axes, counted in the average (PyTorch's
/// `avg_pool2d/3d(kernel 2, padding = size % 2)`).
fn avg_pool2(data: &[f64], dims: &[usize]) -> (Vec<f64>, Vec<usize>) {
    let mut cur = data.to_vec();
    let mut d = dims.to_vec();
    for axis in 0..dims.len() {
        let n = d[axis];
        let pad = n % 2;
        let m = (n + 2 * pad - 2) / 2 + 1;
        let inner: usize = d[axis + 1..].iter().product();
        let outer: usize = d[..axis].iter().product();
        let mut out = vec![0.0f64; outer * m * inner];
        for o in 0..outer {
            for j in 0..m {
                for t in 0..2 {
                    let src = (2 * j + t) as isize - pad as isize;
                    if src < 0 || src as usize >= n {
                        continue;
                    }
                    let s =
                        &cur[(o * n + src as usize) * inner..(o * n + src as usize + 1) * inner];
                    let dst = &mut out[(o * m + j) * inner..(o * m + j + 1) * inner];
                    for (dv, sv) in dst.iter_mut().zip(s) {
                        *dv += 0.5 * sv;
                    }
                }
            }
        }
        cur = out;
        d[axis] = m;
    }
    (cur, d)
}

/// Grow a mask by `radius` pixels in every direction, diagonals included
/// (a square or cube structuring element, as `scipy.ndimage.binary_dilation`
/// with `np.ones((3,)*n)` applied `radius` times). SynthRAD scores inside a
/// dilated body outline, so that errors at the skin count.
pub fn dilate(mask: &[bool], dims: &[usize], radius: usize) -> Vec<bool> {
    let mut cur = mask.to_vec();
    if radius == 0 {
        return cur;
    }
    for axis in 0..dims.len() {
        let n = dims[axis];
        let inner: usize = dims[axis + 1..].iter().product();
        let outer: usize = dims[..axis].iter().product();
        let mut out = vec![false; cur.len()];
        for o in 0..outer {
            for i in 0..n {
                let lo = i.saturating_sub(radius);
                let hi = (i + radius).min(n - 1);
                let dst = (o * n + i) * inner;
                for s in lo..=hi {
                    let src = (o * n + s) * inner;
                    for c in 0..inner {
                        out[dst + c] |= cur[src + c];
                    }
                }
            }
        }
        cur = out;
    }
    cur
}
