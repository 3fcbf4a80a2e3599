//! Cross-modal data augmentation with predictor-guided translation (the
//! seed paper's Tables 2-4) on ICBM152: a predictor of the lateral-ventricle
//! area (mm², from CerebrA) on T2 slices, the target modality, when only a
//! few T2 slices are labelled but many T1 slices (the source) are.
//!
//! The kept slices around the ventricles are cut into blocks that take
//! turns as source (T1, all labelled), target (T2, `target_labelled` of
//! them labelled per split) and test (aligned T1/T2, T2 labelled), so the
//! three sets span the same anatomy without sharing a slice. Each random
//! split draws another labelled target subset; the test blocks stay.
//!
//! Settings, each scored by the test MSE of P on real T2 in mm²:
//! - PURE-target: P on the labelled target slices alone;
//! - PURE + simple augmentation (flip, rotation, crop-and-pad, intensity);
//! - MIX-untranslated: the union with the source T1 slices as they are
//!   (does translation matter at all?);
//! - transfer learning: P pretrained on the source T1, then fine-tuned on
//!   the labelled target (twice the updates of the others);
//! - MIX-CycleGAN: the union with source slices translated by a plain
//!   CycleGAN (the guided preset with lambda = 0, trained once);
//! - MIX-guided: the guided mode, translator and P trained jointly.
//!
//! The baselines' P is built and optimised as the guided run's
//! ([`fit_predictor`]) for as many updates as the guided run's P gets.
use crate::experiment::{Common, Experiment};
use crate::grid::{finished_steps, GridRun, Report};
use crate::plot::{bar_chart, image_grid, Bar, Tile};
use crate::slabs::{
    record_settings, reuse_dataset, write_dataset, AtlasSlices, AtlasSource, SplitArrays,
};
use anyhow::{bail, Context, Result};
use medtrans_datasets::{Pairing, SliceDataset};
use medtrans_io::{read_volume, write_file_atomic, Slice};
use medtrans_metrics::{format_p, mean_std, paired_t_test, Metric, SliceScore, Summary};
use medtrans_training::term_options::{GuidedOptions, GUIDED};
use medtrans_training::{
    fit_predictor, fit_predictor_stages, predict_with, FitOptions, Model, PredictorModel,
    TrainConfig,
};
use medtrans_transforms::Augment;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

mod report;
mod tables;
use report::*;
pub use tables::*;

/// CerebrA's lateral ventricles (right and left hemisphere).
pub const LATERAL_VENTRICLES: [u32; 2] = [41, 92];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    /// `runs`, `results`, `set`, `device` (no `seeds`: split k's runs and
    /// fits take seed k + 1).
    #[serde(skip)]
    pub common: Common,
    /// Random splits (labelled target subsets), each with its guided run.
    #[serde(default = "default_splits")]
    pub splits: usize,
    /// Labelled target (T2) slices per split.
    #[serde(default = "default_labelled")]
    pub target_labelled: usize,
    /// Slices per block when the source, target and test sets take turns.
    #[serde(default = "default_block")]
    pub block: usize,
    /// Slices left out between neighbouring blocks. 1 (the default) keeps
    /// the sets large on one subject but puts every test slice 1-2 slices
    /// from a training slice, which flatters every setting alike.
    #[serde(default = "default_gap")]
    pub gap: usize,
    /// Slices kept beyond the ventricles' first and last slice.
    #[serde(default = "default_margin")]
    pub margin: usize,
    /// Guidance weights lambda of the guided runs (the paper's 1e-3 first;
    /// with standardised labels its term is ~1e-4 of G's loss, so a larger
    /// one shows whether guidance can matter here at all).
    #[serde(default = "default_guidance")]
    pub guidance: Vec<f64>,
    /// Slices per predictor update in the baselines' fits.
    #[serde(default = "default_fit_batch")]
    pub fit_batch: usize,
    /// The simple-augmentation baseline's transforms.
    #[serde(default)]
    pub augment: Augment,
    /// T1 as `a` (source), T2 as `b` (target), with mask and CerebrA atlas.
    pub data: AtlasSource,
}

fn default_splits() -> usize {
    10
}
fn default_labelled() -> usize {
    24
}
fn default_guidance() -> Vec<f64> {
    vec![1e-3]
}
fn default_block() -> usize {
    4
}
fn default_gap() -> usize {
    1
}
fn default_margin() -> usize {
    12
}
fn default_fit_batch() -> usize {
    2
}

/// The compared settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Setting {
    Pure,
    Augmented,
    MixUntranslated,
    /// Transfer learning: P pretrained on the source T1, fine-tuned on the
    /// labelled target.
    Transfer,
    MixCycleGan,
    /// The guided mode at this lambda.
    MixGuided(f64),
}

impl Setting {
    /// Every setting of a config, the guided ones last.
    pub fn all(cfg: &AugmentConfig) -> Vec<Setting> {
        let mut v = vec![
            Setting::Pure,
            Setting::Augmented,
            Setting::MixUntranslated,
            Setting::Transfer,
            Setting::MixCycleGan,
        ];
        v.extend(cfg.guidance.iter().map(|&l| Setting::MixGuided(l)));
        v
    }

    pub fn key(self) -> String {
        match self {
            Setting::Pure => "pure".into(),
            Setting::Augmented => "augmented".into(),
            Setting::MixUntranslated => "mix-untranslated".into(),
            Setting::Transfer => "transfer".into(),
            Setting::MixCycleGan => "mix-cyclegan".into(),
            Setting::MixGuided(l) => format!("mix-guided-lambda{l}"),
        }
    }

    pub fn label(self) -> String {
        match self {
            Setting::Pure => "PURE-target".into(),
            Setting::Augmented => "PURE + aug.".into(),
            Setting::MixUntranslated => "MIX-untranslated".into(),
            Setting::Transfer => "transfer T1 -> T2".into(),
            Setting::MixCycleGan => "MIX-CycleGAN".into(),
            Setting::MixGuided(l) => format!("MIX-guided λ={l}"),
        }
    }
}

impl Experiment for AugmentConfig {
    const NAME: &'static str = "augment";
    type Own = AugmentConfig;
    type Outcome = AugmentResults;

    fn new(common: Common, own: AugmentConfig) -> Result<Self> {
        let origin = common.origin();
        if !common.seeds.is_empty() {
            bail!(
                "{origin}: augment takes no `seeds`: split k's translator and predictor fits \
                 train with seed k + 1, so more seeds are more `splits`"
            );
        }
        let cfg = AugmentConfig { common, ..own };
        if cfg.guidance.is_empty() || cfg.guidance.iter().any(|l| !(l.is_finite() && *l > 0.0)) {
            bail!("{origin}: guidance must list lambdas > 0 (lambda 0 is the MIX-CycleGAN translator)");
        }
        if cfg.splits == 0 || cfg.target_labelled == 0 || cfg.block == 0 || cfg.fit_batch == 0 {
            bail!("{origin}: splits, target_labelled, block and fit_batch must be at least 1");
        }
        Ok(cfg)
    }

    crate::common_field!();

    fn build(&self, report: Report) -> Result<()> {
        build_datasets(self, report)
    }

    /// The plain CycleGAN, then one guided run per split.
    fn grid(&self) -> Result<Vec<GridRun>> {
        let mut runs = vec![GridRun {
            label: "CycleGAN (lambda 0, no predictor)".into(),
            group: "cycle".into(),
            config: self.translator_config(0, None)?,
        }];
        for &l in &self.guidance {
            for k in 0..self.splits {
                runs.push(GridRun {
                    label: format!("guided lambda {l} split {k}"),
                    group: "guided".into(),
                    config: self.translator_config(k, Some(l))?,
                });
            }
        }
        Ok(runs)
    }

    fn report(&self, report: Report) -> Result<AugmentResults> {
        report_augment(self, report)
    }
}

impl AugmentConfig {
    pub fn device(&self) -> &str {
        self.common.device()
    }

    pub fn dataset(&self, split: usize) -> PathBuf {
        self.common.runs.join(format!("dataset-split{split}"))
    }

    pub fn cyclegan_dir(&self) -> PathBuf {
        self.common.runs.join("cyclegan")
    }

    pub fn guided_dir(&self, lambda: f64, split: usize) -> PathBuf {
        self.common
            .runs
            .join(format!("guided-lambda{lambda}-split{split}"))
    }

    /// The guided preset with the shared overrides, on split `split`'s
    /// data, guided by `lambda`; None is the plain CycleGAN (no predictor
    /// at all).
    fn translator_config(&self, split: usize, lambda: Option<f64>) -> Result<TrainConfig> {
        TrainConfig::preset("guided", &self.common.set).and_then(|t| {
            t.with(|t| {
                t.data.path = self.dataset(split);
                t.data.pairing = Pairing::Unpaired;
                t.train.seed = split as u64 + 1;
                t.train.device = self.device().to_string();
                if let Some(l) = lambda {
                    t.out = self.guided_dir(l, split);
                    t.edit_options(GUIDED, |o: &mut GuidedOptions| o.guidance = l);
                } else {
                    t.out = self.cyclegan_dir();
                    t.mode = "cycle".into();
                    t.edit_options(GUIDED, |o: &mut GuidedOptions| {
                        o.prediction = 0.0;
                        o.guidance = 0.0;
                    });
                }
            })
        })
    }
}

/// The slices of the experiment: the prepared subject, each slice's
/// lateral-ventricle area, and the positions of the three sets.
pub struct Layout {
    pub base: AtlasSlices,
    /// Lateral-ventricle area (mm²) per slice of `base`.
    pub area: Vec<f32>,
    pub source: Vec<usize>,
    pub target: Vec<usize>,
    pub test: Vec<usize>,
}

/// Area (mm², at the atlas's resolution) of `labels` in each plane of
/// `axis`.
pub fn structure_area(atlas: &Path, axis: usize, labels: &[u32]) -> Result<Vec<f32>> {
    let v = read_volume(atlas, &Default::default())
        .with_context(|| format!("reading the atlas {}", atlas.display()))?;
    let s = v.geometry.spacing;
    let pixel: f64 = (0..3).filter(|&k| k != axis).map(|k| s[k]).product();
    Ok((0..v.shape()[axis])
        .map(|k| {
            let plane = Slice::from_plane(&v, axis, k);
            let n = plane
                .data
                .iter()
                .filter(|&&l| labels.contains(&(l.round() as u32)))
                .count();
            (n as f64 * pixel) as f32
        })
        .collect())
}

/// Blocks of `block` positions from `range`, `gap` slices left out
/// between blocks, dealt in turn to `k` sets.
fn deal(range: std::ops::Range<usize>, block: usize, gap: usize, k: usize) -> Vec<Vec<usize>> {
    let mut sets = vec![Vec::new(); k];
    let mut start = range.start;
    let mut turn = 0;
    while start < range.end {
        let end = (start + block).min(range.end);
        sets[turn % k].extend(start..end);
        start = end + gap;
        turn += 1;
    }
    sets
}

pub fn layout(cfg: &AugmentConfig) -> Result<Layout> {
    let base = AtlasSlices::load(&cfg.data, &cfg.common.runs.join("slices"))?;
    let per_plane = structure_area(&cfg.data.atlas, cfg.data.axis, &LATERAL_VENTRICLES)?;
    let area: Vec<f32> = base.index.iter().map(|&k| per_plane[k]).collect();
    let with = |f: fn(&mut dyn Iterator<Item = usize>) -> Option<usize>| {
        f(&mut (0..area.len()).filter(|&p| area[p] > 0.0))
    };
    let (Some(first), Some(last)) = (with(|i| i.next()), with(|i| i.last())) else {
        bail!(
            "{}: no slice holds the lateral ventricles (labels {:?})",
            cfg.data.atlas.display(),
            LATERAL_VENTRICLES
        );
    };
    let range = first.saturating_sub(cfg.margin)..(last + 1 + cfg.margin).min(area.len());
    let mut sets = deal(range, cfg.block, cfg.gap, 3);
    let test = sets.pop().expect("three sets");
    let (mut source, mut target) = (sets.remove(0), sets.remove(0));
    let n = source.len().min(target.len());
    source.truncate(n);
    target.truncate(n);
    if cfg.target_labelled > n {
        bail!(
            "target_labelled = {} but the target set has {n} slices; lower it or raise margin",
            cfg.target_labelled
        );
    }
    Ok(Layout {
        base,
        area,
        source,
        target,
        test,
    })
}

/// Positions (in the target set) of split `k`'s labelled target slices.
pub fn labelled_subset(n: usize, count: usize, split: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(
        1000 + split as u64,
    ));
    let mut pick = order[..count.min(n)].to_vec();
    pick.sort_unstable();
    pick
}

/// One dataset per split: train = source T1 (labelled) against target T2
/// (the split's labelled subset), test = the aligned test slices with the
/// T2 areas.
pub fn build_datasets(cfg: &AugmentConfig, report: Report) -> Result<()> {
    let mut l: Option<Layout> = None;
    for k in 0..cfg.splits {
        let settings = format!(
            "{}block = {}\n{}margin = {}\ntarget_labelled = {}\nsplit = {k}\n",
            toml::to_string(&cfg.data)?,
            cfg.block,
            if cfg.gap == 1 {
                String::new()
            } else {
                format!("gap = {}\n", cfg.gap)
            },
            cfg.margin,
            cfg.target_labelled
        );
        let dir = cfg.dataset(k);
        if reuse_dataset(&dir, &settings)? {
            continue;
        }
        if l.is_none() {
            report(&format!(
                "preparing {} and {} at {} px with lateral-ventricle areas from {}",
                cfg.data.a.display(),
                cfg.data.b.display(),
                cfg.data.size,
                cfg.data.atlas.display()
            ));
            l = Some(layout(cfg)?);
        }
        let l = l.as_ref().expect("just set");
        let b = &l.base;
        let pick = labelled_subset(l.target.len(), cfg.target_labelled, k);
        let target_labels = (0..l.target.len())
            .map(|i| {
                if pick.contains(&i) {
                    l.area[l.target[i]]
                } else {
                    f32::NAN
                }
            })
            .collect();
        let train = SplitArrays {
            positions: l.source.clone(),
            a: l.source.iter().map(|&p| b.a[p].clone()).collect(),
            b: l.target.iter().map(|&p| b.b[p].clone()).collect(),
            mask: l.source.iter().map(|&p| b.brain[p].clone()).collect(),
            slice_labels: [
                Some(l.source.iter().map(|&p| l.area[p]).collect()),
                Some(target_labels),
            ],
            ..Default::default()
        };
        let test = SplitArrays {
            positions: l.test.clone(),
            a: l.test.iter().map(|&p| b.a[p].clone()).collect(),
            b: l.test.iter().map(|&p| b.b[p].clone()).collect(),
            mask: l.test.iter().map(|&p| b.brain[p].clone()).collect(),
            slice_labels: [None, Some(l.test.iter().map(|&p| l.area[p]).collect())],
            ..Default::default()
        };
        write_dataset(&dir, b, &[("train", train), ("test", test)])?;
        record_settings(&dir, &settings)?;
    }
    Ok(())
}

/// What the report computes.
#[derive(Debug, Clone)]
pub struct AugmentResults {
    /// Per setting, per finished split: (split, test MSE in mm²).
    pub mse: Vec<(Setting, Vec<(usize, f64)>)>,
    /// Translation quality on the test slices: the CycleGAN's and each
    /// guided run's G(x) against the real T2.
    pub quality: Vec<(String, Summary)>,
}

fn labelled(images: &[Slice], labels: &Option<Vec<f32>>) -> (Vec<Slice>, Vec<f32>) {
    images
        .iter()
        .zip(labels.iter().flatten())
        .filter(|(_, v)| !v.is_nan())
        .map(|(s, &v)| (s.clone(), v))
        .unzip()
}

fn mse(pred: &[Vec<f32>], truth: &[f32]) -> f64 {
    pred.iter()
        .zip(truth)
        .map(|(p, &t)| (p[0] as f64 - t as f64).powi(2))
        .sum::<f64>()
        / truth.len().max(1) as f64
}

/// A setting's test predictions on one split, with what they came from.
#[derive(Serialize, Deserialize)]
struct CachedFit {
    settings: String,
    predictions: Vec<Vec<f32>>,
}

/// Test predictions of one setting on one split: read back if an earlier
/// report computed them under the same `settings` (fits are
/// deterministic), else `make` them.
fn cached(
    path: &Path,
    settings: &str,
    make: impl FnOnce() -> Result<Vec<Vec<f32>>>,
) -> Result<Vec<Vec<f32>>> {
    if let Ok(text) = std::fs::read_to_string(path) {
        if let Ok(c) = serde_json::from_str::<CachedFit>(&text) {
            if c.settings == settings {
                return Ok(c.predictions);
            }
        }
    }
    let predictions = make()?;
    let c = CachedFit {
        settings: settings.to_string(),
        predictions,
    };
    write_file_atomic(path, serde_json::to_string(&c)?.as_bytes())?;
    Ok(c.predictions)
}

pub fn report_augment(cfg: &AugmentConfig, report: &mut dyn FnMut(&str)) -> Result<AugmentResults> {
    let device = cfg.device();
    let test = SliceDataset::open(&cfg.dataset(0), "test")?;
    let truth = test
        .slice_labels_b
        .clone()
        .context("the test split has no B_slice_labels.npy")?;
    let test_b: Vec<&Slice> = test.b.iter().collect();
    let cyclegan = cfg.cyclegan_dir();
    let cyclegan_done = finished_steps(&cyclegan)?.is_some();
    let fits = cfg.common.runs.join("fits");
    std::fs::create_dir_all(&fits).with_context(|| format!("creating {}", fits.display()))?;
    let mut mse_by: Vec<(Setting, Vec<(usize, f64)>)> = Setting::all(cfg)
        .into_iter()
        .map(|s| (s, Vec::new()))
        .collect();
    let mut quality = Vec::new();
    let cyc_model = if cyclegan_done {
        let m = Model::load(&cyclegan.join("checkpoints/last"), device)?;
        let (_, scores) = cfg.score(&cyclegan, &test)?;
        quality.push((
            "CycleGAN".to_string(),
            Summary::of(&scores).context("no scores")?,
        ));
        Some(m)
    } else {
        report(&format!(
            "{}: not finished; MIX-CycleGAN left out",
            cyclegan.display()
        ));
        None
    };
    let plain_device = medtrans_training::device_from_name(device)?;
    let mut guided_scores: Vec<Vec<SliceScore>> = vec![Vec::new(); cfg.guidance.len()];
    for k in 0..cfg.splits {
        let dirs: Vec<PathBuf> = cfg.guidance.iter().map(|&l| cfg.guided_dir(l, k)).collect();
        let mut steps = None;
        for d in &dirs {
            steps = finished_steps(d)?;
            if steps.is_none() {
                break;
            }
        }
        let Some(steps) = steps else {
            report(&format!(
                "split {k}: a guided run has not finished; split left out"
            ));
            continue;
        };
        let run_cfg = cfg.translator_config(k, Some(cfg.guidance[0]))?;
        let train = SliceDataset::open(&cfg.dataset(k), "train")?;
        let (target, target_labels) = labelled(&train.b, &train.slice_labels_b);
        let (source, source_labels) = (
            train.a.clone(),
            train
                .slice_labels_a
                .clone()
                .context("no A_slice_labels.npy")?,
        );
        let fit = |images: Vec<Slice>, labels: Vec<f32>, augment: Option<Augment>| {
            let p = fit_predictor(
                &run_cfg,
                &images.iter().collect::<Vec<_>>(),
                &labels,
                &FitOptions {
                    steps,
                    batch: cfg.fit_batch,
                    seed: k as u64 + 1,
                    augment,
                },
            )?;
            predict_with(&p, run_cfg.predictor.task, &test_b, 16, &plain_device)
        };
        let union = |extra: Vec<Slice>| {
            let mut images = target.clone();
            images.extend(extra);
            let mut labels = target_labels.clone();
            labels.extend(&source_labels);
            (images, labels)
        };
        // Everything a fit depends on besides the dataset (which is rebuilt
        // when its own settings change).
        let fit_settings = format!(
            "steps {steps}, batch {}, augment {:?}, set {:?}, dataset {}",
            cfg.fit_batch,
            cfg.augment,
            cfg.common.set,
            std::fs::read_to_string(cfg.dataset(k).join("settings.toml")).unwrap_or_default()
        );
        for (setting, list) in mse_by.iter_mut() {
            let path = fits.join(format!("{}-split{k}.json", setting.key()));
            let pred = match setting {
                Setting::Pure => cached(&path, &fit_settings, || {
                    fit(target.clone(), target_labels.clone(), None)
                })?,
                Setting::Augmented => cached(&path, &fit_settings, || {
                    fit(target.clone(), target_labels.clone(), Some(cfg.augment))
                })?,
                Setting::MixUntranslated => cached(&path, &fit_settings, || {
                    let (i, l) = union(source.clone());
                    fit(i, l, None)
                })?,
                Setting::Transfer => cached(&path, &fit_settings, || {
                    let src: Vec<&Slice> = source.iter().collect();
                    let tgt: Vec<&Slice> = target.iter().collect();
                    let p = fit_predictor_stages(
                        &run_cfg,
                        &[(&src, &source_labels), (&tgt, &target_labels)],
                        &FitOptions {
                            steps,
                            batch: cfg.fit_batch,
                            seed: k as u64 + 1,
                            augment: None,
                        },
                    )?;
                    predict_with(&p, run_cfg.predictor.task, &test_b, 16, &plain_device)
                })?,
                Setting::MixCycleGan => {
                    let Some(m) = &cyc_model else { continue };
                    cached(&path, &fit_settings, || {
                        let translated =
                            m.translate_slices(&source.iter().collect::<Vec<_>>(), 16)?;
                        let (i, l) = union(translated);
                        fit(i, l, None)
                    })?
                }
                Setting::MixGuided(l) => {
                    let dir = cfg.guided_dir(*l, k);
                    let p = PredictorModel::load(&dir.join("checkpoints/last"), device)?;
                    p.predict_slices(&test_b, 16)?
                }
            };
            list.push((k, mse(&pred, &truth)));
        }
        for (d, all) in dirs.iter().zip(guided_scores.iter_mut()) {
            all.extend(cfg.score(d, &test)?.1);
        }
        report(&format!("split {k}: scored"));
    }
    for (l, scores) in cfg.guidance.iter().zip(&guided_scores) {
        if let Some(s) = Summary::of(scores) {
            quality.push((format!("guided λ={l} (all splits)"), s));
        }
    }
    let results = AugmentResults {
        mse: mse_by,
        quality,
    };
    write_report(cfg, &results, &test, cyc_model.as_ref())?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_dealt_in_turn_with_a_slice_between() {
        let sets = deal(0..14, 2, 1, 3);
        assert_eq!(
            sets,
            vec![vec![0, 1, 9, 10], vec![3, 4, 12, 13], vec![6, 7]]
        );
    }

    #[test]
    fn labelled_subsets_differ_per_split_and_are_reproducible() {
        let a = labelled_subset(40, 10, 0);
        assert_eq!(a.len(), 10);
        assert_eq!(a, labelled_subset(40, 10, 0));
        assert_ne!(a, labelled_subset(40, 10, 1));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
    }
}
