//! A full disk while a checkpoint or an output is written: the command
//! fails with an error naming the file, nothing half-written keeps a final
//! name, and the previous checkpoint stays sound and resumable.
//!
//! The disk "fills" through the file-size limit (`ulimit -f`, with SIGXFSZ
//! ignored so that a write past it fails with EFBIG instead of killing the
//! process): every write beyond the limit errors as on a full disk, and no
//! root or special filesystem is needed.
use medtrans_training::checkpoint::{last_checkpoint, verify_checkpoint, CheckpointState};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_medtrans")
}

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/demo")
}

/// `medtrans ARGS` with files limited to `limit_kib` KiB.
fn limited(limit_kib: u64, args: &[String]) -> Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {limit_kib}; exec '{}' {}",
            bin(),
            quoted.join(" ")
        ))
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn run(args: &[String]) -> Output {
    Command::new(bin())
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn assert_clean_failure(out: &Output, names: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a full disk went unnoticed: {err}");
    assert!(!err.contains("panicked"), "panic on a full disk: {err}");
    assert!(
        err.contains(names),
        "the error does not name {names}: {err}"
    );
    assert!(
        err.contains("too large") || err.contains("No space"),
        "{err}"
    );
}

fn train_args(data: &Path, run: &Path, stop: usize) -> Vec<String> {
    let mut a = strings(&["train", "--mode", "pix2pix", "--set"]);
    a.push(format!("data.path={:?}", data.to_str().unwrap()));
    a.push("--set".into());
    a.push(format!("out={:?}", run.to_str().unwrap()));
    for s in [
        "generator.ngf=8",
        "generator.n_blocks=1",
        "discriminator.ndf=8",
        "train.epochs=6",
        "train.steps_per_epoch=2",
        "train.samples=1",
    ] {
        a.push("--set".into());
        a.push(s.into());
    }
    a.push("--set".into());
    a.push(format!("train.stop_at_step={stop}"));
    a
}

#[test]
fn a_full_disk_fails_cleanly_and_keeps_the_previous_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut prep = strings(&["prepare", "--size", "32", "--out"]);
    prep.push(data.to_str().unwrap().into());
    for (flag, file) in [("--a", "t1"), ("--b", "t2"), ("--mask", "mask")] {
        prep.push(flag.into());
        prep.push(
            demo()
                .join(format!("{file}.nii.gz"))
                .to_str()
                .unwrap()
                .into(),
        );
    }
    assert!(run(&prep).status.success());
    let run_dir = tmp.path().join("run");
    let out = run(&train_args(&data, &run_dir, 4));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = last_checkpoint(&run_dir).unwrap();
    assert_eq!(CheckpointState::load(&before).unwrap().step, 4);
    let g_size = std::fs::metadata(before.join("G.safetensors"))
        .unwrap()
        .len();
    assert!(
        g_size > 64 * 1024,
        "G is too small ({g_size} B) for the limit to bite"
    );

    // Resume with room for the logs but not for G's weights.
    let mut resume = strings(&["train", "--resume"]);
    resume.push(run_dir.to_str().unwrap().into());
    resume.extend(strings(&["--set", "train.stop_at_step=8"]));
    let out = limited(64, &resume);
    assert_clean_failure(&out, "G.safetensors");

    // The step-4 checkpoint is still the last, sound, and nothing partial
    // sits under a final name.
    let last = last_checkpoint(&run_dir).unwrap();
    assert_eq!(CheckpointState::load(&last).unwrap().step, 4);
    verify_checkpoint(&last).unwrap();
    // And the run goes on once there is room again.
    let out = run(&resume);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        CheckpointState::load(&last_checkpoint(&run_dir).unwrap())
            .unwrap()
            .step,
        8
    );

    // An output volume that does not fit: an error naming it, and no file
    // under its name.
    let vol = tmp.path().join("t2.nii.gz");
    let mut translate = strings(&["translate", "--model"]);
    translate.push(run_dir.to_str().unwrap().into());
    translate.push("--input".into());
    translate.push(demo().join("t1.nii.gz").to_str().unwrap().into());
    translate.push("--output".into());
    translate.push(vol.to_str().unwrap().into());
    let out = limited(8, &translate);
    assert_clean_failure(&out, "t2.nii.gz");
    assert!(!vol.exists(), "a half-written volume kept the final name");
}
