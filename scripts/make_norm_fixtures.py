"""Reference values for medtrans's CPU normalisation (patches/burn-flex,
src/ops/batch_norm.rs, and medtrans_networks::instance_norm_2d): instance
norm and batch norm with batch statistics, forward and gradients, from
PyTorch in float64.

Inputs use the same formula as make_conv_fixtures.py,
    value(i, a, b) = sin(a * i + b) for i = 0, 1, ... in row-major order,
scaled and shifted per case; the upstream gradient is value(i, 0.11, 0.5) (also rounded to f32)
over the output, so each gradient is that of sum(output * upstream).
Inputs are rounded to f32 (the test's f32 and f64 runs read the same
values). Planes listed in "constant" are overwritten with a constant.

Run with the fixture venv (scripts/setup_fixture_env.sh):
    .venv-fixtures/bin/python scripts/make_norm_fixtures.py
"""
import json

import torch
import torch.nn.functional as F

from make_conv_fixtures import ramp, summary

OUT = "fixtures/networks/norm.json"
EPS = 1e-5


def instance_case(shape, scale=1.0, offset=0.0, constant=(), full=True):
    # Rounded to f32 first: the reference is then exact for the f32 input
    # the test builds, so the offset case measures the kernel, not the
    # input's rounding.
    x = (ramp(shape, 0.37, 0.1) * scale + offset).float().double()
    for n, c, v in constant:
        x[n, c] = v
    x.requires_grad_()
    y = F.instance_norm(x, eps=EPS)
    g = ramp(tuple(y.shape), 0.11, 0.5).float().double()
    (y * g).sum().backward()
    return {
        "kind": "instance",
        "shape": list(shape),
        "scale": scale,
        "offset": offset,
        "constant": [list(c) for c in constant],
        "y": summary(y, full),
        "dx": summary(x.grad, full),
    }


def batch_case(shape, full=True):
    x = ramp(shape, 0.37, 0.1).float().double().requires_grad_()
    c = shape[1]
    gamma = (ramp((c,), 0.9, 0.4) + 1.5).float().double().requires_grad_()
    beta = ramp((c,), 1.3, 0.2).float().double().requires_grad_()
    y = F.batch_norm(x, None, None, gamma, beta, training=True, eps=EPS)
    g = ramp(tuple(y.shape), 0.11, 0.5).float().double()
    (y * g).sum().backward()
    xf = x.detach().transpose(0, 1).reshape(c, -1)
    return {
        "kind": "batch",
        "shape": list(shape),
        "scale": 1.0,
        "offset": 0.0,
        "constant": [],
        "gamma": gamma.detach().tolist(),
        "beta": beta.detach().tolist(),
        "mean": xf.mean(1).tolist(),
        "variance": xf.var(1, unbiased=False).tolist(),
        "y": summary(y, full),
        "dx": summary(x.grad, full),
        "dgamma": gamma.grad.tolist(),
        "dbeta": beta.grad.tolist(),
    }


def main():
    cases = [
        # Batch 2, odd plane sizes.
        instance_case((2, 3, 5, 7)),
        # Constant planes: an arbitrary value and the images' background
        # (-1); each normalises to zero and its gradient is dy - mean(dy)
        # over sqrt(eps).
        instance_case((1, 3, 4, 6), constant=[(0, 1, 0.7), (0, 2, -1.0)]),
        # Far from zero: the statistics must not lose the spread to the
        # offset (f32 holds 1000 + 0.01 * sin to about 6e-5).
        instance_case((1, 2, 6, 6), scale=0.01, offset=1000.0),
        # Large enough to split across threads.
        instance_case((2, 16, 48, 40), full=False),
        # Batch statistics over a batch of 3 with gamma and beta.
        batch_case((3, 4, 5, 6)),
        # A batch of one with gamma and beta: the kernel's one-visit path
        # (instance norm's) with a real affine and its gradients.
        batch_case((1, 4, 5, 6)),
        # Large batch norm: channels split across threads.
        batch_case((4, 8, 32, 36), full=False),
    ]
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "eps": EPS, "cases": cases}, f)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    main()
