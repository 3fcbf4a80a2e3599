//! The RegGAN paper's noise sweep (Table 2, Fig. 4): every mode at every
//! misalignment level, same data, same budget, scored on a disjoint test
//! slab against the untouched aligned targets.
use crate::figures;
use anyhow::{bail, Context, Result};
use medtrans_datasets::{
    prepare, PrepareSpec, SliceDataset, SplitSpec, SubjectSpec, MANIFEST_FILE,
};
use medtrans_io::Slice;
use medtrans_metrics::mean_std;
use medtrans_training::checkpoint::last_checkpoint;
use medtrans_training::{score_slices, Model, SliceScore, TrainConfig, Trainer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Folder of the run folders (and the prepared dataset).
    pub runs: PathBuf,
    /// Folder for results.csv and results.md.
    pub results: PathBuf,
    #[serde(default = "default_modes")]
    pub modes: Vec<String>,
    #[serde(default = "default_levels")]
    pub noise_levels: Vec<u32>,
    pub data: SweepData,
    /// `key=value` overrides applied to every run (the shared budget).
    #[serde(default)]
    pub set: Vec<String>,
    /// The file this config was read from, for the report's command line.
    #[serde(skip)]
    pub source: Option<PathBuf>,
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

impl SweepConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the sweep config {}", path.display()))?;
        let mut cfg: SweepConfig = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))?;
        cfg.source = Some(path.to_path_buf());
        if cfg.modes.is_empty() || cfg.noise_levels.is_empty() {
            bail!(
                "{}: modes and noise_levels must not be empty",
                path.display()
            );
        }
        Ok(cfg)
    }

    pub fn run_dir(&self, mode: &str, level: u32) -> PathBuf {
        self.runs.join(format!("{mode}-noise{level}"))
    }

    /// Every (mode, noise level) pair, modes outermost.
    pub fn cells(&self) -> Vec<(String, u32)> {
        self.modes
            .iter()
            .flat_map(|m| self.noise_levels.iter().map(move |&l| (m.clone(), l)))
            .collect()
    }

    pub fn dataset(&self) -> PathBuf {
        self.runs.join("dataset")
    }

    /// The training config of one run.
    fn train_config(&self, mode: &str, level: u32) -> Result<TrainConfig> {
        let mut set = self.set.clone();
        set.push(format!(
            "data.path={:?}",
            self.dataset().display().to_string()
        ));
        set.push(format!(
            "out={:?}",
            self.run_dir(mode, level).display().to_string()
        ));
        set.push(format!("data.noise_level={level}"));
        TrainConfig::preset(mode, &set).with_context(|| format!("run {mode} at noise {level}"))
    }
}

/// Scores of one (mode, noise level) cell: mean and std over test slices.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    pub mode: String,
    pub noise_level: u32,
    pub slices: usize,
    pub nmae: (f64, f64),
    pub psnr: (f64, f64),
    pub ssim: (f64, f64),
}

/// Prepare once, then train (or resume, or skip) every run and score each
/// on the test split. `report` receives progress lines.
pub fn run_noise_sweep(cfg: &SweepConfig, report: &mut dyn FnMut(&str)) -> Result<Vec<SweepRow>> {
    std::fs::create_dir_all(&cfg.runs)
        .with_context(|| format!("creating {}", cfg.runs.display()))?;
    if !cfg.dataset().join(MANIFEST_FILE).is_file() {
        report(&format!(
            "preparing {} -> {} at {} px",
            cfg.data.a.display(),
            cfg.data.b.display(),
            cfg.data.size
        ));
        let mut spec = PrepareSpec::new(
            vec![SubjectSpec {
                a: cfg.data.a.clone(),
                b: cfg.data.b.clone(),
                mask: cfg.data.mask.clone(),
            }],
            cfg.dataset(),
        );
        spec.size = cfg.data.size;
        spec.axis = cfg.data.axis;
        spec.min_foreground = 0.1;
        spec.split = SplitSpec::default();
        prepare(&spec, &mut |_, _, _| {})?;
    }
    let cells = cfg.cells();
    // Check every config before the first hour of training.
    let configs: Vec<TrainConfig> = cells
        .iter()
        .map(|(m, l)| cfg.train_config(m, *l))
        .collect::<Result<_>>()?;
    // Seconds per step of each mode, measured as the sweep goes: modes
    // differ several-fold (CycleGAN trains four networks), so one rate
    // for all would mislead.
    let mut rates: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for (k, ((mode, level), tc)) in cells.iter().zip(&configs).enumerate() {
        let dir = cfg.run_dir(mode, *level);
        // A run with a checkpoint continues (or turns out finished).
        let mut trainer = if last_checkpoint(&dir).is_ok() {
            Trainer::resume(&dir, &[])?
        } else {
            Trainer::new(tc.clone())?
        };
        let total = trainer.total_steps();
        let tag = format!("[{}/{}] {mode} noise {level}", k + 1, cells.len());
        if trainer.step >= total {
            report(&format!("{tag}: finished earlier, skipped"));
            continue;
        }
        let (mut eta, mut untimed) = (0.0, Vec::new());
        for (j, (m, _)) in cells.iter().enumerate().skip(k) {
            let steps = if j == k { total - trainer.step } else { total };
            match rates.get(m.as_str()) {
                Some((s, n)) => eta += s / *n as f64 * steps as f64,
                None if !untimed.contains(m) => untimed.push(m.clone()),
                None => {}
            }
        }
        let eta = match (rates.is_empty(), untimed.is_empty()) {
            (true, _) => String::new(),
            (false, true) => format!(", sweep ETA ~{:.0} min", eta / 60.0),
            (false, false) => format!(
                ", sweep ETA ~{:.0} min plus the {} runs (not timed yet)",
                eta / 60.0,
                untimed.join(", ")
            ),
        };
        report(&format!("{tag}: steps {}..{total}{eta}", trainer.step));
        let start = Instant::now();
        let first = trainer.step;
        trainer.run(true)?;
        let r = rates.entry(mode.as_str()).or_default();
        r.0 += start.elapsed().as_secs_f64();
        r.1 += trainer.step - first;
    }
    report_noise_sweep(cfg, report)
}

/// Score the finished runs and draw the figures, without training: the
/// table and figures of a sweep still under way cover the runs done so far.
pub fn report_noise_sweep(
    cfg: &SweepConfig,
    report: &mut dyn FnMut(&str),
) -> Result<Vec<SweepRow>> {
    let all = cfg.cells();
    let mut cells = Vec::new();
    for (mode, level) in &all {
        let dir = cfg.run_dir(mode, *level);
        if last_checkpoint(&dir).is_ok() {
            let t = Trainer::resume(&dir, &[])?;
            if t.step >= t.total_steps() {
                cells.push((mode.clone(), *level));
            }
        }
    }
    if cells.is_empty() {
        bail!("no finished runs in {} yet", cfg.runs.display());
    }
    report(&format!(
        "scoring the last checkpoints of {} of {} runs on the test slab",
        cells.len(),
        all.len()
    ));
    let test = SliceDataset::open(&cfg.dataset(), "test")?;
    // Outputs kept for the example panels: the lowest and highest levels.
    let lo = *cfg.noise_levels.iter().min().unwrap_or(&0);
    let hi = *cfg.noise_levels.iter().max().unwrap_or(&0);
    let mut examples: BTreeMap<u32, Vec<(String, Vec<Slice>)>> = BTreeMap::new();
    let mut rows = Vec::new();
    for (mode, level) in &cells {
        // The fixed budget's end, not the best validation epoch: choosing
        // epochs on aligned validation data would be help a user with
        // misaligned data does not have.
        let model = Model::load(&cfg.run_dir(mode, *level).join("checkpoints/last"), "cpu")?;
        let fakes = model.translate_split(&test, 16)?;
        let scores = score_slices(&test, &fakes);
        let stat = |f: fn(&SliceScore) -> f64| {
            mean_std(&scores.iter().map(f).collect::<Vec<_>>()).unwrap_or((f64::NAN, f64::NAN))
        };
        rows.push(SweepRow {
            mode: mode.clone(),
            noise_level: *level,
            slices: scores.len(),
            nmae: stat(|s| s.nmae),
            psnr: stat(|s| s.psnr),
            ssim: stat(|s| s.ssim),
        });
        if *level == lo || *level == hi {
            examples
                .entry(*level)
                .or_default()
                .push((mode.clone(), fakes));
        }
    }
    let (m0, l0) = &cells[0];
    let t = Trainer::resume(&cfg.run_dir(m0, *l0), &[])?;
    let scale = (
        t.total_steps(),
        SliceDataset::open(&cfg.dataset(), "train")?.len(),
    );
    write_results(cfg, &rows, scale, all.len())?;
    report("drawing the figures");
    let dir = &cfg.results;
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
        let levels: Vec<u32> = cells.iter().filter(|c| &c.0 == mode).map(|c| c.1).collect();
        if !levels.is_empty() && cfg.train_config(mode, lo)?.uses_registration() {
            let path = dir.join(format!("fields_{mode}.png"));
            figures::field_panel(&path, cfg, mode, &levels, &test)?;
            break;
        }
    }
    Ok(rows)
}

fn write_results(
    cfg: &SweepConfig,
    rows: &[SweepRow],
    (steps, train): (usize, usize),
    planned: usize,
) -> Result<()> {
    let dir = &cfg.results;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut csv = String::from(
        "mode,noise_level,slices,nmae_mean,nmae_std,psnr_mean,psnr_std,ssim_mean,ssim_std\n",
    );
    let mut table = String::from(
        "| mode | noise | slices | NMAE | PSNR (dB) | SSIM |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let (m, l, n) = (&r.mode, r.noise_level, r.slices);
        let ((a, b), (c, d), (e, f)) = (r.nmae, r.psnr, r.ssim);
        csv += &format!("{m},{l},{n},{a:.6},{b:.6},{c:.4},{d:.4},{e:.6},{f:.6}\n");
        table += &format!(
            "| {m} | {l} | {n} | {a:.4} +- {b:.4} | {c:.2} +- {d:.2} | {e:.4} +- {f:.4} |\n"
        );
    }
    std::fs::write(dir.join("results.csv"), csv)?;
    let config = cfg
        .source
        .as_ref()
        .map_or("CONFIG".into(), |p| p.display().to_string());
    let md = format!(
        "# Noise sweep: results\n\n\
         Made by `medtrans experiment noise-sweep --config {config}` (run from the \
         repository root; finished runs are reused, so rerunning redraws this page).\n\n\
         Scale: {size} px slices along axis {axis}; {train} training slices; \
         {steps} steps per run, batch 1; shared overrides: `{set}`. \
         Each cell is its run's last checkpoint, scored on the test slab against \
         the aligned targets (mean +- std over slices).\n\n{partial}{table}\n\
         ## The paper's claims, checked automatically\n\n{claims}",
        size = cfg.data.size,
        axis = cfg.data.axis,
        set = cfg.set.join(" "),
        partial = if rows.len() < planned {
            format!(
                "**Partial: {} of {planned} runs have finished;** rerun the command to \
                 train the rest.\n\n",
                rows.len()
            )
        } else {
            String::new()
        },
        claims = check_claims(rows)
            .iter()
            .map(|c| format!("{c}\n"))
            .collect::<String>(),
    );
    std::fs::write(dir.join("results.md"), md)?;
    Ok(())
}

/// The RegGAN paper's four claims against this sweep's means. A claim
/// whose modes or levels were not run says so.
pub fn check_claims(rows: &[SweepRow]) -> Vec<String> {
    let get = |m: &str, l: u32| rows.iter().find(|r| r.mode == m && r.noise_level == l);
    let verdict = |ok: bool| if ok { "**holds**" } else { "**fails**" };
    // In level order, whatever order the config listed them in.
    let levels = |m: &str| -> Vec<&SweepRow> {
        let mut v: Vec<&SweepRow> = rows.iter().filter(|r| r.mode == m).collect();
        v.sort_by_key(|r| r.noise_level);
        v
    };
    let mut out = Vec::new();
    match (get("reggan", 5), get("pix2pix", 0)) {
        (Some(r), Some(p)) => out.push(format!(
            "1. RegGAN at noise 5 >= Pix2Pix at noise 0: {} (PSNR {:.2} vs {:.2} dB, NMAE {:.4} vs {:.4}).",
            verdict(r.psnr.0 >= p.psnr.0 && r.nmae.0 <= p.nmae.0),
            r.psnr.0,
            p.psnr.0,
            r.nmae.0,
            p.nmae.0
        )),
        _ => out.push("1. RegGAN at noise 5 vs Pix2Pix at noise 0: not run.".into()),
    }
    let p = levels("pix2pix");
    match (p.first(), p.last()) {
        (Some(a), Some(b)) if a.noise_level < b.noise_level => out.push(format!(
            "2. Pix2Pix degrades as noise grows (paper: about -10 dB from 0 to 5): {} \
             (PSNR {:.2} dB at noise {} -> {:.2} dB at noise {}, {:+.2} dB; NMAE {:.4} -> {:.4}).",
            verdict(b.psnr.0 < a.psnr.0 - 1.0),
            a.psnr.0,
            a.noise_level,
            b.psnr.0,
            b.noise_level,
            b.psnr.0 - a.psnr.0,
            a.nmae.0,
            b.nmae.0
        )),
        _ => out.push("2. Pix2Pix across noise levels: not run.".into()),
    }
    let r = levels("reggan");
    if r.len() >= 2 {
        let (lo, hi) = r.iter().fold((f64::MAX, f64::MIN), |(a, b), x| {
            (a.min(x.psnr.0), b.max(x.psnr.0))
        });
        out.push(format!(
            "3. RegGAN stays flat across levels (here: mean PSNR within 1 dB): {} \
             (PSNR from {lo:.2} to {hi:.2} dB, a spread of {:.2} dB).",
            verdict(hi - lo <= 1.0),
            hi - lo
        ));
    } else {
        out.push("3. RegGAN across noise levels: not run.".into());
    }
    let pairs: Vec<(&SweepRow, &SweepRow)> = r
        .iter()
        .filter_map(|x| get("cycle", x.noise_level).map(|c| (*x, c)))
        .collect();
    if pairs.is_empty() {
        out.push("4. RegGAN vs CycleGAN (C): not run.".into());
    } else {
        let lost: Vec<String> = pairs
            .iter()
            .filter(|(x, c)| !(x.psnr.0 > c.psnr.0 && x.nmae.0 < c.nmae.0))
            .map(|(x, c)| {
                format!(
                    "noise {}: PSNR {:.2} vs {:.2}, NMAE {:.4} vs {:.4}",
                    x.noise_level, x.psnr.0, c.psnr.0, x.nmae.0, c.nmae.0
                )
            })
            .collect();
        let margins: Vec<String> = pairs
            .iter()
            .map(|(x, c)| format!("{:+.2}", x.psnr.0 - c.psnr.0))
            .collect();
        out.push(format!(
            "4. RegGAN beats CycleGAN (C) at every level (lower NMAE and higher PSNR): {} \
             (PSNR margin per level: {} dB{}).",
            verdict(lost.is_empty()),
            margins.join(", "),
            if lost.is_empty() {
                String::new()
            } else {
                format!("; not better at {}", lost.join("; "))
            }
        ));
    }
    out
}
