//! Overlap scores for segmentations and for anatomy kept through translation.

use medtrans_core::Slice;
use std::collections::BTreeMap;

/// Dice of two binary masks; `None` when both are empty.
pub fn dice(a: &[bool], b: &[bool]) -> Option<f64> {
    assert_eq!(a.len(), b.len(), "Dice of masks of different sizes");
    let (mut inter, mut sa, mut sb) = (0usize, 0usize, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        inter += (x && y) as usize;
        sa += x as usize;
        sb += y as usize;
    }
    (sa + sb > 0).then(|| 2.0 * inter as f64 / (sa + sb) as f64)
}

/// Dice for every non-zero label present in either label map (values are
/// rounded to integers).
pub fn dice_per_label(a: &Slice, b: &Slice) -> BTreeMap<i64, f64> {
    assert_eq!(a.data.len(), b.data.len(), "label maps of different sizes");
    let mut counts: BTreeMap<i64, [usize; 3]> = BTreeMap::new();
    for (&x, &y) in a.data.iter().zip(&b.data) {
        let (x, y) = (x.round() as i64, y.round() as i64);
        if x != 0 {
            counts.entry(x).or_default()[0] += 1;
        }
        if y != 0 {
            counts.entry(y).or_default()[1] += 1;
        }
        if x == y && x != 0 {
            counts.entry(x).or_default()[2] += 1;
        }
    }
    counts
        .into_iter()
        .map(|(l, [na, nb, both])| (l, 2.0 * both as f64 / (na + nb) as f64))
        .collect()
}

/// Result of [`dice_best_threshold`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdDice {
    pub dice: f64,
    /// The chosen intensity interval [lo, hi) in image units.
    pub lo: f32,
    pub hi: f32,
    /// The same interval as bin indices [first, end).
    pub bins: (usize, usize),
}

/// Dice of the best intensity window: the asymmetric-cycle paper segments a
/// translated image by keeping intensities between a lower and an upper
/// threshold chosen per image to best match the ground truth. Thresholds run
/// over the edges of `bins` equal bins of [-1, 1]; pixel values are binned in
/// f32 exactly as the numpy reference does.
pub fn dice_best_threshold(img: &Slice, gt: &[bool], bins: usize) -> ThresholdDice {
    assert_eq!(
        img.data.len(),
        gt.len(),
        "image and mask of different sizes"
    );
    assert!(bins > 0);
    let mut h_all = vec![0usize; bins];
    let mut h_gt = vec![0usize; bins];
    for (&v, &g) in img.data.iter().zip(gt) {
        let b = ((v + 1.0) / 2.0 * bins as f32).floor();
        let b = if b.is_nan() {
            0
        } else {
            (b.max(0.0) as usize).min(bins - 1)
        };
        h_all[b] += 1;
        if g {
            h_gt[b] += 1;
        }
    }
    let cum = |h: &[usize]| {
        std::iter::once(0)
            .chain(h.iter().scan(0, |s, &x| {
                *s += x;
                Some(*s)
            }))
            .collect::<Vec<_>>()
    };
    let (ca, cg) = (cum(&h_all), cum(&h_gt));
    let total_gt = cg[bins];
    let mut best = ThresholdDice {
        dice: 0.0,
        lo: -1.0,
        hi: -1.0,
        bins: (0, 0),
    };
    for i in 0..bins {
        for j in i + 1..=bins {
            let p = ca[j] - ca[i];
            let tp = cg[j] - cg[i];
            if p + total_gt == 0 {
                continue;
            }
            let d = 2.0 * tp as f64 / (p + total_gt) as f64;
            if d > best.dice {
                let edge = |k: usize| -1.0 + 2.0 * k as f32 / bins as f32;
                best = ThresholdDice {
                    dice: d,
                    lo: edge(i),
                    hi: edge(j),
                    bins: (i, j),
                };
            }
        }
    }
    best
}
