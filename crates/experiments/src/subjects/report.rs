//! The subjects benchmark's report: per-subject scores, the table over
//! subjects, the paper's claims judged by paired tests over subjects, and a
//! figure per subject.
use super::*;
use crate::grid::{finished_steps, ResultsRow, ResultsTable};
use crate::plot::{image_grid, Tile};
use medtrans_io::write_file_atomic;
use medtrans_metrics::{format_p, mean_std, wilcoxon_signed_rank, Summary};
use medtrans_training::checkpoint::last_checkpoint;
use medtrans_training::{score_slices, RunNetworks};
use std::fmt::Write as _;
use std::path::Path;

/// The identity baseline's mode name: the input itself scored as the target.
pub const IDENTITY: &str = "identity";

/// One (condition, mode): its subjects' scores, each the mean over the
/// finished seeds of that subject's test fold.
#[derive(Debug, Clone)]
pub struct ModeRow {
    pub condition: String,
    pub mode: String,
    pub subjects: Vec<SubjectScore>,
    pub runs: usize,
}

impl ModeRow {
    fn values(&self, key: &str) -> Values {
        self.subjects
            .iter()
            .map(|s| (s.subject.clone(), s.value(key)))
            .collect()
    }
}

/// One value per subject.
pub(crate) type Values = BTreeMap<String, f64>;

/// What the report computes.
#[derive(Debug, Clone)]
pub struct SubjectsResults {
    pub rows: Vec<ModeRow>,
    /// The verdict lines of results.md.
    pub verdicts: Vec<String>,
}

/// Each mode's translation of a slice, and R's |field| of the first mode
/// with R.
type Outputs = (Vec<(String, Slice)>, Option<Slice>);

/// A subject's middle test slice under every model, for its figure.
#[derive(Default)]
struct Figure {
    a: Option<Slice>,
    b: Option<Slice>,
    /// Per condition: each mode's translation, and R's |field| of the first
    /// mode with R.
    outputs: BTreeMap<Setting, Outputs>,
}

/// Positions in `test` of each subject's middle slice.
fn middles(test: &SliceDataset) -> BTreeMap<usize, usize> {
    let refs = test.refs.clone().unwrap_or_default();
    let mut by: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, r) in refs.iter().enumerate() {
        by.entry(r.subject).or_default().push(i);
    }
    by.into_iter().map(|(s, v)| (s, v[v.len() / 2])).collect()
}

pub(super) fn report(cfg: &SubjectsConfig, say: Report) -> Result<SubjectsResults> {
    let mut csv = String::from(
        "condition,mode,seed,fold,subject,slices,nmae,psnr,ssim,lesion_dice,lesion_dice_real\n",
    );
    // (condition, mode) -> subject -> per seed scores.
    let mut scored: BTreeMap<(String, String), BTreeMap<String, Vec<SubjectScore>>> =
        BTreeMap::new();
    let mut runs: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut figures: BTreeMap<String, Figure> = BTreeMap::new();
    let (mut done, mut planned) = (0, 0);
    for fold in 0..cfg.folds {
        let data = cfg.dataset(Condition::Registered, fold);
        if !data.join(MANIFEST_FILE).is_file() {
            continue;
        }
        let test = SliceDataset::open(&data, "test")?;
        let middle = middles(&test);
        for (&subject, &i) in &middle {
            let f = figures.entry(subject_name(&test, subject)).or_default();
            f.a = Some(test.a[i].clone());
            f.b = Some(test.b[i].clone());
        }
        let mut add = |c: &str, mode: &str, seed: u64, fakes: &[Slice]| -> Result<()> {
            let scores = score_slices(&test, fakes);
            for (s, real) in per_subject(&test, fakes, &scores)? {
                let _ = writeln!(
                    csv,
                    "{c},{mode},{seed},{fold},{},{},{:.6},{:.4},{:.6},{:.6},{:.6}",
                    s.subject, s.slices, s.nmae, s.psnr, s.ssim, s.lesion_dice, real
                );
                scored
                    .entry((c.to_string(), mode.to_string()))
                    .or_default()
                    .entry(s.subject.clone())
                    .or_default()
                    .push(s);
            }
            Ok(())
        };
        add("-", IDENTITY, 0, &test.a)?;
        for &seed in &cfg.seeds {
            for c in cfg.settings() {
                let mut field_done = false;
                for mode in &cfg.modes {
                    planned += 1;
                    let dir = cfg.run_dir(c, fold, mode, seed);
                    if finished_steps(&dir)?.is_none() {
                        continue;
                    }
                    done += 1;
                    let (fakes, _) = cfg.score(&dir, &test)?;
                    add(&c.key(), mode, seed, &fakes)?;
                    *runs.entry((c.key(), mode.clone())).or_default() += 1;
                    if seed != cfg.seeds[0] {
                        continue;
                    }
                    // The figure: this mode's middle slices, and R's field
                    // for the first mode that has R.
                    let nets = (!field_done)
                        .then(|| RunNetworks::load(&last_checkpoint(&dir)?, cfg.common.device()))
                        .transpose()?;
                    for (&subject, &i) in &middle {
                        let f = figures.entry(subject_name(&test, subject)).or_default();
                        let slot = f.outputs.entry(c).or_default();
                        slot.0.push((mode.clone(), fakes[i].clone()));
                        if let Some(nets) = &nets {
                            if let Some((_, field)) =
                                nets.register(std::slice::from_ref(&fakes[i]), &[&test.b[i]])?
                            {
                                slot.1 = Some(magnitude(&field[0], &field[1]));
                                field_done = true;
                            }
                        }
                    }
                }
            }
        }
    }
    if done == 0 {
        bail!("no finished runs in {} yet", cfg.common.runs.display());
    }
    say(&format!(
        "scored {done} of {planned} runs on the test subjects of their folds"
    ));
    let rows: Vec<ModeRow> = scored
        .into_iter()
        .map(|((condition, mode), by)| {
            let subjects = by
                .into_iter()
                .map(|(name, seeds)| seed_mean(name, &seeds))
                .collect();
            let runs = runs
                .get(&(condition.clone(), mode.clone()))
                .copied()
                .unwrap_or(0);
            ModeRow {
                condition,
                mode,
                subjects,
                runs,
            }
        })
        .collect();
    let rows = ordered(cfg, rows);
    let verdicts = verdicts(cfg, &rows);
    let dir = &cfg.common.results;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let table = table(&rows);
    write_file_atomic(&dir.join("per_subject.csv"), csv.as_bytes())?;
    write_file_atomic(&dir.join("results.csv"), table.csv().as_bytes())?;
    let md = markdown(cfg, &table, &verdicts, (done, planned));
    write_file_atomic(&dir.join("results.md"), md.as_bytes())?;
    say("drawing a figure per subject");
    for (name, f) in &figures {
        draw(&dir.join(format!("subject_{name}.png")), cfg, f)?;
    }
    Ok(SubjectsResults { rows, verdicts })
}

/// |field| of R's (dy, dx), in px.
fn magnitude(dy: &Slice, dx: &Slice) -> Slice {
    let data = dy
        .data
        .iter()
        .zip(&dx.data)
        .map(|(a, b)| a.hypot(*b))
        .collect();
    Slice::new(data, dy.width, dy.height)
}

/// A subject's scores averaged over its finished seeds.
fn seed_mean(subject: String, seeds: &[SubjectScore]) -> SubjectScore {
    let m = |f: fn(&SubjectScore) -> f64| {
        mean_std(&seeds.iter().map(f).collect::<Vec<_>>()).map_or(f64::NAN, |v| v.0)
    };
    SubjectScore {
        subject,
        slices: seeds[0].slices,
        nmae: m(|s| s.nmae),
        psnr: m(|s| s.psnr),
        ssim: m(|s| s.ssim),
        lesion_dice: m(|s| s.lesion_dice),
    }
}

/// The identity first, then conditions and modes in the config's order.
fn ordered(cfg: &SubjectsConfig, mut rows: Vec<ModeRow>) -> Vec<ModeRow> {
    let rank = |r: &ModeRow| {
        let c = cfg
            .settings()
            .iter()
            .position(|c| c.key() == r.condition)
            .map_or(0, |k| k + 1);
        let m = cfg.modes.iter().position(|m| *m == r.mode).unwrap_or(0);
        (c, m)
    };
    rows.sort_by_key(rank);
    rows
}

fn table(rows: &[ModeRow]) -> ResultsTable {
    ResultsTable {
        keys: vec![
            ("condition".into(), "trained on".into()),
            ("mode".into(), "mode".into()),
        ],
        slices_heading: "subjects".into(),
        extras: vec![
            ("lesion_subjects".into(), "lesion subjects".into()),
            ("runs".into(), "runs".into()),
        ],
        rows: rows
            .iter()
            .map(|r| {
                let stat = |key: &str| {
                    mean_std(&r.subjects.iter().map(|s| s.value(key)).collect::<Vec<_>>())
                        .unwrap_or((f64::NAN, f64::NAN))
                };
                let [nmae, psnr, ssim, dice] = ["nmae", "psnr", "ssim", "lesion_dice"].map(stat);
                let with_lesions = r
                    .subjects
                    .iter()
                    .filter(|s| s.lesion_dice.is_finite())
                    .count();
                ResultsRow {
                    keys: vec![r.condition.clone(), r.mode.clone()],
                    scores: Summary::from_parts(
                        r.subjects.len(),
                        [nmae.0, psnr.0, ssim.0],
                        [nmae.1, psnr.1, ssim.1],
                    )
                    .with(LESION_DICE, dice.0, dice.1),
                    extras: vec![
                        (with_lesions.to_string(), with_lesions.to_string()),
                        match r.mode.as_str() {
                            IDENTITY => ("0".into(), "-".into()),
                            _ => (r.runs.to_string(), r.runs.to_string()),
                        },
                    ],
                }
            })
            .collect(),
    }
}

/// A claim that `a` is better than `b` (higher PSNR), judged by a paired
/// Wilcoxon test over the subjects both have. `at_least`: the claim is
/// "not worse", so a tie keeps it.
pub(crate) fn judge(claim: &str, a: &Values, b: &Values, at_least: bool) -> String {
    judge_over(claim, a, b, at_least, "subjects")
}

/// [`judge`] over any paired unit (`unit` names it in the plural: test
/// slices, patients).
pub(crate) fn judge_over(
    claim: &str,
    a: &Values,
    b: &Values,
    at_least: bool,
    unit: &str,
) -> String {
    let (x, y): (Vec<f64>, Vec<f64>) = a
        .iter()
        .filter_map(|(k, v)| Some((*v, *b.get(k)?)))
        .filter(|(v, w)| v.is_finite() && w.is_finite())
        .unzip();
    let n = x.len();
    let Some(w) = (n >= 2).then(|| wilcoxon_signed_rank(&x, &y)).flatten() else {
        return format!("{claim}: **not tested** ({n} paired {unit}).");
    };
    let mut d: Vec<f64> = x.iter().zip(&y).map(|(p, q)| p - q).collect();
    let diff = d.iter().sum::<f64>() / n as f64;
    // The direction the ranks test: the median difference's sign (a mean
    // can be pulled the other way by one subject).
    d.sort_by(f64::total_cmp);
    let median = if n % 2 == 1 {
        d[n / 2]
    } else {
        (d[n / 2 - 1] + d[n / 2]) / 2.0
    };
    let significant = w.p_value < 0.05;
    // The exact two-sided test's smallest p: every subject one way.
    let smallest_p = 2.0 / 2f64.powi(n as i32);
    let verdict = if smallest_p >= 0.05 {
        format!("**cannot be shown at n = {n}** (the smallest possible p is {smallest_p:.3})")
    } else {
        match (significant, median > 0.0, at_least) {
            (true, true, _) => "**holds**".into(),
            (true, false, _) => "**fails**".into(),
            // "Not worse" inside the noise is a tie, not a hold.
            (false, _, true) => "**tie** (no significant difference)".into(),
            (false, _, false) => "**not shown** (no significant difference)".into(),
        }
    };
    let up = d.iter().filter(|v| **v > 0.0).count();
    format!(
        "{claim}: {verdict}: higher in {up} of {n} {unit}, mean difference {diff:+.2} dB \
         (median {median:+.2}), Wilcoxon signed-rank over {unit}, n = {n}, {}.",
        format_p(w.p_value)
    )
}

/// The RegGAN paper's claims, judged over subjects, between the clean
/// setting (registered, no added noise) and the noisiest one (the last:
/// as scanned, or the highest noise level).
fn verdicts(cfg: &SubjectsConfig, rows: &[ModeRow]) -> Vec<String> {
    let psnr = |s: Setting, m: &str| {
        rows.iter()
            .find(|r| r.condition == s.key() && r.mode == m)
            .map(|r| r.values("psnr"))
    };
    let settings = cfg.settings();
    let clean = Setting {
        condition: Condition::Registered,
        noise: 0,
    };
    let Some(&noisy) = settings.iter().rev().find(|&&s| s != clean) else {
        return vec!["No claims: only one training setting was run.".into()];
    };
    let (c, n) = (clean.key(), noisy.key());
    let mut out = Vec::new();
    let missing = |claim: &str| format!("{claim}: **not tested** (its runs have not finished).");
    let claim = format!(
        "1. RegGAN trained {n} >= Pix2Pix trained {c} (the paper's \"RegGAN with noise beats \
         Pix2Pix without\")"
    );
    out.push(match (psnr(noisy, "reggan"), psnr(clean, "pix2pix")) {
        (Some(a), Some(b)) => judge(&claim, &a, &b, true),
        _ => missing(&claim),
    });
    let claim = format!("2. Pix2Pix loses more PSNR than RegGAN from {c} to {n} training");
    out.push(
        match (
            psnr(clean, "pix2pix"),
            psnr(noisy, "pix2pix"),
            psnr(clean, "reggan"),
            psnr(noisy, "reggan"),
        ) {
            (Some(pr), Some(ps), Some(rr), Some(rs)) => {
                // Per subject: the clean score minus the noisy one.
                let drop = |r: &Values, s: &Values| -> Values {
                    r.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v - s.get(k)?)))
                        .collect()
                };
                judge(&claim, &drop(&pr, &ps), &drop(&rr, &rs), false)
            }
            _ => missing(&claim),
        },
    );
    for s in settings {
        let claim = format!("3. RegGAN > CycleGAN (C), trained {}", s.key());
        out.push(match (psnr(s, "reggan"), psnr(s, "cycle")) {
            (Some(a), Some(b)) => judge(&claim, &a, &b, false),
            _ => missing(&claim),
        });
    }
    out
}

fn markdown(
    cfg: &SubjectsConfig,
    table: &ResultsTable,
    verdicts: &[String],
    (done, planned): (usize, usize),
) -> String {
    let config = cfg
        .common
        .source
        .as_ref()
        .map_or("CONFIG".into(), |p| p.display().to_string());
    let [a, b] = &cfg.data.contrasts;
    let mut md = format!("# {}: each mode on the next patient\n\n", cfg.data.title);
    let _ = writeln!(
        md,
        "Made by `medtrans experiment subjects --config {config}` ({} subjects, {} folds: \
         subject i is tested in fold i mod {}; seeds {:?}; {} px slices along axis {}; \
         shared overrides: `{}`).\n",
        cfg.names.len(),
        cfg.folds,
        cfg.folds,
        cfg.seeds,
        cfg.data.size,
        cfg.data.axis,
        cfg.common.set.join(" ")
    );
    if done < planned {
        let _ = writeln!(
            md,
            "**Partial: {done} of {planned} runs have finished;** rerun the command to train \
             the rest. Rows cover the subjects of the finished folds only.\n"
        );
    }
    let _ = writeln!(
        md,
        "{a} -> {b}. Every model is scored on its fold's test subjects, against their \
         **registered** {b} (with `register = false`, the headers' alignment), inside the \
         brain mask; a subject's score is the mean over its slices (and over seeds). The \
         table gives the mean +- std over subjects. **Lesion Dice**: the translation \
         thresholded with the intensity window that best segments the subject's real {b} \
         against its lesion mask, the same window for every model; the real {b} itself \
         reaches that window's Dice (`lesion_dice_real` in per_subject.csv). `identity` \
         scores the {a} itself as the {b}. A `-noiseL` setting adds the RegGAN paper's \
         misalignment noise of level L to the training pairs, freshly drawn each epoch.\n"
    );
    md += &table.markdown();
    md += "\n## The RegGAN paper's claims, judged over subjects\n\n";
    md += "The unit of analysis is the subject: one value per subject (its test slices \
           averaged), paired by subject. Slices of one subject are not independent and are \
           never counted as samples here. p < 0.05 is called significant; a claim that one \
           mode is better needs it, and a \"not worse\" claim without it is a tie. With \
           fewer than 6 subjects no difference can reach p < 0.05 (all of them one way \
           gives p = 2 / 2^n).\n\n";
    for v in verdicts {
        md += v;
        md += "\n";
    }
    md
}

/// A subject's figure: per condition, T1, registered FLAIR, each mode's
/// translation, and R's |field|.
fn draw(path: &Path, cfg: &SubjectsConfig, f: &Figure) -> Result<()> {
    let (Some(a), Some(b)) = (&f.a, &f.b) else {
        return Ok(());
    };
    let max_field = f
        .outputs
        .values()
        .filter_map(|o| o.1.as_ref())
        .flat_map(|m| m.data.iter().copied())
        .fold(1e-3f32, f32::max);
    // Short titles: a 64 px tile is 192 px wide.
    let mut cols: Vec<String> = cfg.data.contrasts.to_vec();
    cols.extend(cfg.modes.iter().cloned());
    cols.push(format!("|R| <={max_field:.1}px"));
    let mut rows = Vec::new();
    let mut names = Vec::new();
    for (c, (outputs, field)) in &f.outputs {
        let mut row = vec![
            Tile::gray(a.clone(), -1.0, 1.0),
            Tile::gray(b.clone(), -1.0, 1.0),
        ];
        for m in &cfg.modes {
            let blank = Slice::new(vec![-1.0; a.data.len()], a.width, a.height);
            let out = outputs
                .iter()
                .find(|o| &o.0 == m)
                .map_or(blank, |o| o.1.clone());
            row.push(Tile::gray(out, -1.0, 1.0));
        }
        let none = Slice::new(vec![0.0; a.data.len()], a.width, a.height);
        row.push(Tile::gray(field.clone().unwrap_or(none), 0.0, max_field));
        rows.push(row);
        names.push(c.key());
    }
    if rows.is_empty() {
        return Ok(());
    }
    image_grid(path, &cols, &names, &rows, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(v: &[f64]) -> Values {
        v.iter()
            .enumerate()
            .map(|(i, &x)| (format!("s{i}"), x))
            .collect()
    }

    #[test]
    fn a_claim_needs_a_significant_paired_difference_over_subjects() {
        let b = values(&[10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0]);
        let better = values(&[10.5, 11.6, 12.7, 13.8, 14.9, 16.0, 17.1, 18.2]);
        // Eight subjects all better: the exact two-sided p is 2 / 2^8.
        let v = judge("x", &better, &b, false);
        assert!(v.contains("**holds**:") && v.contains("n = 8"), "{v}");
        assert!(
            v.contains("p = 0.008") && v.contains("+0.85 dB (median +0.85)"),
            "{v}"
        );
        let v = judge("x", &b, &better, true);
        assert!(v.contains("**fails**"), "{v}");
        // Mixed signs: no significant difference; "not worse" keeps the
        // claim, "better" does not show it.
        let mixed = values(&[10.5, 10.5, 12.5, 12.5, 14.5, 14.5, 16.5, 16.5]);
        assert!(judge("x", &mixed, &b, true).contains("**tie** (no significant"));
        // Four subjects, all lower: as far as four can go, and still not
        // enough for p < 0.05.
        let four = |v: &[f64]| values(v);
        let v = judge(
            "x",
            &four(&[1.0, 2.0, 3.0, 4.0]),
            &four(&[2.0, 3.0, 4.0, 5.0]),
            true,
        );
        assert!(
            v.contains("**cannot be shown at n = 4** (the smallest possible p is 0.125)"),
            "{v}"
        );
        assert!(v.contains("higher in 0 of 4 subjects"), "{v}");
        assert!(judge("x", &mixed, &b, false).contains("**not shown**"));
        // Only the subjects both have are paired.
        let mut one = Values::new();
        one.insert("s0".into(), 1.0);
        assert!(judge("x", &one, &b, false).contains("**not tested** (1 paired"));
    }
}
