//! The augmentation experiment's report: results.csv, per_split.csv,
//! results.md, the MSE bars and the example panel.
use super::*;

pub(super) fn write_report(
    cfg: &AugmentConfig,
    r: &AugmentResults,
    test: &SliceDataset,
    cyclegan: Option<&Model>,
) -> Result<()> {
    let out = &cfg.common.results;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let tables = mse_tables(&r.mse, Setting::MixGuided(cfg.guidance[0]));
    let (csv, per_split, bars) = (tables.csv, tables.per_split, tables.bars);
    let mut md = tables.md;
    if let Some((m, sd)) = test
        .slice_labels_b
        .as_ref()
        .and_then(|t| mean_std(&t.iter().map(|&v| v as f64).collect::<Vec<_>>()))
    {
        let _ = writeln!(
            md,
            "\nTest labels: {} slices, lateral-ventricle area {m:.0} +- {sd:.0} mm²; guessing their mean for every slice would score an MSE of {:.0} (mm²)².",
            test.len(),
            sd * sd
        );
    }
    let mut quality = String::from(
        "\nTranslation quality on the test slices (G(T1) against the real T2, masked):\n\n| translator | slices | NMAE | PSNR (dB) | SSIM |\n|---|---|---|---|---|\n",
    );
    for (name, s) in &r.quality {
        let cells: Vec<String> = Metric::ALL.iter().map(|&m| s.cell(m)).collect();
        let _ = writeln!(quality, "| {name} | {} | {} |", s.slices, cells.join(" | "));
    }
    md += &quality;
    write_file_atomic(&out.join("results.csv"), csv.as_bytes())?;
    write_file_atomic(&out.join("per_split.csv"), per_split.as_bytes())?;
    write_file_atomic(&out.join("results.md"), md.as_bytes())?;
    if !bars.is_empty() {
        bar_chart(
            &out.join("mse.png"),
            "Ventricle area on test T2: MSE over splits",
            "test MSE ((mm²)²)",
            &bars,
        )?;
    }
    // Source, CycleGAN and guided translations of three test slices with
    // ventricles, and the real T2.
    let guided = cfg.guided_dir(cfg.guidance[cfg.guidance.len() - 1], 0);
    if let (Some(cyc), Some(_)) = (cyclegan, finished_steps(&guided)?) {
        let g = Model::load(&guided.join("checkpoints/last"), cfg.device())?;
        let truth = test.slice_labels_b.clone().unwrap_or_default();
        let mut with: Vec<usize> = (0..test.len())
            .filter(|&i| truth.get(i).is_some_and(|&a| a > 0.0))
            .collect();
        if with.len() > 3 {
            with = vec![
                with[with.len() / 6],
                with[with.len() / 2],
                with[5 * with.len() / 6],
            ];
        }
        let xs: Vec<&Slice> = with.iter().map(|&i| &test.a[i]).collect();
        let (c, gd) = (cyc.translate_slices(&xs, 8)?, g.translate_slices(&xs, 8)?);
        let rows: Vec<Vec<Tile>> = with
            .iter()
            .enumerate()
            .map(|(j, &i)| {
                [
                    test.a[i].clone(),
                    c[j].clone(),
                    gd[j].clone(),
                    test.b[i].clone(),
                ]
                .into_iter()
                .map(|s| Tile::gray(s, -1.0, 1.0))
                .collect()
            })
            .collect();
        let titles = [
            "source T1".to_string(),
            "CycleGAN".to_string(),
            format!(
                "guided λ={} (split 0)",
                cfg.guidance[cfg.guidance.len() - 1]
            ),
            "real T2".to_string(),
        ];
        let row_titles: Vec<String> = with
            .iter()
            .map(|&i| format!("{:.0} mm²", truth[i]))
            .collect();
        image_grid(&out.join("examples.png"), &titles, &row_titles, &rows, 3)?;
    }
    Ok(())
}
