//! Shared set-up: the shipped demo data (ICBM152 T1/T2, 2 mm) prepared once
//! per test binary at a small size.
#![allow(dead_code)]
use medtrans_datasets::{prepare, PrepareSpec, SplitSpec, SubjectSpec};
use medtrans_training::{LossRow, TrainConfig};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub fn demo_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/demo")
}

/// A T1 -> T2 dataset at `size` px, made once per process.
pub fn dataset(size: usize) -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, p) = DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("t1t2");
        let d = demo_data();
        let mut spec = PrepareSpec::new(
            vec![SubjectSpec {
                a: d.join("t1.nii.gz"),
                b: d.join("t2.nii.gz"),
                mask: Some(d.join("mask.nii.gz")),
                ..Default::default()
            }],
            &out,
        );
        spec.size = size;
        spec.min_foreground = 0.1;
        spec.split = SplitSpec::default();
        // Brain area per slice, for the guided preset's predictor.
        spec.slice_labels = Some(d.join("brain_area.csv"));
        prepare(&spec, &mut |_, _, _| {}).unwrap();
        (tmp, out)
    });
    p
}

/// A preset shrunk for CPU tests: 32 px, ngf 8, 2 residual blocks.
pub fn small_config(mode: &str, out: &Path, extra: &[&str]) -> TrainConfig {
    let mut set: Vec<String> = [
        "generator.ngf=8",
        "generator.n_blocks=2",
        "discriminator.ndf=8",
        "train.samples=2",
        "optim.lr=5e-4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    set.push(format!("data.path={:?}", dataset(32).display().to_string()));
    set.push(format!("out={:?}", out.display().to_string()));
    set.extend(extra.iter().map(|s| s.to_string()));
    TrainConfig::preset(mode, &set).unwrap()
}

pub fn term(row: &LossRow, name: &str) -> Option<f64> {
    row.iter().find(|r| r.0 == name).map(|r| r.1)
}

/// Burn's CPU random stream is one per process: tests that seed it and
/// compare seeded results hold this, so that a test on another thread
/// building networks cannot draw from the stream in between.
pub fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sum of |gradient| over a network's parameters: whether a loss reaches it.
pub fn grad_sum<M: burn::module::Module>(net: &M, grads: &burn::tensor::Gradients) -> f64 {
    struct GradSum<'a> {
        grads: &'a burn::tensor::Gradients,
        sum: f64,
    }
    impl burn::module::ModuleVisitor for GradSum<'_> {
        fn visit_float<const D: usize>(
            &mut self,
            param: &burn::module::Param<burn::tensor::Tensor<D>>,
        ) {
            if let Some(g) = param.val().grad(self.grads) {
                self.sum +=
                    medtrans_training::read_f32(g.abs().sum(), "a gradient").unwrap()[0] as f64;
            }
        }
    }
    let mut v = GradSum { grads, sum: 0.0 };
    net.visit(&mut v);
    v.sum
}

/// The GPU, or None with a notice when this build or machine has none (a
/// build without the `gpu` feature, or no Vulkan device).
pub fn gpu() -> Option<burn::tensor::Device> {
    match medtrans_training::device_from_name("gpu") {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("SKIPPED: no Vulkan device here ({e})");
            None
        }
    }
}

/// The largest |v|.
pub fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0f32, |m, x| m.max(x.abs()))
}

/// max |a - b| over max |b| (at least `floor`).
pub fn rel_diff_floor(a: &[f32], b: &[f32], floor: f32) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = max_abs(b).max(floor);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// [`rel_diff_floor`] with a floor of 1e-12.
pub fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    rel_diff_floor(a, b, 1e-12)
}
