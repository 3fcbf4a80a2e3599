//! `medtrans bench`: seconds per training step of each mode.
use anyhow::{Context, Result};
use medtrans_datasets::SliceDataset;
use medtrans_io::Slice;
use medtrans_training::{
    device_from_name, generate, gpu_build, host_reads, LaunchCount, Launches, TrainConfig, Trainer,
    PRESETS,
};
use medtrans_transforms::percentile;
use std::path::PathBuf;
use std::time::Instant;

/// Time training steps of each mode at the presets' full network sizes
/// (ResNet ngf 64 with 9 blocks, PatchGAN ndf 64, R), on slices of the
/// shipped demo data prepared at --size px. Prints a markdown table, or
/// with --json one line per mode (median step time, peak memory) for
/// bench/run.py, which sets medtrans beside PyTorch.
///
/// With --inference it times G alone instead: slices per second through
/// the first mode's generator, --batch slices at a time.
///
/// Example:
///   medtrans bench --size 128 --steps 5
///   medtrans bench --mode reggan --set generator.ngf=16 --set generator.n_blocks=4
///   medtrans bench --inference --size 256 --slices 32 --batch 8
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Slice side in px.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Timed steps per mode.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Untimed steps before the timed ones. On a GPU the first steps compile
    /// and autotune kernels; their time is reported apart as first_step_s.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Modes to time (repeatable; default: every preset).
    #[arg(long)]
    mode: Vec<String>,
    /// Config overrides applied to every mode, e.g. --set train.batch_size=4.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Device: cpu, or gpu / gpu:N in a build with `--features gpu`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Demo data folder (default: data/demo of this checkout).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Time inference (G's forward pass) instead of training steps.
    #[arg(long)]
    inference: bool,
    /// Slices translated when timing inference.
    #[arg(long, default_value_t = 32)]
    slices: usize,
    /// Slices per forward pass when timing inference.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// On a GPU, also list the N kernels launched most per step (or per
    /// inference batch). Kernel launches per step are counted either way.
    #[arg(long, value_name = "N", default_value_t = 0)]
    kernels: usize,
    /// Also time each phase of the timed steps (data, each step's forward,
    /// backward and optimisers) and print where a step's time goes. On the
    /// CPU ops run when called, so the phases add up to the step.
    #[arg(long)]
    phases: bool,
}

pub fn run(args: Args) -> Result<()> {
    let data = match &args.data {
        Some(d) => d.clone(),
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
    let config = |mode: &str| -> Result<TrainConfig> {
        let mut set = vec![
            format!("data.path={:?}", spec.out.display().to_string()),
            format!("out={:?}", scratch.join(mode).display().to_string()),
            format!("train.device={:?}", args.device),
        ];
        set.extend(args.set.iter().cloned());
        TrainConfig::preset(mode, &set)
    };
    if args.inference {
        return inference(&args, config(&modes[0])?, &spec.out);
    }
    if !args.json {
        say!("| mode | networks | s/step (median) | steps/s | first step (s) | host reads/step | kernel launches/step |\n|---|---|---|---|---|---|---|");
    }
    for mode in &modes {
        let cfg = config(mode)?;
        let (ngf, blocks) = (cfg.generator.ngf, cfg.generator.n_blocks);
        let mut t = Trainer::new(cfg)?;
        let start = Instant::now();
        t.train_step()?;
        let first_step = start.elapsed().as_secs_f64();
        for _ in 1..args.warmup {
            t.train_step()?;
        }
        // As `train` runs: each step is submitted before the previous
        // step's losses are read, so a step's time includes the device's.
        if args.phases {
            t.phases = Some(Default::default());
        }
        let reads_before = host_reads();
        let counting = LaunchCount::start();
        let mut times = Vec::with_capacity(args.steps);
        let mut pending = None;
        for _ in 0..args.steps.max(1) {
            let start = Instant::now();
            if let Some(p) = pending.replace(t.submit_step()?) {
                p.read()?;
            }
            times.push(start.elapsed().as_secs_f64());
        }
        let start = Instant::now();
        if let Some(p) = pending {
            p.read()?;
        }
        *times.last_mut().expect("at least one step") += start.elapsed().as_secs_f64();
        let reads_per_step = (host_reads() - reads_before) as f64 / times.len() as f64;
        let launches = counting.map(|c| per(c.finish(), times.len()));
        // The 50th percentile: one home for order statistics.
        let f32_times: Vec<f32> = times.iter().map(|&t| t as f32).collect();
        let s = percentile(&f32_times, &[50.0]).map_or(f64::NAN, |p| p[0]);
        // Each network with its parameter count, in millions.
        let nets: Vec<String> = t
            .nets
            .num_params()
            .into_iter()
            .map(|(n, p)| format!("{n} ({:.2}M)", p as f64 / 1e6))
            .collect();
        if args.json {
            say!(
                "{}",
                serde_json::json!({
                    "framework": "medtrans", "mode": mode, "size": args.size,
                    "ngf": ngf, "blocks": blocks, "networks": nets, "s_per_step": s, "times": times,
                    "first_step_s": first_step, "host_reads_per_step": reads_per_step,
                    "launches_per_step": launches.as_ref().map(|l| l.total),
                    "top_kernels": launches.as_ref().map(|l| top(l, args.kernels.max(10))),
                    "device": args.device, "build": gpu_build(), "peak_rss_mb": peak_rss_mb(),
                    "phases_s_per_step": t.phases.as_ref().map(phase_json),
                })
            );
        } else {
            say!(
                "| {mode} | {} | {s:.3} | {:.2} | {first_step:.2} | {reads_per_step:.1} | {} |",
                nets.join(" "),
                1.0 / s,
                launches
                    .as_ref()
                    .map_or("-".into(), |l| l.total.to_string())
            );
            if let Some(l) = &launches {
                print_kernels(mode, l, args.kernels);
            }
            if let Some(p) = &t.phases {
                print_phases(mode, p);
            }
        }
    }
    Ok(())
}

/// Slices per second through G, `--batch` at a time, after one warm-up
/// batch.
fn inference(args: &Args, cfg: TrainConfig, dataset: &std::path::Path) -> Result<()> {
    let device = device_from_name(&args.device)?;
    let g = cfg.generator.init(args.size, &device);
    let train = SliceDataset::open(dataset, "train")?;
    let xs: Vec<&Slice> = (0..args.slices.max(1))
        .map(|i| &train.a[i % train.len()])
        .collect();
    generate(&g, &xs[..args.batch.min(xs.len())], args.batch, &device)?;
    let reads_before = host_reads();
    let counting = LaunchCount::start();
    let start = Instant::now();
    generate(&g, &xs, args.batch, &device)?;
    let s = start.elapsed().as_secs_f64();
    let rate = xs.len() as f64 / s;
    let batches = xs.len().div_ceil(args.batch.max(1));
    let launches = counting.map(|c| per(c.finish(), batches));
    let reads_per_batch = (host_reads() - reads_before) as f64 / batches as f64;
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "framework": "medtrans", "size": args.size, "ngf": cfg.generator.ngf,
                "blocks": cfg.generator.n_blocks, "batch": args.batch,
                "slices_per_s": rate, "seconds": s, "device": args.device, "build": gpu_build(),
                "host_reads_per_batch": reads_per_batch,
                "launches_per_batch": launches.as_ref().map(|l| l.total),
                "top_kernels": launches.as_ref().map(|l| top(l, args.kernels.max(10))),
                "peak_rss_mb": peak_rss_mb(),
            })
        );
    } else {
        say!(
            "G at {0}x{0}, batch {1}: {rate:.2} slices/s ({2} slices in {s:.2} s)",
            args.size,
            args.batch,
            xs.len()
        );
        if let Some(l) = &launches {
            say!("kernel launches per batch: {}", l.total);
            print_kernels("inference", l, args.kernels);
        }
    }
    Ok(())
}

/// Launch counts over `n` steps (or batches) as counts per step, rounded.
fn per(l: Launches, n: usize) -> Launches {
    let n = n.max(1);
    let by_kernel = l
        .by_kernel
        .into_iter()
        .map(|(k, c)| (k, (c + n / 2) / n))
        .collect();
    Launches {
        total: (l.total + n / 2) / n,
        by_kernel,
    }
}

/// The `n` kernels launched most, for JSON.
fn top(l: &Launches, n: usize) -> serde_json::Value {
    l.by_kernel
        .iter()
        .take(n)
        .map(|(k, c)| serde_json::json!([k, c]))
        .collect()
}

/// The `n` kernels launched most per step, as an indented list under the
/// table row.
fn print_kernels(what: &str, l: &Launches, n: usize) {
    if n == 0 {
        return;
    }
    say!("\n{what}: the {n} kernels launched most per step");
    for (k, c) in l.by_kernel.iter().take(n) {
        say!("  {c:>6}  {k}");
    }
    say!("");
}

/// Peak resident memory of this process (Linux; 0 where unknown).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Seconds per step of each phase, by name.
fn phase_json(p: &medtrans_training::PhaseTimes) -> serde_json::Value {
    let n = p.steps.max(1) as f64;
    medtrans_training::PhaseTimes::NAMES
        .iter()
        .zip(p.seconds)
        .map(|(name, s)| (name.to_string(), serde_json::json!(s / n)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Where a mode's step time went, phase by phase.
fn print_phases(mode: &str, p: &medtrans_training::PhaseTimes) {
    let n = p.steps.max(1) as f64;
    let total: f64 = p.seconds.iter().sum::<f64>() / n;
    say!("\n{mode}: where a step's {:.1} ms go ({} steps)\n\n| phase | ms/step | share |\n|---|---|---|", total * 1e3, p.steps);
    for (name, s) in medtrans_training::PhaseTimes::NAMES.iter().zip(p.seconds) {
        say!(
            "| {name} | {:.1} | {:.0} % |",
            s / n * 1e3,
            100.0 * s / n / total.max(1e-12)
        );
    }
    say!();
}
