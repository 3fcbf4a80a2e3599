//! Checkpoint format versions. Its own test binary: building networks draws
//! from the device's seeded generator, which tests running in parallel in
//! one process would share (and the resume test needs exact replay).
mod common;
use medtrans_training::{CheckpointState, Trainer};

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
    assert_eq!(state.format_version, 2);
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
