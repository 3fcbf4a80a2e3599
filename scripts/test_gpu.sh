#!/usr/bin/env bash
# The GPU path's tests (crates/training/tests/gpu.rs: networks and modes;
# gpu_kernels.rs: medtrans's own kernels; gpu_fusion.rs: Burn's fusion bug,
# ignored) on this machine's Vulkan device: an NVIDIA/AMD/Intel GPU, or
# Mesa's lavapipe on the CPU (apt-get install mesa-vulkan-drivers
# libvulkan1). Not part of the default test command: the GPU build takes
# about 35 minutes from clean on 2 cores. MEDTRANS_GPU_FEATURES picks the
# build (default `gpu`; `gpu,fusion` to check Burn's fusion, with
# `--ignored fusion`).
set -euo pipefail
cd "$(dirname "$0")/.."
# Without it lavapipe spends minutes autotuning each kernel.
export CUBECL_AUTOTUNE_LEVEL="${CUBECL_AUTOTUNE_LEVEL:-minimal}"
# wgpu logs a harmless error line when this is unset.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
exec cargo test --release --features "${MEDTRANS_GPU_FEATURES:-gpu}" -p medtrans-training --test gpu --test gpu_kernels -- --test-threads=1 "$@"
