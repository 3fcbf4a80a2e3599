//! The `medtrans` binary as a user runs it.
use std::path::PathBuf;
use std::process::{Command, Output};

fn medtrans(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medtrans"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run medtrans")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn shared() -> Option<PathBuf> {
    medtrans_io::shared_data_or_skip()
}

#[test]
fn info_on_icbm_t1_and_multiframe_dicom() {
    let Some(data) = shared() else { return };
    let t1 = data.join("icbm152-2009c/mni_icbm152_t1_tal_nlin_sym_09c.nii.gz");
    let o = medtrans(&["info", t1.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.contains("193 x 229 x 193 voxels"), "{s}");
    assert!(s.contains("1 x 1 x 1 mm"), "{s}");
    assert!(s.contains("RAS"), "{s}");
    assert!(s.contains("min 0.0106  max 98.5586"), "{s}");
    assert!(s.contains("0 NaN, 0 Inf"), "{s}");
    let o = medtrans(&["info", data.join("dicom/emri_small.dcm").to_str().unwrap()]);
    assert!(stdout(&o).contains("64 x 64 x 10 voxels"), "{}", stdout(&o));
}

#[test]
fn corrupt_files_give_one_error_line_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<PathBuf> = vec![];
    let empty = dir.path().join("empty.nii.gz");
    std::fs::write(&empty, b"").unwrap();
    cases.push(empty);
    let junk = dir.path().join("junk.nii");
    std::fs::write(&junk, vec![7u8; 400]).unwrap();
    cases.push(junk);
    cases.push(dir.path().to_path_buf()); // empty folder
    if let Some(data) = shared() {
        cases.push(data.join("dicom/emri_small_jpeg_2k_lossless_too_short.dcm"));
        let full = std::fs::read(data.join("icbm152-2009c/mni_icbm152_t2_tal_nlin_sym_09c.nii.gz"))
            .unwrap();
        let cut = dir.path().join("cut.nii.gz");
        std::fs::write(&cut, &full[..full.len() / 3]).unwrap();
        cases.push(cut);
    }
    for p in cases {
        let o = medtrans(&["info", p.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{}: {err}", p.display());
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(p.file_name().unwrap().to_str().unwrap()),
            "{err}"
        );
    }
}

#[test]
fn prepare_then_preview_at_noise_level_5() {
    let Some(data) = shared() else { return };
    let d = data.join("icbm152-2009c");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let o = medtrans(&[
        "prepare",
        "--a",
        d.join("mni_icbm152_t1_tal_nlin_sym_09c.nii.gz")
            .to_str()
            .unwrap(),
        "--b",
        d.join("mni_icbm152_t2_tal_nlin_sym_09c.nii.gz")
            .to_str()
            .unwrap(),
        "--mask",
        d.join("mni_icbm152_t1_tal_nlin_sym_09c_mask.nii.gz")
            .to_str()
            .unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--size",
        "64",
        "--slices",
        "60:140",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("train"), "{}", stdout(&o));
    let png = dir.path().join("p.png");
    let o = medtrans(&[
        "preview",
        out.to_str().unwrap(),
        "--noise-level",
        "5",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let img = medtrans_io::read_volume(&png, &Default::default()).unwrap();
    assert_eq!(img.shape()[0], 5 * 64 + 4 * 2, "five columns of 64 px");
    // Bad arguments are explained, not panicked on.
    let o = medtrans(&[
        "preview",
        out.to_str().unwrap(),
        "--noise-level",
        "9",
        "--out",
        "x.png",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("noise-level"),
        "{}",
        stderr(&o)
    );
    let o = medtrans(&[
        "prepare",
        "--a",
        "x.nii",
        "--b",
        "y.nii",
        "--out",
        out.to_str().unwrap(),
        "--norm-b",
        "window:5",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("window:LOW,HIGH"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn demo_runs_from_the_shipped_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = medtrans(&["demo", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(csv.lines().count() > 5, "{csv}");
    assert!(out.join("misalignment_level5.png").is_file());
    // The identity baseline is poor on the paper's metrics (T1 contrast is inverted w.r.t. T2).
    let psnr: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap().parse().unwrap())
        .collect();
    assert!(psnr.iter().all(|&p| p > 3.0 && p < 15.0), "{psnr:?}");
}
