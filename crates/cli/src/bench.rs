//! `medtrans bench`: seconds per training step of each mode.
use anyhow::{Context, Result};
use medtrans_training::{TrainConfig, Trainer, PRESETS};
use std::path::PathBuf;
use std::time::Instant;

/// Time training steps of each mode at the presets' full network sizes
/// (ResNet ngf 64 with 9 blocks, PatchGAN ndf 64, R), on slices of the
/// shipped demo data prepared at --size px. Prints a markdown table.
///
/// Example:
///   medtrans bench --size 128 --steps 5
///   medtrans bench --mode reggan --mode pix2pix --device wgpu
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Slice side in px.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Timed steps per mode (after one untimed warm-up step).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Modes to time (repeatable; default: every preset).
    #[arg(long)]
    mode: Vec<String>,
    /// Config overrides applied to every mode, e.g. --set train.batch_size=4.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Demo data folder (default: data/demo of this checkout).
    #[arg(long)]
    data: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let data = match args.data {
        Some(d) => d,
        None => crate::demo::find_demo_data()
            .context("the demo data (data/demo) was not found; pass --data DIR")?,
    };
    let modes: Vec<String> = if args.mode.is_empty() {
        PRESETS.iter().map(|p| p.0.to_string()).collect()
    } else {
        args.mode.clone()
    };
    let scratch = std::env::temp_dir().join(format!("medtrans-bench-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(scratch.clone());
    let spec = crate::demo::demo_spec(&data, &scratch.join("data"), args.size);
    medtrans_datasets::prepare(&spec, &mut |_, _, _| {})?;
    say!("| mode | networks | s/step | steps/s |\n|---|---|---|---|");
    for mode in &modes {
        let mut set = vec![
            format!("data.path={:?}", spec.out.display().to_string()),
            format!("out={:?}", scratch.join(mode).display().to_string()),
            format!("train.device={:?}", args.device),
        ];
        set.extend(args.set.iter().cloned());
        let cfg = TrainConfig::preset(mode, &set)?;
        let mut t = Trainer::new(cfg)?;
        t.train_step()?;
        let start = Instant::now();
        for _ in 0..args.steps {
            t.train_step()?;
        }
        let s = start.elapsed().as_secs_f64() / args.steps.max(1) as f64;
        let nets: Vec<&str> = [
            Some("G"),
            t.nets.f.as_ref().map(|_| "F"),
            t.nets.d_b.as_ref().map(|_| "D_B"),
            t.nets.d_a.as_ref().map(|_| "D_A"),
            t.nets.r.as_ref().map(|_| "R"),
        ]
        .into_iter()
        .flatten()
        .collect();
        say!("| {mode} | {} | {s:.3} | {:.2} |", nets.join(" "), 1.0 / s);
    }
    Ok(())
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
