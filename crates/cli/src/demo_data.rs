//! `medtrans demo-data`: rebuild the shipped demo subset from ../shared/data.
use anyhow::{bail, Context, Result};
use medtrans_io::{read_volume, write_nifti, Geometry, ReadOptions, Volume};
use std::path::{Path, PathBuf};

/// Rebuild data/demo (ICBM152 T1, T2 and brain mask at 2 mm, cropped to the
/// head, and a simulated second-session T2 on a grid of its own) from the
/// full-resolution files in ../shared/data.
///
/// The result is what `medtrans demo` trains on; it is committed with the
/// MNI licence notice so that a fresh clone runs the demo without ../shared.
#[derive(clap::Args)]
pub struct Args {
    /// The shared data folder (default: found by walking up from here).
    #[arg(long)]
    from: Option<PathBuf>,
    #[arg(long, default_value = "data/demo")]
    out: PathBuf,
    /// Replace existing files in OUT.
    #[arg(long, visible_alias = "force")]
    overwrite: bool,
}

const T1: &str = "mni_icbm152_t1_tal_nlin_sym_09c.nii.gz";
const T2: &str = "mni_icbm152_t2_tal_nlin_sym_09c.nii.gz";
const MASK: &str = "mni_icbm152_t1_tal_nlin_sym_09c_mask.nii.gz";

/// Average 2x2x2 blocks inside `lo..hi` (voxel bounds), with the matching affine.
fn downsample(v: &Volume, lo: [usize; 3], hi: [usize; 3]) -> (Vec<f32>, Geometry) {
    let n: [usize; 3] = std::array::from_fn(|k| (hi[k] - lo[k]) / 2);
    let mut data = Vec::with_capacity(n[0] * n[1] * n[2]);
    for z in 0..n[2] {
        for y in 0..n[1] {
            for x in 0..n[0] {
                let mut s = 0.0f64;
                for (dx, dy, dz) in (0..8).map(|b| (b & 1, (b >> 1) & 1, b >> 2)) {
                    s += v.data[v.index(lo[0] + 2 * x + dx, lo[1] + 2 * y + dy, lo[2] + 2 * z + dz)]
                        as f64;
                }
                // Rounded to 1/256 so that gzip has something to work with.
                data.push(((s / 8.0) * 256.0).round() as f32 / 256.0);
            }
        }
    }
    let mut g = v.geometry.clone();
    let a = v.geometry.affine;
    // New voxel i sits at old voxel lo + 2i + 0.5.
    for r in 0..3 {
        g.affine[r][3] = a[r][3] + (0..3).map(|c| a[r][c] * (lo[c] as f64 + 0.5)).sum::<f64>();
        for c in 0..3 {
            g.affine[r][c] = a[r][c] * 2.0;
        }
    }
    g.shape = n;
    g.spacing = v.geometry.spacing.map(|s| s * 2.0);
    g.qform = None;
    (data, g)
}

/// The second-session T2 of the "your own data" walkthrough.
pub const SESSION2: &str = "t2_session2.nii.gz";

/// The T2 as a clinic's second scan would give it: the head moved (4 and
/// -3 degrees, a few mm), thick oblique slices (1.4 x 1.4 x 3.5 mm, the slab
/// tilted by 6 degrees), and a field of view of its own. Nothing of the
/// first grid survives, so it must be registered and resampled.
fn second_session(t2: &Volume, demo: &Geometry) -> (Vec<f32>, Geometry) {
    use medtrans_registration::{Transform, TransformKind};
    use medtrans_transforms::{mat_mul, resample, Interp3};
    let (lo, hi) = medtrans_transforms::world_bounds(demo);
    let centre: [f64; 3] = std::array::from_fn(|k| (lo[k] + hi[k]) / 2.0);
    let spacing = [1.4, 1.4, 3.5];
    let mut g = demo.clone();
    g.spacing = spacing;
    g.qform = None;
    g.sform_code = 1;
    // 8 mm less at the top: the slab does not cover the whole head.
    g.shape = std::array::from_fn(|k| {
        ((hi[k] - lo[k] - if k == 2 { 8.0 } else { 0.0 }) / spacing[k]).ceil() as usize
    });
    let mut grid = medtrans_transforms::IDENTITY;
    for k in 0..3 {
        grid[k][k] = spacing[k];
        grid[k][3] = lo[k] + spacing[k] / 2.0;
    }
    let mut tilt = Transform::identity(TransformKind::Rigid, centre);
    tilt.params[0] = 6f64.to_radians();
    g.affine = mat_mul(&tilt.matrix(), &grid);
    let mut motion = Transform::identity(TransformKind::Rigid, centre);
    motion.params = vec![4f64.to_radians(), 0.0, -3f64.to_radians(), 5.0, -6.0, 3.0];
    let r = resample(t2, &g, &motion.matrix(), Interp3::Trilinear, 0.0)
        .expect("the template's affine is invertible");
    // Rounded to 1/32: far below the noise, and gzip packs it tighter.
    let data = r.data.iter().map(|v| (v * 32.0).round() / 32.0).collect();
    (data, g)
}

pub fn build(from: &Path, out: &Path, overwrite: bool) -> Result<()> {
    let icbm = from.join("icbm152-2009c");
    let read = |name: &str| read_volume(icbm.join(name), &ReadOptions::default());
    let (t1, t2, mask) = (read(T1)?, read(T2)?, read(MASK)?);
    // Bounding box of the brain mask, with a 4-voxel margin, even-sized.
    let [nx, ny, nz] = mask.shape();
    let (mut lo, mut hi) = ([usize::MAX; 3], [0usize; 3]);
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                if mask.data[mask.index(x, y, z)] > 0.5 {
                    for (k, c) in [x, y, z].into_iter().enumerate() {
                        lo[k] = lo[k].min(c);
                        hi[k] = hi[k].max(c + 1);
                    }
                }
            }
        }
    }
    if hi[0] == 0 {
        bail!("{}: the mask is empty", icbm.join(MASK).display());
    }
    for k in 0..3 {
        lo[k] = lo[k].saturating_sub(4);
        hi[k] = (hi[k] + 4).min(mask.shape()[k]);
        hi[k] -= (hi[k] - lo[k]) % 2;
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (vol, name) in [
        (&t1, "t1.nii.gz"),
        (&t2, "t2.nii.gz"),
        (&mask, "mask.nii.gz"),
    ] {
        let (mut data, g) = downsample(vol, lo, hi);
        if name == "mask.nii.gz" {
            data.iter_mut().for_each(|v| *v = (*v >= 0.5) as u8 as f32);
        }
        write_nifti(&out.join(name), &data, &g, overwrite)?;
    }
    let (data, g) = second_session(&t2, &downsample(&t2, lo, hi).1);
    write_nifti(&out.join(SESSION2), &data, &g, overwrite)?;
    let notice = out.join("COPYING");
    if overwrite || !notice.exists() {
        let text = std::fs::read_to_string(icbm.join("COPYING"))
            .context("reading the MNI licence notice")?;
        std::fs::write(&notice, text).context("writing the MNI licence notice")?;
    }
    Ok(())
}

pub fn run(args: Args) -> Result<()> {
    let from = match args.from {
        Some(p) => p,
        None => medtrans_io::shared_data_dir()
            .context("../shared/data not found; pass --from DIR or set MEDTRANS_SHARED_DATA")?,
    };
    build(&from, &args.out, args.overwrite)?;
    say!("demo data written to {}", args.out.display());
    Ok(())
}
