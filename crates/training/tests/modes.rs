//! Every mode is one trainer with different weights: each trains on real
//! slices with finite losses, and its reconstruction terms go down.
mod common;
use common::{small_config, term};
use medtrans_training::nets::{D_A, F, R};
use medtrans_training::Trainer;

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Train `steps` steps and return each term's trajectory.
fn train(mode: &str, steps: usize) -> (Trainer, Vec<medtrans_training::LossRow>) {
    train_with(mode, steps, &[])
}

fn train_with(
    mode: &str,
    steps: usize,
    extra: &[&str],
) -> (Trainer, Vec<medtrans_training::LossRow>) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(mode, &dir.path().join("run"), extra);
    let mut t = Trainer::new(cfg).unwrap();
    let rows: Vec<_> = (0..steps).map(|_| t.train_step().unwrap()).collect();
    for row in &rows {
        for (name, v) in row {
            assert!(v.is_finite(), "{mode}: {name} = {v}");
        }
    }
    (t, rows)
}

/// First-5 versus last-5 mean of a term.
fn drop_of(rows: &[medtrans_training::LossRow], name: &str) -> (f64, f64) {
    let v: Vec<f64> = rows
        .iter()
        .map(|r| term(r, name).unwrap_or_else(|| panic!("no {name} term")))
        .collect();
    (mean(&v[..5]), mean(&v[v.len() - 5..]))
}

fn assert_decreases(rows: &[medtrans_training::LossRow], name: &str, mode: &str) {
    let (first, last) = drop_of(rows, name);
    assert!(
        last < first,
        "{mode}: {name} did not decrease ({first:.4} -> {last:.4})"
    );
}

#[test]
fn pix2pix_l1_decreases() {
    let (t, rows) = train("pix2pix", 25);
    assert!(!t.nets.has(R) && !t.nets.has(F));
    assert_decreases(&rows, "l1", "pix2pix");
    assert!(term(&rows[0], "d_b").is_some() && term(&rows[0], "g_adv").is_some());
}

#[test]
fn cycle_losses_decrease() {
    let (t, rows) = train("cycle", 25);
    assert!(t.nets.has(F) && t.nets.has(D_A) && !t.nets.has(R));
    assert_decreases(&rows, "cycle_a", "cycle");
    assert_decreases(&rows, "cycle_b", "cycle");
}

#[test]
fn nc_trains_on_the_adversarial_loss_alone() {
    let (t, rows) = train("nc", 25);
    assert!(!t.nets.has(R) && !t.nets.has(F));
    let names: Vec<&str> = rows[0].iter().map(|r| r.0).collect();
    assert_eq!(names, ["lr", "g_adv", "g_total", "d_b"]);
    // The discriminator learns to tell real from generated.
    assert_decreases(&rows, "d_b", "nc");
}

#[test]
fn reggan_correction_decreases() {
    let (t, rows) = train("reggan", 25);
    assert!(t.nets.has(R) && !t.nets.has(F));
    assert_decreases(&rows, "correction", "reggan");
    assert!(term(&rows[0], "smoothness").is_some());
}

#[test]
fn cycle_reg_trains_every_network() {
    let (t, rows) = train("cycle+reg", 25);
    assert!(t.nets.has(R) && t.nets.has(F) && t.nets.has(D_A));
    assert_decreases(&rows, "correction", "cycle+reg");
    assert_decreases(&rows, "cycle_b", "cycle+reg");
}

#[test]
fn asymmetric_cycle_has_only_the_target_cycle() {
    // The preset's U-Net, without dropout: its cycle loss is noisier from
    // image to image than the ResNet's, so the trend needs 40 steps.
    let (_, rows) = train_with("asymmetric", 40, &["generator.dropout=false"]);
    assert!(term(&rows[0], "cycle_a").is_none());
    assert_decreases(&rows, "cycle_b", "asymmetric");
}

#[test]
fn every_preset_parses() {
    for (mode, _) in medtrans_training::presets() {
        let cfg = medtrans_training::TrainConfig::preset(mode, &[]).unwrap();
        assert_eq!(cfg.mode, mode);
    }
}

/// A loss term added through the config: the gradient difference loss
/// joins pix2pix's sum as its own column, and a zero weight leaves it out.
#[test]
fn gradient_difference_term_joins_through_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small_config(
        "pix2pix",
        &dir.path().join("run"),
        &["options.gradient_difference.weight=10"],
    );
    let mut t = Trainer::new(cfg).unwrap();
    let rows: Vec<_> = (0..25).map(|_| t.train_step().unwrap()).collect();
    let names: Vec<&str> = rows[0].iter().map(|r| r.0).collect();
    assert_eq!(names, ["lr", "g_adv", "l1", "gdl", "g_total", "d_b"]);
    assert_decreases(&rows, "gdl", "pix2pix + gdl");
    let (_, plain) = train("pix2pix", 1);
    assert!(term(&plain[0], "gdl").is_none());
}
