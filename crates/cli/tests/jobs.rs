//! `medtrans experiment --jobs 2`: the grid's runs train in two child
//! processes at once, and the results are the same bytes as training them
//! one after another in the experiment's own process.
mod common;
use common::root;
use std::process::Command;

fn table1_quick(dir: &std::path::Path, jobs: &str) -> String {
    let text = std::fs::read_to_string(root().join("configs/experiments/table1-quick.toml"))
        .unwrap()
        .replace("runs/table1-quick", &dir.display().to_string());
    let config = dir.with_extension("toml");
    std::fs::write(&config, text).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_medtrans"))
        .args(["experiment", "table1", "--config"])
        .arg(&config)
        .args(["--jobs", jobs])
        .current_dir(root())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "--jobs {jobs}: {}\n{out}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

#[test]
fn two_jobs_give_the_same_results_as_one() {
    if medtrans_io::shared_data_or_skip().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let out_one = table1_quick(&one, "1");
    let out_two = table1_quick(&two, "2");
    assert!(!out_one.contains("at once"), "{out_one}");
    assert_eq!(
        out_two.matches("started (2 at once").count(),
        16,
        "every run in a child process: {out_two}"
    );
    for f in ["per_slice.csv", "results.csv"] {
        let (a, b) = (
            std::fs::read(one.join("results").join(f)).unwrap(),
            std::fs::read(two.join("results").join(f)).unwrap(),
        );
        assert!(a == b, "{f} differs between --jobs 1 and --jobs 2");
    }
    // A second sitting finds every run finished, in either runner.
    let again = table1_quick(&two, "2");
    assert_eq!(
        again.matches("finished earlier, skipped").count(),
        16,
        "{again}"
    );
}

#[test]
fn zero_jobs_is_refused() {
    let o = Command::new(env!("CARGO_BIN_EXE_medtrans"))
        .args(["experiment", "table1", "--config", "x.toml", "--jobs", "0"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--jobs"));
}
