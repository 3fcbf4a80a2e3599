//! What networks need of the data, checked before a run is built: each is
//! the `check_data` hook of a network in `nets::NETWORKS`, so the trainer
//! names no network.
use crate::config::TrainConfig;
use anyhow::{bail, Context, Result};
use medtrans_datasets::SliceDataset;
use medtrans_networks::{PredictorConfig, PredictorTask};

/// The segmentors: a power-of-two side of 32 px at least (U-Nets), and
/// label maps of both domains with classes 0..segmentor.classes.
pub fn segmentors(cfg: &mut TrainConfig, train: &SliceDataset, w: usize) -> Result<()> {
    if !w.is_power_of_two() || w < 32 {
        bail!("{}: the segmentors (U-Nets) need slices of a power-of-two size of at least 32 px; these are {w} px", cfg.data.path.display());
    }
    check_labels(train, cfg.segmentor.classes).with_context(|| {
        format!(
            "options.shape (shape consistency and the segmentors' loss) needs label maps in {}",
            cfg.data.path.display()
        )
    })
}

/// The predictor: per-slice labels that fit its task, and labelled source
/// slices when it guides G.
pub fn predictor(cfg: &mut TrainConfig, train: &SliceDataset, _: usize) -> Result<()> {
    let labelled_a = train
        .slice_labels_a
        .as_ref()
        .is_some_and(|l| l.iter().any(|v| !v.is_nan()));
    if crate::term_options::GuidedOptions::of(cfg).guidance > 0.0 && !labelled_a {
        bail!(
            "{}: options.guided.guidance > 0 needs labelled A (source) slices, but the {} split has none: guidance would do nothing",
            cfg.data.path.display(),
            cfg.data.train_split
        );
    }
    check_slice_labels(train, &mut cfg.predictor).with_context(|| {
        format!(
            "options.guided (the predictor's loss and its guidance) needs per-slice labels in {} (medtrans prepare --slice-labels)",
            cfg.data.path.display()
        )
    })
}

/// Both domains' label maps are present and hold classes 0..classes.
fn check_labels(ds: &SliceDataset, classes: usize) -> Result<()> {
    let dir = ds.root.join(&ds.split);
    for (name, maps) in [
        ("A_labels.npy", &ds.labels_a),
        ("B_labels.npy", &ds.labels_b),
    ] {
        let Some(maps) = maps else {
            bail!("{} is missing", dir.join(name).display());
        };
        let top = maps
            .iter()
            .flat_map(|m| m.data.iter())
            .fold(0f32, |a, &b| a.max(b));
        if top as usize >= classes {
            bail!(
                "{} holds class {top}, but segmentor.classes = {classes} (classes are 0..{})",
                dir.join(name).display(),
                classes - 1
            );
        }
    }
    Ok(())
}

/// The training split's per-slice labels must exist and fit the task; a
/// regression's label mean and spread are filled in where not given.
fn check_slice_labels(ds: &SliceDataset, p: &mut PredictorConfig) -> Result<()> {
    let dir = ds.root.join(&ds.split);
    let labelled: Vec<f32> = [&ds.slice_labels_a, &ds.slice_labels_b]
        .into_iter()
        .flatten()
        .flatten()
        .copied()
        .filter(|v| !v.is_nan())
        .collect();
    if labelled.is_empty() {
        bail!(
            "{} has no labelled slice (A_slice_labels.npy or B_slice_labels.npy)",
            dir.display()
        );
    }
    match p.task {
        PredictorTask::Classification => {
            if let Some(v) = labelled
                .iter()
                .find(|v| !(v.fract() == 0.0 && **v >= 0.0 && (**v as usize) < p.classes))
            {
                bail!(
                    "{} holds the label {v}, but predictor.classes = {} (classes are 0..{})",
                    dir.display(),
                    p.classes,
                    p.classes - 1
                );
            }
        }
        PredictorTask::Regression => p.fill_label_scale(&labelled),
    }
    Ok(())
}
