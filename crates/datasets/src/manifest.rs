//! The dataset folder's `manifest.json`: where every slice came from and how
//! it was normalised, so results can be traced and mapped back to units.

use crate::{DatasetError, Result};
use medtrans_io::Geometry;
use medtrans_transforms::{IntensityMap, Normalization, SquareFit};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const SPLITS: [&str; 3] = ["train", "val", "test"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub created_by: String,
    pub axis: usize,
    pub size: usize,
    pub min_foreground: f64,
    pub slice_range: Option<(usize, usize)>,
    pub normalization_a: Normalization,
    pub normalization_b: Normalization,
    pub split: SplitSpec,
    pub has_mask: bool,
    pub subjects: Vec<SubjectRecord>,
    /// Subjects left out because their registration failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedSubject>,
    /// Slices of each split, in storage order.
    pub splits: BTreeMap<String, Vec<SliceRef>>,
    /// Where per-slice predictor labels came from, and how many survived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice_labels: Option<SliceLabelSummary>,
}

/// A subject `prepare` left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedSubject {
    pub name: String,
    pub reason: String,
}

/// What became of a labels CSV's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliceLabelSummary {
    pub csv: PathBuf,
    /// Labelled slices stored, of A and of B, over every split.
    pub stored: [usize; 2],
    /// Rows whose slice the range or foreground filter dropped.
    pub dropped: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubjectRecord {
    pub name: String,
    pub a: PathBuf,
    pub b: PathBuf,
    pub mask: Option<PathBuf>,
    /// Grid of the source volumes, for writing results back.
    pub geometry: Geometry,
    /// Fitted intensity maps: `map_b.inverse` turns outputs into B's units.
    pub map_a: IntensityMap,
    pub map_b: IntensityMap,
    /// How each slice was padded and resized to the training size.
    pub fit: SquareFit,
    /// The split of the whole volume, for volume-wise splits.
    pub split: Option<String>,
    /// How A and B were brought onto one grid, when they were not on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment: Option<AlignmentRecord>,
}

/// A subject whose volumes were resampled (and maybe registered) onto one
/// grid: enough to tell how much of it is real data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlignmentRecord {
    /// `a` or `b`: whose grid (or field of view, with `spacing`).
    pub grid: String,
    pub spacing: Option<f64>,
    /// Fraction of the grid inside both fields of view.
    pub overlap: f64,
    pub registration: Option<RegistrationRecord>,
}

/// The registration that placed B on A.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationRecord {
    pub kind: medtrans_registration::TransformKind,
    /// A's world point -> B's world point (mm, RAS+).
    pub b_from_a: [[f64; 4]; 4],
    /// Its rotation (degrees) and how far it moves A's centre of mass
    /// (mm): what `medtrans register` prints.
    pub rotation_deg: f64,
    pub translation_mm: [f64; 3],
    /// Mutual information before (centres aligned) and after.
    pub initial_mi: f64,
    pub final_mi: f64,
    pub converged: bool,
}

/// One stored slice: which subject, which index along the slicing axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceRef {
    pub subject: usize,
    pub index: usize,
}

/// How slices are split. Never by interleaved neighbouring slices: adjacent
/// slices share anatomy, and a test slice next to a training slice would
/// leak it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitMethod {
    /// Each volume is cut into contiguous slabs: train, then val, then test.
    Slab,
    /// Whole volumes go to one split each.
    Volume,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitSpec {
    pub method: SplitMethod,
    /// Fractions for train, val and test; they must sum to 1.
    pub fractions: [f64; 3],
    /// Slices dropped between neighbouring slabs so no two splits touch.
    pub gap: usize,
}

impl Default for SplitSpec {
    fn default() -> Self {
        SplitSpec {
            method: SplitMethod::Slab,
            fractions: [0.7, 0.1, 0.2],
            gap: 2,
        }
    }
}

impl SplitSpec {
    pub fn validate(&self, subjects: usize) -> Result<()> {
        let s: f64 = self.fractions.iter().sum();
        if self.fractions.iter().any(|f| !(0.0..=1.0).contains(f)) || (s - 1.0).abs() > 1e-6 {
            return Err(DatasetError::Invalid(format!(
                "split fractions {:?} must be in 0..1 and sum to 1",
                self.fractions
            )));
        }
        if self.fractions[0] == 0.0 {
            return Err(DatasetError::Invalid(
                "the train fraction must be above 0".into(),
            ));
        }
        if self.method == SplitMethod::Volume {
            let needed = self.fractions.iter().filter(|f| **f > 0.0).count();
            if subjects < needed {
                return Err(DatasetError::Invalid(format!(
                    "a volume-wise split into {needed} parts needs at least {needed} subjects, got {subjects}; use --split slab for a single volume"
                )));
            }
        }
        Ok(())
    }

    fn counts(&self, n: usize) -> [usize; 3] {
        if n == 0 {
            return [0, 0, 0];
        }
        let train = ((n as f64 * self.fractions[0]).round() as usize).clamp(1, n);
        let val = ((n as f64 * self.fractions[1]).round() as usize).min(n - train);
        let test = if self.fractions[2] > 0.0 {
            n - train - val
        } else {
            0
        };
        [train, val, test]
    }

    /// Which split each of `n` volumes goes to (in the given order; every
    /// split with a non-zero fraction gets at least one volume).
    pub fn volume_assignment(&self, n: usize) -> Vec<&'static str> {
        let mut c = self.counts(n);
        for k in 1..3 {
            if self.fractions[k] > 0.0 && c[k] == 0 && c[0] > 1 {
                c[0] -= 1;
                c[k] = 1;
            }
        }
        (0..3)
            .flat_map(|k| std::iter::repeat_n(SPLITS[k], c[k]))
            .collect()
    }

    /// Contiguous index ranges of `n` ordered slices, with `gap` slices left
    /// out between consecutive non-empty slabs.
    pub fn slab_ranges(&self, n: usize) -> Vec<(&'static str, Range<usize>)> {
        let c = self.counts(n);
        let mut out = Vec::new();
        let mut start = 0;
        for k in 0..3 {
            if c[k] == 0 {
                continue;
            }
            let begin = if out.is_empty() {
                start
            } else {
                (start + self.gap).min(start + c[k])
            };
            out.push((SPLITS[k], begin..start + c[k]));
            start += c[k];
        }
        out
    }
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|e| DatasetError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        serde_json::from_str(&text).map_err(|e| DatasetError::Volume {
            path: path.to_path_buf(),
            msg: format!("not a medtrans manifest: {e}"),
        })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("manifest serialises");
        // Written last by `prepare`, atomically: a dataset whose manifest
        // exists is complete.
        Ok(medtrans_io::write_file_atomic(path, text.as_bytes())?)
    }
}
