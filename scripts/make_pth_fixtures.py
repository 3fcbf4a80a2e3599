"""PyTorch pickle checkpoints for medtrans's .pth loader (fixtures/torch):

- resnet_ngf8_blocks2.pth: the state_dict of resnet_ngf8_blocks2.safetensors
  (the same weights, so resnet_out.npy is its reference output), as
  torch.save writes it today (a zip holding data.pkl);
- resnet_ngf8_blocks2_legacy.pth: the same in the legacy (pre-1.6)
  pickle-stream format;
- hostile.pth: the same weights beside an object whose unpickling would run
  `os.system("touch /tmp/medtrans-pth-was-executed")` in Python;
- numpy_scalar.pth: the weights beside a numpy scalar, an object that is
  harmless but neither a tensor nor a plain container.

Run with the fixture venv: .venv-fixtures/bin/python scripts/make_pth_fixtures.py
"""
import os
import pathlib

import numpy as np
import torch
from safetensors.torch import load_file

out = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "torch"
state = load_file(out / "resnet_ngf8_blocks2.safetensors")


class RunsACommand:
    def __reduce__(self):
        return (os.system, ("touch /tmp/medtrans-pth-was-executed",))


torch.save(state, out / "resnet_ngf8_blocks2.pth")
torch.save(state, out / "resnet_ngf8_blocks2_legacy.pth", _use_new_zipfile_serialization=False)
torch.save({**state, "payload": RunsACommand()}, out / "hostile.pth")
torch.save({**state, "epoch": np.int64(3)}, out / "numpy_scalar.pth")
print("wrote", sorted(p.name for p in out.glob("*.pth")))
