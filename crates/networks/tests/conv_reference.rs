//! The CPU convolutions (medtrans's burn-flex patch, patches/README.md)
//! against PyTorch: conv2d and conv_transpose2d, their values and the
//! gradients of input, weight and bias (fixtures/networks/conv.json, from
//! scripts/make_conv_fixtures.py). Strides, padding (asymmetric too),
//! dilation, groups, 1x1, batches, and sizes large enough to tile the
//! column buffer.
use burn::tensor::module::{conv2d, conv_transpose2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, FloatDType, Tensor};
use json_fixture::{check, dims4, ramp, usizes, values};
use serde_json::Value;

mod json_fixture;

fn fixture() -> Value {
    json_fixture::load("conv.json")
}

fn pair(v: &Value) -> [usize; 2] {
    let u = usizes(v);
    [u[0], u[1]]
}

fn run_case(c: &Value) {
    let d = Device::flex().autodiff();
    let kind = c["kind"].as_str().unwrap();
    let (xs, ws, ys) = (
        dims4(&c["x_shape"]),
        dims4(&c["w_shape"]),
        dims4(&c["y_shape"]),
    );
    let (stride, dilation) = (pair(&c["stride"]), pair(&c["dilation"]));
    let groups = c["groups"].as_u64().unwrap() as usize;
    let name = format!("{kind} x{xs:?} w{ws:?} stride{stride:?} groups {groups}");
    let x = ramp(xs, 0.37, 0.1, 1.0, &d).require_grad();
    let w = ramp(ws, 0.71, 0.3, 0.5, &d).require_grad();
    let c_out = if kind == "conv2d" {
        ws[0]
    } else {
        ws[1] * groups
    };
    let b = c["bias"]
        .as_bool()
        .unwrap()
        .then(|| ramp([c_out], 1.3, 0.2, 1.0, &d).require_grad());
    let y = if kind == "conv2d" {
        let p = c["padding"].as_array().unwrap();
        let (ph, pw) = (pair(&p[0]), pair(&p[1]));
        let o = ConvOptions::new_with_padding(
            stride,
            [(ph[0], ph[1]), (pw[0], pw[1])],
            dilation,
            groups,
        );
        conv2d(x.clone(), w.clone(), b.clone(), o)
    } else {
        let o = ConvTransposeOptions::new(
            stride,
            pair(&c["padding"]),
            pair(&c["output_padding"]),
            dilation,
            groups,
        );
        conv_transpose2d(x.clone(), w.clone(), b.clone(), o)
    };
    assert_eq!(y.dims(), ys, "{name}: output shape");
    let up = ramp(ys, 0.11, 0.5, 1.0, &d);
    let grads = (y.clone() * up).sum().backward();
    check(values(y), &c["y"], &format!("{name}: y"));
    check(
        values(x.grad(&grads).unwrap()),
        &c["dx"],
        &format!("{name}: dx"),
    );
    check(
        values(w.grad(&grads).unwrap()),
        &c["dw"],
        &format!("{name}: dw"),
    );
    if let Some(b) = b {
        check(
            values(b.grad(&grads).unwrap()),
            &c["db"],
            &format!("{name}: db"),
        );
    }
}

#[test]
fn convolutions_match_pytorch_values_and_gradients() {
    let f = fixture();
    let cases = f["cases"].as_array().unwrap();
    assert!(cases.len() >= 16);
    for c in cases {
        run_case(c);
    }
}

/// A constant input's convolution is the weights' sum times the constant
/// wherever the kernel sits inside the image: a check of the tiling that
/// needs no reference, at a size whose column buffer takes several tiles.
#[test]
fn a_constant_image_gives_the_weight_sum_inside() {
    let d = Device::flex();
    let x = Tensor::<4>::ones([1, 128, 70, 70], &d);
    let w = ramp([32, 128, 3, 3], 0.71, 0.3, 0.5, &d);
    let sums = values(w.clone().sum_dim(3).sum_dim(2).sum_dim(1).reshape([32]));
    let y = values(conv2d(
        x,
        w,
        None,
        ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
    ));
    let plane = 70 * 70;
    for (co, s) in sums.iter().enumerate() {
        for yy in 1..69 {
            for xx in [1, 35, 68] {
                let v = y[co * plane + yy * 70 + xx];
                assert!(
                    (v - s).abs() < 1e-3,
                    "channel {co} ({yy}, {xx}): {v} vs {s}"
                );
            }
        }
    }
}

/// The patch runs f64 and f16 natively and bf16 through f32: each agrees
/// with the f32 result (checked above against PyTorch) to its precision,
/// forward and both gradients, for a convolution and a transposed one.
#[test]
fn every_float_type_agrees_with_f32() {
    let d = Device::flex().autodiff();
    let cases: [(FloatDType, f32); 3] = [
        (FloatDType::F64, 1e-5),
        (FloatDType::F16, 2e-2),
        (FloatDType::BF16, 1e-1),
    ];
    let run = |dtype: FloatDType, transposed: bool| {
        let x = ramp([2, 4, 9, 8], 0.37, 0.1, 1.0, &d)
            .cast(dtype)
            .require_grad();
        let w = ramp([4, 3, 3, 3], 0.71, 0.3, 0.5, &d)
            .cast(dtype)
            .require_grad();
        let b = ramp([3], 1.3, 0.2, 1.0, &d).cast(dtype);
        let y = if transposed {
            let o = ConvTransposeOptions::new([2, 2], [1, 1], [1, 1], [1, 1], 1);
            conv_transpose2d(x.clone(), w.clone(), Some(b), o)
        } else {
            let w = w.clone().swap_dims(0, 1); // [3, 4, 3, 3]
            conv2d(
                x.clone(),
                w,
                Some(b),
                ConvOptions::new([2, 1], [1, 1], [1, 1], 1),
            )
        };
        assert_eq!(y.dtype(), dtype.into(), "{dtype:?}: output type");
        let up = ramp(y.dims(), 0.11, 0.5, 1.0, &d).cast(dtype);
        let grads = (y.clone() * up).sum().backward();
        let as32 = |t: Tensor<4>| values(t.cast(FloatDType::F32));
        (
            as32(y),
            as32(x.grad(&grads).unwrap()),
            as32(w.grad(&grads).unwrap()),
        )
    };
    for transposed in [false, true] {
        let want = run(FloatDType::F32, transposed);
        for (dtype, tol) in cases {
            let got = run(dtype, transposed);
            for (what, g, w) in [
                ("y", &got.0, &want.0),
                ("dx", &got.1, &want.1),
                ("dw", &got.2, &want.2),
            ] {
                let scale = w.iter().fold(1f32, |m, v| m.max(v.abs()));
                for (a, b) in g.iter().zip(w) {
                    assert!(
                        (a - b).abs() <= tol * scale,
                        "{dtype:?} transposed={transposed} {what}: {a} vs f32's {b}"
                    );
                }
            }
        }
    }
}
