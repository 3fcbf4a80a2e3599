//! The RegGAN paper's Table 1: is R a plug-in that helps any translator?
//!
//! Every translator family (CycleGAN's ResNet, UNIT, MUNIT, NICE-GAN) in
//! its four modes (C, C+R, NC, NC+R), trained on pairs moved by the
//! paper's Table 1 misalignment (rotation within +-5 degrees, translation
//! and scaling within +-5 %, freshly drawn each epoch) and tested against
//! the untouched targets of a held-out patient. The patients (`[data]`)
//! are prepared as in the subjects benchmark (`subjects`), so folds hold
//! out whole patients; `run_folds` picks which folds a budget allows. Or
//! one co-registered pair of volumes (`[volume]`, e.g. the ICBM template),
//! sliced into train and test slabs as the noise sweep does.
//!
//! The paper's claims are judged per family by paired Wilcoxon tests over
//! test slices (the mean over seeds of each slice's score): that unit is
//! neighbouring slices of the held-out patients, not patients, and the
//! report says so beside every p-value. With every fold run, the same
//! comparisons are also made over patients.
use crate::experiment::{Common, Experiment};
use crate::grid::{GridRun, Report};
use crate::noise_sweep::SweepData;
use crate::subjects::{Condition, SubjectsConfig, SubjectsData};
use anyhow::{bail, Context, Result};
use medtrans_training::TrainConfig;
use medtrans_transforms::MisalignRange;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

mod report;
pub use report::*;

/// A cell's mode: the paper's Table 1 columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Table1Mode {
    /// Both directions with the family's own cycle constraints.
    #[serde(rename = "c")]
    C,
    /// C plus R's correction and smoothness on A -> B.
    #[serde(rename = "c+r")]
    CR,
    /// One direction, adversarial (plus the family's within-domain terms).
    #[serde(rename = "nc")]
    Nc,
    /// NC plus R.
    #[serde(rename = "nc+r")]
    NcR,
}

impl Table1Mode {
    pub const ALL: [Table1Mode; 4] = [
        Table1Mode::C,
        Table1Mode::CR,
        Table1Mode::Nc,
        Table1Mode::NcR,
    ];

    /// Its name in configs, run folders and tables.
    pub fn key(self) -> &'static str {
        match self {
            Table1Mode::C => "c",
            Table1Mode::CR => "c+r",
            Table1Mode::Nc => "nc",
            Table1Mode::NcR => "nc+r",
        }
    }

    /// The paper's column heading.
    pub fn label(self) -> &'static str {
        match self {
            Table1Mode::C => "C",
            Table1Mode::CR => "C+R",
            Table1Mode::Nc => "NC",
            Table1Mode::NcR => "NC+R",
        }
    }

    /// The same mode with R added.
    pub fn with_r(self) -> Table1Mode {
        match self {
            Table1Mode::C | Table1Mode::CR => Table1Mode::CR,
            Table1Mode::Nc | Table1Mode::NcR => Table1Mode::NcR,
        }
    }
}

/// The preset that trains `family` in `mode`: CycleGAN's are the shipped
/// modes (`cycle`, `cycle+reg`, `nc`, `reggan`), every other family's are
/// named `FAMILY-MODE` (`unit-c+r`).
pub fn preset(family: &str, mode: Table1Mode) -> String {
    match (family, mode) {
        ("cyclegan", Table1Mode::C) => "cycle".into(),
        ("cyclegan", Table1Mode::CR) => "cycle+reg".into(),
        ("cyclegan", Table1Mode::Nc) => "nc".into(),
        ("cyclegan", Table1Mode::NcR) => "reggan".into(),
        (f, m) => format!("{f}-{}", m.key()),
    }
}

fn default_families() -> Vec<String> {
    ["cyclegan", "unit", "munit", "nice"]
        .map(String::from)
        .to_vec()
}
fn default_modes() -> Vec<Table1Mode> {
    Table1Mode::ALL.to_vec()
}
fn default_misalign() -> MisalignRange {
    MisalignRange::TABLE1
}
fn default_folds() -> usize {
    4
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table1Config {
    /// `runs`, `results`, `seeds` (default [1, 2]), `set` (every cell),
    /// `device`.
    #[serde(skip)]
    pub common: Common,
    #[serde(skip)]
    pub seeds: Vec<u64>,
    /// The patients, folds and data preparation, as the subjects benchmark.
    #[serde(skip)]
    pub subjects: Option<SubjectsConfig>,
    #[serde(default = "default_families")]
    pub families: Vec<String>,
    #[serde(default = "default_modes")]
    pub modes: Vec<Table1Mode>,
    /// Overrides per family, after `set`: each family's own network sizes
    /// (`options.unit.dim=16`), which another family's presets would refuse.
    #[serde(default)]
    pub family_set: BTreeMap<String, Vec<String>>,
    /// The training pairs' misalignment (default: the paper's Table 1).
    #[serde(default = "default_misalign")]
    pub misalign: MisalignRange,
    /// Folds of the cross-validation over patients: patient i is tested in
    /// fold i mod folds.
    #[serde(default = "default_folds")]
    pub folds: usize,
    /// The folds trained (default: all); the rest are prepared, not run.
    #[serde(default)]
    pub run_folds: Option<Vec<usize>>,
    /// Patients, one held out per fold.
    #[serde(default)]
    pub data: Option<SubjectsData>,
    /// Or one co-registered pair of volumes: train and test slabs of it
    /// (one fold).
    #[serde(default)]
    pub volume: Option<SweepData>,
    /// Names of A's and B's contrasts and the page's title (with
    /// `[volume]`; `[data]` has its own).
    #[serde(default)]
    pub contrasts: Option<[String; 2]>,
    #[serde(default)]
    pub title: Option<String>,
}

impl Experiment for Table1Config {
    const NAME: &'static str = "table1";
    type Own = Table1Config;
    type Outcome = Table1Results;

    fn new(common: Common, own: Table1Config) -> Result<Self> {
        let origin = common.origin();
        if own.families.is_empty() || own.modes.is_empty() {
            bail!("{origin}: families and modes must not be empty");
        }
        for f in own.family_set.keys() {
            if !own.families.contains(f) {
                bail!(
                    "{origin}: family_set.{f}: {f:?} is not one of families = {:?}",
                    own.families
                );
            }
        }
        for f in &own.families {
            medtrans_training::family::get(f).with_context(|| format!("{origin}: families"))?;
        }
        let folds = match (&own.data, &own.volume) {
            (Some(_), None) => own.folds,
            (None, Some(_)) if own.folds == default_folds() || own.folds == 1 => 1,
            (None, Some(_)) => bail!("{origin}: folds: one [volume] is one fold"),
            _ => bail!(
                "{origin}: give either [data] (patients) or [volume] (one pair), not both or neither"
            ),
        };
        // The subjects benchmark prepares the folds: registered only (the
        // noise is the misalignment here), no noise levels of its own.
        let subjects = match &own.data {
            Some(data) => Some(SubjectsConfig::new(
                common.clone(),
                SubjectsConfig {
                    common: Common::default(),
                    seeds: Vec::new(),
                    names: Vec::new(),
                    modes: vec!["cycle".into()],
                    conditions: vec![Condition::Registered],
                    noise_levels: vec![0],
                    folds,
                    data: data.clone(),
                },
            )?),
            None => None,
        };
        let run_folds = own
            .run_folds
            .clone()
            .unwrap_or_else(|| (0..folds).collect());
        if let Some(f) = run_folds.iter().find(|&&f| f >= folds) {
            bail!("{origin}: run_folds: fold {f} of {folds} (folds count from 0)");
        }
        let cfg = Table1Config {
            seeds: common.seeds_or(&[1, 2])?,
            common,
            subjects,
            run_folds: Some(run_folds),
            folds,
            ..own
        };
        // Every cell's config is made (and checked) now, not hours later.
        cfg.grid()?;
        Ok(cfg)
    }

    crate::common_field!();

    fn build(&self, report: Report) -> Result<()> {
        match (&self.subjects, &self.volume) {
            (Some(s), _) => s.build(report),
            (None, Some(v)) => v.prepare(&self.dataset(0), report),
            (None, None) => unreachable!("checked by Table1Config::new"),
        }
    }

    fn grid(&self) -> Result<Vec<GridRun>> {
        let mut runs = Vec::new();
        for &seed in &self.seeds {
            for &fold in self.run_folds() {
                for family in &self.families {
                    for &mode in &self.modes {
                        runs.push(GridRun {
                            label: format!("fold {fold} {family} {} seed {seed}", mode.label()),
                            group: format!("{family}-{}", mode.key()),
                            config: self.train_config(family, mode, fold, seed)?,
                        });
                    }
                }
            }
        }
        Ok(runs)
    }

    fn report(&self, say: Report) -> Result<Table1Results> {
        report::report(self, say)
    }
}

impl Table1Config {
    /// The folds trained.
    pub fn run_folds(&self) -> &[usize] {
        self.run_folds
            .as_deref()
            .expect("filled by Table1Config::new")
    }

    /// The prepared patients of one fold (or the volume's slabs).
    pub fn dataset(&self, fold: usize) -> PathBuf {
        match &self.subjects {
            Some(s) => s.dataset(Condition::Registered, fold),
            None => self.common.runs.join("dataset"),
        }
    }

    /// A's and B's contrast names, and the results page's title.
    pub fn labels(&self) -> ([String; 2], String) {
        let (contrasts, title) = match &self.data {
            Some(d) => (d.contrasts.clone(), d.title.clone()),
            None => (["A".to_string(), "B".to_string()], "Table 1".to_string()),
        };
        (
            self.contrasts.clone().unwrap_or(contrasts),
            self.title.clone().unwrap_or(title),
        )
    }

    pub fn run_dir(&self, family: &str, mode: Table1Mode, fold: usize, seed: u64) -> PathBuf {
        self.common
            .runs
            .join(format!("{family}-{}-fold{fold}-seed{seed}", mode.key()))
    }

    fn train_config(
        &self,
        family: &str,
        mode: Table1Mode,
        fold: usize,
        seed: u64,
    ) -> Result<TrainConfig> {
        let preset = preset(family, mode);
        let mut set = self.common.set.clone();
        set.extend(self.family_set.get(family).cloned().unwrap_or_default());
        TrainConfig::preset(&preset, &set)
            .and_then(|t| {
                t.with(|t| {
                    t.data.path = self.dataset(fold);
                    t.data.noise_level = 0;
                    t.data.misalign = Some(self.misalign);
                    t.out = self.run_dir(family, mode, fold, seed);
                    t.train.seed = seed;
                    t.train.device = self.common.device().to_string();
                })
            })
            .with_context(|| {
                format!(
                    "{}: {family} {} (preset {preset}) fold {fold} seed {seed}",
                    self.common.origin(),
                    mode.label()
                )
            })
    }
}
