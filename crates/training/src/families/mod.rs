//! The translator families beyond CycleGAN's (`family::CYCLEGAN`), one
//! file each: networks, terms, translation, options and presets.
use crate::config::TrainConfig;
use crate::nets::Nets;
use crate::terms::GeneratorStep;
use burn::tensor::{Tensor, TensorData};
use medtrans_networks::{ms_lsgan, MsDiscriminator};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub mod munit;
pub mod nice;
pub mod unit;

/// Unit Gaussian noise shaped like `h`, from `rng` (Box-Muller): UNIT's
/// latent samples, MUNIT's style codes.
pub(crate) fn gaussian(h: &Tensor<4>, rng: &mut ChaCha8Rng) -> Tensor<4> {
    let dims = h.dims();
    let n: usize = dims.iter().product();
    let mut v = Vec::with_capacity(n + 1);
    while v.len() < n {
        let (u1, u2): (f32, f32) = (rng.random::<f32>().max(f32::MIN_POSITIVE), rng.random());
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f32::consts::TAU * u2;
        v.push(r * t.cos());
        v.push(r * t.sin());
    }
    v.truncate(n);
    let t: Tensor<4> = Tensor::from_data(TensorData::new(v, dims), &h.device());
    let dtype: burn::tensor::FloatDType = h.dtype().into();
    t.cast(dtype)
}

/// Sizes of `[options.SECTION]` that must be at least 1, and weights that
/// must be finite and >= 0; the first that is not, named.
pub(crate) fn check_values(
    section: &str,
    sizes: &[(&str, usize)],
    weights: &[(&str, f64)],
) -> Result<(), String> {
    if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
        return Err(format!("options.{section}.{name} must be at least 1"));
    }
    if let Some((name, w)) = weights.iter().find(|(_, w)| !(w.is_finite() && *w >= 0.0)) {
        return Err(format!(
            "options.{section}.{name} must be a finite weight >= 0, not {w}"
        ));
    }
    Ok(())
}

/// A family with its own discriminators and cycle: the shared PatchGAN
/// adversary and F's cycle must be off (`label` names it in the reason).
pub(crate) fn own_adversary_and_cycle(
    c: &TrainConfig,
    label: &str,
    section: &str,
) -> Result<(), String> {
    if c.loss.adversarial > 0.0 {
        return Err(format!("{label} has its own multi-scale discriminators (options.{section}.adversarial); set loss.adversarial = 0"));
    }
    if c.loss.cycle > 0.0 {
        return Err(format!("{label} has no F; its own terms and options.{section}.bidirect make C; set loss.cycle = 0"));
    }
    Ok(())
}

/// One-channel slices, for families whose networks take one channel.
pub(crate) fn one_channel(c: &TrainConfig, label: &str) -> Result<(), String> {
    if (c.generator.in_channels, c.generator.out_channels) != (1, 1) {
        return Err(format!("{label} translates one-channel slices (generator.in_channels and out_channels must be 1)"));
    }
    Ok(())
}

fn ms_discriminator<'n>(nets: &'n Nets, name: &str) -> &'n MsDiscriminator {
    nets.get(name)
        .unwrap_or_else(|| panic!("terms needing {name} run with {name}"))
}

/// A multi-scale discriminator's scores with its weights frozen: G's step
/// needs gradients through D to its input only.
pub(crate) fn frozen_scores(nets: &Nets, name: &str, x: Tensor<4>) -> Vec<Tensor<4>> {
    nets.frozen::<MsDiscriminator>(name).forward(x)
}

/// A multi-scale discriminator's own LSGAN loss: `real` as real, `fake`
/// as fake.
pub(crate) fn ms_d_loss(nets: &Nets, name: &str, real: Tensor<4>, fake: Tensor<4>) -> Tensor<1> {
    let d = ms_discriminator(nets, name);
    ms_lsgan(d.forward(real), true) + ms_lsgan(d.forward(fake), false)
}

/// Two tensors made together once per step, under two memo keys.
pub(crate) fn memo_pair(
    s: &mut GeneratorStep<'_>,
    keys: [&'static str; 2],
    make: impl FnOnce(&mut GeneratorStep<'_>) -> (Tensor<4>, Tensor<4>),
) -> (Tensor<4>, Tensor<4>) {
    let first = s.memo(keys[0], |s| {
        let (first, second) = make(s);
        s.memo(keys[1], |_| second);
        first
    });
    (
        first,
        s.memo(keys[1], |_| unreachable!("made with {}", keys[0])),
    )
}
