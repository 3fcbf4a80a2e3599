//! Figures for experiment reports: line plots and labelled image grids.
//!
//! Drawn with plotters into an RGB buffer and saved with `image`. The font
//! ships in `assets/fonts` (DejaVu Sans, its licence beside it), so no
//! system fontconfig is needed and figures look the same everywhere.
use anyhow::{bail, Context, Result};
use medtrans_io::Slice;
use medtrans_report::plot::{colour, draw_err, register_font as font};
use plotters::prelude::*;
use std::path::Path;

/// One line of a plot.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One set of axes.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

fn save_rgb(path: &Path, w: u32, h: u32, buf: Vec<u8>) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).context("figure buffer has the wrong size")?;
    Ok(medtrans_io::write_png_atomic(path, &img.into())?)
}

/// Panels side by side, `cols` per row, 480x360 px each.
pub fn line_panels(path: &Path, panels: &[Panel], cols: usize) -> Result<()> {
    font()?;
    let cols = cols.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(cols).max(1);
    let (w, h) = (480 * cols as u32, 360 * rows as u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        for (area, panel) in root.split_evenly((rows, cols)).iter().zip(panels) {
            draw_panel(area, panel)?;
        }
        root.present().map_err(draw_err)?;
    }
    save_rgb(path, w, h, buf)
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let pad = if hi > lo {
        (hi - lo) * 0.06
    } else {
        lo.abs().max(1.0) * 0.05
    };
    (lo - pad, hi + pad)
}

fn draw_panel(area: &DrawingArea<BitMapBackend, plotters::coord::Shift>, p: &Panel) -> Result<()> {
    let pts = || {
        p.series
            .iter()
            .flat_map(|s| &s.points)
            .filter(|q| q.1.is_finite())
    };
    let (x0, x1) = pts().fold((f64::MAX, f64::MIN), |(a, b), q| (a.min(q.0), b.max(q.0)));
    let (y0, y1) = pts().fold((f64::MAX, f64::MIN), |(a, b), q| (a.min(q.1), b.max(q.1)));
    if x0 > x1 {
        // Nothing to draw: leave a titled, empty panel.
        area.titled(&p.title, ("sans-serif", 18))
            .map_err(draw_err)?;
        return Ok(());
    }
    // Noise levels and epochs: label whole numbers only.
    let whole = pts().all(|q| q.0.fract() == 0.0);
    let x_labels = if whole {
        ((x1 - x0) as usize + 1).min(12)
    } else {
        8
    };
    let (x0, x1) = padded(x0, x1);
    let (y0, y1) = padded(y0, y1);
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_labels(x_labels)
        .x_label_formatter(&|v| {
            if whole {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })
        .x_desc(&p.x_label)
        .y_desc(&p.y_label)
        .label_style(("sans-serif", 13))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(draw_err)?;
    for (k, s) in p.series.iter().enumerate() {
        let c = colour(k);
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|q| q.1.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(draw_err)?
            .label(&s.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        if pts.len() <= 12 {
            chart
                .draw_series(pts.iter().map(|&q| Circle::new(q, 3, c.filled())))
                .map_err(draw_err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(draw_err)?;
    Ok(())
}

/// One bar of a bar chart: a mean with a +- std whisker.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub mean: f64,
    pub std: f64,
}

/// Bars (mean +- std) with their labels under them, 120 px per bar.
pub fn bar_chart(path: &Path, title: &str, y_label: &str, bars: &[Bar]) -> Result<()> {
    font()?;
    if bars.is_empty() {
        bail!("{}: a bar chart needs at least one bar", path.display());
    }
    let (w, h) = ((160 + 120 * bars.len()) as u32, 420u32);
    let top = bars
        .iter()
        .map(|b| b.mean + b.std)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let n = bars.len();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..(top * 1.1).max(1e-9))
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|v| {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                    bars[i as usize].label.clone()
                } else {
                    String::new()
                }
            })
            .y_desc(y_label)
            .label_style(("sans-serif", 13))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(draw_err)?;
        for (i, b) in bars.iter().enumerate() {
            let x = i as f64;
            let c = colour(i);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.35, 0.0), (x + 0.35, b.mean)],
                    c.filled(),
                )))
                .map_err(draw_err)?;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, b.mean - b.std), (x, b.mean + b.std)],
                    BLACK.stroke_width(2),
                )))
                .map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    save_rgb(path, w, h, buf)
}

/// One image of a grid: grey values mapped from [lo, hi], with optional
/// polylines (x, y in pixels) drawn on top, e.g. a deformed sampling grid.
#[derive(Debug, Clone)]
pub struct Tile {
    pub image: Slice,
    pub lo: f32,
    pub hi: f32,
    pub lines: Vec<Vec<(f32, f32)>>,
}

impl Tile {
    pub fn gray(image: Slice, lo: f32, hi: f32) -> Self {
        Tile {
            image,
            lo,
            hi,
            lines: Vec::new(),
        }
    }
}

/// Images in rows and columns, each magnified `scale` times, with column
/// titles on top and row titles on the left.
pub fn image_grid(
    path: &Path,
    col_titles: &[String],
    row_titles: &[String],
    rows: &[Vec<Tile>],
    scale: u32,
) -> Result<()> {
    font()?;
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let largest = |side: fn(&Slice) -> usize| {
        rows.iter()
            .flatten()
            .map(|t| side(&t.image))
            .max()
            .unwrap_or(0) as u32
            * scale
    };
    let (tw, th) = (largest(|s| s.width), largest(|s| s.height));
    if cols == 0 || tw == 0 {
        bail!("{}: an image grid needs at least one image", path.display());
    }
    let (gap, top, left) = (6u32, 30u32, if row_titles.is_empty() { 6 } else { 110 });
    let w = left + cols * (tw + gap);
    let h = top + rows.len() as u32 * (th + gap);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let origin = |r: usize, c: usize| (left + c as u32 * (tw + gap), top + r as u32 * (th + gap));
    // Pixels straight into the buffer: far quicker than per-pixel drawing.
    for (r, row) in rows.iter().enumerate() {
        for (c, t) in row.iter().enumerate() {
            let (ox, oy) = origin(r, c);
            let span = if t.hi > t.lo { t.hi - t.lo } else { 1.0 };
            for y in 0..t.image.height as u32 * scale {
                for x in 0..t.image.width as u32 * scale {
                    let v =
                        t.image.data[(y / scale) as usize * t.image.width + (x / scale) as usize];
                    let g = ((v - t.lo) / span * 255.0).round().clamp(0.0, 255.0) as u8;
                    let i = (((oy + y) * w + ox + x) * 3) as usize;
                    buf[i..i + 3].fill(g);
                }
            }
        }
    }
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let text = ("sans-serif", 15).into_font().color(&BLACK);
        for (c, title) in col_titles.iter().enumerate().take(cols as usize) {
            let (ox, _) = origin(0, c);
            root.draw_text(title, &text, (ox as i32 + 2, 8))
                .map_err(draw_err)?;
        }
        for (r, title) in row_titles.iter().enumerate().take(rows.len()) {
            let (_, oy) = origin(r, 0);
            root.draw_text(title, &text, (4, (oy + th / 2) as i32 - 8))
                .map_err(draw_err)?;
        }
        let line = RGBColor(255, 200, 0).stroke_width(1);
        for (r, row) in rows.iter().enumerate() {
            for (c, t) in row.iter().enumerate() {
                let (ox, oy) = origin(r, c);
                let (mw, mh) = (
                    ox + t.image.width as u32 * scale,
                    oy + t.image.height as u32 * scale,
                );
                for poly in &t.lines {
                    let pts: Vec<(i32, i32)> = poly
                        .iter()
                        .map(|&(x, y)| {
                            let px = (ox as f32 + (x + 0.5) * scale as f32)
                                .clamp(ox as f32, mw as f32 - 1.0);
                            let py = (oy as f32 + (y + 0.5) * scale as f32)
                                .clamp(oy as f32, mh as f32 - 1.0);
                            (px.round() as i32, py.round() as i32)
                        })
                        .collect();
                    root.draw(&PathElement::new(pts, line)).map_err(draw_err)?;
                }
            }
        }
        root.present().map_err(draw_err)?;
    }
    save_rgb(path, w, h, buf)
}

/// Test positions shown in example panels: three spread over the split.
pub fn example_positions(n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = [1, 3, 5].iter().map(|k| k * n / 6).collect();
    p.dedup();
    p
}
