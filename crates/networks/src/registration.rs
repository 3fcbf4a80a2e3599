use crate::blocks::{leaky, ResidualBlock};
use crate::resize::resize_bilinear;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// RegGAN's registration network R (a residual U-Net).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    /// Most down levels (RegGAN: 7). Fewer are used when the image is too
    /// small to halve that often: the bottleneck keeps at least 2 px.
    pub max_levels: usize,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self { max_levels: 7 }
    }
}

/// Channels of RegGAN's down path; the up path mirrors them, ending in 32.
const DOWN: [usize; 7] = [32, 64, 64, 64, 64, 64, 64];

#[derive(Module, Debug)]
struct DownBlock {
    conv: Conv2d,
    res: ResidualBlock,
}

/// Predicts a displacement field, in pixels, that registers its first input
/// onto its second: channel 0 is the row (y) offset, channel 1 the column
/// (x) offset, as in RegGAN's `Transformer_2D`.
#[derive(Module, Debug)]
pub struct RegistrationNet {
    down: Vec<DownBlock>,
    pool: MaxPool2d,
    bottleneck_in: Conv2d,
    bottleneck: Vec<ResidualBlock>,
    bottleneck_out: Conv2d,
    up: Vec<Conv2d>,
    refine: ResidualBlock,
    refine_conv: Conv2d,
    output: Conv2d,
}

fn conv_same(cin: usize, cout: usize, k: usize, init: &Initializer, device: &Device) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_initializer(init.clone())
        .init(device)
}

impl RegistrationConfig {
    /// Levels used for `size` px images: halve while the bottleneck keeps
    /// at least 2 px (7 at 256 px, 5 at 64 px).
    pub fn levels_for(&self, size: usize) -> usize {
        let fit = (size.max(4).ilog2() as usize).saturating_sub(1);
        fit.clamp(1, self.max_levels.clamp(1, DOWN.len()))
    }

    /// R for `size` px images of `channels` channels (it sees two).
    pub fn init(&self, size: usize, channels: usize, device: &Device) -> RegistrationNet {
        let levels = self.levels_for(size);
        let init = Initializer::KaimingNormal {
            gain: 2f64.sqrt(),
            fan_out_only: false,
        };
        let down_ch = &DOWN[..levels];
        let mut cin = 2 * channels;
        let down = down_ch
            .iter()
            .map(|&c| {
                let b = DownBlock {
                    conv: conv_same(cin, c, 3, &init, device),
                    res: ResidualBlock::new(c, &init, device),
                };
                cin = c;
                b
            })
            .collect();
        let deepest = *down_ch.last().unwrap();
        // Up step j joins the skip of level levels-1-j; outputs 64 ... 64, 32.
        let mut ch = deepest;
        let up = (0..levels)
            .map(|j| {
                let skip = down_ch[levels - 1 - j];
                let out = if j == levels - 1 { 32 } else { 64 };
                let c = conv_same(ch + skip, out, 3, &init, device);
                ch = out;
                c
            })
            .collect();
        let net = RegistrationNet {
            down,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            bottleneck_in: conv_same(deepest, 2 * deepest, 1, &init, device),
            bottleneck: (0..3)
                .map(|_| ResidualBlock::new(2 * deepest, &init, device))
                .collect(),
            bottleneck_out: conv_same(2 * deepest, deepest, 1, &init, device),
            up,
            refine: ResidualBlock::new(32, &init, device),
            refine_conv: conv_same(32, 32, 1, &init, device),
            // Near-zero output: R starts as (almost) the identity transform.
            output: conv_same(
                32,
                2,
                3,
                &Initializer::Normal {
                    mean: 0.0,
                    std: 1e-5,
                },
                device,
            ),
        };
        crate::zero_biases(net)
    }
}

impl RegistrationNet {
    /// Field registering `moving` (e.g. G(x)) to `fixed` (y); both
    /// `[N, C, H, W]`, the result `[N, 2, H, W]` in pixels. Computed in the
    /// weights' dtype, answered in f32.
    pub fn forward(&self, moving: Tensor<4>, fixed: Tensor<4>) -> Tensor<4> {
        let mut h = crate::precision::enter(self, Tensor::cat(vec![moving, fixed], 1));
        let mut skips = Vec::with_capacity(self.down.len());
        for block in &self.down {
            h = block.res.forward(leaky(block.conv.forward(h), 0.2));
            skips.push(h.clone());
            h = self.pool.forward(h);
        }
        h = leaky(self.bottleneck_in.forward(h), 0.2);
        for b in &self.bottleneck {
            h = b.forward(h);
        }
        h = leaky(self.bottleneck_out.forward(h), 0.2);
        for conv in &self.up {
            let skip = skips.pop().expect("one skip per level");
            let [_, _, sh, sw] = skip.dims();
            let up = resize_bilinear(h, [sh, sw]);
            h = leaky(conv.forward(Tensor::cat(vec![up, skip], 1)), 0.2);
        }
        h = self.refine.forward(h);
        h = leaky(self.refine_conv.forward(h), 0.2);
        crate::precision::leave(self.output.forward(h))
    }
}
