#![allow(dead_code)]
//! The readers take paths, as medtrans uses them: each input is written to
//! a file (in /dev/shm where there is one) under a name with the right
//! extension, then read.
use std::path::PathBuf;

pub fn scratch(ext: &str) -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("medtrans-fuzz-{}.{ext}", std::process::id()))
}

/// Read `data` as a volume from a file with extension `ext`: any result
/// but a panic, a hang or a runaway allocation is fine.
pub fn read_as(data: &[u8], ext: &str) {
    let p = scratch(ext);
    std::fs::write(&p, data).unwrap();
    let _ = medtrans_io::read_volume(&p, &Default::default());
}
