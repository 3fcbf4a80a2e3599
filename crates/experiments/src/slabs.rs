//! Datasets cut from one co-registered subject with an atlas (ICBM152 and
//! CerebrA), for experiments whose domains are different slabs of it: the
//! many-to-one and shape experiments train on an A slab and an unrelated B
//! slab (unpaired by construction), and test on a third slab whose aligned
//! pair is the ground truth.
//!
//! Slices go through `medtrans prepare` once, the atlas as A's label map, so
//! normalisation, masking and the square fit are the ones `translate` uses
//! and labels are fitted by nearest neighbour.
use anyhow::{bail, Context, Result};
use medtrans_datasets::{
    prepare, Manifest, PrepareSpec, SliceRef, SplitSpec, SubjectSpec, MANIFEST_FILE,
    SLICE_LABEL_FILES,
};
use medtrans_io::{read_npy, write_npy, Slice};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One subject's co-registered volumes, brain mask and label atlas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtlasSource {
    /// Domain A's contrast.
    pub a: PathBuf,
    /// Domain B's contrast (the same file as `a` for within-contrast tasks).
    pub b: PathBuf,
    pub mask: PathBuf,
    /// Integer labels on the same grid (CerebrA).
    pub atlas: PathBuf,
    #[serde(default = "default_size")]
    pub size: usize,
    /// Slicing axis (2: axial).
    #[serde(default = "default_axis")]
    pub axis: usize,
}

fn default_size() -> usize {
    64
}
fn default_axis() -> usize {
    2
}

/// Every kept slice of the subject, model-sized, in slice order.
pub struct AtlasSlices {
    /// The manifest of the one-split preparation: normalisation and fit.
    pub manifest: Manifest,
    pub a: Vec<Slice>,
    pub b: Vec<Slice>,
    pub brain: Vec<Vec<bool>>,
    /// Atlas labels per pixel (0 outside every structure).
    pub labels: Vec<Slice>,
    /// Each slice's index along the axis in the volume.
    pub index: Vec<usize>,
}

impl AtlasSlices {
    /// Prepare the subject, atlas as A's labels, into `dir` (once; a later
    /// call reads it back).
    pub fn load(src: &AtlasSource, dir: &Path) -> Result<Self> {
        if !dir.join(MANIFEST_FILE).is_file() {
            let mut spec = PrepareSpec::new(
                vec![SubjectSpec {
                    a: src.a.clone(),
                    b: src.b.clone(),
                    mask: Some(src.mask.clone()),
                    labels_a: Some(src.atlas.clone()),
                    ..Default::default()
                }],
                dir,
            );
            spec.size = src.size;
            spec.axis = src.axis;
            spec.min_foreground = 0.1;
            spec.split = SplitSpec {
                fractions: [1.0, 0.0, 0.0],
                gap: 0,
                ..SplitSpec::default()
            };
            prepare(&spec, &mut |_, _, _| {})?;
        }
        let manifest = Manifest::load(&dir.join(MANIFEST_FILE))?;
        let refs = manifest.splits.get("train").cloned().unwrap_or_default();
        let stack = |name: &str| -> Result<Vec<Slice>> {
            let p = dir.join("train").join(name);
            Ok(read_npy(&p)?.into_slices(&p)?)
        };
        let (a, b) = (stack("A.npy")?, stack("B.npy")?);
        let brain = stack("mask.npy")?
            .into_iter()
            .map(|m| m.data.iter().map(|&v| v > 0.5).collect())
            .collect();
        let labels = stack("A_labels.npy")?;
        Ok(AtlasSlices {
            index: refs.iter().map(|r| r.index).collect(),
            manifest,
            a,
            b,
            brain,
            labels,
        })
    }

    pub fn len(&self) -> usize {
        self.a.len()
    }

    pub fn is_empty(&self) -> bool {
        self.a.is_empty()
    }
}

/// Contiguous slabs of `n` ordered slices with the given fractions, `gap`
/// slices dropped between neighbours so that no two slabs share anatomy.
pub fn slabs(n: usize, fractions: &[f64], gap: usize) -> Result<Vec<Range<usize>>> {
    let usable = n.saturating_sub(gap * fractions.len().saturating_sub(1));
    let total: f64 = fractions.iter().sum();
    let mut out = Vec::with_capacity(fractions.len());
    let mut start = 0;
    for f in fractions {
        let len = (usable as f64 * f / total).floor() as usize;
        if len == 0 {
            bail!("{n} slices are too few for {} slabs", fractions.len());
        }
        out.push(start..start + len);
        start += len + gap;
    }
    Ok(out)
}

/// Two sets of alternating blocks of `block` slices from `range`, `gap`
/// slices dropped between blocks: two domains with the same anatomical
/// spread that share no slice (nor a neighbour).
pub fn interleaved(range: Range<usize>, block: usize, gap: usize) -> (Vec<usize>, Vec<usize>) {
    let (mut first, mut second) = (Vec::new(), Vec::new());
    let mut start = range.start;
    let mut k = 0;
    while start < range.end {
        let end = (start + block).min(range.end);
        if k % 2 == 0 {
            first.extend(start..end);
        } else {
            second.extend(start..end);
        }
        start = end + gap;
        k += 1;
    }
    (first, second)
}

/// One split's arrays: A and B images (same count), the brain mask, and
/// extra per-slice label or mask maps stored as `NAME.npy` (u8).
#[derive(Default)]
pub struct SplitArrays {
    /// Positions in [`AtlasSlices`] of the A slices (the split's provenance).
    pub positions: Vec<usize>,
    pub a: Vec<Slice>,
    pub b: Vec<Slice>,
    pub mask: Vec<Vec<bool>>,
    pub extra: Vec<(String, Vec<Slice>)>,
    /// Per-slice predictor labels of A and B (NaN: unlabelled), stored as
    /// `A_slice_labels.npy` and `B_slice_labels.npy`.
    pub slice_labels: [Option<Vec<f32>>; 2],
}

/// Write a dataset `medtrans train` reads: `manifest.json` (the base
/// preparation's, with these splits) and per split `A.npy`, `B.npy`,
/// `mask.npy` and the extras. Written once: an existing dataset is kept.
pub fn write_dataset(dir: &Path, base: &AtlasSlices, splits: &[(&str, SplitArrays)]) -> Result<()> {
    if dir.join(MANIFEST_FILE).is_file() {
        return Ok(());
    }
    let n = base.manifest.size;
    let mut manifest = base.manifest.clone();
    manifest.splits.clear();
    for (name, s) in splits {
        if s.a.len() != s.b.len() || s.a.len() != s.mask.len() || s.a.is_empty() {
            bail!("split {name}: A, B and mask must hold the same, non-zero number of slices");
        }
        let d = dir.join(name);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        let shape = [s.a.len(), n, n];
        let flat = |v: &[Slice]| {
            v.iter()
                .flat_map(|s| s.data.iter().copied())
                .collect::<Vec<f32>>()
        };
        write_npy(&d.join("A.npy"), &shape, &flat(&s.a))?;
        write_npy(&d.join("B.npy"), &shape, &flat(&s.b))?;
        let m: Vec<u8> = s.mask.iter().flatten().map(|&k| k as u8).collect();
        write_npy(&d.join("mask.npy"), &shape, &m)?;
        for (file, maps) in &s.extra {
            let v: Vec<u8> = maps
                .iter()
                .flat_map(|s| s.data.iter().map(|&x| x.round().clamp(0.0, 255.0) as u8))
                .collect();
            write_npy(&d.join(format!("{file}.npy")), &shape, &v)?;
        }
        for (file, labels) in SLICE_LABEL_FILES.iter().zip(&s.slice_labels) {
            if let Some(l) = labels {
                if l.len() != s.a.len() {
                    bail!(
                        "split {name}: {} slice labels for {} slices",
                        l.len(),
                        s.a.len()
                    );
                }
                write_npy(&d.join(file), &[l.len()], l)?;
            }
        }
        manifest.splits.insert(
            name.to_string(),
            s.positions
                .iter()
                .map(|&p| SliceRef {
                    subject: 0,
                    index: base.index[p],
                })
                .collect(),
        );
    }
    manifest.has_mask = true;
    // Last: a dataset whose manifest exists is complete.
    manifest.save(&dir.join(MANIFEST_FILE))?;
    Ok(())
}

/// The settings an experiment's dataset was built from, kept beside it
/// (`settings.toml`) so that a later run with other settings does not
/// silently reuse it. `Ok(true)`: the dataset exists and matches (or
/// predates the record); `Ok(false)`: build it, then [`record_settings`].
pub fn reuse_dataset(dir: &Path, settings: &str) -> Result<bool> {
    if !dir.join(MANIFEST_FILE).is_file() {
        return Ok(false);
    }
    let path = dir.join("settings.toml");
    match std::fs::read_to_string(&path) {
        Ok(old) if old != settings => bail!(
            "{} was built with other data or lesion settings than this config's \
             (see {}); use a new `runs` folder, or delete the dataset and its runs",
            dir.display(),
            path.display()
        ),
        _ => Ok(true),
    }
}

/// Record the settings a dataset was built from.
pub fn record_settings(dir: &Path, settings: &str) -> Result<()> {
    Ok(medtrans_io::write_file_atomic(
        &dir.join("settings.toml"),
        settings.as_bytes(),
    )?)
}

/// A stored per-slice map of a split (`NAME.npy`), as slices.
pub fn read_maps(dataset: &Path, split: &str, name: &str) -> Result<Vec<Slice>> {
    let p = dataset.join(split).join(format!("{name}.npy"));
    Ok(read_npy(&p)?.into_slices(&p)?)
}

/// A boolean mask as a 0/1 slice.
pub fn mask_slice(m: &[bool], width: usize) -> Slice {
    Slice::new(
        m.iter().map(|&k| k as u8 as f32).collect(),
        width,
        m.len() / width,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slabs_are_disjoint_ordered_and_gapped() {
        let s = slabs(100, &[0.35, 0.15, 0.35, 0.15], 3).unwrap();
        assert_eq!(s.len(), 4);
        for w in s.windows(2) {
            assert_eq!(w[1].start, w[0].end + 3);
        }
        assert!(s[3].end <= 100);
        assert_eq!(s[0].len(), s[2].len());
        assert_eq!(slabs(5, &[0.5, 0.5], 3).unwrap(), vec![0..1, 4..5]);
        assert!(slabs(4, &[0.5, 0.5], 3).is_err());
    }

    #[test]
    fn a_dataset_built_with_other_settings_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(!reuse_dataset(d, "a = 1").unwrap(), "nothing built yet");
        std::fs::write(d.join(MANIFEST_FILE), "{}").unwrap();
        assert!(
            reuse_dataset(d, "a = 1").unwrap(),
            "a dataset from before the record"
        );
        record_settings(d, "a = 1").unwrap();
        assert!(reuse_dataset(d, "a = 1").unwrap());
        let e = reuse_dataset(d, "a = 2").unwrap_err().to_string();
        assert!(
            e.contains("settings.toml") && e.contains("other data"),
            "{e}"
        );
    }

    #[test]
    fn interleaved_blocks_alternate_with_gaps() {
        let (a, b) = interleaved(10..24, 3, 1);
        assert_eq!(a, vec![10, 11, 12, 18, 19, 20]);
        assert_eq!(b, vec![14, 15, 16, 22, 23]);
    }
}
