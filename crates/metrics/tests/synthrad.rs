//! The target-unit metrics (SynthRAD's MAE, PSNR, masked SSIM; MS-SSIM;
//! mask dilation) against scikit-image, scipy and pytorch-msssim on a real
//! head CT (2-D, in HU) and the ICBM152 T1/T2 volumes (3-D), from
//! fixtures/metrics/synthrad.json (scripts/make_synthrad_fixtures.py).
use medtrans_io::{read_volume, Volume};
use medtrans_metrics::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture() -> Value {
    let p = repo().join("fixtures/metrics/synthrad.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn read(data: &Path, rel: &Value) -> Volume {
    read_volume(data.join(rel.as_str().unwrap()), &Default::default()).unwrap()
}

/// Axial slice `k` as (rows y, columns x), optionally cropped.
fn slice(v: &Volume, k: usize, crop: &Value) -> (Vec<f32>, Vec<usize>) {
    let [nx, ny, _] = v.geometry.shape;
    let plane = &v.data[k * nx * ny..(k + 1) * nx * ny];
    if crop.is_null() {
        return (plane.to_vec(), vec![ny, nx]);
    }
    let r = |key: &str, i: usize| crop[key][i].as_u64().unwrap() as usize;
    let (r0, r1, c0, c1) = (r("rows", 0), r("rows", 1), r("cols", 0), r("cols", 1));
    let mut out = Vec::new();
    for y in r0..r1 {
        out.extend_from_slice(&plane[y * nx + c0..y * nx + c1]);
    }
    (out, vec![r1 - r0, c1 - c0])
}

/// The inputs are the fixture's, to the checksums it recorded.
fn check_input(data: &[f32], dims: &[usize], want: &Value, what: &str) {
    let shape: Vec<usize> = want["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(dims, &shape[..], "{what}: shape");
    let sum: f64 = data.iter().map(|&v| v as f64).sum();
    let want_sum = want["sum"].as_f64().unwrap();
    assert!(
        (sum - want_sum).abs() <= 1e-9 * want_sum.abs().max(1.0) + 1e-3,
        "{what}: sum {sum} vs {want_sum}"
    );
    for s in want["samples"].as_array().unwrap() {
        let (i, v) = (s[0].as_u64().unwrap() as usize, s[1].as_f64().unwrap());
        assert_eq!(data[i] as f64, v as f32 as f64, "{what}: value at {i}");
    }
}

fn close(got: f64, want: &Value, tol: f64, what: &str) {
    let want = want
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: no reference"));
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: got {got}, reference {want}"
    );
}

fn check_case(name: &str, fake: &[f32], real: &[f32], mask: &[bool], dims: &[usize], c: &Value) {
    let range = UnitRange {
        low: c["lo"].as_f64().unwrap(),
        high: c["hi"].as_f64().unwrap(),
    };
    let s = UnitScores::compute(fake, real, mask, dims, range).unwrap();
    close(s.mae, &c["mae"], 1e-9, &format!("{name} MAE"));
    close(s.psnr, &c["psnr"], 1e-9, &format!("{name} PSNR"));
    close(s.ssim, &c["ssim"], 1e-8, &format!("{name} SSIM"));
    match (s.ms_ssim, c["ms_ssim"].as_f64()) {
        (Some(got), Some(_)) => close(got, &c["ms_ssim"], 1e-8, &format!("{name} MS-SSIM")),
        (None, None) => {}
        (got, want) => panic!("{name} MS-SSIM: got {got:?}, reference {want:?}"),
    }
    // Without the mask's preparation: MS-SSIM on the clipped, shifted images.
    let shift = |img: &[f32]| -> Vec<f64> {
        img.iter()
            .map(|&v| (v as f64).clamp(range.low, range.high) - range.low)
            .collect()
    };
    match (
        ms_ssim(&shift(fake), &shift(real), dims, range.width()),
        c["ms_ssim_nomask"].as_f64(),
    ) {
        (Some(got), Some(_)) => close(
            got,
            &c["ms_ssim_nomask"],
            1e-8,
            &format!("{name} MS-SSIM, no mask"),
        ),
        (None, None) => {}
        (got, want) => panic!("{name} MS-SSIM, no mask: got {got:?}, reference {want:?}"),
    }
}

#[test]
fn synthrad_metrics_match_skimage_and_pytorch_msssim_on_a_head_ct() {
    let Some(data) = medtrans_io::shared_data_or_skip() else {
        return;
    };
    let fx = fixture();
    for name in ["ct2d", "ct2d_narrow", "ct2d_small"] {
        let c = &fx["cases"][name];
        let inp = &c["inputs"];
        let vol = read(&data, &inp["gt"]["file"]);
        let k = |w: &str| inp[w]["axial_slice"].as_u64().unwrap() as usize;
        let (real, dims) = slice(&vol, k("gt"), &inp["gt"]["crop"]);
        let (fake, _) = slice(&vol, k("pred"), &inp["pred"]["crop"]);
        check_input(&real, &dims, &inp["gt"], &format!("{name} gt"));
        check_input(&fake, &dims, &inp["pred"], &format!("{name} pred"));
        let mask: Vec<bool> = real.iter().map(|&v| v > -500.0).collect();
        let m32: Vec<f32> = mask.iter().map(|&m| m as u8 as f32).collect();
        check_input(&m32, &dims, &inp["mask"], &format!("{name} mask"));
        check_case(name, &fake, &real, &mask, &dims, c);
        if name == "ct2d" {
            let d = &fx["dilation"]["dilate2d"];
            let grown = dilate(&mask, &dims, 2);
            let g32: Vec<f32> = grown.iter().map(|&m| m as u8 as f32).collect();
            check_input(&g32, &dims, &d["result"], "2-D dilation");
            assert_eq!(
                grown.iter().filter(|&&m| m).count() as u64,
                d["count"].as_u64().unwrap()
            );
        }
    }
}

#[test]
fn synthrad_metrics_match_in_3d_on_icbm_volumes() {
    let Some(data) = medtrans_io::shared_data_or_skip() else {
        return;
    };
    let fx = fixture();
    let c = &fx["cases"]["icbm3d"];
    let inp = &c["inputs"];
    let (real, fake, m) = (
        read(&data, &inp["gt"]["file"]),
        read(&data, &inp["pred"]["file"]),
        read(&data, &inp["mask"]["file"]),
    );
    // x fastest, as the fixture's (nz, ny, nx) row-major order.
    let [nx, ny, nz] = real.geometry.shape;
    let dims = [nz, ny, nx];
    check_input(&real.data, &dims, &inp["gt"], "ICBM T2");
    check_input(&fake.data, &dims, &inp["pred"], "ICBM T1");
    let mask: Vec<bool> = m.data.iter().map(|&v| v > 0.5).collect();
    check_case("icbm3d", &fake.data, &real.data, &mask, &dims, c);
    let d = &fx["dilation"]["dilate3d"];
    let grown = dilate(&mask, &dims, 1);
    let g32: Vec<f32> = grown.iter().map(|&m| m as u8 as f32).collect();
    check_input(&g32, &dims, &d["result"], "3-D dilation");
}

#[test]
fn ms_ssim_is_one_for_equal_images_and_undefined_below_161_pixels() {
    let n = 170;
    let img: Vec<f64> = (0..n * n).map(|i| ((i * 7919) % 1000) as f64).collect();
    let v = ms_ssim(&img, &img, &[n, n], 1000.0).unwrap();
    assert!((v - 1.0).abs() < 1e-12, "{v}");
    let small = vec![0.0; 160 * 200];
    assert_eq!(ms_ssim(&small, &small, &[160, 200], 1.0), None);
    // PSNR of equal images is infinite, not NaN.
    let a = vec![1.0f32; 64];
    assert_eq!(
        psnr_units(&a, &a, &[true; 64], UnitRange::SYNTHRAD_CT),
        Some(f64::INFINITY)
    );
    // An empty mask scores nothing.
    assert_eq!(mae_units(&a, &a, &[false; 64]), None);
}
