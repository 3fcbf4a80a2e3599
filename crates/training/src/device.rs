//! Picking Burn's runtime device from a name, and reading tensors back from
//! it with errors instead of panics.
use anyhow::{bail, Result};
use burn::tensor::{Device, Tensor};

/// The device names `--device` accepts, for help texts and errors.
pub const DEVICE_NAMES: &str = "cpu, gpu or gpu:N";

/// `cpu`: Burn's pure-Rust flex backend (always built). `gpu`: the best GPU
/// that Vulkan offers; `gpu:N`: the N-th discrete GPU (from 0). Both need a
/// build with the `gpu` cargo feature and a Vulkan driver.
///
/// A GPU is acquired once per process and then shared: Burn's wgpu runtime
/// can be initialised only once per adapter.
pub fn device_from_name(name: &str) -> Result<Device> {
    let name = name.trim();
    match name {
        "cpu" | "flex" => return Ok(Device::flex()),
        "cuda" => bail!(
            "medtrans has no CUDA backend (Burn's needs LLVM downloaded at build time); \
             NVIDIA GPUs run through Vulkan: use --device gpu in a build with `--features gpu`"
        ),
        _ => {}
    }
    let index = match name.strip_prefix("gpu") {
        Some("") => None,
        Some(rest) => match rest.strip_prefix(':').map(str::parse::<usize>) {
            Some(Ok(i)) => Some(i),
            _ => bail!("device {name:?}: write gpu:N with N a GPU index from 0, e.g. gpu:1"),
        },
        // `wgpu` was this option's name before the `gpu` feature.
        None if name == "wgpu" => None,
        None => bail!("unknown device {name:?}; use {DEVICE_NAMES}"),
    };
    gpu(index)
}

#[cfg(not(feature = "gpu-core"))]
fn gpu(_index: Option<usize>) -> Result<Device> {
    bail!(
        "this medtrans was built without GPU support; rebuild it with \
         `cargo build --release --features gpu` (needs a Vulkan driver at run time), \
         or use --device cpu"
    )
}

#[cfg(feature = "gpu-core")]
fn gpu(index: Option<usize>) -> Result<Device> {
    use burn::tensor::wgpu::WgpuBackend;
    use burn::tensor::DeviceKind;
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    static ACQUIRED: OnceLock<Mutex<HashMap<Option<usize>, Device>>> = OnceLock::new();
    let mut acquired = ACQUIRED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(d) = acquired.get(&index) {
        return Ok(d.clone());
    }
    let kind = index.map_or(DeviceKind::DefaultDevice, DeviceKind::DiscreteGpu);
    // Vulkan wherever it exists (not OpenGL, which wgpu may otherwise pick on
    // Linux); Apple's GPUs have Metal only.
    let api = if cfg!(target_os = "macos") {
        WgpuBackend::Auto
    } else {
        WgpuBackend::Vulkan
    };
    let device = Device::wgpu_options()
        .device_kind(kind)
        .graphics_api(api)
        .init()
        .map_err(|e| {
            let which = index.map_or("gpu".to_string(), |i| format!("gpu:{i}"));
            anyhow::anyhow!(
                "--device {which}: no usable Vulkan GPU ({e}). Install the GPU's driver with its \
                 Vulkan ICD (NVIDIA: the proprietary driver; check with `vulkaninfo --summary`), \
                 or use --device cpu"
            )
        })?;
    acquired.insert(index, device.clone());
    Ok(device)
}

/// A tensor's values as f32, or a one-line error naming what was being read
/// and the device: GPU backends report a failed kernel (an op they lack,
/// memory exhausted) only when a result is read back.
pub fn read_f32<const D: usize>(t: Tensor<D>, what: &str) -> Result<Vec<f32>> {
    HOST_READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let device = t.device();
    t.try_into_vec_as::<f32>().map_err(|e| {
        let reason = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        anyhow::anyhow!("{what} failed on {}: {reason}", device_label(&device))
    })
}

static HOST_READS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Tensors read back to the host so far by this process (through
/// [`read_f32`]). Each read waits for the device to finish: on a GPU, reads
/// per training step are a cost the benchmark reports.
pub fn host_reads() -> usize {
    HOST_READS.load(std::sync::atomic::Ordering::Relaxed)
}

/// A short name for errors: `cpu` or the GPU as Burn describes it.
fn device_label(device: &Device) -> String {
    let d = format!("{device:?}");
    if d.to_lowercase().contains("flex") {
        "cpu".into()
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(name: &str) -> String {
        device_from_name(name).unwrap_err().to_string()
    }

    #[test]
    fn names_are_checked() {
        assert!(device_from_name("cpu").is_ok());
        assert!(err("gpu:one").contains("gpu:N"));
        assert!(err("gpu:").contains("gpu:N"));
        assert!(err("tpu").contains("unknown device"));
        assert!(err("cuda").contains("--device gpu"));
    }

    #[cfg(not(feature = "gpu-core"))]
    #[test]
    fn a_build_without_the_gpu_feature_says_how_to_get_it() {
        for name in ["gpu", "gpu:1", "wgpu"] {
            assert!(
                err(name).contains("--features gpu"),
                "{name}: {}",
                err(name)
            );
        }
    }

    /// A failed read is an error naming what was read, not a panic.
    #[test]
    fn reads_name_what_they_read() {
        let t = Tensor::<2>::ones([2, 3], &Device::flex());
        assert_eq!(read_f32(t, "a test tensor").unwrap(), vec![1.0; 6]);
    }
}
