#!/usr/bin/env bash
# The Python environment that computes the reference values in fixtures/.
# Only needed to regenerate fixtures; the Rust tests read the committed files.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-fixtures
.venv-fixtures/bin/pip install -q numpy==2.4.6 scipy==1.17.1 scikit-image==0.26.0 \
    nibabel==5.4.2 pydicom==3.0.2
# For make_torch_fixtures.py. PyPI's torch wheel is the CUDA build: about
# 2.5 GB of nvidia-* wheels come with it, though the script runs on the CPU.
.venv-fixtures/bin/pip install -q torch==2.15.0 safetensors==0.8.0
# For make_synthrad_fixtures.py (MS-SSIM).
.venv-fixtures/bin/pip install -q pytorch-msssim==1.0.0
echo "now: .venv-fixtures/bin/python scripts/make_fixtures.py"
echo " and: .venv-fixtures/bin/python scripts/make_torch_fixtures.py"
echo " and: .venv-fixtures/bin/python scripts/make_synthrad_fixtures.py"
