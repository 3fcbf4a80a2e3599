//! Picking Burn's runtime device from a name.
use anyhow::{bail, Result};
use burn::tensor::Device;

/// `cpu`: Burn's pure-Rust flex backend (always built). `wgpu`: Vulkan,
/// Metal or DX12 GPUs, with the `wgpu` cargo feature.
pub fn device_from_name(name: &str) -> Result<Device> {
    match name {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(not(feature = "wgpu"))]
        "wgpu" => bail!(
            "this medtrans was built without the wgpu backend; rebuild with `cargo build --release --features wgpu`"
        ),
        "cuda" => bail!(
            "the cuda backend is not built into medtrans yet (its build needs internet); use --device cpu or wgpu"
        ),
        other => bail!("unknown device {other:?}; use cpu or wgpu"),
    }
}
