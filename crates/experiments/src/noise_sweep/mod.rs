//! The RegGAN paper's noise sweep (Table 2, Fig. 4): every mode at every
//! misalignment level, same data, same budget, scored on a disjoint test
//! slab against the untouched aligned targets.
use crate::experiment::{Common, Experiment};
use crate::grid::{finished_steps, GridRun, Report, ResultsRow, ResultsTable};
use anyhow::{bail, Context, Result};
use medtrans_datasets::{
    prepare, PairOptions, Pairing, PrepareSpec, SliceDataset, SplitSpec, SubjectSpec, MANIFEST_FILE,
};
use medtrans_io::Slice;
use medtrans_metrics::{mean_std, Metric, Summary};
use medtrans_training::checkpoint::last_checkpoint;
use medtrans_training::{RunNetworks, SliceScore, TrainConfig};
use medtrans_transforms::{ideal_field, percentile};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

mod claims;
pub mod figures;
pub use claims::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// `runs`, `results`, `seeds`, `set`, `device`. `seeds`: the first is
    /// the base runs' (`MODE-noiseL`); each further seed trains every cell
    /// once more in `MODE-noiseL-seedS` beside them, so the table can tell a
    /// difference from seed noise (adding seeds to a finished sweep reuses
    /// its base runs). Without `seeds`, the base runs take `set`'s
    /// `train.seed` (or the preset's) and there are no further seeds.
    #[serde(skip)]
    pub common: Common,
    #[serde(default = "default_modes")]
    pub modes: Vec<String>,
    #[serde(default = "default_levels")]
    pub noise_levels: Vec<u32>,
    pub data: SweepData,
    /// The base runs' seed when `seeds` names it.
    #[serde(skip)]
    pub base: Option<u64>,
    /// `seeds` after the first.
    #[serde(skip)]
    pub extra_seeds: Vec<u64>,
    /// `unpaired`: every training A meets the B of another slice (another
    /// subject where there are several), the RegGAN paper's unpaired
    /// experiment (section 4.4, Fig. 6). Pix2Pix and R then learn from
    /// targets that do not correspond, as in the paper. Test scores stay
    /// against the aligned truth.
    #[serde(default)]
    pub pairing: Pairing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepData {
    /// Source and target volumes (co-registered) and an optional mask.
    pub a: PathBuf,
    pub b: PathBuf,
    pub mask: Option<PathBuf>,
    #[serde(default = "default_size")]
    pub size: usize,
    /// Slicing axis (2: axial).
    #[serde(default = "default_axis")]
    pub axis: usize,
}

impl SweepData {
    /// Slice the pair into `out` once (a dataset already there is kept):
    /// train, validation and test slabs of the one volume.
    pub fn prepare(&self, out: &Path, report: Report) -> Result<()> {
        if out.join(MANIFEST_FILE).is_file() {
            return Ok(());
        }
        report(&format!(
            "preparing {} -> {} at {} px",
            self.a.display(),
            self.b.display(),
            self.size
        ));
        let mut spec = PrepareSpec::new(
            vec![SubjectSpec {
                a: self.a.clone(),
                b: self.b.clone(),
                mask: self.mask.clone(),
                ..Default::default()
            }],
            out,
        );
        spec.size = self.size;
        spec.axis = self.axis;
        spec.min_foreground = 0.1;
        spec.split = SplitSpec::default();
        prepare(&spec, &mut |_, _, _| {})?;
        Ok(())
    }
}

fn default_modes() -> Vec<String> {
    ["pix2pix", "cycle", "reggan"].map(String::from).to_vec()
}
fn default_levels() -> Vec<u32> {
    (0..=5).collect()
}
fn default_size() -> usize {
    64
}
fn default_axis() -> usize {
    2
}

impl Experiment for SweepConfig {
    const NAME: &'static str = "noise-sweep";
    type Own = SweepConfig;
    type Outcome = Vec<SweepRow>;

    fn new(common: Common, own: SweepConfig) -> Result<Self> {
        let origin = common.origin();
        let seeds = common.seeds_or(&[])?;
        let mut cfg = SweepConfig { common, ..own };
        if cfg.modes.is_empty() || cfg.noise_levels.is_empty() {
            bail!("{origin}: modes and noise_levels must not be empty");
        }
        if let Some((&base, extra)) = seeds.split_first() {
            // The base runs' folders carry no seed in their names: their
            // seed is the one `set` (or the preset) gives, always, so that
            // finished base runs are never relabelled.
            let from_set = cfg.base_seed()?;
            if from_set != base {
                bail!(
                    "{origin}: `seeds` starts with {base}, but the base runs (MODE-noiseL) \
                     train with train.seed={from_set} from `set` or the preset; start `seeds` \
                     with {from_set}, or set train.seed={base} in `set` for a new sweep"
                );
            }
            cfg.base = Some(base);
            cfg.extra_seeds = extra.to_vec();
        }
        Ok(cfg)
    }

    crate::common_field!();

    fn build(&self, report: Report) -> Result<()> {
        self.data.prepare(&self.dataset(), report)
    }

    /// Every run of the sweep as a grid, in [`SweepConfig::runs`] order.
    fn grid(&self) -> Result<Vec<GridRun>> {
        self.runs()
            .into_iter()
            .map(|(mode, level, seed)| {
                Ok(GridRun {
                    label: format!(
                        "{mode} noise {level}{}",
                        seed.map_or(String::new(), |s| format!(" seed {s}"))
                    ),
                    config: self.train_config(&mode, level, seed)?,
                    group: mode,
                })
            })
            .collect()
    }

    fn report(&self, report: Report) -> Result<Vec<SweepRow>> {
        report_noise_sweep(self, report)
    }
}

impl SweepConfig {
    /// The folder of a cell's base run.
    pub fn run_dir(&self, mode: &str, level: u32) -> PathBuf {
        self.seed_dir(mode, level, None)
    }

    /// The folder of a cell's run with an extra seed (`None`: the base run).
    pub fn seed_dir(&self, mode: &str, level: u32, seed: Option<u64>) -> PathBuf {
        // Paired runs keep their historical names; unpaired ones never
        // collide with them in a shared runs folder.
        let mode = match self.pairing {
            Pairing::Paired => mode.to_string(),
            Pairing::Unpaired => format!("{mode}-unpaired"),
        };
        match seed {
            None => self.common.runs.join(format!("{mode}-noise{level}")),
            Some(s) => self
                .common
                .runs
                .join(format!("{mode}-noise{level}-seed{s}")),
        }
    }

    /// The seed the base runs train with (`train.seed` from `set`, or the
    /// preset's).
    pub fn base_seed(&self) -> Result<u64> {
        let (mode, level) = self.cells().remove(0);
        Ok(self.train_config(&mode, level, None)?.train.seed)
    }

    /// Every run: all base runs first, then all cells again per extra seed,
    /// so a sweep cut short has its whole grid once before any repeat.
    pub fn runs(&self) -> Vec<(String, u32, Option<u64>)> {
        std::iter::once(None)
            .chain(self.extra_seeds.iter().copied().map(Some))
            .flat_map(|seed| self.cells().into_iter().map(move |(m, l)| (m, l, seed)))
            .collect()
    }

    /// Every (mode, noise level) pair, modes outermost.
    pub fn cells(&self) -> Vec<(String, u32)> {
        self.modes
            .iter()
            .flat_map(|m| self.noise_levels.iter().map(move |&l| (m.clone(), l)))
            .collect()
    }

    pub fn dataset(&self) -> PathBuf {
        self.common.runs.join("dataset")
    }

    /// The networks of a base run as it ended (its last checkpoint).
    pub fn finished_networks(&self, mode: &str, level: u32) -> Result<RunNetworks> {
        RunNetworks::load(&last_checkpoint(&self.run_dir(mode, level))?, self.device())
    }

    /// The device name runs train and are scored on.
    pub fn device(&self) -> &str {
        self.common.device()
    }

    /// The training config of one run: the mode's preset with the shared
    /// overrides, then this run's data, folder, level, device and seed.
    fn train_config(&self, mode: &str, level: u32, seed: Option<u64>) -> Result<TrainConfig> {
        TrainConfig::preset(mode, &self.common.set)
            .and_then(|c| {
                c.with(|c| {
                    c.data.path = self.dataset();
                    c.out = self.seed_dir(mode, level, seed);
                    c.data.noise_level = level;
                    c.data.pairing = self.pairing;
                    c.data.unpaired_pixel_losses = self.pairing == Pairing::Unpaired;
                    c.train.device = self.device().to_string();
                    if let Some(s) = seed.or(self.base) {
                        c.train.seed = s;
                    }
                })
            })
            .with_context(|| format!("run {mode} at noise {level}"))
    }
}

/// Scores of one (mode, noise level) cell: mean and std over the test
/// slices of all its finished runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    pub mode: String,
    pub noise_level: u32,
    /// Mean and std of each metric over the test slices of all its runs.
    pub scores: Summary,
    /// Each finished run's seed and mean PSNR, the base run first.
    pub psnr_by_run: Vec<(u64, f64)>,
}

impl SweepRow {
    /// Mean PSNR (dB) over the cell's slices: what the claims compare.
    pub fn psnr(&self) -> f64 {
        self.scores.mean(Metric::PSNR)
    }

    pub fn nmae(&self) -> f64 {
        self.scores.mean(Metric::NMAE)
    }

    /// The sample std of the runs' mean PSNRs: how far the seed alone
    /// moves this cell. `None` with fewer than two runs.
    pub fn seed_std(&self) -> Option<f64> {
        let v: Vec<f64> = self.psnr_by_run.iter().map(|r| r.1).collect();
        let n = v.len() as f64;
        // mean_std's std divides by n; the sample std by n - 1.
        (v.len() >= 2)
            .then(|| mean_std(&v))
            .flatten()
            .map(|(_, sd)| sd * (n / (n - 1.0)).sqrt())
    }
}

/// How well R undid the injected misalignment of one base run, on the
/// validation split (endpoint errors over the moved target's foreground).
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrationRow {
    pub mode: String,
    pub noise_level: u32,
    /// Mean length of the ideal field: the misalignment to undo, px.
    pub misalignment_px: f64,
    /// Mean length of (R's field - ideal field), px.
    pub residual_px: f64,
    /// Mean |G(x) - y| and |warp(G(x)) - y| against the moved target.
    pub l1_unwarped: f64,
    pub l1_warped: f64,
}

/// One finished run's seed and its per-slice test scores.
type SeedScores = (u64, Vec<SliceScore>);

/// Score the finished runs and draw the figures, without training: the
/// table and figures of a sweep still under way cover the runs done so far.
pub fn report_noise_sweep(
    cfg: &SweepConfig,
    report: &mut dyn FnMut(&str),
) -> Result<Vec<SweepRow>> {
    let all = cfg.runs();
    let mut finished = Vec::new();
    let mut steps = 0;
    for (mode, level, seed) in &all {
        if let Some(s) = finished_steps(&cfg.seed_dir(mode, *level, *seed))? {
            finished.push((mode.clone(), *level, *seed));
            steps = s;
        }
    }
    if finished.is_empty() {
        bail!("no finished runs in {} yet", cfg.common.runs.display());
    }
    report(&format!(
        "scoring the last checkpoints of {} of {} runs on the test slab",
        finished.len(),
        all.len()
    ));
    let test = SliceDataset::open(&cfg.dataset(), "test")?;
    // Outputs kept for the example panels: the lowest and highest levels.
    let lo = *cfg.noise_levels.iter().min().unwrap_or(&0);
    let hi = *cfg.noise_levels.iter().max().unwrap_or(&0);
    let mut examples: BTreeMap<u32, Vec<(String, Vec<Slice>)>> = BTreeMap::new();
    // Per cell: every finished run's slice scores, the base run first.
    let mut scored: BTreeMap<(String, u32), Vec<SeedScores>> = BTreeMap::new();
    let base_seed = cfg.base_seed()?;
    for (mode, level, seed) in &finished {
        let (fakes, scores) = cfg.score(&cfg.seed_dir(mode, *level, *seed), &test)?;
        scored
            .entry((mode.clone(), *level))
            .or_default()
            .push((seed.unwrap_or(base_seed), scores));
        if seed.is_none() && (*level == lo || *level == hi) {
            examples
                .entry(*level)
                .or_default()
                .push((mode.clone(), fakes));
        }
    }
    // Every run's slice scores, so that any p-value over slices can be
    // recomputed from the committed results.
    let mut per_slice = String::from("mode,noise_level,seed,subject,slice,nmae,psnr,ssim\n");
    for ((mode, level), runs) in &scored {
        for (seed, scores) in runs {
            for s in scores {
                let _ = writeln!(
                    per_slice,
                    "{mode},{level},{seed},{},{},{:.6},{:.4},{:.6}",
                    s.subject, s.slice, s.nmae, s.psnr, s.ssim
                );
            }
        }
    }
    let dir = &cfg.common.results;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    medtrans_io::write_file_atomic(&dir.join("per_slice.csv"), per_slice.as_bytes())?;
    let rows: Vec<SweepRow> = cfg
        .cells()
        .into_iter()
        .filter_map(|key| {
            let runs = scored.get(&key)?;
            Some(SweepRow {
                mode: key.0,
                noise_level: key.1,
                scores: Summary::of(runs.iter().flat_map(|r| &r.1))?,
                psnr_by_run: runs
                    .iter()
                    .map(|(seed, r)| {
                        let psnr = Summary::of(r).map_or(f64::NAN, |s| s.mean(Metric::PSNR));
                        (*seed, psnr)
                    })
                    .collect(),
            })
        })
        .collect();
    // The table and metrics_vs_noise pool every seed; the curves, panels,
    // fields and R's check show the base runs.
    let cells: Vec<(String, u32)> = finished
        .iter()
        .filter(|r| r.2.is_none())
        .map(|r| (r.0.clone(), r.1))
        .collect();
    let scale = (steps, SliceDataset::open(&cfg.dataset(), "train")?.len());
    report("checking R against the injected misalignment (validation split)");
    let val = SliceDataset::open(&cfg.dataset(), "val")?;
    let mut registration = Vec::new();
    // R's check draws paired validation pairs: it says nothing of a model
    // that never saw a corresponding pair.
    for (mode, level) in cells.iter().filter(|_| cfg.pairing == Pairing::Paired) {
        if cfg.train_config(mode, *level, None)?.uses_registration() {
            let run = cfg.finished_networks(mode, *level)?;
            registration.push(registration_check(&run, mode, *level, &val)?);
        }
    }
    write_results(
        cfg,
        &rows,
        &registration,
        scale,
        (finished.len(), all.len()),
    )?;
    report("drawing the figures");
    figures::metrics_vs_noise(&dir.join("metrics_vs_noise.png"), &cfg.modes, &rows)?;
    figures::validation_curves(&dir.join("validation_curves.png"), cfg, &cells)?;
    figures::smoothness_curves(&dir.join("smoothness.png"), cfg, &cells)?;
    for (level, outputs) in &examples {
        figures::example_panel(
            &dir.join(format!("examples_noise{level}.png")),
            &test,
            outputs,
        )?;
    }
    // R's fields, for the first mode that has R.
    for mode in &cfg.modes {
        let levels = figures::levels_of(&cells, mode);
        if !levels.is_empty() && cfg.train_config(mode, lo, None)?.uses_registration() {
            let path = dir.join(format!("fields_{mode}.png"));
            figures::field_panel(&path, cfg, mode, &levels, &test)?;
            break;
        }
    }
    Ok(rows)
}

/// Does R find the misalignment the sweep injected? On every pair of
/// `split`, moved at `level` as in training, compare R's field on
/// (G(x), y) with the field that exactly undoes the two known affines.
pub fn registration_check(
    trainer: &RunNetworks,
    mode: &str,
    level: u32,
    split: &SliceDataset,
) -> Result<RegistrationRow> {
    let opts = PairOptions {
        noise_level: level,
        pairing: Pairing::Paired,
        misalign: None,
        seed: 7,
    };
    let (mut mis, mut res, mut n) = (0f64, 0f64, 0usize);
    let (mut l1_before, mut l1_after, mut m) = (0f64, 0f64, 0usize);
    for i in 0..split.len() {
        let pair = split.pair(i, 0, &opts);
        let fake = trainer.translate(&[&pair.a])?.remove(0);
        let Some((warped, fields)) = trainer.register(std::slice::from_ref(&fake), &[&pair.b])?
        else {
            bail!("{mode} has no registration network");
        };
        let (w, h) = (fake.width, fake.height);
        let (dy, dx) = ideal_field(&pair.noise_a, &pair.noise_b, w, h);
        for k in 0..w * h {
            l1_before += (fake.data[k] - pair.b.data[k]).abs() as f64;
            l1_after += (warped[0].data[k] - pair.b.data[k]).abs() as f64;
            m += 1;
            // Endpoint errors on the anatomy only: background is flat, so
            // no field can be right or wrong there.
            if pair.b.data[k] > -0.9 {
                mis += dy.data[k].hypot(dx.data[k]) as f64;
                res +=
                    (fields[0].data[k] - dy.data[k]).hypot(fields[1].data[k] - dx.data[k]) as f64;
                n += 1;
            }
        }
    }
    if n == 0 {
        bail!("{mode} at noise {level}: the split has no foreground to check R on");
    }
    Ok(RegistrationRow {
        mode: mode.into(),
        noise_level: level,
        misalignment_px: mis / n as f64,
        residual_px: res / n as f64,
        l1_unwarped: l1_before / m as f64,
        l1_warped: l1_after / m as f64,
    })
}

fn write_results(
    cfg: &SweepConfig,
    rows: &[SweepRow],
    registration: &[RegistrationRow],
    (steps, train): (usize, usize),
    (done, planned): (usize, usize),
) -> Result<()> {
    let dir = &cfg.common.results;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let seeded = !cfg.extra_seeds.is_empty();
    // The CSV always has each cell's run count and seed std; the markdown
    // lists the runs' PSNRs and the seed std when there are extra seeds.
    let mut results = ResultsTable {
        keys: vec![
            ("mode".into(), "mode".into()),
            ("noise_level".into(), "noise".into()),
        ],
        slices_heading: if seeded {
            "slices (all runs)"
        } else {
            "slices"
        }
        .into(),
        extras: vec![
            ("runs".into(), "PSNR by seed".into()),
            ("psnr_seed_std".into(), "seed std (dB)".into()),
        ],
        rows: rows
            .iter()
            .map(|r| {
                let sd = r.seed_std();
                let by: Vec<String> = r
                    .psnr_by_run
                    .iter()
                    .map(|(s, p)| format!("{s}: {p:.2}"))
                    .collect();
                ResultsRow {
                    keys: vec![r.mode.clone(), r.noise_level.to_string()],
                    scores: r.scores.clone(),
                    extras: vec![
                        (r.psnr_by_run.len().to_string(), by.join(" / ")),
                        (
                            sd.map_or(String::new(), |v| format!("{v:.4}")),
                            sd.map_or("-".into(), |v| format!("{v:.2}")),
                        ),
                    ],
                }
            })
            .collect(),
    };
    let csv = results.csv();
    if !seeded {
        results.extras.clear();
        results.rows.iter_mut().for_each(|r| r.extras.clear());
    }
    let table = results.markdown();
    medtrans_io::write_file_atomic(&dir.join("results.csv"), csv.as_bytes())?;
    let config = cfg
        .common
        .source
        .as_ref()
        .map_or("CONFIG".into(), |p| p.display().to_string());
    let seeds = if seeded {
        format!(
            " Every cell is trained once with the seed of `set` and once more with each \
             extra seed ({}). The seed also draws the training pairs' misalignments, \
             so seed noise covers both the initial weights and the noise draws. \
             A row pools the slices of all its finished runs (its +- std mixes \
             slice and seed spread); \"PSNR by seed\" gives each run's mean.",
            cfg.extra_seeds
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        String::new()
    };
    let mut md = format!(
        "# Noise sweep: results\n\n\
         Made by `medtrans experiment noise-sweep --config {config}` (run from the \
         repository root; finished runs are reused, so rerunning redraws this page).\n\n\
         Scale: {size} px slices along axis {axis}; {train} training slices; \
         {steps} steps per run, batch 1; {pairing}; shared overrides: `{set}`. \
         Each cell is its run's last checkpoint, scored on the test slab against \
         the aligned targets (mean +- std over slices).{seeds}\n\n{partial}{table}\n\
         ## The paper's claims, checked automatically\n\n{claims}",
        size = cfg.data.size,
        axis = cfg.data.axis,
        set = cfg.common.set.join(" "),
        pairing = match cfg.pairing {
            Pairing::Paired => "paired training data",
            Pairing::Unpaired => "**unpaired** training data (each A drawn with the B of another slice, fresh every epoch)",
        },
        partial = if done < planned {
            format!(
                "**Partial: {done} of {planned} runs have finished;** rerun the command to \
                 train the rest.\n\n"
            )
        } else {
            String::new()
        },
        claims = match cfg.pairing {
            Pairing::Paired => check_claims(rows),
            Pairing::Unpaired => check_unpaired_claims(rows),
        }
            .iter()
            .map(|c| format!("{c}\n"))
            .collect::<String>(),
    );
    let sds: Vec<f64> = rows.iter().filter_map(SweepRow::seed_std).collect();
    if let Some(max) = sds.iter().copied().reduce(f64::max) {
        md += &format!(
            "\n## Seed noise\n\n\
             Across seeds, one run's mean PSNR has a sample std of up to {max:.2} dB \
             (median {:.2} dB over {} cells). So two single runs can differ by about \
             1.4 times that (the std of a difference) from the seed alone, and a \
             difference between single-run cells smaller than about twice the median \
             may not be resolved by one seed.\n",
            percentile(&sds.iter().map(|&v| v as f32).collect::<Vec<_>>(), &[50.0])
                .map_or(f64::NAN, |p| p[0]),
            sds.len()
        );
    }
    if !registration.is_empty() {
        let (section, csv) = registration_section(registration);
        md += &section;
        medtrans_io::write_file_atomic(&dir.join("registration.csv"), csv.as_bytes())?;
    }
    medtrans_io::write_file_atomic(&dir.join("results.md"), md.as_bytes())?;
    Ok(())
}
