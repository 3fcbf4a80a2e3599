//! A training step reads the device once (its losses), whatever the mode:
//! on a GPU each read-back stalls the pipeline. The image pools of the cycle
//! modes stay on the device. (Its own test binary: the read counter is
//! per process.)
mod common;
use medtrans_training::{host_reads, Trainer};

#[test]
fn a_step_reads_the_device_once() {
    for mode in ["cycle", "reggan", "pix2pix"] {
        let dir = tempfile::tempdir().unwrap();
        // A pool of 2 fills at the first steps, then swaps images (pix2pix's
        // conditional D takes no pool).
        let extra: &[&str] = if mode == "pix2pix" {
            &[]
        } else {
            &["train.pool_size=2"]
        };
        let cfg = common::small_config(mode, &dir.path().join("run"), extra);
        let mut t = Trainer::new(cfg).unwrap();
        for step in 0..4 {
            let before = host_reads();
            let pending = t.submit_step().unwrap();
            assert_eq!(
                host_reads(),
                before,
                "{mode} step {step}: read before its losses"
            );
            pending.read().unwrap();
            assert_eq!(host_reads(), before + 1, "{mode} step {step}");
        }
    }
}
