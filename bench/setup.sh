#!/usr/bin/env bash
# The PyTorch side of bench/run.py: torch, numpy and nibabel from PyPI in
# .venv-bench (git ignores it). Pinned to the versions docs/benchmarks.md
# reports.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-bench
.venv-bench/bin/pip install --quiet torch==2.15.0 numpy nibabel
.venv-bench/bin/python -c "import torch; print('torch', torch.__version__, 'threads', torch.get_num_threads())"
