#!/usr/bin/env python3
"""PyTorch reference for the pixel-wise cross-entropy (the segmentors' loss
and the shape-consistency loss). Run from the repository root:

    .venv-fixtures/bin/python scripts/make_shape_fixtures.py

It writes fixtures/torch/ce_logits.npy [2, 4, 6, 5], ce_labels.npy [2, 6, 5]
(integer classes as float32), ce_grad.npy (d loss / d logits) and adds
`cross_entropy` to fixtures/torch/expected.json.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "torch")

rng = np.random.default_rng(12)
logits = (rng.standard_normal((2, 4, 6, 5)) * 3).astype(np.float32)
labels = rng.integers(0, 4, size=(2, 6, 5))
x = torch.tensor(logits, requires_grad=True)
loss = F.cross_entropy(x, torch.tensor(labels))
loss.backward()
np.save(os.path.join(OUT, "ce_logits.npy"), logits)
np.save(os.path.join(OUT, "ce_labels.npy"), labels.astype(np.float32))
np.save(os.path.join(OUT, "ce_grad.npy"), x.grad.numpy())
path = os.path.join(OUT, "expected.json")
with open(path) as fh:
    expected = json.load(fh)
expected["cross_entropy"] = loss.item()
with open(path, "w") as fh:
    json.dump(expected, fh, indent=1)
print("cross_entropy", loss.item())
