"""Reference values for medtrans's NICE-GAN networks (crates/networks/src/nice.rs).

Builds NICE-GAN's networks in PyTorch as the RegGAN code trains them
(Kid-Liet/Reg-GAN Model/NiceGan.py), written from this description:
- encoder: pad 1, spectral-norm 4x4 stride-2 conv (bias), leaky ReLU 0.2,
  twice (dim, then 2 dim channels); CAM: a spectral-norm linear 4 dim -> 1
  (no bias) on [avg-pool, max-pool]; the features doubled along channels,
  times that linear's raw weight, a 1x1 conv back to 2 dim, times a learnt
  scalar (0 at first) plus the features, leaky ReLU;
- discriminator (n_layers L): local head of L - 6 stride-2 convs, one
  stride-1 conv, a 4x4 conv to 1 channel; global head of 2 more stride-2
  convs from the local head's down-sampled features, one stride-1 conv,
  a k x k conv to 1 (k 4 in C, 3 in NC with replicate padding);
- decoder: pad 1, 3x3 conv 2 dim -> 4 dim, ILN, ReLU; an MLP (two
  linears, no bias, ReLU) to gamma and beta (linears, no bias); AdaILN
  residual blocks; twice: 3x3 conv (no bias) halving channels, ILN, ReLU,
  1x1 conv x4 channels, pixel shuffle 2, ILN, ReLU; pad 3, 7x7 conv to 1
  (no bias), tanh. The MLP reads all (side/4)^2 positions: the reference's
  input size formula equals this at its 256 px with dim 64 only.

Records parameter counts (parameters and, apart, spectral norm's u and v
buffers, which medtrans keeps as gradient-free parameters) and output
shapes of each network at two sizes; ILN and AdaILN's normalisation on a
seeded input; one spectral-norm power iteration and sigma on a seeded
matrix; pixel shuffle on a ramp.

Run with the fixture venv (scripts/setup_fixture_env.sh):
    .venv-fixtures/bin/python scripts/make_nice_fixtures.py
"""
import json
import pathlib

import numpy as np
import torch
from torch import nn
from torch.nn.utils import spectral_norm as sn

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "networks" / "nice.json"


def pad(p, replicate):
    return nn.ReplicationPad2d(p) if replicate else nn.ReflectionPad2d(p)


def sn_conv(cin, cout, k, s, bias, replicate):
    return [pad(1, replicate), sn(nn.Conv2d(cin, cout, k, s, 0, bias=bias))]


class Encoder(nn.Module):
    def __init__(self, dim, replicate):
        super().__init__()
        self.body = nn.Sequential(*sn_conv(1, dim, 4, 2, True, replicate), nn.LeakyReLU(0.2),
                                  *sn_conv(dim, 2 * dim, 4, 2, True, replicate), nn.LeakyReLU(0.2))
        self.fc = sn(nn.Linear(4 * dim, 1, bias=False))
        self.conv1x1 = nn.Conv2d(4 * dim, 2 * dim, 1, 1, bias=True)
        self.lamda = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        x = self.body(x)
        pooled = torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1)
        cam = self.fc(pooled)
        h = torch.cat([x, x], 1) * self.fc.weight_orig.view(1, -1, 1, 1)
        return nn.functional.leaky_relu(self.lamda * self.conv1x1(h) + x, 0.2), cam


class Dis(nn.Module):
    def __init__(self, dim, n_layers, replicate, k_global):
        super().__init__()
        self.enc = Encoder(dim, replicate)

        def down(i_from, i_to):
            layers = []
            for i in range(i_from, i_to):
                m = dim * 2 ** (i - 1)
                layers += [*sn_conv(m, 2 * m, 4, 2, True, replicate), nn.LeakyReLU(0.2)]
            return nn.Sequential(*layers)

        def last(m):
            return nn.Sequential(*sn_conv(m, 2 * m, 4, 1, True, replicate), nn.LeakyReLU(0.2))

        L = n_layers
        self.l_down = down(2, L - 4)
        self.l_last = last(dim * 2 ** (L - 5))
        self.l_out = nn.Sequential(*sn_conv(dim * 2 ** (L - 4), 1, 4, 1, False, replicate))
        self.g_down = down(L - 4, L - 2)
        self.g_last = last(dim * 2 ** (L - 3))
        self.g_out = nn.Sequential(*sn_conv(dim * 2 ** (L - 2), 1, k_global, 1, False, replicate))

    def forward(self, x):
        z, cam = self.enc(x)
        x0 = self.l_down(z)
        x1 = self.g_down(x0)
        return self.l_out(self.l_last(x0)), self.g_out(self.g_last(x1)), cam


def softmax_mix(x, rho):
    in_mean, in_var = x.mean((2, 3), keepdim=True), x.var((2, 3), keepdim=True)
    ln_mean, ln_var = x.mean((1, 2, 3), keepdim=True), x.var((1, 2, 3), keepdim=True)
    r = torch.softmax(rho, 2)
    out_in = (x - in_mean) / torch.sqrt(in_var + 1e-5)
    out_ln = (x - ln_mean) / torch.sqrt(ln_var + 1e-5)
    return r[:, :, 0].view(1, -1, 1, 1) * out_in + r[:, :, 1].view(1, -1, 1, 1) * out_ln


class ILN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.rho = nn.Parameter(torch.tensor([[1.0, 3.2]]).repeat(c, 1).unsqueeze(0))
        self.gamma = nn.Parameter(torch.ones(1, c, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x):
        return softmax_mix(x, self.rho) * self.gamma + self.beta


class AdaBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, 1, 0, bias=False)
        self.c2 = nn.Conv2d(c, c, 3, 1, 0, bias=False)
        self.rho1 = nn.Parameter(torch.tensor([[3.2, 1.0]]).repeat(c, 1).unsqueeze(0))
        self.rho2 = nn.Parameter(torch.tensor([[3.2, 1.0]]).repeat(c, 1).unsqueeze(0))

    def forward(self, x, g, b):
        h = self.c1(nn.functional.pad(x, (1, 1, 1, 1), mode="reflect"))
        h = torch.relu(softmax_mix(h, self.rho1) * g + b)
        h = self.c2(nn.functional.pad(h, (1, 1, 1, 1), mode="reflect"))
        return softmax_mix(h, self.rho2) * g + b + x


class Gen(nn.Module):
    def __init__(self, dim, n_blocks, side, light, own_encoder):
        super().__init__()
        c = 4 * dim
        rep = own_encoder
        self.enc = Encoder(dim, True) if own_encoder else None
        self.up0 = nn.Sequential(pad(1, rep), nn.Conv2d(2 * dim, c, 3, 1, 0, bias=True), ILN(c), nn.ReLU())
        self.light = light
        mlp_in = c if light else (side // 4) ** 2 * c
        self.mlp = nn.Sequential(nn.Linear(mlp_in, c, bias=False), nn.ReLU(),
                                 nn.Linear(c, c, bias=False), nn.ReLU())
        self.gamma = nn.Linear(c, c, bias=False)
        self.beta = nn.Linear(c, c, bias=False)
        self.blocks = nn.ModuleList([AdaBlock(c) for _ in range(n_blocks)])
        up = []
        for m in [c, c // 2]:
            up += [nn.ReflectionPad2d(1), nn.Conv2d(m, m // 2, 3, 1, 0, bias=False), ILN(m // 2), nn.ReLU(),
                   nn.Conv2d(m // 2, 2 * m, 1, 1, bias=True), nn.PixelShuffle(2), ILN(m // 2), nn.ReLU()]
        up += [pad(3, rep), nn.Conv2d(dim, 1, 7, 1, 0, bias=False), nn.Tanh()]
        self.up = nn.Sequential(*up)

    def forward(self, x):
        z = self.enc(x)[0] if self.enc is not None else x
        x = self.up0(z)
        f = x.mean((2, 3)) if self.light else x.flatten(1)
        f = self.mlp(f)
        g, b = self.gamma(f)[:, :, None, None], self.beta(f)[:, :, None, None]
        for blk in self.blocks:
            x = blk(x, g, b)
        return self.up(x)


def counts(m):
    params = sum(p.numel() for p in m.parameters())
    sn_buffers = sum(b.numel() for n, b in m.named_buffers() if n.endswith("_u") or n.endswith("_v"))
    return params, sn_buffers


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(11)
    fx = {"discriminators": [], "generators": []}
    for dim, L, rep, k, side in [(64, 7, False, 4, 128), (8, 6, False, 4, 64), (32, 7, True, 3, 64),
                                 (4, 6, True, 3, 32)]:
        d = Dis(dim, L, rep, k)
        p, b = counts(d)
        outs = d(torch.zeros(2, 1, side, side))
        fx["discriminators"].append({
            "dim": dim, "n_layers": L, "replicate": rep, "global_kernel": k, "side": side,
            "params": p, "sn_buffers": b, "shapes": [list(o.shape) for o in outs],
            "encoder_params": counts(d.enc)[0], "encoder_sn_buffers": counts(d.enc)[1],
        })
    for dim, nb, side, light, own in [(64, 7, 64, False, False), (8, 2, 32, False, True),
                                      (8, 1, 32, True, False)]:
        g = Gen(dim, nb, side, light, own)
        p, b = counts(g)
        x = torch.zeros(2, 1, side, side) if own else torch.zeros(2, 2 * dim, side // 4, side // 4)
        fx["generators"].append({
            "dim": dim, "n_blocks": nb, "side": side, "light": light, "own_encoder": own,
            "params": p, "sn_buffers": b, "output_shape": list(g(x).shape),
        })
    # ILN (default rho 1 : 3.2, set gamma and beta) and AdaILN's mix with a set rho.
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    iln = ILN(3)
    gamma = np.array([0.5, 1.0, 1.5], np.float32)
    beta = np.array([0.1, 0.0, -0.1], np.float32)
    rho = np.array([[0.3, -0.2], [1.0, 2.0], [-1.0, 0.5]], np.float32)
    with torch.no_grad():
        iln.gamma.copy_(torch.from_numpy(gamma).view(1, 3, 1, 1))
        iln.beta.copy_(torch.from_numpy(beta).view(1, 3, 1, 1))
        y_iln = iln(torch.from_numpy(x)).numpy()
        y_mix = softmax_mix(torch.from_numpy(x), torch.from_numpy(rho).unsqueeze(0)).numpy()
    fx["iln"] = {"x": x.ravel().tolist(), "shape": list(x.shape), "gamma": gamma.tolist(),
                 "beta": beta.tolist(), "y": y_iln.ravel().tolist(),
                 "rho": rho.ravel().tolist(), "mix": y_mix.ravel().tolist()}
    # One spectral-norm power iteration, as PyTorch's training forward does it.
    w = rng.normal(size=(3, 2, 2, 2)).astype(np.float32)
    conv = nn.Conv2d(2, 3, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
    conv = sn(conv)
    u0 = conv.weight_u.detach().clone().numpy()
    conv.train()
    with torch.no_grad():
        conv(torch.zeros(1, 2, 2, 2))
    u1, v1 = conv.weight_u.numpy(), conv.weight_v.numpy()
    mat = torch.from_numpy(w).reshape(3, -1)
    sigma = float(torch.dot(torch.from_numpy(u1), mat @ torch.from_numpy(v1)))
    fx["spectral_norm"] = {"w": w.ravel().tolist(), "rows": 3, "cols": 8, "u0": u0.tolist(),
                           "u1": u1.tolist(), "v1": v1.tolist(), "sigma": sigma,
                           "normalized_w": (conv.weight.detach().numpy()).ravel().tolist()}
    ramp = torch.arange(2 * 8 * 2 * 3, dtype=torch.float32).reshape(2, 8, 2, 3)
    fx["pixel_shuffle"] = {"shape": [2, 8, 2, 3], "y": nn.PixelShuffle(2)(ramp).numpy().ravel().tolist()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fx, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
