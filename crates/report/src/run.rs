//! What a run folder holds, read back from the files the trainer writes:
//! `losses.csv`, `validation.csv`, `predictor_validation.csv`,
//! `samples/epoch_NNN.png`, `progress.json`, `config.toml`, the dataset's
//! manifest, evaluations and links other commands left there.
use crate::{Link, Progress, LINKS_FILE, PROGRESS_FILE};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// A CSV of numbers with a header row.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

impl Table {
    /// Parse `path`; `Ok(None)` when it does not exist. A cell that is not a
    /// number is read as NaN (and so left out of the curves).
    pub fn read(path: &Path) -> Result<Option<Table>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let Some(header) = lines.next() else {
            return Ok(None);
        };
        let columns: Vec<String> = header.split(',').map(|s| s.trim().to_string()).collect();
        let rows = lines
            .map(|l| {
                l.split(',')
                    .map(|c| c.trim().parse::<f64>().unwrap_or(f64::NAN))
                    .collect::<Vec<f64>>()
            })
            // A row cut short by a kill mid-write is not a row.
            .filter(|r| r.len() == columns.len())
            .collect();
        Ok(Some(Table { columns, rows }))
    }

    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// (x, y) of two columns, rows where either is not finite left out.
    pub fn points(&self, x: usize, y: usize) -> Vec<(f64, f64)> {
        self.rows
            .iter()
            .map(|r| (r[x], r[y]))
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .collect()
    }
}

/// One per-epoch sample grid.
#[derive(Debug, Clone)]
pub struct Sample {
    pub epoch: usize,
    /// Relative to the run folder.
    pub file: PathBuf,
    /// Pixel width, from the PNG header.
    pub width: Option<u32>,
    /// R's field of the grid's first row (`epoch_NNN_field.npy`), when the
    /// run trains R.
    pub field: Option<PathBuf>,
}

/// A PNG's width from its IHDR chunk (bytes 16-19, big-endian).
fn png_width(path: &Path) -> Option<u32> {
    use std::io::Read;
    let mut head = [0u8; 24];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    (&head[..8] == b"\x89PNG\r\n\x1a\n")
        .then(|| u32::from_be_bytes([head[16], head[17], head[18], head[19]]))
}

/// An evaluation's summary, found in the run folder or linked to it.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub title: String,
    /// The summary's folder.
    pub dir: PathBuf,
    pub summary: String,
}

/// Everything the report shows about one run.
#[derive(Debug, Clone)]
pub struct RunData {
    pub dir: PathBuf,
    pub name: String,
    pub config_text: Option<String>,
    pub config: Option<toml::Table>,
    pub losses: Option<Table>,
    pub validation: Option<Table>,
    pub predictor: Option<Table>,
    pub samples: Vec<Sample>,
    pub progress: Option<Progress>,
    pub manifest: Option<(PathBuf, medtrans_datasets::Manifest)>,
    /// Why the manifest could not be shown, when it could not.
    pub manifest_note: Option<String>,
    pub evaluations: Vec<Evaluation>,
    pub links: Vec<Link>,
}

impl RunData {
    /// Read a run folder; fails only when `dir` is not a run folder at all.
    pub fn read(dir: &Path) -> Result<RunData> {
        let looks_like_run = ["config.toml", "losses.csv", "checkpoints"]
            .iter()
            .any(|f| dir.join(f).exists());
        if !looks_like_run {
            anyhow::bail!(
                "{} is not a run folder (no config.toml, losses.csv or checkpoints/): give the folder `medtrans train` wrote (its `out`)",
                dir.display()
            );
        }
        // A folder named just "run" (the demo's) is named with its parent.
        let abs = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let last = |p: &Path| p.file_name().map(|n| n.to_string_lossy().to_string());
        let name = match (last(&abs), abs.parent().and_then(last)) {
            (Some(n), Some(parent)) if n == "run" => format!("{parent}/{n}"),
            (Some(n), _) => n,
            (None, _) => dir.display().to_string(),
        };
        let config_text = std::fs::read_to_string(dir.join("config.toml")).ok();
        let config = config_text
            .as_deref()
            .and_then(|t| t.parse::<toml::Table>().ok());
        let progress = std::fs::read_to_string(dir.join(PROGRESS_FILE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let links = std::fs::read_to_string(dir.join(LINKS_FILE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let (manifest, manifest_note) = read_manifest(dir, config.as_ref());
        Ok(RunData {
            dir: dir.to_path_buf(),
            name,
            config_text,
            losses: Table::read(&dir.join("losses.csv"))?,
            validation: Table::read(&dir.join("validation.csv"))?,
            predictor: Table::read(&dir.join("predictor_validation.csv"))?,
            samples: samples(dir),
            progress,
            manifest,
            manifest_note,
            evaluations: evaluations(dir),
            links,
            config,
        })
    }

    /// A config value by dotted key (`"train.epochs"`), as text.
    pub fn config_value(&self, key: &str) -> Option<String> {
        let mut parts = key.split('.');
        let mut v = self.config.as_ref()?.get(parts.next()?)?;
        for p in parts {
            v = v.as_table()?.get(p)?;
        }
        Some(match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// The epoch with the lowest validation NMAE, as the trainer picks its
    /// best checkpoint: (row index, epoch).
    pub fn best_epoch(&self) -> Option<(usize, f64)> {
        let v = self.validation.as_ref()?;
        let (e, n) = (v.col("epoch")?, v.col("nmae")?);
        v.rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r[n].is_finite())
            .min_by(|a, b| a.1[n].total_cmp(&b.1[n]))
            .map(|(i, r)| (i, r[e]))
    }

    /// Whether the run trains R (its samples then show the warped output
    /// and the field).
    pub fn has_registration(&self) -> bool {
        self.losses.as_ref().is_some_and(|t| {
            t.columns
                .iter()
                .any(|c| c == "correction" || c == "smoothness")
        })
    }
}

fn samples(dir: &Path) -> Vec<Sample> {
    let mut out: Vec<Sample> = std::fs::read_dir(dir.join("samples"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    let epoch = name
                        .strip_prefix("epoch_")?
                        .strip_suffix(".png")?
                        .parse()
                        .ok()?;
                    let field =
                        PathBuf::from("samples").join(format!("epoch_{epoch:03}_field.npy"));
                    Some(Sample {
                        epoch,
                        field: dir.join(&field).is_file().then_some(field),
                        width: png_width(&e.path()),
                        file: PathBuf::from("samples").join(name),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|s| s.epoch);
    out
}

/// `evaluation-*/summary.md` folders inside the run (where `evaluate`
/// writes by default).
fn evaluations(dir: &Path) -> Vec<Evaluation> {
    let mut out: Vec<Evaluation> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.is_dir()
                        && p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("evaluation"))
                })
                .filter_map(|p| {
                    let summary = std::fs::read_to_string(p.join("summary.md")).ok()?;
                    Some(Evaluation {
                        title: p.file_name()?.to_string_lossy().to_string(),
                        dir: p,
                        summary,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.title.cmp(&b.title));
    out
}

/// The dataset's manifest through the config's `data.path` (as written, or
/// relative to the run folder).
fn read_manifest(
    dir: &Path,
    config: Option<&toml::Table>,
) -> (
    Option<(PathBuf, medtrans_datasets::Manifest)>,
    Option<String>,
) {
    let Some(path) = config
        .and_then(|c| c.get("data"))
        .and_then(|d| d.get("path"))
        .and_then(|p| p.as_str())
    else {
        return (None, Some("the config names no data.path".into()));
    };
    let candidates = [PathBuf::from(path), dir.join(path)];
    for c in &candidates {
        let m = c.join(medtrans_datasets::MANIFEST_FILE);
        if m.is_file() {
            return match medtrans_datasets::Manifest::load(&m) {
                Ok(man) => (Some((c.clone(), man)), None),
                Err(e) => (None, Some(format!("{e}"))),
            };
        }
    }
    (
        None,
        Some(format!(
            "no {} found at {path} (a RegGAN-style folder, or moved since training)",
            medtrans_datasets::MANIFEST_FILE
        )),
    )
}
