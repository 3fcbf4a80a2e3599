#!/usr/bin/env bash
# Fuzz medtrans's readers with libFuzzer (fuzz/): NIfTI (raw and gzip),
# DICOM, the dataset manifest and the training config (TOML). Needs a nightly toolchain and a C++
# compiler (libfuzzer-sys builds libFuzzer); no cargo-fuzz needed.
#
#   scripts/fuzz.sh [MINUTES_PER_TARGET] [TARGET...]     (default 10, all)
#
# Seeds come from real files: the shipped demo volume's header on a small
# grid, ../shared/data's DICOM files where present, and a manifest made by
# `medtrans prepare`. Crashes land in fuzz/artifacts/TARGET/; add each as a
# regression case (crates/cli/tests/corrupt_inputs.rs) once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-10}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(nifti nifti_gz dicom manifest config)

flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Coverflow-checks"
# No -Cdebug-assertions (cargo-fuzz's default): it turns on the standard
# library's UB precondition checks, which abort inside openjp2 (the JPEG 2000
# decoder dicom-rs uses) on a valid file, before any fuzzing starts; see
# docs/robustness.md.
[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock
# An explicit --target keeps the instrumentation out of build scripts and
# proc macros (as cargo-fuzz does).
target=x86_64-unknown-linux-gnu
(cd fuzz && RUSTFLAGS="$flags" cargo +nightly build --release --offline --bins --target "$target")

seeds=fuzz/seeds
mkdir -p "$seeds"/{nifti,nifti_gz,dicom,manifest,config}
# Config: the shipped presets and experiment configs.
cp configs/*.toml "$seeds/config/"
# NIfTI: the demo T1's own header (its qform, sform, units) over a 12x10x6
# int16 grid of its first voxels, raw and gzipped.
python3 - "$seeds" <<'PY'
import gzip, struct, sys
seeds = sys.argv[1]
raw = gzip.open("data/demo/t1.nii.gz").read()
h = bytearray(raw[:348])
dims = (3, 12, 10, 6, 1, 1, 1, 1)
h[40:56] = struct.pack("<8h", *dims)
h[70:74] = struct.pack("<hh", 4, 16)        # int16
h[108:112] = struct.pack("<f", 352.0)        # vox_offset
body = bytes((i * 37) % 251 for i in range(12 * 10 * 6 * 2))
nii = bytes(h) + b"\0\0\0\0" + body
open(f"{seeds}/nifti/t1_small.nii", "wb").write(nii)
open(f"{seeds}/nifti_gz/t1_small.nii.gz", "wb").write(gzip.compress(nii))
open(f"{seeds}/nifti/t1_header_only.nii", "wb").write(bytes(h) + b"\0\0\0\0")
PY
if [ -d ../shared/data/dicom ]; then
  for f in MR_small.dcm MR_small_RLE.dcm MR_small_bigendian.dcm CT_small.dcm emri_small_jpeg_2k_lossless.dcm; do
    cp "../shared/data/dicom/$f" "$seeds/dicom/" 2>/dev/null || true
  done
fi
if [ ! -f "$seeds/manifest/manifest.json" ]; then
  tmp=$(mktemp -d)
  cargo run -q -- prepare --a data/demo/t1.nii.gz --b data/demo/t2.nii.gz \
    --mask data/demo/mask.nii.gz --size 32 --out "$tmp/ds" >/dev/null
  cp "$tmp/ds/manifest.json" "$seeds/manifest/manifest.json"
  rm -rf "$tmp"
fi

for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  echo "== $t: $minutes min"
  fuzz/target/"$target"/release/"$t" "$corpus" "$seeds/$t" \
    -max_total_time=$((minutes * 60)) -max_len=65536 -timeout=10 \
    -rss_limit_mb=6144 -malloc_limit_mb=6144 \
    -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 2>&1 | tail -25 ||
    echo "== $t: libFuzzer stopped on a finding; see fuzz/artifacts/$t/"
done
