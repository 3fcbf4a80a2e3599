// Shared by the test files of this crate.
#![allow(dead_code)]
use std::path::PathBuf;

pub fn shared() -> Option<PathBuf> {
    medtrans_io::shared_data_or_skip()
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
