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

/// Result of a two-sided paired Student's t-test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTest {
    /// Mean difference (a - b) over its standard error.
    pub t: f64,
    /// Degrees of freedom: pairs minus one.
    pub df: f64,
    pub p_value: f64,
}

/// Paired two-sided Student's t-test of `a` against `b`, as
/// `scipy.stats.ttest_rel` computes it: for comparing settings over the
/// same random splits. `None` for fewer than two finite pairs or when every
/// difference is the same (no spread to test against).
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Option<TTest> {
    assert_eq!(a.len(), b.len(), "paired test needs equal lengths");
    let d: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| x - y)
        .filter(|x| x.is_finite())
        .collect();
    let n = d.len() as f64;
    if d.len() < 2 {
        return None;
    }
    let mean = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    if var <= 0.0 {
        return None;
    }
    let t = mean / (var / n).sqrt();
    let df = n - 1.0;
    // P(|T| > |t|) = I_{df / (df + t²)}(df / 2, 1 / 2).
    let p_value = regularized_beta(df / (df + t * t), df / 2.0, 0.5).clamp(0.0, 1.0);
    Some(TTest { t, df, p_value })
}

/// The regularised incomplete beta function I_x(a, b), by its continued
/// fraction (modified Lentz), with the symmetry I_x(a, b) = 1 - I_{1-x}(b, a)
/// where the fraction converges slowly.
fn regularized_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(1.0 - x, b, a) / b
    }
}

fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    d = 1.0 / if d.abs() < TINY { TINY } else { d };
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for aa in [
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ] {
            d = 1.0 + aa * d;
            d = 1.0 / if d.abs() < TINY { TINY } else { d };
            c = 1.0 + aa / c;
            if c.abs() < TINY {
                c = TINY;
            }
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9): about 15 digits.
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the series in its accurate range.
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut s = G[0];
    for (i, g) in G.iter().enumerate().skip(1) {
        s += g / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + s.ln()
}
