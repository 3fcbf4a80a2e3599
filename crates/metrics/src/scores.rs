//! The metric set: the one place that names the translation metrics medtrans
//! reports, computes them per slice, summarises them (mean +- std) and
//! writes them as CSV and markdown. Validation, the validation log, the
//! checkpoint state, `evaluate` and the experiments all go through it, so a
//! metric added here appears everywhere at once.
use crate::{mean_std, nmae, psnr, ssim, wilcoxon_signed_rank};
use medtrans_core::Slice;
use std::fmt::Write as _;

/// A named metric: its key (CSV column, config name), its heading, which
/// direction is better and how many decimals it prints with. The paper's
/// three are constants here ([`Metric::ALL`]); an experiment defines its own
/// the same way (many_to_one's best-window Dice and lesion MAE), so every
/// table, test and best-checkpoint choice reads direction and format from
/// the metric rather than from a parallel list.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    key: &'static str,
    label: &'static str,
    lower_is_better: bool,
    csv_decimals: usize,
    table_decimals: usize,
    /// Of an output slice against its target, for metrics that need nothing
    /// else; `None` for those computed by their owner from more inputs
    /// (masks, labels).
    slice_fn: Option<fn(&Slice, &Slice) -> Option<f64>>,
}

impl PartialEq for Metric {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Metric {}

impl Metric {
    /// The RegGAN paper's normalised MAE ([`crate::nmae`]).
    pub const NMAE: Metric = Metric {
        slice_fn: Some(nmae),
        ..Metric::new("nmae", "NMAE", true)
    };
    /// The paper's PSNR in dB ([`crate::psnr`]).
    pub const PSNR: Metric = Metric {
        csv_decimals: 4,
        table_decimals: 2,
        slice_fn: Some(psnr),
        ..Metric::new("psnr", "PSNR (dB)", false)
    };
    /// The paper's SSIM ([`crate::ssim`]).
    pub const SSIM: Metric = Metric {
        slice_fn: Some(ssim),
        ..Metric::new("ssim", "SSIM", false)
    };

    /// The paper's metrics, in the order its tables list them: what
    /// validation, `evaluate` and the experiments' tables report.
    pub const ALL: [Metric; 3] = [Metric::NMAE, Metric::PSNR, Metric::SSIM];

    /// A metric computed by its owner (6 decimals in CSV, 4 in tables).
    pub const fn new(key: &'static str, label: &'static str, lower_is_better: bool) -> Metric {
        Metric {
            key,
            label,
            lower_is_better,
            csv_decimals: 6,
            table_decimals: 4,
            slice_fn: None,
        }
    }

    /// The CSV column and config name.
    pub fn key(self) -> &'static str {
        self.key
    }

    /// The heading in tables and figures.
    pub fn label(self) -> &'static str {
        self.label
    }

    pub fn lower_is_better(self) -> bool {
        self.lower_is_better
    }

    /// Whether `a` is a better score than `b` on this metric.
    pub fn better(self, a: f64, b: f64) -> bool {
        if self.lower_is_better {
            a < b
        } else {
            a > b
        }
    }

    /// One slice's value; `None` where it is undefined (no foreground) or
    /// the metric needs more than the two slices.
    pub fn compute(self, fake: &Slice, real: &Slice) -> Option<f64> {
        self.slice_fn.and_then(|f| f(fake, real))
    }

    /// Decimals in CSV files: enough to recompute every table from them.
    pub fn csv_decimals(self) -> usize {
        self.csv_decimals
    }

    /// Decimals in markdown tables.
    pub fn table_decimals(self) -> usize {
        self.table_decimals
    }

    /// Position among the paper's metrics, `None` for any other.
    fn paper_index(self) -> Option<usize> {
        Metric::ALL.iter().position(|m| *m == self)
    }
}

/// One test slice's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceScore {
    /// Position in the split: the key two models are paired on.
    pub position: usize,
    /// Subject (volume) and slice index in it, where the dataset knows them.
    pub subject: usize,
    pub slice: usize,
    pub nmae: f64,
    pub psnr: f64,
    pub ssim: f64,
    /// Further metrics beside the paper's three (an experiment's lesion
    /// Dice, a target-unit MAE): summaries, tables and tests carry them
    /// like the three.
    pub extra: Vec<(Metric, f64)>,
}

impl SliceScore {
    /// Every metric of `fake` against `real`; `None` when one is undefined
    /// (an empty foreground), so that all metrics cover the same slices.
    pub fn compute(
        position: usize,
        subject: usize,
        slice: usize,
        fake: &Slice,
        real: &Slice,
    ) -> Option<SliceScore> {
        Some(SliceScore {
            position,
            subject,
            slice,
            nmae: Metric::NMAE.compute(fake, real)?,
            psnr: Metric::PSNR.compute(fake, real)?,
            ssim: Metric::SSIM.compute(fake, real)?,
            extra: Vec::new(),
        })
    }

    /// The slice with one more metric (its value replaced if present).
    pub fn with(mut self, m: Metric, value: f64) -> SliceScore {
        match self.extra.iter_mut().find(|e| e.0 == m) {
            Some(e) => e.1 = value,
            None => self.extra.push((m, value)),
        }
        self
    }

    /// A metric's value: one of the paper's three or an extra (NaN when
    /// this slice has no such metric).
    pub fn get(&self, m: Metric) -> f64 {
        match m.paper_index() {
            Some(k) => [self.nmae, self.psnr, self.ssim][k],
            None => self
                .extra
                .iter()
                .find(|e| e.0 == m)
                .map_or(f64::NAN, |e| e.1),
        }
    }

    /// Its metrics: the paper's three, then the extras.
    pub fn metrics(&self) -> Vec<Metric> {
        Metric::ALL
            .into_iter()
            .chain(self.extra.iter().map(|e| e.0))
            .collect()
    }
}

/// Mean and population std (numpy's default) of every metric over slices
/// (or over whatever unit the caller summarises: `slices` counts it). It
/// holds the paper's three and any further metric its scores carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub slices: usize,
    /// (metric, mean, std): the paper's three first, then the extras.
    columns: Vec<(Metric, f64, f64)>,
}

impl Summary {
    /// Over `scores`: the paper's three and every extra metric the first
    /// score carries (NaN values, where a slice lacks one, are left out of
    /// that metric's mean). `None` for no slices.
    pub fn of<'a>(scores: impl IntoIterator<Item = &'a SliceScore>) -> Option<Summary> {
        let scores: Vec<&SliceScore> = scores.into_iter().collect();
        let metrics = scores.first()?.metrics();
        let columns = metrics
            .into_iter()
            .map(|m| {
                let v: Vec<f64> = scores.iter().map(|s| s.get(m)).collect();
                let (a, b) = mean_std(&v).unwrap_or((f64::NAN, f64::NAN));
                (m, a, b)
            })
            .collect();
        Some(Summary {
            slices: scores.len(),
            columns,
        })
    }

    /// From means and stds of the paper's three, in [`Metric::ALL`] order.
    pub fn from_parts(slices: usize, mean: [f64; 3], std: [f64; 3]) -> Summary {
        Summary {
            slices,
            columns: (0..3).map(|k| (Metric::ALL[k], mean[k], std[k])).collect(),
        }
    }

    /// The summary with one more metric's mean and std.
    pub fn with(mut self, m: Metric, mean: f64, std: f64) -> Summary {
        self.columns.retain(|c| c.0 != m);
        self.columns.push((m, mean, std));
        self
    }

    /// Its metrics, the paper's three first.
    pub fn metrics(&self) -> Vec<Metric> {
        self.columns.iter().map(|c| c.0).collect()
    }

    /// A metric's mean (NaN when this summary has no such metric).
    pub fn mean(&self, m: Metric) -> f64 {
        self.columns
            .iter()
            .find(|c| c.0 == m)
            .map_or(f64::NAN, |c| c.1)
    }

    pub fn std(&self, m: Metric) -> f64 {
        self.columns
            .iter()
            .find(|c| c.0 == m)
            .map_or(f64::NAN, |c| c.2)
    }

    /// The paper's three means in [`Metric::ALL`] order.
    pub fn means(&self) -> [f64; 3] {
        Metric::ALL.map(|m| self.mean(m))
    }

    /// The means as CSV cells, in [`Metric::ALL`] order (see [`metric_keys_csv`]).
    pub fn means_csv(&self) -> String {
        Metric::ALL
            .iter()
            .map(|&m| {
                let d = m.csv_decimals();
                format!("{:.d$}", self.mean(m))
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `mean +- std` as a markdown cell.
    pub fn cell(&self, m: Metric) -> String {
        let d = m.table_decimals();
        format!("{:.d$} +- {:.d$}", self.mean(m), self.std(m))
    }

    /// The means for a log line: `NMAE 0.1170  PSNR 16.16 dB  SSIM 0.8819`.
    pub fn brief(&self) -> String {
        Metric::ALL
            .iter()
            .map(|&m| {
                let d = m.table_decimals();
                let unit = if m == Metric::PSNR { " dB" } else { "" };
                format!("{} {:.d$}{unit}", m.key().to_uppercase(), self.mean(m))
            })
            .collect::<Vec<_>>()
            .join("  ")
    }
}

/// The metrics' CSV columns: `nmae,psnr,ssim`.
pub fn metric_keys_csv() -> String {
    Metric::ALL.map(Metric::key).join(",")
}

/// Per-slice scores of several models as CSV:
/// `model,subject,slice,nmae,psnr,ssim`.
pub fn scores_csv(names: &[String], scores: &[Vec<SliceScore>]) -> String {
    let mut csv = format!("model,subject,slice,{}\n", metric_keys_csv());
    for (name, sc) in names.iter().zip(scores) {
        for s in sc {
            let _ = write!(csv, "{name},{},{}", s.subject, s.slice);
            for m in Metric::ALL {
                let d = m.csv_decimals();
                let _ = write!(csv, ",{:.d$}", s.get(m));
            }
            csv += "\n";
        }
    }
    csv
}

/// Markdown: one row per model with mean +- std, and with two models a row
/// of paired Wilcoxon p-values over the slices both could score.
pub fn summary_table(names: &[String], scores: &[Vec<SliceScore>]) -> String {
    let mut md = String::from("| model | slices |");
    for m in Metric::ALL {
        let _ = write!(md, " {} |", m.label());
    }
    md += "\n|---|---|";
    md += &"---|".repeat(Metric::ALL.len());
    md += "\n";
    for (name, sc) in names.iter().zip(scores) {
        let cells: Vec<String> = Metric::ALL
            .iter()
            .map(|&m| Summary::of(sc).map_or("n/a".into(), |s| s.cell(m)))
            .collect();
        let _ = writeln!(md, "| {name} | {} | {} |", sc.len(), cells.join(" | "));
    }
    if scores.len() == 2 {
        let common: Vec<(&SliceScore, &SliceScore)> = scores[0]
            .iter()
            .filter_map(|a| {
                scores[1]
                    .iter()
                    .find(|b| b.position == a.position)
                    .map(|b| (a, b))
            })
            .collect();
        let cells: Vec<String> = Metric::ALL
            .iter()
            .map(|&m| {
                let a: Vec<f64> = common.iter().map(|p| p.0.get(m)).collect();
                let b: Vec<f64> = common.iter().map(|p| p.1.get(m)).collect();
                wilcoxon_signed_rank(&a, &b).map_or("n/a".into(), |w| format_p(w.p_value))
            })
            .collect();
        let _ = writeln!(
            md,
            "| Wilcoxon (paired) | {} | {} |",
            common.len(),
            cells.join(" | ")
        );
    }
    md
}

/// Per-subject means, for datasets of many subjects: a model that fails on
/// one scanner or patient shows here, where a slice-pooled mean hides it.
/// Returns a markdown table (each subject's mean +- std over its slices,
/// then the mean +- std over subjects of the subject means) and the
/// subject means as CSV.
pub fn subject_table(
    names: &[String],
    scores: &[Vec<SliceScore>],
    subject_names: &dyn Fn(usize) -> String,
) -> (String, String) {
    let mut md = String::from("| model | subject | slices |");
    for m in Metric::ALL {
        let _ = write!(md, " {} |", m.label());
    }
    md += "\n|---|---|---|";
    md += &"---|".repeat(Metric::ALL.len());
    md += "\n";
    let mut csv = format!("model,subject,slices,{}\n", metric_keys_csv());
    for (name, sc) in names.iter().zip(scores) {
        let mut subjects: Vec<usize> = sc.iter().map(|s| s.subject).collect();
        subjects.sort_unstable();
        subjects.dedup();
        let mut means: Vec<[f64; 3]> = Vec::new();
        for &subject in &subjects {
            let Some(sum) = Summary::of(sc.iter().filter(|s| s.subject == subject)) else {
                continue;
            };
            let label = subject_names(subject);
            let cells: Vec<String> = Metric::ALL.iter().map(|&m| sum.cell(m)).collect();
            let _ = writeln!(
                md,
                "| {name} | {label} | {} | {} |",
                sum.slices,
                cells.join(" | ")
            );
            let _ = writeln!(csv, "{name},{label},{},{}", sum.slices, sum.means_csv());
            means.push(sum.means());
        }
        if means.len() > 1 {
            let cells: Vec<String> = (0..Metric::ALL.len())
                .map(|k| {
                    let v: Vec<f64> = means.iter().map(|m| m[k]).collect();
                    let (mean, sd) = crate::mean_std(&v).unwrap_or((f64::NAN, f64::NAN));
                    let d = Metric::ALL[k].table_decimals();
                    format!("{mean:.d$} +- {sd:.d$}")
                })
                .collect();
            let _ = writeln!(
                md,
                "| {name} | **{} subjects** (mean +- std of subject means) | {} | {} |",
                means.len(),
                sc.len(),
                cells.join(" | ")
            );
        }
    }
    (md, csv)
}

/// A p-value as tables show it.
pub fn format_p(p: f64) -> String {
    if p < 1e-3 {
        format!("p = {p:.1e}")
    } else {
        format!("p = {p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(position: usize, nmae: f64, psnr: f64, ssim: f64) -> SliceScore {
        SliceScore {
            position,
            subject: 0,
            slice: position,
            nmae,
            psnr,
            ssim,
            extra: Vec::new(),
        }
    }

    #[test]
    fn extra_metrics_are_carried_and_summarised_like_the_papers() {
        const DICE: Metric = Metric::new("dice", "Dice", false);
        let s = [
            score(0, 0.1, 20.0, 0.8).with(DICE, 0.5),
            score(1, 0.3, 24.0, 0.9).with(DICE, f64::NAN),
            score(2, 0.2, 22.0, 0.7).with(DICE, 0.7).with(DICE, 0.9),
        ];
        assert_eq!(s[2].get(DICE), 0.9);
        assert!(score(0, 0.1, 20.0, 0.8).get(DICE).is_nan());
        let sum = Summary::of(&s).unwrap();
        assert_eq!(
            sum.metrics(),
            [Metric::NMAE, Metric::PSNR, Metric::SSIM, DICE]
        );
        // The slice without a value is left out of that metric alone.
        assert!((sum.mean(DICE) - 0.7).abs() < 1e-12);
        assert!((sum.std(DICE) - 0.2).abs() < 1e-12);
        assert!((sum.mean(Metric::NMAE) - 0.2).abs() < 1e-12);
        let parts = Summary::from_parts(4, [0.1, 20.0, 0.8], [0.0; 3]).with(DICE, 0.6, 0.1);
        assert_eq!(parts.cell(DICE), "0.6000 +- 0.1000");
        assert_eq!(parts.means(), [0.1, 20.0, 0.8]);
    }

    #[test]
    fn summary_is_mean_and_population_std_per_metric() {
        let s = [score(0, 0.1, 20.0, 0.8), score(1, 0.3, 24.0, 0.9)];
        let sum = Summary::of(&s).unwrap();
        assert_eq!(sum.slices, 2);
        assert!((sum.mean(Metric::NMAE) - 0.2).abs() < 1e-12);
        assert!((sum.std(Metric::PSNR) - 2.0).abs() < 1e-12);
        assert_eq!(sum.cell(Metric::PSNR), "22.00 +- 2.00");
        assert_eq!(sum.cell(Metric::SSIM), "0.8500 +- 0.0500");
        assert_eq!(sum.brief(), "NMAE 0.2000  PSNR 22.00 dB  SSIM 0.8500");
        assert_eq!(sum.means_csv(), "0.200000,22.0000,0.850000");
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn a_slice_without_foreground_is_not_scored() {
        let real = Slice::filled(8, 8, -1.0);
        let fake = Slice::filled(8, 8, 0.0);
        assert!(SliceScore::compute(0, 0, 0, &fake, &real).is_none());
        let mut real = real;
        real.data[9] = 0.5;
        let s = SliceScore::compute(3, 1, 7, &fake, &real).unwrap();
        assert_eq!((s.position, s.subject, s.slice), (3, 1, 7));
        assert!((s.nmae - 0.25).abs() < 1e-12);
    }

    #[test]
    fn csv_and_table_list_every_metric_in_order() {
        let names = vec!["a".to_string(), "b".to_string()];
        let scores = vec![
            vec![score(0, 0.1, 20.0, 0.8), score(1, 0.3, 24.0, 0.9)],
            vec![score(1, 0.2, 25.0, 0.95)],
        ];
        let csv = scores_csv(&names, &scores);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "model,subject,slice,nmae,psnr,ssim");
        assert_eq!(lines[3], "b,0,1,0.200000,25.0000,0.950000");
        let md = summary_table(&names, &scores);
        assert!(
            md.starts_with("| model | slices | NMAE | PSNR (dB) | SSIM |\n|---|---|---|---|---|\n")
        );
        // Paired on position: only slice 1 is common.
        assert!(md.contains("| Wilcoxon (paired) | 1 |"), "{md}");
    }

    #[test]
    fn subjects_get_their_own_means_and_the_mean_over_subjects() {
        let mut sc = vec![score(0, 0.1, 20.0, 0.8), score(1, 0.3, 24.0, 0.9)];
        sc.push(SliceScore {
            extra: Vec::new(),
            subject: 1,
            ..score(2, 0.5, 30.0, 0.7)
        });
        let names = vec!["m".to_string()];
        let (md, csv) = subject_table(&names, &[sc], &|i| format!("sub-{i}"));
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[1], "m,sub-0,2,0.200000,22.0000,0.850000");
        assert_eq!(lines[2], "m,sub-1,1,0.500000,30.0000,0.700000");
        // Subject means 0.2 and 0.5: mean 0.35, population std 0.15.
        assert!(md.contains("| m | **2 subjects** (mean +- std of subject means) | 3 | 0.3500 +- 0.1500 | 26.00 +- 4.00 | 0.7750 +- 0.0750 |"), "{md}");
    }
}
