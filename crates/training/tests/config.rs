//! Config files: presets, overrides, and errors that name the problem.
use medtrans_training::TrainConfig;

#[test]
fn set_overrides_fields_and_presets_hold_the_paper_weights() {
    let c = TrainConfig::preset(
        "reggan",
        &["train.epochs=3".into(), "data.noise_level=4".into()],
    )
    .unwrap();
    assert_eq!(c.train.epochs, 3);
    assert_eq!(c.data.noise_level, 4);
    assert_eq!(
        (c.loss.adversarial, c.loss.correction, c.loss.smoothness),
        (1.0, 20.0, 10.0)
    );
    assert!(c.uses_registration() && !c.uses_cycle());
    let p = TrainConfig::preset("pix2pix", &[]).unwrap();
    assert_eq!(p.loss.l1, 100.0);
    assert!(p.discriminator.conditional);
    let cy = TrainConfig::preset("cycle", &[]).unwrap();
    assert_eq!((cy.loss.cycle, cy.train.pool_size), (10.0, 50));
    // Strings may be given bare.
    let u = TrainConfig::preset("cycle", &["data.pairing=unpaired".into()]).unwrap();
    assert_eq!(u.data.pairing, medtrans_datasets::Pairing::Unpaired);
}

#[test]
fn unknown_keys_are_errors_that_name_them() {
    let err = TrainConfig::preset("reggan", &["train.epoch=3".into()]).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("epoch"), "{msg}");
    assert!(msg.contains("unknown field"), "{msg}");
    let err = TrainConfig::from_toml("[loss]\ncorection = 20.0\n", &[], "my.toml").unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("my.toml") && msg.contains("corection"),
        "{msg}"
    );
    let err = TrainConfig::preset("regan", &[]).unwrap_err().to_string();
    assert!(err.contains("regan") && err.contains("reggan"), "{err}");
    let err = TrainConfig::preset("reggan", &["loss.l1=-1".into()]).unwrap_err();
    assert!(format!("{err:#}").contains("loss.l1"), "{err:#}");
    let err = TrainConfig::preset("reggan", &["noequals".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("key=value"), "{err}");
}

#[test]
fn an_unknown_key_suggests_the_closest_known_one() {
    let msg = |set: &str| {
        format!(
            "{:#}",
            TrainConfig::preset("reggan", &[set.into()]).unwrap_err()
        )
    };
    let m = msg("train.epoch=3");
    assert!(m.contains("did you mean `epochs`?"), "{m}");
    let m = msg("optim.lrr=1e-3");
    assert!(m.contains("did you mean `lr`?"), "{m}");
    let m = msg("optm.lr=1e-3");
    assert!(m.contains("did you mean `optim`?"), "{m}");
    let m = msg("loss.corection=20");
    assert!(m.contains("did you mean `correction`?"), "{m}");
    // Nothing close: no guess.
    let m = msg("train.zzzzzzzz=1");
    assert!(
        m.contains("unknown field") && !m.contains("did you mean"),
        "{m}"
    );
}

#[test]
fn the_effective_config_round_trips() {
    let c = TrainConfig::preset("cycle+reg", &["train.seed=9".into()]).unwrap();
    let back = TrainConfig::from_toml(&c.to_toml(), &[], "saved").unwrap();
    assert_eq!(c, back);
}

#[test]
fn learning_rate_decays_linearly_over_the_last_epochs() {
    let c = TrainConfig::preset(
        "reggan",
        &["train.epochs=10".into(), "optim.decay_epochs=4".into()],
    )
    .unwrap();
    let f: Vec<f64> = (0..10).map(|e| c.lr_factor(e)).collect();
    assert_eq!(&f[..6], &[1.0; 6]);
    assert!(
        (f[6] - 0.8).abs() < 1e-12 && (f[9] - 0.2).abs() < 1e-12,
        "{f:?}"
    );
}

/// A config cannot say one method and train another: a file whose `mode`
/// names a preset switches on that preset's terms, and `--set mode=` cannot
/// relabel a preset.
#[test]
fn the_mode_name_and_the_terms_cannot_disagree() {
    let dir = tempfile::tempdir().unwrap();
    let reggan = medtrans_training::PRESETS
        .iter()
        .find(|p| p.0 == "reggan")
        .unwrap()
        .1;
    // The preset's own file, reweighted: still RegGAN.
    let same = dir.path().join("same.toml");
    std::fs::write(&same, format!("{reggan}\n")).unwrap();
    TrainConfig::load(&same, &["loss.smoothness=5".into()]).unwrap();
    // A cycle term switched on under the name "reggan": refused, naming it.
    let err = TrainConfig::load(&same, &["loss.cycle=10".into()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("names the \"reggan\" preset") && err.contains("cycle_a"),
        "{err}"
    );
    // Under a name of its own, the same terms are fine.
    let own = TrainConfig::load(
        &same,
        &["loss.cycle=10".into(), "mode=\"reggan+cycle\"".into()],
    );
    assert!(own.is_ok(), "{:?}", own.err());
    let err = TrainConfig::preset("reggan", &["mode=\"pix2pix\"".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("contradicts --mode reggan"), "{err}");
    // A family's mode: its own terms count, and so does the family.
    let unit_c = medtrans_training::presets()
        .into_iter()
        .find(|p| p.0 == "unit-c")
        .unwrap()
        .1;
    let file = dir.path().join("unit.toml");
    std::fs::write(&file, format!("{unit_c}\n")).unwrap();
    TrainConfig::load(&file, &["options.unit.kl=0.02".into()]).unwrap();
    let err = TrainConfig::load(&file, &["options.unit.bidirect=false".into()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("names the \"unit-c\" preset") && err.contains("unit_adv_a"),
        "{err}"
    );
    // Another family under the name: refused (here first for the table
    // that family does not read).
    let err = format!(
        "{:#}",
        TrainConfig::load(&file, &["family=\"munit\"".into()]).unwrap_err()
    );
    assert!(
        err.contains("[options.unit]") && err.contains("\"munit\""),
        "{err}"
    );
}

/// The paper's Table 1 misalignment as a range of its own.
#[test]
fn a_misalignment_range_is_a_data_setting() {
    let set = |v: &str| vec![format!("data.misalign={v}")];
    let cfg = TrainConfig::preset(
        "reggan",
        &set("{ rotation_deg = 5.0, translation = 0.05, scale = 0.05 }"),
    )
    .unwrap();
    assert_eq!(
        cfg.data.misalign,
        Some(medtrans_transforms::MisalignRange::TABLE1)
    );
    assert!(cfg.to_toml().contains("misalign"));
    let err = format!(
        "{:#}",
        TrainConfig::preset(
            "reggan",
            &set("{ rotation_deg = 5.0, translation = -0.1, scale = 0.0 }")
        )
        .unwrap_err()
    );
    assert!(err.contains("data.misalign"), "{err}");
    // Without it, the config file does not mention it.
    assert!(!TrainConfig::preset("reggan", &[])
        .unwrap()
        .to_toml()
        .contains("misalign"));
}

/// Method weights that left `[loss]` for their tables are still read from
/// an old config (and an old `--set`), moved; given both ways, refused.
#[test]
fn old_loss_keys_of_a_method_are_read_into_its_table() {
    use medtrans_training::term_options::{GuidedOptions, ShapeOptions};
    let cfg = TrainConfig::preset(
        "cycle",
        &["loss.shape=1.0".into(), "loss.segmentation=0.5".into()],
    )
    .unwrap();
    let shape = ShapeOptions::of(&cfg);
    assert_eq!((shape.weight, shape.segmentation), (1.0, 0.5));
    assert!(cfg.uses_segmentors());
    let guided = TrainConfig::preset("guided", &[]).unwrap();
    assert_eq!(GuidedOptions::of(&guided).guidance, 1e-3);
    let err = TrainConfig::preset(
        "cycle",
        &["loss.shape=1.0".into(), "options.shape.weight=2.0".into()],
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("same setting"), "{err:#}");
}
