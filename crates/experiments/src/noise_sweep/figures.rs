//! The noise sweep's figures: metrics against noise (Table 2 as lines),
//! validation curves and R's smoothness loss per epoch (Fig. 4), example
//! outputs with error maps (Figs. 1-2) and R's fields on misaligned pairs
//! (Fig. 5).
use super::{SweepConfig, SweepRow};
use crate::plot::{example_positions, image_grid, line_panels, Panel, Series, Tile};
use anyhow::{bail, Context, Result};
use medtrans_datasets::{PairOptions, Pairing, SliceDataset};
use medtrans_io::Slice;
use medtrans_metrics::Metric;
use std::collections::BTreeMap;
use std::path::Path;

/// A CSV of numbers with a header, as the trainer writes them.
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

impl Table {
    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut lines = text.lines();
        let columns: Vec<String> = lines
            .next()
            .with_context(|| format!("{}: empty file", path.display()))?
            .split(',')
            .map(str::to_string)
            .collect();
        let mut rows = Vec::new();
        for (k, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let row: Vec<f64> = line
                .split(',')
                .map(|v| v.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .with_context(|| format!("{}: line {} is not numbers", path.display(), k + 2))?;
            if row.len() != columns.len() {
                bail!(
                    "{}: line {} has {} fields",
                    path.display(),
                    k + 2,
                    row.len()
                );
            }
            rows.push(row);
        }
        Ok(Table { columns, rows })
    }

    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        let i = self.columns.iter().position(|c| c == name)?;
        Some(self.rows.iter().map(|r| r[i]).collect())
    }
}

/// The noise levels at which `mode` has a finished run.
pub(crate) fn levels_of(cells: &[(String, u32)], mode: &str) -> Vec<u32> {
    cells.iter().filter(|c| c.0 == mode).map(|c| c.1).collect()
}

/// Means of `name` per epoch (x = epoch number from 1).
fn epoch_means(t: &Table, name: &str) -> Option<Vec<(f64, f64)>> {
    let (epochs, values) = (t.column("epoch")?, t.column(name)?);
    let mut sums: BTreeMap<i64, (f64, usize)> = BTreeMap::new();
    for (e, v) in epochs.iter().zip(values) {
        let s = sums.entry(*e as i64).or_default();
        s.0 += v;
        s.1 += 1;
    }
    Some(
        sums.into_iter()
            .map(|(e, (s, n))| (e as f64 + 1.0, s / n as f64))
            .collect(),
    )
}

/// NMAE, PSNR and SSIM against noise level, one line per mode.
pub fn metrics_vs_noise(path: &Path, modes: &[String], rows: &[SweepRow]) -> Result<()> {
    let metric = |title: &str, unit: &str, f: fn(&SweepRow) -> f64| Panel {
        title: title.into(),
        x_label: "noise level".into(),
        y_label: unit.into(),
        series: modes
            .iter()
            .map(|m| Series {
                label: m.clone(),
                points: rows
                    .iter()
                    .filter(|r| &r.mode == m)
                    .map(|r| (r.noise_level as f64, f(r)))
                    .collect(),
            })
            .collect(),
    };
    line_panels(
        path,
        &[
            metric("NMAE (lower is better)", "NMAE", |r| {
                r.scores.mean(Metric::NMAE)
            }),
            metric("PSNR (higher is better)", "dB", |r| {
                r.scores.mean(Metric::PSNR)
            }),
            metric("SSIM (higher is better)", "SSIM", |r| {
                r.scores.mean(Metric::SSIM)
            }),
        ],
        3,
    )
}

/// Validation NMAE and PSNR per epoch: one panel per mode and metric, a
/// line per noise level (paper Fig. 4a/b).
pub fn validation_curves(path: &Path, cfg: &SweepConfig, cells: &[(String, u32)]) -> Result<()> {
    let mut panels = Vec::new();
    for (metric, unit) in [("nmae", "val NMAE"), ("psnr", "val PSNR (dB)")] {
        for mode in &cfg.modes {
            let mut series = Vec::new();
            for level in levels_of(cells, mode) {
                let t = Table::read(&cfg.run_dir(mode, level).join("validation.csv"))?;
                let (Some(e), Some(v)) = (t.column("epoch"), t.column(metric)) else {
                    continue;
                };
                series.push(Series {
                    label: format!("noise {level}"),
                    points: e.into_iter().zip(v).collect(),
                });
            }
            panels.push(Panel {
                title: format!("{mode}: {unit}"),
                x_label: "epoch".into(),
                y_label: unit.into(),
                series,
            });
        }
    }
    line_panels(path, &panels, cfg.modes.len())
}

/// The smoothness term of every mode that has one, mean per epoch, a line
/// per noise level (paper Fig. 4c). Returns false when no mode has R.
pub fn smoothness_curves(path: &Path, cfg: &SweepConfig, cells: &[(String, u32)]) -> Result<bool> {
    let mut panels = Vec::new();
    for mode in &cfg.modes {
        let mut series = Vec::new();
        for level in levels_of(cells, mode) {
            let t = Table::read(&cfg.run_dir(mode, level).join("losses.csv"))?;
            if let Some(points) = epoch_means(&t, "smoothness") {
                series.push(Series {
                    label: format!("noise {level}"),
                    points,
                });
            }
        }
        if !series.is_empty() {
            panels.push(Panel {
                title: format!("{mode}: R's smoothness loss"),
                x_label: "epoch".into(),
                y_label: "weighted smoothness term".into(),
                series,
            });
        }
    }
    if panels.is_empty() {
        return Ok(false);
    }
    line_panels(path, &panels, panels.len())?;
    Ok(true)
}

fn abs_error(a: &Slice, b: &Slice) -> Slice {
    let data = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .collect();
    Slice::new(data, a.width, a.height)
}

/// T1, T2, then each mode's output and |error| on a few test slices at
/// one noise level (paper Figs. 1 and 2). `outputs[mode]` holds the
/// (masked) outputs of the whole test split.
pub fn example_panel(
    path: &Path,
    test: &SliceDataset,
    outputs: &[(String, Vec<Slice>)],
) -> Result<()> {
    let mut cols = vec!["T1 (input)".to_string(), "T2 (truth)".to_string()];
    for (mode, _) in outputs {
        cols.push(mode.clone());
        cols.push("|error|".into());
    }
    let mut rows = Vec::new();
    let mut names = Vec::new();
    for i in example_positions(test.len()) {
        let mut row = vec![
            Tile::gray(test.a[i].clone(), -1.0, 1.0),
            Tile::gray(test.b[i].clone(), -1.0, 1.0),
        ];
        for (_, fakes) in outputs {
            row.push(Tile::gray(fakes[i].clone(), -1.0, 1.0));
            // Errors up to half the intensity range show as white.
            row.push(Tile::gray(abs_error(&fakes[i], &test.b[i]), 0.0, 1.0));
        }
        rows.push(row);
        let slice = test
            .refs
            .as_ref()
            .and_then(|r| r.get(i))
            .map_or(i, |r| r.index);
        names.push(format!("slice {slice}"));
    }
    image_grid(path, &cols, &names, &rows, 3)
}

/// R on misaligned test pairs, a row per noise level: x and y (each moved
/// by the level's noise), G(x), warp(G(x)), the sampling grid of the warp
/// drawn on G(x), and |field| (paper Fig. 5).
pub fn field_panel(
    path: &Path,
    cfg: &SweepConfig,
    mode: &str,
    levels: &[u32],
    test: &SliceDataset,
) -> Result<()> {
    let i = test.len() / 2;
    let mut rows = Vec::new();
    let mut names = Vec::new();
    let mut max_shift = 0f32;
    for &level in levels {
        let trainer = cfg.finished_networks(mode, level)?;
        let opts = PairOptions {
            noise_level: level,
            pairing: Pairing::Paired,
            misalign: None,
            seed: 7,
        };
        let pair = test.pair(i, 0, &opts);
        let fake = trainer.translate(&[&pair.a])?.remove(0);
        let Some((warped, fields)) = trainer.register(std::slice::from_ref(&fake), &[&pair.b])?
        else {
            bail!("{mode} has no registration network");
        };
        let (dy, dx) = (&fields[0], &fields[1]);
        let mag = Slice::new(
            dy.data
                .iter()
                .zip(&dx.data)
                .map(|(a, b)| a.hypot(*b))
                .collect(),
            dy.width,
            dy.height,
        );
        max_shift = mag.data.iter().cloned().fold(max_shift, f32::max);
        let mut grid = Tile::gray(fake.clone(), -1.0, 1.0);
        grid.lines = sampling_grid(dy, dx, 4);
        rows.push(vec![
            Tile::gray(pair.a.clone(), -1.0, 1.0),
            Tile::gray(pair.b.clone(), -1.0, 1.0),
            Tile::gray(fake, -1.0, 1.0),
            Tile::gray(warped[0].clone(), -1.0, 1.0),
            grid,
            Tile::gray(mag, 0.0, 1.0),
        ]);
        names.push(format!("noise {level}"));
    }
    // One grey scale for every |field| so levels compare.
    for row in &mut rows {
        row[5].hi = max_shift.max(1e-3);
    }
    let cols = [
        "x (T1, moved)",
        "y (T2, moved)",
        "G(x)",
        "warp(G(x))",
        "sampling grid",
        &format!("|field| 0..{max_shift:.1} px"),
    ]
    .map(String::from);
    image_grid(path, &cols, &names, &rows, 3)
}

/// Lines of a regular grid every `step` px, moved to where warp samples:
/// output pixel p reads G(x) at p + field(p).
fn sampling_grid(dy: &Slice, dx: &Slice, step: usize) -> Vec<Vec<(f32, f32)>> {
    let (w, h) = (dy.width, dy.height);
    let at = |r: usize, c: usize| {
        let k = r * w + c;
        (c as f32 + dx.data[k], r as f32 + dy.data[k])
    };
    let mut lines = Vec::new();
    for r in (0..h).step_by(step) {
        lines.push((0..w).map(|c| at(r, c)).collect());
    }
    for c in (0..w).step_by(step) {
        lines.push((0..h).map(|r| at(r, c)).collect());
    }
    lines
}
