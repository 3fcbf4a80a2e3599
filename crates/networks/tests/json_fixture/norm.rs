//! The normalisation fixture (fixtures/networks/norm.json, from
//! scripts/make_norm_fixtures.py): its inputs, and a check of any instance
//! norm against its instance cases. Shared by the CPU test
//! (norm_reference.rs) and the GPU kernels' (training's gpu_kernels.rs).
use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use serde_json::Value;

/// The fixture's input: sin(a * i + b) * scale + offset, rounded to f32,
/// with the listed planes set to constants; then cast to `dtype`.
pub fn input(c: &Value, dtype: FloatDType, d: &Device) -> Tensor<4> {
    let shape = super::dims4(&c["shape"]);
    let (scale, offset) = (c["scale"].as_f64().unwrap(), c["offset"].as_f64().unwrap());
    let n: usize = shape.iter().product();
    let mut v: Vec<f32> = (0..n)
        .map(|i| ((0.37 * i as f64 + 0.1).sin() * scale + offset) as f32)
        .collect();
    let plane = shape[2] * shape[3];
    for k in c["constant"].as_array().unwrap() {
        let k = k.as_array().unwrap();
        let p = k[0].as_u64().unwrap() as usize * shape[1] + k[1].as_u64().unwrap() as usize;
        v[p * plane..(p + 1) * plane].fill(k[2].as_f64().unwrap() as f32);
    }
    Tensor::<4>::from_data(TensorData::new(v, shape), d).cast(dtype)
}

/// The upstream gradient the fixture's dx was taken with.
pub fn upstream(shape: [usize; 4], dtype: FloatDType, d: &Device) -> Tensor<4> {
    super::ramp(shape, 0.11, 0.5, 1.0, d).cast(dtype)
}

pub fn f64s<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.cast(FloatDType::F64)
        .into_data()
        .try_to_vec::<f64>()
        .unwrap()
}

/// Every instance case of the fixture through `norm` on `d` (an autodiff
/// device) in `dtype`: y and dx within `tol` of PyTorch's (float64), as
/// [`super::check_within`] measures.
pub fn check_instance_cases(
    norm: &dyn Fn(Tensor<4>) -> Tensor<4>,
    d: &Device,
    dtype: FloatDType,
    tol: f64,
) {
    let f = super::load("norm.json");
    let cases: Vec<&Value> = f["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "instance")
        .collect();
    assert!(cases.len() >= 4);
    for c in cases {
        // The offset-1000 case's 0.01 swings are below half precision's
        // spacing there (0.5): in f16 its input is already constant.
        let (scale, offset) = (c["scale"].as_f64().unwrap(), c["offset"].as_f64().unwrap());
        if matches!(dtype, FloatDType::F16 | FloatDType::BF16) && scale < 1e-3 * offset.abs() {
            continue;
        }
        let name = format!("instance {:?} {dtype:?}", super::dims4(&c["shape"]));
        let x = input(c, dtype, d).require_grad();
        let y = norm(x.clone());
        assert_eq!(y.dtype(), x.dtype(), "{name}: dtype");
        let grads = (y.clone() * upstream(y.dims(), dtype, d)).sum().backward();
        super::check_within(&f64s(y), &c["y"], &format!("{name}: y"), tol, tol, tol);
        let dx = f64s(x.grad(&grads).unwrap());
        super::check_within(&dx, &c["dx"], &format!("{name}: dx"), tol, tol, tol);
    }
}
