//! The shape-consistency loss and the asymmetric cycle loss on fixed
//! inputs: each term's value against an independent computation from the
//! networks' outputs, where gradients go, and the trainer's checks.
mod common;
use burn::tensor::{Device, Tensor};
use common::{dataset, grad_sum, small_config, term};
use medtrans_datasets::{PairOptions, Pairing, SliceDataset};
use medtrans_io::{read_npy, write_npy, Slice};
use medtrans_networks::{Generator, Segmentor};
use medtrans_training::batch::Batch;
use medtrans_training::config::CycleDirection;
use medtrans_training::nets::{Nets, F, G, S_A, S_B};
use medtrans_training::terms::{weighted, GeneratorStep, StepContext, GENERATOR_TERMS};
use medtrans_training::{one_hot, read_f32, stack, TrainConfig, Trainer};
use std::path::{Path, PathBuf};

const CLASSES: usize = 3;

/// Labels from an image's own intensities: 0 outside the brain, 1 below
/// the brain's median, 2 above.
fn label_map(img: &Slice) -> Slice {
    let mut inside: Vec<f32> = img.data.iter().copied().filter(|&v| v > -0.99).collect();
    inside.sort_by(f32::total_cmp);
    let median = inside.get(inside.len() / 2).copied().unwrap_or(0.0);
    let data = img
        .data
        .iter()
        .map(|&v| match v {
            v if v <= -0.99 => 0.0,
            v if v < median => 1.0,
            _ => 2.0,
        })
        .collect();
    Slice::new(data, img.width, img.height)
}

/// A copy of the 32 px demo dataset with `A_labels.npy` and `B_labels.npy`
/// in every split.
fn labelled_dataset(dir: &Path) -> PathBuf {
    let src = dataset(32);
    let out = dir.join("labelled");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(src.join("manifest.json"), out.join("manifest.json")).unwrap();
    for split in ["train", "val", "test"] {
        let (from, to) = (src.join(split), out.join(split));
        if !from.is_dir() {
            continue;
        }
        std::fs::create_dir_all(&to).unwrap();
        for f in ["A.npy", "B.npy", "mask.npy"] {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
        for (side, file) in [("A.npy", "A_labels.npy"), ("B.npy", "B_labels.npy")] {
            let p = from.join(side);
            let slices = read_npy(&p).unwrap().into_slices(&p).unwrap();
            let n = slices.len();
            let (w, h) = (slices[0].width, slices[0].height);
            let v: Vec<u8> = slices
                .iter()
                .flat_map(|s| label_map(s).data.into_iter().map(|x| x as u8))
                .collect();
            write_npy(&to.join(file), &[n, h, w], &v).unwrap();
        }
    }
    out
}

fn shape_config(dir: &Path, extra: &[&str]) -> TrainConfig {
    let data = labelled_dataset(dir);
    let mut set = vec![
        format!("data.path={:?}", data.display().to_string()),
        "options.shape.weight=1.0".into(),
        "options.shape.segmentation=1.0".into(),
        format!("segmentor.classes={CLASSES}"),
        "segmentor.ngf=4".into(),
    ];
    set.extend(extra.iter().map(|s| s.to_string()));
    let set: Vec<&str> = set.iter().map(String::as_str).collect();
    small_config("cycle", &dir.join("run"), &set)
}

/// A fixed batch of two training pairs, with one-hot labels.
fn batch(cfg: &TrainConfig, device: &Device) -> (Tensor<4>, Tensor<4>, Tensor<4>, Tensor<4>) {
    let ds = SliceDataset::open(&cfg.data.path, "train").unwrap();
    let pairs: Vec<_> = [1, ds.len() / 2]
        .iter()
        .map(|&i| ds.pair(i, 0, &PairOptions::default()))
        .collect();
    let side = |f: fn(&medtrans_datasets::Pair) -> &Slice| pairs.iter().map(f).collect::<Vec<_>>();
    let labels = |f: fn(&medtrans_datasets::Pair) -> &Option<Slice>| {
        let v: Vec<&Slice> = pairs.iter().map(|p| f(p).as_ref().unwrap()).collect();
        one_hot(&v, CLASSES, device)
    };
    (
        stack(&side(|p| &p.a), device),
        stack(&side(|p| &p.b), device),
        labels(|p| &p.a_labels),
        labels(|p| &p.b_labels),
    )
}

/// Cross-entropy of logits against one-hot labels, on the host in f64:
/// the independent computation the shape term is checked against.
fn host_cross_entropy(logits: Tensor<4>, labels: Tensor<4>) -> f64 {
    let [n, c, h, w] = logits.dims();
    let (z, y) = (
        read_f32(logits, "logits").unwrap(),
        read_f32(labels, "labels").unwrap(),
    );
    let mut total = 0.0;
    for i in 0..n {
        for p in 0..h * w {
            let at = |k: usize| (i * c + k) * h * w + p;
            let m = (0..c).map(|k| z[at(k)] as f64).fold(f64::MIN, f64::max);
            let lse = m
                + (0..c)
                    .map(|k| (z[at(k)] as f64 - m).exp())
                    .sum::<f64>()
                    .ln();
            total += (0..c)
                .map(|k| y[at(k)] as f64 * (lse - z[at(k)] as f64))
                .sum::<f64>();
        }
    }
    total / (n * h * w) as f64
}

fn scalar(t: Tensor<1>) -> f64 {
    read_f32(t, "a loss").unwrap()[0] as f64
}

fn shape_term(step: &mut GeneratorStep<'_>) -> Tensor<1> {
    let t = GENERATOR_TERMS.iter().find(|t| t.name == "shape").unwrap();
    (t.compute)(step)
}

#[test]
fn the_shape_term_is_the_segmentors_cross_entropy_on_the_translations() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = shape_config(dir.path(), &[]);
    let device = Device::flex().autodiff();
    device.seed(3);
    let nets = Nets::new(&cfg, 32, &device).unwrap();
    let (x, y, la, lb) = batch(&cfg, &device);
    let b = Batch {
        labels_a: Some(la.clone()),
        labels_b: Some(lb.clone()),
        ..Batch::images(x.clone(), y.clone())
    };
    let mut step = GeneratorStep::new(&cfg, &nets, StepContext::default(), &b).unwrap();
    let got = scalar(shape_term(&mut step));
    let g: &Generator = nets.get(G).unwrap();
    let f: &Generator = nets.get(F).unwrap();
    let (sa, sb): (&Segmentor, &Segmentor) = (nets.get(S_A).unwrap(), nets.get(S_B).unwrap());
    let want = host_cross_entropy(sb.forward(g.forward(x)), la)
        + host_cross_entropy(sa.forward(f.forward(y)), lb);
    assert!(
        (got - want).abs() < 1e-5 * want.max(1.0),
        "shape term {got} vs {want} computed on the host"
    );
    // Untrained segmentors on 3 classes: close to ln 3 per half.
    assert!(want > 1.0 && want < 4.0, "{want}");
}

#[test]
fn the_shape_term_sends_gradients_into_the_generators() {
    for learn in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = shape_config(
            dir.path(),
            &[&format!("segmentor.learn_from_translations={learn}")],
        );
        let device = Device::flex().autodiff();
        device.seed(3);
        let nets = Nets::new(&cfg, 32, &device).unwrap();
        let (x, y, la, lb) = batch(&cfg, &device);
        let b = Batch {
            labels_a: Some(la),
            labels_b: Some(lb),
            ..Batch::images(x, y)
        };
        let mut step = GeneratorStep::new(&cfg, &nets, StepContext::default(), &b).unwrap();
        let grads = shape_term(&mut step).backward();
        let g: &Generator = nets.get(G).unwrap();
        let f: &Generator = nets.get(F).unwrap();
        let sb: &Segmentor = nets.get(S_B).unwrap();
        assert!(
            grad_sum(g, &grads) > 0.0,
            "learn={learn}: no gradient reached G"
        );
        assert!(
            grad_sum(f, &grads) > 0.0,
            "learn={learn}: no gradient reached F"
        );
        let s = grad_sum(sb, &grads);
        if learn {
            assert!(
                s > 0.0,
                "joint training: S_B learns from the shape term too"
            );
        } else {
            assert_eq!(
                s, 0.0,
                "fixed segmentors: the shape term must not train S_B"
            );
        }
    }
}

#[test]
fn the_asymmetric_loss_keeps_only_the_target_cycle_at_twice_the_weight() {
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "generator.dropout=false",
        "loss.cycle=0.5",
        "loss.identity=0",
    ];
    let device = Device::flex().autodiff();
    for direction in ["symmetric", "asymmetric"] {
        let mut set = common.to_vec();
        let d = format!("loss.cycle_direction={direction:?}");
        set.push(&d);
        let cfg = small_config("asymmetric", &dir.path().join(direction), &set);
        device.seed(5);
        let nets = Nets::new(&cfg, 32, &device).unwrap();
        let (x, y, _, _) = batch(&shape_config(&dir.path().join("l"), &[]), &device);
        let b = Batch::images(x.clone(), y.clone());
        let mut step = GeneratorStep::new(&cfg, &nets, StepContext::default(), &b).unwrap();
        let terms = weighted(&[GENERATOR_TERMS], &cfg, &nets, &mut step);
        let value = |name: &str| {
            terms
                .iter()
                .find(|t| t.0 == name)
                .map(|t| scalar(t.1.clone()))
        };
        let g: &Generator = nets.get(G).unwrap();
        let f: &Generator = nets.get(F).unwrap();
        let l1 = |a: Tensor<4>, b: Tensor<4>| scalar((a - b).abs().mean());
        let target_cycle = l1(g.forward(f.forward(y.clone())), y.clone());
        let source_cycle = l1(f.forward(g.forward(x.clone())), x.clone());
        match direction {
            "asymmetric" => {
                assert_eq!(cfg.loss.cycle_direction, CycleDirection::TargetOnly);
                // The x -> y -> x cycle is not computed at all.
                assert_eq!(value("cycle_a"), None);
                let got = value("cycle_b").unwrap();
                assert!(
                    (got - 2.0 * 0.5 * target_cycle).abs() < 1e-6,
                    "{got} vs 2 w_c {target_cycle}"
                );
            }
            _ => {
                let (a, b) = (value("cycle_a").unwrap(), value("cycle_b").unwrap());
                assert!(
                    (a - 0.5 * source_cycle).abs() < 1e-6,
                    "{a} vs w_c {source_cycle}"
                );
                assert!(
                    (b - 0.5 * target_cycle).abs() < 1e-6,
                    "{b} vs w_c {target_cycle}"
                );
            }
        }
    }
}

#[test]
fn shape_runs_train_their_segmentors_and_keep_labels_whole_under_noise() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = shape_config(dir.path(), &["data.noise_level=3"]);
    // Noisy pairs move labels with their images, by nearest neighbour.
    let ds = SliceDataset::open(&cfg.data.path, "train").unwrap();
    let opts = PairOptions {
        noise_level: 3,
        pairing: Pairing::Paired,
        misalign: None,
        seed: 1,
    };
    let p = ds.pair(3, 0, &opts);
    let lb = p.b_labels.as_ref().unwrap();
    assert!(lb.data.iter().all(|v| [0.0, 1.0, 2.0].contains(v)));
    assert_ne!(
        lb,
        &ds.labels_b.as_ref().unwrap()[3],
        "noise 3 moved nothing"
    );
    let background_agrees = lb
        .data
        .iter()
        .zip(&p.b.data)
        .filter(|(l, v)| (**l == 0.0) == (**v <= -0.9))
        .count() as f64
        / lb.data.len() as f64;
    assert!(
        background_agrees > 0.95,
        "labels and image moved apart: {background_agrees}"
    );

    let mut t = Trainer::new(cfg).unwrap();
    let rows: Vec<_> = (0..30).map(|_| t.train_step().unwrap()).collect();
    let mean = |name: &str, r: std::ops::Range<usize>| {
        rows[r.clone()]
            .iter()
            .map(|row| term(row, name).unwrap())
            .sum::<f64>()
            / r.len() as f64
    };
    for name in ["seg_a", "seg_b"] {
        let (first, last) = (mean(name, 0..5), mean(name, 25..30));
        assert!(last < first, "{name} did not decrease: {first} -> {last}");
    }
    assert!(mean("shape", 0..30).is_finite());
}

#[test]
fn shape_without_labels_or_with_too_many_classes_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(32).display().to_string();
    let err = TrainConfig::preset(
        "cycle",
        &[
            format!("data.path={data:?}"),
            format!("out={:?}", dir.path().join("r").display().to_string()),
            "options.shape.weight=1".into(),
            "options.shape.segmentation=1".into(),
        ],
    )
    .and_then(Trainer::new)
    .err()
    .expect("no labels must be refused");
    assert!(
        format!("{err:#}").contains("A_labels.npy is missing"),
        "{err:#}"
    );

    let cfg = shape_config(dir.path(), &["segmentor.classes=2"]);
    let err = Trainer::new(cfg)
        .err()
        .expect("class 2 with 2 classes must be refused");
    assert!(
        format!("{err:#}").contains("segmentor.classes = 2"),
        "{err:#}"
    );

    let err = TrainConfig::preset("pix2pix", &["options.shape.weight=1".into()]).unwrap_err();
    assert!(
        format!("{err:#}").contains("options.shape.weight needs the cycle"),
        "{err:#}"
    );
}

#[test]
fn pretrained_segmentors_load_and_stay_frozen() {
    let dir = tempfile::tempdir().unwrap();
    let steps = [
        "train.epochs=1",
        "train.steps_per_epoch=3",
        "train.samples=0",
    ];
    let first = shape_config(&dir.path().join("one"), &steps);
    Trainer::new(first.clone()).unwrap().run(true).unwrap();
    let ckpt = first.out.join("checkpoints/last");

    // A run folder: its checkpoint is found as `translate` finds one.
    let init = format!("segmentor.init_from={:?}", first.out.display().to_string());
    let mut set = steps.to_vec();
    set.extend([
        init.as_str(),
        "options.shape.segmentation=0",
        "segmentor.learn_from_translations=false",
        "train.seed=9",
    ]);
    let cfg = shape_config(&dir.path().join("two"), &set);
    let mut t = Trainer::new(cfg.clone()).unwrap();
    let logits = |nets: &Nets, x: Tensor<4>| {
        [S_A, S_B].map(|name| {
            let s: &Segmentor = nets.get(name).unwrap();
            read_f32(s.forward(x.clone()), "logits").unwrap()
        })
    };
    let device = Device::flex();
    let (x, _, _, _) = batch(&cfg, &device);
    let pretrained = medtrans_training::RunNetworks::load(&ckpt, "cpu").unwrap();
    let want = logits(&pretrained.nets, x.clone());
    let g_before = read_f32(
        t.nets
            .get::<Generator>(G)
            .unwrap()
            .forward(x.clone().autodiff()),
        "G",
    )
    .unwrap();
    let rows: Vec<_> = (0..3).map(|_| t.train_step().unwrap()).collect();
    assert!(term(&rows[0], "seg_b").is_none() && term(&rows[0], "shape").is_some());
    let got = logits(&t.nets, x.clone().autodiff());
    for (k, name) in [S_A, S_B].iter().enumerate() {
        let worst = got[k]
            .iter()
            .zip(&want[k])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "the frozen {name} moved by {worst}");
    }
    let g_after = read_f32(
        t.nets.get::<Generator>(G).unwrap().forward(x.autodiff()),
        "G",
    )
    .unwrap();
    assert_ne!(g_before, g_after, "G did not train");

    // Segmentors that could never learn are refused up front.
    let err = TrainConfig::preset(
        "cycle",
        &[
            "options.shape.weight=1".into(),
            "segmentor.learn_from_translations=false".into(),
        ],
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("segmentor.init_from"),
        "{err:#}"
    );
}
