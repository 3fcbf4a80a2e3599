//! Loss terms. A term is a name (its column in `losses.csv`), a weight read
//! from the config (0 switches it off), the networks it needs, and how it
//! computes from a step's tensors. The trainer's generator step sums the
//! enabled [`GENERATOR_TERMS`], its discriminator step the enabled
//! [`DISCRIMINATOR_TERMS`]; neither knows the terms by name. A new loss is
//! one new row here plus its weight in `LossConfig`.
//!
//! The rows' order is the order of `losses.csv`'s columns and of the
//! forward passes, so it is part of a seeded run's trajectory.
use crate::batch::Batch;
use crate::config::{CycleDirection, LossConfig, TrainConfig};
use crate::nets::{Nets, D_A, D_B, F, G, P, R, S_A, S_B};
use crate::pool::ImagePool;
use crate::term_options::{GradientDifferenceOptions, GuidedOptions, ShapeOptions};
use anyhow::Result;
use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::TensorData;
use medtrans_losses::{correction, cross_entropy, gradient_difference, l1, mse, smoothness};
use medtrans_networks::{
    Discriminator, Generator, Predictor, PredictorTask, RegistrationNet, Segmentor,
};
use rand_chacha::ChaCha8Rng;

/// Config tables that shared terms own (`[options.NAME]`,
/// `family::Options`): one per method (`term_options`). The core terms
/// keep their weights in `[loss]`; a new shared term with settings of its
/// own adds its table there.
pub const TERM_OPTIONS: &[crate::family::Options] = crate::term_options::OPTIONS;

/// One loss term of a step; `C` computes it from the step's tensors.
pub struct Term<C> {
    pub name: &'static str,
    /// Its weight under a config (from `[loss]`, or its owner's
    /// `[options.NAME]` table); 0 leaves it out.
    pub weight: fn(&TrainConfig) -> f64,
    /// Networks it uses; it is left out of runs that lack one.
    pub needs: &'static [&'static str],
    /// Networks it brings into a run when its weight is above zero (and
    /// the ones it needs but does not bring are there): a network exists
    /// because a term of the run uses it (`nets::networks_of`).
    pub brings: &'static [&'static str],
    /// The unweighted loss.
    pub compute: C,
}

/// A term of the generator step.
pub type GeneratorTerm = Term<fn(&mut GeneratorStep<'_>) -> Tensor<1>>;
/// A term of the discriminator step.
pub type DiscriminatorTerm = Term<fn(&mut DiscriminatorStep<'_>) -> Tensor<1>>;

impl<C> Term<C> {
    fn enabled(&self, cfg: &TrainConfig, nets: &Nets) -> bool {
        (self.weight)(cfg) > 0.0 && self.needs.iter().all(|n| nets.has(n))
    }
}

/// Weighted values of every enabled term, table by table in order.
pub fn weighted<C: Fn(&mut Ctx) -> Tensor<1>, Ctx>(
    tables: &[&[Term<C>]],
    cfg: &TrainConfig,
    nets: &Nets,
    ctx: &mut Ctx,
) -> Vec<(&'static str, Tensor<1>)> {
    tables
        .iter()
        .flat_map(|t| t.iter())
        .filter(|t| t.enabled(cfg, nets))
        .map(|t| (t.name, (t.compute)(ctx) * (t.weight)(cfg)))
        .collect()
}

/// Where a training step is: what terms and families that draw random
/// numbers (MUNIT's style codes) seed their own streams from, so that runs
/// repeat and a resumed run draws what the uninterrupted one drew.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepContext {
    /// Steps done before this one.
    pub step: usize,
    pub epoch: usize,
    /// The run's seed (`train.seed`).
    pub seed: u64,
}

impl StepContext {
    /// The stream of the term or family called `name` in this step.
    pub fn rng(&self, name: &str) -> ChaCha8Rng {
        medtrans_datasets::seeds::term_rng(self.seed, self.step as u64, name)
    }
}

/// The generator step's tensors: the batch, G(x), and what other terms
/// computed first (F(y), R's field), each made once on first use.
pub struct GeneratorStep<'a> {
    pub cfg: &'a TrainConfig,
    pub nets: &'a Nets,
    pub ctx: StepContext,
    pub x: Tensor<4>,
    pub y: Tensor<4>,
    /// G(x).
    pub fake_b: Tensor<4>,
    fake_a: Option<Tensor<4>>,
    field: Option<Tensor<4>>,
    /// Tensors a family's terms share within the step (UNIT's latents),
    /// each computed once by the first term that asks ([`Self::memo`]).
    memos: std::collections::HashMap<&'static str, Tensor<4>>,
    /// The batch, with its optional parts (label maps, slice labels); `x`
    /// and `y` are its images.
    pub batch: &'a Batch,
}

/// The labelled samples of a batch (per-slice predictor labels): their
/// positions in the batch and their labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleLabels {
    pub index: Vec<usize>,
    pub value: Vec<f32>,
}

impl SampleLabels {
    /// From each sample's label, where it has one.
    pub fn of(labels: impl IntoIterator<Item = Option<f32>>) -> Self {
        let mut out = Self::default();
        for (i, l) in labels.into_iter().enumerate() {
            if let Some(v) = l {
                out.index.push(i);
                out.value.push(v);
            }
        }
        out
    }
}

/// The predictor's loss on the labelled images of a batch: MSE on
/// standardised labels (regression) or cross-entropy (classification),
/// averaged over them; `None` when no image of the batch is labelled.
pub fn prediction_loss(
    p: &Predictor,
    task: PredictorTask,
    images: &Tensor<4>,
    labels: &SampleLabels,
) -> Option<Tensor<1>> {
    if labels.index.is_empty() {
        return None;
    }
    let device = images.device();
    let picked = Tensor::cat(
        labels
            .index
            .iter()
            .map(|&i| images.clone().narrow(0, i, 1))
            .collect(),
        0,
    );
    let out = p.forward(picked);
    let [n, c] = out.dims();
    Some(match task {
        PredictorTask::Regression => {
            let r = Tensor::from_data(TensorData::new(labels.value.clone(), [n, 1]), &device);
            mse(out, p.standardise(r))
        }
        PredictorTask::Classification => {
            let mut v = vec![0f32; n * c];
            for (k, &l) in labels.value.iter().enumerate() {
                v[k * c + (l as usize).min(c - 1)] = 1.0;
            }
            let one_hot = Tensor::from_data(TensorData::new(v, [n, c, 1, 1]), &device);
            cross_entropy(out.reshape([n, c, 1, 1]), one_hot)
        }
    })
}

fn zero(like: &Tensor<4>) -> Tensor<1> {
    Tensor::zeros([1], &like.device())
}

impl<'a> GeneratorStep<'a> {
    /// The step's translation G(x), through the run's family.
    pub fn new(
        cfg: &'a TrainConfig,
        nets: &'a Nets,
        ctx: StepContext,
        batch: &'a Batch,
    ) -> Result<Self> {
        let family = crate::family::get(&cfg.family)?;
        let mut rng = ctx.rng(family.name);
        let (x, y) = (batch.x.clone(), batch.y.clone());
        let fake_b = (family.translate)(nets, x.clone(), Some(&mut rng));
        Ok(Self {
            cfg,
            nets,
            ctx,
            batch,
            x,
            y,
            fake_b,
            fake_a: None,
            field: None,
            memos: Default::default(),
        })
    }

    /// The tensor called `key` in this step: made by `make` the first time
    /// a term asks, then shared, so a family's terms compute a latent once.
    pub fn memo(
        &mut self,
        key: &'static str,
        make: impl FnOnce(&mut Self) -> Tensor<4>,
    ) -> Tensor<4> {
        if let Some(t) = self.memos.get(key) {
            return t.clone();
        }
        let t = make(self);
        self.memos.insert(key, t.clone());
        t
    }

    /// A family's own B -> A translation of y, for the discriminator
    /// step's D_A-like terms (what F(y) is for CycleGAN).
    pub fn set_fake_a(&mut self, fake_a: Tensor<4>) {
        self.fake_a = Some(fake_a);
    }

    /// The batch's one-hot label maps (of x, of y): terms with segmentors
    /// need them.
    fn labels(&self, b: bool) -> Tensor<4> {
        let l = if b {
            &self.batch.labels_b
        } else {
            &self.batch.labels_a
        };
        l.clone()
            .expect("the trainer checks that runs with segmentors have labels")
    }

    /// A segmentor as the shape loss uses it: trained through the loss, or
    /// (`segmentor.learn_from_translations = false`) fixed, passing
    /// gradients to its input only.
    fn shape_segmentor(&self, name: &str) -> Segmentor {
        let s = segmentor(self.nets, name).clone();
        if self.cfg.segmentor.learn_from_translations {
            s
        } else {
            s.no_grad()
        }
    }

    /// F(y), once.
    pub fn fake_a(&mut self) -> Tensor<4> {
        if self.fake_a.is_none() {
            self.fake_a = Some(generator(self.nets, F).forward(self.y.clone()));
        }
        self.fake_a.clone().expect("just set")
    }

    /// F(y) if a term made it: the discriminator step's fake A.
    pub fn take_fake_a(&mut self) -> Option<Tensor<4>> {
        self.fake_a.take()
    }

    /// R's field registering G(x) to y, once.
    pub fn field(&mut self) -> Tensor<4> {
        if self.field.is_none() {
            let r: &RegistrationNet = self.nets.get(R).expect("terms needing R run with R");
            self.field = Some(r.forward(self.fake_b.clone(), self.y.clone()));
        }
        self.field.clone().expect("just set")
    }

    /// A discriminator's scores with its weights frozen: G's step needs
    /// gradients through D to its input, not for D's weights (D steps later
    /// on its own loss). Safe because networks are materialised when built.
    fn frozen_scores(&self, name: &str, input: Tensor<4>) -> Tensor<4> {
        self.nets.frozen::<Discriminator>(name).forward(input)
    }
}

pub fn generator<'n>(nets: &'n Nets, name: &str) -> &'n Generator {
    nets.get(name)
        .unwrap_or_else(|| panic!("terms needing {name} run with {name}"))
}

fn segmentor<'n>(nets: &'n Nets, name: &str) -> &'n Segmentor {
    nets.get(name)
        .unwrap_or_else(|| panic!("terms needing {name} run with {name}"))
}

fn predictor(nets: &Nets) -> &Predictor {
    nets.get(P).expect("terms needing P run with P")
}

fn discriminator<'n>(nets: &'n Nets, name: &str) -> &'n Discriminator {
    nets.get(name)
        .unwrap_or_else(|| panic!("terms needing {name} run with {name}"))
}

/// D_B's input for an image of domain B: the image, or (x, image) for the
/// conditional discriminator of pix2pix.
fn d_b_input(cfg: &TrainConfig, x: &Tensor<4>, img: Tensor<4>) -> Tensor<4> {
    if cfg.discriminator.conditional {
        Tensor::cat(vec![x.clone(), img], 1)
    } else {
        img
    }
}

fn cycle_factor(w: &LossConfig, direction: CycleDirection) -> f64 {
    if w.cycle_direction == direction {
        match direction {
            CycleDirection::Both => w.cycle,
            // The asymmetric loss keeps one cycle at twice the weight.
            CycleDirection::TargetOnly => 2.0 * w.cycle,
        }
    } else {
        0.0
    }
}

/// The generator step's terms; G, F and R learn from their weighted sum.
pub const GENERATOR_TERMS: &[GeneratorTerm] = &[
    Term {
        name: "g_adv",
        weight: |c| c.loss.adversarial,
        needs: &[D_B],
        brings: &[D_B],
        compute: |s| {
            let input = d_b_input(s.cfg, &s.x, s.fake_b.clone());
            s.cfg.loss.gan.loss(s.frozen_scores(D_B, input), true)
        },
    },
    Term {
        name: "l1",
        weight: |c| c.loss.l1,
        needs: &[],
        brings: &[],
        compute: |s| l1(s.fake_b.clone(), s.y.clone()),
    },
    Term {
        name: "gdl",
        weight: |c| GradientDifferenceOptions::of(c).weight,
        needs: &[],
        brings: &[],
        compute: |s| gradient_difference(s.fake_b.clone(), s.y.clone()),
    },
    Term {
        name: "correction",
        weight: |c| c.loss.correction,
        needs: &[R],
        brings: &[R],
        compute: |s| {
            let field = s.field();
            correction(s.fake_b.clone(), field, s.y.clone())
        },
    },
    Term {
        name: "smoothness",
        weight: |c| c.loss.smoothness,
        needs: &[R],
        brings: &[R],
        compute: |s| smoothness(s.field()),
    },
    Term {
        name: "f_adv",
        weight: |c| c.loss.adversarial,
        needs: &[F, D_A],
        brings: &[D_A],
        compute: |s| {
            let fa = s.fake_a();
            s.cfg.loss.gan.loss(s.frozen_scores(D_A, fa), true)
        },
    },
    Term {
        name: "cycle_a",
        weight: |c| cycle_factor(&c.loss, CycleDirection::Both),
        needs: &[F],
        brings: &[F],
        compute: |s| {
            let back = generator(s.nets, F).forward(s.fake_b.clone());
            l1(back, s.x.clone())
        },
    },
    Term {
        name: "cycle_b",
        weight: |c| {
            cycle_factor(&c.loss, CycleDirection::Both)
                + cycle_factor(&c.loss, CycleDirection::TargetOnly)
        },
        needs: &[F],
        brings: &[F],
        compute: |s| {
            let fa = s.fake_a();
            l1(generator(s.nets, G).forward(fa), s.y.clone())
        },
    },
    Term {
        name: "idt_b",
        weight: |c| c.loss.identity * c.loss.cycle,
        needs: &[F],
        brings: &[],
        compute: |s| l1(generator(s.nets, G).forward(s.y.clone()), s.y.clone()),
    },
    Term {
        name: "idt_a",
        weight: |c| c.loss.identity * c.loss.cycle,
        needs: &[F],
        brings: &[],
        compute: |s| l1(generator(s.nets, F).forward(s.x.clone()), s.x.clone()),
    },
    Term {
        name: "seg_a",
        weight: |c| ShapeOptions::of(c).segmentation,
        needs: &[S_A],
        brings: &[S_A, S_B],
        compute: |s| cross_entropy(segmentor(s.nets, S_A).forward(s.x.clone()), s.labels(false)),
    },
    Term {
        name: "seg_b",
        weight: |c| ShapeOptions::of(c).segmentation,
        needs: &[S_B],
        brings: &[S_A, S_B],
        compute: |s| cross_entropy(segmentor(s.nets, S_B).forward(s.y.clone()), s.labels(true)),
    },
    Term {
        // A translation must segment as its source did: G(x) under S_B
        // with x's labels, F(y) under S_A with y's.
        name: "shape",
        weight: |c| ShapeOptions::of(c).weight,
        needs: &[F, S_A, S_B],
        brings: &[S_A, S_B],
        compute: |s| {
            let fa = s.fake_a();
            let on_b = s.shape_segmentor(S_B).forward(s.fake_b.clone());
            let on_a = s.shape_segmentor(S_A).forward(fa);
            cross_entropy(on_b, s.labels(false)) + cross_entropy(on_a, s.labels(true))
        },
    },
    Term {
        // Predictor guidance: P, frozen here (it learns in its own step),
        // must get the labels of x right from G(x).
        name: "guidance",
        weight: |c| GuidedOptions::of(c).guidance,
        needs: &[P],
        brings: &[P],
        compute: |s| {
            let p: Predictor = s.nets.frozen(P);
            prediction_loss(&p, s.cfg.predictor.task, &s.fake_b, &s.batch.slice_labels_a)
                .unwrap_or_else(|| zero(&s.fake_b))
        },
    },
];

/// The discriminator step's tensors: the batch, the fakes of the generator
/// step (detached), the image pools and the step's random stream.
pub struct DiscriminatorStep<'a> {
    pub cfg: &'a TrainConfig,
    pub nets: &'a Nets,
    pub x: Tensor<4>,
    pub y: Tensor<4>,
    /// G(x) for D_B: the generator step's, or a fresh one after G stepped.
    pub fake_b: Tensor<4>,
    pub fake_a: Option<Tensor<4>>,
    pub pool_a: &'a mut ImagePool,
    pub pool_b: &'a mut ImagePool,
    pub rng: &'a mut ChaCha8Rng,
    /// The batch, with its optional parts (per-slice labels for P).
    pub batch: &'a Batch,
}

/// The discriminator step's terms; the discriminators (and the predictor)
/// learn from their weighted sum, each from its own terms only. Each
/// discriminator scores the real image as real and a (pooled) fake as fake.
pub const DISCRIMINATOR_TERMS: &[DiscriminatorTerm] = &[
    Term {
        name: "d_b",
        weight: |c| c.loss.discriminator * c.loss.adversarial,
        needs: &[D_B],
        brings: &[D_B],
        compute: |s| {
            let fake = s.pool_b.query(s.fake_b.clone(), &mut *s.rng);
            let d = discriminator(s.nets, D_B);
            let gan = s.cfg.loss.gan;
            let real = gan.loss(d.forward(d_b_input(s.cfg, &s.x, s.y.clone())), true);
            real + gan.loss(d.forward(d_b_input(s.cfg, &s.x, fake)), false)
        },
    },
    Term {
        name: "d_a",
        weight: |c| c.loss.discriminator * c.loss.adversarial,
        // F(y) is what it scores as fake.
        needs: &[F, D_A],
        brings: &[D_A],
        compute: |s| {
            let fa = s.fake_a.clone().expect("F ran in the generator step");
            let fake = s.pool_a.query(fa, &mut *s.rng);
            let d = discriminator(s.nets, D_A);
            let gan = s.cfg.loss.gan;
            let real = gan.loss(d.forward(s.x.clone()), true);
            real + gan.loss(d.forward(fake), false)
        },
    },
    Term {
        // L_pred: P on labelled translated sources (G(x), detached) plus
        // labelled real targets.
        name: "pred",
        weight: |c| GuidedOptions::of(c).prediction,
        needs: &[P],
        brings: &[P],
        compute: |s| {
            let (p, task) = (predictor(s.nets), s.cfg.predictor.task);
            let on_fake = prediction_loss(p, task, &s.fake_b, &s.batch.slice_labels_a);
            let on_real = prediction_loss(p, task, &s.y, &s.batch.slice_labels_b);
            match (on_fake, on_real) {
                (Some(a), Some(b)) => a + b,
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => zero(&s.y),
            }
        },
    },
];
