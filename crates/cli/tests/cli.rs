//! The `medtrans` binary as a user runs it.
mod common;
use common::{medtrans, prepare_demo, root, stderr, stdout};
use std::path::{Path, PathBuf};

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
fn info_on_folders_shows_every_image_and_names_the_bad_one() {
    let Some(data) = shared() else { return };
    // The DICOM folder: single files of several series, licences, and one
    // truncated file.
    let o = medtrans(&["info", data.join("dicom").to_str().unwrap()]);
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(1), "one file is bad: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let bad = "emri_small_jpeg_2k_lossless_too_short.dcm";
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert!(errors.iter().any(|l| l.contains(bad)), "{err}");
    assert!(
        errors
            .last()
            .unwrap()
            .contains("1 of 10 images could not be read"),
        "{err}"
    );
    // Every good file still has its block, the licences are passed over.
    assert_eq!(out.matches("file:         ").count(), 10, "{out}");
    assert!(
        out.contains("CT_small.dcm") && out.contains("64 x 64 x 10 voxels"),
        "{out}"
    );
    assert!(
        out.contains("(2 files that are not images were passed over)"),
        "{out}"
    );
    // --table over two folders of the NiChart T1s and FLAIRs: one row each.
    let nichart = data.join("nichart-t1-flair");
    let o = medtrans(&[
        "info",
        "--table",
        nichart.join("t1").to_str().unwrap(),
        nichart.join("fl").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let rows: Vec<&str> = out.lines().filter(|l| l.contains(".nii.gz")).collect();
    assert_eq!(rows.len(), 32, "{out}");
    assert!(
        out.lines().next().unwrap().starts_with("file "),
        "a header row: {out}"
    );
    for r in &rows {
        assert!(
            r.contains("NIfTI-1") && r.contains(" x ") && r.contains(".."),
            "{r}"
        );
    }
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
    let empty_dir = dir.path().join("empty_folder");
    std::fs::create_dir(&empty_dir).unwrap();
    cases.push(empty_dir);
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
fn demo_trains_scores_and_translates_from_the_shipped_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    // A short schedule: the full demo's numbers are checked by hand (README).
    let short = [
        "--set",
        "train.epochs=1",
        "--set",
        "train.steps_per_epoch=4",
    ];
    let mut args = vec!["demo", "--out", out.to_str().unwrap()];
    args.extend(short);
    let o = medtrans(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    let identity: Vec<&&str> = rows.iter().filter(|l| l.starts_with("identity,")).collect();
    let reggan: Vec<&&str> = rows.iter().filter(|l| l.starts_with("reggan,")).collect();
    assert!(
        !identity.is_empty() && identity.len() == reggan.len(),
        "{csv}"
    );
    // The identity baseline is poor on the paper's metrics (T1 contrast is inverted w.r.t. T2).
    for l in identity {
        let psnr: f64 = l.split(',').nth(4).unwrap().parse().unwrap();
        assert!(psnr > 3.0 && psnr < 15.0, "{l}");
    }
    assert!(std::fs::read_to_string(out.join("summary.md"))
        .unwrap()
        .contains("Wilcoxon"));
    for f in [
        "misalignment_level5.png",
        "samples.png",
        "run/checkpoints/last/R.safetensors",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let t1 =
        medtrans_io::read_volume(root().join("data/demo/t1.nii.gz"), &Default::default()).unwrap();
    let t2 =
        medtrans_io::read_volume(out.join("translated_t2.nii.gz"), &Default::default()).unwrap();
    assert_eq!(t2.shape(), t1.shape());
    assert_eq!(t2.geometry.affine, t1.geometry.affine);
    // Rerunning replaces the earlier demo; an unknown mode touches nothing.
    let o = medtrans(&["demo", "--out", out.to_str().unwrap(), "--mode", "regan"]);
    assert!(
        !o.status.success() && stderr(&o).contains("regan"),
        "{}",
        stderr(&o)
    );
    assert!(out.join("translated_t2.nii.gz").is_file());
}

#[test]
fn train_evaluate_translate_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = root().join("data/demo");
    let labels = d.join("brain_area.csv");
    let o = prepare_demo(&data, 32, &["--slice-labels", labels.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("slice labels:"), "{}", stdout(&o));
    let train = |mode: &str, run: &Path, extra: &[&str]| {
        let data_set = format!("data.path={:?}", data.to_str().unwrap());
        let out_set = format!("out={:?}", run.to_str().unwrap());
        let mut a = vec![
            "train", "--mode", mode, "--set", &data_set, "--set", &out_set,
        ];
        for s in [
            "generator.ngf=8",
            "generator.n_blocks=1",
            "discriminator.ndf=8",
            "train.epochs=1",
            "train.steps_per_epoch=3",
        ] {
            a.extend(["--set", s]);
        }
        a.extend(extra);
        medtrans(&a)
    };
    let (r1, r2) = (dir.path().join("reggan"), dir.path().join("p2p"));
    let o = train("reggan", &r1, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("3 steps done"), "{}", stdout(&o));
    assert!(r1.join("config.toml").is_file() && r1.join("losses.csv").is_file());
    // A second start in the same folder is refused, with the way out.
    let o = train("reggan", &r1, &[]);
    assert!(
        !o.status.success() && stderr(&o).contains("--resume"),
        "{}",
        stderr(&o)
    );
    // Unknown keys are named.
    let o = train("reggan", &r2, &["--set", "train.epoc=2"]);
    assert!(
        !o.status.success() && stderr(&o).contains("epoc"),
        "{}",
        stderr(&o)
    );
    let o = train("pix2pix", &r2, &[]);
    assert!(o.status.success(), "{}", stderr(&o));

    let ev = dir.path().join("eval");
    let o = medtrans(&[
        "evaluate",
        "--model",
        r1.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--compare",
        r2.to_str().unwrap(),
        "--out",
        ev.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(ev.join("summary.md")).unwrap();
    assert!(
        md.contains("| reggan |") && md.contains("| p2p |") && md.contains("Wilcoxon"),
        "{md}"
    );

    let synth = dir.path().join("synth.nii.gz");
    let tr = |input: &Path| {
        medtrans(&[
            "translate",
            "--model",
            r1.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
            synth.to_str().unwrap(),
        ])
    };
    let o = tr(&d.join("t1.nii.gz"));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tr(&d.join("t1.nii.gz"));
    assert!(
        !o.status.success() && stderr(&o).contains("--overwrite"),
        "{}",
        stderr(&o)
    );
    let bad = dir.path().join("broken.nii.gz");
    std::fs::write(&bad, b"not a nifti").unwrap();
    let o = medtrans(&[
        "translate",
        "--model",
        r1.to_str().unwrap(),
        "--input",
        bad.to_str().unwrap(),
        "--output",
        dir.path().join("x.nii.gz").to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("broken.nii.gz"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));

    // The guided mode's predictor, applied to the target volume.
    let guided = dir.path().join("guided");
    let o = train(
        "guided",
        &guided,
        &[
            "--set",
            "predictor.width=8",
            "--set",
            "predictor.blocks=[1]",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let t2 = d.join("t2.nii.gz");
    let mask = d.join("mask.nii.gz");
    // `predict` on `input`, with the demo mask.
    let predict = |model: &Path, input: &Path, extra: &[&str]| {
        let mut a = vec![
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--mask",
            mask.to_str().unwrap(),
        ];
        a.extend(extra);
        medtrans(&a)
    };
    let with_input = |model: &Path, extra: &[&str]| predict(model, &t2, extra);
    let o = with_input(&guided, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let depth = medtrans_io::read_volume(&t2, &Default::default())
        .unwrap()
        .shape()[2];
    assert_eq!(text.lines().next(), Some("slice,prediction"));
    assert_eq!(text.lines().count(), depth + 1, "{text}");
    let csv = dir.path().join("areas.csv");
    let o = with_input(&guided, &["--output", csv.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap().trim_end(),
        text.trim_end()
    );
    // A run without a predictor, and a folder that is no volume, are named.
    let o = with_input(&r1, &[]);
    assert!(
        !o.status.success() && stderr(&o).contains("no predictor"),
        "{}",
        stderr(&o)
    );
    let o = predict(&guided, &d, &[]);
    assert!(
        !o.status.success() && stderr(&o).contains("demo"),
        "{}",
        stderr(&o)
    );
}

/// The README's "your own data" walkthrough: a T1 and a second-session T2
/// on another grid (data/demo/t2_session2.nii.gz: moved, tilted, thick
/// slices) through register, prepare --align, and many subjects from a
/// CSV, evaluated per subject.
#[test]
fn register_then_prepare_many_subjects_and_evaluate_per_subject() {
    let dir = tempfile::tempdir().unwrap();
    let d = root().join("data/demo");
    let p = |f: &str| d.join(f).to_str().unwrap().to_string();
    let out = dir.path().join("t2_on_t1.nii.gz");
    let reg = || {
        medtrans(&[
            "register",
            "--fixed",
            &p("t1.nii.gz"),
            "--moving",
            &p("t2_session2.nii.gz"),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let o = reg();
    assert!(o.status.success(), "{}", stderr(&o));
    // The session was moved by 4 and -3 degrees: 5.0 degrees in all.
    let s = stdout(&o);
    let deg: f64 = s
        .split("rotation ")
        .nth(1)
        .and_then(|r| r.split(" deg").next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{s}"));
    assert!((deg - 5.0).abs() < 0.3, "{s}");
    assert!(out.is_file() && dir.path().join("t2_on_t1.tfm").is_file());
    let tfm = std::fs::read_to_string(dir.path().join("t2_on_t1.tfm")).unwrap();
    assert!(tfm.starts_with("#Insight Transform File V1.0"), "{tfm}");
    let o = reg();
    assert!(
        !o.status.success() && stderr(&o).contains("--overwrite"),
        "{}",
        stderr(&o)
    );

    // Four subjects, one of them the second session; whole subjects per split.
    let csv = dir.path().join("subjects.csv");
    std::fs::write(
        &csv,
        format!(
            "subject,a,b,mask\nsub-01,{t1},{t2},{m}\nsub-02,{t1},{s2},{m}\nsub-03,{t1},{t2},{m}\nsub-04,{t1},{s2},{m}\n",
            t1 = p("t1.nii.gz"),
            t2 = p("t2.nii.gz"),
            s2 = p("t2_session2.nii.gz"),
            m = p("mask.nii.gz")
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let o = medtrans(&[
        "prepare",
        "--subjects",
        csv.to_str().unwrap(),
        "--align",
        "rigid",
        // No --split: with three or more subjects, whole subjects per split.
        "--fractions",
        "0.5,0.25,0.25",
        "--size",
        "32",
        "--out",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.contains("sub-02: B registered onto A (Rigid)"), "{s}");
    assert!(s.contains("sub-02: resampled onto A's grid"), "{s}");
    let run = dir.path().join("run");
    let o = medtrans(&[
        "train",
        "--mode",
        "pix2pix",
        "--set",
        &format!("data.path={:?}", data.to_str().unwrap()),
        "--set",
        &format!("out={:?}", run.to_str().unwrap()),
        "--set",
        "generator.ngf=8",
        "--set",
        "generator.n_blocks=1",
        "--set",
        "discriminator.ndf=8",
        "--set",
        "train.epochs=1",
        "--set",
        "train.steps_per_epoch=2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ev = dir.path().join("eval");
    let o = medtrans(&[
        "evaluate",
        "--model",
        run.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--split",
        "train",
        "--out",
        ev.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let subjects = std::fs::read_to_string(ev.join("subjects.csv")).unwrap();
    assert_eq!(subjects.lines().count(), 3, "{subjects}");
    assert!(subjects.contains("run,sub-0"), "{subjects}");
    let md = std::fs::read_to_string(ev.join("summary.md")).unwrap();
    assert!(md.contains("**2 subjects**"), "{md}");

    // A CSV naming a subject twice is refused by line.
    std::fs::write(&csv, format!("s,{t},{t}\ns,{t},{t}\n", t = p("t1.nii.gz"))).unwrap();
    let o = medtrans(&[
        "prepare",
        "--subjects",
        csv.to_str().unwrap(),
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("line 2"),
        "{}",
        stderr(&o)
    );
}
