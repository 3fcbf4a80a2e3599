use crate::blocks::{instance_norm, leaky, normalize};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Dropout, DropoutConfig, InstanceNorm, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// pix2pix's U-Net generator (`unet_128` has 7 levels, `unet_256` 8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnetGeneratorConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub ngf: usize,
    /// Number of stride-2 levels; the input side must be divisible by
    /// 2^levels (`unet_128`: 7 for 128 px).
    pub levels: usize,
    /// Dropout 0.5 in the innermost 8*ngf blocks while training.
    pub dropout: bool,
}

/// Levels, outermost first. Level `l` maps `outer[l]` channels to `inner[l]`
/// going down and `inner[l]` (or twice that, after the skip concatenation)
/// back to `outer[l]` coming up.
#[derive(Module, Debug)]
pub struct UnetGenerator {
    down: Vec<Conv2d>,
    /// Norms after the down convs of levels 1..levels-2 (none on the
    /// outermost and innermost).
    down_norm: Vec<InstanceNorm>,
    up: Vec<ConvTranspose2d>,
    /// Norms after the up convs of levels 1..levels-1 (none on the output).
    up_norm: Vec<InstanceNorm>,
    dropout: Dropout,
    /// Levels from this one to the one above the innermost use dropout.
    dropout_from: usize,
}

impl UnetGeneratorConfig {
    /// The reference's level count for a square input of `size` px.
    pub fn levels_for(size: usize) -> usize {
        size.max(2).ilog2() as usize
    }

    pub fn init(&self, device: &Device) -> UnetGenerator {
        assert!(self.levels >= 5, "the U-Net needs at least 5 levels");
        let n = self.levels;
        let f = self.ngf;
        let inner: Vec<usize> = (0..n).map(|l| f * (1 << l.min(3))).collect();
        let outer: Vec<usize> = (0..n)
            .map(|l| {
                if l == 0 {
                    self.out_channels
                } else {
                    inner[l - 1]
                }
            })
            .collect();
        let init = crate::gan_init();
        let down = (0..n)
            .map(|l| {
                let cin = if l == 0 { self.in_channels } else { outer[l] };
                Conv2dConfig::new([cin, inner[l]], [4, 4])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_initializer(init.clone())
                    .init(device)
            })
            .collect();
        let up = (0..n)
            .map(|l| {
                let cin = if l == n - 1 { inner[l] } else { 2 * inner[l] };
                ConvTranspose2dConfig::new([cin, outer[l]], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .with_initializer(init.clone())
                    .init(device)
            })
            .collect();
        let net = UnetGenerator {
            down,
            down_norm: (1..n - 1)
                .map(|l| instance_norm(inner[l], device))
                .collect(),
            up,
            up_norm: (1..n).map(|l| instance_norm(outer[l], device)).collect(),
            dropout: DropoutConfig::new(if self.dropout { 0.5 } else { 0.0 }).init(),
            dropout_from: 4,
        };
        crate::zero_biases(net)
    }
}

impl UnetGenerator {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.logits(x).tanh()
    }

    /// The output before the final tanh (a segmentor's class logits).
    pub fn logits(&self, x: Tensor<4>) -> Tensor<4> {
        self.level(0, x)
    }

    fn level(&self, l: usize, x: Tensor<4>) -> Tensor<4> {
        let n = self.down.len();
        let d = if l == 0 {
            self.down[0].forward(x.clone())
        } else {
            let d = self.down[l].forward(leaky(x.clone(), 0.2));
            if l < n - 1 {
                normalize(&self.down_norm[l - 1], d)
            } else {
                d
            }
        };
        let u = if l == n - 1 { d } else { self.level(l + 1, d) };
        let m = self.up[l].forward(leaky(u, 0.0));
        if l == 0 {
            return m;
        }
        let mut m = normalize(&self.up_norm[l - 1], m);
        if l >= self.dropout_from && l < n - 1 {
            m = self.dropout.forward(m);
        }
        Tensor::cat(vec![x, m], 1)
    }
}
