//! A corruption corpus derived from real files (the shipped demo volumes,
//! `../shared/data` when present, and a dataset and a run made here):
//! truncations, flipped bytes, header edits and empty files. Every command
//! that reads such a file must end with a clean error naming it (or
//! succeed, where the damage is in ignorable bytes): never a panic, never a
//! hang.
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one command may take on a damaged file (a debug build on a
/// busy two-core machine); the readers check sizes before allocating.
const LIMIT: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Run medtrans; fail on a hang, a panic, or an error that does not name
/// `names`. Returns whether it succeeded.
fn run_clean(args: &[String], names: &str) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_medtrans"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("medtrans {}: still running after {LIMIT:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let cmd = args.join(" ");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "medtrans {cmd}: panicked:\n{err}"
    );
    if out.status.success() {
        return true;
    }
    assert_eq!(out.status.code(), Some(1), "medtrans {cmd}: {err}");
    let last = err.trim().lines().last().unwrap_or("");
    assert!(
        err.contains("error: ") && err.contains(names),
        "medtrans {cmd}: the error does not name {names}:\n{err}"
    );
    assert!(!last.is_empty(), "medtrans {cmd}: empty error");
    false
}

/// Deterministic positions for flipped bytes.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

/// Damaged copies of `bytes` in `dir`, named after `stem` and keeping
/// `ext`: empty, truncated at several points, and bytes flipped in the
/// first `header` bytes and in the body.
fn corpus(dir: &Path, stem: &str, ext: &str, bytes: &[u8], header: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut put = |name: String, b: &[u8]| {
        let p = dir.join(format!("{stem}_{name}.{ext}"));
        std::fs::write(&p, b).unwrap();
        out.push(p);
    };
    put("empty".into(), &[]);
    for f in [0.01, 0.1, 0.5, 0.9] {
        let n = ((bytes.len() as f64 * f) as usize).max(1);
        put(format!("cut{}", (f * 100.0) as u32), &bytes[..n]);
    }
    let mut rng = Lcg(0xbad);
    for k in 0..6 {
        let mut b = bytes.to_vec();
        for _ in 0..4 {
            let i = rng.below(header.min(b.len()));
            b[i] ^= 0xff;
        }
        put(format!("head{k}"), &b);
        let mut b = bytes.to_vec();
        for _ in 0..16 {
            let i = header + rng.below(b.len().saturating_sub(header));
            if i < b.len() {
                b[i] ^= 0x5a;
            }
        }
        put(format!("body{k}"), &b);
    }
    out
}

/// A NIfTI-1 header edit: `value` written at `offset` of the uncompressed file.
fn edited(nii: &[u8], offset: usize, value: &[u8]) -> Vec<u8> {
    let mut b = nii.to_vec();
    b[offset..offset + value.len()].copy_from_slice(value);
    b
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_command_refuses_damaged_files_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let demo = root().join("data/demo");
    let good_t2 = demo.join("t2.nii.gz");
    let mut images: Vec<PathBuf> = Vec::new();

    // NIfTI: the shipped T1, compressed and not, and header edits.
    let gz = std::fs::read(demo.join("t1.nii.gz")).unwrap();
    let mut nii = Vec::new();
    GzDecoder::new(&gz[..]).read_to_end(&mut nii).unwrap();
    images.extend(corpus(dir.path(), "t1", "nii.gz", &gz, 64));
    images.extend(corpus(dir.path(), "t1", "nii", &nii, 352));
    let edits: [(&str, usize, Vec<u8>); 8] = [
        ("ndim9", 40, 9i16.to_le_bytes().to_vec()),
        ("negdim", 42, (-5i16).to_le_bytes().to_vec()),
        ("hugedim", 42, 32767i16.to_le_bytes().to_vec()),
        ("dtype", 70, 999i16.to_le_bytes().to_vec()),
        ("bitpix", 72, 3i16.to_le_bytes().to_vec()),
        ("offset", 108, 1e12f32.to_le_bytes().to_vec()),
        ("slopenan", 112, f32::NAN.to_le_bytes().to_vec()),
        ("magic", 344, b"xx\0\0".to_vec()),
    ];
    for (tag, off, v) in edits {
        let p = dir.path().join(format!("t1_{tag}.nii"));
        std::fs::write(&p, edited(&nii, off, &v)).unwrap();
        images.push(p);
    }
    // DICOM and CT from the shared data, where this machine has it.
    if let Some(shared) = medtrans_io::shared_data_or_skip() {
        for (f, stem) in [
            ("dicom/CT_small.dcm", "ct"),
            ("dicom/MR_small_RLE.dcm", "mrrle"),
        ] {
            let b = std::fs::read(shared.join(f)).unwrap();
            images.extend(corpus(dir.path(), stem, "dcm", &b, 1024));
        }
    }
    let mut failed = 0;
    for p in &images {
        if !run_clean(&["info".into(), s(p)], &name(p)) {
            failed += 1;
        }
    }
    // Most damaged files must be refused (flipped body bytes may leave a
    // readable image: that is fine, a wrong answer is not the reader's to
    // see).
    assert!(failed * 2 > images.len(), "{failed} of {}", images.len());
    // `prepare` with a damaged A (a subset: each run reads a whole volume).
    for p in images.iter().step_by(5) {
        let out = dir.path().join(format!("ds_{}", name(p)));
        run_clean(
            &[
                "prepare".into(),
                "--a".into(),
                s(p),
                "--b".into(),
                s(&good_t2),
                "--size".into(),
                "32".into(),
                "--out".into(),
                s(&out),
            ],
            &name(p),
        );
    }

    // A dataset and a run, then each of their files damaged in turn.
    let ds = dir.path().join("ds");
    let o = Command::new(env!("CARGO_BIN_EXE_medtrans"))
        .args(["prepare", "--size", "32", "--out"])
        .arg(&ds)
        .arg("--a")
        .arg(demo.join("t1.nii.gz"))
        .arg("--b")
        .arg(&good_t2)
        .output()
        .unwrap();
    assert!(o.status.success());
    let run = dir.path().join("run");
    let train = |data: &Path, out: &Path| -> Vec<String> {
        [
            "train",
            "--mode",
            "pix2pix",
            "--set",
            &format!("data.path={:?}", s(data)),
            "--set",
            &format!("out={:?}", s(out)),
            "--set",
            "generator.ngf=4",
            "--set",
            "generator.n_blocks=1",
            "--set",
            "discriminator.ndf=4",
            "--set",
            "train.epochs=1",
            "--set",
            "train.steps_per_epoch=1",
        ]
        .map(String::from)
        .to_vec()
    };
    assert!(run_clean(&train(&ds, &run), "-"));
    let backup = dir.path().join("backup");
    for (folder, file) in [
        (&ds, "manifest.json"),
        (&ds, "train/A.npy"),
        (&ds, "val/B.npy"),
        (&run, "checkpoints/last/state.json"),
        (&run, "checkpoints/last/G.safetensors"),
    ] {
        let path = folder.join(file);
        let good = std::fs::read(&path).unwrap();
        let ext = path.extension().unwrap().to_string_lossy().into_owned();
        for bad in corpus(&backup_dir(&backup), "x", &ext, &good, 128) {
            std::fs::copy(&bad, &path).unwrap();
            let args = if folder == &ds {
                train(&ds, &dir.path().join("run2"))
            } else {
                vec!["train".into(), "--resume".into(), s(&run)]
            };
            // A damaged checkpoint may be passed over for an earlier one,
            // or refused; either way the file is named.
            run_clean(&args, &name(&path));
            let _ = std::fs::remove_dir_all(dir.path().join("run2"));
        }
        std::fs::write(&path, good).unwrap();
    }
}

fn backup_dir(p: &Path) -> PathBuf {
    std::fs::create_dir_all(p).unwrap();
    p.to_path_buf()
}
