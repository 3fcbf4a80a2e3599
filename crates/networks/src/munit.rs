//! MUNIT's networks (Huang, Liu, Belongie and Kautz, "Multimodal
//! Unsupervised Image-to-Image Translation", ECCV 2018) as the RegGAN code
//! trains them (Kid-Liet/Reg-GAN `Model/Munit.py`, the NVlabs/MUNIT code):
//! per domain a content encoder (UNIT's), a style encoder, and a decoder
//! whose residual blocks are normalised by adaptive instance norm with
//! scales and shifts that an MLP computes from the style code. The
//! discriminator is UNIT's multi-scale one.
use crate::blocks::{instance_norm, normalize, reflect};
use crate::unit::{
    conv, torch_default, up_layers, up_path, UnitConfig, UnitEncoder, UnitLayerNorm,
};
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{InstanceNorm, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// A generator's sizes (the RegGAN YAML: dim 64, 2 down-samplings, 4
/// residual blocks, style 8, MLP 256).
#[derive(Config, Debug, PartialEq)]
pub struct MunitConfig {
    #[config(default = 64)]
    pub dim: usize,
    #[config(default = 2)]
    pub n_downsample: usize,
    #[config(default = 4)]
    pub n_res: usize,
    #[config(default = 8)]
    pub style_dim: usize,
    #[config(default = 256)]
    pub mlp_dim: usize,
    #[config(default = 1)]
    pub channels: usize,
}

impl MunitConfig {
    fn content(&self) -> UnitConfig {
        UnitConfig::new()
            .with_dim(self.dim)
            .with_n_downsample(self.n_downsample)
            .with_n_res(self.n_res)
            .with_channels(self.channels)
    }

    /// Channels of the content code (and of the decoder's residual blocks).
    fn content_channels(&self) -> usize {
        self.dim << self.n_downsample
    }

    /// Scales and shifts the MLP makes: two per channel per AdaIN layer,
    /// two layers per residual block.
    pub fn adain_params(&self) -> usize {
        self.n_res * 2 * 2 * self.content_channels()
    }

    pub fn init(&self, device: &Device) -> MunitGenerator {
        MunitGenerator {
            content: UnitEncoder::new(&self.content(), device),
            style: StyleEncoder::new(self, device),
            decoder: MunitDecoder::new(self, device),
            mlp: [
                LinearConfig::new(self.style_dim, self.mlp_dim),
                LinearConfig::new(self.mlp_dim, self.mlp_dim),
                LinearConfig::new(self.mlp_dim, self.adain_params()),
            ]
            .map(|c| c.with_initializer(torch_default()).init(device))
            .to_vec(),
            style_dim: self.style_dim,
        }
    }

    /// The side must halve `n_downsample` times for the content and 4
    /// times for the style encoder, staying at least 4 px; the reason,
    /// naming the field, when it does not.
    pub fn fits(&self, side: usize) -> Result<(), String> {
        self.content().fits(side)?;
        if side < 64 {
            return Err(format!(
                "{side} px slices are too small for MUNIT's style encoder (4 stride-2 layers: at least 64 px)"
            ));
        }
        Ok(())
    }
}

/// The style encoder: 7x7 conv, 2 stride-2 4x4 convs doubling the
/// channels, 2 more keeping them, global average pooling and a 1x1 conv to
/// the style code; ReLU, no norm, reflect padding.
#[derive(Module, Debug)]
pub struct StyleEncoder {
    convs: Vec<Conv2d>,
    out: Conv2d,
}

impl StyleEncoder {
    fn new(cfg: &MunitConfig, device: &Device) -> Self {
        let mut convs = vec![conv(cfg.channels, cfg.dim, 7, 1, device)];
        let mut d = cfg.dim;
        for k in 0..4 {
            let next = if k < 2 { 2 * d } else { d };
            convs.push(conv(d, next, 4, 2, device));
            d = next;
        }
        Self {
            convs,
            out: conv(d, cfg.style_dim, 1, 1, device),
        }
    }

    /// `[N, style_dim, 1, 1]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x;
        for (k, c) in self.convs.iter().enumerate() {
            h = relu(c.forward(reflect(h, if k == 0 { 3 } else { 1 })));
        }
        let [n, c, hh, ww] = h.dims();
        let pooled = h.reshape([n, c, 1, hh * ww]).mean_dim(3);
        self.out.forward(pooled)
    }
}

/// Instance norm, then per-sample scales and shifts: `[N, C]` each.
fn adain(norm: &InstanceNorm, x: Tensor<4>, scale: Tensor<2>, shift: Tensor<2>) -> Tensor<4> {
    let [n, c] = scale.dims();
    normalize(norm, x) * scale.reshape([n, c, 1, 1]) + shift.reshape([n, c, 1, 1])
}

/// A residual block with AdaIN: conv, AdaIN, ReLU, conv, AdaIN, plus the
/// input.
#[derive(Module, Debug)]
pub struct AdainBlock {
    conv1: Conv2d,
    conv2: Conv2d,
    norm: InstanceNorm,
}

/// The decoder: AdaIN residual blocks, then UNIT's up-sampling path.
#[derive(Module, Debug)]
pub struct MunitDecoder {
    blocks: Vec<AdainBlock>,
    ups: Vec<Conv2d>,
    norms: Vec<UnitLayerNorm>,
    last: Conv2d,
}

impl MunitDecoder {
    fn new(cfg: &MunitConfig, device: &Device) -> Self {
        let d = cfg.content_channels();
        let blocks = (0..cfg.n_res)
            .map(|_| AdainBlock {
                conv1: conv(d, d, 3, 1, device),
                conv2: conv(d, d, 3, 1, device),
                norm: instance_norm(d, device),
            })
            .collect();
        let (ups, norms, last) = up_layers(d, cfg.n_downsample, cfg.channels, device);
        Self {
            blocks,
            ups,
            norms,
            last,
        }
    }

    /// `params`: `[N, adain_params]`, consumed layer by layer in MUNIT's
    /// order: per AdaIN layer, C shifts, then C scales.
    pub fn forward(&self, content: Tensor<4>, params: Tensor<2>) -> Tensor<4> {
        let [_, c, _, _] = content.dims();
        let mut at = 0;
        let mut take = |p: &Tensor<2>| {
            let shift = p.clone().narrow(1, at, c);
            let scale = p.clone().narrow(1, at + c, c);
            at += 2 * c;
            (scale, shift)
        };
        let mut h = content;
        for b in &self.blocks {
            let (s1, m1) = take(&params);
            let (s2, m2) = take(&params);
            let r = relu(adain(
                &b.norm,
                b.conv1.forward(reflect(h.clone(), 1)),
                s1,
                m1,
            ));
            let r = adain(&b.norm, b.conv2.forward(reflect(r, 1)), s2, m2);
            h = h + r;
        }
        up_path(&self.ups, &self.norms, &self.last, h)
    }
}

/// One domain's MUNIT generator (the RegGAN code's `AdaINGen`).
#[derive(Module, Debug)]
pub struct MunitGenerator {
    pub content: UnitEncoder,
    pub style: StyleEncoder,
    pub decoder: MunitDecoder,
    mlp: Vec<Linear>,
    style_dim: usize,
}

impl MunitGenerator {
    /// The image of a content code in a style (`[N, style_dim, 1, 1]`).
    pub fn decode(&self, content: Tensor<4>, style: Tensor<4>) -> Tensor<4> {
        let [n, ..] = style.dims();
        let mut p = style.reshape([n, self.style_dim]);
        let last = self.mlp.len() - 1;
        for (k, l) in self.mlp.iter().enumerate() {
            p = l.forward(p);
            if k < last {
                p = relu(p);
            }
        }
        self.decoder.forward(content, p)
    }

    pub fn style_dim(&self) -> usize {
        self.style_dim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parameter counts and shapes against the same architecture in
    /// PyTorch (scripts/make_munit_fixtures.py).
    #[test]
    fn sizes_match_pytorchs() {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/networks/munit.json"
        );
        let f: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        let device = Device::flex();
        let n = |v: &serde_json::Value| v.as_u64().unwrap() as usize;
        let dims =
            |v: &serde_json::Value| -> Vec<usize> { v.as_array().unwrap().iter().map(n).collect() };
        for g in f["generators"].as_array().unwrap() {
            let cfg = MunitConfig::new()
                .with_dim(n(&g["dim"]))
                .with_n_downsample(n(&g["n_downsample"]))
                .with_n_res(n(&g["n_res"]))
                .with_style_dim(n(&g["style_dim"]))
                .with_mlp_dim(n(&g["mlp_dim"]));
            assert_eq!(cfg.adain_params(), n(&g["adain_params"]));
            let gen = cfg.init(&device);
            assert_eq!(gen.content.num_params(), n(&g["content_params"]));
            assert_eq!(gen.style.num_params(), n(&g["style_params"]));
            assert_eq!(gen.decoder.num_params(), n(&g["decoder_params"]));
            let mlp: usize = gen.mlp.iter().map(|l| l.num_params()).sum();
            assert_eq!(mlp, n(&g["mlp_params"]));
            let side = n(&g["side"]);
            let x = Tensor::<4>::zeros([2, 1, side, side], &device);
            let (c, s) = (gen.content.forward(x.clone()), gen.style.forward(x));
            assert_eq!(c.dims().to_vec(), dims(&g["content_shape"]));
            assert_eq!(s.dims().to_vec(), dims(&g["style_shape"]));
            assert_eq!(gen.decode(c, s).dims().to_vec(), dims(&g["output_shape"]));
        }
    }

    #[test]
    fn shapes_and_adain_parameters_follow_the_config() {
        let device = Device::flex();
        let cfg = MunitConfig::new().with_dim(4).with_n_res(1).with_mlp_dim(8);
        assert_eq!(cfg.adain_params(), 2 * 2 * 16);
        let g = cfg.init(&device);
        let x = Tensor::<4>::zeros([2, 1, 64, 64], &device);
        let c = g.content.forward(x.clone());
        let s = g.style.forward(x);
        assert_eq!((c.dims(), s.dims()), ([2, 16, 16, 16], [2, 8, 1, 1]));
        assert_eq!(g.decode(c, s).dims(), [2, 1, 64, 64]);
        assert!(cfg.fits(64).is_ok());
        assert!(cfg.fits(32).unwrap_err().contains("style encoder"));
    }
}
