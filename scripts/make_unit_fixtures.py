"""Reference values for medtrans's UNIT networks (crates/networks/src/unit.rs).

Builds UNIT's autoencoder and multi-scale discriminator in PyTorch as the
RegGAN code trains them (Kid-Liet/Reg-GAN Model/Unit.py: reflect-padded
convs with bias, instance norm in the encoder and the residual blocks,
UNIT's layer norm in the decoder, LSGAN over 3 scales), written from that
description, and records:
- parameter counts and output shapes for two sizes of each network;
- UNIT's layer norm on a seeded input (per sample over C, H, W; unbiased
  std; (x - mean) / (std + 1e-5); per-channel gamma and beta);
- the multi-scale LSGAN loss and the KL term on seeded score maps.

Run with the fixture venv (scripts/setup_fixture_env.sh):
    .venv-fixtures/bin/python scripts/make_unit_fixtures.py
"""
import json
import pathlib

import numpy as np
import torch
from torch import nn

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "networks" / "unit.json"


def conv_block(cin, cout, k, s, p, norm, act):
    layers = [nn.ReflectionPad2d(p), nn.Conv2d(cin, cout, k, s, bias=True)]
    if norm == "in":
        layers.append(nn.InstanceNorm2d(cout))
    elif norm == "ln":
        layers.append(LayerNorm(cout))
    if act == "relu":
        layers.append(nn.ReLU())
    elif act == "lrelu":
        layers.append(nn.LeakyReLU(0.2))
    elif act == "tanh":
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class LayerNorm(nn.Module):
    def __init__(self, c, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.empty(c).uniform_())
        self.beta = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        n = x.shape[0]
        mean = x.view(n, -1).mean(1).view(n, 1, 1, 1)
        std = x.view(n, -1).std(1).view(n, 1, 1, 1)
        x = (x - mean) / (std + self.eps)
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


class ResBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.body = nn.Sequential(conv_block(d, d, 3, 1, 1, "in", "relu"),
                                  conv_block(d, d, 3, 1, 1, "in", "none"))

    def forward(self, x):
        return x + self.body(x)


def encoder(ch, dim, n_down, n_res):
    layers = [conv_block(ch, dim, 7, 1, 3, "in", "relu")]
    d = dim
    for _ in range(n_down):
        layers.append(conv_block(d, 2 * d, 4, 2, 1, "in", "relu"))
        d *= 2
    layers += [ResBlock(d) for _ in range(n_res)]
    return nn.Sequential(*layers), d


def decoder(d, ch, n_up, n_res):
    layers = [ResBlock(d) for _ in range(n_res)]
    for _ in range(n_up):
        layers += [nn.Upsample(scale_factor=2), conv_block(d, d // 2, 5, 1, 2, "ln", "relu")]
        d //= 2
    layers.append(conv_block(d, ch, 7, 1, 3, "none", "tanh"))
    return nn.Sequential(*layers)


class MsDis(nn.Module):
    def __init__(self, ch, dim, n_layer, scales):
        super().__init__()
        self.down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.cnns = nn.ModuleList()
        for _ in range(scales):
            layers = [conv_block(ch, dim, 4, 2, 1, "none", "lrelu")]
            d = dim
            for _ in range(n_layer - 1):
                layers.append(conv_block(d, 2 * d, 4, 2, 1, "none", "lrelu"))
                d *= 2
            layers.append(nn.Conv2d(d, 1, 1, 1, 0))
            self.cnns.append(nn.Sequential(*layers))

    def forward(self, x):
        out = []
        for cnn in self.cnns:
            out.append(cnn(x))
            x = self.down(x)
        return out


def count(m):
    return sum(p.numel() for p in m.parameters())


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(7)
    fx = {"autoencoders": [], "discriminators": []}
    for dim, n_down, n_res, side in [(64, 2, 4, 64), (8, 2, 1, 32)]:
        enc, d = encoder(1, dim, n_down, n_res)
        dec = decoder(d, 1, n_down, n_res)
        x = torch.zeros(2, 1, side, side)
        h = enc(x)
        fx["autoencoders"].append({
            "dim": dim, "n_downsample": n_down, "n_res": n_res, "side": side,
            "encoder_params": count(enc), "decoder_params": count(dec),
            "latent_shape": list(h.shape), "output_shape": list(dec(h).shape),
        })
    for dim, n_layer, scales, side in [(64, 4, 3, 64), (8, 3, 2, 32)]:
        dis = MsDis(1, dim, n_layer, scales)
        shapes = [list(t.shape) for t in dis(torch.zeros(2, 1, side, side))]
        fx["discriminators"].append({
            "dim": dim, "n_layer": n_layer, "num_scales": scales, "side": side,
            "params": count(dis), "score_shapes": shapes,
        })
    # UNIT's layer norm with set gamma and beta.
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    gamma = np.array([0.25, 0.5, 0.75], np.float32)
    beta = np.array([0.0, 0.1, -0.2], np.float32)
    ln = LayerNorm(3)
    with torch.no_grad():
        ln.gamma.copy_(torch.from_numpy(gamma))
        ln.beta.copy_(torch.from_numpy(beta))
        y = ln(torch.from_numpy(x)).numpy()
    fx["layer_norm"] = {"x": x.ravel().tolist(), "shape": list(x.shape), "gamma": gamma.tolist(),
                        "beta": beta.tolist(), "y": y.ravel().tolist()}
    # Multi-scale LSGAN and KL on seeded maps.
    maps = [rng.normal(size=s).astype(np.float32) for s in [(2, 1, 4, 4), (2, 1, 2, 2), (2, 1, 1, 1)]]
    t = [torch.from_numpy(m) for m in maps]
    fx["ms_lsgan"] = {
        "maps": [m.ravel().tolist() for m in maps],
        "shapes": [list(m.shape) for m in maps],
        "real": float(sum(torch.mean((s - 1) ** 2) for s in t)),
        "fake": float(sum(torch.mean(s ** 2) for s in t)),
        "kl_of_first": float(torch.mean(t[0] ** 2)),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fx, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
