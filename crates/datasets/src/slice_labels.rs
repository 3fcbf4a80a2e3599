//! Per-slice labels for a predictor (a class or a measurement per slice,
//! e.g. the lateral-ventricle area in mm²), read from a CSV the user
//! writes by hand or from a spreadsheet:
//!
//! ```text
//! volume,slice,label
//! t1_subject1.nii.gz,96,1543.5
//! ct_subject7.nii.gz,40,0
//! ```
//!
//! `volume` names one of the preparation's A or B volumes (a path relative
//! to the CSV, or a file name that only one input has), `slice` the index
//! along the slicing axis in that volume. A label belongs to the side of
//! the volume it names: rows naming A's volume label A's slices, those
//! naming B's label B's. Prepared splits store them as
//! `A_slice_labels.npy` and `B_slice_labels.npy` (f32, one per slice, NaN
//! where a slice has no label).
use crate::{DatasetError, Result};
use std::path::{Path, PathBuf};

/// File names of the stored per-slice labels of A and B in a split.
pub const SLICE_LABEL_FILES: [&str; 2] = ["A_slice_labels.npy", "B_slice_labels.npy"];

/// One CSV row.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceLabelRow {
    /// 1-based line in the CSV, for error messages.
    pub line: usize,
    pub volume: String,
    pub slice: usize,
    pub label: f32,
}

/// A parsed labels CSV.
#[derive(Debug, Clone)]
pub struct SliceLabelTable {
    pub path: PathBuf,
    pub rows: Vec<SliceLabelRow>,
}

fn bad(path: &Path, line: usize, msg: impl std::fmt::Display) -> DatasetError {
    DatasetError::Volume {
        path: path.to_path_buf(),
        msg: format!("line {line}: {msg}"),
    }
}

impl SliceLabelTable {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DatasetError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        Self::parse(path, &text)
    }

    /// Parse CSV text: an optional header (`volume,slice,label`), `#`
    /// comments and blank lines are skipped; anything else must be a
    /// well-formed row, or the whole file is refused by line number.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let mut rows: Vec<SliceLabelRow> = Vec::new();
        for (k, raw) in text.lines().enumerate() {
            let line = k + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let cells: Vec<&str> = l.split(',').map(|c| c.trim().trim_matches('"')).collect();
            if rows.is_empty()
                && cells
                    .first()
                    .is_some_and(|c| c.eq_ignore_ascii_case("volume"))
            {
                continue;
            }
            if cells.len() != 3 {
                return Err(bad(
                    path,
                    line,
                    format!(
                        "has {} columns; expected 3: volume,slice,label",
                        cells.len()
                    ),
                ));
            }
            if cells[0].is_empty() {
                return Err(bad(path, line, "the volume is empty"));
            }
            let slice: usize = cells[1].parse().map_err(|_| {
                bad(
                    path,
                    line,
                    format!("slice '{}' is not a slice index (0, 1, 2, ...)", cells[1]),
                )
            })?;
            let label: f32 = cells[2]
                .parse()
                .ok()
                .filter(|v: &f32| v.is_finite())
                .ok_or_else(|| {
                    bad(
                        path,
                        line,
                        format!("label '{}' is not a finite number", cells[2]),
                    )
                })?;
            if let Some(prev) = rows
                .iter()
                .find(|r| r.volume == cells[0] && r.slice == slice)
            {
                return Err(bad(
                    path,
                    line,
                    format!(
                        "slice {slice} of {} was already labelled on line {}",
                        cells[0], prev.line
                    ),
                ));
            }
            rows.push(SliceLabelRow {
                line,
                volume: cells[0].to_string(),
                slice,
                label,
            });
        }
        if rows.is_empty() {
            return Err(DatasetError::Volume {
                path: path.to_path_buf(),
                msg: "holds no labels; expected rows of volume,slice,label".into(),
            });
        }
        Ok(SliceLabelTable {
            path: path.to_path_buf(),
            rows,
        })
    }

    /// Match every row to the inputs it names among `volumes` (the
    /// preparation's inputs, in order) and check its slice against that
    /// volume's depth: `(input position, slice, label)` per match. A file
    /// given more than once (as A and B, or for two subjects) gets the
    /// label at every use. A row naming no input, or a file name shared by
    /// different files, or a slice past the end, refuses the whole file.
    pub fn resolve(&self, volumes: &[(PathBuf, usize)]) -> Result<Vec<(usize, usize, f32)>> {
        let base = self.path.parent().unwrap_or(Path::new("."));
        let canon = |p: &Path| std::fs::canonicalize(p).ok();
        let inputs: Vec<Option<PathBuf>> = volumes.iter().map(|(p, _)| canon(p)).collect();
        let mut out = Vec::with_capacity(self.rows.len());
        for r in &self.rows {
            let named = Path::new(&r.volume);
            let by_path = canon(&base.join(named)).or_else(|| canon(named));
            let mut hits: Vec<usize> = match &by_path {
                Some(c) => (0..volumes.len())
                    .filter(|&i| inputs[i].as_ref() == Some(c))
                    .collect(),
                None => vec![],
            };
            if hits.is_empty() {
                hits = (0..volumes.len())
                    .filter(|&i| volumes[i].0.file_name() == Some(named.as_os_str()))
                    .collect();
            }
            if hits.is_empty() {
                return Err(bad(
                    &self.path,
                    r.line,
                    format!(
                        "{} is none of the volumes given to prepare (--a, --b)",
                        r.volume
                    ),
                ));
            }
            if hits.iter().any(|&i| inputs[i] != inputs[hits[0]]) {
                return Err(bad(
                    &self.path,
                    r.line,
                    format!(
                        "{} names different input files; give its path relative to the CSV",
                        r.volume
                    ),
                ));
            }
            for i in hits {
                let depth = volumes[i].1;
                if r.slice >= depth {
                    return Err(bad(
                        &self.path,
                        r.line,
                        format!(
                            "slice {} is out of range: {} has {depth} slices along the slicing axis",
                            r.slice, r.volume
                        ),
                    ));
                }
                out.push((i, r.slice, r.label));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        SliceLabelTable::parse(Path::new("l.csv"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn rows_parse_with_header_comments_and_blanks() {
        let t = SliceLabelTable::parse(
            Path::new("l.csv"),
            "volume,slice,label\n# a comment\n\na.nii.gz, 3, 12.5\n\"b.nii.gz\",0,-1\n",
        )
        .unwrap();
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0].line, 4);
        assert_eq!((t.rows[0].slice, t.rows[0].label), (3, 12.5));
        assert_eq!(t.rows[1].volume, "b.nii.gz");
    }

    #[test]
    fn bad_rows_are_refused_by_line_number() {
        let e = err("volume,slice,label\na.nii,1,2\na.nii,x,2\n");
        assert!(
            e.contains("l.csv: line 3") && e.contains("slice 'x'"),
            "{e}"
        );
        let e = err("a.nii,1,nan\n");
        assert!(e.contains("line 1") && e.contains("finite"), "{e}");
        let e = err("a.nii,1\n");
        assert!(e.contains("line 1") && e.contains("3"), "{e}");
        let e = err("a.nii,1,2\na.nii,1,3\n");
        assert!(e.contains("line 2") && e.contains("line 1"), "{e}");
        let e = err("# nothing\n");
        assert!(e.contains("no labels"), "{e}");
    }

    #[test]
    fn rows_resolve_to_inputs_and_slices_are_range_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.nii"), dir.path().join("b.nii"));
        std::fs::write(&a, "x").unwrap();
        std::fs::write(&b, "y").unwrap();
        let csv = dir.path().join("l.csv");
        let vols = vec![(a.clone(), 10), (b.clone(), 10)];
        let t = SliceLabelTable::parse(&csv, "a.nii,2,5\nb.nii,9,7\n").unwrap();
        assert_eq!(t.resolve(&vols).unwrap(), vec![(0, 2, 5.0), (1, 9, 7.0)]);
        let t = SliceLabelTable::parse(&csv, "a.nii,2,5\nb.nii,10,7\n").unwrap();
        let e = t.resolve(&vols).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("out of range"), "{e}");
        let t = SliceLabelTable::parse(&csv, "c.nii,2,5\n").unwrap();
        let e = t.resolve(&vols).unwrap_err().to_string();
        assert!(
            e.contains("line 1") && e.contains("none of the volumes"),
            "{e}"
        );
    }
}
