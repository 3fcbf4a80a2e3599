//! The HTML of a run's report and of a comparison of runs.
use crate::plot::{css_colour, figure, smooth, thin, Line, Plot, Style};
use crate::run::RunData;
use anyhow::Result;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// At most this many raw points per loss curve.
const MAX_RAW_POINTS: usize = 1500;

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;margin:1.5em auto;max-width:1500px;padding:0 1em;color:#222}\
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}\
.status{color:#444}.grid{display:flex;flex-wrap:wrap;gap:.5em}figure{margin:0}figure.plot figcaption{font-size:.9em;text-align:center}\
.marker{color:#777}table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:right}\
th{background:#f4f4f4}pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.85em}img.samples{max-width:100%;image-rendering:pixelated}\
nav a{margin-right:1em}.legend span{display:inline-block;margin-right:1.2em}.swatch{display:inline-block;width:1.5em;height:.25em;vertical-align:middle;margin-right:.3em}\
.note{color:#666;font-size:.9em}#slider{display:none}";

fn head(title: &str, refresh: bool) -> String {
    // While a run trains, the page reloads itself every minute; a finished
    // run's page stays still.
    let refresh = if refresh {
        "<meta http-equiv=\"refresh\" content=\"60\">"
    } else {
        ""
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<link rel=\"icon\" href=\"data:,\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(title)
    )
}

fn fmt_duration(s: f64) -> String {
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The one-line status: mode, steps, speed, ETA, device.
fn status_line(run: &RunData) -> String {
    let mode = run
        .progress
        .as_ref()
        .map(|p| p.mode.clone())
        .or_else(|| run.config_value("mode"))
        .unwrap_or_else(|| "?".into());
    let mut parts = vec![format!("mode <b>{}</b>", esc(&mode))];
    match &run.progress {
        Some(p) => {
            let state = if p.finished { "finished" } else { "training" };
            parts.push(format!(
                "step {} of {} (epoch {} of {}, {state})",
                p.step, p.total_steps, p.epoch, p.epochs
            ));
            if p.seconds_per_step > 0.0 {
                parts.push(format!(
                    "{:.2} steps/s ({:.3} s/step)",
                    1.0 / p.seconds_per_step,
                    p.seconds_per_step
                ));
            }
            if let Some(eta) = p.eta_seconds() {
                parts.push(format!("ETA {}", fmt_duration(eta)));
            }
            parts.push(format!("device {}", esc(&p.device)));
        }
        None => {
            if let Some(t) = &run.losses {
                if let Some(last) = t.rows.last() {
                    parts.push(format!("{} steps logged", last[0]));
                }
            }
            parts.push("no progress.json (a run from before reports)".into());
        }
    }
    parts.join(" &middot; ")
}

/// The loss terms' columns of losses.csv (all but step, epoch and the
/// learning rates).
fn loss_columns(run: &RunData) -> Vec<(usize, String)> {
    run.losses
        .as_ref()
        .map(|t| {
            t.columns
                .iter()
                .enumerate()
                .filter(|(_, c)| !matches!(c.as_str(), "step" | "epoch") && !c.starts_with("lr"))
                .map(|(i, c)| (i, c.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn loss_plots(run: &RunData) -> Result<String> {
    let Some(t) = &run.losses else {
        return Ok("<p class=\"note\">No losses.csv yet.</p>".into());
    };
    let Some(step) = t.col("step") else {
        return Ok("<p class=\"note\">losses.csv has no step column.</p>".into());
    };
    let mut html = String::from(
        "<p class=\"note\">Pale: the logged values (every k-th step for long runs); solid: their trailing moving average.</p><div class=\"grid\">",
    );
    for (k, (col, name)) in loss_columns(run).into_iter().enumerate() {
        let pts = t.points(step, col);
        let plot = Plot {
            id: format!("loss-{name}"),
            title: name.clone(),
            x_label: "step".into(),
            y_label: "loss".into(),
            lines: vec![
                Line {
                    key: format!("raw:{name}"),
                    points: thin(&pts, MAX_RAW_POINTS),
                    colour: k,
                    style: Style::Raw,
                },
                Line {
                    key: format!("smoothed:{name}"),
                    points: thin(&smooth(&pts), MAX_RAW_POINTS),
                    colour: k,
                    style: Style::Smoothed,
                },
            ],
            marker: None,
        };
        if let Some(f) = figure(&plot)? {
            html.push_str(&f);
        }
    }
    html.push_str("</div>");
    Ok(html)
}

fn lr_plot(run: &RunData) -> Result<String> {
    let Some(t) = &run.losses else {
        return Ok(String::new());
    };
    let Some(step) = t.col("step") else {
        return Ok(String::new());
    };
    let lines: Vec<Line> = t
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.starts_with("lr"))
        .enumerate()
        .map(|(k, (i, c))| Line {
            key: format!("raw:{c}"),
            points: thin(&t.points(step, i), MAX_RAW_POINTS),
            colour: k,
            style: Style::Smoothed,
        })
        .collect();
    let plot = Plot {
        id: "lr".into(),
        title: "learning rate (G's optimiser; the others follow the same schedule)".into(),
        x_label: "step".into(),
        y_label: "lr".into(),
        lines,
        marker: None,
    };
    Ok(figure(&plot)?.unwrap_or_default())
}

fn validation_section(run: &RunData) -> Result<String> {
    let Some(v) = &run.validation else {
        return Ok(
            "<p class=\"note\">No validation.csv: the dataset has no validation split.</p>".into(),
        );
    };
    let Some(epoch) = v.col("epoch") else {
        return Ok(String::new());
    };
    let best = run.best_epoch();
    let mut html = String::new();
    if let Some((_, e)) = best {
        let _ = write!(
            html,
            "<p>Best epoch: <b>{e}</b> (lowest validation NMAE: the checkpoint kept in <code>checkpoints/best</code>), marked by the grey line.</p>"
        );
    }
    html.push_str("<div class=\"grid\">");
    let metrics: Vec<(usize, String)> = v
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| !matches!(c.as_str(), "epoch" | "step"))
        .map(|(i, c)| (i, c.clone()))
        .collect();
    for (k, (col, name)) in metrics.iter().enumerate() {
        let plot = Plot {
            id: format!("val-{name}"),
            title: format!("validation {}", name.to_uppercase()),
            x_label: "epoch".into(),
            y_label: name.to_uppercase(),
            lines: vec![Line {
                key: format!("points:{name}"),
                points: v.points(epoch, *col),
                colour: k,
                style: Style::Points,
            }],
            marker: best.map(|(_, e)| (e, format!("(best epoch {e})"))),
        };
        if let Some(f) = figure(&plot)? {
            html.push_str(&f);
        }
    }
    html.push_str("</div>");
    // The numbers themselves, for reading without the plots.
    html.push_str("<details><summary>Table</summary><table><tr>");
    for c in &v.columns {
        let _ = write!(html, "<th>{}</th>", esc(c));
    }
    html.push_str("</tr>");
    for (i, r) in v.rows.iter().enumerate() {
        let cls = if best.is_some_and(|(b, _)| b == i) {
            " style=\"font-weight:bold\""
        } else {
            ""
        };
        let _ = write!(html, "<tr{cls}>");
        for x in r {
            let _ = write!(html, "<td>{}</td>", fmt_cell(*x));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table></details>");
    Ok(html)
}

fn fmt_cell(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e9 {
        format!("{x:.0}")
    } else {
        format!("{x:.4}")
    }
}

fn predictor_section(run: &RunData) -> Result<String> {
    let Some(p) = &run.predictor else {
        return Ok(String::new());
    };
    let (Some(epoch), Some(name)) = (p.col("epoch"), p.columns.last().cloned()) else {
        return Ok(String::new());
    };
    let col = p.columns.len() - 1;
    let plot = Plot {
        id: "predictor".into(),
        title: format!("predictor validation {name}"),
        x_label: "epoch".into(),
        y_label: name.clone(),
        lines: vec![Line {
            key: format!("points:{name}"),
            points: p.points(epoch, col),
            colour: 0,
            style: Style::Points,
        }],
        marker: None,
    };
    Ok(format!(
        "<section id=\"predictor\"><h2>Predictor</h2>{}</section>",
        figure(&plot)?.unwrap_or_default()
    ))
}

fn samples_section(run: &RunData) -> String {
    let Some(last) = run.samples.last() else {
        return "<section id=\"samples\"><h2>Samples</h2><p class=\"note\">No sample grids yet (one is written at each epoch's end).</p></section>".into();
    };
    let columns = if run.has_registration() {
        "x (input) | G(x) | G(x) warped by R's field | y (target) | |G(x) &minus; y| | |field| (R's displacement magnitude, stretched to its maximum)"
    } else {
        "x (input) | G(x) | y (target) | |G(x) &minus; y|"
    };
    let mut html = format!(
        "<section id=\"samples\"><h2>Samples</h2><p>Columns: {columns}. One row per validation slice.</p>\
<div id=\"slider\"><input type=\"range\" id=\"epoch-range\" min=\"0\" max=\"{max}\" value=\"{max}\"> <span id=\"epoch-label\">epoch {e}</span></div>\
<img class=\"samples\" id=\"sample-view\" src=\"{src}\"{size} alt=\"sample grid, epoch {e}\">",
        size = display_width(last.width),
        max = run.samples.len() - 1,
        e = last.epoch,
        src = esc(&url(&last.file)),
    );
    if run.has_registration() {
        html.push_str("<p class=\"note\">R's columns: the warped output is what the correction loss compares with y; the field magnitude shows where R moves pixels (bright: far). A field that follows anatomy rather than the misalignment means R is bending the image, not registering it.</p>");
        html.push_str(&field_section(run, last));
    }
    let _ = write!(
        html,
        "<details><summary>All {} epochs</summary>",
        run.samples.len()
    );
    for s in &run.samples {
        let _ = write!(
            html,
            "<figure><figcaption>epoch {}</figcaption><img class=\"samples\" src=\"{}\"{} alt=\"sample grid, epoch {}\"></figure>",
            s.epoch,
            esc(&url(&s.file)),
            display_width(s.width),
            s.epoch
        );
    }
    html.push_str("</details>");
    // The slider is an addition for browsers with JavaScript; the list
    // above shows every grid without it.
    let list: Vec<String> = run
        .samples
        .iter()
        .map(|s| format!("[{},\"{}\"]", s.epoch, url(&s.file).replace('"', "%22")))
        .collect();
    let _ = write!(
        html,
        "<script>(function(){{var s=[{}];var r=document.getElementById('epoch-range');var v=document.getElementById('sample-view');\
var l=document.getElementById('epoch-label');document.getElementById('slider').style.display='block';\
r.addEventListener('input',function(){{var e=s[r.value];v.src=e[1];v.alt='sample grid, epoch '+e[0];l.textContent='epoch '+e[0];}});}})();</script></section>",
        list.join(",")
    );
    html
}

/// R's field of the latest grid's first row as arrows.
fn field_section(run: &RunData, last: &crate::Sample) -> String {
    let Some(rel) = &last.field else {
        return String::new();
    };
    let drawn = medtrans_io::read_npy(&run.dir.join(rel))
        .map_err(anyhow::Error::from)
        .and_then(|a| match a.shape[..] {
            [2, h, w] => {
                let (rows, cols) = a.data.split_at(h * w);
                crate::plot::field_figure(
                    rows,
                    cols,
                    h,
                    w,
                    &format!(
                        "R's displacement field, first sample row, epoch {}",
                        last.epoch
                    ),
                )
            }
            _ => anyhow::bail!("{}: not a 2 x H x W field", rel.display()),
        });
    match drawn {
        Ok(fig) => fig,
        Err(e) => format!(
            "<p class=\"note\">R's field could not be drawn: {}</p>",
            esc(&format!("{e:#}"))
        ),
    }
}

/// Small grids (32-64 px slices) shown enlarged, at most 1200 px wide.
fn display_width(w: Option<u32>) -> String {
    w.map(|w| format!(" width=\"{}\"", (w * 4).min(1200).max(w)))
        .unwrap_or_default()
}

/// A path as a relative URL (forward slashes, spaces and # escaped).
fn url(p: &Path) -> String {
    p.components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .replace('%', "%25")
                .replace(' ', "%20")
                .replace('#', "%23")
                .replace('?', "%3F")
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn evaluations_section(run: &RunData) -> String {
    if run.evaluations.is_empty() && run.links.is_empty() {
        return "<section id=\"evaluations\"><h2>Evaluations and experiments</h2><p class=\"note\">None yet: <code>medtrans evaluate --model RUN --data DATASET</code> writes its tables into the run folder, and they appear here.</p></section>".into();
    }
    let mut html = String::from("<section id=\"evaluations\"><h2>Evaluations and experiments</h2>");
    for e in &run.evaluations {
        let rel = e.dir.strip_prefix(&run.dir).unwrap_or(&e.dir);
        let _ = write!(
            html,
            "<h3>{t}</h3><p><a href=\"{d}/summary.md\">summary.md</a> &middot; <a href=\"{d}/scores.csv\">scores.csv</a></p><pre>{s}</pre>",
            t = esc(&e.title),
            d = esc(&url(rel)),
            s = esc(&e.summary)
        );
    }
    if !run.links.is_empty() {
        html.push_str("<ul>");
        for l in &run.links {
            let target = if l.target.is_absolute() {
                relative(&run.dir, &l.target)
            } else {
                l.target.clone()
            };
            let _ = write!(
                html,
                "<li><a href=\"{}\">{}</a></li>",
                esc(&url(&target)),
                esc(&l.title)
            );
        }
        html.push_str("</ul>");
    }
    html.push_str("</section>");
    html
}

/// `target` relative to folder `base` where they share an ancestor, else
/// `target` as it is (both made absolute first).
pub fn relative(base: &Path, target: &Path) -> PathBuf {
    let b = base.canonicalize().unwrap_or_else(|_| base.to_path_buf());
    let t = target
        .canonicalize()
        .unwrap_or_else(|_| target.to_path_buf());
    medtrans_io::relative_path(&b, &t).unwrap_or(t)
}

fn dataset_section(run: &RunData) -> String {
    let mut html = String::from("<section id=\"dataset\"><h2>Dataset</h2>");
    match &run.manifest {
        Some((path, m)) => {
            let _ = write!(
                html,
                "<p><code>{}</code>: {} px slices along axis {}, {} subject(s), mask: {}.</p><table><tr><th>split</th><th>slices</th></tr>",
                esc(&path.display().to_string()),
                m.size,
                m.axis,
                m.subjects.len(),
                if m.has_mask { "yes" } else { "no" }
            );
            for (split, refs) in &m.splits {
                let _ = write!(
                    html,
                    "<tr><td>{}</td><td>{}</td></tr>",
                    esc(split),
                    refs.len()
                );
            }
            html.push_str("</table>");
            let _ = write!(
                html,
                "<p class=\"note\">Normalisation: A {}, B {}. Split: {}.</p>",
                esc(&format!("{:?}", m.normalization_a)),
                esc(&format!("{:?}", m.normalization_b)),
                esc(&format!("{:?}", m.split.method))
            );
            if m.subjects.len() > 1 {
                let names: Vec<String> = m
                    .subjects
                    .iter()
                    .map(|s| format!("{} ({})", s.name, s.split.as_deref().unwrap_or("slab")))
                    .collect();
                let _ = write!(
                    html,
                    "<p class=\"note\">Subjects: {}.</p>",
                    esc(&names.join(", "))
                );
            }
        }
        None => {
            let _ = write!(
                html,
                "<p class=\"note\">{}</p>",
                esc(run.manifest_note.as_deref().unwrap_or("no manifest"))
            );
        }
    }
    html.push_str("</section>");
    html
}

fn config_section(run: &RunData) -> String {
    match &run.config_text {
        Some(t) => format!(
            "<section id=\"config\"><h2>Config</h2><p class=\"note\">config.toml: rerun with <code>medtrans train --config config.toml</code>.</p><pre>{}</pre></section>",
            esc(t)
        ),
        None => "<section id=\"config\"><h2>Config</h2><p class=\"note\">No config.toml.</p></section>".into(),
    }
}

/// A run's own page.
pub fn run_page(run: &RunData) -> Result<String> {
    let training = run.progress.as_ref().is_some_and(|p| !p.finished);
    let mut html = head(&format!("medtrans run {}", run.name), training);
    let _ = write!(
        html,
        "<h1>Run {}</h1><p class=\"status\">{}</p>\
<nav><a href=\"#losses\">Losses</a><a href=\"#validation\">Validation</a><a href=\"#lr\">Learning rate</a><a href=\"#samples\">Samples</a><a href=\"#evaluations\">Evaluations</a><a href=\"#dataset\">Dataset</a><a href=\"#config\">Config</a></nav>",
        esc(&run.name),
        status_line(run)
    );
    let _ = write!(
        html,
        "<section id=\"losses\"><h2>Losses</h2>{}</section>",
        loss_plots(run)?
    );
    let _ = write!(
        html,
        "<section id=\"validation\"><h2>Validation</h2>{}</section>",
        validation_section(run)?
    );
    let _ = write!(
        html,
        "<section id=\"lr\"><h2>Learning rate</h2>{}</section>",
        lr_plot(run)?
    );
    html.push_str(&predictor_section(run)?);
    html.push_str(&samples_section(run));
    html.push_str(&evaluations_section(run));
    html.push_str(&dataset_section(run));
    html.push_str(&config_section(run));
    let _ = writeln!(
        html,
        "<p class=\"note\">Written by medtrans {} from the files in this folder; rebuilt at each validation, or by <code>medtrans report {}</code>.</p></body></html>",
        env!("CARGO_PKG_VERSION"),
        esc(&run.dir.display().to_string())
    );
    Ok(html)
}

/// Several runs on one page: each loss term and validation metric with one
/// smoothed line per run.
pub fn comparison_page(runs: &[RunData], base: &Path) -> Result<String> {
    let mut html = head("medtrans: runs compared", false);
    html.push_str("<h1>Runs compared</h1><p class=\"legend\">");
    for (k, r) in runs.iter().enumerate() {
        let report = relative(base, &r.dir.join(crate::REPORT_FILE));
        let _ = write!(
            html,
            "<span><span class=\"swatch\" style=\"background:{}\"></span><a href=\"{}\">{}</a> ({})</span>",
            css_colour(k),
            esc(&url(&report)),
            esc(&run_label(runs, k)),
            status_line(r)
        );
    }
    html.push_str("</p><section id=\"validation\"><h2>Validation</h2><div class=\"grid\">");
    let mut metrics: Vec<String> = Vec::new();
    for r in runs {
        if let Some(v) = &r.validation {
            for c in &v.columns {
                if !matches!(c.as_str(), "epoch" | "step") && !metrics.contains(c) {
                    metrics.push(c.clone());
                }
            }
        }
    }
    for m in &metrics {
        let lines = runs
            .iter()
            .enumerate()
            .filter_map(|(k, r)| {
                let v = r.validation.as_ref()?;
                Some(Line {
                    key: format!("points:{}", run_label(runs, k)),
                    points: v.points(v.col("epoch")?, v.col(m)?),
                    colour: k,
                    style: Style::Points,
                })
            })
            .collect();
        let plot = Plot {
            id: format!("val-{m}"),
            title: format!("validation {}", m.to_uppercase()),
            x_label: "epoch".into(),
            y_label: m.to_uppercase(),
            lines,
            marker: None,
        };
        if let Some(f) = figure(&plot)? {
            html.push_str(&f);
        }
    }
    html.push_str("</div></section><section id=\"losses\"><h2>Losses (moving averages)</h2><div class=\"grid\">");
    let mut terms: Vec<String> = Vec::new();
    for r in runs {
        for (_, c) in loss_columns(r) {
            if !terms.contains(&c) {
                terms.push(c);
            }
        }
    }
    for t in &terms {
        let lines = runs
            .iter()
            .enumerate()
            .filter_map(|(k, r)| {
                let l = r.losses.as_ref()?;
                let pts = l.points(l.col("step")?, l.col(t)?);
                Some(Line {
                    key: format!("smoothed:{}", run_label(runs, k)),
                    points: thin(&smooth(&pts), MAX_RAW_POINTS),
                    colour: k,
                    style: Style::Smoothed,
                })
            })
            .collect();
        let plot = Plot {
            id: format!("loss-{t}"),
            title: t.clone(),
            x_label: "step".into(),
            y_label: "loss".into(),
            lines,
            marker: None,
        };
        if let Some(f) = figure(&plot)? {
            html.push_str(&f);
        }
    }
    html.push_str("</div></section></body></html>\n");
    Ok(html)
}

/// A run's name on a comparison page, its folder's path where two runs
/// share a name.
fn run_label(runs: &[RunData], k: usize) -> String {
    let name = &runs[k].name;
    if runs.iter().filter(|r| &r.name == name).count() > 1 {
        runs[k].dir.display().to_string()
    } else {
        name.clone()
    }
}
