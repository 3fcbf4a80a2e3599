//! The warp and the misalignment noise agree on what a field means: the
//! exact field that undoes two known affines (`ideal_field`, rows then
//! columns) lines up the two moved copies of a real slice when `warp`
//! applies it. This is the convention the noise sweep's check of R uses.
use burn::tensor::{Device, Tensor, TensorData};
use medtrans_io::{read_npy, Slice};
use medtrans_networks::warp;
use medtrans_transforms::{affine_warp, ideal_field, MisalignParams};
use rand::SeedableRng;
use std::path::PathBuf;

fn tensor(slices: &[&Slice], device: &Device) -> Tensor<4> {
    let (w, h) = (slices[0].width, slices[0].height);
    let data: Vec<f32> = slices.iter().flat_map(|s| s.data.iter().copied()).collect();
    Tensor::from_data(TensorData::new(data, [1, slices.len(), h, w]), device)
}

#[test]
fn warp_with_the_ideal_field_lines_up_misaligned_copies() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/transforms/input.npy");
    let input = read_npy(&path)
        .unwrap()
        .into_slices(&path)
        .unwrap()
        .remove(0);
    let (w, h) = (input.width, input.height);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let pa = MisalignParams::sample(5, w, h, &mut rng);
    let pb = MisalignParams::sample(5, w, h, &mut rng);
    let (moved_a, moved_b) = (
        affine_warp(&input, &pa, -1.0),
        affine_warp(&input, &pb, -1.0),
    );
    let (dy, dx) = ideal_field(&pa, &pb, w, h);
    let device = Device::flex();
    let out = warp(tensor(&[&moved_a], &device), tensor(&[&dy, &dx], &device));
    let out: Vec<f32> = out.into_data().try_into_vec_as::<f32>().unwrap();
    let inside =
        |x: f64, y: f64| x >= 1.0 && y >= 1.0 && x <= w as f64 - 2.0 && y <= h as f64 - 2.0;
    let (mut before, mut after, mut n) = (0f64, 0f64, 0usize);
    for r in 0..h {
        for c in 0..w {
            let k = r * w + c;
            // Interior only: both copies see the original image there.
            let (ux, uy) = pb.unmap(c as f64, r as f64, w, h);
            let (qx, qy) = (c as f64 + dx.data[k] as f64, r as f64 + dy.data[k] as f64);
            if !inside(ux, uy) || !inside(qx, qy) {
                continue;
            }
            before += (moved_a.data[k] - moved_b.data[k]).abs() as f64;
            after += (out[k] - moved_b.data[k]).abs() as f64;
            n += 1;
        }
    }
    assert!(n > w * h / 3, "too few interior pixels: {n}");
    let (before, after) = (before / n as f64, after / n as f64);
    assert!(after < 0.15 * before, "before {before}, after {after}");
    // Swapping the channels (columns first) must not line them up.
    let swapped = warp(tensor(&[&moved_a], &device), tensor(&[&dx, &dy], &device));
    let swapped: Vec<f32> = swapped.into_data().try_into_vec_as::<f32>().unwrap();
    let worse: f64 = (0..w * h)
        .map(|k| (swapped[k] - moved_b.data[k]).abs() as f64)
        .sum::<f64>()
        / (w * h) as f64;
    let all: f64 = (0..w * h)
        .map(|k| (out[k] - moved_b.data[k]).abs() as f64)
        .sum::<f64>()
        / (w * h) as f64;
    assert!(worse > 2.0 * all, "swapped {worse}, right order {all}");
}
