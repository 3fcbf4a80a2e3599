//! R learns a known misalignment: B is A shifted by whole pixels, and after
//! a short training R's mean displacement over the head recovers the shift.
mod common;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::Device;
use medtrans_datasets::SliceDataset;
use medtrans_io::Slice;
use medtrans_losses::{correction, smoothness};
use medtrans_networks::RegistrationConfig;
use medtrans_training::{stack, unstack};

/// `s` moved by (dx, dy) pixels: out[r][c] = s[r - dy][c - dx], -1 outside.
fn shifted(s: &Slice, dx: i64, dy: i64) -> Slice {
    let (w, h) = (s.width as i64, s.height as i64);
    let mut out = vec![-1.0; s.data.len()];
    for r in 0..h {
        for c in 0..w {
            let (sr, sc) = (r - dy, c - dx);
            if (0..h).contains(&sr) && (0..w).contains(&sc) {
                out[(r * w + c) as usize] = s.data[(sr * w + sc) as usize];
            }
        }
    }
    Slice::new(out, s.width, s.height)
}

#[test]
fn r_recovers_a_known_shift() {
    let ds = SliceDataset::open(common::dataset(32), "train").unwrap();
    let (dx, dy) = (3i64, -2i64);
    let idx: Vec<usize> = (0..4).map(|k| k * ds.len() / 4).collect();
    let a: Vec<&Slice> = idx.iter().map(|&i| &ds.a[i]).collect();
    let b: Vec<Slice> = a.iter().map(|s| shifted(s, dx, dy)).collect();
    let device = Device::flex().autodiff();
    device.seed(3);
    let mut r = RegistrationConfig::default().init(32, 1, &device);
    let mut adam = AdamConfig::new().with_beta_1(0.5).init();
    let x = stack(&a, &device);
    let y = stack(&b.iter().collect::<Vec<_>>(), &device);
    for _ in 0..150 {
        let field = r.forward(x.clone(), y.clone());
        let loss =
            correction(x.clone(), field.clone(), y.clone()) * 20.0 + smoothness(field) * 10.0;
        let grads = GradientsParams::from_grads(loss.backward(), &r);
        r = adam.step(1e-3, r, grads);
    }
    // Mean field over pixels where the shifted image shows the head.
    let fields = unstack(r.forward(x, y), "R's field").unwrap();
    let (mut sum_row, mut sum_col, mut n) = (0.0, 0.0, 0.0);
    for (k, target) in b.iter().enumerate() {
        let (rows, cols) = (&fields[2 * k], &fields[2 * k + 1]);
        for i in 0..target.data.len() {
            if target.data[i] > -0.9 {
                sum_row += rows.data[i] as f64;
                sum_col += cols.data[i] as f64;
                n += 1.0;
            }
        }
    }
    let (mean_row, mean_col) = (sum_row / n, sum_col / n);
    // warp samples G(x) at p + field(p); B(p) = A(p - shift), so field = -shift.
    assert!(
        (mean_col + dx as f64).abs() < 1.0 && (mean_row + dy as f64).abs() < 1.0,
        "mean displacement (rows {mean_row:.2}, cols {mean_col:.2}), expected ({}, {})",
        -dy,
        -dx
    );
}
