//! Mixed precision (`train.precision`): from the same seed, the first
//! step's losses in bf16 and f16 are those of f32 to the types' precision,
//! training goes on with finite losses, and the weights Adam keeps stay f32.
mod common;
use medtrans_networks::burn::tensor::FloatDType;
use medtrans_networks::{weights_dtype, Generator};
use medtrans_training::nets::G;
use medtrans_training::{LossRow, TrainConfig, Trainer};

/// Trainers draw their initial weights from the device's random stream,
/// which the process shares: tests that compare runs take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn first_steps(mode: &str, precision: &str, steps: usize) -> (Vec<LossRow>, Trainer) {
    steps_with(mode, &[&format!("train.precision={precision:?}")], steps)
}

fn steps_with(mode: &str, set: &[&str], steps: usize) -> (Vec<LossRow>, Trainer) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::small_config(mode, &dir.path().join("run"), set);
    let mut t = Trainer::new(cfg).unwrap();
    let rows = (0..steps).map(|_| t.train_step().unwrap()).collect();
    (rows, t)
}

#[test]
fn half_precision_steps_follow_f32() {
    let _turn = turn();
    for mode in ["pix2pix", "reggan", "cycle+reg", "asymmetric"] {
        let (want, _) = first_steps(mode, "f32", 1);
        for (precision, tol) in [("bf16", 0.05), ("f16", 0.01)] {
            let (rows, t) = first_steps(mode, precision, 4);
            // Step 1: the passes alone. (After an update the runs part:
            // Adam's first steps move every weight by about lr, whatever
            // the size of its gradient, so rounding that flips a tiny
            // gradient's sign moves that weight the other way.)
            for &(name, v) in &want[0] {
                let got = common::term(&rows[0], name).unwrap();
                // Relative, with a floor for terms near zero.
                let err = (got - v).abs() / v.abs().max(0.01);
                assert!(
                    err < tol,
                    "{mode} {precision}: step 1 {name} = {got}, f32 {v}"
                );
            }
            for (i, row) in rows.iter().enumerate() {
                assert!(
                    row.iter().all(|r| r.1.is_finite()),
                    "{mode} {precision} step {}: {row:?}",
                    i + 1
                );
            }
            let g = t.nets.get::<Generator>(G).unwrap();
            assert_eq!(weights_dtype(g), FloatDType::F32, "{mode} {precision}");
        }
    }
}

/// The loss scale is undone before Adam: scaling by a power of two is
/// exact, so a scaled run repeats the unscaled one. (Adam alone would
/// hide a missing unscale; its weight decay, made large here, does not.)
#[test]
fn the_loss_scale_is_undone_before_adam() {
    let _turn = turn();
    let set = ["optim.weight_decay=0.5"];
    let (want, _) = steps_with("reggan", &set, 3);
    let (got, _) = steps_with("reggan", &[set[0], "train.loss_scale=64"], 3);
    for (w, g) in want.iter().zip(&got) {
        for (&(name, v), &(_, u)) in w.iter().zip(g) {
            // Without the unscale a loss moves by 4e-3 here.
            assert!(
                (u - v).abs() <= 1e-6 * v.abs().max(1.0),
                "{name}: {u} vs {v}"
            );
        }
    }
}

/// Training in half precision learns as f32 does: pix2pix's L1 over steps
/// 21-30 is within 10 % of f32's, and well below its first steps'.
#[test]
fn half_precision_learns_like_f32() {
    let _turn = turn();
    let mean_l1 = |rows: &[LossRow]| {
        rows.iter()
            .map(|r| common::term(r, "l1").unwrap())
            .sum::<f64>()
            / rows.len() as f64
    };
    let (f32_rows, _) = first_steps("pix2pix", "f32", 30);
    let want = mean_l1(&f32_rows[20..]);
    for precision in ["bf16", "f16"] {
        let (rows, _) = first_steps("pix2pix", precision, 30);
        let (start, end) = (mean_l1(&rows[..5]), mean_l1(&rows[20..]));
        eprintln!("{precision}: L1 {start:.3} -> {end:.3} (f32 {want:.3})");
        assert!(
            (end - want).abs() < 0.1 * want,
            "{precision}: {end} vs f32 {want}"
        );
        assert!(end < 0.8 * start, "{precision}: {start} -> {end}");
    }
}

#[test]
fn precision_settings_are_checked() {
    for (set, want) in [
        ("train.loss_scale=-1", "train.loss_scale"),
        ("train.loss_scale=0", "train.loss_scale"),
        ("train.precision=\"f8\"", "f8"),
    ] {
        let err = TrainConfig::preset("reggan", &[set.to_string()]).unwrap_err();
        assert!(format!("{err:#}").contains(want), "{set}: {err:#}");
    }
}
