//! Summaries for per-slice metric lists and the paired test used to compare
//! two models on the same slices.

/// Mean and population standard deviation (numpy's default `ddof=0`), skipping
/// non-finite values; `None` for an empty list.
pub fn mean_std(values: &[f64]) -> Option<(f64, f64)> {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    Some((mean, var.sqrt()))
}

/// Result of a two-sided Wilcoxon signed-rank test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wilcoxon {
    /// min(W+, W-), as scipy reports it.
    pub statistic: f64,
    pub p_value: f64,
    /// Pairs used (zero differences are dropped).
    pub n: usize,
    /// Whether the exact null distribution was used (n <= 50, no ties, no zeros).
    pub exact: bool,
}

/// Paired two-sided Wilcoxon signed-rank test of `a` against `b`, as
/// `scipy.stats.wilcoxon` computes it by default: zero differences dropped,
/// exact distribution for up to 50 pairs without ties or zeros, otherwise the
/// normal approximation with tie correction (no continuity correction). One
/// difference: for 13 pairs or fewer with ties or zeros scipy runs a
/// permutation test, where this uses the normal approximation.
/// `None` when no pair differs.
pub fn wilcoxon_signed_rank(a: &[f64], b: &[f64]) -> Option<Wilcoxon> {
    assert_eq!(a.len(), b.len(), "paired test needs equal lengths");
    let all: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| x - y)
        .filter(|x| x.is_finite())
        .collect();
    let has_zeros = all.contains(&0.0);
    let mut d: Vec<f64> = all.iter().copied().filter(|x| *x != 0.0).collect();
    let n = d.len();
    if n == 0 {
        return None;
    }
    d.sort_by(|x, y| x.abs().total_cmp(&y.abs()));
    // Average ranks of |d|, and the tie correction term.
    let mut ranks = vec![0.0; n];
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && d[j + 1].abs() == d[i].abs() {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        ranks[i..=j].iter_mut().for_each(|x| *x = r);
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        i = j + 1;
    }
    let w_plus: f64 = d
        .iter()
        .zip(&ranks)
        .filter(|(x, _)| **x > 0.0)
        .map(|(_, r)| r)
        .sum();
    let total = (n * (n + 1)) as f64 / 2.0;
    let stat = w_plus.min(total - w_plus);
    let exact = all.len() <= 50 && tie_term == 0.0 && !has_zeros;
    let p = if exact {
        // Number of subsets of {1..n} with each rank sum.
        let max = n * (n + 1) / 2;
        let mut counts = vec![0f64; max + 1];
        counts[0] = 1.0;
        for k in 1..=n {
            for s in (k..=max).rev() {
                counts[s] += counts[s - k];
            }
        }
        let all = 2f64.powi(n as i32);
        let cdf: f64 = counts[..=(stat as usize)].iter().sum::<f64>() / all;
        (2.0 * cdf).min(1.0)
    } else {
        let nf = n as f64;
        let mean = nf * (nf + 1.0) / 4.0;
        let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - tie_term / 48.0;
        let z = (stat - mean) / var.sqrt();
        (2.0 * normal_cdf(z)).min(1.0)
    };
    Some(Wilcoxon {
        statistic: stat,
        p_value: p,
        n,
        exact,
    })
}

/// Standard normal CDF via erfc (W. J. Cody's rational approximation is not
/// needed at this precision; this series is accurate to ~1e-7).
fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' erfcc, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}
