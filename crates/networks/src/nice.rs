//! NICE-GAN's networks (Chen et al., "Reusing Discriminators for
//! Encoding: Towards Unsupervised Image-to-Image Translation", CVPR 2020)
//! as the RegGAN code trains them (Kong et al. 2021, Kid-Liet/Reg-GAN
//! `Model/NiceGan.py`).
//!
//! The discriminator's first layers are the encoder: two spectrally
//! normalised 4x4 stride-2 convs, then U-GAT-IT's class-activation
//! attention (a spectrally normalised linear scores the pooled features;
//! its raw weights re-weight the channels, a 1x1 conv and a learnt residual
//! scale `lamda` follow). The encoding z feeds both the discriminator's
//! two heads (a local and a global one, the "multi-scale" of the paper) and,
//! in C, the other domain's translator: a decoder of an ILN conv, an MLP to
//! AdaILN's gamma and beta, AdaILN residual blocks and pixel-shuffle
//! up-sampling. In NC the RegGAN code gives the translator an encoder of
//! its own (`ResnetGenerator2`) and a discriminator of half the width with
//! replicate padding and a 3x3 global head (`Discriminator2`): both are
//! this file's types with those settings.
//!
//! Spectral normalisation keeps PyTorch's estimate of the largest singular
//! value: vectors u and v (parameters without gradients, saved with the
//! weights, so a resumed run continues the same estimate), sigma = u.W v,
//! the weight divided by sigma; one power iteration refreshes u and v
//! after each optimiser step of the network ([`NiceDiscriminator::refreshed`]),
//! where PyTorch does one at every training forward.
use crate::unit::torch_default;
use burn::config::Config;
use burn::module::{Module, Param, ParamId};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{leaky_relu, relu, softmax, tanh};
use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Device, Distribution, Tensor};

/// PyTorch's `normalize` epsilon in spectral norm.
const SN_EPS: f64 = 1e-12;
/// ILN's and AdaILN's epsilon.
const ILN_EPS: f64 = 1e-5;

/// Pad H and W by `p`: reflect (C's networks) or replicate (NC's).
fn pad(x: Tensor<4>, p: usize, replicate: bool) -> Tensor<4> {
    let mode = if replicate {
        PadMode::Edge
    } else {
        PadMode::Reflect
    };
    x.pad((p, p, p, p), mode)
}

fn unit_vector(x: Tensor<1>) -> Tensor<1> {
    let norm = x.clone().powi_scalar(2).sum().sqrt().clamp_min(SN_EPS);
    x / norm
}

/// One power iteration of PyTorch's spectral norm on a weight matrix
/// `[out, in]` from its left vector u: v = W^T u / |.|, then
/// u = W v / |.|. Returns (u, v).
pub fn power_iteration(mat: Tensor<2>, u: Tensor<1>) -> (Tensor<1>, Tensor<1>) {
    let [rows, cols] = mat.dims();
    let v = unit_vector(
        mat.clone()
            .transpose()
            .matmul(u.reshape([rows, 1]))
            .reshape([cols]),
    );
    let u = unit_vector(mat.matmul(v.clone().reshape([cols, 1])).reshape([rows]));
    (u, v)
}

/// The largest singular value's estimate u . W v.
pub fn spectral_sigma(mat: Tensor<2>, u: Tensor<1>, v: Tensor<1>) -> Tensor<1> {
    let [rows, cols] = mat.dims();
    u.reshape([1, rows])
        .matmul(mat.matmul(v.reshape([cols, 1])))
        .reshape([1])
}

/// A weight divided by its largest singular value's estimate.
#[derive(Module, Debug)]
pub struct SpectralWeight<const D: usize> {
    weight: Param<Tensor<D>>,
    /// Left and right singular vector estimates (no gradients).
    u: Param<Tensor<1>>,
    v: Param<Tensor<1>>,
}

impl<const D: usize> SpectralWeight<D> {
    fn new(weight: Tensor<D>, device: &Device) -> Self {
        let [rows, cols] = Self::matrix_dims(&weight);
        let random = |n| unit_vector(Tensor::random([n], Distribution::Normal(0.0, 1.0), device));
        let frozen =
            |t: Tensor<1>| Param::initialized(ParamId::new(), t.detach()).set_require_grad(false);
        Self {
            weight: Param::from_tensor(weight.detach()),
            u: frozen(random(rows)),
            v: frozen(random(cols)),
        }
        // PyTorch's first training forward: one iteration from random.
        .refreshed()
    }

    fn matrix_dims(w: &Tensor<D>) -> [usize; 2] {
        let dims = w.dims();
        [dims[0], dims[1..].iter().product()]
    }

    /// The weight as PyTorch's spectral norm uses it: W / (u . W v).
    fn normalized(&self) -> Tensor<D> {
        let w = self.weight.val();
        let [rows, cols] = Self::matrix_dims(&w);
        let mat: Tensor<2> = w.clone().reshape([rows, cols]);
        let sigma = spectral_sigma(mat, self.u.val().detach(), self.v.val().detach());
        w / sigma.reshape([1; D])
    }

    /// The raw weight (CAM re-weights channels by it, as the reference).
    fn raw(&self) -> Tensor<D> {
        self.weight.val()
    }

    /// One power iteration on the current weight ([`power_iteration`]).
    pub fn refreshed(self) -> Self {
        let w = self.weight.val().detach();
        let [rows, cols] = Self::matrix_dims(&w);
        let (u, v) = power_iteration(w.reshape([rows, cols]), self.u.val().detach());
        let keep = |p: &Param<Tensor<1>>, t: Tensor<1>| {
            Param::initialized(p.id, t.detach()).set_require_grad(false)
        };
        Self {
            u: keep(&self.u, u),
            v: keep(&self.v, v),
            weight: self.weight,
        }
    }
}

/// A spectrally normalised conv (no built-in padding).
#[derive(Module, Debug)]
pub struct SnConv2d {
    weight: SpectralWeight<4>,
    bias: Option<Param<Tensor<1>>>,
    stride: usize,
}

impl SnConv2d {
    fn new(cin: usize, cout: usize, k: usize, stride: usize, bias: bool, device: &Device) -> Self {
        let conv = Conv2dConfig::new([cin, cout], [k, k])
            .with_bias(bias)
            .with_initializer(torch_default())
            .init(device);
        Self {
            weight: SpectralWeight::new(conv.weight.val(), device),
            bias: conv.bias,
            stride,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let opts = ConvOptions::new([self.stride; 2], [0, 0], [1, 1], 1);
        conv2d(
            x,
            self.weight.normalized(),
            self.bias.as_ref().map(|b| b.val()),
            opts,
        )
    }

    fn refreshed(self) -> Self {
        Self {
            weight: self.weight.refreshed(),
            ..self
        }
    }
}

fn plain_conv(cin: usize, cout: usize, k: usize, bias: bool, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_bias(bias)
        .with_initializer(torch_default())
        .init(device)
}

fn linear(cin: usize, cout: usize, device: &Device) -> Linear {
    LinearConfig::new(cin, cout).with_bias(false).init(device)
}

/// U-GAT-IT's ILN (and, without `gamma`/`beta`, AdaILN's normalisation):
/// a learnt per-channel mix (softmax over `rho`, `[C, 2]`) of instance and
/// layer normalisation, both with PyTorch's unbiased variance.
pub fn iln_mix(x: Tensor<4>, rho: Tensor<2>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let flat = x.clone().reshape([n, c, h * w]);
    let in_mean = flat.clone().mean_dim(2).reshape([n, c, 1, 1]);
    let in_var = flat.var(2).reshape([n, c, 1, 1]);
    let out_in = (x.clone() - in_mean) / (in_var + ILN_EPS).sqrt();
    let all = x.clone().reshape([n, c * h * w]);
    let ln_mean = all.clone().mean_dim(1).reshape([n, 1, 1, 1]);
    let ln_var = all.var(1).reshape([n, 1, 1, 1]);
    let out_ln = (x - ln_mean) / (ln_var + ILN_EPS).sqrt();
    let rho = softmax(rho, 1);
    let r0 = rho.clone().slice([0..c, 0..1]).reshape([1, c, 1, 1]);
    let r1 = rho.slice([0..c, 1..2]).reshape([1, c, 1, 1]);
    out_in * r0 + out_ln * r1
}

/// Instance-layer normalisation with its own affine parameters.
#[derive(Module, Debug)]
pub struct Iln {
    rho: Param<Tensor<2>>,
    gamma: Param<Tensor<1>>,
    beta: Param<Tensor<1>>,
}

impl Iln {
    fn new(c: usize, device: &Device) -> Self {
        Self {
            rho: Param::from_tensor(rho_init(c, [1.0, 3.2], device)),
            gamma: Param::from_tensor(Tensor::ones([c], device)),
            beta: Param::from_tensor(Tensor::zeros([c], device)),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let c = x.dims()[1];
        iln_mix(x, self.rho.val()) * self.gamma.val().reshape([1, c, 1, 1])
            + self.beta.val().reshape([1, c, 1, 1])
    }
}

/// `rho` of `c` channels, every row `[a, b]` (PyTorch fills the two
/// columns so: ILN starts near instance norm's share 1:3.2, AdaILN the
/// other way).
fn rho_init(c: usize, [a, b]: [f32; 2], device: &Device) -> Tensor<2> {
    let row: Tensor<2> = Tensor::from_floats([[a, b]], device);
    row.repeat_dim(0, c)
}

/// AdaILN's residual block: gamma and beta come from the decoder's MLP.
#[derive(Module, Debug)]
pub struct AdaIlnBlock {
    conv1: Conv2d,
    rho1: Param<Tensor<2>>,
    conv2: Conv2d,
    rho2: Param<Tensor<2>>,
}

impl AdaIlnBlock {
    fn new(c: usize, device: &Device) -> Self {
        Self {
            conv1: plain_conv(c, c, 3, false, device),
            rho1: Param::from_tensor(rho_init(c, [3.2, 1.0], device)),
            conv2: plain_conv(c, c, 3, false, device),
            rho2: Param::from_tensor(rho_init(c, [3.2, 1.0], device)),
        }
    }

    fn forward(&self, x: Tensor<4>, gamma: Tensor<4>, beta: Tensor<4>) -> Tensor<4> {
        let h = self.conv1.forward(pad(x.clone(), 1, false));
        let h = relu(iln_mix(h, self.rho1.val()) * gamma.clone() + beta.clone());
        let h = self.conv2.forward(pad(h, 1, false));
        iln_mix(h, self.rho2.val()) * gamma + beta + x
    }
}

/// The encoder that is a discriminator's first layers.
#[derive(Module, Debug)]
pub struct NiceEncoder {
    convs: Vec<SnConv2d>,
    cam_fc: SpectralWeight<2>,
    conv1x1: Conv2d,
    lamda: Param<Tensor<1>>,
    replicate: bool,
}

impl NiceEncoder {
    fn new(dim: usize, channels: usize, replicate: bool, device: &Device) -> Self {
        let fc = LinearConfig::new(4 * dim, 1)
            .with_bias(false)
            .with_initializer(torch_default())
            .init(device);
        Self {
            convs: vec![
                SnConv2d::new(channels, dim, 4, 2, true, device),
                SnConv2d::new(dim, 2 * dim, 4, 2, true, device),
            ],
            // Burn's linear weight is [in, out]; PyTorch's, and spectral
            // norm's matrix, [out, in].
            cam_fc: SpectralWeight::new(fc.weight.val().transpose(), device),
            conv1x1: plain_conv(4 * dim, 2 * dim, 1, true, device),
            lamda: Param::from_tensor(Tensor::zeros([1], device)),
            replicate,
        }
    }

    /// (z, the CAM logit as `[N, 1, 1, 1]`).
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let mut x = x;
        for c in &self.convs {
            x = leaky_relu(c.forward(pad(x, 1, self.replicate)), 0.2);
        }
        let [n, c, h, w] = x.dims();
        let flat = x.clone().reshape([n, c, h * w]);
        let gap = flat.clone().mean_dim(2).reshape([n, c]);
        let gmp = flat.max_dim(2).reshape([n, c]);
        let pooled = Tensor::cat(vec![gap, gmp], 1);
        let cam = pooled
            .matmul(self.cam_fc.normalized().transpose())
            .reshape([n, 1, 1, 1]);
        let weight = self.cam_fc.raw().reshape([1, 2 * c, 1, 1]);
        let both = Tensor::cat(vec![x.clone(), x.clone()], 1) * weight;
        let h = self.conv1x1.forward(both) * self.lamda.val().reshape([1, 1, 1, 1]) + x;
        (leaky_relu(h, 0.2), cam)
    }

    fn refreshed(self) -> Self {
        Self {
            convs: self.convs.into_iter().map(SnConv2d::refreshed).collect(),
            cam_fc: self.cam_fc.refreshed(),
            ..self
        }
    }
}

/// A NICE-GAN discriminator's sizes. C: the translators' `dim`, reflect
/// padding, a 4x4 global head (`Discriminator`); NC: its own `dim`,
/// replicate padding, a 3x3 head (`Discriminator2`).
#[derive(Config, Debug, PartialEq)]
pub struct NiceDiscriminatorConfig {
    #[config(default = 64)]
    pub dim: usize,
    /// The reference's `n_layers`: the local head has `n_layers - 6`
    /// stride-2 convs after the encoder, the global one 2 more.
    #[config(default = 7)]
    pub n_layers: usize,
    #[config(default = false)]
    pub replicate: bool,
    #[config(default = 4)]
    pub global_kernel: usize,
    #[config(default = 1)]
    pub channels: usize,
}

/// Encoder, then a local and a global head.
#[derive(Module, Debug)]
pub struct NiceDiscriminator {
    pub encoder: NiceEncoder,
    local_down: Vec<SnConv2d>,
    local_last: SnConv2d,
    local_out: SnConv2d,
    global_down: Vec<SnConv2d>,
    global_last: SnConv2d,
    global_out: SnConv2d,
    replicate: bool,
}

impl NiceDiscriminatorConfig {
    pub fn init(&self, device: &Device) -> NiceDiscriminator {
        let (d, l) = (self.dim, self.n_layers);
        assert!(
            l >= 6,
            "NICE-GAN's discriminator has at least 6 layers, not {l}"
        );
        let down = |range: std::ops::Range<usize>| {
            range
                .map(|i| {
                    let m = d << (i - 1);
                    SnConv2d::new(m, 2 * m, 4, 2, true, device)
                })
                .collect::<Vec<_>>()
        };
        let last = |m: usize| SnConv2d::new(m, 2 * m, 4, 1, true, device);
        NiceDiscriminator {
            encoder: NiceEncoder::new(d, self.channels, self.replicate, device),
            local_down: down(2..l - 4),
            local_last: last(d << (l - 5)),
            local_out: SnConv2d::new(d << (l - 4), 1, 4, 1, false, device),
            global_down: down(l - 4..l - 2),
            global_last: last(d << (l - 3)),
            global_out: SnConv2d::new(d << (l - 2), 1, self.global_kernel, 1, false, device),
            replicate: self.replicate,
        }
    }

    /// Whether every conv of both heads gets an input its kernel fits on
    /// slices of this side; the reason, naming the fields, when not.
    pub fn fits(&self, side: usize) -> Result<(), String> {
        if self.n_layers < 6 {
            return Err(format!(
                "dis_layers = {} is below NICE-GAN's least, 6",
                self.n_layers
            ));
        }
        // (kernel, stride) of each padded conv, per head.
        let enc = [(4, 2), (4, 2)];
        let local: Vec<(usize, usize)> = enc
            .into_iter()
            .chain((2..self.n_layers - 4).map(|_| (4, 2)))
            .chain([(4, 1), (4, 1)])
            .collect();
        let global: Vec<(usize, usize)> = local[..local.len() - 2]
            .iter()
            .copied()
            .chain([(4, 2), (4, 2), (4, 1), (self.global_kernel, 1)])
            .collect();
        // Reflect padding by 1 needs 2 px; replicate padding 1.
        let least = if self.replicate { 1 } else { 2 };
        for (head, convs) in [("local", local), ("global", global)] {
            let mut n = side;
            for (k, s) in convs {
                if n < least || n + 2 < k {
                    return Err(format!(
                        "{side} px slices are too small for NICE-GAN's {head} discriminator head of dis_layers = {} (it would reach {n} px); use fewer dis_layers or larger slices",
                        self.n_layers
                    ));
                }
                n = (n + 2 - k) / s + 1;
            }
        }
        Ok(())
    }
}

impl NiceDiscriminator {
    fn run(&self, convs: &[SnConv2d], x: Tensor<4>) -> Tensor<4> {
        convs.iter().fold(x, |x, c| {
            leaky_relu(c.forward(pad(x, 1, self.replicate)), 0.2)
        })
    }

    /// The two heads' score maps on an encoding: [local, global].
    pub fn classify(&self, z: Tensor<4>) -> [Tensor<4>; 2] {
        let x0 = self.run(&self.local_down, z);
        let x1 = self.run(&self.global_down, x0.clone());
        let x0 = self.run(std::slice::from_ref(&self.local_last), x0);
        let x1 = self.run(std::slice::from_ref(&self.global_last), x1);
        [
            self.local_out.forward(pad(x0, 1, self.replicate)),
            self.global_out.forward(pad(x1, 1, self.replicate)),
        ]
    }

    /// Every score LSGAN sees: local, global and the CAM logit.
    pub fn forward(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let (z, cam) = self.encoder.forward(x);
        let [local, global] = self.classify(z);
        vec![local, global, cam]
    }

    /// One power iteration on every spectrally normalised weight.
    pub fn refreshed(self) -> Self {
        let r = |v: Vec<SnConv2d>| v.into_iter().map(SnConv2d::refreshed).collect();
        Self {
            encoder: self.encoder.refreshed(),
            local_down: r(self.local_down),
            local_last: self.local_last.refreshed(),
            local_out: self.local_out.refreshed(),
            global_down: r(self.global_down),
            global_last: self.global_last.refreshed(),
            global_out: self.global_out.refreshed(),
            replicate: self.replicate,
        }
    }
}

/// A NICE-GAN translator's sizes.
#[derive(Config, Debug, PartialEq)]
pub struct NiceGeneratorConfig {
    /// The encoder's first width: z has 2 dim channels, the decoder 4 dim.
    #[config(default = 64)]
    pub dim: usize,
    #[config(default = 7)]
    pub n_blocks: usize,
    /// The MLP to gamma and beta from globally pooled features (U-GAT-IT's
    /// light model) instead of from every pixel.
    #[config(default = false)]
    pub light: bool,
    /// NC's translator: an encoder of its own, replicate padding at the
    /// decoder's ends. C's reads the other network's encoding.
    #[config(default = false)]
    pub own_encoder: bool,
    #[config(default = 1)]
    pub channels: usize,
}

/// The decoder, and in NC its own encoder.
#[derive(Module, Debug)]
pub struct NiceGenerator {
    pub encoder: Option<NiceEncoder>,
    up0: Conv2d,
    up0_norm: Iln,
    mlp: Vec<Linear>,
    gamma: Linear,
    beta: Linear,
    blocks: Vec<AdaIlnBlock>,
    up: Vec<(Conv2d, Iln, Conv2d, Iln)>,
    out: Conv2d,
    light: bool,
    replicate: bool,
}

impl NiceGeneratorConfig {
    /// For `side` px slices: the full MLP reads all (side/4)^2 positions.
    pub fn init(&self, side: usize, device: &Device) -> NiceGenerator {
        let d = self.dim;
        let c = 4 * d;
        let mlp_in = if self.light {
            c
        } else {
            (side / 4) * (side / 4) * c
        };
        NiceGenerator {
            encoder: self
                .own_encoder
                .then(|| NiceEncoder::new(d, self.channels, true, device)),
            up0: plain_conv(2 * d, c, 3, true, device),
            up0_norm: Iln::new(c, device),
            mlp: vec![linear(mlp_in, c, device), linear(c, c, device)],
            gamma: linear(c, c, device),
            beta: linear(c, c, device),
            blocks: (0..self.n_blocks)
                .map(|_| AdaIlnBlock::new(c, device))
                .collect(),
            up: [c, c / 2]
                .into_iter()
                .map(|m| {
                    (
                        plain_conv(m, m / 2, 3, false, device),
                        Iln::new(m / 2, device),
                        plain_conv(m / 2, 2 * m, 1, true, device),
                        Iln::new(m / 2, device),
                    )
                })
                .collect(),
            out: plain_conv(d, self.channels, 7, false, device),
            light: self.light,
            replicate: self.own_encoder,
        }
    }

    /// Slices whose side four divides (two pixel shuffles undo two halvings).
    pub fn fits(&self, side: usize) -> Result<(), String> {
        if !side.is_multiple_of(4) || side < 16 {
            return Err(format!("NICE-GAN translates slices whose side is a multiple of 4, at least 16; these are {side} px"));
        }
        Ok(())
    }
}

/// PyTorch's PixelShuffle(2): [N, 4C, H, W] -> [N, C, 2H, 2W].
pub fn pixel_shuffle2(x: Tensor<4>) -> Tensor<4> {
    let [n, c4, h, w] = x.dims();
    let c = c4 / 4;
    x.reshape([n * c, 2, 2, h, w])
        .permute([0, 3, 1, 4, 2])
        .reshape([n, c, 2 * h, 2 * w])
}

impl NiceGenerator {
    /// An image from an encoding z (`[N, 2 dim, side/4, side/4]`).
    pub fn decode(&self, z: Tensor<4>) -> Tensor<4> {
        let x = self.up0.forward(pad(z, 1, self.replicate));
        let x = relu(self.up0_norm.forward(x));
        let [n, c, h, w] = x.dims();
        let mut f = if self.light {
            x.clone().reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
        } else {
            x.clone().reshape([n, c * h * w])
        };
        for l in &self.mlp {
            f = relu(l.forward(f));
        }
        let gamma = self.gamma.forward(f.clone()).reshape([n, c, 1, 1]);
        let beta = self.beta.forward(f).reshape([n, c, 1, 1]);
        let mut x = x;
        for b in &self.blocks {
            x = b.forward(x, gamma.clone(), beta.clone());
        }
        for (conv, norm, expand, norm2) in &self.up {
            x = relu(norm.forward(conv.forward(pad(x, 1, false))));
            x = relu(norm2.forward(pixel_shuffle2(expand.forward(x))));
        }
        tanh(self.out.forward(pad(x, 3, self.replicate)))
    }

    /// NC's translation: its own encoder, then the decoder.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let e = self
            .encoder
            .as_ref()
            .expect("only NC's translator has an encoder of its own");
        self.decode(e.forward(x).0)
    }

    /// One power iteration on its encoder's spectral norms (NC).
    pub fn refreshed(self) -> Self {
        Self {
            encoder: self.encoder.map(NiceEncoder::refreshed),
            ..self
        }
    }
}
