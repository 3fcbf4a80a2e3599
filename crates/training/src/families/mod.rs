//! The translator families beyond CycleGAN's (`family::CYCLEGAN`), one
//! file each: networks, terms, translation, options and presets.
use burn::tensor::{Tensor, TensorData};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub mod munit;
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
