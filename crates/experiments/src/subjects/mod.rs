//! The subjects benchmark: how each mode does on the next patient.
//!
//! Real pairs of many subjects (NiChart: T1 and FLAIR of one head, on
//! different grids, a third visibly moved between the scans), k-fold
//! cross-validation over subjects, so every subject is tested once by
//! models that never saw it. Two training conditions from the same files:
//! - **registered:** `prepare --align rigid`, FLAIR registered onto T1;
//! - **as scanned:** headers only, so the real misalignment stays in the
//!   training pairs: the noise RegGAN was made for.
//!
//! Test targets are always the registered ones. Scores are per subject
//! (the mean over its slices, brain-masked), and every comparison is a
//! paired test over subjects, not slices.
use crate::experiment::{Common, Experiment};
use crate::grid::{GridRun, Report};
use crate::slabs::{record_settings, reuse_dataset};
use anyhow::{bail, Context, Result};
use medtrans_datasets::{
    prepare, read_subject_csv, PrepareSpec, SliceDataset, SplitMethod, SplitSpec, MANIFEST_FILE,
};
use medtrans_io::Slice;
use medtrans_metrics::{dice, dice_best_threshold, Metric, SliceScore};
use medtrans_registration::Options as RegistrationOptions;
use medtrans_training::TrainConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

mod report;
pub use report::*;

/// Bins of the lesion window search (as many-to-one's Dice).
const LESION_BINS: usize = 64;

/// Lesion Dice of a translation in the window that best segments the real
/// target (see [`per_subject`]): a metric like the paper's three.
pub const LESION_DICE: Metric = Metric::new("lesion_dice", "lesion Dice", false);

/// How the training pairs were aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    /// B rigidly registered onto A (mutual information): the reference.
    Registered,
    /// The headers alone: the patient's motion between scans stays.
    AsScanned,
}

impl Condition {
    pub fn key(self) -> &'static str {
        match self {
            Condition::Registered => "registered",
            Condition::AsScanned => "as-scanned",
        }
    }
}

/// What a model trains on: a condition's pairs, with the RegGAN paper's
/// misalignment noise at `noise` on top (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Setting {
    pub condition: Condition,
    pub noise: u32,
}

impl Setting {
    /// Its name in tables, CSVs and run folders: `registered`,
    /// `as-scanned`, `registered-noise2`.
    pub fn key(self) -> String {
        match self.noise {
            0 => self.condition.key().to_string(),
            l => format!("{}-noise{l}", self.condition.key()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectsData {
    /// A subjects CSV: `subject,a,b[,mask[,labels_a[,labels_b]]]`, paths
    /// relative to it. `labels_b` (a lesion mask on B's grid) gives the
    /// lesion Dice; the mask gives the brain the metrics are taken in.
    pub subjects: PathBuf,
    /// Only the first N subjects (the quick config takes 2).
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default = "default_size")]
    pub size: usize,
    /// Slicing axis (2: axial).
    #[serde(default = "default_axis")]
    pub axis: usize,
    /// Slices whose mask covers less than this are left out.
    #[serde(default = "default_foreground")]
    pub min_foreground: f64,
    /// Register B onto A (rigid) for the `registered` condition. `false`
    /// for sets already aligned voxel by voxel (BraTS): their headers are
    /// the reference.
    #[serde(default = "default_register")]
    pub register: bool,
    /// Names of A's and B's contrasts, for titles.
    #[serde(default = "default_contrasts")]
    pub contrasts: [String; 2],
    /// The results page's title.
    #[serde(default = "default_title")]
    pub title: String,
}

fn default_size() -> usize {
    64
}
fn default_axis() -> usize {
    2
}
fn default_foreground() -> f64 {
    0.1
}
fn default_register() -> bool {
    true
}
fn default_contrasts() -> [String; 2] {
    ["A".into(), "B".into()]
}
fn default_title() -> String {
    "Subjects".into()
}
fn default_modes() -> Vec<String> {
    ["pix2pix", "cycle", "reggan", "cycle+reg"]
        .map(String::from)
        .to_vec()
}
fn default_conditions() -> Vec<Condition> {
    vec![Condition::Registered, Condition::AsScanned]
}
fn default_levels() -> Vec<u32> {
    vec![0]
}
fn default_folds() -> usize {
    4
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectsConfig {
    /// `runs`, `results`, `seeds` (default 1), `set`, `device`.
    #[serde(skip)]
    pub common: Common,
    /// `common.seeds`, or the default.
    #[serde(skip)]
    pub seeds: Vec<u64>,
    /// The subjects, in the CSV's order (after `limit`).
    #[serde(skip)]
    pub names: Vec<String>,
    #[serde(default = "default_modes")]
    pub modes: Vec<String>,
    #[serde(default = "default_conditions")]
    pub conditions: Vec<Condition>,
    /// The paper's misalignment noise levels (0-5) added to the training
    /// pairs of every condition: the noise sweep on real patients.
    #[serde(default = "default_levels")]
    pub noise_levels: Vec<u32>,
    /// Folds of the cross-validation: subject i is tested in fold
    /// i mod folds.
    #[serde(default = "default_folds")]
    pub folds: usize,
    pub data: SubjectsData,
}

impl Experiment for SubjectsConfig {
    const NAME: &'static str = "subjects";
    type Own = SubjectsConfig;
    type Outcome = SubjectsResults;

    fn new(common: Common, own: SubjectsConfig) -> Result<Self> {
        let origin = common.origin();
        let mut cfg = SubjectsConfig {
            seeds: common.seeds_or(&[1])?,
            common,
            ..own
        };
        // Paths are relative to where medtrans runs, as in every
        // experiment config.
        let subjects = read_subject_csv(&cfg.data.subjects)
            .with_context(|| format!("{origin}: data.subjects"))?;
        let n = cfg.data.limit.unwrap_or(subjects.len()).min(subjects.len());
        cfg.names = subjects[..n]
            .iter()
            .enumerate()
            .map(|(i, s)| s.name.clone().unwrap_or_else(|| format!("subject{i:03}")))
            .collect();
        if cfg.folds < 2 || cfg.folds > n {
            bail!(
                "{origin}: folds = {} with {n} subjects: cross-validation needs 2 to {n} folds",
                cfg.folds
            );
        }
        if cfg.modes.is_empty() || cfg.conditions.is_empty() || cfg.noise_levels.is_empty() {
            bail!("{origin}: modes, conditions and noise_levels must not be empty");
        }
        if let Some(l) = cfg.noise_levels.iter().find(|&&l| l > 5) {
            bail!("{origin}: noise level {l}: the paper's levels are 0 to 5");
        }
        if !cfg.conditions.contains(&Condition::Registered) {
            bail!("{origin}: conditions must include `registered`: test targets are registered");
        }
        Ok(cfg)
    }

    crate::common_field!();

    fn build(&self, report: Report) -> Result<()> {
        let all = read_subject_csv(&self.data.subjects)?;
        for fold in 0..self.folds {
            for &c in &self.conditions {
                let out = self.dataset(c, fold);
                let (train, test) = self.fold_subjects(fold);
                let names = |v: &[usize]| -> Vec<&str> {
                    v.iter().map(|&i| self.names[i].as_str()).collect()
                };
                // Everything the data depend on: a changed config never
                // reuses a fold prepared for another one.
                let settings = format!(
                    "condition = {:?}\ntrain = {:?}\ntest = {:?}\ndata = {:?}\n",
                    c.key(),
                    names(&train),
                    names(&test),
                    self.data
                );
                if reuse_dataset(&out, &settings)? {
                    continue;
                }
                report(&format!(
                    "preparing fold {fold} {}: {} training subjects, testing {}",
                    c.key(),
                    train.len(),
                    test.iter()
                        .map(|&i| self.names[i].as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                // Training subjects first: a volume-wise split assigns in
                // order.
                let order: Vec<_> = train.iter().chain(&test).map(|&i| all[i].clone()).collect();
                let n = order.len() as f64;
                let mut spec = PrepareSpec::new(order, &out);
                spec.size = self.data.size;
                spec.axis = self.data.axis;
                spec.min_foreground = self.data.min_foreground;
                spec.split = SplitSpec {
                    method: SplitMethod::Volume,
                    fractions: [train.len() as f64 / n, 0.0, test.len() as f64 / n],
                    gap: 0,
                };
                spec.align = (c == Condition::Registered && self.data.register)
                    .then(RegistrationOptions::default);
                let m = prepare(&spec, &mut |_, _, _| {})
                    .with_context(|| format!("preparing {}", out.display()))?;
                // A subject left out would shift the others between the
                // splits and make the conditions train on different sets.
                if let Some(s) = m.skipped.first() {
                    std::fs::remove_dir_all(&out).ok();
                    bail!(
                        "fold {fold} {}: {}'s registration failed ({}); the folds must hold the \
                         same subjects in every condition: remove it from {}, or align its \
                         pair first",
                        c.key(),
                        s.name,
                        s.reason,
                        self.data.subjects.display()
                    );
                }
                record_settings(&out, &settings)?;
            }
        }
        Ok(())
    }

    fn grid(&self) -> Result<Vec<GridRun>> {
        let mut runs = Vec::new();
        for &seed in &self.seeds {
            for fold in 0..self.folds {
                for s in self.settings() {
                    for mode in &self.modes {
                        runs.push(GridRun {
                            label: format!("fold {fold} {} {mode} seed {seed}", s.key()),
                            group: mode.clone(),
                            config: self.train_config(s, fold, mode, seed)?,
                        });
                    }
                }
            }
        }
        Ok(runs)
    }

    fn report(&self, say: Report) -> Result<SubjectsResults> {
        report::report(self, say)
    }
}

impl SubjectsConfig {
    /// The prepared data of one condition and fold.
    pub fn dataset(&self, c: Condition, fold: usize) -> PathBuf {
        self.common
            .runs
            .join(format!("data-{}-fold{fold}", c.key()))
    }

    pub fn run_dir(&self, s: Setting, fold: usize, mode: &str, seed: u64) -> PathBuf {
        self.common
            .runs
            .join(format!("{}-fold{fold}-{mode}-seed{seed}", s.key()))
    }

    /// Every training setting: conditions outermost, then noise levels.
    pub fn settings(&self) -> Vec<Setting> {
        self.conditions
            .iter()
            .flat_map(|&condition| {
                self.noise_levels
                    .iter()
                    .map(move |&noise| Setting { condition, noise })
            })
            .collect()
    }

    /// (training, test) subject positions of a fold.
    pub fn fold_subjects(&self, fold: usize) -> (Vec<usize>, Vec<usize>) {
        (0..self.names.len()).partition(|i| i % self.folds != fold)
    }

    fn train_config(&self, s: Setting, fold: usize, mode: &str, seed: u64) -> Result<TrainConfig> {
        TrainConfig::preset(mode, &self.common.set)
            .and_then(|t| {
                t.with(|t| {
                    t.data.path = self.dataset(s.condition, fold);
                    t.data.noise_level = s.noise;
                    t.out = self.run_dir(s, fold, mode, seed);
                    t.train.seed = seed;
                    t.train.device = self.common.device().to_string();
                })
            })
            .with_context(|| format!("run {mode} fold {fold} {} seed {seed}", s.key()))
    }
}

/// One subject's scores under one model (or the identity).
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectScore {
    pub subject: String,
    pub slices: usize,
    pub nmae: f64,
    pub psnr: f64,
    pub ssim: f64,
    /// Lesion Dice of the translation under the window that best segments
    /// the subject's real FLAIR (NaN without lesions or a lesion mask).
    pub lesion_dice: f64,
}

impl SubjectScore {
    pub fn value(&self, key: &str) -> f64 {
        match key {
            "nmae" => self.nmae,
            "psnr" => self.psnr,
            "ssim" => self.ssim,
            "lesion_dice" => self.lesion_dice,
            _ => f64::NAN,
        }
    }
}

/// Per subject of `test`: the mean of its slices' scores, and its lesion
/// Dice under the window chosen on its real target (so every model is
/// judged with the same window). Also returns that window's Dice on the
/// real target (the ceiling).
pub fn per_subject(
    test: &SliceDataset,
    fakes: &[Slice],
    scores: &[SliceScore],
) -> Result<Vec<(SubjectScore, f64)>> {
    let mut by: BTreeMap<usize, Vec<&SliceScore>> = BTreeMap::new();
    for s in scores {
        by.entry(s.subject).or_default().push(s);
    }
    let mut out = Vec::new();
    for (subject, list) in by {
        let name = subject_name(test, subject);
        let n = list.len() as f64;
        let mean = |f: fn(&SliceScore) -> f64| list.iter().map(|s| f(s)).sum::<f64>() / n;
        let (lesion_dice, ceiling) = match &test.labels_b {
            Some(labels) => lesion_dice(
                list.iter().map(|s| &fakes[s.position]),
                list.iter().map(|s| &test.b[s.position]),
                list.iter().map(|s| &labels[s.position]),
            ),
            None => (f64::NAN, f64::NAN),
        };
        out.push((
            SubjectScore {
                subject: name,
                slices: list.len(),
                nmae: mean(|s| s.nmae),
                psnr: mean(|s| s.psnr),
                ssim: mean(|s| s.ssim),
                lesion_dice,
            },
            ceiling,
        ));
    }
    Ok(out)
}

/// A subject's name in a prepared split's manifest (`subjectNNN` when the
/// manifest has none).
pub(crate) fn subject_name(test: &SliceDataset, subject: usize) -> String {
    test.manifest
        .as_ref()
        .and_then(|m| m.subjects.get(subject))
        .map_or(format!("subject{subject:03}"), |r| r.name.clone())
}

/// Pool a subject's slices into one image (stacked rows).
fn pool<'a>(slices: impl Iterator<Item = &'a Slice>) -> Slice {
    let mut data = Vec::new();
    let (mut w, mut h) = (0, 0);
    for s in slices {
        data.extend_from_slice(&s.data);
        w = s.width;
        h += s.height;
    }
    Slice::new(data, w, h)
}

/// (Dice of `fakes` in the window best for `reals`, that window's Dice on
/// `reals`), pooled over a subject's slices; NaN when it has no lesion.
fn lesion_dice<'a>(
    fakes: impl Iterator<Item = &'a Slice>,
    reals: impl Iterator<Item = &'a Slice>,
    labels: impl Iterator<Item = &'a Slice>,
) -> (f64, f64) {
    let (fake, real, label) = (pool(fakes), pool(reals), pool(labels));
    let truth: Vec<bool> = label.data.iter().map(|&v| v > 0.5).collect();
    if !truth.contains(&true) {
        return (f64::NAN, f64::NAN);
    }
    let best = dice_best_threshold(&real, &truth, LESION_BINS);
    // The window as bins, binned as dice_best_threshold bins (clamped at
    // both ends), so a value the real image's window holds is held here.
    let bin = |v: f32| {
        let b = ((v + 1.0) / 2.0 * LESION_BINS as f32).floor();
        if b.is_nan() {
            0
        } else {
            (b.max(0.0) as usize).min(LESION_BINS - 1)
        }
    };
    let (first, end) = best.bins;
    let seg: Vec<bool> = fake
        .data
        .iter()
        .map(|&v| (first..end).contains(&bin(v)))
        .collect();
    (dice(&seg, &truth).unwrap_or(f64::NAN), best.dice)
}
