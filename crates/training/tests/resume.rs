//! Stopping at step k and resuming gives exactly the run that never stopped.
mod common;
use medtrans_training::{CheckpointState, Trainer};

fn losses(run: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(run.join("losses.csv"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn resumed_run_matches_the_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    // C+R has every network, both pools and R: the most state to restore.
    let extra = [
        "train.epochs=2",
        "train.steps_per_epoch=6",
        "train.pool_size=3",
    ];
    let whole = dir.path().join("whole");
    let mut t = Trainer::new(common::small_config("cycle+reg", &whole, &extra)).unwrap();
    t.run(true).unwrap();

    let parts = dir.path().join("parts");
    let mut stop = extra.to_vec();
    stop.push("train.stop_at_step=8");
    let mut t = Trainer::new(common::small_config("cycle+reg", &parts, &stop)).unwrap();
    let s = t.run(true).unwrap();
    assert_eq!(s.steps, 8);
    let state = CheckpointState::load(&parts.join("checkpoints/last")).unwrap();
    assert_eq!(state.step, 8);
    drop(t);
    // Changing the schedule would break the match: refused.
    let err = Trainer::resume(&parts, &["optim.lr=0.1".to_string()])
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("optim.lr") && err.contains("train.stop_at_step"),
        "{err}"
    );
    // A crash between checkpoint swaps leaves `last.old`; resume finds it.
    let ck = parts.join("checkpoints");
    std::fs::rename(ck.join("last"), ck.join("last.old")).unwrap();
    let mut t = Trainer::resume(&parts, &["train.stop_at_step=0".to_string()]).unwrap();
    assert_eq!(t.step, 8);
    t.run(true).unwrap();

    let (a, b) = (losses(&whole), losses(&parts));
    assert_eq!(a.len(), 13, "header + 12 steps");
    assert_eq!(a, b, "loss trajectories differ after resuming");
    // Validation and checkpoints exist for both epochs.
    let val = std::fs::read_to_string(parts.join("validation.csv")).unwrap();
    assert_eq!(val.lines().count(), 3, "{val}");
    for f in ["G", "F", "D_A", "D_B", "R"] {
        assert!(parts
            .join(format!("checkpoints/last/{f}.safetensors"))
            .is_file());
    }
    assert!(parts.join("samples/epoch_002.png").is_file());
}

#[test]
fn resume_refuses_a_folder_without_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let err = Trainer::resume(dir.path(), &[]).err().unwrap().to_string();
    assert!(err.contains("not a medtrans checkpoint"), "{err}");
}
