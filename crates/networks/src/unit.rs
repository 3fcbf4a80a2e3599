//! UNIT's networks (Liu, Breuel and Kautz, "Unsupervised Image-to-Image
//! Translation Networks", NeurIPS 2017) as the RegGAN code trains them
//! (Kong et al. 2021, Kid-Liet/Reg-GAN `Model/Unit.py`, itself the
//! mingyuliutw/UNIT PyTorch code): per domain an autoencoder whose latent
//! is a VAE's mean with the std fixed at 1, and a multi-scale LSGAN
//! discriminator. The two domains' autoencoders share no layers, as in
//! both of those codes (the paper's shared high-level layers are not in
//! them).
use crate::blocks::{instance_norm, normalize, reflect, ResidualBlock};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, InstanceNorm};
use burn::tensor::activation::{leaky_relu, relu};
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use burn::tensor::{Device, Tensor};

/// An autoencoder's sizes (the RegGAN YAML: dim 64, 2 down-samplings, 4
/// residual blocks).
#[derive(Config, Debug, PartialEq)]
pub struct UnitConfig {
    #[config(default = 64)]
    pub dim: usize,
    #[config(default = 2)]
    pub n_downsample: usize,
    #[config(default = 4)]
    pub n_res: usize,
    #[config(default = 1)]
    pub channels: usize,
}

/// PyTorch's default initialisation (the RegGAN code applies no other):
/// uniform in +-1/sqrt(fan_in) for weights and biases.
pub(crate) fn torch_default() -> Initializer {
    Initializer::KaimingUniform {
        gain: 1.0 / 3f64.sqrt(),
        fan_out_only: false,
    }
}

pub(crate) fn conv(cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_initializer(torch_default())
        .init(device)
}

/// UNIT's layer norm: per sample over C, H and W, divided by the unbiased
/// std plus 1e-5 (not the variance's square root with eps inside), then a
/// per-channel scale (initialised uniform in [0, 1)) and shift (0).
#[derive(Module, Debug)]
pub struct UnitLayerNorm {
    gamma: Param<Tensor<1>>,
    beta: Param<Tensor<1>>,
}

impl UnitLayerNorm {
    pub(crate) fn new(channels: usize, device: &Device) -> Self {
        Self {
            gamma: Initializer::Uniform { min: 0.0, max: 1.0 }.init([channels], device),
            beta: Initializer::Zeros.init([channels], device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let flat = x.reshape([n, c * h * w]);
        let mean = flat.clone().mean_dim(1);
        let centred = flat - mean;
        let var = centred.clone().powi_scalar(2).sum_dim(1) / ((c * h * w - 1) as f64);
        let y = (centred / (var.sqrt() + 1e-5)).reshape([n, c, h, w]);
        y * self.gamma.val().reshape([1, c, 1, 1]) + self.beta.val().reshape([1, c, 1, 1])
    }
}

/// Nearest-neighbour doubling of H and W (PyTorch's `Upsample(2)`), built
/// from a reshape and an expand, which have a backward on every backend.
pub fn upsample2(x: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h, 1, w, 1])
        .expand([n, c, h, 2, w, 2])
        .reshape([n, c, 2 * h, 2 * w])
}

/// The content encoder: 7x7 conv, `n_downsample` stride-2 4x4 convs (each
/// doubling the channels), then `n_res` residual blocks; instance norm and
/// ReLU throughout, reflect padding.
#[derive(Module, Debug)]
pub struct UnitEncoder {
    convs: Vec<Conv2d>,
    norms: Vec<InstanceNorm>,
    blocks: Vec<ResidualBlock>,
}

impl UnitEncoder {
    pub fn new(cfg: &UnitConfig, device: &Device) -> Self {
        let mut convs = vec![conv(cfg.channels, cfg.dim, 7, 1, device)];
        let mut norms = vec![instance_norm(cfg.dim, device)];
        let mut d = cfg.dim;
        for _ in 0..cfg.n_downsample {
            convs.push(conv(d, 2 * d, 4, 2, device));
            norms.push(instance_norm(2 * d, device));
            d *= 2;
        }
        let blocks = (0..cfg.n_res)
            .map(|_| ResidualBlock::new(d, &torch_default(), device))
            .collect();
        Self {
            convs,
            norms,
            blocks,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x;
        for (k, (c, n)) in self.convs.iter().zip(&self.norms).enumerate() {
            let pad = if k == 0 { 3 } else { 1 };
            h = relu(normalize(n, c.forward(reflect(h, pad))));
        }
        for b in &self.blocks {
            h = b.forward(h);
        }
        h
    }
}

/// The decoder: `n_res` residual blocks, `n_downsample` times (nearest
/// doubling, 5x5 conv halving the channels, UNIT's layer norm, ReLU), and
/// a 7x7 conv to the image with tanh.
#[derive(Module, Debug)]
pub struct UnitDecoder {
    blocks: Vec<ResidualBlock>,
    ups: Vec<Conv2d>,
    norms: Vec<UnitLayerNorm>,
    last: Conv2d,
}

impl UnitDecoder {
    pub fn new(cfg: &UnitConfig, device: &Device) -> Self {
        let d = cfg.dim << cfg.n_downsample;
        let blocks = (0..cfg.n_res)
            .map(|_| ResidualBlock::new(d, &torch_default(), device))
            .collect();
        let (ups, norms, last) = up_layers(d, cfg.n_downsample, cfg.channels, device);
        Self {
            blocks,
            ups,
            norms,
            last,
        }
    }

    pub fn forward(&self, z: Tensor<4>) -> Tensor<4> {
        let mut h = z;
        for b in &self.blocks {
            h = b.forward(h);
        }
        up_path(&self.ups, &self.norms, &self.last, h)
    }
}

/// The layers of [`up_path`] from `d` channels: `levels` 5x5 convs each
/// halving the channels with their layer norms, and the 7x7 conv to the
/// image.
pub(crate) fn up_layers(
    d: usize,
    levels: usize,
    channels: usize,
    device: &Device,
) -> (Vec<Conv2d>, Vec<UnitLayerNorm>, Conv2d) {
    let (mut ups, mut norms, mut d) = (Vec::new(), Vec::new(), d);
    for _ in 0..levels {
        ups.push(conv(d, d / 2, 5, 1, device));
        norms.push(UnitLayerNorm::new(d / 2, device));
        d /= 2;
    }
    (ups, norms, conv(d, channels, 7, 1, device))
}

/// The decoders' way up (UNIT's and MUNIT's): per level a nearest
/// doubling, a 5x5 conv, UNIT's layer norm and ReLU; then a 7x7 conv to the
/// image with tanh.
pub(crate) fn up_path(
    ups: &[Conv2d],
    norms: &[UnitLayerNorm],
    last: &Conv2d,
    h: Tensor<4>,
) -> Tensor<4> {
    let mut h = h;
    for (c, n) in ups.iter().zip(norms) {
        h = relu(n.forward(c.forward(reflect(upsample2(h), 2))));
    }
    last.forward(reflect(h, 3)).tanh()
}

/// One domain's autoencoder (the RegGAN code's `VAEGen`): its latent for
/// an image is the encoder's output, the VAE's mean; training adds unit
/// Gaussian noise before decoding.
#[derive(Module, Debug)]
pub struct UnitAutoencoder {
    pub encoder: UnitEncoder,
    pub decoder: UnitDecoder,
}

impl UnitConfig {
    pub fn init(&self, device: &Device) -> UnitAutoencoder {
        UnitAutoencoder {
            encoder: UnitEncoder::new(self, device),
            decoder: UnitDecoder::new(self, device),
        }
    }

    /// The image side must halve `n_downsample` times and stay at least 4
    /// px; the reason, naming the field, when it does not.
    pub fn fits(&self, side: usize) -> Result<(), String> {
        let m = 1usize << self.n_downsample;
        if !side.is_multiple_of(m) || side / m < 4 {
            return Err(format!(
                "{side} px slices do not fit UNIT's n_downsample = {} (the side must be a multiple of {m} and at least {})",
                self.n_downsample,
                4 * m
            ));
        }
        Ok(())
    }
}

/// The multi-scale discriminator's sizes (the RegGAN YAML: dim 64, 4
/// layers, 3 scales, no norm, LSGAN).
#[derive(Config, Debug, PartialEq)]
pub struct MsDiscriminatorConfig {
    #[config(default = 64)]
    pub dim: usize,
    #[config(default = 4)]
    pub n_layer: usize,
    #[config(default = 3)]
    pub num_scales: usize,
    #[config(default = 1)]
    pub channels: usize,
}

/// UNIT's and MUNIT's discriminator: `num_scales` PatchGAN-like CNNs, each
/// on the image average-pooled once more than the last (3x3, stride 2,
/// padding 1, padded pixels not counted); each is `n_layer` stride-2 4x4
/// convs (doubling the channels after the first) with leaky ReLU 0.2 and
/// no norm, then a 1x1 conv to one score map.
#[derive(Module, Debug)]
pub struct MsDiscriminator {
    scales: Vec<Vec<Conv2d>>,
}

impl MsDiscriminatorConfig {
    pub fn init(&self, device: &Device) -> MsDiscriminator {
        let scales = (0..self.num_scales)
            .map(|_| {
                let mut convs = vec![conv(self.channels, self.dim, 4, 2, device)];
                let mut d = self.dim;
                for _ in 1..self.n_layer {
                    convs.push(conv(d, 2 * d, 4, 2, device));
                    d *= 2;
                }
                convs.push(conv(d, 1, 1, 1, device));
                convs
            })
            .collect();
        MsDiscriminator { scales }
    }
}

impl MsDiscriminatorConfig {
    /// Whether every scale's convolutions get at least 2 px (what their
    /// reflect padding of 1 needs) on slices of this side; the reason,
    /// naming the fields, when they do not.
    pub fn fits(&self, side: usize) -> Result<(), String> {
        let mut n = side;
        for s in 0..self.num_scales {
            if s > 0 {
                n = (n - 1) / 2 + 1;
            }
            let mut m = n;
            for _ in 0..self.n_layer {
                if m < 2 {
                    return Err(format!(
                        "{side} px slices are too small for a discriminator of {} layers at {} scales (its scale {} would reach 1 px); use fewer dis_layers or dis_scales",
                        self.n_layer, self.num_scales, s + 1
                    ));
                }
                m = (m - 2) / 2 + 1;
            }
        }
        Ok(())
    }
}

impl MsDiscriminator {
    /// One score map per scale, the full-resolution one first.
    pub fn forward(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut x = x;
        let mut out = Vec::with_capacity(self.scales.len());
        for (s, convs) in self.scales.iter().enumerate() {
            if s > 0 {
                x = avg_pool2d(
                    x,
                    AvgPoolOptions {
                        kernel_size: [3, 3],
                        stride: [2, 2],
                        padding: [(1, 1), (1, 1)],
                        count_include_pad: false,
                        ceil_mode: false,
                    },
                );
            }
            let (last, body) = convs.split_last().expect("at least the 1x1 conv");
            let mut h = x.clone();
            for c in body {
                h = leaky_relu(c.forward(reflect(h, 1)), 0.2);
            }
            out.push(last.forward(h));
        }
        out
    }
}

/// The multi-scale LSGAN loss: over scales, the sum of the mean squared
/// distance of each score map to 1 (real) or 0 (fake).
pub fn ms_lsgan(scores: Vec<Tensor<4>>, real: bool) -> Tensor<1> {
    let target = if real { 1.0 } else { 0.0 };
    scores
        .into_iter()
        .map(|s| (s - target).powi_scalar(2).mean())
        .reduce(|a, b| a + b)
        .expect("at least one scale")
}

/// UNIT's KL term for a latent whose std is fixed at 1: the mean of the
/// squared mean (the RegGAN and UNIT codes' `__compute_kl`).
pub fn unit_kl(h: Tensor<4>) -> Tensor<1> {
    h.powi_scalar(2).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn shapes_follow_the_config() {
        let device = Device::flex();
        let cfg = UnitConfig::new().with_dim(8).with_n_res(1);
        let ae = cfg.init(&device);
        let x = Tensor::<4>::zeros([2, 1, 32, 32], &device);
        let h = ae.encoder.forward(x);
        assert_eq!(h.dims(), [2, 32, 8, 8]);
        assert_eq!(ae.decoder.forward(h).dims(), [2, 1, 32, 32]);
        let d = MsDiscriminatorConfig::new().with_dim(8).init(&device);
        let s: Vec<[usize; 4]> = d
            .forward(Tensor::zeros([2, 1, 64, 64], &device))
            .iter()
            .map(|t| t.dims())
            .collect();
        assert_eq!(s, [[2, 1, 4, 4], [2, 1, 2, 2], [2, 1, 1, 1]]);
        assert!(cfg.fits(32).is_ok());
        assert!(cfg.fits(30).unwrap_err().contains("n_downsample"));
        // The defaults (4 layers, 3 scales) need 64 px: 16 at the third
        // scale, 2 before its last conv.
        let d = MsDiscriminatorConfig::new();
        assert!(d.fits(64).is_ok());
        assert!(d.fits(48).unwrap_err().contains("scale 3"));
        for side in [16, 24, 40, 64, 100] {
            let d = MsDiscriminatorConfig::new()
                .with_dim(2)
                .with_n_layer(2)
                .with_num_scales(2);
            if d.fits(side).is_ok() {
                d.init(&device)
                    .forward(Tensor::zeros([1, 1, side, side], &device));
            }
        }
    }

    fn fixture() -> serde_json::Value {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/networks/unit.json"
        );
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    fn floats(v: &serde_json::Value) -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    }

    fn dims(v: &serde_json::Value) -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect()
    }

    /// Parameter counts and shapes against the same architecture in
    /// PyTorch (scripts/make_unit_fixtures.py).
    #[test]
    fn sizes_match_pytorchs() {
        let f = fixture();
        let device = Device::flex();
        for a in f["autoencoders"].as_array().unwrap() {
            let cfg = UnitConfig::new()
                .with_dim(a["dim"].as_u64().unwrap() as usize)
                .with_n_downsample(a["n_downsample"].as_u64().unwrap() as usize)
                .with_n_res(a["n_res"].as_u64().unwrap() as usize);
            let ae = cfg.init(&device);
            assert_eq!(
                ae.encoder.num_params() as u64,
                a["encoder_params"].as_u64().unwrap()
            );
            assert_eq!(
                ae.decoder.num_params() as u64,
                a["decoder_params"].as_u64().unwrap()
            );
            let side = a["side"].as_u64().unwrap() as usize;
            let h = ae
                .encoder
                .forward(Tensor::zeros([2, 1, side, side], &device));
            assert_eq!(h.dims().to_vec(), dims(&a["latent_shape"]));
            assert_eq!(
                ae.decoder.forward(h).dims().to_vec(),
                dims(&a["output_shape"])
            );
        }
        for d in f["discriminators"].as_array().unwrap() {
            let dis = MsDiscriminatorConfig::new()
                .with_dim(d["dim"].as_u64().unwrap() as usize)
                .with_n_layer(d["n_layer"].as_u64().unwrap() as usize)
                .with_num_scales(d["num_scales"].as_u64().unwrap() as usize)
                .init(&device);
            assert_eq!(dis.num_params() as u64, d["params"].as_u64().unwrap());
            let side = d["side"].as_u64().unwrap() as usize;
            let shapes: Vec<Vec<usize>> = dis
                .forward(Tensor::zeros([2, 1, side, side], &device))
                .iter()
                .map(|t| t.dims().to_vec())
                .collect();
            let want: Vec<Vec<usize>> = d["score_shapes"]
                .as_array()
                .unwrap()
                .iter()
                .map(dims)
                .collect();
            assert_eq!(shapes, want);
        }
    }

    /// UNIT's layer norm, the multi-scale LSGAN loss and the KL term
    /// against PyTorch's values.
    #[test]
    fn layer_norm_and_losses_match_pytorchs() {
        let f = fixture();
        let device = Device::flex();
        let l = &f["layer_norm"];
        let shape: [usize; 4] = dims(&l["shape"]).try_into().unwrap();
        let x = Tensor::<4>::from_data(TensorData::new(floats(&l["x"]), shape), &device);
        let t1 = |v: Vec<f32>| {
            let n = v.len();
            Param::from_tensor(Tensor::<1>::from_data(TensorData::new(v, [n]), &device))
        };
        let ln = UnitLayerNorm {
            gamma: t1(floats(&l["gamma"])),
            beta: t1(floats(&l["beta"])),
        };
        let y: Vec<f32> = ln.forward(x).into_data().try_to_vec::<f32>().unwrap();
        for (a, b) in y.iter().zip(floats(&l["y"])) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let g = &f["ms_lsgan"];
        let maps = || -> Vec<Tensor<4>> {
            g["maps"]
                .as_array()
                .unwrap()
                .iter()
                .zip(g["shapes"].as_array().unwrap())
                .map(|(m, s)| {
                    let s: [usize; 4] = dims(s).try_into().unwrap();
                    Tensor::from_data(TensorData::new(floats(m), s), &device)
                })
                .collect()
        };
        let scalar = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap()[0] as f64;
        for (real, key) in [(true, "real"), (false, "fake")] {
            let want = g[key].as_f64().unwrap();
            assert!((scalar(ms_lsgan(maps(), real)) - want).abs() < 1e-5 * want.max(1.0));
        }
        let kl = scalar(unit_kl(maps().remove(0)));
        assert!((kl - g["kl_of_first"].as_f64().unwrap()).abs() < 1e-6);
    }

    #[test]
    fn upsampling_repeats_each_pixel() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 1, 2, 2]),
            &device,
        );
        let v: Vec<f32> = upsample2(x).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(
            v,
            [1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.]
        );
    }
}
