//! A training run killed (SIGKILL) at a dozen moments, one of them while a
//! checkpoint is being written, and resumed each time, ends with weights
//! bit-identical to the run that was never interrupted; every checkpoint
//! on disk stays sound throughout.
use medtrans_training::checkpoint::verify_checkpoint;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn medtrans() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_medtrans"));
    c.env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn prepare(out: &Path) {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/demo");
    let s = medtrans()
        .args(["prepare", "--size", "32", "--out"])
        .arg(out)
        .arg("--a")
        .arg(d.join("t1.nii.gz"))
        .arg("--b")
        .arg(d.join("t2.nii.gz"))
        .arg("--mask")
        .arg(d.join("mask.nii.gz"))
        .status()
        .unwrap();
    assert!(s.success());
}

/// `medtrans train` of a small C+R run (every network, both pools, R), with
/// a checkpoint every two steps.
fn start(data: &Path, run: &Path) -> Child {
    let mut c = medtrans();
    c.args(["train", "--mode", "cycle+reg", "--set"])
        .arg(format!("data.path={:?}", data.to_str().unwrap()))
        .arg("--set")
        .arg(format!("out={:?}", run.to_str().unwrap()));
    for s in [
        "generator.ngf=8",
        "generator.n_blocks=1",
        "discriminator.ndf=8",
        "train.epochs=20",
        "train.steps_per_epoch=2",
        "train.pool_size=3",
        "train.samples=1",
    ] {
        c.args(["--set", s]);
    }
    c.spawn().unwrap()
}

fn resume(run: &Path) -> Child {
    medtrans()
        .arg("train")
        .arg("--resume")
        .arg(run)
        .spawn()
        .unwrap()
}

fn finish(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every complete checkpoint on disk verifies (`.part` is the one being
/// written and is allowed to be partial; `.NAME.trash` folders are being
/// deleted, nothing reads them, and a kill may leave one half-deleted).
fn all_checkpoints_sound(run: &Path) {
    let ck = run.join("checkpoints");
    let mut dirs = vec![ck.join("last"), ck.join("last.old"), ck.join("best")];
    if let Ok(h) = std::fs::read_dir(ck.join("history")) {
        dirs.extend(h.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().ends_with(".trash"))
        }));
    }
    for d in dirs.iter().filter(|d| d.join("state.json").is_file()) {
        if let Err(e) = verify_checkpoint(d) {
            panic!("{}: {e:#}", d.display());
        }
    }
}

/// A safetensors file's tensors by name, as raw bytes: the values, bit for
/// bit, whatever order the header lists them in.
fn tensors(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    header
        .into_iter()
        .filter(|(k, _)| k != "__metadata__")
        .map(|(k, v)| {
            let o = &v["data_offsets"];
            let (s, e) = (
                o[0].as_u64().unwrap() as usize,
                o[1].as_u64().unwrap() as usize,
            );
            (k, data[s..e].to_vec())
        })
        .collect()
}

/// A small deterministic generator of kill delays.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn killed_and_resumed_training_ends_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    prepare(&data);

    let whole = dir.path().join("whole");
    let t0 = Instant::now();
    finish(start(&data, &whole));
    let run_time = t0.elapsed();

    let run = dir.path().join("killed");
    // First kill: while a checkpoint is being written (its `.part` folder
    // exists) over an earlier one, which polling at a fine grain catches.
    let ck = run.join("checkpoints");
    let mut child = start(&data, &run);
    let mut caught = false;
    let deadline = Instant::now() + run_time * 2;
    while Instant::now() < deadline {
        if ck.join("last/state.json").is_file() && ck.join("last.part").exists() {
            child.kill().unwrap();
            caught = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(caught, "never saw a checkpoint being written");
    all_checkpoints_sound(&run);

    // Then at random moments of each resumed process's life.
    let mut rng = Lcg(0x5eed);
    let mut kills = 1;
    let mut tries = 0;
    while kills < 12 && tries < 40 {
        tries += 1;
        let mut child = resume(&run);
        let wait = run_time.mul_f64(0.04 + 0.12 * rng.next());
        std::thread::sleep(wait);
        match child.try_wait().unwrap() {
            Some(_) => {
                // It finished first: the run is complete.
                finish(child);
                break;
            }
            None => {
                child.kill().unwrap();
                let _ = child.wait();
                kills += 1;
            }
        }
        all_checkpoints_sound(&run);
    }
    eprintln!("uninterrupted run {run_time:?}; {kills} kills in {tries} resumes");
    assert!(kills >= 10, "only {kills} kills landed");
    // Whatever is left of the schedule.
    finish(resume(&run));
    all_checkpoints_sound(&run);

    for net in ["G", "F", "D_A", "D_B", "R"] {
        let f = format!("checkpoints/last/{net}.safetensors");
        let (a, b) = (tensors(&whole.join(&f)), tensors(&run.join(&f)));
        assert!(!a.is_empty());
        assert!(a == b, "{net}: weights differ from the uninterrupted run");
    }
    let losses = |r: &Path| std::fs::read_to_string(r.join("losses.csv")).unwrap();
    assert_eq!(losses(&whole), losses(&run));
    // Older checkpoints were kept for falling back on (3 in all).
    let history = std::fs::read_dir(run.join("checkpoints/history"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("step_")
        })
        .count();
    assert_eq!(history, 2);
}
