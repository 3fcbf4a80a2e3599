// Shared by the test files of this crate.
#![allow(dead_code)]
use std::path::PathBuf;

/// The shared real-data folder; the tests that need it are skipped with a
/// notice only outside CI, so CI can never pass without real data.
pub fn shared() -> Option<PathBuf> {
    let p = medtrans_io::shared_data_dir();
    if p.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "../shared/data is missing in CI"
        );
        eprintln!("skipped: ../shared/data not found (set MEDTRANS_SHARED_DATA)");
    }
    p
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture_json(name: &str) -> serde_json::Value {
    let p = repo().join("fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).expect("fixture")).expect("json")
}

pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}
