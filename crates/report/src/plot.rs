//! Line plots as inline SVG, drawn with plotters' SVG backend.
//!
//! Each figure carries its axis ranges and the pixel box they map to as
//! `data-` attributes, and the order of its polylines in `data-series`, so
//! that a reader (the browser test) can turn every drawn point back into
//! the number it stands for and check it against the CSV.
use anyhow::{anyhow, bail, Result};
use plotters::prelude::*;
use std::sync::OnceLock;

const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// Register the shipped font (DejaVu Sans, assets/fonts) under plotters'
/// "sans-serif" family, once; plotters measures text with it, so figures
/// need no system fontconfig and look the same everywhere.
pub fn register_font() -> Result<()> {
    static OK: OnceLock<bool> = OnceLock::new();
    let ok = *OK.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if !ok {
        bail!("the shipped font assets/fonts/DejaVuSans.ttf could not be read");
    }
    Ok(())
}

/// plotters' errors borrow backend types that anyhow cannot hold.
pub fn draw_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("drawing a figure: {e}")
}

/// A fixed, colour-blind-friendly order (Okabe-Ito).
const COLOURS: [(u8, u8, u8); 7] = [
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (230, 159, 0),
    (86, 180, 233),
    (0, 0, 0),
];

pub fn colour(k: usize) -> RGBColor {
    let (r, g, b) = COLOURS[k % COLOURS.len()];
    RGBColor(r, g, b)
}

pub fn css_colour(k: usize) -> String {
    let (r, g, b) = COLOURS[k % COLOURS.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Thin and pale: every logged value (or every k-th, for long runs).
    Raw,
    /// A moving average over the raw values.
    Smoothed,
    /// Solid, with a dot at each point: few points (one per epoch).
    Points,
}

/// One line of a plot.
#[derive(Debug, Clone)]
pub struct Line {
    /// Names the line in `data-series` (`raw:g_adv`, `smoothed:g_adv`).
    pub key: String,
    pub points: Vec<(f64, f64)>,
    pub colour: usize,
    pub style: Style,
}

/// One set of axes.
#[derive(Debug, Clone)]
pub struct Plot {
    pub id: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub lines: Vec<Line>,
    /// A vertical marker (the best epoch) at this x, with its label.
    pub marker: Option<(f64, String)>,
}

/// Pixel size of a figure.
pub const WIDTH: u32 = 460;
pub const HEIGHT: u32 = 260;

/// The figure as an HTML `<figure>` holding the inline SVG; `None` when no
/// line has a point.
pub fn figure(plot: &Plot) -> Result<Option<String>> {
    let all: Vec<(f64, f64)> = plot
        .lines
        .iter()
        .flat_map(|l| l.points.iter().copied())
        .collect();
    if all.is_empty() {
        return Ok(None);
    }
    register_font()?;
    let (x0, x1) = padded(all.iter().map(|p| p.0), 0.02);
    let (y0, y1) = padded(all.iter().map(|p| p.1), 0.05);
    let mut svg = String::new();
    let mut keys = Vec::new();
    let (px, py);
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(34)
            .y_label_area_size(58)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_desc(plot.x_label.as_str())
            .y_desc(plot.y_label.as_str())
            .label_style(("sans-serif", 12))
            .light_line_style(RGBColor(235, 235, 235))
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|v| tick(*v, x1 - x0))
            .y_label_formatter(&|v| tick(*v, y1 - y0))
            .draw()
            .map_err(draw_err)?;
        (px, py) = chart.plotting_area().get_pixel_range();
        for l in &plot.lines {
            let c = colour(l.colour);
            let style = match l.style {
                Style::Raw => c.mix(0.3).stroke_width(1),
                Style::Smoothed | Style::Points => c.stroke_width(2),
            };
            chart
                .draw_series(LineSeries::new(l.points.iter().copied(), style))
                .map_err(draw_err)?;
            keys.push(l.key.clone());
            if l.style == Style::Points {
                chart
                    .draw_series(l.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                    .map_err(draw_err)?;
            }
        }
        if let Some((x, _)) = &plot.marker {
            chart
                .draw_series(LineSeries::new(
                    [(*x, y0), (*x, y1)],
                    RGBColor(120, 120, 120).stroke_width(1),
                ))
                .map_err(draw_err)?;
            keys.push("marker".into());
        }
        root.present().map_err(draw_err)?;
    }
    let marker = plot
        .marker
        .as_ref()
        .map(|(_, label)| format!(" <span class=\"marker\">{}</span>", crate::page::esc(label)))
        .unwrap_or_default();
    Ok(Some(format!(
        "<figure class=\"plot\" id=\"plot-{id}\" data-x0=\"{x0}\" data-x1=\"{x1}\" data-y0=\"{y0}\" data-y1=\"{y1}\" \
data-px0=\"{px0}\" data-px1=\"{px1}\" data-py0=\"{py0}\" data-py1=\"{py1}\" data-series=\"{series}\">\n{svg}\n\
<figcaption>{title}{marker}</figcaption></figure>",
        id = crate::page::esc(&plot.id),
        // plotters maps the range onto the box's first and last pixel (its
        // ranges are half-open), y0 to the bottom and y1 to the top.
        px0 = px.start,
        px1 = px.end - 1,
        py0 = py.end - 1,
        py1 = py.start,
        series = crate::page::esc(&keys.join("|")),
        title = crate::page::esc(&plot.title),
    )))
}

/// The range of `values`, widened by `pad` of its span on each side so
/// that no point sits on the frame; a constant gets a span of its own size.
fn padded(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi - lo <= 1e-9 * lo.abs().max(hi.abs()) {
        let half = if lo == 0.0 { 0.5 } else { 0.5 * lo.abs() };
        return (lo - half, hi + half);
    }
    let m = pad * (hi - lo);
    (lo - m, hi + m)
}

/// An axis label: whole numbers as such (steps, epochs), small values
/// (learning rates) in scientific notation, the rest to 4 significant
/// digits.
fn tick(v: f64, span: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if span >= 5.0 && v.fract() == 0.0 {
        return format!("{v:.0}");
    }
    if v.abs() < 1e-3 || v.abs() >= 1e5 {
        return format!("{v:.2e}");
    }
    let digits = (4 - 1 - v.abs().log10().floor() as i32).clamp(0, 8) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A trailing moving average: the mean of the last `window` values at each
/// point. GAN losses jump from step to step; a window of about a fortieth
/// of the run shows the trend while keeping its turns.
pub fn smooth(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let window = (points.len() / 40).clamp(1, 500);
    let mut out = Vec::with_capacity(points.len());
    let mut sum = 0.0;
    for (i, &(x, y)) in points.iter().enumerate() {
        sum += y;
        if i >= window {
            sum -= points[i - window].1;
        }
        out.push((x, sum / (i + 1).min(window) as f64));
    }
    out
}

/// At most `max` points: every k-th, always keeping the last. Long runs log
/// a loss per step; the page stays small and each kept point is exact.
pub fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max {
        return points.to_vec();
    }
    let k = points.len().div_ceil(max);
    let mut out: Vec<(f64, f64)> = points.iter().step_by(k).copied().collect();
    if out.last() != points.last() {
        out.push(*points.last().expect("non-empty"));
    }
    out
}

/// R's displacement field as arrows: one every `step` pixels, drawn at
/// `scale` times their length, y down as in the image. `rows` and `cols`
/// hold the field's row and column displacement in pixels, `h` x `w`.
pub fn field_figure(
    rows: &[f32],
    cols: &[f32],
    h: usize,
    w: usize,
    caption: &str,
) -> Result<String> {
    register_font()?;
    let step = (h.max(w) / 16).max(1);
    let max = rows
        .iter()
        .zip(cols)
        .map(|(a, b)| a.hypot(*b))
        .fold(0.0f32, f32::max) as f64;
    // The longest arrow spans about one grid step.
    let scale = if max > 0.0 { step as f64 / max } else { 1.0 };
    let size = 360u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (size, size)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(6)
            .build_cartesian_2d(-0.5..w as f64 - 0.5, h as f64 - 0.5..-0.5)
            .map_err(draw_err)?;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(-0.5, -0.5), (w as f64 - 0.5, h as f64 - 0.5)],
                RGBColor(90, 90, 90).stroke_width(1),
            )))
            .map_err(draw_err)?;
        let c = colour(0);
        for y in (step / 2..h).step_by(step) {
            for x in (step / 2..w).step_by(step) {
                let (dy, dx) = (
                    rows[y * w + x] as f64 * scale,
                    cols[y * w + x] as f64 * scale,
                );
                let (x0, y0, x1, y1) = (x as f64, y as f64, x as f64 + dx, y as f64 + dy);
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x0, y0), (x1, y1)],
                        c.stroke_width(1),
                    )))
                    .map_err(draw_err)?;
                chart
                    .draw_series(std::iter::once(Circle::new((x1, y1), 1, c.filled())))
                    .map_err(draw_err)?;
            }
        }
        root.present().map_err(draw_err)?;
    }
    Ok(format!(
        "<figure class=\"field\">{svg}<figcaption>{} (longest arrow {max:.2} px, drawn {scale:.1}x)</figcaption></figure>",
        crate::page::esc(caption)
    ))
}
