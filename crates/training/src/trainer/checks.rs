//! What the trainer checks of the data before it builds a run: square
//! slices the family takes, the validation split, and each network's own
//! needs (`nets::NetSpec::check_data`).
use super::*;
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
/// validation split of the same size, and what each network of the run
/// needs (its `check_data`, which may fill in settings such as a
/// regression's label scale). Returns the slice side.
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
    // What each of the run's networks needs of the data (label maps for
    // segmentors, per-slice labels for a predictor): hooks of the networks.
    let names = crate::nets::networks_of(cfg)?;
    for spec in family.networks.iter().chain(crate::nets::NETWORKS) {
        if let (true, Some(check)) = (names.contains(&spec.name), spec.check_data) {
            check(cfg, train, w)?;
        }
    }
    Ok(w)
}
