//! The settings of the shared terms that belong to one method, each in its
//! own table (`[options.NAME]`, owned through `terms::TERM_OPTIONS`), so
//! that `[loss]` holds the core terms every CycleGAN-family mode shares
//! (adversarial, L1, cycle, identity, R's correction and smoothness) and a
//! new method adds a table, not fields:
//! - `[options.shape]`: shape consistency (`weight`) and the segmentors' own
//!   loss (`segmentation`);
//! - `[options.guided]`: the predictor's own loss (`prediction`) and its
//!   guidance of G (`guidance`, the paper's lambda);
//! - `[options.gradient_difference]`: the gradient difference loss
//!   (`weight`).
//!
//! Configs and checkpoints written before these moved (`loss.shape = 1`)
//! are read with the keys moved ([`migrate_toml`], [`migrate_json`]).
use crate::config::TrainConfig;
use crate::family::{pin_as, Options};
use serde::{Deserialize, Serialize};

pub const SHAPE: &str = "shape";
pub const GUIDED: &str = "guided";
pub const GRADIENT_DIFFERENCE: &str = "gradient_difference";

/// `[options.shape]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShapeOptions {
    /// Shape consistency: CE(S_B(G(x)), labels of x) + CE(S_A(F(y)),
    /// labels of y), so translation keeps anatomy (needs the cycle and
    /// label maps in the dataset).
    pub weight: f64,
    /// The segmentors' own loss on real labelled images: CE(S_A(x), labels
    /// of x) + CE(S_B(y), labels of y).
    pub segmentation: f64,
}

/// `[options.guided]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuidedOptions {
    /// The predictor's own loss L_pred on labelled slices: translated
    /// sources P(G(x)) (G's output detached) and real targets P(y). Any
    /// weight > 0 gives the run a predictor P; it needs per-slice labels
    /// (`medtrans prepare --slice-labels`).
    pub prediction: f64,
    /// Predictor guidance (the paper's lambda, 1e-3): L_pred on P(G(x))
    /// joins G's loss, so translations must also help P. 0 trains the
    /// plain translator, P beside it.
    pub guidance: f64,
}

/// `[options.gradient_difference]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GradientDifferenceOptions {
    /// Gradient difference between G(x) and y (paired modes): sharper
    /// edges than L1 alone.
    pub weight: f64,
}

impl ShapeOptions {
    pub fn of(c: &TrainConfig) -> Self {
        c.options_of(SHAPE).expect("checked at config time")
    }
}

impl GuidedOptions {
    pub fn of(c: &TrainConfig) -> Self {
        c.options_of(GUIDED).expect("checked at config time")
    }
}

impl GradientDifferenceOptions {
    pub fn of(c: &TrainConfig) -> Self {
        c.options_of(GRADIENT_DIFFERENCE)
            .expect("checked at config time")
    }
}

fn weights(section: &str, w: &[(&str, f64)]) -> Result<(), String> {
    crate::families::check_values(section, &[], w)
}

/// The tables the shared terms own.
pub const OPTIONS: &[Options] = &[
    Options {
        section: SHAPE,
        check: |c| {
            let o: ShapeOptions = c.options_of(SHAPE)?;
            weights(
                SHAPE,
                &[("weight", o.weight), ("segmentation", o.segmentation)],
            )
        },
        pin: |c| pin_as::<ShapeOptions>(c, SHAPE),
    },
    Options {
        section: GUIDED,
        check: |c| {
            let o: GuidedOptions = c.options_of(GUIDED)?;
            weights(
                GUIDED,
                &[("prediction", o.prediction), ("guidance", o.guidance)],
            )
        },
        pin: |c| pin_as::<GuidedOptions>(c, GUIDED),
    },
    Options {
        section: GRADIENT_DIFFERENCE,
        check: |c| {
            let o: GradientDifferenceOptions = c.options_of(GRADIENT_DIFFERENCE)?;
            weights(GRADIENT_DIFFERENCE, &[("weight", o.weight)])
        },
        pin: |c| pin_as::<GradientDifferenceOptions>(c, GRADIENT_DIFFERENCE),
    },
];

/// Keys that left `[loss]`: (old key, new table, new key).
pub const MOVED: &[(&str, &str, &str)] = &[
    ("shape", SHAPE, "weight"),
    ("segmentation", SHAPE, "segmentation"),
    ("prediction", GUIDED, "prediction"),
    ("guidance", GUIDED, "guidance"),
    ("gradient_difference", GRADIENT_DIFFERENCE, "weight"),
];

/// Move the old `[loss]` keys of a config table to their `[options]`
/// tables; what moved, as `loss.shape -> options.shape.weight` lines. A key
/// given both ways is an error naming both.
pub fn migrate_toml(config: &mut toml::Table) -> Result<Vec<String>, String> {
    let mut moved = Vec::new();
    for &(old, section, key) in MOVED {
        let Some(v) = config
            .get_mut("loss")
            .and_then(|l| l.as_table_mut())
            .and_then(|l| l.remove(old))
        else {
            continue;
        };
        let options = config
            .entry("options")
            .or_insert_with(|| toml::Value::Table(Default::default()));
        let table = options
            .as_table_mut()
            .ok_or("options is not a table")?
            .entry(section)
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
            .ok_or_else(|| format!("options.{section} is not a table"))?;
        if table.contains_key(key) {
            return Err(format!(
                "loss.{old} and options.{section}.{key} are the same setting; give it once, as options.{section}.{key}"
            ));
        }
        table.insert(key.to_string(), v);
        moved.push(format!("loss.{old} -> options.{section}.{key}"));
    }
    Ok(moved)
}

/// [`migrate_toml`] for a config inside a checkpoint's JSON state.
pub fn migrate_json(config: &mut serde_json::Value) {
    for &(old, section, key) in MOVED {
        let Some(v) = config
            .get_mut("loss")
            .and_then(|l| l.as_object_mut())
            .and_then(|l| l.remove(old))
        else {
            continue;
        };
        let Some(root) = config.as_object_mut() else {
            return;
        };
        let options = root
            .entry("options")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(o) = options.as_object_mut() {
            let table = o.entry(section).or_insert_with(|| serde_json::json!({}));
            if let Some(t) = table.as_object_mut() {
                t.entry(key).or_insert(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_loss_keys_move_to_their_tables_once() {
        let mut t: toml::Table = toml::from_str(
            "[loss]\nshape = 1.0\nsegmentation = 0.5\ncycle = 10.0\nguidance = 0.001\n",
        )
        .unwrap();
        let moved = migrate_toml(&mut t).unwrap();
        assert_eq!(moved.len(), 3, "{moved:?}");
        let back = toml::to_string(&t).unwrap();
        let t: toml::Table = toml::from_str(&back).unwrap();
        assert_eq!(t["loss"]["cycle"].as_float(), Some(10.0));
        assert!(t["loss"].get("shape").is_none());
        assert_eq!(t["options"]["shape"]["weight"].as_float(), Some(1.0));
        assert_eq!(t["options"]["shape"]["segmentation"].as_float(), Some(0.5));
        assert_eq!(t["options"]["guided"]["guidance"].as_float(), Some(0.001));
        let mut both: toml::Table =
            toml::from_str("[loss]\nshape = 1.0\n[options.shape]\nweight = 2.0\n").unwrap();
        let err = migrate_toml(&mut both).unwrap_err();
        assert!(
            err.contains("loss.shape") && err.contains("options.shape.weight"),
            "{err}"
        );

        let mut j = serde_json::json!({"loss": {"prediction": 1.0, "l1": 100.0}});
        migrate_json(&mut j);
        assert_eq!(j["options"]["guided"]["prediction"], 1.0);
        assert_eq!(j["loss"]["l1"], 100.0);
        assert!(j["loss"].get("prediction").is_none());
    }
}
