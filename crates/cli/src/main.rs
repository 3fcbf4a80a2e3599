//! `medtrans`: a thin command line over the medtrans library crates.

/// Print a line to stdout, ignoring a closed pipe (`medtrans info x | head`).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

mod allocator;
mod bench;
mod demo;
mod demo_data;
mod evaluate;
mod experiment;
mod info;
mod predict;
mod prepare;
mod preview;
mod progress;
mod register;
mod report;
mod train;
mod translate;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "medtrans",
    version,
    about = "Medical image-to-image translation (T1 -> T2, MR -> synthetic CT, ...)",
    long_about = "Medical image-to-image translation: Pix2Pix, CycleGAN and RegGAN on your own NIfTI and DICOM volumes.\n\nA typical session:\n  medtrans info t1.nii.gz                      # check what the reader sees\n  medtrans prepare --a t1.nii.gz --b t2.nii.gz --mask brain.nii.gz --out data/t1t2\n  medtrans preview data/t1t2 --noise-level 5 --out pairs.png\n  medtrans train --mode reggan --set data.path=data/t1t2 --set out=runs/reggan\n  medtrans evaluate --model runs/reggan --data data/t1t2\n  medtrans translate --model runs/reggan --input t1.nii.gz --output synth_t2.nii.gz\n\nRun `medtrans demo` for the whole pipeline on the shipped demo data."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Info(info::Args),
    Register(register::Args),
    Prepare(prepare::Args),
    Preview(preview::Args),
    Train(train::Args),
    Translate(translate::Args),
    Predict(predict::Args),
    Evaluate(evaluate::Args),
    Report(report::Args),
    Demo(demo::Args),
    Bench(bench::Args),
    Experiment(experiment::Args),
    DemoData(demo_data::Args),
}

fn main() -> std::process::ExitCode {
    allocator::keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MEDTRANS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let cli = Cli::parse();
    let result = on_a_worker(move || match cli.command {
        Command::Info(a) => info::run(a),
        Command::Register(a) => register::run(a),
        Command::Prepare(a) => prepare::run(a),
        Command::Preview(a) => preview::run(a),
        Command::Train(a) => train::run(a),
        Command::Translate(a) => translate::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Report(a) => report::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Experiment(a) => experiment::run(a),
        Command::DemoData(a) => demo_data::run(a),
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line for the person at the terminal: the error and its causes.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs `f` on a thread of rayon's pool rather than on the main thread.
/// The CPU kernels split their loops with rayon; called from outside the
/// pool, each split hands the work to a pool thread and puts the caller to
/// sleep until it is done, a context switch each way. A 64 px training step
/// has hundreds of such loops, each only microseconds long. Called from a
/// pool thread, a split starts on that thread and the other threads steal
/// from it. The pool's threads get the main thread's stack size (8 MiB;
/// rayon's default is 2 MiB).
fn on_a_worker<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match rayon::ThreadPoolBuilder::new().stack_size(8 << 20).build() {
        Ok(pool) => pool.install(f),
        // No threads to be had: run here, as before.
        Err(_) => f(),
    }
}

#[cfg(test)]
mod tests {
    /// Commands run on a pool thread, with more stack than rayon's default
    /// 2 MiB: a 3 MiB frame fits.
    #[test]
    fn commands_run_on_a_pool_thread() {
        // Not inlined: its frame is made when it is called, on the pool
        // thread (inlined, the array would sit in `on_a_worker`'s own frame,
        // on the caller's stack).
        #[inline(never)]
        fn big_frame() -> u64 {
            let big = [1u8; 3 << 20];
            std::hint::black_box(&big).iter().map(|&b| b as u64).sum()
        }
        let (on_pool, sum) =
            super::on_a_worker(|| (rayon::current_thread_index().is_some(), big_frame()));
        assert!(on_pool);
        assert_eq!(sum, 3 << 20);
        assert!(rayon::current_thread_index().is_none());
    }
}
