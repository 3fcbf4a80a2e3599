//! The volume reader on arbitrary .nii.gz files.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::read_as(data, "nii.gz");
});
