//! JSON fixtures from the scripts/make_*_fixtures.py generators
//! (fixtures/networks/NAME.json).
#![allow(dead_code)]
use burn::tensor::{Device, Tensor, TensorData};
use serde_json::Value;

pub mod norm;

pub fn load(name: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/networks")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

pub fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// The fixture's input formula: sin(a * i + b) over the row-major index.
pub fn ramp<const D: usize>(
    shape: [usize; D],
    a: f64,
    b: f64,
    scale: f64,
    d: &Device,
) -> Tensor<D> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| ((a * i as f64 + b).sin() * scale) as f32)
        .collect();
    Tensor::from_data(TensorData::new(v, shape), d)
}

pub fn dims4(v: &Value) -> [usize; 4] {
    let u = usizes(v);
    [u[0], u[1], u[2], u[3]]
}

/// Compares `got` with a fixture summary: every value, or the sums and
/// the sampled values of a large tensor.
pub fn check(got: Vec<f32>, want: &Value, what: &str) {
    let got: Vec<f64> = got.into_iter().map(f64::from).collect();
    check_within(&got, want, what, 2e-5, 1e-4, 1e-5);
}

/// [`check`] with its tolerances: each value within `abs * scale + rel *
/// |want|` (scale: the largest |value|, at least 1), the sum within `sum *
/// abs_sum`.
pub fn check_within(got: &[f64], want: &Value, what: &str, abs: f64, rel: f64, sum_tol: f64) {
    let vals: Vec<f64> = want["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let at: Vec<usize> = match want.get("at") {
        Some(a) => usizes(a),
        None => {
            assert_eq!(got.len(), vals.len(), "{what}: length");
            (0..vals.len()).collect()
        }
    };
    let scale = vals.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (&i, &w) in at.iter().zip(&vals) {
        let g = got[i];
        assert!(
            (g - w).abs() <= abs * scale + rel * w.abs(),
            "{what}[{i}]: {g} against PyTorch's {w}"
        );
    }
    if let Some(sum) = want.get("sum") {
        let (sum, abs_sum) = (sum.as_f64().unwrap(), want["abs_sum"].as_f64().unwrap());
        let g: f64 = got.iter().sum();
        assert!(
            (g - sum).abs() <= sum_tol * abs_sum,
            "{what}: sum {g} against PyTorch's {sum} (abs sum {abs_sum})"
        );
    }
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}
