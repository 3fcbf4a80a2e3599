#!/usr/bin/env python3
"""The Table 1 families' training steps, medtrans beside PyTorch on the same
CPU: UNIT, MUNIT and NICE-GAN in C, C+R, NC and NC+R, each built in PyTorch
from the same descriptions as the fixtures (scripts/make_unit_fixtures.py,
make_munit_fixtures.py, make_nice_fixtures.py) with R from
bench/torch_reference.py, and each step computing the terms the family's
file in crates/training/src/families/ lists (the RegGAN code's trainers):
the generator step (its terms, R's correction and smoothness with R), then
the discriminators on translations remade after it. Rounds interleave the
two frameworks so drifts in machine load hit both alike.

Prints a markdown table: parameters (millions, all networks of the mode),
median seconds per step of each, and the ratio medtrans / PyTorch (below 1:
medtrans is faster).

Run from the repository root after `cargo build --release` and
`bash bench/setup.sh` (or the fixture venv):

    python3 bench/families.py --size 64 --rounds 3 --steps 3
    python3 bench/families.py --paper --size 128   # the presets' sizes

By default every family runs at the Table 1 experiment's sizes
(configs/experiments/table1-brats.toml: 16 channels); --paper keeps each
family's defaults (NICE-GAN then needs 128 px).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
MEDTRANS = os.path.join(ROOT, "target", "release", "medtrans")

# The Table 1 experiment's sizes, as --set overrides.
SMALL = {
    "unit": ["options.unit.dim=16", "options.unit.n_res=2", "options.unit.dis_dim=16"],
    "munit": ["options.munit.dim=16", "options.munit.n_res=2", "options.munit.dis_dim=16",
              "options.munit.mlp_dim=64"],
    "nice": ["options.nice.dim=16", "options.nice.n_blocks=2", "options.nice.dis_layers=6",
             "options.nice.dis_dim=8"],
}
MODES = ["c", "c+r", "nc", "nc+r"]


def opts(sets):
    """`options.F.key=value` overrides as a dict of ints."""
    return {s.split("=")[0].split(".")[-1]: int(s.split("=")[1]) for s in sets}


def torch_step_fn(family, mode, size, o):
    """(step(x, y), parameter count) of one family and mode in PyTorch."""
    import torch
    from torch import nn
    from torch_reference import RegNet, smoothness, warp

    bidirect, reg = mode.startswith("c"), mode.endswith("+r")
    l1 = nn.functional.l1_loss
    mse = nn.functional.mse_loss
    nets, g_params, d_params = {}, [], []

    def ms_lsgan(outs, real):
        return sum(mse(o_, torch.full_like(o_, 1.0 if real else 0.0)) for o_ in outs)

    if family == "unit":
        from make_unit_fixtures import MsDis, decoder, encoder
        dim, n_res = o.get("dim", 64), o.get("n_res", 4)
        dd = o.get("dis_dim", 64)
        for k in "AB":
            e, d = encoder(1, dim, 2, n_res)
            nets["enc" + k], nets["dec" + k] = e, decoder(d, 1, 2, n_res)
            g_params += list(nets["enc" + k].parameters()) + list(nets["dec" + k].parameters())
        nets["DB"] = MsDis(1, dd, 4, 3)
        if bidirect:
            nets["DA"] = MsDis(1, dd, 4, 3)

        def translate(x):
            h = nets["encA"](x)
            return nets["decB"](h + torch.randn_like(h))

        def g_loss(x, y):
            h_a = nets["encA"](x)
            fake_b = nets["decB"](h_a + torch.randn_like(h_a))
            h_b = nets["encB"](y)
            z_b = h_b + torch.randn_like(h_b)
            z_a = h_a + torch.randn_like(h_a)
            loss = ms_lsgan(nets["DB"](fake_b), True)
            loss = loss + 10 * (l1(nets["decA"](z_a), x) + l1(nets["decB"](z_b), y))
            h_ar = nets["encB"](fake_b)
            aba = nets["decA"](h_ar + torch.randn_like(h_ar))
            kl = (h_a ** 2).mean() + (h_b ** 2).mean() + (h_ar ** 2).mean()
            cyc = l1(aba, x)
            fake_a = None
            if bidirect:
                fake_a = nets["decA"](z_b)
                loss = loss + ms_lsgan(nets["DA"](fake_a), True)
                h_br = nets["encA"](fake_a)
                bab = nets["decB"](h_br + torch.randn_like(h_br))
                kl = kl + (h_br ** 2).mean()
                cyc = cyc + l1(bab, y)
            return loss + 0.01 * kl + 10 * cyc, fake_b, fake_a
    elif family == "munit":
        from make_munit_fixtures import Decoder, mlp, style_encoder
        from make_unit_fixtures import MsDis, encoder
        dim, n_res = o.get("dim", 64), o.get("n_res", 4)
        style_dim, mlp_dim, dd = 8, o.get("mlp_dim", 256), o.get("dis_dim", 64)
        for k in "AB":
            c, d = encoder(1, dim, 2, n_res)
            nets["content" + k], nets["style" + k] = c, style_encoder(1, dim, style_dim)
            nets["dec" + k] = Decoder(d, 1, 2, n_res)
            nets["mlp" + k] = mlp(style_dim, mlp_dim, n_res * 2 * 2 * d)
            for p in ("content", "style", "dec", "mlp"):
                g_params += list(nets[p + k].parameters())
        nets["DB"] = MsDis(1, dd, 4, 3)
        if bidirect:
            nets["DA"] = MsDis(1, dd, 4, 3)

        def decode(k, c, s):
            return nets["dec" + k](c, nets["mlp" + k](s.flatten(1)))

        def translate(x):
            return decode("B", nets["contentA"](x), torch.randn(x.shape[0], style_dim, 1, 1))

        def g_loss(x, y):
            c_a, c_b = nets["contentA"](x), nets["contentB"](y)
            s_a_rand = torch.randn(x.shape[0], style_dim, 1, 1)
            s_b_rand = torch.randn(x.shape[0], style_dim, 1, 1)
            s_a, s_b = nets["styleA"](x), nets["styleB"](y)
            fake_b = decode("B", c_a, s_b_rand)
            fake_a = decode("A", c_b, s_a_rand)
            # munit.rs: A's style back from B -> A and A's content back
            # from A -> B in every mode; in C also B's, and D_A on B -> A.
            loss = ms_lsgan(nets["DB"](fake_b), True)
            loss = loss + 10 * (l1(decode("A", c_a, s_a), x) + l1(decode("B", c_b, s_b), y))
            loss = loss + l1(nets["styleA"](fake_a), s_a_rand) + l1(nets["contentB"](fake_b), c_a)
            if bidirect:
                loss = loss + ms_lsgan(nets["DA"](fake_a), True)
                loss = loss + l1(nets["styleB"](fake_b), s_b_rand) + l1(nets["contentA"](fake_a), c_b)
            return loss, fake_b, fake_a if bidirect else None
    else:
        from make_nice_fixtures import Dis, Gen
        dim, nb, L = o.get("dim", 64), o.get("n_blocks", 7), o.get("dis_layers", 7)
        if bidirect:
            nets["DA"], nets["DB"] = Dis(dim, L, False, 4), Dis(dim, L, False, 4)
            nets["G"], nets["F"] = Gen(dim, nb, size, False, False), Gen(dim, nb, size, False, False)
            g_params += list(nets["G"].parameters()) + list(nets["F"].parameters())
        else:
            nets["DB"] = Dis(o.get("dis_dim", 32), L, True, 3)
            nets["G"] = Gen(dim, nb, size, False, True)
            g_params += list(nets["G"].parameters())

        def translate(x):
            return nets["G"](nets["DA"].enc(x)[0] if bidirect else x)

        def g_loss(x, y):
            if not bidirect:
                fake_b = nets["G"](x)
                return ms_lsgan(list(nets["DB"](fake_b)), True), fake_b, None
            with torch.no_grad():
                z_a, z_b = nets["DA"].enc(x)[0], nets["DB"].enc(y)[0]
            fake_b, fake_a = nets["G"](z_a), nets["F"](z_b)
            sb, sa = nets["DB"](fake_b), nets["DA"](fake_a)
            loss = ms_lsgan(list(sb), True) + ms_lsgan(list(sa), True)
            zb_f, za_f = nets["DB"].enc(fake_b)[0], nets["DA"].enc(fake_a)[0]
            loss = loss + 10 * (l1(nets["F"](zb_f), x) + l1(nets["G"](za_f), y))
            loss = loss + 10 * (l1(nets["F"](z_a), x) + l1(nets["G"](z_b), y))
            return loss, fake_b, fake_a
    for k in ("DA", "DB"):
        if k in nets:
            d_params += list(nets[k].parameters())
    if reg:
        nets["R"] = RegNet(size)
        g_params += list(nets["R"].parameters())
    opt_g = torch.optim.Adam(g_params, lr=1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d_params, lr=1e-4, betas=(0.5, 0.999))

    def step(x, y):
        opt_g.zero_grad()
        loss, fake_b, fake_a = g_loss(x, y)
        if reg:
            flow = nets["R"](fake_b, y)
            loss = loss + 20 * l1(warp(fake_b, flow), y) + 10 * smoothness(flow)
        loss.backward()
        opt_g.step()
        opt_d.zero_grad()
        # As medtrans' presets (train.regenerate_fake): A -> B remade after
        # G's step; B -> A as G's step made it.
        with torch.no_grad():
            fake_b = translate(x)
        d = ms_lsgan(list(nets["DB"](y)), True) + ms_lsgan(list(nets["DB"](fake_b)), False)
        if fake_a is not None:
            d = d + ms_lsgan(list(nets["DA"](x)), True) + ms_lsgan(list(nets["DA"](fake_a.detach())), False)
        d.backward()
        opt_d.step()

    n_params = sum(p.numel() for n in nets.values() for p in n.parameters())
    return step, n_params


def torch_run(family, mode, size, sets, steps, warmup):
    import torch
    torch.manual_seed(0)
    step, n_params = torch_step_fn(family, mode, size, opts(sets))
    x, y = torch.rand(1, 1, size, size) * 2 - 1, torch.rand(1, 1, size, size) * 2 - 1
    for _ in range(warmup):
        step(x, y)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step(x, y)
        times.append(time.perf_counter() - t)
    print(json.dumps({"s_per_step": statistics.median(times), "params": n_params}))


def medtrans_run(family, mode, size, sets, steps, warmup):
    cmd = [MEDTRANS, "bench", "--json", "--size", str(size), "--steps", str(steps),
           "--warmup", str(warmup), "--mode", f"{family}-{mode}"]
    for s in sets:
        cmd += ["--set", s]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    params = sum(float(n.split("(")[1].rstrip("M)")) for n in r["networks"]) * 1e6
    return r["s_per_step"], params


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--paper", action="store_true", help="each family's default sizes")
    p.add_argument("--family", action="append", choices=["unit", "munit", "nice"])
    p.add_argument("--mode", action="append", choices=MODES)
    p.add_argument("--json", help="write every measurement here")
    p.add_argument("--torch-one", nargs=2, metavar=("FAMILY", "MODE"), help=argparse.SUPPRESS)
    p.add_argument("--sets", default="", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.torch_one:
        sets = [s for s in a.sets.split(";") if s]
        return torch_run(*a.torch_one, a.size, sets, a.steps, a.warmup)
    cells = [(f, m) for f in (a.family or ["unit", "munit", "nice"]) for m in (a.mode or MODES)]
    raw = {f"{f}-{m}": {"medtrans": [], "pytorch": []} for f, m in cells}
    params = {}
    for r in range(a.rounds):
        for f, m in cells:
            sets = [] if a.paper else SMALL[f]
            t, n = medtrans_run(f, m, a.size, sets, a.steps, a.warmup)
            raw[f"{f}-{m}"]["medtrans"].append(t)
            out = subprocess.run(
                [sys.executable, __file__, "--torch-one", f, m, "--size", str(a.size), "--steps",
                 str(a.steps), "--warmup", str(a.warmup), "--sets", ";".join(sets)],
                capture_output=True, text=True, check=True).stdout
            j = json.loads(out.strip().splitlines()[-1])
            raw[f"{f}-{m}"]["pytorch"].append(j["s_per_step"])
            params[f"{f}-{m}"] = (n, j["params"])
            print(f"round {r + 1}: {f}-{m} medtrans {t:.3f} s, PyTorch {j['s_per_step']:.3f} s",
                  file=sys.stderr)
    print("| mode | params medtrans (M) | params PyTorch (M) | medtrans s/step | PyTorch s/step | ratio |")
    print("|---|---|---|---|---|---|")
    for key, v in raw.items():
        mt, pt = statistics.median(v["medtrans"]), statistics.median(v["pytorch"])
        nm, npt = params[key]
        print(f"| {key} | {nm / 1e6:.2f} | {npt / 1e6:.2f} | {mt:.3f} | {pt:.3f} | {mt / pt:.2f} |")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"size": a.size, "paper": a.paper, "raw": raw, "params": params}, fh, indent=1)


if __name__ == "__main__":
    main()
