//! The translator families beyond CycleGAN's (`family::CYCLEGAN`), one
//! file each: networks, terms, translation, options and presets.
pub mod unit;
