//! The augmentation experiment's MSE tables, from each setting's MSE per
//! split: tests against PURE-target and the paper's MIX-guided, and the
//! spread claim.
use super::*;

/// The MSE tables of a finished experiment, from each setting's MSE per
/// split: what results.csv, results.md's first table and per_split.csv
/// hold, and the bars of mse.png.
pub struct MseTables {
    pub csv: String,
    pub md: String,
    pub per_split: String,
    pub bars: Vec<Bar>,
}

/// Every setting against PURE-target (does the extra data help at all?)
/// and against `reference` (the paper's MIX-guided), each by a paired
/// t-test over the splits both ran, and the paper's claim about spread
/// (mixing in translated sources shrinks the spread over splits). The
/// unit of analysis is the split: the splits share one test set and one
/// template brain, so they are not independent samples.
pub fn mse_tables(mse: &[(Setting, Vec<(usize, f64)>)], reference: Setting) -> MseTables {
    let by = |want: Setting| -> Vec<(usize, f64)> {
        mse.iter()
            .find(|(s, _)| *s == want)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (pure, guided) = (by(Setting::Pure), by(reference));
    // Paired by split: only the splits both settings have.
    let p_against = |base: &[(usize, f64)], v: &[(usize, f64)]| -> Option<f64> {
        let (a, b): (Vec<f64>, Vec<f64>) = v
            .iter()
            .filter_map(|(k, m)| base.iter().find(|g| g.0 == *k).map(|g| (g.1, *m)))
            .unzip();
        paired_t_test(&a, &b).map(|t| t.p_value)
    };
    let mut csv = String::from("setting,splits,mse_mean,mse_std,rmse_mean,p_vs_pure,p_vs_guided\n");
    let mut md = format!(
        "| setting | splits | test MSE ((mm²)²) | RMSE (mm²) | p vs PURE-target | p vs {} |\n|---|---|---|---|---|---|\n",
        reference.label()
    );
    let mut per_split = String::from("setting,split,mse\n");
    let mut bars = Vec::new();
    let mut spread = Vec::new();
    for (s, v) in mse {
        for (k, m) in v {
            let _ = writeln!(per_split, "{},{k},{m}", s.key());
        }
        let values: Vec<f64> = v.iter().map(|x| x.1).collect();
        let Some((mean, std)) = mean_std(&values) else {
            continue;
        };
        let rmse = mean_std(&values.iter().map(|m| m.sqrt()).collect::<Vec<_>>())
            .map_or(f64::NAN, |x| x.0);
        let p_pure = (*s != Setting::Pure).then(|| p_against(&pure, v)).flatten();
        let p_guided = (*s != reference).then(|| p_against(&guided, v)).flatten();
        let cell = |p: Option<f64>, d: usize| p.map_or(String::new(), |p| format!("{p:.d$}"));
        let _ = writeln!(
            csv,
            "{},{},{mean:.3},{std:.3},{rmse:.3},{},{}",
            s.key(),
            values.len(),
            cell(p_pure, 6),
            cell(p_guided, 6)
        );
        let _ = writeln!(
            md,
            "| {} | {} | {mean:.0} +- {std:.0} | {rmse:.1} | {} | {} |",
            s.label(),
            values.len(),
            p_pure.map_or("-".into(), format_p),
            p_guided.map_or("-".into(), format_p)
        );
        spread.push((*s, std));
        bars.push(Bar {
            label: s.label(),
            mean,
            std,
        });
    }
    let _ = writeln!(
        md,
        "\nPaired t-tests over the splits (n = {} splits). The unit is the split: the splits share one test set of one template brain, so they are not independent samples, and these p-values overstate the evidence.",
        pure.len()
    );
    // The paper: adding translated sources makes the predictor less
    // dependent on which few target slices were labelled (a smaller spread).
    if let Some(&(_, pure_sd)) = spread.iter().find(|(s, _)| *s == Setting::Pure) {
        let mixes: Vec<String> = spread
            .iter()
            .filter(|(s, _)| {
                matches!(
                    s,
                    Setting::MixCycleGan | Setting::MixGuided(_) | Setting::MixUntranslated
                )
            })
            .map(|(s, sd)| {
                format!(
                    "{} {sd:.0} ({})",
                    s.label(),
                    if *sd < pure_sd { "smaller" } else { "larger" }
                )
            })
            .collect();
        let _ = writeln!(
            md,
            "\nThe paper's claim that mixing shrinks the spread over splits: PURE-target's std over splits is {pure_sd:.0} (mm²)²; {}.",
            mixes.join(", ")
        );
    }
    MseTables {
        csv,
        md,
        per_split,
        bars,
    }
}

impl Setting {
    /// The setting a per_split.csv key names.
    pub fn from_key(key: &str) -> Option<Setting> {
        Some(match key {
            "pure" => Setting::Pure,
            "augmented" => Setting::Augmented,
            "mix-untranslated" => Setting::MixUntranslated,
            "transfer" => Setting::Transfer,
            "mix-cyclegan" => Setting::MixCycleGan,
            k => Setting::MixGuided(k.strip_prefix("mix-guided-lambda")?.parse().ok()?),
        })
    }
}
