//! medtrans's own GPU kernels, written in CubeCL and reached through Burn's
//! backend extension (`#[backend_extension]`).
//!
//! Why: a training step on a GPU is bound by kernel launches, not by
//! arithmetic (docs/benchmarks.md, "Kernel launches per step"). Burn builds
//! Adam from about 16 element-wise kernels per weight tensor, instance
//! norm from about seven each way, a leaky ReLU from three and reflect
//! padding from two selects forward and four kernels back; here each is
//! one.
//!
//! Every function answers `None` where it has no kernel (a CPU tensor, a
//! build without the `gpu-core` feature, a dtype it does not cover), and
//! the caller keeps Burn's own ops: the CPU path is untouched.

pub mod act;
pub mod adam;
pub mod conv;
pub mod norm;
pub mod pad;
pub mod resize;

#[cfg(feature = "gpu-core")]
mod cube;
