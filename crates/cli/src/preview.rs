//! `medtrans preview`: a picture of what training will see.
use anyhow::Result;
use medtrans_datasets::{PairOptions, Pairing, SliceDataset};
use medtrans_io::{montage, write_png_gray, Slice};
use std::path::{Path, PathBuf};

/// Save a PNG of a few training pairs at a noise level.
///
/// Each row is one pair: A, B as stored (aligned), A and B with the noise
/// level's random affines applied, and a checkerboard of noisy A and noisy B,
/// where misalignment shows as broken edges between the squares.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset folder (from `medtrans prepare`, or RegGAN A/ and B/ folders).
    dataset: PathBuf,
    #[arg(long, default_value = "train")]
    split: String,
    /// Misalignment noise level 0-5 (the RegGAN paper's Table 2).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=5))]
    noise_level: u32,
    /// Draw B from another slice or volume instead of its aligned partner.
    #[arg(long)]
    unpaired: bool,
    /// Number of pairs (rows).
    #[arg(long, default_value_t = 4)]
    count: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output PNG.
    #[arg(long)]
    out: PathBuf,
}

/// Checkerboard of two slices, squares of `cell` pixels.
fn checkerboard(a: &Slice, b: &Slice, cell: usize) -> Slice {
    let mut out = a.clone();
    for r in 0..a.height {
        for c in 0..a.width {
            if ((r / cell) + (c / cell)) % 2 == 1 {
                out.data[r * a.width + c] = b.data[r * a.width + c];
            }
        }
    }
    out
}

pub fn write_preview(
    ds: &SliceDataset,
    opts: &PairOptions,
    count: usize,
    out: &Path,
) -> Result<()> {
    let n = ds.len();
    let count = count.clamp(1, n);
    let rows: Vec<Vec<Slice>> = (0..count)
        .map(|k| {
            let i = k * n / count + n / (2 * count);
            let p = ds.pair(i.min(n - 1), 0, opts);
            let cell = (p.a.width / 8).max(2);
            let board = checkerboard(&p.a, &p.b, cell);
            vec![p.a_aligned, p.b_aligned, p.a, p.b, board]
        })
        .collect();
    let img = montage(&rows, 2, 1.0);
    write_png_gray(out, &img, -1.0, 1.0)?;
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    let ds = SliceDataset::open(&args.dataset, &args.split)?;
    let opts = PairOptions {
        noise_level: args.noise_level,
        pairing: if args.unpaired {
            Pairing::Unpaired
        } else {
            Pairing::Paired
        },
        misalign: None,
        seed: args.seed,
    };
    write_preview(&ds, &opts, args.count, &args.out)?;
    say!(
        "wrote {} (columns: A, B, A at noise {}, B at noise {}, checkerboard of the two)",
        args.out.display(),
        args.noise_level,
        args.noise_level
    );
    Ok(())
}
