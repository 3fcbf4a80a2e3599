use crate::blocks::{conv, instance_norm, normalize_act, reflect, ResidualBlock};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{InstanceNorm, PaddingConfig2d};
use burn::store::{KeyRemapper, ModuleSnapshot, PytorchStore, SafetensorsStore};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The CycleGAN ResNet generator's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResnetGeneratorConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    /// Filters of the first layer (the reference's `ngf`).
    pub ngf: usize,
    pub n_blocks: usize,
}

impl Default for ResnetGeneratorConfig {
    fn default() -> Self {
        Self {
            in_channels: 1,
            out_channels: 1,
            ngf: 64,
            n_blocks: 9,
        }
    }
}

/// CycleGAN's ResNet generator: 7x7 head, two stride-2 downsamplings,
/// `n_blocks` residual blocks, two transposed-conv upsamplings, 7x7 tail
/// and tanh. Works on any size divisible by 4.
#[derive(Module, Debug)]
pub struct ResnetGenerator {
    head: Conv2d,
    head_norm: InstanceNorm,
    down: Vec<Conv2d>,
    down_norm: Vec<InstanceNorm>,
    blocks: Vec<ResidualBlock>,
    up: Vec<ConvTranspose2d>,
    up_norm: Vec<InstanceNorm>,
    tail: Conv2d,
}

impl ResnetGeneratorConfig {
    pub fn init(&self, device: &Device) -> ResnetGenerator {
        let init = crate::gan_init();
        let f = self.ngf;
        let down = [(f, 2 * f), (2 * f, 4 * f)];
        let up = [(4 * f, 2 * f), (2 * f, f)];
        let net = ResnetGenerator {
            head: conv(self.in_channels, f, 7, &init, device),
            head_norm: instance_norm(f, device),
            down: down
                .iter()
                .map(|&(i, o)| {
                    Conv2dConfig::new([i, o], [3, 3])
                        .with_stride([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .with_initializer(init.clone())
                        .init(device)
                })
                .collect(),
            down_norm: down
                .iter()
                .map(|&(_, o)| instance_norm(o, device))
                .collect(),
            blocks: (0..self.n_blocks)
                .map(|_| ResidualBlock::new(4 * f, &init, device))
                .collect(),
            up: up
                .iter()
                .map(|&(i, o)| {
                    ConvTranspose2dConfig::new([i, o], [3, 3])
                        .with_stride([2, 2])
                        .with_padding([1, 1])
                        .with_padding_out([1, 1])
                        .with_initializer(init.clone())
                        .init(device)
                })
                .collect(),
            up_norm: up.iter().map(|&(_, o)| instance_norm(o, device)).collect(),
            tail: conv(f, self.out_channels, 7, &init, device),
        };
        crate::zero_biases(net)
    }

    /// Parameter names of the reference PyTorch implementation
    /// (`networks.ResnetGenerator`, an `nn.Sequential` called `model`)
    /// mapped to ours, as (regex, replacement) pairs.
    fn pytorch_keys(&self) -> Vec<(String, String)> {
        let n = self.n_blocks;
        let mut keys = vec![
            (r"^model\.1\.".to_string(), "head.".to_string()),
            (r"^model\.4\.".into(), "down.0.".into()),
            (r"^model\.7\.".into(), "down.1.".into()),
            (format!(r"^model\.{}\.", 10 + n), "up.0.".into()),
            (format!(r"^model\.{}\.", 13 + n), "up.1.".into()),
            (format!(r"^model\.{}\.", 17 + n), "tail.".into()),
        ];
        for b in 0..n {
            keys.push((
                format!(r"^model\.{}\.conv_block\.1\.", 10 + b),
                format!("blocks.{b}.conv1."),
            ));
            keys.push((
                format!(r"^model\.{}\.conv_block\.5\.", 10 + b),
                format!("blocks.{b}.conv2."),
            ));
        }
        keys
    }
}

impl ResnetGenerator {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = normalize_act(&self.head_norm, self.head.forward(reflect(x, 3)), 0.0);
        for (c, n) in self.down.iter().zip(&self.down_norm) {
            h = normalize_act(n, c.forward(h), 0.0);
        }
        for b in &self.blocks {
            h = b.forward(h);
        }
        for (c, n) in self.up.iter().zip(&self.up_norm) {
            h = normalize_act(n, c.forward(h), 0.0);
        }
        self.tail.forward(reflect(h, 3)).tanh()
    }

    /// Load weights saved from the reference PyTorch ResnetGenerator
    /// (CycleGAN/pix2pix `networks.py`, InstanceNorm, no dropout): its
    /// `state_dict()` as safetensors, or as a PyTorch checkpoint (`.pth`,
    /// `.pt`, `.bin`: `torch.save`'s zip or legacy format). A checkpoint is
    /// read by a pickle interpreter that runs no code, and refused unless
    /// its pickle holds only tensors and plain containers
    /// ([`check_pickle`]). Every tensor must be found.
    pub fn load_pytorch(
        config: &ResnetGeneratorConfig,
        path: &Path,
        device: &Device,
    ) -> Result<Self, String> {
        let mut model = config.init(device);
        let mut remap = KeyRemapper::new();
        for (from, to) in config.pytorch_keys() {
            remap = remap
                .add_pattern(&from, &to)
                .map_err(|e| format!("bad key pattern {from}: {e}"))?;
        }
        let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let result = if is_pickle_checkpoint(path) {
            check_pickle(path)?;
            let mut store = PytorchStore::from_file(path).remap(remap);
            model.load_from(&mut store).map_err(|e| fail(&e))?
        } else {
            let mut store = SafetensorsStore::from_file(path).remap(remap);
            model.load_from(&mut store).map_err(|e| fail(&e))?
        };
        if !result.missing.is_empty() || !result.errors.is_empty() {
            return Err(format!(
                "{}: not a CycleGAN ResnetGenerator with ngf {} and {} blocks (missing {:?}, errors {:?})",
                path.display(),
                config.ngf,
                config.n_blocks,
                result.missing,
                result.errors
            ));
        }
        Ok(model)
    }
}

/// Whether `path` is a PyTorch pickle checkpoint rather than safetensors:
/// by its extension.
fn is_pickle_checkpoint(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("pth" | "pt" | "bin" | "ckpt")
    )
}

/// Refuse a PyTorch checkpoint whose pickle holds anything but tensors and
/// plain containers (dicts, lists, tuples, numbers, strings).
///
/// A pickle is a program: Python's `torch.load` (before `weights_only`)
/// calls whatever function it names, which is how a hostile `.pth` runs
/// code. medtrans never runs it. burn-store's reader (`pytorch-reader`) is
/// an interpreter written in Rust that only builds values: it rebuilds
/// tensors and `OrderedDict`s and keeps every other callable as an inert
/// name. This check then refuses the file if any such name is left, so
/// that a checkpoint smuggling `os.system`, or just a numpy scalar or a
/// custom class, is reported rather than half-used.
pub fn check_pickle(path: &Path) -> Result<(), String> {
    use pytorch_reader::{PickleValue, PytorchReader};
    let root = PytorchReader::read_pickle_data(path, None)
        .map_err(|e| format!("{}: not a readable PyTorch checkpoint: {e}", path.display()))?;
    fn find(v: &PickleValue, at: &str) -> Option<(String, String)> {
        match v {
            PickleValue::Unsupported(name) if name == "torch.Tensor" => None,
            PickleValue::Unsupported(name) => Some((at.to_string(), name.clone())),
            PickleValue::List(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, x)| find(x, &format!("{at}[{i}]"))),
            PickleValue::Dict(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                keys.into_iter().find_map(|k| {
                    let at = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    find(&map[k], &at)
                })
            }
            _ => None,
        }
    }
    match find(&root, "") {
        None => Ok(()),
        Some((at, name)) => Err(format!(
            "{}: refused: its pickle asks for `{name}` (at `{at}`), which is neither a tensor \
             nor a plain container. medtrans loads weights only (a state_dict); nothing in the \
             file was run. Save the weights alone (torch.save(model.state_dict(), ...)) or as \
             safetensors",
            path.display()
        )),
    }
}
