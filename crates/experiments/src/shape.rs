//! Shape consistency (Zhang et al., CVPR 2018) on ICBM T1 -> T2: does a
//! segmentation loss on the translations keep anatomy that the cycle alone
//! may bend?
//!
//! Domain A is a T1 slab, domain B a T2 slab elsewhere in the brain
//! (unpaired), each with CerebrA-derived labels: background, white matter
//! (unlabelled brain, cerebellar white matter, brainstem), ventricles, and
//! every other CerebrA structure (grey matter). Each cell trains the cycle mode with the
//! segmentors learning from real labels; the shape cells add the shape
//! loss. A held-out slab with aligned T1/T2 scores G(x): masked NMAE, PSNR
//! and SSIM against the real T2, and Dice of one fixed reference segmentor
//! (S_B of the first no-shape run, which never saw a translation) on G(x)
//! against x's labels. A misalignment-noise cell repeats both.
use crate::experiment::{Common, Experiment};
use crate::grid::{finished_steps, GridRun, Report};
use crate::plot::{image_grid, line_panels, Panel, Series, Tile};
use crate::slabs::{
    record_settings, reuse_dataset, slabs, write_dataset, AtlasSlices, AtlasSource, SplitArrays,
};
use anyhow::{bail, Context, Result};
use medtrans_datasets::{Pairing, SliceDataset};
use medtrans_io::{write_file_atomic, Slice};
use medtrans_metrics::{dice_per_label, format_p, mean_std, wilcoxon_signed_rank, Metric, Summary};
use medtrans_training::checkpoint::last_checkpoint;
use medtrans_training::nets::S_B;
use medtrans_training::term_options::{ShapeOptions, SHAPE};
use medtrans_training::{RunNetworks, SliceScore, TrainConfig};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The label classes, from CerebrA label values.
pub const CLASS_NAMES: [&str; 4] = ["background", "white matter", "ventricles", "grey matter"];
/// CerebrA's ventricles: lateral, inferior lateral, third, fourth (both
/// hemispheres' numbers).
const VENTRICLES: [u32; 8] = [41, 92, 5, 56, 29, 80, 37, 88];
/// CerebrA structures that are white matter: cerebellar white matter and
/// the brainstem (the cerebral white matter is CerebrA's unlabelled brain).
const WHITE: [u32; 4] = [39, 90, 11, 62];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapeConfig {
    /// `runs`, `results`, `seeds` (default 1 and 2), `set`, `device`.
    #[serde(skip)]
    pub common: Common,
    /// Shape-loss weights compared with 0 (no shape loss).
    #[serde(default = "default_weights")]
    pub shape_weights: Vec<f64>,
    /// Misalignment noise levels (the RegGAN paper's 0-5).
    #[serde(default = "default_levels")]
    pub noise_levels: Vec<u32>,
    /// `common.seeds`, or the default.
    #[serde(skip)]
    pub seeds: Vec<u64>,
    /// T1 as `a`, T2 as `b`, with mask and the CerebrA atlas.
    pub data: AtlasSource,
}

fn default_weights() -> Vec<f64> {
    vec![1.0]
}
fn default_levels() -> Vec<u32> {
    vec![0, 3]
}

/// One cell: a shape weight (0: none) at a noise level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub shape: f64,
    pub noise: u32,
}

impl Cell {
    pub fn label(&self) -> String {
        if self.shape > 0.0 {
            format!("cycle + shape {}", self.shape)
        } else {
            "cycle".into()
        }
    }
}

impl Experiment for ShapeConfig {
    const NAME: &'static str = "shape";
    type Own = ShapeConfig;
    type Outcome = Vec<ShapeRow>;

    fn new(common: Common, own: ShapeConfig) -> Result<Self> {
        let origin = common.origin();
        let cfg = ShapeConfig {
            seeds: common.seeds_or(&[1, 2])?,
            common,
            ..own
        };
        if cfg
            .shape_weights
            .iter()
            .any(|w| !(w.is_finite() && *w > 0.0))
        {
            bail!("{origin}: every shape weight must be > 0 (0, no shape loss, is always run)");
        }
        if cfg.noise_levels.is_empty() {
            bail!("{origin}: noise_levels must not be empty");
        }
        Ok(cfg)
    }

    crate::common_field!();

    fn build(&self, report: Report) -> Result<()> {
        build_dataset(self, report)
    }

    fn grid(&self) -> Result<Vec<GridRun>> {
        let mut runs = Vec::new();
        for &seed in &self.seeds {
            for c in self.cells() {
                runs.push(GridRun {
                    label: format!("{} noise {} seed {seed}", c.label(), c.noise),
                    group: if c.shape > 0.0 { "shape" } else { "cycle" }.into(),
                    config: self.train_config(c, seed)?,
                });
            }
        }
        Ok(runs)
    }

    fn report(&self, report: Report) -> Result<Vec<ShapeRow>> {
        report_shape(self, report)
    }
}

impl ShapeConfig {
    pub fn dataset(&self) -> PathBuf {
        self.common.runs.join("dataset")
    }

    pub fn device(&self) -> &str {
        self.common.device()
    }

    /// Every cell, noise levels outermost, no-shape first.
    pub fn cells(&self) -> Vec<Cell> {
        self.noise_levels
            .iter()
            .flat_map(|&noise| {
                std::iter::once(0.0)
                    .chain(self.shape_weights.iter().copied())
                    .map(move |shape| Cell { shape, noise })
            })
            .collect()
    }

    pub fn run_dir(&self, c: Cell, seed: u64) -> PathBuf {
        self.common
            .runs
            .join(format!("shape{}-noise{}-seed{seed}", c.shape, c.noise))
    }

    /// The cycle preset, unpaired, with the segmentors learning from real
    /// labels in every cell (so the no-shape runs have the reference S_B)
    /// and the shape loss where the cell has it.
    pub fn train_config(&self, c: Cell, seed: u64) -> Result<TrainConfig> {
        TrainConfig::preset("cycle", &self.common.set)
            .and_then(|t| {
                t.with(|t| {
                    t.data.path = self.dataset();
                    t.data.pairing = Pairing::Unpaired;
                    t.data.noise_level = c.noise;
                    t.out = self.run_dir(c, seed);
                    t.edit_options(SHAPE, |o: &mut ShapeOptions| {
                        o.weight = c.shape;
                        if o.segmentation == 0.0 {
                            o.segmentation = 1.0;
                        }
                    });
                    t.segmentor.classes = CLASS_NAMES.len();
                    t.train.seed = seed;
                    t.train.device = self.device().to_string();
                })
            })
            .with_context(|| format!("run {} noise {} seed {seed}", c.label(), c.noise))
    }

    /// The reference segmentor's run: no shape loss, no noise, first seed.
    fn reference_run(&self) -> PathBuf {
        let noise = *self.noise_levels.iter().min().unwrap_or(&0);
        self.run_dir(Cell { shape: 0.0, noise }, self.seeds[0])
    }
}

/// The four classes from CerebrA labels inside the brain mask.
fn classes(labels: &Slice, brain: &[bool]) -> Slice {
    let data = labels
        .data
        .iter()
        .zip(brain)
        .map(|(&l, &inside)| {
            let l = l.round() as u32;
            match (inside, l) {
                (false, _) => 0.0,
                (true, 0) => 1.0,
                (true, l) if WHITE.contains(&l) => 1.0,
                (true, l) if VENTRICLES.contains(&l) => 2.0,
                (true, _) => 3.0,
            }
        })
        .collect();
    Slice::new(data, labels.width, labels.height)
}

/// Slabs A (T1, train), test, B (T2, train), val, with labels.
pub fn build_dataset(cfg: &ShapeConfig, report: Report) -> Result<()> {
    let settings = toml::to_string(&cfg.data)?;
    if reuse_dataset(&cfg.dataset(), &settings)? {
        return Ok(());
    }
    report(&format!(
        "preparing {} and {} at {} px with CerebrA labels",
        cfg.data.a.display(),
        cfg.data.b.display(),
        cfg.data.size
    ));
    let base = AtlasSlices::load(&cfg.data, &cfg.common.runs.join("slices"))?;
    let s = slabs(base.len(), &[0.35, 0.15, 0.35, 0.15], 3)?;
    let label = |p: usize| classes(&base.labels[p], &base.brain[p]);
    let n = s[0].len().min(s[2].len());
    let (xa, yb) = (s[0].clone().take(n), s[2].clone().take(n));
    let train = SplitArrays {
        positions: xa.clone().collect(),
        a: xa.clone().map(|p| base.a[p].clone()).collect(),
        b: yb.clone().map(|p| base.b[p].clone()).collect(),
        mask: xa.clone().map(|p| base.brain[p].clone()).collect(),
        extra: vec![
            ("A_labels".into(), xa.clone().map(label).collect()),
            ("B_labels".into(), yb.clone().map(label).collect()),
        ],
        ..Default::default()
    };
    let aligned = |r: std::ops::Range<usize>| SplitArrays {
        positions: r.clone().collect(),
        a: r.clone().map(|p| base.a[p].clone()).collect(),
        b: r.clone().map(|p| base.b[p].clone()).collect(),
        mask: r.clone().map(|p| base.brain[p].clone()).collect(),
        extra: vec![
            ("A_labels".into(), r.clone().map(label).collect()),
            ("B_labels".into(), r.clone().map(label).collect()),
        ],
        ..Default::default()
    };
    write_dataset(
        &cfg.dataset(),
        &base,
        &[
            ("train", train),
            ("val", aligned(s[3].clone())),
            ("test", aligned(s[1].clone())),
        ],
    )?;
    record_settings(&cfg.dataset(), &settings)
}

/// A cell's scores over its runs.
#[derive(Debug, Clone)]
pub struct ShapeRow {
    pub cell: Cell,
    pub scores: Summary,
    /// Per run (its seed), per test slice: mean Dice over the three
    /// structures.
    pub dice: Vec<(u64, Vec<f64>)>,
    /// Per structure (1..=3): mean Dice over all slices of all runs.
    pub dice_by_class: [f64; 3],
}

/// Per slice, the mean structure Dice and each structure's (when present).
type SliceDice = (Vec<f64>, Vec<[Option<f64>; 3]>);

/// Mean Dice over the non-background classes present, and per class.
fn structure_dice(seg: &Slice, truth: &Slice) -> (f64, [Option<f64>; 3]) {
    let per = dice_per_label(seg, truth);
    let by: [Option<f64>; 3] = std::array::from_fn(|k| per.get(&(k as i64 + 1)).copied());
    let present: Vec<f64> = by.iter().flatten().copied().collect();
    let mean = if present.is_empty() {
        f64::NAN
    } else {
        present.iter().sum::<f64>() / present.len() as f64
    };
    (mean, by)
}

pub fn report_shape(cfg: &ShapeConfig, report: &mut dyn FnMut(&str)) -> Result<Vec<ShapeRow>> {
    let ds = cfg.dataset();
    let test = SliceDataset::open(&ds, "test")?;
    let truth = test
        .labels_a
        .clone()
        .context("the shape dataset's test split has no A_labels.npy")?;
    let reference = cfg.reference_run();
    if finished_steps(&reference)?.is_none() {
        bail!(
            "the reference segmentor's run {} has not finished yet",
            reference.display()
        );
    }
    let judge = RunNetworks::load(&last_checkpoint(&reference)?, cfg.device())?;
    let segment = |xs: &[Slice]| -> Result<Vec<Slice>> {
        judge
            .segment(S_B, &xs.iter().collect::<Vec<_>>())?
            .context("the reference run has no S_B")
    };
    let dice_of = |xs: &[Slice]| -> Result<SliceDice> {
        Ok(segment(xs)?
            .iter()
            .zip(&truth)
            .map(|(s, t)| structure_dice(s, t))
            .unzip())
    };
    // What the judge makes of real T2 (its ceiling) and of T1 untranslated.
    let (ceiling, _) = dice_of(&test.b)?;
    let (untranslated, _) = dice_of(&test.a)?;
    let mut rows = Vec::new();
    let mut examples: Vec<(String, Vec<Slice>)> = Vec::new();
    let mut done = 0;
    // Every run's slice scores and Dice, so that every p-value over slices
    // can be recomputed from the committed results.
    let mut per_slice = String::from("cell,noise,seed,slice,nmae,psnr,ssim,dice\n");
    for c in cfg.cells() {
        let mut scores: Vec<SliceScore> = Vec::new();
        let mut dice = Vec::new();
        let mut by_class: [Vec<f64>; 3] = Default::default();
        for &seed in &cfg.seeds {
            let dir = cfg.run_dir(c, seed);
            if finished_steps(&dir)?.is_none() {
                continue;
            }
            done += 1;
            let (fakes, s) = cfg.score(&dir, &test)?;
            let (d, by) = dice_of(&fakes)?;
            for sc in &s {
                let _ = writeln!(
                    per_slice,
                    "{},{},{seed},{},{:.6},{:.4},{:.6},{:.6}",
                    c.label(),
                    c.noise,
                    sc.slice,
                    sc.nmae,
                    sc.psnr,
                    sc.ssim,
                    d.get(sc.position).copied().unwrap_or(f64::NAN)
                );
            }
            scores.extend(s);
            for b in by {
                for k in 0..3 {
                    by_class[k].extend(b[k]);
                }
            }
            dice.push((seed, d));
            if seed == cfg.seeds[0] {
                examples.push((format!("{} (noise {})", c.label(), c.noise), fakes));
            }
        }
        if let Some(summary) = Summary::of(&scores) {
            rows.push(ShapeRow {
                cell: c,
                scores: summary,
                dice,
                dice_by_class: std::array::from_fn(|k| {
                    mean_std(&by_class[k]).map_or(f64::NAN, |m| m.0)
                }),
            });
        }
    }
    report(&format!(
        "scored {done} of {} runs on {} test slices",
        cfg.cells().len() * cfg.seeds.len(),
        test.len()
    ));
    let dir = &cfg.common.results;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_file_atomic(&dir.join("results.csv"), results_csv(&rows).as_bytes())?;
    write_file_atomic(&dir.join("per_slice.csv"), per_slice.as_bytes())?;
    let md = results_markdown(cfg, &rows, &ceiling, &untranslated, test.len());
    write_file_atomic(&dir.join("results.md"), md.as_bytes())?;
    report("drawing the figures");
    noise_plot(&dir.join("metrics_vs_noise.png"), cfg, &rows)?;
    example_panel(
        &dir.join("examples.png"),
        &test,
        &truth,
        &examples,
        &segment,
    )?;
    Ok(rows)
}

/// Per slice, the mean over the runs of `seeds`.
fn per_slice_mean(runs: &[(u64, Vec<f64>)], seeds: &[u64]) -> Vec<f64> {
    let runs: Vec<&Vec<f64>> = runs
        .iter()
        .filter(|r| seeds.contains(&r.0))
        .map(|r| &r.1)
        .collect();
    let n = runs.first().map_or(0, |r| r.len());
    (0..n)
        .map(|i| runs.iter().map(|r| r[i]).sum::<f64>() / runs.len() as f64)
        .collect()
}

fn results_csv(rows: &[ShapeRow]) -> String {
    let mut out = String::from("shape,noise_level,runs,slices");
    for m in Metric::ALL {
        let _ = write!(out, ",{k}_mean,{k}_std", k = m.key());
    }
    out += ",dice_mean,dice_std,dice_white_matter,dice_ventricles,dice_grey_matter\n";
    for r in rows {
        let all: Vec<f64> = r.dice.iter().flat_map(|d| d.1.iter().copied()).collect();
        let (dm, ds) = mean_std(&all).unwrap_or((f64::NAN, f64::NAN));
        let _ = write!(
            out,
            "{},{},{},{}",
            r.cell.shape,
            r.cell.noise,
            r.dice.len(),
            r.scores.slices
        );
        for m in Metric::ALL {
            let d = m.csv_decimals();
            let _ = write!(out, ",{:.d$},{:.d$}", r.scores.mean(m), r.scores.std(m));
        }
        let _ = writeln!(
            out,
            ",{dm:.6},{ds:.6},{:.6},{:.6},{:.6}",
            r.dice_by_class[0], r.dice_by_class[1], r.dice_by_class[2]
        );
    }
    out
}

fn results_markdown(
    cfg: &ShapeConfig,
    rows: &[ShapeRow],
    ceiling: &[f64],
    untranslated: &[f64],
    test: usize,
) -> String {
    let config = cfg
        .common
        .source
        .as_ref()
        .map_or("CONFIG".into(), |p| p.display().to_string());
    let mean = |v: &[f64]| mean_std(v).unwrap_or((f64::NAN, f64::NAN));
    let mut md = String::from("# Shape consistency: ICBM T1 -> T2 with CerebrA labels\n\n");
    let _ = writeln!(
        md,
        "Made by `medtrans experiment shape --config {config}` (seeds {:?}, {test} test slices). \
         Unpaired T1 and T2 slabs; classes: {}. **Dice**: the reference segmentor (S_B of the \
         first no-shape, no-noise run, trained on real T2 only) on G(x), against x's labels, \
         mean over the three structures; mean +- std over all test slices of all seeds. Image \
         metrics against the aligned real T2, inside the brain mask.\n",
        cfg.seeds,
        CLASS_NAMES.join(", ")
    );
    let (c, u) = (mean(ceiling), mean(untranslated));
    let _ = writeln!(
        md,
        "The reference segmentor scores Dice {:.4} +- {:.4} on real T2 test slices (its \
         ceiling) and {:.4} +- {:.4} on the untranslated T1 inputs.\n",
        c.0, c.1, u.0, u.1
    );
    md += "| method | noise | runs | NMAE | PSNR (dB) | SSIM | Dice | Dice WM | Dice ventricles | Dice GM |\n|---|---|---|---|---|---|---|---|---|---|\n";
    for r in rows {
        let all: Vec<f64> = r.dice.iter().flat_map(|d| d.1.iter().copied()).collect();
        let d = mean(&all);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.4} +- {:.4} | {:.4} | {:.4} | {:.4} |",
            r.cell.label(),
            r.cell.noise,
            r.dice.len(),
            Metric::ALL
                .iter()
                .map(|&m| r.scores.cell(m))
                .collect::<Vec<_>>()
                .join(" | "),
            d.0,
            d.1,
            r.dice_by_class[0],
            r.dice_by_class[1],
            r.dice_by_class[2]
        );
    }
    md += "\n## Shape loss against none, per noise level\n\nPer-slice Dice averaged over seeds; two-sided paired Wilcoxon signed-rank p.\n\n";
    for &noise in &cfg.noise_levels {
        let base = rows
            .iter()
            .find(|r| r.cell.noise == noise && r.cell.shape == 0.0);
        for r in rows
            .iter()
            .filter(|r| r.cell.noise == noise && r.cell.shape > 0.0)
        {
            let Some(base) = base else { continue };
            // Both sides over the seeds both have finished.
            let seeds: Vec<u64> = base
                .dice
                .iter()
                .map(|d| d.0)
                .filter(|s| r.dice.iter().any(|d| d.0 == *s))
                .collect();
            let (a, b) = (
                per_slice_mean(&base.dice, &seeds),
                per_slice_mean(&r.dice, &seeds),
            );
            let p = wilcoxon_signed_rank(&b, &a).map(|t| t.p_value);
            let (ma, mb) = (mean(&a).0, mean(&b).0);
            let verdict = match p {
                Some(p) if p < 0.05 && mb > ma => "the shape loss keeps anatomy better",
                Some(p) if p < 0.05 => "the shape loss keeps anatomy worse",
                _ => "no significant difference",
            };
            let dpsnr = r.scores.mean(Metric::PSNR) - base.scores.mean(Metric::PSNR);
            let _ = writeln!(
                md,
                "- noise {noise}: Dice {ma:.4} without, {mb:.4} with shape {} ({}): {verdict}; \
                 PSNR changes by {dpsnr:+.2} dB.",
                r.cell.shape,
                p.map_or("-".into(), format_p)
            );
        }
    }
    md += "\nFigures: `metrics_vs_noise.png` (Dice and PSNR against the noise level), `examples.png` (test slices: T1 input with its labels, real T2, each cell's \
           G(x) (first seed) and the reference segmentor's labels on it).\n";
    md
}

/// Dice and PSNR against the noise level, a line per shape weight.
fn noise_plot(path: &Path, cfg: &ShapeConfig, rows: &[ShapeRow]) -> Result<()> {
    let weights: Vec<f64> = std::iter::once(0.0)
        .chain(cfg.shape_weights.iter().copied())
        .collect();
    let panel = |title: &str, unit: &str, value: &dyn Fn(&ShapeRow) -> f64| Panel {
        title: title.into(),
        x_label: "noise level".into(),
        y_label: unit.into(),
        series: weights
            .iter()
            .map(|&w| Series {
                label: Cell { shape: w, noise: 0 }.label(),
                points: rows
                    .iter()
                    .filter(|r| r.cell.shape == w)
                    .map(|r| (r.cell.noise as f64, value(r)))
                    .collect(),
            })
            .collect(),
    };
    let dice = |r: &ShapeRow| {
        let all: Vec<f64> = r.dice.iter().flat_map(|d| d.1.iter().copied()).collect();
        mean_std(&all).map_or(f64::NAN, |m| m.0)
    };
    line_panels(
        path,
        &[
            panel("Dice of the reference segmentor on G(x)", "Dice", &dice),
            panel("PSNR against the real T2", "dB", &|r| {
                r.scores.mean(Metric::PSNR)
            }),
        ],
        2,
    )
}

/// Label maps as grey levels: 0..3 spread over the grey range.
fn label_tile(l: &Slice) -> Tile {
    Tile::gray(l.clone(), 0.0, (CLASS_NAMES.len() - 1) as f32)
}

fn example_panel(
    path: &Path,
    test: &SliceDataset,
    truth: &[Slice],
    outputs: &[(String, Vec<Slice>)],
    segment: &dyn Fn(&[Slice]) -> Result<Vec<Slice>>,
) -> Result<()> {
    let picks = crate::plot::example_positions(test.len());
    let mut cols = vec![
        "T1 (input)".to_string(),
        "labels".into(),
        "T2 (truth)".into(),
    ];
    for (name, _) in outputs {
        cols.push(name.clone());
        cols.push("S_B on it".into());
    }
    let segs: Vec<Vec<Slice>> = outputs
        .iter()
        .map(|(_, fakes)| segment(&picks.iter().map(|&i| fakes[i].clone()).collect::<Vec<_>>()))
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    let mut names = Vec::new();
    for (k, &i) in picks.iter().enumerate() {
        let mut row = vec![
            Tile::gray(test.a[i].clone(), -1.0, 1.0),
            label_tile(&truth[i]),
            Tile::gray(test.b[i].clone(), -1.0, 1.0),
        ];
        for ((_, fakes), seg) in outputs.iter().zip(&segs) {
            row.push(Tile::gray(fakes[i].clone(), -1.0, 1.0));
            row.push(label_tile(&seg[k]));
        }
        rows.push(row);
        names.push(format!(
            "slice {}",
            test.refs.as_ref().map_or(i, |r| r[i].index)
        ));
    }
    image_grid(path, &cols, &names, &rows, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_atlas_inside_the_brain() {
        let labels = Slice::new(vec![0.0, 41.0, 2002.0, 0.0, 92.0, 5.0, 39.0, 46.0], 4, 2);
        let brain = [true, true, true, false, true, true, true, true];
        assert_eq!(
            classes(&labels, &brain).data,
            vec![1.0, 2.0, 3.0, 0.0, 2.0, 2.0, 1.0, 3.0]
        );
    }

    #[test]
    fn structure_dice_averages_the_present_classes() {
        let truth = Slice::new(vec![1.0, 1.0, 2.0, 0.0], 2, 2);
        let seg = Slice::new(vec![1.0, 2.0, 2.0, 0.0], 2, 2);
        let (mean, by) = structure_dice(&seg, &truth);
        // Class 1: 2*1/(1+2); class 2: 2*1/(2+1); class 3 absent.
        assert!((by[0].unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((by[1].unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(by[2], None);
        assert!((mean - 2.0 / 3.0).abs() < 1e-12);
    }
}
