use crate::{ResnetGenerator, ResnetGeneratorConfig, UnetGenerator, UnetGeneratorConfig};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GeneratorKind {
    /// CycleGAN's ResNet generator (RegGAN's default).
    Resnet,
    /// pix2pix's U-Net with skip connections.
    Unet,
}

/// Which translator to build, as written in a training config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorConfig {
    pub kind: GeneratorKind,
    /// Channels of a source image (domain A): 1 for a slice, more for a
    /// stack of neighbouring slices (2.5-D).
    pub in_channels: usize,
    /// Channels of a target image (domain B).
    pub out_channels: usize,
    pub ngf: usize,
    /// Residual blocks (ResNet only).
    pub n_blocks: usize,
    /// Down levels (U-Net only); 0 picks log2 of the image size.
    pub levels: usize,
    /// Dropout in the inner U-Net blocks while training (U-Net only).
    pub dropout: bool,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            kind: GeneratorKind::Resnet,
            in_channels: 1,
            out_channels: 1,
            ngf: 64,
            n_blocks: 9,
            levels: 0,
            dropout: true,
        }
    }
}

/// One generator lives per network slot, so the variants' size gap is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Generator {
    Resnet(ResnetGenerator),
    Unet(UnetGenerator),
}

impl GeneratorConfig {
    /// The same translator the other way round (F: B -> A).
    pub fn reversed(&self) -> Self {
        Self {
            in_channels: self.out_channels,
            out_channels: self.in_channels,
            ..self.clone()
        }
    }

    /// Build for `size` x `size` images.
    pub fn init(&self, size: usize, device: &Device) -> Generator {
        match self.kind {
            GeneratorKind::Resnet => Generator::Resnet(
                ResnetGeneratorConfig {
                    in_channels: self.in_channels,
                    out_channels: self.out_channels,
                    ngf: self.ngf,
                    n_blocks: self.n_blocks,
                }
                .init(device),
            ),
            GeneratorKind::Unet => Generator::Unet(
                UnetGeneratorConfig {
                    in_channels: self.in_channels,
                    out_channels: self.out_channels,
                    ngf: self.ngf,
                    levels: if self.levels == 0 {
                        UnetGeneratorConfig::levels_for(size)
                    } else {
                        self.levels
                    },
                    dropout: self.dropout,
                }
                .init(device),
            ),
        }
    }

    /// The image side must be divisible by this.
    pub fn size_multiple(&self, size: usize) -> usize {
        match self.kind {
            GeneratorKind::Resnet => 4,
            GeneratorKind::Unet => {
                let levels = if self.levels == 0 {
                    UnetGeneratorConfig::levels_for(size)
                } else {
                    self.levels
                };
                1 << levels
            }
        }
    }
}

impl Generator {
    /// G(x), computed in the weights' dtype (see [`crate::cast_weights`]),
    /// answered in f32.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = crate::precision::enter(self, x);
        crate::precision::leave(match self {
            Generator::Resnet(g) => g.forward(x),
            Generator::Unet(g) => g.forward(x),
        })
    }
}
