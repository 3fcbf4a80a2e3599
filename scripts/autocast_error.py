"""How far PyTorch's autocast (bf16, f16) moves a ResNet generator's output
and gradients from f32: the bar for medtrans' mixed precision
(crates/networks/tests/precision.rs). Same architecture (ngf 8, 2 blocks),
the ICBM T1 slice fixture, and the test's fixed linear probe as the loss.

    .venv-fixtures/bin/python scripts/autocast_error.py
"""
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import torch_reference as tr  # noqa: E402

torch.manual_seed(0)
x = torch.from_numpy(np.load(os.path.join(ROOT, "fixtures/torch/t1_32.npy"))).float()
x = x.reshape(1, 1, 32, 32)


def probe(out):
    n = out.numel()
    w = torch.tensor([((i * 37) % 11) / 5.0 - 1.0 for i in range(n)]).reshape(out.shape)
    return (out.float() * w).mean()


def run(net, dtype):
    net.zero_grad()
    with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        out = net(x)
    probe(out).backward()
    return out.detach().float(), [p.grad.clone() for p in net.parameters()]


for name, net in [("ResNet G", tr.resnet_generator(1, 1, 8, 2)),
                  ("D", tr.PatchGAN(1, 8, per_image=False))]:
    out32, grads32 = run(net, None)
    # Gradients that are zero in exact arithmetic are measured against 5 %
    # of the largest, as in the test.
    floor = max(t.norm() for t in grads32) / 20
    for dtype in [torch.bfloat16, torch.float16]:
        out, grads = run(net, dtype)
        worst = max(float((a - b).norm() / max(b.norm(), floor)) for a, b in zip(grads, grads32))
        print(f"{name} {dtype}: output {float((out - out32).norm() / out32.norm()):.1e}, "
              f"worst gradient {worst:.1e}")
