#!/usr/bin/env python3
"""Reference values for medtrans' SynthRAD-style image metrics (masked MAE,
PSNR, SSIM and MS-SSIM over a fixed dynamic range) and for the mask-dilation
helper, computed with numpy, scipy, scikit-image and pytorch_msssim on the real
images in ../shared/data.

Run from the repository root (scripts/setup_fixture_env.sh makes the venv,
with pytorch-msssim in it):

    .venv-fixtures/bin/python scripts/make_synthrad_fixtures.py

It writes fixtures/metrics/synthrad.json. The Rust tests rebuild the same
inputs from the NIfTI files (the JSON describes each input: file, slice, crop,
shape and checksums, so a test can assert it built the same arrays) and
compare their metrics against these numbers. Rerun only when a definition
changes.

Array convention (the Rust one): a volume read with nibabel as
get_fdata(dtype=float32) has shape (nx, ny, nz) and Rust stores it with x
fastest, so an axial slice k is vol[:, :, k].T (rows y, columns x; no flip)
and a whole volume is vol.transpose(2, 1, 0), shape (nz, ny, nx). Shapes and
flat indices below are in this rows-first order.
"""
import json
import os
import sys
import warnings
from importlib.metadata import version

import nibabel as nib
import numpy as np
import torch
from pytorch_msssim import ms_ssim
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.util import crop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")
OUT = os.path.join(ROOT, "fixtures", "metrics")
CT = "ct-head/ct_head_hu.nii.gz"
ICBM_T1 = "icbm152-2009c/mni_icbm152_t1_tal_nlin_sym_09c.nii.gz"
ICBM_T2 = "icbm152-2009c/mni_icbm152_t2_tal_nlin_sym_09c.nii.gz"
ICBM_MASK = "icbm152-2009c/mni_icbm152_t1_tal_nlin_sym_09c_mask.nii.gz"

MS_SSIM_DTYPE = torch.float64
SSIM_CROP = 3  # (win_size 7 - 1) // 2, skimage's own crop


def load(rel):
    """float32 volume (nx, ny, nz), scl_slope/scl_inter applied by nibabel."""
    return nib.load(os.path.join(DATA, rel)).get_fdata(dtype=np.float32)


def axial(vol, k):
    """Slice k in Rust's row-major order: rows y, columns x (no flip)."""
    return np.ascontiguousarray(vol[:, :, k].T)


def rust_order(vol):
    """Whole volume in Rust's flat order: (nz, ny, nx)."""
    return np.ascontiguousarray(vol.transpose(2, 1, 0))


# ---------------------------------------------------------------- input descriptions
def sample_indices(arr):
    """A few flat indices: 7 evenly spaced ones and the centre element."""
    n = arr.size
    idx = [int(i) for i in np.linspace(0, n - 1, 7).round().astype(np.int64)]
    centre = int(np.ravel_multi_index(tuple(s // 2 for s in arr.shape), arr.shape))
    return sorted(set(idx + [centre]))


def describe(arr, **source):
    flat = arr.ravel()
    a64 = flat.astype(np.float64)
    d = dict(source)
    d.update({
        "dtype": "bool" if arr.dtype == bool else str(arr.dtype),
        "shape": list(arr.shape),
        "sum": float(a64.sum()),
        "sum_sq": float((a64 * a64).sum()),
        "samples": [[i, float(flat[i])] for i in sample_indices(arr)],
    })
    if arr.dtype == bool:
        d["count"] = int(flat.sum())
    return d


# ---------------------------------------------------------------- metrics
def msssim_window():
    """pytorch_msssim's default window, exactly as it builds it (float32)."""
    from pytorch_msssim.ssim import _fspecial_gauss_1d
    return _fspecial_gauss_1d(11, 1.5).flatten().tolist()


def run_ms_ssim(x, y, lo, hi, dtype=MS_SSIM_DTYPE, win=None):
    """pytorch_msssim.ms_ssim on (1,1,H,W) or (1,1,D,H,W); None when too small."""
    if min(x.shape[-2:]) <= 160:
        return None
    X = torch.from_numpy(np.ascontiguousarray(x)).to(dtype)[None, None]
    Y = torch.from_numpy(np.ascontiguousarray(y)).to(dtype)[None, None]
    kw = {} if win is None else {"win": win}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no dimension may skip the Gaussian
        v = ms_ssim(X, Y, data_range=float(hi - lo), size_average=True, **kw)
    return float(v)


def exact_f64_window(ndim):
    c = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(c ** 2) / (2 * 1.5 ** 2))
    g = g / g.sum()
    return g.reshape([1] * (ndim + 1) + [11])


def synthrad(gt, pred, mask, lo, hi):
    """All metric values for one case; gt/pred float32 arrays, mask bool."""
    gt = gt.astype(np.float64)
    pred = pred.astype(np.float64)
    rng = float(hi - lo)
    out = {"mae": float(np.abs(pred[mask] - gt[mask]).mean())}
    g = np.clip(gt, lo, hi)
    p = np.clip(pred, lo, hi)
    out["psnr"] = float(peak_signal_noise_ratio(g[mask], p[mask], data_range=rng))
    gm = np.where(mask, g, lo) - lo
    pm = np.where(mask, p, lo) - lo
    _, smap = structural_similarity(gm, pm, data_range=rng, full=True)
    out["ssim"] = float(crop(smap, SSIM_CROP)[crop(mask, SSIM_CROP)].mean(dtype=np.float64))
    out["ms_ssim"] = run_ms_ssim(gm, pm, lo, hi)
    out["ssim_nomask"] = float(structural_similarity(g - lo, p - lo, data_range=rng))
    out["ms_ssim_nomask"] = run_ms_ssim(g - lo, p - lo, lo, hi)
    # Not part of the definition: how far float32 tensors, or a window built
    # in float64 instead of pytorch_msssim's float32 one, move ms_ssim.
    diag = {}
    if out["ms_ssim"] is not None:
        diag["ms_ssim_float32"] = run_ms_ssim(gm, pm, lo, hi, dtype=torch.float32)
        diag["ms_ssim_f64_window"] = run_ms_ssim(gm, pm, lo, hi, win=exact_f64_window(gm.ndim))
    return out, diag


def case(name, gt, pred, mask, lo, hi, inputs):
    vals, diag = synthrad(gt, pred, mask, lo, hi)
    print(f"{name:12s} lo={lo} hi={hi} " + " ".join(
        f"{k}={'null' if v is None else f'{v:.10g}'}" for k, v in vals.items()))
    if diag:
        print(f"{'':12s} diagnostics: " + " ".join(f"{k}={v:.10g}" for k, v in diag.items()))
    d = {"lo": lo, "hi": hi, "inputs": inputs}
    d.update(vals)
    d["diagnostics"] = diag
    return d


# ---------------------------------------------------------------- cases
def build():
    cases = {}
    ct = load(CT)
    gt_k, pred_k = 54, 55
    gt = axial(ct, gt_k)
    pred = axial(ct, pred_k)
    mask = gt > -500
    ct_inputs = {
        "gt": describe(gt, file=CT, axial_slice=gt_k, crop=None),
        "pred": describe(pred, file=CT, axial_slice=pred_k, crop=None),
        "mask": describe(mask, rule="gt > -500", crop=None),
    }
    cases["ct2d"] = case("ct2d", gt, pred, mask, -1024, 3000, ct_inputs)
    cases["ct2d_narrow"] = case("ct2d_narrow", gt, pred, mask, -200, 300, ct_inputs)

    r0, r1, c0, c1 = 96, 160, 96, 160
    crop_desc = {"rows": [r0, r1], "cols": [c0, c1]}
    gs, ps, ms = (np.ascontiguousarray(a[r0:r1, c0:c1]) for a in (gt, pred, mask))
    cases["ct2d_small"] = case("ct2d_small", gs, ps, ms, -1024, 3000, {
        "gt": describe(gs, file=CT, axial_slice=gt_k, crop=crop_desc),
        "pred": describe(ps, file=CT, axial_slice=pred_k, crop=crop_desc),
        "mask": describe(ms, rule="gt > -500", crop=crop_desc),
    })

    t1 = rust_order(load(ICBM_T1))
    t2 = rust_order(load(ICBM_T2))
    bmask = rust_order(load(ICBM_MASK)) > 0.5
    p999 = float(np.percentile(t2[bmask].astype(np.float64), 99.9))
    hi = int(np.rint(p999))
    icbm = case("icbm3d", t2, t1, bmask, 0, hi, {
        "gt": describe(t2, file=ICBM_T2),
        "pred": describe(t1, file=ICBM_T1),
        "mask": describe(bmask, file=ICBM_MASK, rule="mask > 0.5"),
    })
    icbm["hi_rule"] = "rint(numpy.percentile(gt[mask] as float64, 99.9)) (linear interpolation)"
    icbm["t2_p99_9_in_mask"] = p999
    cases["icbm3d"] = icbm

    d2 = ndimage.binary_dilation(mask, structure=np.ones((3, 3), bool), iterations=2)
    d3 = ndimage.binary_dilation(bmask, structure=np.ones((3, 3, 3), bool), iterations=1)
    print(f"dilate2d: {int(mask.sum())} -> {int(d2.sum())}; dilate3d: {int(bmask.sum())} -> {int(d3.sum())}")
    dilation = {
        "dilate2d": {
            "input": "cases.ct2d.inputs.mask",
            "call": "scipy.ndimage.binary_dilation(mask, structure=np.ones((3,3)), iterations=2)",
            "count_before": int(mask.sum()),
            "count": int(d2.sum()),
            "result": describe(d2),
        },
        "dilate3d": {
            "input": "cases.icbm3d.inputs.mask",
            "call": "scipy.ndimage.binary_dilation(mask, structure=np.ones((3,3,3)), iterations=1)",
            "count_before": int(bmask.sum()),
            "count": int(d3.sum()),
            "result": describe(d3),
        },
    }
    return cases, dilation


def main():
    if not os.path.isdir(DATA):
        sys.exit(f"missing {DATA}")
    torch.set_num_threads(1)
    cases, dilation = build()
    out = {
        "generator": "scripts/make_synthrad_fixtures.py",
        "versions": {p: version(p) for p in
                     ["numpy", "scipy", "scikit-image", "nibabel", "torch", "pytorch-msssim"]},
        "convention": {
            "read": "nibabel get_fdata(dtype=float32); int16 * scl_slope + scl_inter is computed "
                    "in float64 and then rounded to float32 (float32 arithmetic differs by 1 ulp "
                    "in about half of the ICBM voxels)",
            "slice2d": "vol[:, :, k].T, shape (ny, nx), rows y, columns x, no flip",
            "volume3d": "vol.transpose(2, 1, 0), shape (nz, ny, nx)",
            "checksums": "sum and sum_sq of the array as float64 (numpy pairwise summation); "
                         "samples are [flat row-major index, value]",
        },
        "definitions": {
            "mae": "mean(|pred - gt|) over mask, no clipping",
            "psnr": "clip both to [lo, hi]; skimage peak_signal_noise_ratio(gt[mask], pred[mask], "
                    "data_range=hi-lo), float64",
            "ssim": "clip to [lo, hi]; outside mask := lo; subtract lo; skimage structural_similarity"
                    "(data_range=hi-lo, full=True) defaults (win 7, uniform, sample covariance "
                    "NP/(NP-1), K1 .01, K2 .03); mean of crop(S, 3)[crop(mask, 3)], float64",
            "ms_ssim": "same preprocessing as ssim; pytorch_msssim.ms_ssim(data_range=hi-lo, "
                       "size_average=True), win 11, sigma 1.5, weights "
                       "[0.0448, 0.2856, 0.3001, 0.2363, 0.1333]; null when min of the last two "
                       "sides <= 160",
            "ssim_nomask": "structural_similarity scalar after clip and subtract lo, no mask",
            "ms_ssim_nomask": "ms_ssim after clip and subtract lo, no mask",
        },
        "ms_ssim_tensor_dtype": str(MS_SSIM_DTYPE).replace("torch.", ""),
        "ms_ssim_window": {
            "values": msssim_window(),
            "note": "built in float32: coords = arange(11) - 5; g = exp(-coords^2 / (2 * 1.5^2)); "
                    "g /= sum(g); then cast to the tensor dtype (so float64 runs use these "
                    "float32-rounded taps)",
        },
        "cases": cases,
        "dilation": dilation,
    }
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "synthrad.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("written", os.path.relpath(path, ROOT))


if __name__ == "__main__":
    main()
