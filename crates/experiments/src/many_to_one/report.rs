//! The many-to-one experiment's tables and figures: results.csv,
//! per_slice.csv, results.md, the weight plot, the example and tumour panels.
use super::*;

pub(super) fn fmt_w(w: Option<f64>) -> String {
    w.map_or("-".into(), |w| format!("{w}"))
}

pub(super) fn results_csv(rows: &[Row]) -> String {
    let mut out = String::from("method,w_c,runs,slices");
    for m in Eval::METRICS {
        let k = m.key();
        let _ = write!(out, ",{k}_mean,{k}_std");
    }
    out.push('\n');
    for r in rows {
        let _ = write!(
            out,
            "{},{},{},{}",
            r.method,
            fmt_w(r.weight),
            r.runs.len(),
            r.runs.first().map_or(0, |x| x.1.len())
        );
        for (m, s) in r.summary().iter().enumerate() {
            let d = Eval::METRICS[m].csv_decimals();
            let _ = write!(out, ",{:.d$},{:.d$}", s.0, s.1);
        }
        out.push('\n');
    }
    out
}

pub(super) fn per_slice_csv(rows: &[Row], test: &SliceDataset) -> String {
    let mut out = String::from("method,w_c,seed,position,slice");
    for m in Eval::METRICS {
        let _ = write!(out, ",{}", m.key());
    }
    out.push('\n');
    for r in rows {
        for (seed, evals) in &r.runs {
            for (i, e) in evals.iter().enumerate() {
                let slice = test.refs.as_ref().map_or(i, |refs| refs[i].index);
                let _ = write!(out, "{},{},{seed},{i},{slice}", r.method, fmt_w(r.weight));
                for v in e.values() {
                    let _ = write!(out, ",{v:.6}");
                }
                out.push('\n');
            }
        }
    }
    out
}

pub(super) fn cell(m: usize, (mean, std): (f64, f64)) -> String {
    let d = Eval::METRICS[m].table_decimals();
    format!("{mean:.d$} +- {std:.d$}")
}

/// The paired comparison of one w_c: per metric, L_AC's and L_C's means
/// over slices and the Wilcoxon p-value on the per-slice (seed-averaged)
/// values.
pub(super) fn comparisons(rows: &[Row], w: f64) -> Option<Vec<(f64, f64, Option<f64>)>> {
    let find = |l: CycleLoss| {
        rows.iter()
            .find(|r| r.method == l.label() && r.weight == Some(w))
    };
    let (c, ac) = (find(CycleLoss::Symmetric)?, find(CycleLoss::Asymmetric)?);
    // Seeds both have finished: a grid under way must not pair a two-seed
    // mean with a one-seed one.
    let seeds: Vec<u64> = c
        .seeds()
        .into_iter()
        .filter(|s| ac.seeds().contains(s))
        .collect();
    if seeds.is_empty() {
        return None;
    }
    Some(
        (0..5)
            .map(|m| {
                let (a, b) = (c.per_slice(m, &seeds), ac.per_slice(m, &seeds));
                let mean = |v: &[f64]| mean_std(v).map_or(f64::NAN, |x| x.0);
                (
                    mean(&a),
                    mean(&b),
                    wilcoxon_signed_rank(&b, &a).map(|t| t.p_value),
                )
            })
            .collect(),
    )
}

pub(super) fn results_markdown(
    cfg: &ManyToOneConfig,
    rows: &[Row],
    (steps, train, test): (usize, usize, usize),
    (done, planned): (usize, usize),
) -> String {
    let mut md = String::from("# Many-to-one: the asymmetric cycle loss on lesioned brain MR\n\n");
    let config = cfg
        .common
        .source
        .as_ref()
        .map_or("CONFIG".into(), |p| p.display().to_string());
    let _ = writeln!(
        md,
        "Made by `medtrans experiment many-to-one --config {config}` ({done} of {planned} runs \
         finished; {steps} steps each, batch from the config, {train} training slices per domain, \
         {test} test slices, seeds {:?}).\n",
        cfg.seeds
    );
    md += "Domain A: ICBM152 T1 slices with synthetic lesions; domain B: other, healthy \
           T1 slices (unpaired; the two alternate in blocks of 4 slices so both span the \
           same anatomy). G: A -> B is scored on a held-out \
           lesioned slab against its clean slices (inside the brain mask). **Dice** is the \
           paper's segmentation score: the best lower/upper intensity window's Dice against \
           the clean slice's white matter. **lesion MAE**: mean |G(x) - clean| over the lesion \
           pixels (intensities in [-1, 1]). Mean +- std over all test slices of all seeds.\n\n";
    md += "| method | w_c | runs | NMAE | PSNR (dB) | SSIM | Dice | lesion MAE |\n|---|---|---|---|---|---|---|---|\n";
    for r in rows {
        let s = r.summary();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            r.method,
            fmt_w(r.weight),
            r.runs.len(),
            (0..5)
                .map(|m| cell(m, s[m]))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    md += "\n## L_AC against L_C, per w_c (the paper's Table 1 layout)\n\n\
           Per-slice values averaged over seeds; two-sided paired Wilcoxon signed-rank p.\n\n\
           | w_c | metric | L_C | L_AC | Wilcoxon | better |\n|---|---|---|---|---|---|\n";
    let mut verdicts = Vec::new();
    for &w in &cfg.cycle_weights {
        let Some(cmp) = comparisons(rows, w) else {
            continue;
        };
        let mut wins = (0, 0);
        for (m, (c, ac, p)) in cmp.iter().enumerate() {
            let ac_better = Eval::METRICS[m].better(*ac, *c);
            let significant = p.is_some_and(|p| p < 0.05);
            let better = match (significant, ac_better) {
                (false, _) => "neither (p >= 0.05)",
                (true, true) => "L_AC",
                (true, false) => "L_C",
            };
            if significant {
                if ac_better {
                    wins.0 += 1;
                } else {
                    wins.1 += 1;
                }
            }
            let d = Eval::METRICS[m].table_decimals();
            let _ = writeln!(
                md,
                "| {w} | {} | {c:.d$} | {ac:.d$} | {} | {better} |",
                Eval::METRICS[m].label(),
                p.map_or("-".into(), format_p)
            );
        }
        verdicts.push((w, wins));
    }
    md += "\n## Verdict\n\n";
    for (w, (ac, c)) in &verdicts {
        let _ = writeln!(
            md,
            "- w_c = {w}: L_AC is significantly better on {ac} of 5 scores, L_C on {c}."
        );
    }
    // Does any translation beat leaving the lesions in?
    let input = rows[0].summary();
    let scored: Vec<(&Row, [(f64, f64); 5])> =
        rows.iter().skip(2).map(|r| (r, r.summary())).collect();
    let beat: Vec<String> = scored
        .iter()
        .filter(|(_, s)| s[3].0 > input[3].0)
        .map(|(r, s)| format!("{} at w_c {} ({:.4})", r.method, fmt_w(r.weight), s[3].0))
        .collect();
    if let Some((best, s)) = scored.iter().max_by(|a, b| a.1[3].0.total_cmp(&b.1[3].0)) {
        if beat.is_empty() {
            let _ = writeln!(
                md,
                "- No translation beats the lesioned input's Dice ({:.4}; the best is {} at \
                 w_c {}, {:.4}). The best PSNR is {:.2} dB against the input's {:.2} dB. The \
                 L_AC / L_C comparison above is between translators that have not converged.",
                input[3].0,
                best.method,
                fmt_w(best.weight),
                s[3].0,
                scored
                    .iter()
                    .map(|x| x.1[1].0)
                    .fold(f64::NEG_INFINITY, f64::max),
                input[1].0
            );
        } else {
            let _ = writeln!(
                md,
                "- Better Dice than the lesioned input ({:.4}): {}.",
                input[3].0,
                beat.join(", ")
            );
        }
    }
    md += "\nFigures: `metrics_vs_weight.png` (Dice, PSNR and lesion MAE against w_c), \
           `examples.png` (test slices: lesioned input, clean truth, each loss's output, first seed)";
    if !cfg.tumours.is_empty() {
        md += ", `tumours.png` (real post-contrast T1 tumours, mask outlined, translated by \
               the first seed's models at the middle w_c; qualitative: those scans have a skull \
               and another contrast, unlike the training slices)";
    }
    md += ".\n";
    md
}

pub(super) fn weights_plot(path: &Path, cfg: &ManyToOneConfig, rows: &[Row]) -> Result<()> {
    let input = rows[0].summary();
    let (lo, hi) = cfg
        .cycle_weights
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &w| {
            (a.min(w), b.max(w))
        });
    let panel = |m: usize, title: &str| Panel {
        title: title.into(),
        x_label: "w_c".into(),
        y_label: Eval::METRICS[m].label().into(),
        series: CycleLoss::BOTH
            .iter()
            .map(|l| Series {
                label: l.label().into(),
                points: rows
                    .iter()
                    .filter(|r| r.method == l.label())
                    .filter_map(|r| Some((r.weight?, r.summary()[m].0)))
                    .collect(),
            })
            .chain(std::iter::once(Series {
                label: "lesioned input".into(),
                points: vec![(lo, input[m].0), (hi, input[m].0)],
            }))
            .collect(),
    };
    line_panels(
        path,
        &[
            panel(3, "Dice of the best window (higher is better)"),
            panel(1, "PSNR (higher is better)"),
            panel(4, "lesion MAE (lower is better)"),
        ],
        3,
    )
}

/// Lines around the pixels of `mask`, for an outline over an image tile.
pub(super) fn outline(mask: &[bool], w: usize) -> Vec<Vec<(f32, f32)>> {
    let h = mask.len() / w;
    let at = |r: isize, c: isize| {
        r >= 0
            && c >= 0
            && (r as usize) < h
            && (c as usize) < w
            && mask[r as usize * w + c as usize]
    };
    let mut lines = Vec::new();
    for r in 0..h as isize {
        for c in 0..w as isize {
            if !at(r, c) {
                continue;
            }
            let (x, y) = (c as f32, r as f32);
            if !at(r - 1, c) {
                lines.push(vec![(x - 0.5, y - 0.5), (x + 0.5, y - 0.5)]);
            }
            if !at(r + 1, c) {
                lines.push(vec![(x - 0.5, y + 0.5), (x + 0.5, y + 0.5)]);
            }
            if !at(r, c - 1) {
                lines.push(vec![(x - 0.5, y - 0.5), (x - 0.5, y + 0.5)]);
            }
            if !at(r, c + 1) {
                lines.push(vec![(x + 0.5, y - 0.5), (x + 0.5, y + 0.5)]);
            }
        }
    }
    lines
}

pub(super) fn example_panel(
    path: &Path,
    test: &SliceDataset,
    lesion: &[Vec<bool>],
    outputs: &[(String, Vec<Slice>)],
) -> Result<()> {
    let mut cols = vec!["lesioned input".to_string(), "clean truth".into()];
    cols.extend(outputs.iter().map(|o| o.0.clone()));
    let mut rows = Vec::new();
    let mut names = Vec::new();
    for i in crate::plot::example_positions(test.len()) {
        let mut input = Tile::gray(test.a[i].clone(), -1.0, 1.0);
        input.lines = outline(&lesion[i], test.a[i].width);
        let mut row = vec![input, Tile::gray(test.b[i].clone(), -1.0, 1.0)];
        row.extend(
            outputs
                .iter()
                .map(|o| Tile::gray(o.1[i].clone(), -1.0, 1.0)),
        );
        rows.push(row);
        names.push(format!(
            "slice {}",
            test.refs.as_ref().map_or(i, |r| r[i].index)
        ));
    }
    image_grid(path, &cols, &names, &rows, 3)
}

/// Real tumours through the models: per case, the axial slice with the
/// largest tumour area, normalised over the head (voxels above a tenth of
/// the 99th percentile), fitted to the model size.
pub(super) fn tumour_panel(path: &Path, cfg: &ManyToOneConfig) -> Result<()> {
    let w = cfg.cycle_weights[cfg.cycle_weights.len() / 2];
    let seed = cfg.seeds[0];
    let mut models = Vec::new();
    for loss in CycleLoss::BOTH {
        let dir = cfg.run_dir(loss, w, seed);
        if finished_steps(&dir)?.is_some() {
            models.push((
                format!("{} w_c {w}", loss.label()),
                Model::load(&dir, cfg.device())?,
            ));
        }
    }
    if models.is_empty() {
        return Ok(());
    }
    let size = models[0].1.info.size;
    let mut rows = Vec::new();
    let mut names = Vec::new();
    for case in &cfg.tumours {
        let (input, mask) = tumour_slice(case, size, cfg.data.axis)?;
        let mut row = Vec::new();
        let mut tile = Tile::gray(input.clone(), -1.0, 1.0);
        tile.lines = outline(&mask, size);
        row.push(tile);
        for (_, m) in &models {
            let mut out = m.translate_slices(&[&input], 1)?.remove(0);
            let head: Vec<bool> = input.data.iter().map(|&v| v > -1.0).collect();
            mask_to_background(&mut out.data, |k| head[k]);
            let mut tile = Tile::gray(out, -1.0, 1.0);
            tile.lines = outline(&mask, size);
            row.push(tile);
        }
        rows.push(row);
        names.push(case.image.file_name().map_or("case".into(), |n| {
            n.to_string_lossy().replace("_image.nii.gz", "")
        }));
    }
    let mut cols = vec!["tumour MR (mask outlined)".to_string()];
    cols.extend(models.iter().map(|m| m.0.clone()));
    image_grid(path, &cols, &names, &rows, 3)
}

/// Slices are cut along `cfg_axis`, the axis the models were trained on.
pub(super) fn tumour_slice(
    case: &TumourCase,
    size: usize,
    cfg_axis: usize,
) -> Result<(Slice, Vec<bool>)> {
    let read = |p: &Path| {
        read_volume(p, &Default::default()).with_context(|| format!("reading {}", p.display()))
    };
    let (mut vol, label) = (read(&case.image)?, read(&case.label)?);
    if vol.shape() != label.shape() {
        bail!(
            "{}: label shape {:?} differs from the image's {:?}",
            case.label.display(),
            label.shape(),
            vol.shape()
        );
    }
    let axis = cfg_axis;
    let depth = vol.shape()[axis];
    let area = |k: usize| {
        Slice::from_plane(&label, axis, k)
            .data
            .iter()
            .filter(|&&v| v > 0.5)
            .count()
    };
    let best = (0..depth).max_by_key(|&k| area(k)).unwrap_or(0);
    if area(best) == 0 {
        bail!("{}: the label marks no tumour", case.label.display());
    }
    let p99 = percentile(&vol.data, &[99.0]).map_or(0.0, |p| p[0]);
    let head: Vec<bool> = vol.data.iter().map(|&v| (v as f64) > 0.1 * p99).collect();
    medtrans_datasets::normalise(&mut vol, &Normalization::default(), Some(&head))
        .map_err(|e| anyhow::anyhow!("{}: {e}", case.image.display()))?;
    let plane = Slice::from_plane(&vol, axis, best);
    let fit = SquareFit::new(plane.width, plane.height, size);
    let image = fit.forward(&plane, -1.0, Interp::Bilinear);
    let mask = fit.forward(&Slice::from_plane(&label, axis, best), 0.0, Interp::Nearest);
    Ok((image, mask.data.iter().map(|&v| v > 0.5).collect()))
}
