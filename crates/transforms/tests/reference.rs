//! Transforms against scipy / scikit-image / numpy on a real ICBM152 T2 slice
//! (fixtures/transforms and fixtures/io.json, made by scripts/make_fixtures.py).
use medtrans_io::{read_npy, read_volume, ReadOptions, Slice};
use medtrans_transforms::*;
use rand::SeedableRng;
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join(rel)).unwrap()).unwrap()
}

fn load(rel: &serde_json::Value) -> Slice {
    let p = repo().join(rel.as_str().unwrap());
    read_npy(&p).unwrap().into_slices(&p).unwrap().remove(0)
}

fn max_abs_diff(a: &Slice, b: &Slice) -> f32 {
    assert_eq!((a.width, a.height), (b.width, b.height));
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn affine_warp_matches_scipy_grid_constant() {
    let fx = json("fixtures/transforms/expected.json");
    let input = load(&fx["input"]);
    for w in fx["warps"].as_array().unwrap() {
        let p = MisalignParams {
            angle_deg: w["angle"].as_f64().unwrap(),
            scale: w["scale"].as_f64().unwrap(),
            tx: w["tx"].as_f64().unwrap(),
            ty: w["ty"].as_f64().unwrap(),
        };
        let got = affine_warp(&input, &p, -1.0);
        let d = max_abs_diff(&got, &load(&w["expected"]));
        assert!(d < 1e-5, "{p:?}: max difference {d}");
    }
}

#[test]
fn bilinear_resize_matches_skimage() {
    let fx = json("fixtures/transforms/expected.json");
    let input = load(&fx["input"]);
    let r = &fx["resize"];
    let got = resize(
        &input,
        r["width"].as_u64().unwrap() as usize,
        r["height"].as_u64().unwrap() as usize,
        Interp::Bilinear,
    );
    let d = max_abs_diff(&got, &load(&r["expected"]));
    assert!(d < 1e-5, "max difference {d}");
}

#[test]
fn percentiles_match_numpy() {
    let fx = json("fixtures/io.json");
    let p = &fx["percentiles"];
    let path = repo().join(p["path"].as_str().unwrap());
    if !path.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "shared data missing in CI"
        );
        return;
    }
    let vol = read_volume(&path, &ReadOptions::default()).unwrap();
    let want: Vec<f64> = serde_json::from_value(p["all_voxels"].clone()).unwrap();
    let got = percentile(&vol.data, &[0.5, 99.5]).unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-4, "{g} vs {w}");
    }
    let mask_path = path
        .to_string_lossy()
        .replace("_09c.nii.gz", "_09c_mask.nii.gz");
    let mask = read_volume(&mask_path, &ReadOptions::default()).unwrap();
    let m: Vec<bool> = mask.data.iter().map(|&v| v > 0.5).collect();
    let map = Normalization::Percentile {
        low: 0.5,
        high: 99.5,
    }
    .fit(&vol.data, Some(&m))
    .unwrap();
    let want: Vec<f64> = serde_json::from_value(p["in_mask"].clone()).unwrap();
    assert!((map.low - want[0]).abs() < 1e-4 && (map.high - want[1]).abs() < 1e-4);
}

#[test]
fn intensity_map_round_trips_and_refuses_bad_volumes() {
    let map = Normalization::Window {
        low: -1024.0,
        high: 2000.0,
    }
    .fit(&[0.0], None)
    .unwrap();
    assert_eq!(map.forward(-1024.0), -1.0);
    assert_eq!(map.forward(5000.0), 1.0);
    assert!((map.inverse(map.forward(40.0)) - 40.0).abs() < 1e-3);
    let pct = Normalization::default();
    assert!(matches!(
        pct.fit(&[1.0, f32::NAN, 2.0, f32::INFINITY], None),
        Err(TransformError::NonFinite { count: 2, first: 1 })
    ));
    assert!(matches!(
        pct.fit(&[3.0; 100], None),
        Err(TransformError::Constant { .. })
    ));
    assert!(matches!(
        pct.fit(&[1.0, 2.0], Some(&[false, false])),
        Err(TransformError::Empty)
    ));
}

#[test]
fn misalignment_levels_follow_table_2_and_are_seeded() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    assert!(MisalignParams::sample(0, 128, 128, &mut rng).is_identity());
    for level in 1..=MAX_NOISE_LEVEL {
        let l = level as f64;
        let mut seen_big = false;
        for _ in 0..500 {
            let p = MisalignParams::sample(level, 128, 96, &mut rng);
            assert!(p.angle_deg.abs() <= l);
            assert!(p.tx.abs() <= 0.02 * l * 128.0 + 1e-9);
            assert!(p.ty.abs() <= 0.02 * l * 96.0 + 1e-9);
            assert!((p.scale - 1.0).abs() <= 0.02 * l + 1e-12);
            seen_big |= p.angle_deg.abs() > 0.8 * l;
        }
        assert!(
            seen_big,
            "level {level}: rotations never approach the bound"
        );
    }
    let draw = |seed| {
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        MisalignParams::sample(5, 64, 64, &mut r)
    };
    assert_eq!(draw(3), draw(3));
    assert_ne!(draw(3), draw(4));
}

/// The paper's Table 1 range (rotation +-5 deg, translation and scaling
/// +-5 %), and a level drawn through its range is the level's own draw.
#[test]
fn a_misalignment_range_bounds_its_draws() {
    use medtrans_transforms::MisalignRange;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let r = MisalignRange::TABLE1;
    let (mut big_rot, mut big_shift) = (false, false);
    for _ in 0..500 {
        let p = MisalignParams::sample_in(&r, 100, 80, &mut rng);
        assert!(p.angle_deg.abs() <= 5.0 && (p.scale - 1.0).abs() <= 0.05 + 1e-12);
        assert!(p.tx.abs() <= 5.0 + 1e-9 && p.ty.abs() <= 4.0 + 1e-9);
        big_rot |= p.angle_deg.abs() > 4.0;
        big_shift |= p.tx.abs() > 4.0;
    }
    assert!(big_rot && big_shift);
    for level in 0..=MAX_NOISE_LEVEL {
        let draw = |by_range: bool| {
            let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(level as u64);
            if by_range {
                MisalignParams::sample_in(&MisalignRange::level(level), 64, 48, &mut r)
            } else {
                MisalignParams::sample(level, 64, 48, &mut r)
            }
        };
        assert_eq!(draw(true), draw(false));
    }
    assert!(MisalignRange { scale: 1.5, ..r }.check().is_err());
    assert!(MisalignRange {
        rotation_deg: -1.0,
        ..r
    }
    .check()
    .is_err());
}

#[test]
fn square_fit_keeps_aspect_and_inverts() {
    let s = Slice::new((0..6 * 4).map(|i| i as f32).collect(), 6, 4);
    let fit = SquareFit::new(6, 4, 6);
    let sq = fit.forward(&s, -1.0, Interp::Bilinear);
    assert_eq!((sq.width, sq.height), (6, 6));
    assert_eq!(sq.get(0, 0), -1.0, "padding row on top");
    assert_eq!(sq.get(1, 0), 0.0);
    assert_eq!(fit.inverse(&sq, Interp::Bilinear), s);
    // Nearest keeps label values exact.
    let labels = Slice::new((0..100).map(|i| (i % 3) as f32).collect(), 10, 10);
    let r = resize(&labels, 7, 13, Interp::Nearest);
    assert!(r.data.iter().all(|v| [0.0, 1.0, 2.0].contains(v)));
    assert!((foreground_fraction(&labels, 0.5) - 0.66).abs() < 0.01);
}

/// Bilinear read of `s` at (x, y), -1 outside: the warp R's fields drive.
fn sample(s: &Slice, x: f32, y: f32) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let at = |c: f32, r: f32| {
        if c < 0.0 || r < 0.0 || c >= s.width as f32 || r >= s.height as f32 {
            -1.0
        } else {
            s.data[r as usize * s.width + c as usize]
        }
    };
    let (fx, fy) = (x - x0, y - y0);
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1.0, y0) * fx;
    let bot = at(x0, y0 + 1.0) * (1.0 - fx) + at(x0 + 1.0, y0 + 1.0) * fx;
    top * (1.0 - fy) + bot * fy
}

#[test]
fn ideal_field_lines_up_two_misaligned_copies() {
    let fx = json("fixtures/transforms/expected.json");
    let input = load(&fx["input"]);
    let (w, h) = (input.width, input.height);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let a = MisalignParams::sample(5, w, h, &mut rng);
    let b = MisalignParams::sample(5, w, h, &mut rng);
    // map and unmap are inverses.
    let (x, y) = a.unmap(7.25, 30.5, w, h);
    let (x, y) = a.map(x, y, w, h);
    assert!((x - 7.25).abs() < 1e-9 && (y - 30.5).abs() < 1e-9);
    let (moved_a, moved_b) = (affine_warp(&input, &a, -1.0), affine_warp(&input, &b, -1.0));
    let (dy, dx) = ideal_field(&a, &b, w, h);
    let (mut before, mut after, mut n) = (0f64, 0f64, 0usize);
    for r in 0..h {
        for c in 0..w {
            let k = r * w + c;
            let (sx, sy) = (c as f32 + dx.data[k], r as f32 + dy.data[k]);
            // Interior only: where both copies still see the original image.
            let (ux, uy) = b.unmap(c as f64, r as f64, w, h);
            let inside =
                |x: f64, y: f64| x >= 1.0 && y >= 1.0 && x <= w as f64 - 2.0 && y <= h as f64 - 2.0;
            if !inside(ux, uy) || !inside(sx as f64, sy as f64) {
                continue;
            }
            before += (moved_a.data[k] - moved_b.data[k]).abs() as f64;
            after += (sample(&moved_a, sx, sy) - moved_b.data[k]).abs() as f64;
            n += 1;
        }
    }
    let (before, after) = (before / n as f64, after / n as f64);
    // What is left is the blur of two bilinear resamplings.
    assert!(after < 0.15 * before, "before {before}, after {after}");
    let shift: f32 = dy
        .data
        .iter()
        .zip(&dx.data)
        .map(|(a, b)| a.hypot(*b))
        .sum::<f32>()
        / (w * h) as f32;
    assert!(
        shift > 2.0,
        "level 5 should move pixels by more than 2 px, got {shift}"
    );
}
