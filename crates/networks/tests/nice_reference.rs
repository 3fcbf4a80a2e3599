//! NICE-GAN's networks against PyTorch (fixtures/networks/nice.json, from
//! scripts/make_nice_fixtures.py): parameter counts and output shapes of
//! the discriminators (C's and NC's) and translators, ILN and AdaILN's
//! normalisation, one spectral-norm power iteration, pixel shuffle.
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use json_fixture::usizes;
use medtrans_networks::{
    iln_mix, pixel_shuffle2, power_iteration, spectral_sigma, NiceDiscriminatorConfig,
    NiceGeneratorConfig,
};
use serde_json::Value;

mod json_fixture;

fn fixture() -> Value {
    json_fixture::load("nice.json")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn n(v: &Value) -> usize {
    v.as_u64().unwrap() as usize
}

fn tensor<const D: usize>(v: &Value, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_data(TensorData::new(floats(v), shape), &Device::flex())
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// medtrans keeps spectral norm's u and v as gradient-free parameters;
/// PyTorch as buffers: its count is parameters plus those buffers.
#[test]
fn discriminator_sizes_and_shapes_match_pytorchs() {
    let device = Device::flex();
    for d in fixture()["discriminators"].as_array().unwrap() {
        let cfg = NiceDiscriminatorConfig::new()
            .with_dim(n(&d["dim"]))
            .with_n_layers(n(&d["n_layers"]))
            .with_replicate(d["replicate"].as_bool().unwrap())
            .with_global_kernel(n(&d["global_kernel"]));
        let side = n(&d["side"]);
        assert_eq!(cfg.fits(side), Ok(()), "{d}");
        let net = cfg.init(&device);
        assert_eq!(
            net.num_params(),
            n(&d["params"]) + n(&d["sn_buffers"]),
            "{d}"
        );
        assert_eq!(
            net.encoder.num_params(),
            n(&d["encoder_params"]) + n(&d["encoder_sn_buffers"]),
            "{d}"
        );
        let outs = net.forward(Tensor::zeros([2, 1, side, side], &device));
        let shapes: Vec<Vec<usize>> = outs.iter().map(|o| o.dims().to_vec()).collect();
        let want: Vec<Vec<usize>> = d["shapes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                // The CAM logit is [N, 1] there, [N, 1, 1, 1] here.
                let mut s = usizes(s);
                s.resize(4, 1);
                s
            })
            .collect();
        assert_eq!(shapes, want, "{d}");
    }
}

#[test]
fn translator_sizes_and_shapes_match_pytorchs() {
    let device = Device::flex();
    for g in fixture()["generators"].as_array().unwrap() {
        let (dim, side) = (n(&g["dim"]), n(&g["side"]));
        let own = g["own_encoder"].as_bool().unwrap();
        let net = NiceGeneratorConfig::new()
            .with_dim(dim)
            .with_n_blocks(n(&g["n_blocks"]))
            .with_light(g["light"].as_bool().unwrap())
            .with_own_encoder(own)
            .init(side, &device);
        assert_eq!(
            net.num_params(),
            n(&g["params"]) + n(&g["sn_buffers"]),
            "{g}"
        );
        let out = if own {
            net.forward(Tensor::zeros([2, 1, side, side], &device))
        } else {
            net.decode(Tensor::zeros([2, 2 * dim, side / 4, side / 4], &device))
        };
        assert_eq!(out.dims().to_vec(), usizes(&g["output_shape"]), "{g}");
    }
}

#[test]
fn iln_and_adailn_normalise_as_pytorch() {
    let f = &fixture()["iln"];
    let shape: [usize; 4] = usizes(&f["shape"]).try_into().unwrap();
    let c = shape[1];
    let x = tensor(&f["x"], shape);
    // ILN: the initial rho (1, 3.2), then the set gamma and beta.
    let rho: Tensor<2> = Tensor::<2>::from_floats([[1.0, 3.2]], &Device::flex()).repeat_dim(0, c);
    let gamma = tensor::<1>(&f["gamma"], [c]).reshape([1, c, 1, 1]);
    let beta = tensor::<1>(&f["beta"], [c]).reshape([1, c, 1, 1]);
    let y = iln_mix(x.clone(), rho) * gamma + beta;
    close(&values(y), &floats(&f["y"]), 1e-5, "ILN");
    let mix = iln_mix(x, tensor(&f["rho"], [c, 2]));
    close(&values(mix), &floats(&f["mix"]), 1e-5, "AdaILN's mix");
}

#[test]
fn one_power_iteration_matches_pytorchs_spectral_norm() {
    let f = &fixture()["spectral_norm"];
    let (rows, cols) = (n(&f["rows"]), n(&f["cols"]));
    let w = tensor::<2>(&f["w"], [rows, cols]);
    let (u, v) = power_iteration(w.clone(), tensor(&f["u0"], [rows]));
    close(&values(u.clone()), &floats(&f["u1"]), 1e-5, "u");
    close(&values(v.clone()), &floats(&f["v1"]), 1e-5, "v");
    let sigma = values(spectral_sigma(w.clone(), u, v))[0];
    close(
        &[sigma],
        &[f["sigma"].as_f64().unwrap() as f32],
        1e-5,
        "sigma",
    );
    close(
        &values(w / sigma),
        &floats(&f["normalized_w"]),
        1e-5,
        "W / sigma",
    );
}

#[test]
fn pixel_shuffle_matches_pytorchs() {
    let f = &fixture()["pixel_shuffle"];
    let shape: [usize; 4] = usizes(&f["shape"]).try_into().unwrap();
    let count: usize = shape.iter().product();
    let ramp: Vec<f32> = (0..count).map(|i| i as f32).collect();
    let x = Tensor::<4>::from_data(TensorData::new(ramp, shape), &Device::flex());
    let y = pixel_shuffle2(x);
    assert_eq!(y.dims(), [2, 2, 4, 6]);
    assert_eq!(values(y), floats(&f["y"]));
}
