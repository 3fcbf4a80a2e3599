//! Running the `medtrans` binary as a user does, for the CLI tests.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn medtrans(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medtrans"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run medtrans")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The command succeeded; its standard output.
pub fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    stdout(o)
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The demo T1/T2 (with mask) prepared at `size` px into `out`, with extra
/// `prepare` arguments.
pub fn prepare_demo(out: &Path, size: usize, extra: &[&str]) -> Output {
    let d = root().join("data/demo");
    let size = size.to_string();
    let mut args = vec![
        "prepare".to_string(),
        "--a".into(),
        d.join("t1.nii.gz").display().to_string(),
        "--b".into(),
        d.join("t2.nii.gz").display().to_string(),
        "--mask".into(),
        d.join("mask.nii.gz").display().to_string(),
        "--size".into(),
        size,
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--out".into());
    args.push(out.display().to_string());
    medtrans(&args.iter().map(String::as_str).collect::<Vec<_>>())
}
