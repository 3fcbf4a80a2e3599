//! A training config as `medtrans train --config` reads it: TOML text, then
//! every check, with unknown keys answered by the closest known one.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = medtrans_training::TrainConfig::from_toml(text, &[], "fuzz.toml");
    }
});
