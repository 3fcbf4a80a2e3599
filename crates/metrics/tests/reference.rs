//! Every metric against numpy / scikit-image / scipy on real ICBM152 slices
//! (fixtures/metrics/expected.json, made by scripts/make_fixtures.py).
use medtrans_io::{read_npy, Slice};
use medtrans_metrics::*;
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(rel: &serde_json::Value) -> Slice {
    let p = repo().join(rel.as_str().unwrap());
    read_npy(&p).unwrap().into_slices(&p).unwrap().remove(0)
}

fn expected() -> serde_json::Value {
    let p = repo().join("fixtures/metrics/expected.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, reference {want}"
    );
}

#[test]
fn nmae_psnr_ssim_match_the_references() {
    let fx = expected();
    for (k, c) in fx["cases"].as_array().unwrap().iter().enumerate() {
        let (fake, real) = (load(&c["fake"]), load(&c["real"]));
        let f = |name: &str| c[name].as_f64().unwrap();
        assert_close(
            nmae(&fake, &real).unwrap(),
            f("nmae"),
            1e-7,
            &format!("case {k} NMAE"),
        );
        assert_close(
            psnr(&fake, &real).unwrap(),
            f("psnr"),
            1e-6,
            &format!("case {k} PSNR"),
        );
        assert_close(
            ssim(&fake, &real).unwrap(),
            f("ssim"),
            1e-7,
            &format!("case {k} SSIM"),
        );
        assert_close(
            ssim_gaussian(&fake, &real).unwrap(),
            f("ssim_gaussian"),
            1e-7,
            &format!("case {k} Gaussian SSIM"),
        );
        let u = &c["mae_units"];
        assert_close(
            mae_in_units(
                &fake,
                &real,
                u["lo"].as_f64().unwrap(),
                u["hi"].as_f64().unwrap(),
            )
            .unwrap(),
            u["value"].as_f64().unwrap(),
            1e-4,
            &format!("case {k} MAE in units"),
        );
    }
}

#[test]
fn identical_images_are_perfect_and_empty_foreground_is_undefined() {
    let fx = expected();
    let real = load(&fx["cases"][1]["real"]);
    assert_eq!(psnr(&real, &real), Some(100.0));
    assert_eq!(nmae(&real, &real), Some(0.0));
    assert!((ssim(&real, &real).unwrap() - 1.0).abs() < 1e-12);
    let background = Slice::filled(real.width, real.height, -1.0);
    assert_eq!(nmae(&real, &background), None);
    assert_eq!(psnr(&real, &background), None);
    assert_eq!(
        ssim(&Slice::filled(5, 5, 0.0), &Slice::filled(5, 5, 0.0)),
        None
    );
}

#[test]
fn dice_matches_numpy() {
    let fx = expected();
    let d = &fx["dice"];
    let got = dice_per_label(&load(&d["a"]), &load(&d["b"]));
    let want = d["per_label"].as_object().unwrap();
    assert_eq!(got.len(), want.len());
    for (label, v) in want {
        let g = got[&label.parse::<i64>().unwrap()];
        assert_close(g, v.as_f64().unwrap(), 1e-12, &format!("label {label}"));
    }
    let t = &fx["dice_threshold"];
    let mask: Vec<bool> = load(&t["mask"]).data.iter().map(|&v| v > 0.0).collect();
    let best = dice_best_threshold(
        &load(&t["image"]),
        &mask,
        t["bins"].as_u64().unwrap() as usize,
    );
    assert_close(
        best.dice,
        t["dice"].as_f64().unwrap(),
        1e-12,
        "threshold Dice",
    );
    let range: Vec<usize> = serde_json::from_value(t["bin_range"].clone()).unwrap();
    assert_eq!(best.bins, (range[0], range[1]));
}

#[test]
fn wilcoxon_matches_scipy() {
    let fx = expected();
    for case in fx["wilcoxon"].as_array().unwrap() {
        let a: Vec<f64> = serde_json::from_value(case["a"].clone()).unwrap();
        let b: Vec<f64> = serde_json::from_value(case["b"].clone()).unwrap();
        let w = wilcoxon_signed_rank(&a, &b).unwrap();
        assert_close(w.statistic, case["statistic"].as_f64().unwrap(), 1e-9, "W");
        let p = case["p_value"].as_f64().unwrap();
        assert!(
            (w.p_value - p).abs() <= 1e-6 + 1e-4 * p,
            "n={} p {} vs {p}",
            a.len(),
            w.p_value
        );
    }
}

#[test]
fn mean_std_is_numpy_default() {
    let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0, f64::NAN]).unwrap();
    assert_eq!(m, 2.5);
    assert!((s - 1.118033988749895).abs() < 1e-12);
    assert_eq!(mean_std(&[]), None);
}

#[test]
fn paired_t_test_matches_scipy_ttest_rel() {
    let p = repo().join("fixtures/metrics/ttest.json");
    let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    for case in fx["ttest_rel"].as_array().unwrap() {
        let a: Vec<f64> = serde_json::from_value(case["a"].clone()).unwrap();
        let b: Vec<f64> = serde_json::from_value(case["b"].clone()).unwrap();
        let r = medtrans_metrics::paired_t_test(&a, &b).unwrap();
        assert_close(r.t, case["t"].as_f64().unwrap(), 1e-9, "t");
        assert_eq!(r.df, case["df"].as_f64().unwrap());
        let want = case["p_value"].as_f64().unwrap();
        assert!(
            (r.p_value - want).abs() <= 1e-12 + 1e-8 * want,
            "df {} p {} vs scipy {want}",
            r.df,
            r.p_value
        );
    }
    assert!(medtrans_metrics::paired_t_test(&[1.0], &[2.0]).is_none());
    assert!(medtrans_metrics::paired_t_test(&[1.0, 2.0], &[2.0, 3.0]).is_none());
}
