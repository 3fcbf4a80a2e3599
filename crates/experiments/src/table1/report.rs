//! Table 1's report: per-slice scores, the 16-cell table with what adding
//! R changes, the paper's three conclusions judged per family, and a
//! figure of one slice per held-out patient under every cell.
use super::*;
use crate::grid::{finished_steps, ResultsRow, ResultsTable};
use crate::plot::{bar_chart, image_grid, Bar, Tile};
use crate::subjects::{judge_over, subject_name, Values};
use medtrans_datasets::{SliceDataset, MANIFEST_FILE};
use medtrans_io::{write_file_atomic, Slice};
use medtrans_metrics::{mean_std, Metric, SliceScore, Summary};
use std::fmt::Write as _;

/// One cell: its per-slice scores, each the mean over the seeds run, keyed
/// `foldF/POSITION`; and each patient's mean over its slices.
#[derive(Debug, Clone)]
pub struct Cell {
    pub family: String,
    pub mode: Table1Mode,
    /// Finished runs (seeds x folds) behind it.
    pub runs: usize,
    pub slices: BTreeMap<String, [f64; 3]>,
    pub patients: BTreeMap<String, [f64; 3]>,
    /// Each seed's mean PSNR over the slices, for the seed spread.
    pub seed_psnr: Vec<(u64, f64)>,
}

impl Cell {
    fn values(&self, metric: Metric, by_patient: bool) -> Values {
        let k = Metric::ALL
            .iter()
            .position(|m| *m == metric)
            .expect("one of the paper's three");
        let from = if by_patient {
            &self.patients
        } else {
            &self.slices
        };
        from.iter().map(|(key, v)| (key.clone(), v[k])).collect()
    }

    fn mean(&self, metric: Metric) -> f64 {
        let v: Vec<f64> = self.values(metric, false).into_values().collect();
        mean_std(&v).map_or(f64::NAN, |m| m.0)
    }
}

/// What the report computes.
#[derive(Debug, Clone)]
pub struct Table1Results {
    /// Complete cells only: every seed and run fold finished.
    pub cells: Vec<Cell>,
    /// The untranslated input scored as the target, over the same slices:
    /// the floor a translation must clear.
    pub identity: Option<Summary>,
    pub verdicts: Vec<String>,
}

impl Table1Results {
    pub fn cell(&self, family: &str, mode: Table1Mode) -> Option<&Cell> {
        find(&self.cells, family, mode)
    }
}

/// The cell of `family` in `mode`, when it is complete.
fn find<'c>(cells: &'c [Cell], family: &str, mode: Table1Mode) -> Option<&'c Cell> {
    cells.iter().find(|c| c.family == family && c.mode == mode)
}

/// (family, mode) -> slice key -> one score triple per seed.
type Scored = BTreeMap<(String, Table1Mode), BTreeMap<String, Vec<[f64; 3]>>>;

/// One test slice per held-out patient (its middle one) under every cell.
struct Figure {
    patient: String,
    a: Slice,
    b: Slice,
    /// (family, mode) -> the first seed's translation.
    outputs: BTreeMap<(String, Table1Mode), Slice>,
}

pub(super) fn report(cfg: &Table1Config, say: Report) -> Result<Table1Results> {
    let mut csv = String::from("family,mode,seed,fold,subject,position,slice,nmae,psnr,ssim\n");
    // (family, mode) -> slice key -> per-seed scores; patient of each key.
    let mut scored: Scored = BTreeMap::new();
    let mut seed_sums: BTreeMap<(String, Table1Mode), Vec<(u64, f64)>> = BTreeMap::new();
    let mut runs: BTreeMap<(String, Table1Mode), usize> = BTreeMap::new();
    let mut patient_of: BTreeMap<String, String> = BTreeMap::new();
    let mut figures = Vec::new();
    let mut identity: Vec<SliceScore> = Vec::new();
    let (mut done, mut planned) = (0, 0);
    for &fold in cfg.run_folds() {
        let data = cfg.dataset(fold);
        if !data.join(MANIFEST_FILE).is_file() {
            continue;
        }
        let test = SliceDataset::open(&data, "test")?;
        identity.extend(medtrans_training::score_slices(&test, &test.a));
        let middle = test.len() / 2;
        let mut figure = Figure {
            patient: subject_name(&test, test.refs.as_ref().map_or(0, |r| r[middle].subject)),
            a: test.a[middle].clone(),
            b: test.b[middle].clone(),
            outputs: BTreeMap::new(),
        };
        for &seed in &cfg.seeds {
            for family in &cfg.families {
                for &mode in &cfg.modes {
                    planned += 1;
                    let dir = cfg.run_dir(family, mode, fold, seed);
                    if finished_steps(&dir)?.is_none() {
                        continue;
                    }
                    done += 1;
                    let (fakes, scores) = cfg.score(&dir, &test)?;
                    let key = (family.clone(), mode);
                    *runs.entry(key.clone()).or_default() += 1;
                    let by = scored.entry(key.clone()).or_default();
                    let mut psnr = Vec::new();
                    for s in &scores {
                        let subject = subject_name(&test, s.subject);
                        let _ = writeln!(
                            csv,
                            "{family},{},{seed},{fold},{subject},{},{},{:.6},{:.4},{:.6}",
                            mode.key(),
                            s.position,
                            s.slice,
                            s.nmae,
                            s.psnr,
                            s.ssim
                        );
                        let k = format!("fold{fold}/{:05}", s.position);
                        patient_of.insert(k.clone(), subject);
                        by.entry(k).or_default().push([s.nmae, s.psnr, s.ssim]);
                        psnr.push(s.psnr);
                    }
                    let m = mean_std(&psnr).map_or(f64::NAN, |m| m.0);
                    seed_sums.entry(key.clone()).or_default().push((seed, m));
                    if seed == cfg.seeds[0] {
                        figure.outputs.insert(key, fakes[middle].clone());
                    }
                }
            }
        }
        figures.push(figure);
    }
    if done == 0 {
        bail!("no finished runs in {} yet", cfg.common.runs.display());
    }
    say(&format!(
        "scored {done} of {planned} runs on their folds' held-out patients"
    ));
    let complete = cfg.seeds.len() * cfg.run_folds().len();
    let cells: Vec<Cell> = scored
        .into_iter()
        .filter(|(k, _)| runs.get(k) == Some(&complete))
        .map(|((family, mode), by)| {
            let slices: BTreeMap<String, [f64; 3]> =
                by.into_iter().map(|(k, v)| (k, mean3(&v))).collect();
            let mut per: BTreeMap<String, Vec<[f64; 3]>> = BTreeMap::new();
            for (k, v) in &slices {
                per.entry(patient_of[k].clone()).or_default().push(*v);
            }
            let key = (family.clone(), mode);
            Cell {
                runs: runs[&key],
                seed_psnr: seed_sums.remove(&key).unwrap_or_default(),
                family,
                mode,
                slices,
                patients: per.iter().map(|(p, v)| (p.clone(), mean3(v))).collect(),
            }
        })
        .collect();
    let mut cells = cells;
    let rank = |c: &Cell| {
        (
            cfg.families.iter().position(|f| *f == c.family),
            cfg.modes.iter().position(|m| *m == c.mode),
        )
    };
    cells.sort_by_key(rank);
    let results = Table1Results {
        verdicts: verdicts(cfg, &cells),
        cells,
        identity: Summary::of(&identity),
    };
    let dir = &cfg.common.results;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_file_atomic(&dir.join("per_slice.csv"), csv.as_bytes())?;
    let mut table = table(&results.cells);
    if let Some(id) = &results.identity {
        table.rows.insert(
            0,
            ResultsRow {
                keys: vec!["identity".into(), "-".into()],
                scores: id.clone(),
                extras: vec![("0".into(), "-".into()), (String::new(), "-".into())],
            },
        );
    }
    write_file_atomic(&dir.join("results.csv"), table.csv().as_bytes())?;
    let md = markdown(cfg, &results, &table, (done, planned));
    write_file_atomic(&dir.join("results.md"), md.as_bytes())?;
    let ([a, b], title) = cfg.labels();
    let bars: Vec<Bar> = results
        .cells
        .iter()
        .map(|c| {
            let seeds: Vec<f64> = c.seed_psnr.iter().map(|s| s.1).collect();
            Bar {
                label: format!("{} {}", c.family, c.mode.label()),
                mean: c.mean(Metric::PSNR),
                std: mean_std(&seeds).map_or(0.0, |m| m.1),
            }
        })
        .collect();
    bar_chart(
        &dir.join("psnr.png"),
        &format!("{title}: Table 1, {a} -> {b} (whiskers: std over seeds)"),
        "test PSNR (dB)",
        &bars,
    )?;
    say("drawing a figure per held-out patient");
    for f in &figures {
        draw(&dir.join(format!("patient_{}.png", f.patient)), cfg, f)?;
    }
    Ok(results)
}

/// The element-wise mean of score triples.
fn mean3(v: &[[f64; 3]]) -> [f64; 3] {
    let n = v.len() as f64;
    let mut out = [0.0; 3];
    for s in v {
        for k in 0..3 {
            out[k] += s[k] / n;
        }
    }
    out
}

fn table(cells: &[Cell]) -> ResultsTable {
    ResultsTable {
        keys: vec![
            ("family".into(), "family".into()),
            ("mode".into(), "mode".into()),
        ],
        slices_heading: "test slices".into(),
        extras: vec![
            ("runs".into(), "runs".into()),
            ("psnr_per_seed".into(), "PSNR per seed".into()),
        ],
        rows: cells
            .iter()
            .map(|c| {
                let scores: Vec<SliceScore> = c
                    .slices
                    .values()
                    .enumerate()
                    .map(|(i, v)| SliceScore {
                        position: i,
                        subject: 0,
                        slice: i,
                        nmae: v[0],
                        psnr: v[1],
                        ssim: v[2],
                        extra: Vec::new(),
                    })
                    .collect();
                let per_seed = c
                    .seed_psnr
                    .iter()
                    .map(|(s, p)| format!("{s}:{p:.2}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                ResultsRow {
                    keys: vec![c.family.clone(), c.mode.label().into()],
                    scores: Summary::of(&scores).expect("a complete cell has slices"),
                    extras: vec![
                        (c.runs.to_string(), c.runs.to_string()),
                        (per_seed.clone(), per_seed),
                    ],
                }
            })
            .collect(),
    }
}

/// The paper's three conclusions, judged per family over test slices
/// (and over patients when every fold ran).
fn verdicts(cfg: &Table1Config, cells: &[Cell]) -> Vec<String> {
    let find = |f: &str, m: Table1Mode| find(cells, f, m);
    // Over patients too when every patient was held out once (n >= 2).
    let all_folds = cfg.data.is_some() && cfg.folds >= 2 && cfg.run_folds().len() == cfg.folds;
    let mut out = Vec::new();
    let judge = |claim: String, a: Option<&Cell>, b: Option<&Cell>, at_least: bool| -> String {
        match (a, b) {
            (Some(a), Some(b)) => {
                let mut line = judge_over(
                    &claim,
                    &a.values(Metric::PSNR, false),
                    &b.values(Metric::PSNR, false),
                    at_least,
                    "test slices",
                );
                line = seed_noise(line, &claim, a, b);
                if all_folds {
                    let over = judge_over(
                        "over patients",
                        &a.values(Metric::PSNR, true),
                        &b.values(Metric::PSNR, true),
                        at_least,
                        "patients",
                    );
                    line = format!("{line} {over}");
                }
                line
            }
            _ => format!("{claim}: **not tested** (its runs have not finished)."),
        }
    };
    out.push("**1. Adding R helps every method** (PSNR, +R against without):".into());
    for f in &cfg.families {
        for base in [Table1Mode::C, Table1Mode::Nc] {
            let with = base.with_r();
            out.push(judge(
                format!("- {f}: {} > {}", with.label(), base.label()),
                find(f, with),
                find(f, base),
                false,
            ));
        }
    }
    out.push("**2. NC+R beats C+R** (the paper: one direction with R is enough):".into());
    for f in &cfg.families {
        out.push(judge(
            format!("- {f}: NC+R > C+R"),
            find(f, Table1Mode::NcR),
            find(f, Table1Mode::CR),
            false,
        ));
    }
    out.push("**3. NICE-GAN NC+R is the best cell**:".into());
    let best = cells
        .iter()
        .max_by(|a, b| a.mean(Metric::PSNR).total_cmp(&b.mean(Metric::PSNR)));
    match (find("nice", Table1Mode::NcR), best) {
        (Some(nice), Some(best)) => {
            let runner = cells
                .iter()
                .filter(|c| !(c.family == "nice" && c.mode == Table1Mode::NcR))
                .max_by(|a, b| a.mean(Metric::PSNR).total_cmp(&b.mean(Metric::PSNR)));
            let top = format!("{} {}", best.family, best.mode.label());
            out.push(format!(
                "- the highest mean PSNR is {top} ({:.2} dB); NICE-GAN NC+R has {:.2} dB.",
                best.mean(Metric::PSNR),
                nice.mean(Metric::PSNR)
            ));
            if let Some(r) = runner {
                out.push(judge(
                    format!(
                        "- nice NC+R > the best other cell ({} {})",
                        r.family,
                        r.mode.label()
                    ),
                    Some(nice),
                    Some(r),
                    false,
                ));
            }
        }
        _ => out.push("- **not tested** (NICE-GAN NC+R has not finished).".into()),
    }
    out
}

/// A slice-level verdict held against the seeds' own spread: the test
/// pairs slices of seed-averaged cells, which says nothing of how much a
/// cell moves from one seed to the next. A difference no larger than the
/// larger seed-to-seed range of the two cells' mean PSNR is "within seed
/// noise", whatever the slices say; with one seed that range is unknown,
/// and the verdict says so.
fn seed_noise(line: String, claim: &str, a: &Cell, b: &Cell) -> String {
    if !line.contains("**holds**") && !line.contains("**fails**") {
        return line;
    }
    let range = |c: &Cell| {
        let v: Vec<f64> = c.seed_psnr.iter().map(|s| s.1).collect();
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (v.len() >= 2).then_some(hi - lo)
    };
    let diff = a.mean(Metric::PSNR) - b.mean(Metric::PSNR);
    let per_seed: Vec<String> = a
        .seed_psnr
        .iter()
        .filter_map(|(s, x)| {
            let y = b.seed_psnr.iter().find(|t| t.0 == *s)?.1;
            Some(format!("{:+.2}", x - y))
        })
        .collect();
    match (range(a), range(b)) {
        (Some(ra), Some(rb)) if diff.abs() <= ra.max(rb) => {
            let rest = line.strip_prefix(&format!("{claim}: ")).unwrap_or(&line);
            format!(
                "{claim}: **within seed noise**: the difference, {diff:+.2} dB (per seed {}), is no larger than these cells' seed-to-seed range of mean PSNR, up to {:.2} dB. Over test slices alone: {rest}",
                per_seed.join(", "),
                ra.max(rb)
            )
        }
        (Some(ra), Some(rb)) => format!(
            "{line} Per seed {}; beyond the cells' seed-to-seed range ({:.2} dB).",
            per_seed.join(", "),
            ra.max(rb)
        ),
        // One seed: the slices may agree, the seeds are not measured.
        _ => format!(
            "{} One seed: how far a cell moves between seeds is not measured here.",
            line.replacen("**holds**", "**holds over slices, one seed**", 1)
                .replacen("**fails**", "**fails over slices, one seed**", 1)
        ),
    }
}

/// `| family | C | C+R | NC | NC+R | +R (C) | +R (NC) |` for one metric.
fn grid(cfg: &Table1Config, cells: &[Cell], metric: Metric) -> String {
    let get = |f: &str, m: Table1Mode| find(cells, f, m).map(|c| c.mean(metric));
    let d = metric.table_decimals();
    let cell = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.d$}"));
    let diff = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:+.d$}", a - b),
        _ => "-".into(),
    };
    let mut s = format!(
        "| {} | C | C+R | NC | NC+R | +R on C | +R on NC |\n|---|---|---|---|---|---|---|\n",
        metric.label()
    );
    for f in &cfg.families {
        let [c, cr, nc, ncr] = Table1Mode::ALL.map(|m| get(f, m));
        let _ = writeln!(
            s,
            "| {f} | {} | {} | {} | {} | {} | {} |",
            cell(c),
            cell(cr),
            cell(nc),
            cell(ncr),
            diff(cr, c),
            diff(ncr, nc)
        );
    }
    s
}

fn markdown(
    cfg: &Table1Config,
    r: &Table1Results,
    table: &ResultsTable,
    (done, planned): (usize, usize),
) -> String {
    let ([a, b], title) = cfg.labels();
    let mut md = format!("# {title}: Table 1, {a} -> {b}\n\n");
    let _ = writeln!(
        md,
        "{done} of {planned} runs finished; cells are the mean over seeds {:?} and folds {:?} \
         ({}); training pairs moved by rotation +-{} deg, translation +-{:.0} %, scaling \
         +-{:.0} %; tested against the untouched targets, brain-masked.\n",
        cfg.seeds,
        cfg.run_folds(),
        if cfg.data.is_some() {
            "each fold holds out its patients"
        } else {
            "one volume: train and test slabs"
        },
        cfg.misalign.rotation_deg,
        100.0 * cfg.misalign.translation,
        100.0 * cfg.misalign.scale,
    );
    for m in [Metric::PSNR, Metric::NMAE, Metric::SSIM] {
        md += &grid(cfg, &r.cells, m);
        if let Some(id) = &r.identity {
            let d = m.table_decimals();
            let _ = writeln!(
                md,
                "\nThe untranslated input ({a} scored as {b}): {:.d$}.",
                id.mean(m)
            );
        }
        md.push('\n');
    }
    md += "## The paper's conclusions\n\n";
    md += "Each test pairs the two cells' per-slice PSNR (mean over seeds). Slices of one \
           patient are neighbours, not independent patients: a p-value over slices says \
           the difference is consistent across this patient's slices, not that it would \
           hold for the next patient.\n\n";
    for v in &r.verdicts {
        md += v;
        md.push('\n');
    }
    md += "\n## Every cell (mean +- std over test slices)\n\n";
    md += &table.markdown();
    md
}

/// A held-out patient's middle slice: rows of families, columns input,
/// target and the four modes.
fn draw(path: &std::path::Path, cfg: &Table1Config, f: &Figure) -> Result<()> {
    let ([a, b], _) = cfg.labels();
    let mut cols = vec![a, b];
    cols.extend(cfg.modes.iter().map(|m| m.label().to_string()));
    let blank = Slice::new(vec![-1.0; f.a.data.len()], f.a.width, f.a.height);
    let mut rows = Vec::new();
    for family in &cfg.families {
        let mut row = vec![
            Tile::gray(f.a.clone(), -1.0, 1.0),
            Tile::gray(f.b.clone(), -1.0, 1.0),
        ];
        for &m in &cfg.modes {
            let out = f.outputs.get(&(family.clone(), m)).unwrap_or(&blank);
            row.push(Tile::gray(out.clone(), -1.0, 1.0));
        }
        rows.push(row);
    }
    image_grid(path, &cols, &cfg.families, &rows, 3)
}
