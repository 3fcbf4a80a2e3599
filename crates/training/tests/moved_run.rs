//! A moved run resumes. Its own test binary: building networks draws from
//! the device's seeded generator, shared by tests in one process.
mod common;
use medtrans_training::{CheckpointState, Trainer};

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A project folder holding its dataset and its run can be moved (or
/// copied) and the run still resumes: the checkpoint keeps the dataset's
/// path relative to the run.
#[test]
fn a_moved_project_folder_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let before = dir.path().join("project");
    copy_dir(common::dataset(32), &before.join("data"));
    let data = format!("data.path={:?}", before.join("data").to_str().unwrap());
    let extra = [
        "train.epochs=2",
        "train.steps_per_epoch=1",
        "train.stop_at_step=1",
        data.as_str(),
    ];
    let mut t = Trainer::new(common::small_config("pix2pix", &before.join("run"), &extra)).unwrap();
    t.run(true).unwrap();
    drop(t);
    let state = CheckpointState::load(&before.join("run/checkpoints/last")).unwrap();
    assert_eq!(state.config.data.path, std::path::Path::new("../data"));

    let after = dir.path().join("moved");
    std::fs::rename(&before, &after).unwrap();
    let mut t = Trainer::resume(&after.join("run"), &["train.stop_at_step=0".into()]).unwrap();
    assert_eq!(t.step, 1);
    assert!(
        t.cfg.data.path.starts_with(&after),
        "{}",
        t.cfg.data.path.display()
    );
    t.run(true).unwrap();
    assert_eq!(t.step, 2);
}
