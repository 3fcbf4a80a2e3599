"""Reference sizes for medtrans's MUNIT networks (crates/networks/src/munit.rs).

Builds MUNIT's generator in PyTorch as the RegGAN code trains it
(Kid-Liet/Reg-GAN Model/Munit.py, the NVlabs/MUNIT code: UNIT's content
encoder, a style encoder of 7x7 + 4 stride-2 convs + global pooling + 1x1,
a decoder of AdaIN residual blocks and UNIT's up-sampling path, and a
3-layer MLP from the style code to every AdaIN scale and shift), written
from that description, and records parameter counts and shapes (the
decoder takes the MLP's output layer by layer: per AdaIN layer its shifts,
then its scales).

    .venv-fixtures/bin/python scripts/make_munit_fixtures.py
"""
import json
import pathlib
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_unit_fixtures import conv_block, count, encoder, LayerNorm  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "networks" / "munit.json"


def style_encoder(ch, dim, style_dim):
    layers = [conv_block(ch, dim, 7, 1, 3, "none", "relu")]
    d = dim
    for k in range(4):
        nxt = 2 * d if k < 2 else d
        layers.append(conv_block(d, nxt, 4, 2, 1, "none", "relu"))
        d = nxt
    layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(d, style_dim, 1, 1, 0)]
    return nn.Sequential(*layers)


class AdaIN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.weight = None
        self.bias = None

    def forward(self, x):
        n, c, h, w = x.shape
        y = nn.functional.instance_norm(x, eps=1e-5)
        return y * self.weight.view(n, c, 1, 1) + self.bias.view(n, c, 1, 1)


class AdaINBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.c1 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(d, d, 3))
        self.n1 = AdaIN(d)
        self.c2 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(d, d, 3))
        self.n2 = AdaIN(d)

    def forward(self, x):
        r = torch.relu(self.n1(self.c1(x)))
        return x + self.n2(self.c2(r))


class Decoder(nn.Module):
    def __init__(self, d, ch, n_up, n_res):
        super().__init__()
        self.blocks = nn.ModuleList([AdaINBlock(d) for _ in range(n_res)])
        ups = []
        for _ in range(n_up):
            ups += [nn.Upsample(scale_factor=2), conv_block(d, d // 2, 5, 1, 2, "ln", "relu")]
            d //= 2
        ups.append(conv_block(d, ch, 7, 1, 3, "none", "tanh"))
        self.up = nn.Sequential(*ups)

    def forward(self, x, params):
        for m in self.modules():
            if isinstance(m, AdaIN):
                m.bias = params[:, : m.c]
                m.weight = params[:, m.c : 2 * m.c]
                params = params[:, 2 * m.c :]
        for b in self.blocks:
            x = b(x)
        return self.up(x)


def mlp(style_dim, mlp_dim, out):
    return nn.Sequential(nn.Linear(style_dim, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, mlp_dim),
                         nn.ReLU(), nn.Linear(mlp_dim, out))


def main():
    torch.manual_seed(0)
    fx = {"generators": []}
    for dim, n_down, n_res, style_dim, mlp_dim, side in [(64, 2, 4, 8, 256, 64), (4, 2, 1, 8, 8, 64)]:
        enc, d = encoder(1, dim, n_down, n_res)
        sty = style_encoder(1, dim, style_dim)
        dec = Decoder(d, 1, n_down, n_res)
        n_params = n_res * 2 * 2 * d
        m = mlp(style_dim, mlp_dim, n_params)
        x = torch.zeros(2, 1, side, side)
        c, s = enc(x), sty(x)
        y = dec(c, m(s.view(2, -1)))
        fx["generators"].append({
            "dim": dim, "n_downsample": n_down, "n_res": n_res, "style_dim": style_dim,
            "mlp_dim": mlp_dim, "side": side,
            "content_params": count(enc), "style_params": count(sty),
            "decoder_params": count(dec), "mlp_params": count(m), "adain_params": n_params,
            "content_shape": list(c.shape), "style_shape": list(s.shape), "output_shape": list(y.shape),
        })
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fx, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
