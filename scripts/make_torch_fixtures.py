#!/usr/bin/env python3
"""PyTorch reference values for medtrans' Burn networks and losses.

Run from the repository root with the fixture venv
(scripts/setup_fixture_env.sh installs torch and safetensors too):

    .venv-fixtures/bin/python scripts/make_torch_fixtures.py

It writes fixtures/torch/: a real ICBM152 T1 slice at 32 px, a displacement
field, the RegGAN-style warp of the slice and its gradients, the smoothness,
L1 and GAN losses, and a CycleGAN ResNet generator (ngf 8, 2 blocks) with
its weights as safetensors under PyTorch's own parameter names and its
output on the slice, and bilinear upsampling (R's) with its gradient. The Rust tests load the weights into medtrans'
generator and compare outputs to 1e-4.
"""
import json
import os
import sys

import nibabel as nib
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from skimage.transform import resize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
# One home for the PyTorch networks: the benchmark's reference.
from torch_reference import resnet_generator, smoothness, warp  # noqa: E402
DATA = os.path.join(ROOT, "..", "shared", "data", "icbm152-2009c")
OUT = os.path.join(ROOT, "fixtures", "torch")


def t1_slice(size):
    """Axial slice 90 of the ICBM T1 (medtrans' convention), resized and
    scaled to [-1, 1] by its 0.5/99.5 percentiles."""
    vol = nib.load(os.path.join(DATA, "mni_icbm152_t1_tal_nlin_sym_09c.nii.gz"))
    sl = np.asarray(vol.dataobj[:, :, 90], dtype=np.float64).T[::-1, :]
    sl = resize(sl, (size, size), order=1, anti_aliasing=False)
    lo, hi = np.percentile(sl, [0.5, 99.5])
    return np.clip((sl - lo) / (hi - lo) * 2 - 1, -1, 1).astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(7)
    rng = np.random.default_rng(7)
    expected = {"torch": torch.__version__}

    img = t1_slice(32)
    np.save(os.path.join(OUT, "t1_32.npy"), img)

    # Warp: smooth-ish field up to ~4 px, partly pointing outside the image.
    field = rng.normal(0, 2.0, size=(1, 2, 32, 32)).astype(np.float32)
    field[:, 1, :, :4] -= 3.0
    weights = rng.normal(0, 1, size=(1, 1, 32, 32)).astype(np.float32)
    np.save(os.path.join(OUT, "field.npy"), field)
    np.save(os.path.join(OUT, "weights.npy"), weights)
    x = torch.tensor(img[None, None]).requires_grad_(True)
    f = torch.tensor(field).requires_grad_(True)
    warped = warp(x, f)
    (warped * torch.tensor(weights)).sum().backward()
    np.save(os.path.join(OUT, "warped.npy"), warped.detach().numpy())
    np.save(os.path.join(OUT, "warp_grad_image.npy"), x.grad.numpy())
    np.save(os.path.join(OUT, "warp_grad_field.npy"), f.grad.numpy())

    # Losses on the same tensors.
    ft = torch.tensor(field)
    xt = torch.tensor(img[None, None])
    expected["smoothness"] = smoothness(ft).item()
    expected["l1_warped_vs_image"] = (warp(xt, ft) - xt).abs().mean().item()
    scores = torch.tensor(weights)  # stand-in discriminator scores
    expected["lsgan_real"] = F.mse_loss(scores, torch.ones_like(scores)).item()
    expected["lsgan_fake"] = F.mse_loss(scores, torch.zeros_like(scores)).item()
    expected["bce_real"] = F.binary_cross_entropy_with_logits(scores, torch.ones_like(scores)).item()
    expected["bce_fake"] = F.binary_cross_entropy_with_logits(scores, torch.zeros_like(scores)).item()
    # Gradient difference loss between the warped and the plain slice.
    def gdl(a, b):
        dya = (a[:, :, 1:] - a[:, :, :-1]).abs()
        dyb = (b[:, :, 1:] - b[:, :, :-1]).abs()
        dxa = (a[..., 1:] - a[..., :-1]).abs()
        dxb = (b[..., 1:] - b[..., :-1]).abs()
        return ((dya - dyb) ** 2).mean() + ((dxa - dxb) ** 2).mean()
    expected["gdl_warped_vs_image"] = gdl(warp(xt, ft), xt).item()
    sm = ft.clone().requires_grad_(True)
    smoothness(sm).backward()
    np.save(os.path.join(OUT, "smoothness_grad.npy"), sm.grad.numpy())

    # ResNet generator with CycleGAN's N(0, 0.02) initialisation.
    g = resnet_generator(1, 1, 8, 2)
    for mod in g.modules():
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(mod.weight, 0.0, 0.02)
            nn.init.normal_(mod.bias, 0.0, 0.02)
    g.eval()
    with torch.no_grad():
        out = g.model(xt)
    state = {k: v.contiguous() for k, v in g.state_dict().items()}
    save_file(state, os.path.join(OUT, "resnet_ngf8_blocks2.safetensors"))
    np.save(os.path.join(OUT, "resnet_out.npy"), out.numpy())
    expected["resnet_out_std"] = out.std().item()

    # R's bilinear upsampling (align_corners=False) and its gradient: a
    # doubling, as at power-of-two sizes, and an odd ratio (a 20 px image's
    # bottleneck of 2 px going back up to 5), each on real image values.
    for name, src, size in [("resize_double", (1, 3, 8, 8), (16, 16)),
                            ("resize_odd", (2, 2, 5, 3), (11, 7))]:
        n = int(np.prod(src))
        x = torch.tensor(img[8:24, 8:24].reshape(-1)[:n].reshape(src)).requires_grad_(True)
        out = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        w = torch.tensor(rng.normal(0, 1, size=out.shape).astype(np.float32))
        (out * w).sum().backward()
        np.save(os.path.join(OUT, f"{name}_in.npy"), x.detach().numpy())
        np.save(os.path.join(OUT, f"{name}_weights.npy"), w.numpy())
        np.save(os.path.join(OUT, f"{name}_out.npy"), out.detach().numpy())
        np.save(os.path.join(OUT, f"{name}_grad.npy"), x.grad.numpy())

    with open(os.path.join(OUT, "expected.json"), "w") as fh:
        json.dump(expected, fh, indent=1)
    print(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main()
