"""Reference values for medtrans's CPU convolutions (patches/burn-flex,
src/ops/conv2d_gemm/): conv2d and conv_transpose2d, forward and the
gradients of input, weight and bias, from PyTorch.

Inputs are made by a formula both sides can evaluate, so the large cases
(which tile the column buffer) need no stored inputs:
    value(i, a, b) = sin(a * i + b) for i = 0, 1, ... in row-major order.
Small cases store every output value; large ones store the sums and the
values at 64 evenly spaced indices.

The upstream gradient is value(i, 0.11, 0.5) over the output, so each
gradient is that of sum(output * upstream).

Run with the fixture venv (scripts/setup_fixture_env.sh):
    .venv-fixtures/bin/python scripts/make_conv_fixtures.py
"""
import json
import math

import torch
import torch.nn.functional as F

OUT = "fixtures/networks/conv.json"


def ramp(shape, a, b):
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.float64)
    return torch.sin(a * i + b).reshape(shape)


def summary(t, full):
    flat = t.detach().double().flatten()
    if full:
        return {"values": flat.tolist()}
    n = flat.numel()
    idx = [int(k * (n - 1) / 63) for k in range(64)]
    return {
        "sum": flat.sum().item(),
        "abs_sum": flat.abs().sum().item(),
        "at": idx,
        "values": flat[idx].tolist(),
    }


def case(kind, x_shape, w_shape, stride, padding, dilation, groups, bias,
         output_padding=(0, 0), full=True):
    # float64 in PyTorch: the reference is exact to well below f32's
    # rounding, so the tolerance is medtrans's alone.
    x = ramp(x_shape, 0.37, 0.1).requires_grad_()
    w = (ramp(w_shape, 0.71, 0.3) * 0.5).requires_grad_()
    b = ramp((w_shape[0] if kind == "conv2d" else w_shape[1] * groups,), 1.3, 0.2)
    b = b.requires_grad_() if bias else None
    if kind == "conv2d":
        # padding: ((top, bottom), (left, right))
        (pt, pb), (pl, pr) = padding
        xp = F.pad(x, (pl, pr, pt, pb))
        y = F.conv2d(xp, w, b, stride=stride, dilation=dilation, groups=groups)
    else:
        y = F.conv_transpose2d(x, w, b, stride=stride, padding=padding,
                               output_padding=output_padding,
                               dilation=dilation, groups=groups)
    g = ramp(tuple(y.shape), 0.11, 0.5)
    (y * g).sum().backward()
    out = {
        "kind": kind,
        "x_shape": list(x_shape),
        "w_shape": list(w_shape),
        "stride": list(stride),
        "padding": [list(p) for p in padding] if kind == "conv2d" else list(padding),
        "output_padding": list(output_padding),
        "dilation": list(dilation),
        "groups": groups,
        "bias": bias,
        "y_shape": list(y.shape),
        "y": summary(y, full),
        "dx": summary(x.grad, full),
        "dw": summary(w.grad, full),
    }
    if bias:
        out["db"] = summary(b.grad, True)
    return out


def main():
    s = ((0, 0), (0, 0))
    p1 = ((1, 1), (1, 1))
    cases = [
        # ResNet G's 7x7 after reflect padding (padding 0), with bias.
        case("conv2d", (1, 3, 12, 11), (5, 3, 7, 7), (1, 1), s, (1, 1), 1, True),
        # Down-sampling 3x3 stride 2, batch 2.
        case("conv2d", (2, 4, 9, 10), (6, 4, 3, 3), (2, 2), p1, (1, 1), 1, True),
        # PatchGAN's 4x4 stride 2.
        case("conv2d", (1, 3, 16, 16), (4, 3, 4, 4), (2, 2), p1, (1, 1), 1, True),
        # Dilation 2, no bias.
        case("conv2d", (1, 2, 10, 10), (3, 2, 3, 3), (1, 1), ((2, 2), (2, 2)), (2, 2), 1, False),
        # 1x1 stride 1: the input is the column matrix.
        case("conv2d", (2, 5, 6, 7), (3, 5, 1, 1), (1, 1), s, (1, 1), 1, True),
        # 1x1 stride 2: not direct.
        case("conv2d", (1, 3, 8, 8), (4, 3, 1, 1), (2, 2), s, (1, 1), 1, False),
        # Two groups.
        case("conv2d", (1, 4, 8, 8), (6, 2, 3, 3), (1, 1), p1, (1, 1), 2, True),
        # Asymmetric padding, unequal strides.
        case("conv2d", (1, 2, 9, 7), (3, 2, 3, 2), (2, 1), ((1, 0), (2, 1)), (1, 1), 1, True),
        # Padding wider than the kernel's reach on a narrow image.
        case("conv2d", (1, 1, 3, 2), (2, 1, 3, 3), (1, 1), ((3, 3), (3, 3)), (1, 1), 1, False),
        # Large: the paper's residual block width; the column buffer is tiled.
        case("conv2d", (1, 64, 96, 96), (64, 64, 3, 3), (1, 1), p1, (1, 1), 1, True, full=False),
        # Stride 1 with padding, batch 2 and two groups (the wide layout).
        case("conv2d", (2, 4, 7, 9), (6, 2, 3, 3), (1, 1), p1, (1, 1), 2, True),
        # Large, stride 1, batch 2: the wide layout's tiles.
        case("conv2d", (2, 64, 96, 96), (32, 64, 3, 3), (1, 1), p1, (1, 1), 1, False, full=False),
        # Large 7x7 with dilation 2 and padding: the wide layout's tiles
        # with a kernel wider than 3.
        case("conv2d", (1, 16, 150, 150), (8, 16, 7, 7), (1, 1), ((6, 6), (6, 6)), (2, 2), 1, True, full=False),
        # Large, batch 2 and stride 2.
        case("conv2d", (2, 32, 80, 72), (48, 32, 3, 3), (2, 2), p1, (1, 1), 1, False, full=False),
        # ResNet G's up-sampling: 3x3 stride 2, padding 1, output padding 1.
        case("conv_transpose2d", (1, 4, 5, 6), (4, 3, 3, 3), (2, 2), (1, 1), (1, 1), 1, True, (1, 1)),
        # 4x4 stride 2 padding 1, batch 2.
        case("conv_transpose2d", (2, 3, 4, 4), (3, 2, 4, 4), (2, 2), (1, 1), (1, 1), 1, False),
        # Groups and dilation.
        case("conv_transpose2d", (1, 4, 5, 5), (4, 3, 3, 3), (1, 1), (0, 0), (2, 2), 2, True),
        # 1x1 stride 1.
        case("conv_transpose2d", (2, 3, 4, 5), (3, 2, 1, 1), (1, 1), (0, 0), (1, 1), 1, True),
        # Output padding below the dilation, not the stride.
        case("conv_transpose2d", (1, 2, 5, 5), (2, 3, 3, 3), (1, 1), (1, 1), (2, 2), 1, True, (1, 1)),
        # Large up-sampling (the paper's 128 -> 256 layer, narrowed).
        case("conv_transpose2d", (1, 64, 64, 64), (64, 32, 3, 3), (2, 2), (1, 1), (1, 1), 1, True, (1, 1), full=False),
    ]
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    main()
