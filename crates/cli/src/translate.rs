//! `medtrans translate`: volume in, volume out, geometry kept.
use anyhow::{bail, Context, Result};
use medtrans_io::Volume;
use medtrans_training::inference::read_input;
use medtrans_training::{Model, ModelInfo};
use std::path::{Path, PathBuf};

/// Translate a whole volume (NIfTI, DICOM file or series folder) with a
/// trained model, slice by slice along the training axis. The output
/// NIfTI has the input's shape and affine and the target contrast's units.
///
/// Example:
///   medtrans translate --model runs/reggan --input t1.nii.gz --output synth_t2.nii.gz
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// A run folder (its best checkpoint is used) or a checkpoint folder.
    #[arg(long)]
    model: PathBuf,
    /// The source volume: .nii/.nii.gz, a DICOM file or a DICOM series folder.
    #[arg(long)]
    input: PathBuf,
    /// Output NIfTI (.nii or .nii.gz).
    #[arg(long)]
    output: PathBuf,
    /// Brain/body mask on the input's grid; outside it gets the background value.
    #[arg(long)]
    mask: Option<PathBuf>,
    /// Slices per forward pass.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Device: cpu (Burn's flex backend), gpu (the best Vulkan GPU) or gpu:N (the N-th discrete GPU); the GPU ones need a build with `--features gpu`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Replace OUTPUT if it exists.
    #[arg(long, visible_alias = "force")]
    overwrite: bool,
}

/// Read a volume (and its mask), then run `work` over it slice by slice
/// with a progress bar: what `translate` and `predict` share. A model
/// trained on masked volumes given no mask gets a note, since its
/// intensity scaling then differs.
pub(crate) fn slice_by_slice<T>(
    input: &Path,
    mask: Option<&Path>,
    info: &ModelInfo,
    what: &str,
    work: impl FnOnce(&Volume, Option<&Volume>, &mut dyn FnMut(usize, usize)) -> Result<T>,
) -> Result<(Volume, T)> {
    let vol = read_input(input)?;
    let mask = mask.map(read_input).transpose()?;
    if info.masked && mask.is_none() {
        eprintln!("note: this model was trained on masked volumes (intensities scaled inside the mask); without --mask the scaling uses the whole volume and may differ");
    }
    let depth = vol.shape()[info.axis.unwrap_or(2)];
    let bar = crate::progress::bar(depth as u64, what);
    let out = work(&vol, mask.as_ref(), &mut |done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    Ok((vol, out))
}

pub fn run(args: Args) -> Result<()> {
    if args.output.exists() && !args.overwrite {
        bail!(
            "{} exists; pass --overwrite to replace it",
            args.output.display()
        );
    }
    let name = args.output.to_string_lossy();
    if !(name.ends_with(".nii") || name.ends_with(".nii.gz")) {
        bail!(
            "{}: the output must be a NIfTI file (.nii or .nii.gz)",
            args.output.display()
        );
    }
    let model = Model::load(&args.model, &args.device)?;
    let (vol, data) = slice_by_slice(
        &args.input,
        args.mask.as_deref(),
        &model.info,
        "translate",
        |vol, mask, progress| model.translate_volume(vol, mask, args.batch, progress),
    )?;
    medtrans_io::write_nifti(&args.output, &data, &vol.geometry, args.overwrite)
        .with_context(|| format!("writing {}", args.output.display()))?;
    say!(
        "wrote {} ({:?} voxels, the input's affine) from {} (step {})",
        args.output.display(),
        vol.shape(),
        model.checkpoint.display(),
        model.step
    );
    Ok(())
}
