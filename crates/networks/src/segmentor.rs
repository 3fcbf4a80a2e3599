//! Segmentors for the shape-consistency loss: a U-Net per domain that
//! labels every pixel, so that a translated image can be asked to segment
//! as its source did (Zhang et al., CVPR 2018).
use crate::unet::{UnetGenerator, UnetGeneratorConfig};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentorConfig {
    /// Label classes, background included (label values 0..classes).
    pub classes: usize,
    pub ngf: usize,
    /// Whether the shape loss also trains the segmentors (jointly, as in
    /// the paper). `false` keeps them fixed under the shape loss: they learn
    /// from real labelled images only, and only the translators adapt.
    pub learn_from_translations: bool,
    /// A checkpoint folder (`RUN/checkpoints/last`) whose S_A and S_B
    /// start these segmentors: pretrained ones. With
    /// `options.shape.segmentation = 0` and `learn_from_translations = false` they
    /// stay frozen.
    pub init_from: Option<std::path::PathBuf>,
}

impl Default for SegmentorConfig {
    fn default() -> Self {
        Self {
            classes: 4,
            ngf: 16,
            learn_from_translations: true,
            init_from: None,
        }
    }
}

/// A U-Net whose output channels are class logits (no final tanh).
#[derive(Module, Debug)]
pub struct Segmentor {
    unet: UnetGenerator,
}

impl SegmentorConfig {
    /// A segmentor for `size` px images of `channels` channels.
    pub fn init(&self, size: usize, channels: usize, device: &Device) -> Segmentor {
        Segmentor {
            unet: UnetGeneratorConfig {
                in_channels: channels,
                out_channels: self.classes,
                ngf: self.ngf,
                levels: UnetGeneratorConfig::levels_for(size).max(5),
                dropout: false,
            }
            .init(device),
        }
    }
}

impl Segmentor {
    /// Class logits `[N, classes, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.unet.logits(x)
    }
}
