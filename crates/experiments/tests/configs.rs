//! Every committed experiment config loads through its experiment and
//! builds its whole grid of training configs, so a config-format change
//! cannot strand the published experiments.
use medtrans_experiments::{
    AugmentConfig, Experiment, ManyToOneConfig, ShapeConfig, SubjectsConfig, SweepConfig,
    Table1Config,
};
use std::path::{Path, PathBuf};

fn runs_of<E: Experiment>(path: &Path) -> usize {
    let cfg = E::load(path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
    cfg.grid()
        .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()))
        .len()
}

#[test]
fn every_committed_experiment_config_loads_and_builds_its_grid() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Paths in the configs are relative to the repository root.
    std::env::set_current_dir(&root).unwrap();
    let dir = root.join("configs/experiments");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let runs = match name.split('-').next().unwrap() {
            "noise" => runs_of::<SweepConfig>(&path),
            "many" => runs_of::<ManyToOneConfig>(&path),
            "shape" => runs_of::<ShapeConfig>(&path),
            "augment" => runs_of::<AugmentConfig>(&path),
            // Its subjects CSV names files in ../shared/data.
            "subjects" if medtrans_io::shared_data_or_skip().is_none() => continue,
            "subjects" => runs_of::<SubjectsConfig>(&path),
            "table1" if medtrans_io::shared_data_or_skip().is_none() => continue,
            "table1" => runs_of::<Table1Config>(&path),
            _ => panic!("{}: which experiment is this?", path.display()),
        };
        assert!(runs > 0, "{name}");
        seen += 1;
    }
    assert!(seen >= 10, "{seen} configs");
    // The seeded sweeps keep their run folders: base runs plus one per
    // further seed and cell.
    let seeds = SweepConfig::load(&dir.join("noise-sweep-seeds.toml")).unwrap();
    assert_eq!((seeds.base, seeds.extra_seeds.clone()), (Some(1), vec![2]));
    assert_eq!(seeds.grid().unwrap().len(), 3 * 3 * 2);
    // Table 1: 4 families x 4 modes x 2 seeds on fold 0.
    if medtrans_io::shared_data_or_skip().is_some() {
        let t = Table1Config::load(&dir.join("table1-brats.toml")).unwrap();
        assert_eq!(t.grid().unwrap().len(), 4 * 4 * 2);
    }
}
