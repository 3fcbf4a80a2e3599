use crate::blocks::{instance_norm, leaky, normalize_act};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{InstanceNorm, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// The 70x70 PatchGAN discriminator (3 layers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscriminatorConfig {
    /// 1 for an image, 2 for a conditional (x, y) pair as in pix2pix.
    pub in_channels: usize,
    pub ndf: usize,
    /// Average the patch scores to one value per image before the loss,
    /// as the RegGAN code does; otherwise each patch is scored (CycleGAN).
    pub per_image: bool,
}

impl Default for DiscriminatorConfig {
    fn default() -> Self {
        Self {
            in_channels: 1,
            ndf: 64,
            per_image: false,
        }
    }
}

#[derive(Module, Debug)]
pub struct Discriminator {
    convs: Vec<Conv2d>,
    /// Norms after convs 1..=3 (none on the first and the last).
    norms: Vec<InstanceNorm>,
    per_image: bool,
}

impl DiscriminatorConfig {
    pub fn init(&self, device: &Device) -> Discriminator {
        let f = self.ndf;
        // (in, out, stride)
        let plan = [
            (self.in_channels, f, 2),
            (f, 2 * f, 2),
            (2 * f, 4 * f, 2),
            (4 * f, 8 * f, 1),
            (8 * f, 1, 1),
        ];
        let init = crate::gan_init();
        let net = Discriminator {
            convs: plan
                .iter()
                .map(|&(i, o, s)| {
                    Conv2dConfig::new([i, o], [4, 4])
                        .with_stride([s, s])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .with_initializer(init.clone())
                        .init(device)
                })
                .collect(),
            norms: plan[1..4]
                .iter()
                .map(|&(_, o, _)| instance_norm(o, device))
                .collect(),
            per_image: self.per_image,
        };
        crate::zero_biases(net)
    }
}

impl Discriminator {
    /// Real/fake scores (logits): `[N, 1, h, w]` per patch, or `[N, 1, 1, 1]`
    /// per image. Computed in the weights' dtype, answered in f32.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = crate::precision::enter(self, x);
        let mut h = leaky(self.convs[0].forward(x), 0.2);
        for (c, n) in self.convs[1..4].iter().zip(&self.norms) {
            h = normalize_act(n, c.forward(h), 0.2);
        }
        let out = crate::precision::leave(self.convs[4].forward(h));
        if self.per_image {
            out.mean_dim(3).mean_dim(2)
        } else {
            out
        }
    }
}
