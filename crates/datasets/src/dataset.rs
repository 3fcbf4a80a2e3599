use crate::manifest::{Manifest, SliceRef, MANIFEST_FILE};
use crate::slice_labels::SLICE_LABEL_FILES;
use crate::{DatasetError, Result};
use medtrans_io::{list_files, read_npy, Slice};
use medtrans_transforms::{
    affine_warp, affine_warp_labels, check_finite, MisalignParams, MisalignRange, MAX_NOISE_LEVEL,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How B is chosen for A.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pairing {
    /// B is the slice aligned with A (before noise).
    #[default]
    Paired,
    /// B comes from another volume when the split has several, else from
    /// another slice: the CycleGAN setting, nothing corresponds.
    Unpaired,
}

/// Options applied on the fly when a pair is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PairOptions {
    /// The RegGAN paper's misalignment noise level, 0..=5.
    pub noise_level: u32,
    /// A misalignment range of its own instead of the level's (the
    /// paper's Table 1 uses `MisalignRange::TABLE1`).
    pub misalign: Option<MisalignRange>,
    pub pairing: Pairing,
    pub seed: u64,
}

/// One training example.
#[derive(Debug, Clone)]
pub struct Pair {
    /// Source image, with its own random affine at noise level > 0.
    pub a: Slice,
    /// Target image as the model sees it (noisy, maybe unpaired).
    pub b: Slice,
    /// The untouched target aligned with the untouched A: ground truth for metrics.
    pub b_aligned: Slice,
    pub a_aligned: Slice,
    pub noise_a: MisalignParams,
    pub noise_b: MisalignParams,
    /// Index of the slice B was taken from.
    pub b_index: usize,
    /// A's and B's label maps, moved with their images, where the split
    /// has them (`A_labels.npy`, `B_labels.npy`).
    pub a_labels: Option<Slice>,
    pub b_labels: Option<Slice>,
    /// A's and B's per-slice predictor labels, where the slice has one.
    pub a_slice_label: Option<f32>,
    pub b_slice_label: Option<f32>,
}

/// One split of a dataset, held in memory.
#[derive(Debug, Clone)]
pub struct SliceDataset {
    pub a: Vec<Slice>,
    pub b: Vec<Slice>,
    pub mask: Option<Vec<Slice>>,
    /// Per-pixel class labels of A's and B's slices (integers as floats),
    /// for the shape-consistency loss: `A_labels.npy` and `B_labels.npy`
    /// beside `A.npy` in a prepared split.
    pub labels_a: Option<Vec<Slice>>,
    pub labels_b: Option<Vec<Slice>>,
    /// Per-slice predictor labels of A's and B's slices (NaN: none), from
    /// `A_slice_labels.npy` and `B_slice_labels.npy`.
    pub slice_labels_a: Option<Vec<f32>>,
    pub slice_labels_b: Option<Vec<f32>>,
    /// Source of each slice, for prepared datasets.
    pub refs: Option<Vec<SliceRef>>,
    pub manifest: Option<Manifest>,
    pub root: PathBuf,
    pub split: String,
}

fn slice_label(labels: &Option<Vec<f32>>, i: usize) -> Option<f32> {
    labels.as_ref().map(|l| l[i]).filter(|v| !v.is_nan())
}

/// The first `<split>*` folder of `root` holding an `A/` folder.
fn split_dir(root: &Path, split: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(split))
                && p.join("A").is_dir()
        })
        .collect();
    dirs.sort();
    dirs.into_iter().next()
}

fn load_stack(path: &Path) -> Result<Vec<Slice>> {
    let arr = read_npy(path)?;
    let slices = arr.into_slices(path)?;
    for s in &slices {
        check_slice(path, s)?;
    }
    Ok(slices)
}

fn check_slice(path: &Path, s: &Slice) -> Result<()> {
    check_finite(&s.data).map_err(|e| DatasetError::Volume {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    if let Some(v) = s.data.iter().find(|v| v.abs() > 1.001) {
        return Err(DatasetError::Volume {
            path: path.to_path_buf(),
            msg: format!("holds {v}, outside [-1, 1]: slices must be normalised (medtrans prepare does this)"),
        });
    }
    Ok(())
}

impl SliceDataset {
    /// Open split `split` of a dataset folder made by `medtrans prepare`, or a
    /// RegGAN-style folder: `DIR/A` and `DIR/B` of `.npy` slices paired by
    /// sorted name (or `DIR/<split>*/A` and `.../B`, e.g. `train2D`, `val2D`).
    pub fn open(root: &Path, split: &str) -> Result<SliceDataset> {
        if root.join(MANIFEST_FILE).is_file() {
            return Self::open_prepared(root, split);
        }
        if root.join("A").is_dir() && root.join("B").is_dir() {
            return Self::open_reggan(root, root, split);
        }
        if let Some(d) = split_dir(root, split) {
            return Self::open_reggan(root, &d, split);
        }
        Err(DatasetError::Volume {
            path: root.to_path_buf(),
            msg: format!(
                "not a dataset: no {MANIFEST_FILE} (run `medtrans prepare`), no A/ and B/ folders of .npy slices, and no {split}*/A folder"
            ),
        })
    }

    /// Whether `root` holds a separate `split`: a non-empty split in a
    /// prepared dataset's manifest, or a `<split>*/A` folder. RegGAN's flat
    /// A/ B/ layout has no separate splits.
    pub fn has_split(root: &Path, split: &str) -> bool {
        if root.join(MANIFEST_FILE).is_file() {
            return Manifest::load(&root.join(MANIFEST_FILE))
                .is_ok_and(|m| m.splits.get(split).is_some_and(|s| !s.is_empty()));
        }
        split_dir(root, split).is_some()
    }

    fn open_prepared(root: &Path, split: &str) -> Result<SliceDataset> {
        let manifest = Manifest::load(&root.join(MANIFEST_FILE))?;
        let refs = manifest.splits.get(split).cloned().unwrap_or_default();
        if refs.is_empty() {
            return Err(DatasetError::Volume {
                path: root.to_path_buf(),
                msg: format!(
                    "split '{split}' is empty; this dataset has {}",
                    manifest
                        .splits
                        .iter()
                        .map(|(k, v)| format!("{k}: {} slices", v.len()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let dir = root.join(split);
        let a = load_stack(&dir.join("A.npy"))?;
        let b = load_stack(&dir.join("B.npy"))?;
        let mask = if manifest.has_mask {
            let p = dir.join("mask.npy");
            Some(read_npy(&p)?.into_slices(&p)?)
        } else {
            None
        };
        let labels = |name: &str| -> Result<Option<Vec<Slice>>> {
            let p = dir.join(name);
            if !p.is_file() {
                return Ok(None);
            }
            let l = read_npy(&p)?.into_slices(&p)?;
            if (l[0].width, l[0].height) != (a[0].width, a[0].height) {
                return Err(DatasetError::Volume {
                    path: p,
                    msg: format!(
                        "label maps are {}x{} but the images {}x{}",
                        l[0].height, l[0].width, a[0].height, a[0].width
                    ),
                });
            }
            if let Some(v) = l
                .iter()
                .flat_map(|s| &s.data)
                .find(|v| !(**v >= 0.0 && v.fract() == 0.0))
            {
                return Err(DatasetError::Volume {
                    path: p,
                    msg: format!("holds {v}; label maps hold class numbers 0, 1, 2, ..."),
                });
            }
            Ok(Some(l))
        };
        let (labels_a, labels_b) = (labels("A_labels.npy")?, labels("B_labels.npy")?);
        let slice_labels = |name: &str| -> Result<Option<Vec<f32>>> {
            let p = dir.join(name);
            if !p.is_file() {
                return Ok(None);
            }
            let arr = read_npy(&p)?;
            if arr.shape != [refs.len()] {
                return Err(DatasetError::Volume {
                    path: p,
                    msg: format!(
                        "has shape {:?}; expected one label per slice, [{}]",
                        arr.shape,
                        refs.len()
                    ),
                });
            }
            if let Some(v) = arr.data.iter().find(|v| v.is_infinite()) {
                return Err(DatasetError::Volume {
                    path: p,
                    msg: format!("holds {v}; labels are finite (NaN marks an unlabelled slice)"),
                });
            }
            Ok(Some(arr.data))
        };
        let slice_labels_a = slice_labels(SLICE_LABEL_FILES[0])?;
        let slice_labels_b = slice_labels(SLICE_LABEL_FILES[1])?;
        if a.len() != refs.len()
            || b.len() != refs.len()
            || mask.as_ref().is_some_and(|m| m.len() != refs.len())
            || labels_a.as_ref().is_some_and(|m| m.len() != refs.len())
            || labels_b.as_ref().is_some_and(|m| m.len() != refs.len())
        {
            return Err(DatasetError::Volume {
                path: dir,
                msg: format!(
                    "the manifest lists {} slices but the stored arrays differ",
                    refs.len()
                ),
            });
        }
        Ok(SliceDataset {
            a,
            b,
            mask,
            labels_a,
            labels_b,
            slice_labels_a,
            slice_labels_b,
            refs: Some(refs),
            manifest: Some(manifest),
            root: root.to_path_buf(),
            split: split.to_string(),
        })
    }

    fn open_reggan(root: &Path, dir: &Path, split: &str) -> Result<SliceDataset> {
        let read_side = |side: &str| -> Result<Vec<Slice>> {
            let d = dir.join(side);
            let files: Vec<PathBuf> = list_files(&d)?
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")))
                .collect();
            if files.is_empty() {
                return Err(DatasetError::Volume {
                    path: d,
                    msg: "holds no .npy slices".into(),
                });
            }
            let mut out = Vec::with_capacity(files.len());
            for f in &files {
                let mut s = read_npy(f)?.into_slices(f)?;
                if s.len() != 1 {
                    return Err(DatasetError::Volume {
                        path: f.clone(),
                        msg: "expected one 2-D slice per file".into(),
                    });
                }
                let s = s.remove(0);
                check_slice(f, &s)?;
                if let Some(first) = out.first() {
                    let first: &Slice = first;
                    if (first.width, first.height) != (s.width, s.height) {
                        return Err(DatasetError::Volume {
                            path: f.clone(),
                            msg: format!(
                                "is {}x{} but {} is {}x{}",
                                s.height,
                                s.width,
                                files[0].display(),
                                first.height,
                                first.width
                            ),
                        });
                    }
                }
                out.push(s);
            }
            Ok(out)
        };
        let a = read_side("A")?;
        let b = read_side("B")?;
        if a.len() != b.len() {
            return Err(DatasetError::Mismatch(format!(
                "{}: A/ holds {} slices but B/ holds {}; RegGAN pairs them by sorted name, so the counts must match",
                dir.display(),
                a.len(),
                b.len()
            )));
        }
        if (a[0].width, a[0].height) != (b[0].width, b[0].height) {
            return Err(DatasetError::Mismatch(format!(
                "{}: A slices are {}x{} but B slices are {}x{}",
                dir.display(),
                a[0].height,
                a[0].width,
                b[0].height,
                b[0].width
            )));
        }
        Ok(SliceDataset {
            a,
            b,
            mask: None,
            labels_a: None,
            labels_b: None,
            slice_labels_a: None,
            slice_labels_b: None,
            refs: None,
            manifest: None,
            root: root.to_path_buf(),
            split: split.into(),
        })
    }

    pub fn len(&self) -> usize {
        self.a.len()
    }

    pub fn is_empty(&self) -> bool {
        self.a.is_empty()
    }

    /// Side length of the (square or not) slices.
    pub fn dims(&self) -> (usize, usize) {
        (self.a[0].width, self.a[0].height)
    }

    /// Draw pair `i` for `epoch`. Deterministic in (options.seed, epoch, i):
    /// rerunning a training run replays the same noise.
    pub fn pair(&self, i: usize, epoch: u64, opts: &PairOptions) -> Pair {
        assert!(
            opts.noise_level <= MAX_NOISE_LEVEL,
            "noise level above {MAX_NOISE_LEVEL}"
        );
        let mut rng = crate::seeds::pair_rng(opts.seed, epoch, i as u64);
        let b_index = match opts.pairing {
            Pairing::Paired => i,
            Pairing::Unpaired => self.unpaired_index(i, &mut rng),
        };
        let (w, h) = (self.a[i].width, self.a[i].height);
        let range = opts
            .misalign
            .unwrap_or_else(|| MisalignRange::level(opts.noise_level));
        let noise_a = MisalignParams::sample_in(&range, w, h, &mut rng);
        let noise_b = MisalignParams::sample_in(&range, w, h, &mut rng);
        Pair {
            a: affine_warp(&self.a[i], &noise_a, -1.0),
            b: affine_warp(&self.b[b_index], &noise_b, -1.0),
            b_aligned: self.b[i].clone(),
            a_aligned: self.a[i].clone(),
            a_labels: self
                .labels_a
                .as_ref()
                .map(|l| affine_warp_labels(&l[i], &noise_a, 0.0)),
            b_labels: self
                .labels_b
                .as_ref()
                .map(|l| affine_warp_labels(&l[b_index], &noise_b, 0.0)),
            a_slice_label: slice_label(&self.slice_labels_a, i),
            b_slice_label: slice_label(&self.slice_labels_b, b_index),
            noise_a,
            noise_b,
            b_index,
        }
    }

    fn unpaired_index(&self, i: usize, rng: &mut ChaCha8Rng) -> usize {
        let n = self.len();
        if n < 2 {
            return i;
        }
        if let Some(refs) = &self.refs {
            let others: Vec<usize> = (0..n)
                .filter(|&j| refs[j].subject != refs[i].subject)
                .collect();
            if !others.is_empty() {
                return others[rng.random_range(0..others.len())];
            }
        }
        let j = rng.random_range(0..n - 1);
        if j >= i {
            j + 1
        } else {
            j
        }
    }
}
