//! A dataset's manifest.json, as `SliceDataset::open` reads it first.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let p = common::scratch("json");
    std::fs::write(&p, data).unwrap();
    let _ = medtrans_datasets::Manifest::load(&p);
});
