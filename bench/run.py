#!/usr/bin/env python3
"""medtrans beside PyTorch on the same CPU, or with --gpu on the same NVIDIA
GPU (medtrans through Vulkan, PyTorch through CUDA): training steps,
inference and end-to-end translate, interleaved round by round so drifts
in machine load hit both alike. Prints markdown tables of medians and the ratio
medtrans / PyTorch (below 1: medtrans is faster), and keeps every raw
measurement in a JSON file.

Run from the repository root after `cargo build --release` and
`bash bench/setup.sh`:

    python3 bench/run.py --rounds 3 --json bench/results.json

On a GPU machine, after `cargo build --release --features gpu`:

    python3 bench/run.py --gpu --rounds 3 --json bench/results-gpu.json

--gpu times every mode at the paper's architecture (pix2pix at 128 and
256 px; nc, reggan, cycle and cycle+reg at 256 px) and inference at 256 px
with batches of 8 and 1; PyTorch runs fp32 with TF32 off, cudnn.benchmark
on, synchronised timing. --amp bf16 (or f16) runs both sides in mixed
precision: PyTorch under autocast, medtrans with train.precision.

Without a GPU, --launches counts what a GPU step would launch: medtrans'
kernel launches per training step (on any Vulkan device, Mesa's lavapipe
included) beside the operators PyTorch dispatches to its kernels (a lower
bound of its CUDA launches, counted on the CPU). Each launch costs the host
microseconds, so a step that launches several times PyTorch's kernels
cannot match its speed on a fast GPU, whatever the kernels.

    python3 bench/run.py --launches    # also writes the table into docs/benchmarks.md

Peak memory is the maximum resident set size of each process, from
/usr/bin/time. The PyTorch side uses random weights and inputs of the same
shapes: speed does not depend on their values.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEDTRANS = os.path.join(ROOT, "target", "release", "medtrans")
TORCH_REF = os.path.join(ROOT, "bench", "torch_reference.py")
ICBM = os.path.join(ROOT, "..", "shared", "data", "icbm152-2009c")
T1 = os.path.join(ICBM, "mni_icbm152_t1_tal_nlin_sym_09c.nii.gz")
T2 = os.path.join(ICBM, "mni_icbm152_t2_tal_nlin_sym_09c.nii.gz")

ARCHS = {"paper": (64, 9, 64), "demo": (16, 4, 16)}


def measure(cmd):
    """Run `cmd` under /usr/bin/time; return (last JSON line or None, wall
    seconds, peak RSS in MB, cores busy on average: CPU time / wall time of
    the whole process)."""
    start = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS_KB %M\nCPU_S %U %S"] + cmd,
                       capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    rss = next((int(l.split()[1]) / 1024 for l in p.stderr.splitlines()
                if l.startswith("MAXRSS_KB")), float("nan"))
    cpu = next((float(l.split()[1]) + float(l.split()[2]) for l in p.stderr.splitlines()
                if l.startswith("CPU_S")), float("nan"))
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    return (json.loads(lines[-1]) if lines else None), wall, rss, cpu / wall


def arch_flags_medtrans(arch):
    ngf, blocks, ndf = ARCHS[arch]
    return ["--set", f"generator.ngf={ngf}", "--set", f"generator.n_blocks={blocks}",
            "--set", f"discriminator.ndf={ndf}"]


def arch_flags_torch(arch):
    ngf, blocks, ndf = ARCHS[arch]
    return ["--ngf", str(ngf), "--blocks", str(blocks), "--ndf", str(ndf)]


def gpu_cases(args):
    """The GPU table: the paper's architecture, as medtrans' issue measured."""
    py = args.python
    ours_dev = ["--device", "gpu", "--warmup", str(args.warmup)]
    theirs_dev = ["--device", "cuda", "--warmup", str(args.warmup), "--count-ops"]
    if args.amp:
        ours_dev += ["--set", f"train.precision={args.amp}"]
        theirs_dev += ["--amp", args.amp]
    out = []
    train = [("pix2pix", 128), ("pix2pix", 256), ("nc", 256), ("reggan", 256), ("cycle", 256),
             ("cycle+reg", 256)]
    for mode, size in train:
        steps = ["--steps", str(args.steps)]
        out.append((
            f"train {mode} {size}px paper",
            [MEDTRANS, "bench", "--json", "--mode", mode, "--size", str(size)] + steps
            + ours_dev + arch_flags_medtrans("paper"),
            [py, TORCH_REF, "train", "--mode", mode, "--size", str(size)] + steps + theirs_dev
            + arch_flags_torch("paper"),
            "s_per_step",
        ))
    for batch in [8, 1]:
        n = ["--slices", "64", "--batch", str(batch)]
        out.append((
            f"infer G 256px paper, batch {batch}",
            [MEDTRANS, "bench", "--json", "--inference", "--mode", "pix2pix", "--size", "256",
             "--device", "gpu"] + n + arch_flags_medtrans("paper"),
            [py, TORCH_REF, "infer", "--size", "256", "--device", "cuda"] + n
            + arch_flags_torch("paper"),
            "slices_per_s",
        ))
    return out


def launch_cases(args):
    """Kernel launches per step at 128 px, both sides alike: the paper's
    depth (9 residual blocks; R as deep as 128 px allows, 6 levels) with 8
    filters. The count does not depend on the width, and Mesa's lavapipe
    runs a narrow network in minutes rather than hours."""
    py = args.python
    out = []
    narrow_ours = ["--set", "generator.ngf=8", "--set", "generator.n_blocks=9",
                   "--set", "discriminator.ndf=8"]
    narrow_theirs = ["--ngf", "8", "--blocks", "9", "--ndf", "8"]
    for mode in [m for m in args.modes if m != "infer"]:
        out.append((
            f"{mode} step",
            [MEDTRANS, "bench", "--json", "--mode", mode, "--size", "128", "--device", "gpu",
             "--steps", "1", "--warmup", "1"] + narrow_ours,
            [py, TORCH_REF, "train", "--mode", mode, "--size", "128", "--steps", "1",
             "--count-ops", "--threads", "2"] + narrow_theirs,
            "launches_per_step",
        ))
    if "infer" in args.modes:
        n = ["--slices", "8", "--batch", "8"]
        out.append((
            "G inference, batch of 8",
            [MEDTRANS, "bench", "--json", "--inference", "--mode", "pix2pix", "--size", "128",
             "--device", "gpu"] + n + narrow_ours,
            [py, TORCH_REF, "infer", "--size", "128", "--count-ops", "--threads", "2"] + n
            + narrow_theirs,
            "launches_per_step",
        ))
    return out


def launch_table(todo, raw):
    """The --launches table: both sides' counts, their ratio against the
    goal of 1.5, medtrans' host reads per step and each side's most
    launched kernels, under a line naming the build that was counted."""
    first = raw[todo[0][0]]["medtrans"][0]["result"]
    lines = [
        f"medtrans build: {first.get('build', 'unknown')}, "
        f"CUBECL_AUTOTUNE_LEVEL={os.environ.get('CUBECL_AUTOTUNE_LEVEL', 'unset')}; "
        f"device: {first.get('device', '?')}",
        "",
        "| case | medtrans kernel launches | PyTorch operators (CUDA launches, at least) "
        "| ratio (goal 1.5) | medtrans host reads | medtrans' most launched "
        "| PyTorch's most dispatched |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, *_ in todo:
        m, t = raw[name]["medtrans"][0], raw[name]["pytorch"][0]
        top_m = ", ".join(f"{k} {c}" for k, c in m["result"]["top_kernels"][:4])
        top_t = ", ".join(f"{k} {c}" for k, c in t["result"]["top_ops"][:4])
        reads = m["result"].get("host_reads_per_step", m["result"].get("host_reads_per_batch"))
        reads = "-" if reads is None else f"{reads:g}"
        lines.append(f"| {name} | {m['value']} | {t['value']} | {m['value'] / t['value']:.1f} "
                     f"| {reads} | {top_m} | {top_t} |")
    return "\n".join(lines)


def write_between_markers(path, name, text):
    """Replace what lies between `<!-- name:begin -->` and `<!-- name:end -->`
    in `path` with `text`; refuse (exit with a message) when the markers are
    missing rather than append somewhere unexpected."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    with open(path) as f:
        doc = f.read()
    i, j = doc.find(begin), doc.find(end)
    if i < 0 or j < i:
        sys.exit(f"{path}: no {begin} ... {end} markers to write the table between")
    doc = doc[: i + len(begin)] + "\n" + text + "\n" + doc[j:]
    with open(path, "w") as f:
        f.write(doc)


def cases(args, scratch):
    """(name, medtrans command, PyTorch command, key of the JSON number)."""
    if args.launches:
        return launch_cases(args)
    if args.gpu:
        return gpu_cases(args)
    py = args.python
    out = []
    if "train" in args.what:
        # Issue 24's cases: the sweeps' networks at 64 px, the paper's at
        # 128 and 256 px.
        for size in args.sizes:
            arch = "demo" if size <= 64 else "paper"
            for mode in args.train_modes:
                steps = ["--steps", str(args.steps)]
                out.append((
                    f"train {mode} {size}px {arch}",
                    [MEDTRANS, "bench", "--json", "--mode", mode, "--size", str(size)]
                    + steps + arch_flags_medtrans(arch),
                    [py, TORCH_REF, "train", "--mode", mode, "--size", str(size)]
                    + steps + arch_flags_torch(arch),
                    "s_per_step",
                ))
    if "infer" in args.what:
        for arch, size in [("paper", 256), ("demo", 128)]:
            n = ["--slices", "32", "--batch", "8"]
            out.append((
                f"infer G {size}px {arch}, batch 8",
                [MEDTRANS, "bench", "--json", "--inference", "--mode", "pix2pix", "--size",
                 str(size)] + n + arch_flags_medtrans(arch),
                [py, TORCH_REF, "infer", "--size", str(size)] + n + arch_flags_torch(arch),
                "slices_per_s",
            ))
    if "translate" in args.what:
        model = os.path.join(scratch, "model")
        out.append((
            "translate ICBM T1 (193 slices), 256px paper",
            [MEDTRANS, "translate", "--model", model, "--input", T1, "--output",
             os.path.join(scratch, "medtrans.nii.gz"), "--batch", "8", "--overwrite"],
            [py, TORCH_REF, "translate", "--input", T1, "--output",
             os.path.join(scratch, "torch.nii.gz"), "--size", "256", "--batch", "8"]
            + arch_flags_torch("paper"),
            "wall",
        ))
    return out


def gpu_description():
    """The GPU, its driver and the Vulkan version, for the results table."""
    parts = []
    try:
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                            "--format=csv,noheader"], capture_output=True, text=True)
        parts.append(q.stdout.strip())
    except OSError:
        parts.append("nvidia-smi not found")
    try:
        v = subprocess.run(["vulkaninfo", "--summary"], capture_output=True, text=True)
        api = [l.split("=")[1].strip() for l in v.stdout.splitlines() if "apiVersion" in l]
        parts.append(f"Vulkan {api[0]}" if api else "vulkaninfo: no device")
    except OSError:
        parts.append("vulkaninfo not found")
    return "; ".join(parts)


def make_model(scratch):
    """A 256 px pix2pix checkpoint at the paper's size for `translate`
    (one training step: speed does not depend on the weights)."""
    data = os.path.join(scratch, "data")
    subprocess.run([MEDTRANS, "prepare", "--a", T1, "--b", T2, "--size", "256", "--out", data],
                   check=True, cwd=ROOT, capture_output=True)
    subprocess.run([MEDTRANS, "train", "--mode", "pix2pix", "--set", f"data.path={data!r}",
                    "--set", f"out={os.path.join(scratch, 'model')!r}", "--set",
                    "train.stop_at_step=1"], check=True, cwd=ROOT, capture_output=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--translate-rounds", type=int,
                   help="rounds of the (slow) translate case; default: --rounds")
    p.add_argument("--steps", type=int, default=3, help="timed training steps per process")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256],
                   help="training cases: 64 px with the sweeps' networks (ngf 16, 4 blocks, "
                        "ndf 16), larger sizes with the paper's (ngf 64, 9 blocks, ndf 64)")
    p.add_argument("--train-modes", nargs="+", default=["pix2pix", "reggan", "cycle"])
    p.add_argument("--what", nargs="+", default=["train", "infer", "translate"],
                   choices=["train", "infer", "translate"])
    p.add_argument("--python", default=os.environ.get("BENCH_PYTHON",
                                                       os.path.join(ROOT, ".venv-bench", "bin",
                                                                    "python")))
    p.add_argument("--json", help="write every measurement here")
    p.add_argument("--gpu", action="store_true",
                   help="the GPU table: medtrans --device gpu beside PyTorch on CUDA")
    p.add_argument("--warmup", type=int, default=3,
                   help="--gpu: untimed steps before the timed ones (kernels compile and "
                        "autotune in the first steps)")
    p.add_argument("--amp", choices=["bf16", "f16"],
                   help="--gpu: both sides in mixed precision of this type (medtrans' WGSL "
                        "build has f16 only)")
    p.add_argument("--launches", action="store_true",
                   help="kernel launches per step beside PyTorch's dispatched operators "
                        "(any Vulkan device: lavapipe will do); one round")
    p.add_argument("--docs", default=os.path.join(ROOT, "docs", "benchmarks.md"),
                   help="--launches: the file whose <!-- launches:begin/end --> markers "
                        "receive the table (an empty string: print only)")
    p.add_argument("--modes", nargs="+", default=["pix2pix", "reggan", "cycle", "infer"],
                   help="--launches: the modes to count (infer: G's forward pass)")
    args = p.parse_args()
    if not os.path.exists(MEDTRANS):
        sys.exit(f"{MEDTRANS} is missing: run `cargo build --release` first")
    if not os.path.exists(args.python):
        sys.exit(f"{args.python} is missing: run `bash bench/setup.sh` or set BENCH_PYTHON")
    scratch = tempfile.mkdtemp(prefix="medtrans-bench-")
    if "translate" in args.what and not args.gpu:
        make_model(scratch)
    todo = cases(args, scratch)
    if args.launches:
        args.rounds = 1
        os.environ.setdefault("CUBECL_AUTOTUNE_LEVEL", "minimal")
    raw = {name: {"medtrans": [], "pytorch": []} for name, *_ in todo}
    for r in range(args.rounds):
        for name, ours, theirs, key in todo:
            if key == "wall" and args.translate_rounds is not None and r >= args.translate_rounds:
                continue
            # Alternate who goes first, so neither always runs on a warm cache.
            order = [("medtrans", ours), ("pytorch", theirs)]
            if r % 2:
                order.reverse()
            for who, cmd in order:
                res, wall, rss, cores = measure(cmd)
                if key == "launches_per_step":  # per training step or per batch
                    value = res.get("launches_per_step") or res.get("launches_per_batch") \
                        if who == "medtrans" else res.get("ops_per_step") or res.get("ops_per_batch")
                else:
                    value = wall if key == "wall" else res[key]
                raw[name][who].append({"value": value, "rss_mb": rss, "cores": cores,
                                       "result": res})
                print(f"round {r + 1}/{args.rounds} {name} {who}: {value:.4g} "
                      f"({rss:.0f} MB)", file=sys.stderr, flush=True)
                if args.json:  # after every measurement: a failure loses nothing
                    with open(args.json, "w") as f:
                        json.dump({"rounds": args.rounds, "steps": args.steps, "raw": raw}, f,
                                  indent=1)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"rounds: {args.rounds}")
    if args.gpu:
        print(f"GPU: {gpu_description()}")
    print()
    if args.launches:
        table = launch_table(todo, raw)
        print(table)
        if args.docs:
            write_between_markers(args.docs, "launches", table)
            print(f"(written into {args.docs})", file=sys.stderr)
        return
    print("| benchmark | medtrans | PyTorch | medtrans / PyTorch time | peak RSS medtrans / "
          "PyTorch (MB) | cores busy medtrans / PyTorch |")
    print("|---|---|---|---|---|---|")
    for name, _, _, key in todo:
        m = statistics.median(x["value"] for x in raw[name]["medtrans"])
        t = statistics.median(x["value"] for x in raw[name]["pytorch"])
        rm = max(x["rss_mb"] for x in raw[name]["medtrans"])
        rt = max(x["rss_mb"] for x in raw[name]["pytorch"])
        cm = statistics.median(x["cores"] for x in raw[name]["medtrans"])
        ct = statistics.median(x["cores"] for x in raw[name]["pytorch"])
        if key == "slices_per_s":
            cell, ratio = (f"{m:.2f} slices/s", f"{t:.2f} slices/s"), t / m
        else:
            cell, ratio = (f"{m:.3f} s", f"{t:.3f} s"), m / t
        print(f"| {name} | {cell[0]} | {cell[1]} | {ratio:.2f} | {rm:.0f} / {rt:.0f} "
              f"| {cm:.2f} / {ct:.2f} |")


if __name__ == "__main__":
    main()
