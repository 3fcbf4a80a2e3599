//! Predictor-guided translation on the demo T1/T2 data, labelled with each
//! axial slice's brain area in mm² (from the brain mask): the labels CSV
//! through `prepare`, where L_pred's gradients go, that lambda = 0 is the
//! plain translator, and `PredictorModel` on a whole volume.
mod common;
use burn::tensor::{Device, Tensor};
use common::{demo_data, grad_sum, term};
use medtrans_datasets::{prepare, PairOptions, PrepareSpec, SliceDataset, SplitSpec, SubjectSpec};
use medtrans_io::{read_volume, Slice};
use medtrans_networks::{Generator, Predictor, PredictorTask};
use medtrans_training::batch::Batch;
use medtrans_training::nets::{Nets, G, P};
use medtrans_training::terms::{
    prediction_loss, weighted, DiscriminatorStep, GeneratorStep, SampleLabels, StepContext,
    DISCRIMINATOR_TERMS, GENERATOR_TERMS,
};
use medtrans_training::{read_f32, stack, ImagePool, PredictorModel, TrainConfig, Trainer};
use rand::SeedableRng;
use std::path::{Path, PathBuf};

/// The demo subject (T1 as A, T2 as B, brain mask) at 32 px with a labels
/// CSV, prepared into `out`.
fn demo_spec(out: &Path, csv: PathBuf, split: SplitSpec) -> PrepareSpec {
    let d = demo_data();
    let mut spec = PrepareSpec::new(
        vec![SubjectSpec {
            a: d.join("t1.nii.gz"),
            b: d.join("t2.nii.gz"),
            mask: Some(d.join("mask.nii.gz")),
            ..Default::default()
        }],
        out,
    );
    spec.size = 32;
    spec.min_foreground = 0.1;
    spec.split = split;
    spec.slice_labels = Some(csv);
    spec
}

/// Brain area (mm²) of every axial slice of the demo mask.
fn brain_areas() -> Vec<f32> {
    let m = read_volume(demo_data().join("mask.nii.gz"), &Default::default()).unwrap();
    let [nx, ny, nz] = m.shape();
    let s = m.geometry.spacing;
    (0..nz)
        .map(|z| {
            let n = (0..nx * ny)
                .filter(|&i| m.data[i + nx * ny * z] > 0.5)
                .count();
            (n as f64 * s[0] * s[1]) as f32
        })
        .collect()
}

/// The demo subject at 32 px with a labels CSV: A (T1) slices labelled on
/// even indices, B (T2) slices on indices divisible by 3.
fn labelled(dir: &Path) -> PathBuf {
    let areas = brain_areas();
    let mut csv = String::from("volume,slice,label\n");
    for (k, a) in areas.iter().enumerate() {
        if k % 2 == 0 {
            csv += &format!("t1.nii.gz,{k},{a}\n");
        }
        if k % 3 == 0 {
            csv += &format!("t2.nii.gz,{k},{a}\n");
        }
    }
    std::fs::create_dir_all(dir).unwrap();
    let csv_path = dir.join("areas.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let out = dir.join("data");
    prepare(
        &demo_spec(&out, csv_path, SplitSpec::default()),
        &mut |_, _, _| {},
    )
    .unwrap();
    out
}

fn config(dir: &Path, extra: &[&str]) -> TrainConfig {
    let data = labelled(dir);
    let mut set: Vec<String> = [
        "generator.ngf=8",
        "generator.n_blocks=2",
        "discriminator.ndf=8",
        "train.samples=0",
        "predictor.width=8",
        "predictor.blocks=[1, 1]",
        "options.guided.prediction=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    set.push(format!("data.path={:?}", data.display().to_string()));
    set.push(format!("out={:?}", dir.join("run").display().to_string()));
    set.extend(extra.iter().map(|s| s.to_string()));
    TrainConfig::preset("cycle", &set).unwrap()
}

#[test]
fn prepare_stores_the_csv_labels_per_slice_and_pairs_carry_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = labelled(dir.path());
    let areas = brain_areas();
    let ds = SliceDataset::open(&data, "train").unwrap();
    let refs = ds.refs.clone().unwrap();
    let (la, lb) = (
        ds.slice_labels_a.clone().unwrap(),
        ds.slice_labels_b.clone().unwrap(),
    );
    for (i, r) in refs.iter().enumerate() {
        let k = r.index;
        let want = |on: bool| if on { areas[k] } else { f32::NAN };
        assert_eq!(la[i].to_bits(), want(k % 2 == 0).to_bits(), "A slice {k}");
        assert_eq!(lb[i].to_bits(), want(k % 3 == 0).to_bits(), "B slice {k}");
        let p = ds.pair(i, 0, &PairOptions::default());
        assert_eq!(p.a_slice_label, (k % 2 == 0).then_some(areas[k]));
        assert_eq!(p.b_slice_label, (k % 3 == 0).then_some(areas[k]));
    }
    let m = ds.manifest.unwrap().slice_labels.unwrap();
    assert!(m.stored[0] > 0 && m.stored[1] > 0);
    // Slices the foreground filter dropped lose their labels, counted.
    let rows = areas.len().div_ceil(2) + areas.len().div_ceil(3);
    assert_eq!(m.stored[0] + m.stored[1] + m.dropped, rows);
    assert!(
        m.dropped > 0,
        "the demo's empty end slices are labelled too"
    );

    // The shipped labels (numpy, scripts/make_demo_labels.py) are the same
    // measurement.
    let text = std::fs::read_to_string(demo_data().join("brain_area.csv")).unwrap();
    let mut rows = 0;
    for l in text.lines().skip(1) {
        let c: Vec<&str> = l.split(',').collect();
        let (k, v): (usize, f32) = (c[1].parse().unwrap(), c[2].parse().unwrap());
        assert!(
            (v - areas[k]).abs() < 1e-3,
            "slice {k}: {v} vs {}",
            areas[k]
        );
        rows += 1;
    }
    assert_eq!(rows, 2 * areas.iter().filter(|&&a| a > 0.0).count());
}

#[test]
fn a_bad_labels_csv_is_refused_by_line_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = demo_data();
    for (text, want) in [
        (
            "volume,slice,label\nt1.nii.gz,3,10\nt1.nii.gz,4,ten\n",
            "line 3",
        ),
        ("t1.nii.gz,500,10\n", "out of range"),
        ("brain.nii.gz,3,10\n", "none of the volumes"),
    ] {
        let csv = dir.path().join("bad.csv");
        std::fs::write(&csv, text).unwrap();
        let out = dir.path().join("out");
        let mut spec = PrepareSpec::new(
            vec![SubjectSpec {
                a: d.join("t1.nii.gz"),
                b: d.join("t2.nii.gz"),
                ..Default::default()
            }],
            &out,
        );
        spec.size = 32;
        spec.slice_labels = Some(csv.clone());
        let e = prepare(&spec, &mut |_, _, _| {}).unwrap_err().to_string();
        assert!(e.contains("bad.csv") && e.contains(want), "{e}");
        assert!(!out.exists(), "a refused CSV must leave no dataset");
    }
}

fn scalar(t: Tensor<1>) -> f64 {
    read_f32(t, "a loss").unwrap()[0] as f64
}

/// Two training pairs whose A slices are labelled, and their labels.
fn labelled_batch(cfg: &TrainConfig, device: &Device) -> (Tensor<4>, Tensor<4>, SampleLabels) {
    let ds = SliceDataset::open(&cfg.data.path, "train").unwrap();
    let pairs: Vec<_> = (0..ds.len())
        .map(|i| ds.pair(i, 0, &PairOptions::default()))
        .filter(|p| p.a_slice_label.is_some())
        .take(2)
        .collect();
    let xs: Vec<&Slice> = pairs.iter().map(|p| &p.a).collect();
    let ys: Vec<&Slice> = pairs.iter().map(|p| &p.b).collect();
    (
        stack(&xs, device),
        stack(&ys, device),
        SampleLabels::of(pairs.iter().map(|p| p.a_slice_label)),
    )
}

#[test]
fn guidance_reaches_g_through_a_frozen_p_and_p_learns_only_in_its_own_step() {
    let _rng = common::rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), &["options.guided.guidance=1e-3"]);
    // What the trainer fills in from the training labels.
    cfg.predictor.label_mean = Some(1000.0);
    cfg.predictor.label_std = Some(250.0);
    let device = Device::flex().autodiff();
    device.seed(4);
    let nets = Nets::new(&cfg, 32, &device).unwrap();
    let (x, y, labels) = labelled_batch(&cfg, &device);
    assert_eq!(labels.index, vec![0, 1]);

    // The guidance term is lambda times P's MSE on standardised labels.
    let b = Batch {
        slice_labels_a: labels.clone(),
        ..Batch::images(x.clone(), y.clone())
    };
    let mut step = GeneratorStep::new(&cfg, &nets, StepContext::default(), &b).unwrap();
    let terms = weighted(&[GENERATOR_TERMS], &cfg, &nets, &mut step);
    let guidance = terms.iter().find(|t| t.0 == "guidance").unwrap().1.clone();
    let g: &Generator = nets.get(G).unwrap();
    let p: &Predictor = nets.get(P).unwrap();
    let raw = read_f32(p.forward(g.forward(x.clone())), "P(G(x))").unwrap();
    let want: f64 = raw
        .iter()
        .zip(&labels.value)
        .map(|(&o, &r)| (o as f64 - (r as f64 - 1000.0) / 250.0).powi(2))
        .sum::<f64>()
        / 2.0;
    let got = scalar(guidance.clone());
    assert!(
        (got - 1e-3 * want).abs() < 1e-6 * want.max(1.0),
        "guidance {got} vs lambda * MSE {want}"
    );
    let grads = guidance.backward();
    assert!(grad_sum(g, &grads) > 0.0, "L_pred's gradient must reach G");
    assert_eq!(grad_sum(p, &grads), 0.0, "P is frozen in G's step");

    // P's own step: gradients for P, none for G (its output is detached).
    let (mut pool_a, mut pool_b) = (ImagePool::new(0), ImagePool::new(0));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let db = Batch {
        slice_labels_a: labels.clone(),
        slice_labels_b: SampleLabels::of([None, Some(900.0)]),
        ..Batch::images(x.clone(), y.clone())
    };
    let mut d_step = DiscriminatorStep {
        cfg: &cfg,
        nets: &nets,
        batch: &db,
        x: x.clone(),
        y: y.clone(),
        fake_b: g.forward(x.clone()).detach(),
        fake_a: None,
        pool_a: &mut pool_a,
        pool_b: &mut pool_b,
        rng: &mut rng,
    };
    let pred = DISCRIMINATOR_TERMS
        .iter()
        .find(|t| t.name == "pred")
        .unwrap();
    let value = (pred.compute)(&mut d_step);
    let on_real = read_f32(p.forward(y.clone().narrow(0, 1, 1)), "P(y)").unwrap()[0] as f64;
    let want_pred = want + (on_real - (900.0 - 1000.0) / 250.0).powi(2);
    assert!(
        (scalar(value.clone()) - want_pred).abs() < 1e-5 * want_pred.max(1.0),
        "L_pred {} vs {want_pred}",
        scalar(value.clone())
    );
    let grads = value.backward();
    assert!(grad_sum(p, &grads) > 0.0);
    assert_eq!(grad_sum(g, &grads), 0.0);

    // A batch without labels contributes nothing, and is no error.
    let none = SampleLabels::of([None, None]);
    assert!(prediction_loss(p, PredictorTask::Regression, &y, &none).is_none());
}

#[test]
fn classification_uses_cross_entropy_over_classes() {
    let _rng = common::rng_lock();
    let device = Device::flex();
    let cfg = medtrans_networks::PredictorConfig {
        task: PredictorTask::Classification,
        classes: 3,
        width: 8,
        blocks: vec![1],
        ..Default::default()
    };
    let p = cfg.init(1, &device);
    let x = Tensor::<4>::random(
        [3, 1, 32, 32],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let labels = SampleLabels::of([Some(2.0), None, Some(0.0)]);
    let got = scalar(prediction_loss(&p, cfg.task, &x, &labels).unwrap());
    let z = read_f32(p.forward(x), "logits").unwrap();
    let ce = |row: usize, class: usize| {
        let l = &z[row * 3..row * 3 + 3];
        let m = l.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64;
        let lse = m + l.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        lse - l[class] as f64
    };
    let want = (ce(0, 2) + ce(2, 0)) / 2.0;
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
}

/// G's output on fixed slices after a run's steps.
fn g_after(cfg: TrainConfig, steps: usize) -> (Vec<f32>, Vec<medtrans_training::LossRow>) {
    let mut t = Trainer::new(cfg).unwrap();
    let rows = (0..steps).map(|_| t.train_step().unwrap()).collect();
    let xs: Vec<&Slice> = t.train.a.iter().take(2).collect();
    let out = t.translate(&xs).unwrap();
    (out.into_iter().flat_map(|s| s.data).collect(), rows)
}

#[test]
fn lambda_zero_trains_exactly_the_plain_translator_and_lambda_above_zero_does_not() {
    let _rng = common::rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let steps = 4;
    let plain = config(&dir.path().join("plain"), &["options.guided.prediction=0"]);
    assert!(!plain.uses_predictor());
    let with_p = config(&dir.path().join("p"), &["options.guided.guidance=0"]);
    let guided = config(&dir.path().join("g"), &["options.guided.guidance=1"]);
    let (g_plain, rows_plain) = g_after(plain, steps);
    let (g_p, rows_p) = g_after(with_p, steps);
    let (g_guided, rows_guided) = g_after(guided, steps);
    assert_eq!(g_plain, g_p, "lambda = 0 must leave G exactly as without P");
    for (a, b) in rows_plain.iter().zip(&rows_p) {
        assert_eq!(term(a, "g_total"), term(b, "g_total"));
        assert!(term(b, "pred").is_some(), "P trains beside the translator");
    }
    assert_ne!(g_plain, g_guided, "lambda > 0 must change G");
    assert!(term(&rows_guided[0], "guidance").is_some());
}

#[test]
fn the_predictor_learns_and_predicts_a_volume_as_its_prepared_slices() {
    let _rng = common::rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &[
            "options.guided.guidance=1e-3",
            "train.epochs=1",
            "train.steps_per_epoch=150",
            "train.batch_size=2",
            "predictor.lr=3e-3",
        ],
    );
    let out = cfg.out.clone();
    let data = cfg.data.path.clone();
    let mut t = Trainer::new(cfg).unwrap();
    // The label scale came from the training labels.
    let mean = t.cfg.predictor.label_mean.unwrap();
    assert!(mean > 1000.0 && mean < 40000.0, "{mean} mm²");
    t.run(true).unwrap();
    let pred = losses_column(&out.join("losses.csv"), "pred");
    assert_eq!(pred.len(), 150);
    let avg = |r: std::ops::Range<usize>| pred[r.clone()].iter().sum::<f64>() / r.len() as f64;
    eprintln!("L_pred {} -> {}", avg(0..30), avg(120..150));
    assert!(
        avg(120..150) < 0.5 * avg(0..30),
        "L_pred did not fall: {} -> {}",
        avg(0..30),
        avg(120..150)
    );

    // P's validation error per epoch, in mm² squared.
    let val = losses_column(&out.join("predictor_validation.csv"), "mse");
    assert_eq!(val.len(), 1);
    assert!(val[0].is_finite() && val[0] > 0.0);

    let model = PredictorModel::load(&out, "cpu").unwrap();
    assert_eq!(model.columns(), vec!["prediction"]);
    let d = demo_data();
    let t2 = read_volume(d.join("t2.nii.gz"), &Default::default()).unwrap();
    let mask = read_volume(d.join("mask.nii.gz"), &Default::default()).unwrap();
    let per_slice = model
        .predict_volume(&t2, Some(&mask), 8, &mut |_, _| {})
        .unwrap();
    assert_eq!(per_slice.len(), t2.shape()[2]);
    // The volume path scales and fits slices as prepare did.
    let ds = SliceDataset::open(&data, "train").unwrap();
    let ys: Vec<&Slice> = ds.b.iter().collect();
    let direct = model.predict_slices(&ys, 8).unwrap();
    for (r, want) in ds.refs.unwrap().iter().zip(direct) {
        let got = per_slice[r.index][0];
        assert!(
            (got - want[0]).abs() < 1e-2 * want[0].abs().max(1.0),
            "slice {}: {got} from the volume, {} from the prepared slice",
            r.index,
            want[0]
        );
    }
    // Predictions are in label units (mm²), not standardised.
    assert!(direct_mean(&per_slice) > 100.0);
}

/// One column of a run's losses.csv.
fn losses_column(path: &Path, name: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect()
}

fn direct_mean(v: &[Vec<f32>]) -> f32 {
    v.iter().map(|r| r[0]).sum::<f32>() / v.len() as f32
}

#[test]
fn guidance_without_labelled_sources_is_refused() {
    let _rng = common::rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("b_only.csv");
    std::fs::write(
        &csv,
        "volume,slice,label\nt2.nii.gz,40,100\nt2.nii.gz,41,120\n",
    )
    .unwrap();
    let out = dir.path().join("data");
    prepare(
        &demo_spec(
            &out,
            csv,
            SplitSpec {
                fractions: [1.0, 0.0, 0.0],
                gap: 0,
                ..SplitSpec::default()
            },
        ),
        &mut |_, _, _| {},
    )
    .unwrap();
    let set = |extra: &str| {
        vec![
            format!("data.path={:?}", out.display().to_string()),
            format!("out={:?}", dir.path().join("run").display().to_string()),
            "options.guided.prediction=1".to_string(),
            extra.to_string(),
        ]
    };
    let err = TrainConfig::preset("cycle", &set("options.guided.guidance=1e-3"))
        .and_then(Trainer::new)
        .err()
        .expect("guidance with no labelled A slice must be refused");
    assert!(format!("{err:#}").contains("needs labelled A"), "{err:#}");
    // P alone may learn from the labelled targets.
    assert!(
        TrainConfig::preset("cycle", &set("options.guided.guidance=0"))
            .and_then(Trainer::new)
            .is_ok()
    );
}

/// The classification head end to end: integer classes from the CSV
/// (brain area above or below 10 000 mm²), cross-entropy training,
/// accuracy on validation, probabilities from `PredictorModel`.
#[test]
fn a_classifier_trains_and_predicts_class_probabilities() {
    let _rng = common::rng_lock();
    let dir = tempfile::tempdir().unwrap();
    let areas = brain_areas();
    let mut csv = String::from("volume,slice,label\n");
    for (k, a) in areas.iter().enumerate() {
        let class = (*a > 10_000.0) as u8;
        csv += &format!("t1.nii.gz,{k},{class}\nt2.nii.gz,{k},{class}\n");
    }
    let csv_path = dir.path().join("classes.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let data = dir.path().join("data");
    prepare(
        &demo_spec(&data, csv_path, SplitSpec::default()),
        &mut |_, _, _| {},
    )
    .unwrap();
    let out = dir.path().join("run");
    let set: Vec<String> = [
        format!("data.path={:?}", data.display().to_string()),
        format!("out={:?}", out.display().to_string()),
        "generator.ngf=4".into(),
        "generator.n_blocks=1".into(),
        "discriminator.ndf=4".into(),
        "predictor.width=8".into(),
        "predictor.blocks=[1]".into(),
        "predictor.task=\"classification\"".into(),
        "predictor.classes=2".into(),
        "train.epochs=1".into(),
        "train.steps_per_epoch=6".into(),
        "train.samples=0".into(),
    ]
    .to_vec();
    let cfg = TrainConfig::preset("guided", &set).unwrap();
    assert_eq!(
        cfg.predictor.label_mean, None,
        "no standardisation for classes"
    );
    let mut t = Trainer::new(cfg).unwrap();
    t.run(true).unwrap();
    let acc = losses_column(&out.join("predictor_validation.csv"), "accuracy");
    assert!((0.0..=1.0).contains(&acc[0]), "{acc:?}");
    let model = PredictorModel::load(&out, "cpu").unwrap();
    assert_eq!(model.columns(), vec!["p0", "p1"]);
    let ds = SliceDataset::open(&data, "val").unwrap();
    for p in model
        .predict_slices(&ds.b.iter().collect::<Vec<_>>(), 4)
        .unwrap()
    {
        assert!((p[0] + p[1] - 1.0).abs() < 1e-5 && p.iter().all(|v| (0.0..=1.0).contains(v)));
    }
    // A classifier needs at least two classes.
    let mut set3 = set.clone();
    set3[8] = "predictor.classes=1".into();
    assert!(TrainConfig::preset("guided", &set3).is_err());
}
