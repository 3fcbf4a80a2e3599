//! Scores in the target's own units and on whole volumes: what `evaluate
//! --units target` and `evaluate --volume` add to the paper's per-slice
//! metrics. For MR -> synthetic CT this is how the SynthRAD challenge
//! scores: MAE and PSNR in HU inside a (dilated) body mask, PSNR over a
//! fixed range, SSIM and MS-SSIM, per patient volume.
use anyhow::{bail, Result};
use medtrans_datasets::SliceDataset;
use medtrans_io::Slice;
use medtrans_metrics::{dilate, format_p, mean_std, wilcoxon_signed_rank, UnitRange, UnitScores};
use std::fmt::Write as _;

/// Which intensities the scores are computed on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Units {
    /// The normalised [-1, 1] slices the model sees (range -1..1).
    Normalised,
    /// The target volume's own units (HU for CT): each slice mapped back
    /// through its volume's intensity window, scored over `range`.
    Target(UnitRange),
}

impl Units {
    fn range(&self) -> UnitRange {
        match self {
            Units::Normalised => UnitRange {
                low: -1.0,
                high: 1.0,
            },
            Units::Target(r) => *r,
        }
    }

    /// The unit's name in table headings.
    pub fn label(&self) -> String {
        match self {
            Units::Normalised => "normalised [-1, 1]".into(),
            Units::Target(r) => format!("target units, range {} to {}", r.low, r.high),
        }
    }
}

/// How to score: units, and how far to grow the mask.
#[derive(Debug, Clone, Copy)]
pub struct UnitOptions {
    pub units: Units,
    /// Pixels (voxels, for volumes) to dilate the mask by.
    pub dilate: usize,
}

/// One slice's (or volume's) scores in units.
#[derive(Debug, Clone)]
pub struct UnitScore {
    pub subject: usize,
    /// Slice index in its volume; for a volume, its number of slices.
    pub slice: usize,
    pub scores: UnitScores,
}

/// One slice in the units it is scored in, with its scoring mask.
#[derive(Debug, Clone)]
pub struct UnitSlice {
    pub subject: usize,
    /// Its index in its volume.
    pub slice: usize,
    pub fake: Slice,
    pub real: Slice,
    pub mask: Vec<bool>,
}

/// The split's images in `units`, and each slice's scoring mask (the
/// dataset's mask, else the paper's foreground: target != -1): made once,
/// scored per slice ([`unit_scores`]) and per volume ([`volume_scores`]).
pub fn in_units(ds: &SliceDataset, fakes: &[Slice], units: Units) -> Result<Vec<UnitSlice>> {
    let refs = ds.refs.clone().unwrap_or_default();
    if let Units::Target(_) = units {
        if ds.manifest.is_none() || refs.len() != ds.len() {
            bail!(
                "{}: scores in target units need a dataset made by `medtrans prepare`, whose manifest records each volume's intensity window",
                ds.root.display()
            );
        }
    }
    let mut out = Vec::with_capacity(fakes.len());
    for (i, (fake, real)) in fakes.iter().zip(&ds.b).enumerate() {
        let (subject, slice) = refs.get(i).map_or((0, i), |r| (r.subject, r.index));
        let mask: Vec<bool> = match &ds.mask {
            Some(m) => m[i].data.iter().map(|&v| v > 0.5).collect(),
            None => real.data.iter().map(|&v| v != -1.0).collect(),
        };
        let (mut fake, mut real) = (fake.clone(), real.clone());
        if let Units::Target(_) = units {
            let map = &ds.manifest.as_ref().expect("checked above").subjects[subject].map_b;
            map.invert(&mut fake.data);
            map.invert(&mut real.data);
        }
        out.push(UnitSlice {
            subject,
            slice,
            fake,
            real,
            mask,
        });
    }
    Ok(out)
}

/// Per-slice scores; slices with an empty mask are left out.
pub fn unit_scores(slices: &[UnitSlice], opts: UnitOptions) -> Vec<UnitScore> {
    let range = opts.units.range();
    slices
        .iter()
        .filter_map(|s| {
            let dims = [s.real.height, s.real.width];
            let mask = dilate(&s.mask, &dims, opts.dilate);
            UnitScores::compute(&s.fake.data, &s.real.data, &mask, &dims, range).map(|scores| {
                UnitScore {
                    subject: s.subject,
                    slice: s.slice,
                    scores,
                }
            })
        })
        .collect()
}

/// Whole-volume scores: each subject's slices of the split stacked in slice
/// order (a slab, or the whole volume with per-subject splits) and scored
/// in 3-D: MAE and PSNR over every masked voxel, SSIM with a 7x7x7 window,
/// MS-SSIM where the slices are large enough. `slice` holds the count.
pub fn volume_scores(slices: &[UnitSlice], opts: UnitOptions) -> Vec<UnitScore> {
    let range = opts.units.range();
    let mut items: Vec<&UnitSlice> = slices.iter().collect();
    items.sort_by_key(|s| (s.subject, s.slice));
    items
        .chunk_by(|a, b| a.subject == b.subject)
        .filter_map(|group| {
            let (h, w) = (group[0].real.height, group[0].real.width);
            let dims = [group.len(), h, w];
            let f: Vec<f32> = group
                .iter()
                .flat_map(|s| s.fake.data.iter().copied())
                .collect();
            let r: Vec<f32> = group
                .iter()
                .flat_map(|s| s.real.data.iter().copied())
                .collect();
            let mask: Vec<bool> = group.iter().flat_map(|s| s.mask.iter().copied()).collect();
            let mask = dilate(&mask, &dims, opts.dilate);
            // A slab thinner than SSIM's 7-voxel window has no 3-D score.
            UnitScores::compute(&f, &r, &mask, &dims, range).map(|scores| UnitScore {
                subject: group[0].subject,
                slice: group.len(),
                scores,
            })
        })
        .collect()
}

fn metric_values(s: &[UnitScore], k: usize) -> Vec<f64> {
    s.iter()
        .filter_map(|u| match k {
            0 => Some(u.scores.mae),
            1 => Some(u.scores.psnr),
            2 => Some(u.scores.ssim),
            _ => u.scores.ms_ssim,
        })
        .collect()
}

const HEADS: [&str; 4] = ["MAE", "PSNR (dB)", "SSIM", "MS-SSIM"];

/// Per-row CSV: `model,subject,slice|slices,mae,psnr,ssim,ms_ssim` (empty
/// MS-SSIM where it is undefined).
pub fn unit_csv(
    names: &[String],
    scores: &[Vec<UnitScore>],
    subject_name: &dyn Fn(usize) -> String,
    volumes: bool,
) -> String {
    let third = if volumes { "slices" } else { "slice" };
    let mut csv = format!("model,subject,{third},mae,psnr,ssim,ms_ssim\n");
    for (name, sc) in names.iter().zip(scores) {
        for s in sc {
            let ms = s
                .scores
                .ms_ssim
                .map_or(String::new(), |v| format!("{v:.6}"));
            let _ = writeln!(
                csv,
                "{name},{},{},{:.6},{:.4},{:.6},{ms}",
                subject_name(s.subject),
                s.slice,
                s.scores.mae,
                s.scores.psnr,
                s.scores.ssim
            );
        }
    }
    csv
}

/// Markdown: mean +- std per model over the rows (slices or volumes), and
/// with two models a paired Wilcoxon row over the rows both scored. The
/// unit of analysis is named in the heading: slices of one volume are not
/// independent samples.
pub fn unit_table(names: &[String], scores: &[Vec<UnitScore>], unit: &str) -> String {
    let mut md = format!(
        "| model | {unit} | {} |\n|---|---|---|---|---|---|\n",
        HEADS.join(" | ")
    );
    for (name, sc) in names.iter().zip(scores) {
        let cells: Vec<String> = (0..4)
            .map(|k| {
                let v = metric_values(sc, k);
                let d = if k == 1 { 2 } else { 4 };
                match mean_std(&v) {
                    Some((m, s)) if v.len() == sc.len() => format!("{m:.d$} +- {s:.d$}"),
                    Some((m, s)) => format!("{m:.d$} +- {s:.d$} ({} of {})", v.len(), sc.len()),
                    None => "n/a".into(),
                }
            })
            .collect();
        let _ = writeln!(md, "| {name} | {} | {} |", sc.len(), cells.join(" | "));
    }
    if scores.len() == 2 {
        let pairs: Vec<(&UnitScore, &UnitScore)> = scores[0]
            .iter()
            .filter_map(|a| {
                scores[1]
                    .iter()
                    .find(|b| b.subject == a.subject && b.slice == a.slice)
                    .map(|b| (a, b))
            })
            .collect();
        let (a, b): (Vec<UnitScore>, Vec<UnitScore>) = pairs
            .iter()
            .map(|(x, y)| ((*x).clone(), (*y).clone()))
            .unzip();
        let cells: Vec<String> = (0..4)
            .map(|k| {
                let (va, vb) = (metric_values(&a, k), metric_values(&b, k));
                if va.len() != vb.len() {
                    return "n/a".into();
                }
                wilcoxon_signed_rank(&va, &vb).map_or("n/a".into(), |w| format_p(w.p_value))
            })
            .collect();
        let _ = writeln!(
            md,
            "| Wilcoxon (paired over {unit}) | {} | {} |",
            pairs.len(),
            cells.join(" | ")
        );
    }
    md
}
