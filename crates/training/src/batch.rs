//! A training batch: the pairs' images as tensors and the optional parts a
//! run's terms may need (label maps, per-slice labels), made once per step.
//! A term takes what it needs from it; the trainer threads nothing by hand.
use crate::config::TrainConfig;
use crate::tensors::{one_hot, stack};
use crate::terms::SampleLabels;
use burn::tensor::{Device, Tensor};
use medtrans_datasets::Pair;
use medtrans_io::Slice;

pub struct Batch {
    /// Domain A images `[N, C, H, W]`.
    pub x: Tensor<4>,
    /// Domain B images as the model sees them (noisy, maybe unpaired).
    pub y: Tensor<4>,
    /// One-hot label maps `[N, classes, H, W]` of x and of y, for runs with
    /// segmentors (and a split with label maps).
    pub labels_a: Option<Tensor<4>>,
    pub labels_b: Option<Tensor<4>>,
    /// The per-slice labels (for a predictor) of x's and y's slices that
    /// have one.
    pub slice_labels_a: SampleLabels,
    pub slice_labels_b: SampleLabels,
}

impl Batch {
    /// Images alone, no optional parts.
    pub fn images(x: Tensor<4>, y: Tensor<4>) -> Batch {
        Batch {
            x,
            y,
            labels_a: None,
            labels_b: None,
            slice_labels_a: SampleLabels::default(),
            slice_labels_b: SampleLabels::default(),
        }
    }

    /// The batch of `pairs`, with the parts the config's terms need.
    pub fn of(pairs: &[Pair], cfg: &TrainConfig, device: &Device) -> Batch {
        let images =
            |side: fn(&Pair) -> &Slice| stack(&pairs.iter().map(side).collect::<Vec<_>>(), device);
        let labels = |side: fn(&Pair) -> &Option<Slice>| {
            let maps: Option<Vec<&Slice>> = pairs.iter().map(|p| side(p).as_ref()).collect();
            maps.filter(|_| cfg.uses_segmentors())
                .map(|m| one_hot(&m, cfg.segmentor.classes, device))
        };
        Batch {
            x: images(|p| &p.a),
            y: images(|p| &p.b),
            labels_a: labels(|p| &p.a_labels),
            labels_b: labels(|p| &p.b_labels),
            slice_labels_a: SampleLabels::of(pairs.iter().map(|p| p.a_slice_label)),
            slice_labels_b: SampleLabels::of(pairs.iter().map(|p| p.b_slice_label)),
        }
    }
}
