//! Counting GPU kernel launches, the speed proxy that does not need a GPU.
//!
//! Each launch costs the host a few microseconds to encode and submit, and a
//! GPU step of medtrans's networks at 256 px is a few milliseconds of work:
//! a step that launches thousands of kernels is bound by launches, not by
//! the GPU. The count is the same on Mesa's lavapipe as on an NVIDIA card
//! (it is a property of the program, not of the device), so it can be
//! measured and reduced on any machine with a Vulkan driver.
//!
//! CPU (flex) builds have no kernels to count: [`LaunchCount::start`] gives
//! `None` there.

/// The GPU-related features this binary was built with ("cpu only", or
/// e.g. "gpu, fusion"), so that a launch count or a GPU time names the
/// build it came from.
pub fn gpu_build() -> String {
    let on = [
        ("gpu", cfg!(feature = "gpu-core")),
        ("autotune", cfg!(feature = "gpu")),
        ("fusion", cfg!(feature = "fusion")),
        ("spirv", cfg!(feature = "gpu-spirv")),
    ];
    let names: Vec<&str> = on.iter().filter(|f| f.1).map(|f| f.0).collect();
    if names.is_empty() {
        "cpu only".into()
    } else {
        names.join(", ")
    }
}

/// Kernel launches seen between [`LaunchCount::start`] and
/// [`LaunchCount::finish`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Launches {
    /// Every launch, all kernels together.
    pub total: usize,
    /// Launches per kernel (CubeCL's short kernel name), most first.
    pub by_kernel: Vec<(String, usize)>,
}

#[cfg(feature = "gpu-core")]
mod observed {
    use super::Launches;
    use cubecl_runtime::logging::{LaunchObservation, LaunchObserver};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Tally(Mutex<HashMap<&'static str, usize>>);

    impl LaunchObserver for Tally {
        fn launched(&self, kernel: &'static str) {
            *self
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(kernel)
                .or_default() += 1;
        }
    }

    /// Counts every kernel the process launches while it lives (CubeCL's
    /// observer slot is process-wide; one count at a time).
    pub struct LaunchCount {
        tally: Arc<Tally>,
        _watching: LaunchObservation,
    }

    impl LaunchCount {
        /// Start counting. `None` in a build without the `gpu` feature.
        pub fn start() -> Option<Self> {
            let tally = Arc::new(Tally::default());
            let watching = LaunchObservation::new(tally.clone());
            Some(Self {
                tally,
                _watching: watching,
            })
        }

        /// Stop counting and tally by kernel. Kernels are named by their
        /// type's last path segment, generics dropped, as CubeCL's profiler
        /// names them.
        pub fn finish(self) -> Launches {
            let counts =
                std::mem::take(&mut *self.tally.0.lock().unwrap_or_else(|e| e.into_inner()));
            drop(self);
            let mut by_name: HashMap<String, usize> = HashMap::new();
            for (kernel, n) in counts {
                *by_name.entry(short_name(kernel)).or_default() += n;
            }
            let mut by_kernel: Vec<(String, usize)> = by_name.into_iter().collect();
            by_kernel.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            Launches {
                total: by_kernel.iter().map(|k| k.1).sum(),
                by_kernel,
            }
        }
    }

    /// `burn_cubecl::kernel::unary_float::UnaryKernel<..>` -> `UnaryKernel`.
    fn short_name(kernel: &str) -> String {
        cubecl_runtime::config::type_name_format(
            kernel,
            cubecl_runtime::config::TypeNameFormatLevel::Short,
        )
    }
}

#[cfg(feature = "gpu-core")]
pub use observed::LaunchCount;

/// Without the `gpu` feature nothing launches kernels.
#[cfg(not(feature = "gpu-core"))]
pub struct LaunchCount;

#[cfg(not(feature = "gpu-core"))]
impl LaunchCount {
    /// Start counting. `None` in a build without the `gpu` feature.
    pub fn start() -> Option<Self> {
        None
    }

    /// Never reached: there is no count to finish without the feature.
    pub fn finish(self) -> Launches {
        Launches::default()
    }
}
