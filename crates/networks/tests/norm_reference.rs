//! The CPU normalisation (medtrans's burn-flex patch, patches/README.md,
//! and `instance_norm_2d`) against PyTorch in float64: instance norm and
//! batch norm with batch statistics, values and gradients
//! (fixtures/networks/norm.json, from scripts/make_norm_fixtures.py), in
//! f32 and f64; constant planes; the half types against f32.
use burn::tensor::module::batch_norm_train;
use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use json_fixture::norm::{f64s, input, upstream};
use json_fixture::{check_within, dims4};
use medtrans_networks::instance_norm_2d;
use serde_json::Value;

mod json_fixture;

fn vector(v: &Value, dtype: FloatDType, d: &Device) -> Tensor<1> {
    let v: Vec<f32> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    let n = v.len();
    Tensor::<1>::from_data(TensorData::new(v, [n]), d).cast(dtype)
}

/// Tolerance of each float type: f32 rounds the output, f64 the sums.
fn tol(dtype: FloatDType) -> f64 {
    match dtype {
        FloatDType::F64 => 1e-9,
        _ => 2e-6,
    }
}

fn run_case(c: &Value, dtype: FloatDType) {
    let d = Device::flex().autodiff();
    let kind = c["kind"].as_str().unwrap();
    let name = format!("{kind} {:?} {dtype:?}", dims4(&c["shape"]));
    let x = input(c, dtype, &d).require_grad();
    let t = tol(dtype);
    let within = |got: &[f64], want: &Value, what: &str| {
        check_within(got, want, &format!("{name}: {what}"), t, t, t)
    };
    let (y, affine) = if kind == "instance" {
        (instance_norm_2d(x.clone(), 1e-5), None)
    } else {
        let gamma = vector(&c["gamma"], dtype, &d).require_grad();
        let beta = vector(&c["beta"], dtype, &d).require_grad();
        let out = batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
        let stats = serde_json::json!({"values": c["mean"]});
        within(&f64s(out.mean), &stats, "mean");
        let stats = serde_json::json!({"values": c["variance"]});
        within(&f64s(out.variance), &stats, "variance");
        (out.output, Some((gamma, beta)))
    };
    let grads = (y.clone() * upstream(y.dims(), dtype, &d)).sum().backward();
    within(&f64s(y), &c["y"], "y");
    within(&f64s(x.grad(&grads).unwrap()), &c["dx"], "dx");
    if let Some((gamma, beta)) = affine {
        let g = serde_json::json!({"values": c["dgamma"]});
        within(&f64s(gamma.grad(&grads).unwrap()), &g, "dgamma");
        let b = serde_json::json!({"values": c["dbeta"]});
        within(&f64s(beta.grad(&grads).unwrap()), &b, "dbeta");
    }
}

#[test]
fn normalisation_matches_pytorch_values_and_gradients() {
    let f = json_fixture::load("norm.json");
    let cases = f["cases"].as_array().unwrap();
    assert!(cases.len() >= 7);
    for dtype in [FloatDType::F32, FloatDType::F64] {
        for c in cases {
            run_case(c, dtype);
        }
    }
}

/// A constant plane normalises to exactly zero (the image background,
/// any value), not to rounding noise over sqrt(eps): so an empty plane
/// translates to the same background on every device (issue 28). Also
/// when the plane is large enough to run on several threads.
#[test]
fn a_constant_plane_normalises_to_exactly_zero() {
    let d = Device::flex();
    for (shape, value) in [
        ([1, 2, 5, 7], 0.7f32),
        ([2, 8, 64, 64], -1.0),
        ([1, 1, 3, 3], 1e6),
    ] {
        let x = Tensor::<4>::full(shape, value, &d);
        for dtype in [
            FloatDType::F32,
            FloatDType::F64,
            FloatDType::F16,
            FloatDType::BF16,
        ] {
            if dtype == FloatDType::F16 && value.abs() > 6e4 {
                continue;
            }
            let y = f64s(instance_norm_2d(x.clone().cast(dtype), 1e-5));
            assert!(
                y.iter().all(|&v| v == 0.0),
                "{shape:?} of {value} in {dtype:?}: {:?}",
                &y[..4]
            );
        }
    }
}

/// f16 and bf16 read and write their own type and compute in f64: each
/// agrees with f32 to its own rounding, forward and backward.
#[test]
fn half_types_agree_with_f32() {
    let d = Device::flex().autodiff();
    let run = |dtype: FloatDType| {
        let x = (json_fixture::ramp([2, 3, 9, 8], 0.37, 0.1, 2.0, &d) + 0.5)
            .cast(dtype)
            .require_grad();
        let y = instance_norm_2d(x.clone(), 1e-5);
        assert_eq!(y.dtype(), dtype.into());
        let grads = (y.clone() * upstream(y.dims(), dtype, &d)).sum().backward();
        (f64s(y), f64s(x.grad(&grads).unwrap()))
    };
    let want = run(FloatDType::F32);
    for (dtype, tol) in [(FloatDType::F16, 1e-2), (FloatDType::BF16, 6e-2)] {
        let got = run(dtype);
        for (what, g, w) in [("y", &got.0, &want.0), ("dx", &got.1, &want.1)] {
            let scale = w.iter().fold(1f64, |m, v| m.max(v.abs()));
            for (a, b) in g.iter().zip(w.iter()) {
                assert!(
                    (a - b).abs() <= tol * scale,
                    "{dtype:?} {what}: {a} vs f32's {b}"
                );
            }
        }
    }
}
