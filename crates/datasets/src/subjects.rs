//! Many subjects from one CSV, for `prepare --subjects`:
//!
//! ```text
//! subject,a,b,mask,labels_a,labels_b
//! sub-01,sub-01/t1.nii.gz,sub-01/t2.nii.gz,sub-01/brain.nii.gz,sub-01/parcels.nii.gz,sub-01/lesions.nii.gz
//! sub-02,sub-02/t1.nii.gz,sub-02/t2.nii.gz,,,
//! ```
//!
//! Paths are relative to the CSV's folder (or absolute); `mask` and the
//! label maps (A's and B's, each on its own image's grid, e.g. lesion masks
//! drawn on a FLAIR) may be left out or empty. A header row, `#` comments and blank lines are
//! skipped. Splits by volume then keep each subject whole in one split.
use crate::prepare::SubjectSpec;
use crate::{DatasetError, Result};
use std::collections::BTreeMap;
use std::path::Path;

fn bad(path: &Path, line: usize, msg: impl std::fmt::Display) -> DatasetError {
    DatasetError::Volume {
        path: path.to_path_buf(),
        msg: format!("line {line}: {msg}"),
    }
}

/// Read a subjects CSV; every file must exist and every subject be named
/// once, or the whole list is refused by line number.
pub fn read_subject_csv(path: &Path) -> Result<Vec<SubjectSpec>> {
    let text = std::fs::read_to_string(path).map_err(|e| DatasetError::Read {
        path: path.to_path_buf(),
        source: e,
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (k, raw) in text.lines().enumerate() {
        let line = k + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = l.split(',').map(str::trim).collect();
        if out.is_empty() && seen.is_empty() && cols.first() == Some(&"subject") {
            continue;
        }
        if !(3..=6).contains(&cols.len()) {
            return Err(bad(
                path,
                line,
                format!(
                    "expected subject,a,b[,mask[,labels_a[,labels_b]]] but found {} columns",
                    cols.len()
                ),
            ));
        }
        let name = cols[0];
        if name.is_empty() {
            return Err(bad(path, line, "the subject name is empty"));
        }
        if let Some(first) = seen.insert(name.to_string(), line) {
            return Err(bad(
                path,
                line,
                format!("subject '{name}' is listed again (first on line {first})"),
            ));
        }
        let file = |col: usize, what: &str| -> Result<Option<std::path::PathBuf>> {
            let Some(v) = cols.get(col).filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            let p = dir.join(v);
            if !p.exists() {
                return Err(bad(
                    path,
                    line,
                    format!("{what} file {} does not exist", p.display()),
                ));
            }
            Ok(Some(p))
        };
        let (Some(a), Some(b)) = (file(1, "A")?, file(2, "B")?) else {
            return Err(bad(path, line, "A and B must both be given"));
        };
        out.push(SubjectSpec {
            name: Some(name.to_string()),
            a,
            b,
            mask: file(3, "mask")?,
            labels_a: file(4, "labels_a")?,
            labels_b: file(5, "labels_b")?,
        });
    }
    if out.is_empty() {
        return Err(DatasetError::Volume {
            path: path.to_path_buf(),
            msg: "lists no subjects".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_checked_by_line() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["t1.nii", "t2.nii", "m.nii"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let csv = dir.path().join("subjects.csv");
        let read = |text: &str| {
            std::fs::write(&csv, text).unwrap();
            read_subject_csv(&csv)
        };
        let ok =
            read("subject,a,b,mask\n# one\ns1,t1.nii,t2.nii,m.nii\ns2,t1.nii,t2.nii,\n").unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].name.as_deref(), Some("s1"));
        assert_eq!(ok[0].mask, Some(dir.path().join("m.nii")));
        assert_eq!(ok[1].mask, None);
        let with_labels =
            read("s1,t1.nii,t2.nii,m.nii,m.nii,t2.nii\ns2,t1.nii,t2.nii,,,\n").unwrap();
        assert_eq!(with_labels[0].labels_a, Some(dir.path().join("m.nii")));
        assert_eq!(with_labels[0].labels_b, Some(dir.path().join("t2.nii")));
        assert_eq!(with_labels[1].labels_b, None);
        assert!(read("s1,t1.nii,t2.nii,m.nii,m.nii,t2.nii,x\n")
            .unwrap_err()
            .to_string()
            .contains("found 7 columns"));
        let err = |text: &str| read(text).unwrap_err().to_string();
        let e = err("s1,t1.nii,t2.nii\ns1,t1.nii,t2.nii\n");
        assert!(e.contains("line 2") && e.contains("first on line 1"), "{e}");
        let e = err("s1,t1.nii,missing.nii\n");
        assert!(
            e.contains("line 1") && e.contains("missing.nii") && e.contains("does not exist"),
            "{e}"
        );
        let e = err("s1,t1.nii\n");
        assert!(e.contains("subjects.csv") && e.contains("2 columns"), "{e}");
        let e = err("subject,a,b\n");
        assert!(e.contains("lists no subjects"), "{e}");
    }
}
