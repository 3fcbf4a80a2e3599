//! Reading a training config: the shipped presets, TOML text with
//! `--set key=value` overrides, and a misspelt key's closest name.
use super::TrainConfig;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// The presets shipped in `configs/`, by mode name. Embedded so that the
/// binary works without the checkout.
pub const PRESETS: [(&str, &str); 7] = [
    ("pix2pix", include_str!("../../../../configs/pix2pix.toml")),
    ("cycle", include_str!("../../../../configs/cycle.toml")),
    ("nc", include_str!("../../../../configs/nc.toml")),
    (
        "cycle+reg",
        include_str!("../../../../configs/cycle+reg.toml"),
    ),
    ("reggan", include_str!("../../../../configs/reggan.toml")),
    (
        "asymmetric",
        include_str!("../../../../configs/asymmetric.toml"),
    ),
    ("guided", include_str!("../../../../configs/guided.toml")),
];

/// Every preset: the shipped ones, then each translator family's modes.
pub fn presets() -> Vec<(&'static str, &'static str)> {
    PRESETS
        .into_iter()
        .chain(
            crate::family::all()
                .into_iter()
                .flat_map(|f| f.presets.iter().copied()),
        )
        .collect()
}

impl TrainConfig {
    /// Parse TOML text, apply `key.path=value` overrides, and check it.
    pub fn from_toml(text: &str, overrides: &[String], origin: &str) -> Result<Self> {
        let mut value: toml::Table =
            toml::from_str(text).with_context(|| format!("{origin}: not valid TOML"))?;
        for o in overrides {
            apply_override(&mut value, o)?;
        }
        // Keys that left [loss] for a method's own table.
        let moved = crate::term_options::migrate_toml(&mut value)
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        if !moved.is_empty() {
            tracing::warn!(
                "{origin}: read with keys moved to their method's table ({}); write them there",
                moved.join(", ")
            );
        }
        let cfg: TrainConfig = value.try_into().map_err(|e: toml::de::Error| {
            anyhow::anyhow!("{origin}: {}", with_suggestion(e.message()))
        })?;
        cfg.check()
            .with_context(|| format!("{origin}: invalid config"))?;
        Ok(cfg)
    }

    /// A config file. A file whose `mode` names a shipped preset must switch
    /// on the terms that preset does (its weights may differ): the name
    /// would otherwise say one method and train another.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config {}", path.display()))?;
        let cfg = Self::from_toml(&text, overrides, &path.display().to_string())?;
        if presets().iter().any(|(m, _)| *m == cfg.mode) {
            let preset = Self::preset(&cfg.mode, &[])?;
            if cfg.family != preset.family {
                bail!(
                    "{}: mode = {mode:?} names the {mode:?} preset, whose family is {:?}, but the file sets family = {:?}; give it a mode name of its own",
                    path.display(),
                    preset.family,
                    cfg.family,
                    mode = cfg.mode,
                );
            }
            let (ours, theirs) = (cfg.term_names(), preset.term_names());
            if ours != theirs {
                let only = |a: &[&str], b: &[&str]| -> String {
                    let v: Vec<&str> = a.iter().filter(|t| !b.contains(t)).copied().collect();
                    if v.is_empty() {
                        "none".into()
                    } else {
                        v.join(", ")
                    }
                };
                bail!(
                    "{}: mode = {mode:?} names the {mode:?} preset, but the file switches on other loss terms (here only: {}; the preset only: {}); give it a mode name of its own, or match the preset's terms",
                    path.display(),
                    only(&ours, &theirs),
                    only(&theirs, &ours),
                    mode = cfg.mode,
                );
            }
        }
        Ok(cfg)
    }

    /// A shipped preset by mode name (`reggan`, `pix2pix`, ...). Its `mode`
    /// is the preset's: `--set mode=...` cannot relabel it.
    pub fn preset(mode: &str, overrides: &[String]) -> Result<Self> {
        let all = presets();
        let Some((_, text)) = all.iter().find(|(m, _)| *m == mode) else {
            bail!(
                "unknown mode {mode:?}; the presets are {}",
                all.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
            );
        };
        let cfg = Self::from_toml(text, overrides, &format!("preset {mode}"))?;
        if cfg.mode != mode {
            bail!(
                "--set mode={:?} contradicts --mode {mode}: a preset's mode is its name; to train other terms under another name, write a config file",
                cfg.mode
            );
        }
        Ok(cfg)
    }
}

/// `a.b.c=value`: value as TOML (number, bool, string, array) or, failing
/// that, as a bare string. Keys are checked when the table is read back.
fn apply_override(table: &mut toml::Table, o: &str) -> Result<()> {
    let Some((key, raw)) = o.split_once('=') else {
        bail!("--set {o:?}: expected key=value, e.g. --set train.epochs=5");
    };
    let key = key.trim();
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    let mut t = table;
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() {
            bail!("--set {o:?}: empty key part");
        }
        if i == parts.len() - 1 {
            t.insert(p.to_string(), value);
            return Ok(());
        }
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        t = entry
            .as_table_mut()
            .with_context(|| format!("--set {o:?}: {p} is a value, not a section"))?;
    }
    Ok(())
}

/// Serde's "unknown field `lrr`, expected one of `lr`, ..." with the
/// closest known name added, so that a typo's fix is one glance away.
pub fn with_suggestion(message: &str) -> String {
    if !message.starts_with("unknown field") && !message.starts_with("unknown variant") {
        return message.to_string();
    }
    let names: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let Some((wrong, known)) = names.split_first() else {
        return message.to_string();
    };
    let best = known
        .iter()
        .map(|k| (edit_distance(wrong, k), *k))
        .min()
        .filter(|(d, k)| *d <= 2.max(k.len() / 3));
    match best {
        Some((_, k)) => format!("{message} (did you mean `{k}`?)"),
        None => message.to_string(),
    }
}

/// Levenshtein distance (insertions, deletions, substitutions).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
