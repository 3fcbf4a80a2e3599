//! Predictors for predictor-guided translation: a ResNet (He et al., 2016)
//! for 1-channel slices that classifies a slice or regresses a measurement
//! from it. Its loss on translated images guides the translator, and the
//! trained predictor is a product in its own right (`medtrans predict`).
//!
//! Group normalisation replaces ResNet's batch normalisation: translation
//! trains on batches of one or two slices, where batch statistics are noise
//! and would differ between training and inference.
use burn::module::{Module, Param, ParamId};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// What a predictor learns from each slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictorTask {
    /// One number per slice (a measurement), learnt with the mean squared
    /// error on standardised labels.
    #[default]
    Regression,
    /// One of `classes` classes per slice, learnt with cross-entropy.
    Classification,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PredictorConfig {
    pub task: PredictorTask,
    /// Classes of a classification (labels 0..classes).
    pub classes: usize,
    /// Filters of the first stage; the stages have width, 2x, 4x, 8x.
    /// ResNet-18 uses 64.
    pub width: usize,
    /// Residual blocks per stage; ResNet-18 is [2, 2, 2, 2].
    pub blocks: Vec<usize>,
    /// The predictor's learning rate (the paper's 1e-3; the translators
    /// keep `optim.lr`), decayed on the same schedule.
    pub lr: f64,
    /// Mean and standard deviation of the regression labels: P learns
    /// standardised labels and answers in label units. The trainer fills
    /// them in from the training split when not given.
    pub label_mean: Option<f32>,
    pub label_std: Option<f32>,
}

impl Default for PredictorConfig {
    fn default() -> Self {
        Self {
            task: PredictorTask::Regression,
            classes: 2,
            width: 64,
            blocks: vec![2, 2, 2, 2],
            lr: 1e-3,
            label_mean: None,
            label_std: None,
        }
    }
}

/// ResNet's basic block with group norms; a 1x1 projection on the
/// shortcut where the shape changes.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    norm1: GroupNorm,
    conv2: Conv2d,
    norm2: GroupNorm,
    shortcut: Option<Conv2d>,
    shortcut_norm: Option<GroupNorm>,
}

fn group_norm(channels: usize, device: &Device) -> GroupNorm {
    GroupNormConfig::new(groups(channels), channels).init(device)
}

/// Up to 8 groups that divide the channels.
fn groups(channels: usize) -> usize {
    (1..=8)
        .rev()
        .find(|&g| channels.is_multiple_of(g))
        .unwrap_or(1)
}

fn conv3(cin: usize, cout: usize, stride: usize, init: &Initializer, d: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        .with_initializer(init.clone())
        .init(d)
}

impl BasicBlock {
    fn new(cin: usize, cout: usize, stride: usize, init: &Initializer, d: &Device) -> Self {
        let project = stride != 1 || cin != cout;
        Self {
            conv1: conv3(cin, cout, stride, init, d),
            norm1: group_norm(cout, d),
            conv2: conv3(cout, cout, 1, init, d),
            norm2: group_norm(cout, d),
            shortcut: project.then(|| {
                Conv2dConfig::new([cin, cout], [1, 1])
                    .with_stride([stride, stride])
                    .with_bias(false)
                    .with_initializer(init.clone())
                    .init(d)
            }),
            shortcut_norm: project.then(|| group_norm(cout, d)),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = relu(self.norm1.forward(self.conv1.forward(x.clone())));
        let h = self.norm2.forward(self.conv2.forward(h));
        let s = match (&self.shortcut, &self.shortcut_norm) {
            (Some(c), Some(n)) => n.forward(c.forward(x)),
            _ => x,
        };
        relu(h + s)
    }
}

/// A ResNet with a linear head: 7x7 stride-2 stem, 3x3 max-pool, four
/// stages (the last three halve the size), global average pool.
#[derive(Module, Debug)]
pub struct Predictor {
    stem: Conv2d,
    stem_norm: GroupNorm,
    pool: MaxPool2d,
    blocks: Vec<BasicBlock>,
    head: Linear,
    /// Mean and standard deviation of the regression labels the predictor
    /// learnt on (fixed, not trained): outputs are standardised inside and
    /// in label units outside, and a checkpoint carries its own units.
    label_stats: Param<Tensor<1>>,
}

impl PredictorConfig {
    /// Outputs per slice: 1 for a regression, `classes` for a classification.
    pub fn outputs(&self) -> usize {
        match self.task {
            PredictorTask::Regression => 1,
            PredictorTask::Classification => self.classes,
        }
    }

    /// For a regression, set the label mean and spread from `labels`
    /// where the config leaves them unset (a constant label gets spread 1).
    pub fn fill_label_scale(&mut self, labels: &[f32]) {
        if self.task != PredictorTask::Regression || labels.is_empty() {
            return;
        }
        let n = labels.len() as f64;
        let mean = labels.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = labels
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        self.label_mean.get_or_insert(mean as f32);
        self.label_std
            .get_or_insert(if var > 0.0 { var.sqrt() as f32 } else { 1.0 });
    }

    /// Check what `init` would refuse.
    pub fn validate(&self) -> Result<(), String> {
        if self.width == 0 || self.blocks.is_empty() || self.blocks.contains(&0) {
            return Err(format!(
                "predictor.width ({}) and every predictor.blocks entry ({:?}) must be positive",
                self.width, self.blocks
            ));
        }
        if self.task == PredictorTask::Classification && self.classes < 2 {
            return Err(format!(
                "predictor.classes is {}; a classification needs at least 2",
                self.classes
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(format!("predictor.lr {} must be positive", self.lr));
        }
        if self.label_mean.is_some_and(|m| !m.is_finite())
            || self.label_std.is_some_and(|s| !(s > 0.0 && s.is_finite()))
        {
            return Err(format!(
                "predictor.label_mean ({:?}) must be finite and predictor.label_std ({:?}) positive",
                self.label_mean, self.label_std
            ));
        }
        Ok(())
    }

    /// A predictor for `channels`-channel slices.
    pub fn init(&self, channels: usize, device: &Device) -> Predictor {
        let (mean, std) = (
            self.label_mean.unwrap_or(0.0),
            self.label_std.unwrap_or(1.0),
        );
        let init = Initializer::KaimingNormal {
            gain: 2f64.sqrt(),
            fan_out_only: true,
        };
        let w = self.width;
        let mut blocks = Vec::new();
        let mut cin = w;
        for (stage, &n) in self.blocks.iter().enumerate() {
            let cout = w << stage;
            for k in 0..n {
                let stride = if stage > 0 && k == 0 { 2 } else { 1 };
                blocks.push(BasicBlock::new(cin, cout, stride, &init, device));
                cin = cout;
            }
        }
        let (mean, std) = match self.task {
            PredictorTask::Regression => (mean, std.max(1e-6)),
            PredictorTask::Classification => (0.0, 1.0),
        };
        Predictor {
            stem: Conv2dConfig::new([channels, w], [7, 7])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3))
                .with_bias(false)
                .with_initializer(init.clone())
                .init(device),
            stem_norm: group_norm(w, device),
            pool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            blocks,
            head: LinearConfig::new(cin, self.outputs()).init(device),
            label_stats: Param::initialized(
                ParamId::new(),
                Tensor::from_floats([mean, std], device),
            ),
        }
    }
}

impl Predictor {
    /// Raw outputs `[N, outputs]`: standardised values (regression) or
    /// class logits (classification). Losses work on these.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let h = relu(self.stem_norm.forward(self.stem.forward(x)));
        let mut h = self.pool.forward(h);
        for b in &self.blocks {
            h = b.forward(h);
        }
        let [n, c, _, _] = h.dims();
        let pooled = h.mean_dim(3).mean_dim(2).reshape([n, c]);
        self.head.forward(pooled)
    }

    /// The label mean and spread, each `[1, 1]`.
    fn stats(&self) -> (Tensor<2>, Tensor<2>) {
        let s = self.label_stats.val();
        (
            s.clone().narrow(0, 0, 1).unsqueeze::<2>(),
            s.narrow(0, 1, 1).unsqueeze::<2>(),
        )
    }

    /// Labels standardised as [`Predictor::forward`]'s regression outputs.
    pub fn standardise(&self, labels: Tensor<2>) -> Tensor<2> {
        let (mean, std) = self.stats();
        (labels - mean) / std
    }

    /// Predictions in label units `[N, outputs]`: the measurement, or class
    /// probabilities.
    pub fn predict(&self, x: Tensor<4>, task: PredictorTask) -> Tensor<2> {
        let out = self.forward(x);
        match task {
            PredictorTask::Regression => {
                let (mean, std) = self.stats();
                out * std + mean
            }
            PredictorTask::Classification => softmax(out, 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_have_the_task_shape_at_any_size() {
        let d = Device::flex();
        for (task, outputs) in [
            (PredictorTask::Regression, 1),
            (PredictorTask::Classification, 3),
        ] {
            let cfg = PredictorConfig {
                task,
                classes: 3,
                width: 8,
                blocks: vec![1, 1],
                ..Default::default()
            };
            let p = cfg.init(1, &d);
            for size in [32, 48, 64] {
                let y = p.predict(Tensor::zeros([2, 1, size, size], &d), task);
                assert_eq!(y.dims(), [2, outputs]);
            }
        }
    }

    #[test]
    fn regression_outputs_are_in_label_units() {
        let d = Device::flex();
        let cfg = PredictorConfig {
            width: 8,
            blocks: vec![1],
            label_mean: Some(500.0),
            label_std: Some(20.0),
            ..Default::default()
        };
        let p = cfg.init(1, &d);
        let x = Tensor::<4>::random(
            [1, 1, 32, 32],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &d,
        );
        let raw: f32 = p.forward(x.clone()).into_scalar();
        let units: f32 = p.predict(x, PredictorTask::Regression).into_scalar();
        assert!((units - (raw * 20.0 + 500.0)).abs() < 1e-3, "{raw} {units}");
        let z: f32 = p
            .standardise(Tensor::from_floats([[540.0]], &d))
            .into_scalar();
        assert!((z - 2.0).abs() < 1e-6);
    }

    #[test]
    fn bad_shapes_are_refused() {
        let mut c = PredictorConfig {
            blocks: vec![2, 0],
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().contains("blocks"));
        c.blocks = vec![1];
        c.task = PredictorTask::Classification;
        c.classes = 1;
        assert!(c.validate().unwrap_err().contains("classes"));
    }
}
