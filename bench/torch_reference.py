"""PyTorch reference of medtrans' networks and training steps, for speed
comparisons (bench/run.py) and for the test fixtures
(scripts/make_torch_fixtures.py).

Layer for layer the same as medtrans: CycleGAN's ResnetGenerator
(InstanceNorm, reflection padding), the PatchGAN discriminator, RegGAN's
registration U-Net R and its bilinear spatial transformer. The steps are
medtrans' Pix2Pix, NC, RegGAN (NC+R), CycleGAN (C) and C+R steps with the
presets' loss weights, Adam as configured there, batch 1, float32.

  python bench/torch_reference.py train --mode reggan --size 128 --steps 3
  python bench/torch_reference.py train --mode cycle --size 256 --device cuda
  python bench/torch_reference.py infer --size 256 --slices 32 --batch 8
  python bench/torch_reference.py translate --input T1.nii.gz --output out.nii.gz

On CUDA (--device cuda) the timings synchronise the GPU, TF32 is off (true
fp32, as medtrans computes) and cudnn.benchmark is on; --amp runs the
generator steps under autocast (bf16), beside medtrans' mixed precision.
Each command prints one JSON line with its timings and the peak RSS.
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def warp(src, flow):
    """RegGAN's Transformer_2D: flow channel 0 = rows, 1 = columns, in px."""
    _, _, h, w = flow.shape
    rows, cols = torch.meshgrid(torch.arange(h, device=flow.device),
                                torch.arange(w, device=flow.device), indexing="ij")
    grid = torch.stack([rows, cols]).unsqueeze(0).float()
    loc = grid + flow
    loc = torch.stack(
        [2 * (loc[:, 0] / (h - 1) - 0.5), 2 * (loc[:, 1] / (w - 1) - 0.5)], dim=1
    )
    loc = loc.permute(0, 2, 3, 1)[..., [1, 0]]
    return F.grid_sample(src, loc, mode="bilinear", padding_mode="border", align_corners=True)


def smoothness(flow):
    dy = flow[:, :, 1:, :] - flow[:, :, :-1, :]
    dx = flow[:, :, :, 1:] - flow[:, :, :, :-1]
    return (dy * dy).mean() + (dx * dx).mean()


class ResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim),
        )

    def forward(self, x):
        return x + self.conv_block(x)


def resnet_generator(cin, cout, ngf, n_blocks):
    """Layer for layer (and index for index) CycleGAN's ResnetGenerator with
    InstanceNorm and no dropout."""
    m = [nn.ReflectionPad2d(3), nn.Conv2d(cin, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
    for i in range(2):
        f = ngf * 2**i
        m += [nn.Conv2d(f, 2 * f, 3, stride=2, padding=1), nn.InstanceNorm2d(2 * f), nn.ReLU(True)]
    m += [ResnetBlock(4 * ngf) for _ in range(n_blocks)]
    for i in range(2):
        f = ngf * 2 ** (2 - i)
        m += [
            nn.ConvTranspose2d(f, f // 2, 3, stride=2, padding=1, output_padding=1),
            nn.InstanceNorm2d(f // 2),
            nn.ReLU(True),
        ]
    m += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, cout, 7), nn.Tanh()]
    net = nn.Sequential(*m)
    holder = nn.Module()
    holder.model = net
    holder.forward = net.forward
    return holder


class PatchGAN(nn.Module):
    """70x70 PatchGAN; `per_image` averages the patch scores (RegGAN)."""

    def __init__(self, cin, ndf, per_image):
        super().__init__()
        plan = [(cin, ndf, 2), (ndf, 2 * ndf, 2), (2 * ndf, 4 * ndf, 2), (4 * ndf, 8 * ndf, 1),
                (8 * ndf, 1, 1)]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 4, stride=s, padding=1) for i, o, s in plan)
        self.norms = nn.ModuleList(nn.InstanceNorm2d(o) for _, o, _ in plan[1:4])
        self.per_image = per_image

    def forward(self, x):
        h = F.leaky_relu(self.convs[0](x), 0.2)
        for c, n in zip(self.convs[1:4], self.norms):
            h = F.leaky_relu(n(c(h)), 0.2)
        out = self.convs[4](h)
        return out.mean(dim=(2, 3), keepdim=True) if self.per_image else out


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3), nn.Conv2d(c, c, 3)
        self.norm1, self.norm2 = nn.InstanceNorm2d(c), nn.InstanceNorm2d(c)

    def forward(self, x):
        h = F.relu(self.norm1(self.conv1(F.pad(x, (1, 1, 1, 1), mode="reflect"))))
        return x + self.norm2(self.conv2(F.pad(h, (1, 1, 1, 1), mode="reflect")))


DOWN = [32, 64, 64, 64, 64, 64, 64]


def reg_levels(size, max_levels=7):
    return max(1, min(int(math.log2(max(size, 4))) - 1, max_levels))


class RegNet(nn.Module):
    """RegGAN's registration U-Net R as medtrans builds it."""

    def __init__(self, size):
        super().__init__()
        levels = reg_levels(size)
        down = DOWN[:levels]
        same = lambda i, o, k: nn.Conv2d(i, o, k, padding=k // 2)  # noqa: E731
        self.down_convs, self.down_res = nn.ModuleList(), nn.ModuleList()
        cin = 2
        for c in down:
            self.down_convs.append(same(cin, c, 3))
            self.down_res.append(ResBlock(c))
            cin = c
        d = down[-1]
        self.b_in, self.b_out = same(d, 2 * d, 1), same(2 * d, d, 1)
        self.bottleneck = nn.ModuleList(ResBlock(2 * d) for _ in range(3))
        self.up = nn.ModuleList()
        ch = d
        for j in range(levels):
            out = 32 if j == levels - 1 else 64
            self.up.append(same(ch + down[levels - 1 - j], out, 3))
            ch = out
        self.refine, self.refine_conv = ResBlock(32), same(32, 32, 1)
        self.output = same(32, 2, 3)
        nn.init.normal_(self.output.weight, 0.0, 1e-5)
        nn.init.zeros_(self.output.bias)

    def forward(self, moving, fixed):
        h = torch.cat([moving, fixed], 1)
        skips = []
        for conv, res in zip(self.down_convs, self.down_res):
            h = res(F.leaky_relu(conv(h), 0.2))
            skips.append(h)
            h = F.max_pool2d(h, 2)
        h = F.leaky_relu(self.b_in(h), 0.2)
        for b in self.bottleneck:
            h = b(h)
        h = F.leaky_relu(self.b_out(h), 0.2)
        for conv in self.up:
            skip = skips.pop()
            up = F.interpolate(h, size=skip.shape[2:], mode="bilinear", align_corners=False)
            h = F.leaky_relu(conv(torch.cat([up, skip], 1)), 0.2)
        h = F.leaky_relu(self.refine_conv(self.refine(h)), 0.2)
        return self.output(h)


def lsgan(pred, real):
    return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))


def adam(net, lr=1e-4):
    return torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999), weight_decay=1e-4)


class Pix2Pix:
    """medtrans' pix2pix preset: conditional PatchGAN, LSGAN, L1 x100,
    D's real + fake halved."""

    def __init__(self, a):
        self.g = resnet_generator(1, 1, a.ngf, a.blocks)
        self.d = PatchGAN(2, a.ndf, per_image=False)
        self.og, self.od = adam(self.g), adam(self.d)

    def step(self, x, y):
        fake = self.g(x)
        loss_g = lsgan(self.d(torch.cat([x, fake], 1)), True) + 100 * F.l1_loss(fake, y)
        self.og.zero_grad(set_to_none=True)
        loss_g.backward()
        self.og.step()
        fake = fake.detach()
        loss_d = 0.5 * (lsgan(self.d(torch.cat([x, y], 1)), True)
                        + lsgan(self.d(torch.cat([x, fake], 1)), False))
        self.od.zero_grad(set_to_none=True)
        loss_d.backward()
        self.od.step()


def d_step_on_fresh_fake(model, x, y):
    """The RegGAN code's D step (NC and NC+R): a fresh G(x) after G's step,
    real + fake loss not halved."""
    with torch.no_grad():
        fake = model.g(x)
    loss_d = lsgan(model.d(y), True) + lsgan(model.d(fake), False)
    model.od.zero_grad(set_to_none=True)
    loss_d.backward()
    model.od.step()


class NC:
    """medtrans' nc preset: adversarial loss only, per-image PatchGAN, D on
    a fresh G(x) with its real + fake loss not halved."""

    def __init__(self, a):
        self.g = resnet_generator(1, 1, a.ngf, a.blocks)
        self.d = PatchGAN(1, a.ndf, per_image=True)
        self.og, self.od = adam(self.g), adam(self.d)

    def step(self, x, y):
        loss = lsgan(self.d(self.g(x)), True)
        self.og.zero_grad(set_to_none=True)
        loss.backward()
        self.og.step()
        d_step_on_fresh_fake(self, x, y)


class ImagePool:
    """CycleGAN's pool of 50 earlier fakes."""

    def __init__(self, size=50):
        self.size, self.images = size, []

    def query(self, img):
        if len(self.images) < self.size:
            self.images.append(img)
            return img
        if torch.rand(1).item() > 0.5:
            k = int(torch.randint(0, self.size, (1,)).item())
            old, self.images[k] = self.images[k], img
            return old
        return img


class Cycle:
    """medtrans' cycle preset (C): G, F, D_A, D_B (per-image), cycle x10,
    pools of 50; with `reg`, C+R: R on G(x) -> y, correction x20,
    smoothness x10."""

    def __init__(self, a, reg=False):
        self.g = resnet_generator(1, 1, a.ngf, a.blocks)
        self.f = resnet_generator(1, 1, a.ngf, a.blocks)
        self.d_a = PatchGAN(1, a.ndf, per_image=True)
        self.d_b = PatchGAN(1, a.ndf, per_image=True)
        self.r = RegNet(a.size) if reg else None
        gens = list(self.g.parameters()) + list(self.f.parameters())
        self.og = torch.optim.Adam(gens, lr=1e-4, betas=(0.5, 0.999), weight_decay=1e-4)
        self.od = torch.optim.Adam(list(self.d_a.parameters()) + list(self.d_b.parameters()),
                                   lr=1e-4, betas=(0.5, 0.999), weight_decay=1e-4)
        self.orr = adam(self.r) if reg else None
        self.pool_a, self.pool_b = ImagePool(), ImagePool()

    def step(self, x, y):
        self.og.zero_grad(set_to_none=True)
        fake_b, fake_a = self.g(x), self.f(y)
        loss = (lsgan(self.d_b(fake_b), True) + lsgan(self.d_a(fake_a), True)
                + 10 * F.l1_loss(self.f(fake_b), x) + 10 * F.l1_loss(self.g(fake_a), y))
        if self.r is not None:
            self.orr.zero_grad(set_to_none=True)
            field = self.r(fake_b, y)
            loss = loss + 20 * F.l1_loss(warp(fake_b, field), y) + 10 * smoothness(field)
        loss.backward()
        self.og.step()
        if self.r is not None:
            self.orr.step()
        fb = self.pool_b.query(fake_b.detach())
        fa = self.pool_a.query(fake_a.detach())
        loss_d = (lsgan(self.d_b(y), True) + lsgan(self.d_b(fb), False)
                  + lsgan(self.d_a(x), True) + lsgan(self.d_a(fa), False))
        self.od.zero_grad(set_to_none=True)
        loss_d.backward()
        self.od.step()


class RegGAN:
    """medtrans' reggan preset (NC+R): per-image PatchGAN, LSGAN,
    correction x20, smoothness x10; R and G step together, then D on a
    fresh G(x)."""

    def __init__(self, a):
        self.g = resnet_generator(1, 1, a.ngf, a.blocks)
        self.d = PatchGAN(1, a.ndf, per_image=True)
        self.r = RegNet(a.size)
        self.og, self.od, self.orr = adam(self.g), adam(self.d), adam(self.r)

    def step(self, x, y):
        self.og.zero_grad(set_to_none=True)
        self.orr.zero_grad(set_to_none=True)
        fake = self.g(x)
        field = self.r(fake, y)
        loss = (lsgan(self.d(fake), True) + 20 * F.l1_loss(warp(fake, field), y)
                + 10 * smoothness(field))
        loss.backward()
        self.og.step()
        self.orr.step()
        d_step_on_fresh_fake(self, x, y)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


MODES = {
    "pix2pix": Pix2Pix,
    "nc": NC,
    "reggan": RegGAN,
    "cycle": Cycle,
    "cycle+reg": lambda a: Cycle(a, reg=True),
}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def on_device(model, device):
    for name in ["g", "f", "d", "d_a", "d_b", "r"]:
        net = getattr(model, name, None)
        if net is not None:
            net.to(device)
    # The optimisers hold the same (moved) parameters; Adam makes its state
    # at the first step, on their device.
    return model


# Operators that allocate or relabel memory without running a kernel.
# (The profiler's markers, which optimizers emit, are not kernels either.)
NO_KERNEL = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided",
             "lift_fresh", "resize_", "set_", "detach", "_record_function_enter_new",
             "_record_function_exit"}


def count_ops(fn, host_tensors=()):
    """The operators PyTorch dispatches to its device kernels while fn()
    runs, by name (views and bare allocations left out). On CUDA each is at
    least one kernel launch: cuDNN's convolutions and their backward may
    launch a few, a foreach op one per chunk of tensors. So the total is a
    lower bound of CUDA's launches, to set beside medtrans' counted ones.
    Ops on `host_tensors` alone (Adam's step counters, which stay on the
    host on CUDA too) are left out."""
    from collections import Counter
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    counts = Counter()
    host = {id(t) for t in host_tensors}

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
            on_host = bool(tensors) and all(id(t) in host for t in tensors)
            if not func.is_view and name not in NO_KERNEL and not on_host:
                counts[name] += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return counts


def ops_summary(counts, n=10):
    return {"ops": sum(counts.values()), "top_ops": counts.most_common(n)}


def cmd_train(a):
    torch.manual_seed(0)
    device = torch.device(a.device)
    model = on_device(MODES[a.mode](a), device)
    x = torch.rand(1, 1, a.size, a.size, device=device) * 2 - 1
    y = torch.rand(1, 1, a.size, a.size, device=device) * 2 - 1
    step = model.step
    if a.amp:
        def step(x, y):
            with torch.autocast(device.type, dtype={"bf16": torch.bfloat16,
                                                    "f16": torch.float16}[a.amp]):
                model.step(x, y)
    t = time.perf_counter()
    step(x, y)  # warm-up, untimed
    sync(device)
    first = time.perf_counter() - t
    for _ in range(a.warmup - 1):
        step(x, y)
    sync(device)
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        step(x, y)
        sync(device)
        times.append(time.perf_counter() - t)
    result = {"s_per_step": statistics.median(times), "times": times, "first_step_s": first}
    if a.profile:
        # Where PyTorch's step goes, op by op (self time, summed over the
        # profiled steps), and its backward and optimiser as wholes.
        from torch.profiler import ProfilerActivity, profile
        n = a.steps
        t = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(n):
                step(x, y)
        wall = (time.perf_counter() - t) / n
        ka = prof.key_averages()
        ms = lambda us: us / 1000.0 / n
        top = sorted(ka, key=lambda e: e.self_cpu_time_total, reverse=True)[: a.profile]
        result["profile"] = {
            "steps": n,
            "wall_ms_per_step": wall * 1000.0,
            "optimizer_ms_per_step": ms(sum(e.cpu_time_total for e in ka
                                           if e.key.startswith("Optimizer.step"))),
            "backward_ms_per_step": ms(sum(e.self_cpu_time_total for e in ka
                                          if "Backward" in e.key or e.key.endswith("_backward"))),
            "top_ops": [{"op": e.key, "self_ms_per_step": ms(e.self_cpu_time_total),
                         "calls_per_step": e.count / n} for e in top],
        }
    if a.count_ops:
        # Adam as it runs on CUDA, where PyTorch picks its foreach kernels
        # (one launch per op for many tensors) by default.
        opts = [o for o in vars(model).values() if isinstance(o, torch.optim.Optimizer)]
        for opt in opts:
            for group in opt.param_groups:
                group["foreach"] = True
        steps = [st["step"] for o in opts for st in o.state.values() if "step" in st]
        counted = ops_summary(count_ops(lambda: step(x, y), steps))
        result.update(ops_per_step=counted["ops"], top_ops=counted["top_ops"])
    return result


def cmd_infer(a):
    torch.manual_seed(0)
    device = torch.device(a.device)
    g = resnet_generator(1, 1, a.ngf, a.blocks).eval().to(device)
    # Slices start on the host and come back to it, as in medtrans.
    xs = torch.rand(a.slices, 1, a.size, a.size) * 2 - 1
    with torch.inference_mode():
        g(xs[: a.batch].to(device)).cpu()
        sync(device)
        t = time.perf_counter()
        for i in range(0, a.slices, a.batch):
            g(xs[i: i + a.batch].to(device)).cpu()
        sync(device)
        s = time.perf_counter() - t
        result = {"slices_per_s": a.slices / s, "seconds": s}
        if a.count_ops:
            counted = ops_summary(count_ops(lambda: g(xs[: a.batch].to(device)).cpu()))
            result.update(ops_per_batch=counted["ops"], top_ops=counted["top_ops"])
    return result


def cmd_translate(a):
    """Volume in, volume out, as `medtrans translate` does: read, scale by
    the 0.5/99.5 percentiles, fit each axial slice into the model's square,
    G in batches, undo the fit and the scaling, write with the same affine."""
    import nibabel as nib
    import numpy as np

    t0 = time.perf_counter()
    torch.manual_seed(0)
    device = torch.device(a.device)
    g = resnet_generator(1, 1, a.ngf, a.blocks).eval().to(device)
    img = nib.load(a.input)
    vol = np.asarray(img.dataobj, dtype=np.float32)
    lo, hi = np.percentile(vol, [0.5, 99.5])
    v = torch.from_numpy(np.clip((vol - lo) / (hi - lo) * 2 - 1, -1, 1).astype(np.float32))
    nx, ny, nz = v.shape
    side = max(nx, ny)
    slices = v.permute(2, 0, 1).unsqueeze(1)  # axial: (z, 1, x, y)
    px, py = (side - nx) // 2, (side - ny) // 2
    sq = F.pad(slices, (py, side - ny - py, px, side - nx - px), value=-1.0)
    sq = F.interpolate(sq, size=(a.size, a.size), mode="bilinear", align_corners=False)
    out = torch.empty_like(sq)
    with torch.inference_mode():
        for i in range(0, nz, a.batch):
            out[i: i + a.batch] = g(sq[i: i + a.batch].to(device)).cpu()
    back = F.interpolate(out, size=(side, side), mode="bilinear", align_corners=False)
    back = back[:, 0, px: px + nx, py: py + ny].permute(1, 2, 0)
    res = ((back.numpy() + 1) / 2 * (hi - lo) + lo).astype(np.float32)
    nib.save(nib.Nifti1Image(res, img.affine, img.header), a.output)
    return {"seconds": time.perf_counter() - t0, "slices": nz}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ["train", "infer", "translate"]:
        s = sub.add_parser(name)
        s.add_argument("--size", type=int, default=128 if name == "train" else 256)
        s.add_argument("--ngf", type=int, default=64)
        s.add_argument("--blocks", type=int, default=9)
        s.add_argument("--ndf", type=int, default=64)
        s.add_argument("--threads", type=int, default=0, help="0: PyTorch's default")
        s.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
        if name == "train":
            s.add_argument("--mode", choices=sorted(MODES), required=True)
            s.add_argument("--steps", type=int, default=3)
            s.add_argument("--warmup", type=int, default=1, help="untimed steps first")
            s.add_argument("--amp", nargs="?", const="bf16", choices=["bf16", "f16"],
                           help="autocast to this type (default bf16)")
            s.add_argument("--profile", type=int, default=0, metavar="N",
                           help="also profile --steps steps with torch.profiler and list\n"
                                "the N ops with the most self time")
        if name in ("train", "infer"):
            s.add_argument("--count-ops", action="store_true",
                           help="also count the operators one step (or batch) dispatches to\n"
                                "device kernels: a lower bound of CUDA's kernel launches")
        if name == "infer":
            s.add_argument("--slices", type=int, default=32)
        if name in ("infer", "translate"):
            s.add_argument("--batch", type=int, default=8)
        if name == "translate":
            s.add_argument("--input", required=True)
            s.add_argument("--output", required=True)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    result = {"train": cmd_train, "infer": cmd_infer, "translate": cmd_translate}[a.cmd](a)
    result.update(framework="pytorch", torch=torch.__version__, threads=torch.get_num_threads(),
                  device=a.device, peak_rss_mb=peak_rss_mb())
    if a.device.startswith("cuda"):
        result.update(gpu=torch.cuda.get_device_name(torch.device(a.device)),
                      cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
