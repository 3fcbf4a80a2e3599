//! What the trainer checks of the data before it builds a run: label maps
//! for segmentors, per-slice labels for a predictor, the validation split.
use super::*;
use medtrans_networks::{PredictorConfig, PredictorTask};
/// Both domains' label maps are present and hold classes 0..classes.
pub(super) fn check_labels(ds: &SliceDataset, classes: usize) -> Result<()> {
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
pub(super) fn check_slice_labels(ds: &SliceDataset, p: &mut PredictorConfig) -> Result<()> {
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

/// The validation split, or None (with a warning) when the dataset has
/// none; any other problem with it is an error.
pub(super) fn open_validation(cfg: &TrainConfig) -> Result<Option<SliceDataset>> {
    let split = &cfg.data.val_split;
    if !SliceDataset::has_split(&cfg.data.path, split) {
        tracing::warn!(
            "{}: no {split} split; training without validation or a best checkpoint",
            cfg.data.path.display()
        );
        return Ok(None);
    }
    let v = SliceDataset::open(&cfg.data.path, split)
        .with_context(|| format!("opening the {split} split of {}", cfg.data.path.display()))?;
    Ok((!v.is_empty()).then_some(v))
}

/// The data fit the config: square slices the generator can take, a
/// validation split of the same size, label maps and per-slice labels where
/// terms need them (a regression's label scale is filled in). Returns the
/// slice side.
pub(super) fn check_data(
    cfg: &mut TrainConfig,
    train: &SliceDataset,
    val: Option<&SliceDataset>,
) -> Result<usize> {
    let (w, h) = train.dims();
    if w != h {
        bail!(
            "{}: slices are {w}x{h}; training needs square slices (medtrans prepare makes them)",
            cfg.data.path.display()
        );
    }
    // Whether the family's networks take this size and the one channel.
    let family = crate::family::get(&cfg.family)?;
    (family.fits)(cfg, w).map_err(|why| anyhow::anyhow!("{}: {why}", cfg.data.path.display()))?;
    if let Some(v) = &val {
        if v.dims() != (w, h) {
            bail!(
                "{}: the {} split has {:?} px slices, the {} split {w}x{h}",
                cfg.data.path.display(),
                cfg.data.val_split,
                v.dims(),
                cfg.data.train_split
            );
        }
    }
    if cfg.uses_segmentors() && (!w.is_power_of_two() || w < 32) {
        bail!("{}: the segmentors (U-Nets) need slices of a power-of-two size of at least 32 px; these are {w} px", cfg.data.path.display());
    }
    if cfg.uses_segmentors() {
        check_labels(train, cfg.segmentor.classes).with_context(|| {
            format!(
                "loss.shape and loss.segmentation need label maps in {}",
                cfg.data.path.display()
            )
        })?;
    }
    if cfg.uses_predictor() {
        let labelled_a = train
            .slice_labels_a
            .as_ref()
            .is_some_and(|l| l.iter().any(|v| !v.is_nan()));
        if cfg.loss.guidance > 0.0 && !labelled_a {
            bail!(
                "{}: loss.guidance > 0 needs labelled A (source) slices, but the {} split has none: guidance would do nothing",
                cfg.data.path.display(),
                cfg.data.train_split
            );
        }
        check_slice_labels(train, &mut cfg.predictor).with_context(|| {
            format!(
                "loss.prediction and loss.guidance need per-slice labels in {} (medtrans prepare --slice-labels)",
                cfg.data.path.display()
            )
        })?;
    }
    Ok(w)
}
