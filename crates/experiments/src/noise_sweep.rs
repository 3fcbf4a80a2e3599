//! The RegGAN paper's noise sweep (Table 2, Fig. 4): every mode at every
//! misalignment level, same data, same budget, scored on a disjoint test
//! slab against the untouched aligned targets.
use anyhow::{bail, Context, Result};
use medtrans_datasets::{prepare, PrepareSpec, SplitSpec, SubjectSpec, MANIFEST_FILE};
use medtrans_metrics::mean_std;
use medtrans_training::checkpoint::last_checkpoint;
use medtrans_training::{Model, TrainConfig, Trainer};
use serde::{Deserialize, Serialize};
use std::io::Write;
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
        let cfg: SweepConfig = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))?;
        if cfg.modes.is_empty() || cfg.noise_levels.is_empty() {
            bail!(
                "{}: modes and noise_levels must not be empty",
                path.display()
            );
        }
        Ok(cfg)
    }

    fn run_dir(&self, mode: &str, level: u32) -> PathBuf {
        self.runs.join(format!("{mode}-noise{level}"))
    }

    fn dataset(&self) -> PathBuf {
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
    let cells: Vec<(String, u32)> = cfg
        .modes
        .iter()
        .flat_map(|m| cfg.noise_levels.iter().map(move |&l| (m.clone(), l)))
        .collect();
    // Check every config before the first hour of training.
    let configs: Vec<TrainConfig> = cells
        .iter()
        .map(|(m, l)| cfg.train_config(m, *l))
        .collect::<Result<_>>()?;
    let mut spent = 0.0;
    let mut steps_done = 0usize;
    for (k, ((mode, level), tc)) in cells.iter().zip(&configs).enumerate() {
        let dir = cfg.run_dir(mode, *level);
        // A run with a checkpoint continues (or turns out finished).
        let mut trainer = if last_checkpoint(&dir).is_ok() {
            Trainer::resume(&dir, &[])?
        } else {
            Trainer::new(tc.clone())?
        };
        let total = trainer.total_steps();
        if trainer.step >= total {
            report(&format!(
                "[{}/{}] {mode} noise {level}: finished earlier, skipped",
                k + 1,
                cells.len()
            ));
            continue;
        }
        let left_runs = cells.len() - k;
        let eta = if steps_done > 0 {
            format!(
                ", sweep ETA ~{:.0} min",
                spent / steps_done as f64 * (total * left_runs) as f64 / 60.0
            )
        } else {
            String::new()
        };
        report(&format!(
            "[{}/{}] {mode} noise {level}: steps {}..{total}{eta}",
            k + 1,
            cells.len(),
            trainer.step
        ));
        let start = Instant::now();
        let first = trainer.step;
        trainer.run(true)?;
        spent += start.elapsed().as_secs_f64();
        steps_done += trainer.step - first;
    }
    let test = medtrans_datasets::SliceDataset::open(&cfg.dataset(), "test")?;
    let mut rows = Vec::new();
    for (mode, level) in &cells {
        let model = Model::load(&cfg.run_dir(mode, *level), "cpu")?;
        let scores = model.evaluate(&test, 16)?;
        let stat = |f: fn(&medtrans_training::SliceScore) -> f64| {
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
    }
    write_results(&cfg.results, &rows)?;
    Ok(rows)
}

fn write_results(dir: &Path, rows: &[SweepRow]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut csv = std::fs::File::create(dir.join("results.csv"))?;
    writeln!(
        csv,
        "mode,noise_level,slices,nmae_mean,nmae_std,psnr_mean,psnr_std,ssim_mean,ssim_std"
    )?;
    let mut md = String::from(
        "| mode | noise | slices | NMAE | PSNR (dB) | SSIM |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        writeln!(
            csv,
            "{},{},{},{:.6},{:.6},{:.4},{:.4},{:.6},{:.6}",
            r.mode,
            r.noise_level,
            r.slices,
            r.nmae.0,
            r.nmae.1,
            r.psnr.0,
            r.psnr.1,
            r.ssim.0,
            r.ssim.1
        )?;
        md += &format!(
            "| {} | {} | {} | {:.4} +- {:.4} | {:.2} +- {:.2} | {:.4} +- {:.4} |\n",
            r.mode,
            r.noise_level,
            r.slices,
            r.nmae.0,
            r.nmae.1,
            r.psnr.0,
            r.psnr.1,
            r.ssim.0,
            r.ssim.1
        );
    }
    std::fs::write(dir.join("results.md"), md)?;
    Ok(())
}
