//! Many-to-one translation (pathological -> healthy): the asymmetric cycle
//! loss paper's Table 1 on brain MR with synthetic lesions.
//!
//! Domain A (pathological) is ICBM T1 slices with lesions painted in;
//! domain B (healthy) other slices, untouched (alternating blocks, so both
//! span the same anatomy). G: A -> B should remove
//! the lesions. Each cycle weight w_c trains the symmetric loss (L_C: both
//! cycles at w_c) and the asymmetric one (L_AC: only B -> A -> B, at
//! 2 w_c), same everything else, on several seeds. A held-out lesioned
//! slab, whose clean slices are known, scores G: masked NMAE, PSNR and
//! SSIM against the clean slice, the paper's segmentation score (Dice of the
//! best intensity window against the clean slice's white matter), and the
//! error inside the lesions; paired Wilcoxon tests compare L_AC with L_C
//! per w_c.
use crate::experiment::{Common, Experiment};
use crate::grid::{finished_steps, GridRun, Report};
use crate::plot::{image_grid, line_panels, Panel, Series, Tile};
use crate::slabs::{
    interleaved, mask_slice, read_maps, record_settings, reuse_dataset, slabs, write_dataset,
    AtlasSlices, AtlasSource, SplitArrays,
};
use anyhow::{bail, Context, Result};
use medtrans_datasets::seeds::mix_seed;
use medtrans_datasets::{mask_to_background, Pairing, SliceDataset};
use medtrans_io::{read_volume, write_file_atomic, Slice};
use medtrans_metrics::{
    dice_best_threshold, format_p, mean_std, wilcoxon_signed_rank, Metric, SliceScore,
};
use medtrans_training::config::CycleDirection;
use medtrans_training::{Model, TrainConfig};
use medtrans_transforms::{
    paint_lesions, percentile, Interp, LesionSpec, Normalization, SquareFit,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

mod report;
use report::*;

/// Bins of the intensity-window search behind the segmentation score.
const DICE_BINS: usize = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManyToOneConfig {
    /// `runs`, `results`, `seeds` (default 1 and 2), `set`, `device`.
    #[serde(skip)]
    pub common: Common,
    /// The cycle weights w_c compared (the paper: 0.25, 0.5, 1).
    #[serde(default = "default_weights")]
    pub cycle_weights: Vec<f64>,
    /// `common.seeds`, or the default.
    #[serde(skip)]
    pub seeds: Vec<u64>,
    /// Absolute identity-loss weight (the paper: half the adversarial
    /// weight), the same for both losses.
    #[serde(default = "default_identity")]
    pub identity: f64,
    #[serde(default)]
    pub lesions: LesionSpec,
    /// Seed of the lesions (the dataset), apart from the training seeds.
    #[serde(default = "default_lesion_seed")]
    pub lesion_seed: u64,
    /// The healthy subject: `a` and `b` the same T1, with mask and atlas.
    pub data: AtlasSource,
    /// Real tumour MR volumes with their masks, for the qualitative panel.
    #[serde(default)]
    pub tumours: Vec<TumourCase>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TumourCase {
    pub image: PathBuf,
    pub label: PathBuf,
}

fn default_weights() -> Vec<f64> {
    vec![0.25, 0.5, 1.0]
}
fn default_identity() -> f64 {
    0.5
}
fn default_lesion_seed() -> u64 {
    7
}

/// The two losses compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CycleLoss {
    /// L_C: both cycles, each at w_c.
    Symmetric,
    /// L_AC: only the healthy domain's cycle, at 2 w_c.
    Asymmetric,
}

impl CycleLoss {
    pub const BOTH: [CycleLoss; 2] = [CycleLoss::Symmetric, CycleLoss::Asymmetric];

    pub fn key(self) -> &'static str {
        match self {
            CycleLoss::Symmetric => "symmetric",
            CycleLoss::Asymmetric => "asymmetric",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CycleLoss::Symmetric => "L_C",
            CycleLoss::Asymmetric => "L_AC",
        }
    }

    fn direction(self) -> CycleDirection {
        match self {
            CycleLoss::Symmetric => CycleDirection::Both,
            CycleLoss::Asymmetric => CycleDirection::TargetOnly,
        }
    }
}

impl Experiment for ManyToOneConfig {
    const NAME: &'static str = "many-to-one";
    type Own = ManyToOneConfig;
    type Outcome = Vec<Row>;

    fn new(common: Common, own: ManyToOneConfig) -> Result<Self> {
        let origin = common.origin();
        let cfg = ManyToOneConfig {
            seeds: common.seeds_or(&[1, 2])?,
            common,
            ..own
        };
        if cfg.cycle_weights.is_empty() {
            bail!("{origin}: cycle_weights must not be empty");
        }
        if cfg
            .cycle_weights
            .iter()
            .any(|w| !(w.is_finite() && *w > 0.0))
        {
            bail!("{origin}: every cycle weight must be > 0");
        }
        if !(cfg.identity.is_finite() && cfg.identity >= 0.0) {
            bail!("{origin}: identity must be >= 0");
        }
        cfg.lesions
            .check()
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        Ok(cfg)
    }

    crate::common_field!();

    fn build(&self, report: Report) -> Result<()> {
        build_dataset(self, report)
    }

    fn grid(&self) -> Result<Vec<GridRun>> {
        self.runs()
            .into_iter()
            .map(|(l, w, s)| {
                Ok(GridRun {
                    label: format!("{} w_c {w} seed {s}", l.label()),
                    group: l.key().into(),
                    config: self.train_config(l, w, s)?,
                })
            })
            .collect()
    }

    fn report(&self, report: Report) -> Result<Vec<Row>> {
        report_many_to_one(self, report)
    }
}

impl ManyToOneConfig {
    pub fn dataset(&self) -> PathBuf {
        self.common.runs.join("dataset")
    }

    pub fn device(&self) -> &str {
        self.common.device()
    }

    pub fn run_dir(&self, loss: CycleLoss, w: f64, seed: u64) -> PathBuf {
        self.common
            .runs
            .join(format!("{}-wc{w}-seed{seed}", loss.key()))
    }

    /// Every (loss, w_c, seed), seeds outermost: a grid cut short has
    /// every cell once before any repeat.
    pub fn runs(&self) -> Vec<(CycleLoss, f64, u64)> {
        let mut out = Vec::new();
        for &s in &self.seeds {
            for &w in &self.cycle_weights {
                for l in CycleLoss::BOTH {
                    out.push((l, w, s));
                }
            }
        }
        out
    }

    /// The asymmetric preset (U-Net, LSGAN, pools) with the shared
    /// overrides; the two losses differ in `loss.cycle_direction` only.
    pub fn train_config(&self, loss: CycleLoss, w: f64, seed: u64) -> Result<TrainConfig> {
        TrainConfig::preset("asymmetric", &self.common.set)
            .and_then(|c| {
                c.with(|c| {
                    c.data.path = self.dataset();
                    c.data.pairing = Pairing::Unpaired;
                    c.out = self.run_dir(loss, w, seed);
                    c.loss.cycle = w;
                    c.loss.cycle_direction = loss.direction();
                    // `loss.identity` is a fraction of the cycle weight.
                    c.loss.identity = self.identity / w;
                    c.train.seed = seed;
                    c.train.device = self.device().to_string();
                })
            })
            .with_context(|| format!("run {} w_c {w} seed {seed}", loss.key()))
    }
}

/// Build the lesioned dataset (once): X (lesioned, domain A) and Y
/// (healthy, domain B) in alternating blocks, a test and a val slab.
pub fn build_dataset(cfg: &ManyToOneConfig, report: Report) -> Result<()> {
    #[derive(Serialize)]
    struct Settings<'a> {
        lesion_seed: u64,
        lesions: &'a LesionSpec,
        data: &'a AtlasSource,
    }
    let settings = toml::to_string(&Settings {
        lesion_seed: cfg.lesion_seed,
        lesions: &cfg.lesions,
        data: &cfg.data,
    })?;
    if reuse_dataset(&cfg.dataset(), &settings)? {
        return Ok(());
    }
    report(&format!(
        "preparing {} at {} px and painting lesions",
        cfg.data.a.display(),
        cfg.data.size
    ));
    let base = AtlasSlices::load(&cfg.data, &cfg.common.runs.join("slices"))?;
    // Test and val are contiguous slabs; around them, X and Y alternate in
    // blocks of 4 slices, so the two domains cover the same anatomy and
    // differ only by the lesions (separate slabs would let the
    // discriminator tell them apart by anatomy, and G learn to move it).
    let s = slabs(base.len(), &[0.3, 0.15, 0.45, 0.1], 3)?;
    let (mut x, mut y) = interleaved(s[0].clone(), 4, 1);
    let (x2, y2) = interleaved(s[2].clone(), 4, 1);
    x.extend(x2);
    y.extend(y2);
    let (test, val) = (s[1].clone(), s[3].clone());
    let tissue = white_matter(&base)?;
    let width = base.manifest.size;
    let lesioned = |p: usize| {
        let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(
            cfg.lesion_seed
                .wrapping_mul(0x9E37_79B9)
                .wrapping_add(p as u64),
        ));
        paint_lesions(
            &base.a[p],
            &tissue[p],
            &base.brain[p],
            &cfg.lesions,
            &mut rng,
        )
    };
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let train = SplitArrays {
        positions: x.to_vec(),
        a: x.iter().map(|&p| lesioned(p).image).collect(),
        b: y.iter().map(|&p| base.b[p].clone()).collect(),
        mask: x.iter().map(|&p| base.brain[p].clone()).collect(),
        extra: vec![],
        ..Default::default()
    };
    let held_out = |r: std::ops::Range<usize>| {
        let painted: Vec<_> = r.clone().map(lesioned).collect();
        SplitArrays {
            positions: r.clone().collect(),
            a: painted.iter().map(|l| l.image.clone()).collect(),
            b: r.clone().map(|p| base.b[p].clone()).collect(),
            mask: r.clone().map(|p| base.brain[p].clone()).collect(),
            extra: vec![
                (
                    "tissue".into(),
                    r.clone().map(|p| mask_slice(&tissue[p], width)).collect(),
                ),
                (
                    "lesion".into(),
                    painted
                        .iter()
                        .map(|l| mask_slice(&l.lesion, width))
                        .collect(),
                ),
            ],
            ..Default::default()
        }
    };
    write_dataset(
        &cfg.dataset(),
        &base,
        &[
            ("train", train),
            ("val", held_out(val)),
            ("test", held_out(test)),
        ],
    )?;
    record_settings(&cfg.dataset(), &settings)
}

/// The clean slice's tissue mask the segmentation score aims at: white
/// matter, i.e. brain pixels outside every CerebrA structure (the atlas
/// labels grey matter and deep nuclei, not white matter) and brighter than
/// the midpoint between labelled grey matter and the rest, which drops the
/// CSF the unlabelled set also holds.
fn white_matter(base: &AtlasSlices) -> Result<Vec<Vec<bool>>> {
    let (mut grey, mut rest) = (Vec::new(), Vec::new());
    for p in 0..base.len() {
        for (k, &inside) in base.brain[p].iter().enumerate() {
            if inside {
                let v = base.a[p].data[k];
                if base.labels[p].data[k] > 0.5 {
                    grey.push(v);
                } else {
                    rest.push(v);
                }
            }
        }
    }
    let (Some(g), Some(r)) = (percentile(&grey, &[50.0]), percentile(&rest, &[50.0])) else {
        bail!("the atlas labels no structure inside the brain mask");
    };
    let threshold = ((g[0] + r[0]) / 2.0) as f32;
    Ok((0..base.len())
        .map(|p| {
            (0..base.a[p].data.len())
                .map(|k| {
                    base.brain[p][k]
                        && base.labels[p].data[k] < 0.5
                        && base.a[p].data[k] > threshold
                })
                .collect()
        })
        .collect())
}

/// Scores of one output slice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eval {
    pub nmae: f64,
    pub psnr: f64,
    pub ssim: f64,
    /// Dice of the best intensity window against the white matter.
    pub dice: f64,
    /// Mean |output - clean| over the lesion pixels (normalised units).
    pub lesion_mae: f64,
}

/// Dice of the best intensity window against the white matter: does the
/// output keep the anatomy's contrast?
pub const WINDOW_DICE: Metric = Metric::new("dice", "Dice", false);
/// Mean |output - clean| over the lesion pixels (normalised units): is the
/// lesion gone?
pub const LESION_MAE: Metric = Metric::new("lesion_mae", "lesion MAE", true);

impl Eval {
    /// The metrics, in [`Eval::values`] order: the paper's three and the
    /// experiment's own two.
    pub const METRICS: [Metric; 5] = [
        Metric::NMAE,
        Metric::PSNR,
        Metric::SSIM,
        WINDOW_DICE,
        LESION_MAE,
    ];

    pub fn values(&self) -> [f64; 5] {
        [self.nmae, self.psnr, self.ssim, self.dice, self.lesion_mae]
    }

    /// `out` against the clean slice `clean`, `tissue` and `lesion` masks.
    pub fn of(out: &Slice, clean: &Slice, tissue: &[bool], lesion: &[bool]) -> Eval {
        let s = SliceScore::compute(0, 0, 0, out, clean);
        let (mut err, mut n) = (0.0, 0usize);
        for k in 0..lesion.len() {
            if lesion[k] {
                err += (out.data[k] - clean.data[k]).abs() as f64;
                n += 1;
            }
        }
        Eval {
            nmae: s.as_ref().map_or(f64::NAN, |s| s.nmae),
            psnr: s.as_ref().map_or(f64::NAN, |s| s.psnr),
            ssim: s.map_or(f64::NAN, |s| s.ssim),
            dice: dice_best_threshold(out, tissue, DICE_BINS).dice,
            lesion_mae: if n > 0 { err / n as f64 } else { f64::NAN },
        }
    }
}

/// One row of the table: a method at one w_c, its runs' per-slice scores.
#[derive(Debug, Clone)]
pub struct Row {
    /// "lesioned input", "clean truth", or a loss.
    pub method: String,
    pub weight: Option<f64>,
    /// Per run (seed), per test slice.
    pub runs: Vec<(u64, Vec<Eval>)>,
}

impl Row {
    /// Mean and std over every slice of every run.
    pub fn summary(&self) -> [(f64, f64); 5] {
        std::array::from_fn(|m| {
            let v: Vec<f64> = self
                .runs
                .iter()
                .flat_map(|r| r.1.iter().map(move |e| e.values()[m]))
                .collect();
            mean_std(&v).unwrap_or((f64::NAN, f64::NAN))
        })
    }

    /// Per slice, the mean over the runs of `seeds`: the values a paired
    /// test compares (both sides over the same seeds).
    pub fn per_slice(&self, m: usize, seeds: &[u64]) -> Vec<f64> {
        let runs: Vec<&Vec<Eval>> = self
            .runs
            .iter()
            .filter(|r| seeds.contains(&r.0))
            .map(|r| &r.1)
            .collect();
        let n = runs.first().map_or(0, |r| r.len());
        (0..n)
            .map(|i| runs.iter().map(|r| r[i].values()[m]).sum::<f64>() / runs.len() as f64)
            .collect()
    }

    fn seeds(&self) -> Vec<u64> {
        self.runs.iter().map(|r| r.0).collect()
    }
}

/// Score the finished runs and write the tables and figures.
pub fn report_many_to_one(cfg: &ManyToOneConfig, report: &mut dyn FnMut(&str)) -> Result<Vec<Row>> {
    let ds = cfg.dataset();
    let test = SliceDataset::open(&ds, "test")?;
    let to_bool = |v: Vec<Slice>| -> Vec<Vec<bool>> {
        v.into_iter()
            .map(|s| s.data.iter().map(|&x| x > 0.5).collect())
            .collect()
    };
    let tissue = to_bool(read_maps(&ds, "test", "tissue")?);
    let lesion = to_bool(read_maps(&ds, "test", "lesion")?);
    let evals = |outs: &[Slice]| -> Vec<Eval> {
        (0..test.len())
            .map(|i| Eval::of(&outs[i], &test.b[i], &tissue[i], &lesion[i]))
            .collect()
    };
    let mut rows = vec![
        Row {
            method: "lesioned input".into(),
            weight: None,
            runs: vec![(0, evals(&test.a))],
        },
        Row {
            method: "clean truth".into(),
            weight: None,
            runs: vec![(0, evals(&test.b))],
        },
    ];
    let mut examples: Vec<(String, Vec<Slice>)> = Vec::new();
    let mut finished = 0;
    let mut steps = 0;
    for &w in &cfg.cycle_weights {
        for loss in CycleLoss::BOTH {
            let mut row = Row {
                method: loss.label().into(),
                weight: Some(w),
                runs: vec![],
            };
            for &seed in &cfg.seeds {
                let dir = cfg.run_dir(loss, w, seed);
                let Some(s) = finished_steps(&dir)? else {
                    continue;
                };
                steps = s;
                finished += 1;
                let (fakes, _) = cfg.score(&dir, &test)?;
                row.runs.push((seed, evals(&fakes)));
                if seed == cfg.seeds[0] {
                    examples.push((format!("{} w_c {w}", loss.label()), fakes));
                }
            }
            if !row.runs.is_empty() {
                rows.push(row);
            }
        }
    }
    if finished == 0 {
        bail!("no finished runs in {} yet", cfg.common.runs.display());
    }
    report(&format!(
        "scored {finished} of {} runs on {} test slices",
        cfg.runs().len(),
        test.len()
    ));
    let dir = &cfg.common.results;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let train = SliceDataset::open(&ds, "train")?.len();
    write_file_atomic(&dir.join("results.csv"), results_csv(&rows).as_bytes())?;
    write_file_atomic(
        &dir.join("per_slice.csv"),
        per_slice_csv(&rows, &test).as_bytes(),
    )?;
    let md = results_markdown(
        cfg,
        &rows,
        (steps, train, test.len()),
        (finished, cfg.runs().len()),
    );
    write_file_atomic(&dir.join("results.md"), md.as_bytes())?;
    report("drawing the figures");
    weights_plot(&dir.join("metrics_vs_weight.png"), cfg, &rows)?;
    example_panel(&dir.join("examples.png"), &test, &lesion, &examples)?;
    if !cfg.tumours.is_empty() {
        tumour_panel(&dir.join("tumours.png"), cfg)?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_losses_differ_only_in_the_cycle_direction() {
        let text =
            "runs = 'r'\nresults = 'o'\n[data]\na = 't1'\nb = 't1'\nmask = 'm'\natlas = 'l'\n";
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        let cfg = <ManyToOneConfig as Experiment>::load(&p).unwrap();
        assert_eq!(cfg.runs().len(), 3 * 2 * 2);
        let c = cfg.train_config(CycleLoss::Symmetric, 0.5, 1).unwrap();
        let mut ac = cfg.train_config(CycleLoss::Asymmetric, 0.5, 1).unwrap();
        assert_eq!(ac.loss.cycle_direction, CycleDirection::TargetOnly);
        assert_eq!(c.loss.cycle_direction, CycleDirection::Both);
        // Identity at half the adversarial weight, as a fraction of w_c.
        assert!((c.loss.identity * c.loss.cycle - 0.5).abs() < 1e-12);
        ac.loss.cycle_direction = CycleDirection::Both;
        ac.out = c.out.clone();
        assert_eq!(ac, c);
    }

    #[test]
    fn outlines_surround_the_mask() {
        // One pixel: four edges.
        let mut m = vec![false; 9];
        m[4] = true;
        assert_eq!(outline(&m, 3).len(), 4);
        // Two neighbours share no edge: six.
        m[5] = true;
        assert_eq!(outline(&m, 3).len(), 6);
    }
}
