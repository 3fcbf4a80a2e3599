//! The intensity calibration of a model: what applying it to a new volume
//! needs to know, derived from the manifest of the data it trained on.
use crate::SliceDataset;
use medtrans_transforms::{IntensityMap, Normalization};
use serde::{Deserialize, Serialize};

/// What applying the model to a new volume needs to know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Side of the square slices the model was trained on.
    pub size: usize,
    /// Slicing axis of the training volumes (0 sagittal, 1 coronal, 2 axial).
    pub axis: Option<usize>,
    /// How source volumes were scaled to [-1, 1].
    pub normalization_a: Option<Normalization>,
    /// How target volumes were scaled to [-1, 1] (what a predictor of
    /// target images expects).
    #[serde(default)]
    pub normalization_b: Option<Normalization>,
    /// Target units of [-1, 1]: the mean of the training subjects' maps.
    pub target_map: Option<IntensityMap>,
    /// Whether training volumes were masked (outside set to -1).
    pub masked: bool,
}

impl ModelInfo {
    pub fn from_dataset(ds: &SliceDataset) -> Self {
        let (w, h) = ds.dims();
        let size = w.max(h);
        let Some(m) = &ds.manifest else {
            return Self {
                size,
                axis: None,
                normalization_a: None,
                normalization_b: None,
                target_map: None,
                masked: false,
            };
        };
        let maps: Vec<&IntensityMap> = m
            .subjects
            .iter()
            .filter(|s| s.split.as_deref().is_none_or(|sp| sp == ds.split))
            .map(|s| &s.map_b)
            .collect();
        let n = maps.len().max(1) as f64;
        let target_map = (!maps.is_empty()).then(|| IntensityMap {
            low: maps.iter().map(|m| m.low).sum::<f64>() / n,
            high: maps.iter().map(|m| m.high).sum::<f64>() / n,
        });
        Self {
            size: m.size,
            axis: Some(m.axis),
            normalization_a: Some(m.normalization_a.clone()),
            normalization_b: Some(m.normalization_b.clone()),
            target_map,
            masked: m.has_mask,
        }
    }
}
