//! One shape for every experiment: a config of shared keys ([`Common`])
//! plus the experiment's own, a grid of runs, the scoring of one run, and a
//! report. `medtrans experiment NAME` runs any of them through [`run`], so
//! a new experiment is a new module and one line in the CLI.
use crate::grid::{build_and_train, score_run, GridRun, Report};
use anyhow::{bail, Context, Result};
use medtrans_datasets::SliceDataset;
use medtrans_io::Slice;
use medtrans_metrics::SliceScore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The keys every experiment config shares. Each experiment's own keys sit
/// beside them at the top level of the same file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Common {
    /// Folder of the run folders (and the data the experiment prepares).
    pub runs: PathBuf,
    /// Folder of results.md/.csv, the per-slice CSV and the figures.
    pub results: PathBuf,
    /// Training seeds: every cell trains once per seed. Empty: the
    /// experiment's default (each says which).
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// `key=value` training overrides applied to every run: the shared
    /// budget and network sizes.
    #[serde(default)]
    pub set: Vec<String>,
    /// Where the runs train and are scored: `cpu` (default), `gpu` or
    /// `gpu:N`. Not part of a run's trajectory: an experiment may move
    /// devices between sittings.
    #[serde(default)]
    pub device: Option<String>,
    /// The file the config was read from, for the report's command line.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// How the runs train (the command line's `--jobs`); not a config key.
    #[serde(skip)]
    pub runner: crate::runner::Runner,
}

/// [`Common`]'s keys, as they are spelled in a config file.
pub const COMMON_KEYS: [&str; 5] = ["runs", "results", "seeds", "set", "device"];

impl Common {
    /// The device name runs train and are scored on.
    pub fn device(&self) -> &str {
        self.device.as_deref().unwrap_or("cpu")
    }

    /// `seeds`, or `default` when the config gives none; a repeated seed is
    /// refused (it would count one run twice and shrink the seed spread).
    pub fn seeds_or(&self, default: &[u64]) -> Result<Vec<u64>> {
        let seeds = if self.seeds.is_empty() {
            default.to_vec()
        } else {
            self.seeds.clone()
        };
        for (k, s) in seeds.iter().enumerate() {
            if seeds[..k].contains(s) {
                bail!("{}: seed {s} is listed twice in `seeds`", self.origin());
            }
        }
        Ok(seeds)
    }

    /// The config file's name for error messages.
    pub fn origin(&self) -> String {
        self.source
            .as_deref()
            .map_or("the experiment config".into(), |p| p.display().to_string())
    }
}

/// Read an experiment config: [`Common`]'s keys and the experiment's own
/// (`C`), from one TOML file. An unknown key is refused, naming the closest
/// known one of either part.
pub fn read_config<C: DeserializeOwned>(path: &Path) -> Result<(Common, C)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the experiment config {}", path.display()))?;
    let fail = |e: &dyn std::fmt::Display| {
        let message = e.to_string();
        let message = message.trim_end();
        // The own part's "expected one of" list lacks the shared keys.
        let known = COMMON_KEYS.map(|k| format!("`{k}`")).join(", ");
        let message = if message.starts_with("unknown field") {
            medtrans_training::config::with_suggestion(&format!("{message}, {known}"))
        } else {
            message.to_string()
        };
        anyhow::anyhow!("{}: {message}", path.display())
    };
    let mut own: toml::Table = toml::from_str(&text).map_err(|e| fail(&e.message()))?;
    let mut shared = toml::Table::new();
    for key in COMMON_KEYS {
        if let Some(v) = own.remove(key) {
            shared.insert(key.into(), v);
        }
    }
    let mut common: Common = toml::Value::Table(shared)
        .try_into()
        .map_err(|e: toml::de::Error| fail(&e.message()))?;
    common.source = Some(path.to_path_buf());
    let own: C = toml::Value::Table(own)
        .try_into()
        .map_err(|e: toml::de::Error| fail(&e.message()))?;
    Ok((common, own))
}

/// `common` and `common_mut` for an experiment whose shared keys are its
/// field `common` (every shipped one): `common_field!();` in its impl.
#[macro_export]
macro_rules! common_field {
    () => {
        fn common(&self) -> &$crate::experiment::Common {
            &self.common
        }

        fn common_mut(&mut self) -> &mut $crate::experiment::Common {
            &mut self.common
        }
    };
}

/// An experiment: a grid of training runs over prepared data, scored and
/// reported.
pub trait Experiment: Sized {
    /// Its name in `medtrans experiment NAME`, results' titles and links.
    const NAME: &'static str;
    /// Its own keys of the config file, beside [`Common`]'s.
    type Own: DeserializeOwned;
    /// What its report computes (its table's rows), for callers and tests.
    type Outcome;

    /// Check the two parts of a config and combine them. Everything that
    /// can be refused before the first hour of training is refused here.
    fn new(common: Common, own: Self::Own) -> Result<Self>;

    fn common(&self) -> &Common;
    fn common_mut(&mut self) -> &mut Common;

    /// Prepare the data the runs train on, once: a dataset already there
    /// (with the same settings) is reused.
    fn build(&self, report: Report) -> Result<()>;

    /// Every run, in training order, each with its complete config.
    fn grid(&self) -> Result<Vec<GridRun>>;

    /// One finished run's translations of `test` and their per-slice
    /// scores, from its last checkpoint (the fixed budget's end, not the
    /// best validation epoch, which would choose with aligned data a user
    /// may not have).
    fn score(&self, run: &Path, test: &SliceDataset) -> Result<(Vec<Slice>, Vec<SliceScore>)> {
        score_run(run, self.common().device(), test)
    }

    /// Score the finished runs and write results.md/.csv (through
    /// `ResultsTable`), the per-slice CSV and the figures. Fails when no
    /// run has finished.
    fn report(&self, report: Report) -> Result<Self::Outcome>;

    /// Load and check a config file.
    fn load(path: &Path) -> Result<Self> {
        let (common, own) = read_config(path)?;
        Self::new(common, own)
    }

    /// Build, train every run (resumed or skipped where a checkpoint is),
    /// then report; with `report_only`, only the report of the runs
    /// finished so far.
    fn run(&self, report_only: bool, report: Report) -> Result<Self::Outcome> {
        let c = self.common();
        if !report_only {
            // Every run's config is built, and so checked, before the
            // first one trains.
            let grid = self.grid()?;
            build_and_train(c, &grid, &mut |r| self.build(r), report)?;
        }
        let outcome = self.report(report)?;
        crate::grid::link_results(
            &c.runs,
            &format!("{} experiment: results", Self::NAME),
            &c.results.join("results.md"),
        );
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Own {
        levels: Vec<u32>,
    }

    fn read(text: &str) -> Result<(Common, Own)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exp.toml");
        std::fs::write(&path, text).unwrap();
        read_config(&path)
    }

    #[test]
    fn shared_and_own_keys_come_from_one_file() {
        let (c, own) =
            read("runs = 'r'\nresults = 'o'\nseeds = [3, 4]\nset = ['a=1']\nlevels = [0, 5]\n")
                .unwrap();
        assert_eq!(
            (c.runs, c.results, c.seeds, c.set, c.device),
            ("r".into(), "o".into(), vec![3, 4], vec!["a=1".into()], None)
        );
        assert!(c.source.unwrap().ends_with("exp.toml"));
        assert_eq!(own.levels, [0, 5]);
    }

    #[test]
    fn a_misspelt_key_of_either_part_is_named_with_its_file() {
        for (typo, meant) in [("result", "results"), ("level", "levels")] {
            let text = format!("runs = 'r'\nresults = 'o'\nlevels = []\n{typo} = 1\n");
            let err = read(&text).unwrap_err().to_string();
            assert!(
                err.contains("exp.toml") && err.contains(&format!("did you mean `{meant}`")),
                "{err}"
            );
        }
        let err = read("results = 'o'\nlevels = []\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("runs"), "{err}");
    }

    #[test]
    fn a_repeated_seed_is_refused() {
        let (c, _) = read("runs = 'r'\nresults = 'o'\nseeds = [1, 2, 1]\nlevels = []\n").unwrap();
        assert!(c.seeds_or(&[]).unwrap_err().to_string().contains("seed 1"));
        let (c, _) = read("runs = 'r'\nresults = 'o'\nlevels = []\n").unwrap();
        assert_eq!(c.seeds_or(&[1, 2]).unwrap(), [1, 2]);
    }
}
