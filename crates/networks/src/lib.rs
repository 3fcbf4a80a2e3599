//! The networks of medtrans, in Burn: translators (ResNet and U-Net
//! generators), the PatchGAN discriminator, RegGAN's registration network
//! and the spatial transformer that warps with its field.
//!
//! Architectures follow the reference implementations (CycleGAN/pix2pix and
//! RegGAN) so that weights trained there load here; see
//! [`ResnetGenerator::load_pytorch`].
pub use burn;

mod blocks;
mod constants;
mod discriminator;
mod generator;
mod ids;
mod munit;
mod nice;
mod precision;
mod predictor;
mod registration;
mod resize;
mod resnet;
mod segmentor;
mod unet;
mod unit;
mod warp;

pub use blocks::{instance_norm_2d, ResidualBlock};
pub use discriminator::{Discriminator, DiscriminatorConfig};
pub use generator::{Generator, GeneratorConfig, GeneratorKind};
pub(crate) use ids::zero_biases;
pub use ids::{materialize, stable_param_ids};
pub use munit::{MunitConfig, MunitGenerator};
pub use nice::{
    iln_mix, pixel_shuffle2, power_iteration, spectral_sigma, Iln, NiceDiscriminator,
    NiceDiscriminatorConfig, NiceEncoder, NiceGenerator, NiceGeneratorConfig,
};
pub use precision::{cast_weights, weights_dtype};
pub use predictor::{BasicBlock, Predictor, PredictorConfig, PredictorTask};
pub use registration::{RegistrationConfig, RegistrationNet};
pub use resize::resize_bilinear;
pub use resnet::{check_pickle, ResnetGenerator, ResnetGeneratorConfig};
pub use segmentor::{Segmentor, SegmentorConfig};
pub use unet::{UnetGenerator, UnetGeneratorConfig};
pub use unit::{
    ms_lsgan, unit_kl, MsDiscriminator, MsDiscriminatorConfig, UnitAutoencoder, UnitConfig,
};
pub use warp::{identity_grid, warp};

/// The CycleGAN/pix2pix initialisation: conv weights from N(0, 0.02).
pub(crate) fn gan_init() -> burn::nn::Initializer {
    burn::nn::Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}
