#!/usr/bin/env python3
"""Reference values for medtrans' Burn-free tests, computed with nibabel,
pydicom, numpy, scipy and scikit-image on the real images in ../shared/data.

Run from the repository root (scripts/setup_fixture_env.sh makes the venv):

    .venv-fixtures/bin/python scripts/make_fixtures.py

It writes fixtures/io.json, fixtures/metrics/ and fixtures/transforms/. The
Rust tests read the same inputs (saved as .npy where they are derived) and
compare against these numbers. Rerun only when a definition changes.
"""
import json
import os
import sys

import nibabel as nib
import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut
from scipy import ndimage
from skimage.metrics import structural_similarity
from skimage.transform import resize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")
OUT = os.path.join(ROOT, "fixtures")
ICBM = os.path.join(DATA, "icbm152-2009c")
MASK = os.path.join(ICBM, "mni_icbm152_t1_tal_nlin_sym_09c_mask.nii.gz")


def icbm(name):
    return os.path.join(ICBM, f"mni_icbm152_{name}_tal_nlin_sym_09c.nii.gz")


def axial(vol, z):
    """medtrans' slice convention: columns along x, rows along y, row 0 at max y."""
    return np.ascontiguousarray(vol[:, :, z].T[::-1, :])


def samples(arr, coords):
    return [float(arr[c]) for c in coords]


# ---------------------------------------------------------------- readers
def nifti_entry(path, coords):
    img = nib.load(path)
    data = img.get_fdata(dtype=np.float64)
    return {
        "path": os.path.relpath(path, ROOT),
        "shape": list(data.shape),
        "zooms": [float(z) for z in img.header.get_zooms()[:3]],
        "affine": img.affine.tolist(),
        "dtype": str(img.get_data_dtype()),
        "min": float(data.min()),
        "max": float(data.max()),
        "mean": float(data.mean()),
        "coords": [list(c) for c in coords],
        "values": samples(data, coords),
    }


def dicom_entry(path):
    ds = pydicom.dcmread(path)
    arr = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    # medtrans stores (x=column, y=row, z=frame); pydicom gives (frame, row, column).
    vol = np.transpose(arr, (2, 1, 0))
    nx, ny, nz = vol.shape
    coords = [(0, 0, 0), (nx // 2, ny // 3, nz // 2), (nx - 1, ny - 1, nz - 1), (nx // 3, ny // 2, 0)]
    return {
        "path": os.path.relpath(path, ROOT),
        "shape": list(vol.shape),
        "min": float(vol.min()),
        "max": float(vol.max()),
        "mean": float(vol.mean()),
        "coords": [list(c) for c in coords],
        "values": samples(vol, coords),
    }


def io_fixtures():
    c = [(96, 114, 96), (0, 0, 0), (50, 60, 70), (150, 200, 30)]
    mask = nib.load(MASK).get_fdata()
    t1 = nib.load(icbm("t1")).get_fdata()
    out = {
        "nifti": [
            nifti_entry(icbm("t1"), c),
            nifti_entry(icbm("t2"), c),
            nifti_entry(MASK, c),
            nifti_entry(os.path.join(DATA, "ct-head", "ct_head_hu.nii.gz"), [(128, 128, 54), (10, 20, 30)]),
            nifti_entry(os.path.join(DATA, "radiomics-lesions", "brain1_image.nii.gz"), [(128, 128, 12), (5, 6, 7)]),
        ],
        "dicom": [
            dicom_entry(os.path.join(DATA, "dicom", f))
            for f in [
                "CT_small.dcm",
                "693_UNCR.dcm",
                "MR_small.dcm",
                "MR_small_bigendian.dcm",
                "MR_small_RLE.dcm",
                "emri_small.dcm",
                "emri_small_RLE.dcm",
                "emri_small_jpeg_2k_lossless.dcm",
                "MR2_UNCR.dcm",
            ]
        ],
        # numpy.percentile (linear interpolation), for intensity normalisation.
        "percentiles": {
            "path": os.path.relpath(icbm("t1"), ROOT),
            "q": [0.5, 99.5],
            "all_voxels": np.percentile(t1, [0.5, 99.5]).tolist(),
            "in_mask": np.percentile(t1[mask > 0.5], [0.5, 99.5]).tolist(),
        },
    }
    # A qform-only NIfTI (oblique, qfac -1), to check the quaternion path.
    arr = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    img = nib.Nifti1Image(arr, None)
    aff = np.eye(4)
    a = np.deg2rad(20)
    aff[:3, :3] = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, -1]]) @ np.diag([0.8, 0.9, 2.5])
    aff[:3, 3] = [10.0, -20.0, 30.0]
    img.set_qform(aff, code=1)
    img.set_sform(None, code=0)
    qpath = os.path.join(OUT, "qform_only.nii")
    nib.save(img, qpath)
    out["qform_only"] = {"path": "fixtures/qform_only.nii", "affine": nib.load(qpath).affine.tolist(),
                         "qfac": float(nib.load(qpath).header["pixdim"][0])}
    with open(os.path.join(OUT, "io.json"), "w") as f:
        json.dump(out, f, indent=1)


# ---------------------------------------------------------------- metrics
def nmae(fake, real):
    """RegGAN's MAE: mean |fake - real| where real != -1, divided by 2."""
    m = real != -1
    return float(np.abs(fake[m] - real[m]).mean() / 2)


def psnr(fake, real):
    """RegGAN's PSNR as intended: images to [0, 1], MSE over real != -1, peak 1, 100 dB cap.

    (The reference code indexes fake[x][y] with two index arrays, which selects
    whole rows rather than the masked pixels; medtrans uses the masked pixels,
    which is what the paper describes.)"""
    m = real != -1
    mse = np.mean(((fake[m] + 1) / 2 - (real[m] + 1) / 2) ** 2)
    return 100.0 if mse < 1e-10 else float(20 * np.log10(1.0 / np.sqrt(mse)))


def dice_per_label(a, b):
    res = {}
    for lab in sorted(set(np.unique(a)) | set(np.unique(b))):
        if lab == 0:
            continue
        x, y = a == lab, b == lab
        res[str(int(lab))] = float(2 * np.sum(x & y) / (x.sum() + y.sum()))
    return res


def dice_best_threshold(img, gt, n=100):
    """Best Dice of (lo <= bin < hi) over the n equal bins of [-1, 1]."""
    img = img.astype(np.float32)
    b = np.clip(np.floor((img + np.float32(1)) / np.float32(2) * np.float32(n)).astype(np.int64), 0, n - 1)
    g = gt > 0
    best, arg = 0.0, (0, 0)
    h_all = np.bincount(b.ravel(), minlength=n)
    h_gt = np.bincount(b[g], minlength=n)
    ca = np.concatenate([[0], np.cumsum(h_all)])
    cg = np.concatenate([[0], np.cumsum(h_gt)])
    total_gt = g.sum()
    for i in range(n):
        for j in range(i + 1, n + 1):
            p = ca[j] - ca[i]
            tp = cg[j] - cg[i]
            d = 2 * tp / (p + total_gt) if p + total_gt > 0 else 0.0
            if d > best:
                best, arg = d, (i, j)
    return float(best), [int(arg[0]), int(arg[1])]


def metrics_fixtures():
    d = os.path.join(OUT, "metrics")
    os.makedirs(d, exist_ok=True)
    t1 = nib.load(icbm("t1bet")).get_fdata()
    t2 = nib.load(icbm("t2bet")).get_fdata()
    mask = nib.load(MASK).get_fdata() > 0.5
    atlas = nib.load(os.path.join(ICBM, "mni_icbm152_CerebrA_tal_nlin_sym_09c.nii.gz")).get_fdata()
    rng = np.random.default_rng(1234)

    def norm(v):
        x = v / np.percentile(v[mask], 99.5) * 2 - 1
        x = np.clip(x, -1, 1)
        x[~mask] = -1
        return x

    t1n, t2n = norm(t1), norm(t2)
    cases = []
    for k, z in enumerate([70, 100, 120]):
        real = axial(t2n, z).astype(np.float32)
        if k == 0:
            fake = axial(t1n, z)  # the identity baseline: T1 offered as T2
        elif k == 1:
            fake = np.clip(real + rng.normal(0, 0.05, real.shape), -1, 1)
        else:
            fake = ndimage.shift(real.astype(np.float64), (1.5, -2.0), order=1, mode="nearest")
            real = real[20:200, 10:160]  # a non-square crop
            fake = fake[20:200, 10:160]
        fake = np.ascontiguousarray(fake, dtype=np.float32)
        real = np.ascontiguousarray(real, dtype=np.float32)
        np.save(os.path.join(d, f"fake_{k}.npy"), fake)
        np.save(os.path.join(d, f"real_{k}.npy"), real)
        f64, r64 = fake.astype(np.float64), real.astype(np.float64)
        cases.append({
            "fake": f"fixtures/metrics/fake_{k}.npy",
            "real": f"fixtures/metrics/real_{k}.npy",
            "nmae": nmae(f64, r64),
            "psnr": psnr(f64, r64),
            "ssim": float(structural_similarity(f64, r64, data_range=2.0)),
            "ssim_gaussian": float(structural_similarity(
                f64, r64, data_range=2.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)),
            # MAE in original units for a window lo..hi mapped to [-1, 1] (CT-like numbers).
            "mae_units": {"lo": -1024.0, "hi": 2000.0,
                          "value": float(np.abs(f64 - r64)[r64 != -1].mean() * (2000.0 + 1024.0) / 2)},
        })
    lab = axial(atlas, 100).astype(np.float32)
    lab_shift = np.roll(lab, (2, -1), axis=(0, 1))
    np.save(os.path.join(d, "labels_a.npy"), lab)
    np.save(os.path.join(d, "labels_b.npy"), lab_shift)
    vent = np.isin(lab, [41, 92]).astype(np.float32)  # lateral ventricles
    np.save(os.path.join(d, "ventricles.npy"), vent)
    t2_100 = np.load(os.path.join(d, "real_1.npy"))
    best, arg = dice_best_threshold(t2_100, vent)
    # Paired Wilcoxon signed-rank (scipy defaults), exact and approximate cases.
    from scipy.stats import wilcoxon
    wil = []
    for n, ties in [(12, False), (40, False), (80, False), (30, True)]:
        a = rng.normal(0.5, 0.1, n)
        b = a + rng.normal(0.02, 0.05, n)
        if ties:
            a, b = np.round(a, 1), np.round(b, 1)
        r = wilcoxon(a, b)
        wil.append({"a": a.tolist(), "b": b.tolist(), "statistic": float(r.statistic), "p_value": float(r.pvalue)})
    out = {
        "wilcoxon": wil,
        "cases": cases,
        "dice": {"a": "fixtures/metrics/labels_a.npy", "b": "fixtures/metrics/labels_b.npy",
                 "per_label": dice_per_label(lab, lab_shift)},
        "dice_threshold": {"image": "fixtures/metrics/real_1.npy", "mask": "fixtures/metrics/ventricles.npy",
                           "bins": 100, "dice": best, "bin_range": arg},
    }
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(out, f, indent=1)


# ---------------------------------------------------------------- transforms
def affine_warp(img, angle_deg, scale, tx, ty, fill=-1.0):
    """Rotate by angle about the centre, scale, then shift (x = column, y = row),
    sampled bilinearly with `fill` outside: scipy's grid-constant mode."""
    h, w = img.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    a = np.deg2rad(angle_deg)
    fwd = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])  # acts on (x, y)
    inv = np.linalg.inv(fwd)
    # input (x, y) = inv @ (out - c - t) + c ; scipy works in (row, col) = (y, x).
    P = np.array([[0, 1], [1, 0]])
    m = P @ inv @ P
    c = np.array([cy, cx])
    t = np.array([ty, tx])
    offset = c - m @ (c + t)
    return ndimage.affine_transform(img, m, offset=offset, order=1, mode="grid-constant", cval=fill)


def transforms_fixtures():
    d = os.path.join(OUT, "transforms")
    os.makedirs(d, exist_ok=True)
    t2 = nib.load(icbm("t2")).get_fdata()
    s = axial(t2, 90)
    s = (s / s.max() * 2 - 1).astype(np.float32)
    np.save(os.path.join(d, "input.npy"), s)
    warps = []
    for k, (ang, sc, tx, ty) in enumerate([(5.0, 1.1, 7.0, -4.0), (-3.0, 0.92, -2.5, 6.0), (0.0, 1.0, 0.0, 0.0)]):
        out = affine_warp(s.astype(np.float64), ang, sc, tx, ty).astype(np.float32)
        np.save(os.path.join(d, f"warp_{k}.npy"), out)
        warps.append({"angle": ang, "scale": sc, "tx": tx, "ty": ty, "expected": f"fixtures/transforms/warp_{k}.npy"})
    r = resize(s.astype(np.float64), (64, 80), order=1, mode="edge", anti_aliasing=False).astype(np.float32)
    np.save(os.path.join(d, "resize_64x80.npy"), r)
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump({"input": "fixtures/transforms/input.npy", "warps": warps,
                   "resize": {"height": 64, "width": 80, "expected": "fixtures/transforms/resize_64x80.npy"}},
                  f, indent=1)


if __name__ == "__main__":
    if not os.path.isdir(DATA):
        sys.exit(f"missing {DATA}")
    os.makedirs(OUT, exist_ok=True)
    io_fixtures()
    metrics_fixtures()
    transforms_fixtures()
    print("fixtures written to", OUT)
