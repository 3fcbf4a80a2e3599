//! Checkpoint format versions. Its own test binary: building networks draws
//! from the device's seeded generator, which tests running in parallel in
//! one process would share (and the resume test needs exact replay).
mod common;
use medtrans_training::checkpoint::{last_checkpoint, verify_checkpoint, FORMAT_VERSION};
use medtrans_training::{CheckpointState, Trainer};
use std::path::Path;

/// Checkpoints written before the networks were listed (format 1) still
/// resume; one from a newer medtrans is refused with its version.
#[test]
fn checkpoint_formats_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let extra = ["train.epochs=1", "train.steps_per_epoch=2"];
    let mut t = Trainer::new(common::small_config("reggan", &run, &extra)).unwrap();
    t.run(true).unwrap();
    let state_file = run.join("checkpoints/last/state.json");
    let state = CheckpointState::load(&run.join("checkpoints/last")).unwrap();
    assert_eq!(state.format_version, FORMAT_VERSION);
    assert_eq!(state.networks, ["G", "D_B", "R"]);

    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    v["format_version"] = 1.into();
    v.as_object_mut().unwrap().remove("networks");
    std::fs::write(&state_file, v.to_string()).unwrap();
    let t = Trainer::resume(&run, &[]).unwrap();
    assert_eq!(t.step, 2);
    assert!(t.nets.has("R"));

    v["format_version"] = 9.into();
    std::fs::write(&state_file, v.to_string()).unwrap();
    let err = Trainer::resume(&run, &[]).err().unwrap().to_string();
    assert!(
        err.contains("format 9") && err.contains("newer medtrans"),
        "{err}"
    );
}

/// Flip one byte in the middle of a file.
fn damage(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    let k = b.len() / 2;
    b[k] ^= 0x40;
    std::fs::write(path, b).unwrap();
}

/// The newest checkpoints are kept (`train.keep_checkpoints`); a damaged
/// one is named and passed over, and resume continues from the newest
/// sound one. With none sound, the error names what is wrong with each.
#[test]
fn a_damaged_checkpoint_falls_back_to_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let extra = ["train.epochs=4", "train.steps_per_epoch=1"];
    let mut t = Trainer::new(common::small_config("reggan", &run, &extra)).unwrap();
    t.run(true).unwrap();
    let ck = run.join("checkpoints");
    let mut hist: Vec<String> = std::fs::read_dir(ck.join("history"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    hist.sort();
    assert_eq!(hist, ["step_00000002", "step_00000003"]);
    assert_eq!(last_checkpoint(&run).unwrap(), ck.join("last"));

    damage(&ck.join("last/G.safetensors"));
    let err = format!("{:#}", verify_checkpoint(&ck.join("last")).unwrap_err());
    assert!(err.contains("G.safetensors is corrupt"), "{err}");
    assert_eq!(
        last_checkpoint(&run).unwrap(),
        ck.join("history/step_00000003")
    );
    let t = Trainer::resume(&run, &[]).unwrap();
    assert_eq!(t.step, 3);

    // A missing file is found too.
    std::fs::remove_file(ck.join("history/step_00000003/pool_A.npy")).ok();
    std::fs::remove_file(ck.join("history/step_00000003/R.adam.bpk")).unwrap();
    assert_eq!(
        last_checkpoint(&run).unwrap(),
        ck.join("history/step_00000002")
    );
    damage(&ck.join("history/step_00000002/state.json"));
    let err = format!("{:#}", last_checkpoint(&run).unwrap_err());
    assert!(
        err.contains("no sound checkpoint") && err.contains("R.adam.bpk is missing"),
        "{err}"
    );
}

/// A stop inside the final checkpoint's swap (`write_atomic`) left the
/// newest checkpoint in `last.part` (or only `last.old`): resuming finishes
/// the swap, so the finished run's `last` is its final step, not the one
/// before. (Found by the kill test under heavy load.)
#[test]
fn a_stop_inside_the_final_swap_is_finished_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let extra = ["train.epochs=3", "train.steps_per_epoch=1"];
    let mut t = Trainer::new(common::small_config("reggan", &run, &extra)).unwrap();
    t.run(true).unwrap();
    let ck = run.join("checkpoints");
    let g = |d: &str| std::fs::read(ck.join(d).join("G.safetensors")).unwrap();
    let final_g = g("last");
    let step = |d: &str| CheckpointState::load(&ck.join(d)).unwrap().step;

    // Killed after last.part was complete, before it was renamed in.
    std::fs::rename(ck.join("last"), ck.join("last.part")).unwrap();
    std::fs::rename(ck.join("history/step_00000002"), ck.join("last")).unwrap();
    let mut t = Trainer::resume(&run, &[]).unwrap();
    assert_eq!(t.step, 3);
    t.run(true).unwrap();
    assert_eq!(step("last"), 3);
    assert!(g("last") == final_g, "last holds the final weights");
    assert!(!ck.join("last.part").exists());
    assert_eq!(
        step("history/step_00000002"),
        2,
        "the replaced one is history"
    );

    // Killed between the two renames: only last.old.
    std::fs::rename(ck.join("last"), ck.join("last.old")).unwrap();
    let mut t = Trainer::resume(&run, &[]).unwrap();
    t.run(true).unwrap();
    assert_eq!(step("last"), 3);
    assert!(g("last") == final_g);
    assert!(!ck.join("last.old").exists());
}

/// Overwrite the first value of a safetensors file's first tensor with a
/// NaN; the new bytes.
fn put_nan(path: &Path) -> Vec<u8> {
    let mut b = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    b[8 + n..8 + n + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(path, &b).unwrap();
    b
}

/// The weight guard: a network holding a NaN is found by name.
#[test]
fn a_nan_weight_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let extra = ["train.epochs=1", "train.steps_per_epoch=1"];
    let mut t = Trainer::new(common::small_config("reggan", &run, &extra)).unwrap();
    t.run(true).unwrap();
    assert_eq!(t.nets.non_finite().unwrap(), None);
    let ckpt = run.join("checkpoints/last");
    put_nan(&ckpt.join("R.safetensors"));
    t.nets.load(&ckpt).unwrap();
    assert_eq!(t.nets.non_finite().unwrap(), Some("R"));
}

/// A NaN stops training at once, naming the step and the loss term, and
/// leaves the last checkpoint as it was.
#[test]
fn a_nan_stops_training_and_keeps_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let extra = [
        "train.epochs=2",
        "train.steps_per_epoch=1",
        "train.stop_at_step=1",
    ];
    let mut t = Trainer::new(common::small_config("reggan", &run, &extra)).unwrap();
    t.run(true).unwrap();
    drop(t);
    // G's first weight becomes NaN (and the checksum list says so, as if
    // training itself had written it).
    let last = run.join("checkpoints/last");
    let b = put_nan(&last.join("G.safetensors"));
    let sums = std::fs::read_to_string(last.join("checksums.txt")).unwrap();
    let sums: String = sums
        .lines()
        .map(|l| {
            if l.ends_with("  G.safetensors") {
                format!("{:08x}  G.safetensors\n", crc32fast::hash(&b))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(last.join("checksums.txt"), sums).unwrap();
    verify_checkpoint(&last).unwrap();
    let files = |d: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = files(&last);

    let mut t = Trainer::resume(&run, &["train.stop_at_step=0".into()]).unwrap();
    let err = format!("{:#}", t.run(true).err().unwrap());
    assert!(
        err.contains("step 2") && err.contains(" loss became NaN"),
        "{err}"
    );
    assert_eq!(files(&last), before, "the last checkpoint changed");
    assert!(!run.join("checkpoints/history").exists());
}

/// `--on-nan rollback`: a learning rate that blows up sends the run back to
/// its last checkpoint with lower rates until it is finite; the logs and
/// the checkpoint's config follow, and a hopeless run still stops.
#[test]
fn on_nan_rollback_lowers_the_learning_rate_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let extra = [
        "train.epochs=2",
        "train.steps_per_epoch=2",
        "optim.lr=1e30",
        "train.on_nan=\"rollback\"",
        "train.nan_lr_factor=1e-33",
    ];
    let mut t = Trainer::new(common::small_config("pix2pix", &run, &extra)).unwrap();
    let s = t.run(true).unwrap();
    assert_eq!(s.steps, 4);
    assert_eq!(t.rollbacks, 1, "one rollback brings 1e30 down to 1e-3");
    assert!(
        (t.cfg.optim.lr / 1e-3 - 1.0).abs() < 1e-9,
        "{}",
        t.cfg.optim.lr
    );
    assert_eq!(t.nets.non_finite().unwrap(), None);
    let state = medtrans_training::CheckpointState::load(&run.join("checkpoints/last")).unwrap();
    assert!(
        (state.config.optim.lr / t.cfg.optim.lr - 1.0).abs() < 1e-12,
        "a resume keeps the lowered rate: {}",
        state.config.optim.lr
    );
    let log = std::fs::read_to_string(run.join("losses.csv")).unwrap();
    let steps: Vec<&str> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["1", "2", "3", "4"],
        "rows of abandoned steps are dropped"
    );

    // Rates that stay hopeless give up after max_rollbacks, naming the term.
    let mut extra = extra.to_vec();
    extra[4] = "train.nan_lr_factor=0.5";
    extra.push("train.max_rollbacks=2");
    let mut t = Trainer::new(common::small_config(
        "pix2pix",
        &dir.path().join("r2"),
        &extra,
    ))
    .unwrap();
    let err = format!("{:#}", t.run(true).err().unwrap());
    assert!(
        err.contains("after 2 rollbacks")
            && (err.contains("loss became") || err.contains("holds NaN")),
        "{err}"
    );
}
