"""Rigid registration side by side: medtrans, elastix and ANTs on the same
cases with known answers.

Each case moves a real head by a known rigid motion S (degrees, mm) and
resamples it onto a grid of its own (other voxel size); registering it back
to the fixed image must find S^-1. Error = distance between where the found
transform and the truth send 3000 random points of the fixed image's head
(mean and worst, mm), and the residual rotation (degrees). Every tool maps
points through its own written transform (ITK's TransformPoint for ANTs and
for medtrans's .tfm, read by ANTs; transformix for elastix), so no tool's
parameter convention is guessed. Wall time includes each tool's start-up.

Peers: elastix 5.0.1 (Debian package `elastix`) with a standard rigid
parameter file (Euler, Mattes MI 32 bins, 3 resolutions, adaptive
stochastic gradient descent, 250 iterations, 2048 random samples), and ANTs
via antspyx (`ants.registration(type_of_transform="Rigid")`: MI, 4 levels).

Needs ../shared/data, the release binary (cargo build --release), the
`elastix` package and a venv with nibabel, scipy, pandas and antspyx
(scripts/setup_fixture_env.sh, then pip install antspyx). Run from the
repository root:
    .venv-fixtures/bin/python scripts/bench_registration.py
Writes docs/results/registration/results.md and results.csv.
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import ants
import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to

root = pathlib.Path(__file__).resolve().parent.parent
data = root.parent / "shared" / "data"
medtrans = root / "target" / "release" / "medtrans"
out_dir = root / "docs" / "results" / "registration"
LPS = np.diag([-1.0, -1.0, 1.0])

ELASTIX_RIGID = """
(FixedInternalImagePixelType "float")
(MovingInternalImagePixelType "float")
(FixedImageDimension 3)
(MovingImageDimension 3)
(UseDirectionCosines "true")
(Registration "MultiResolutionRegistration")
(Interpolator "BSplineInterpolator")
(ResampleInterpolator "FinalBSplineInterpolator")
(Resampler "DefaultResampler")
(FixedImagePyramid "FixedSmoothingImagePyramid")
(MovingImagePyramid "MovingSmoothingImagePyramid")
(Optimizer "AdaptiveStochasticGradientDescent")
(Transform "EulerTransform")
(Metric "AdvancedMattesMutualInformation")
(AutomaticScalesEstimation "true")
(AutomaticTransformInitialization "true")
(AutomaticTransformInitializationMethod "CenterOfGravity")
(HowToCombineTransforms "Compose")
(NumberOfHistogramBins 32)
(NumberOfResolutions 3)
(MaximumNumberOfIterations 250)
(NumberOfSpatialSamples 2048)
(NewSamplesEveryIteration "true")
(ImageSampler "RandomCoordinate")
(BSplineInterpolationOrder 1)
(FinalBSplineInterpolationOrder 3)
(DefaultPixelValue 0)
(WriteResultImage "false")
"""


def rotation(deg):
    rx, ry, rz = np.radians(deg)
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


def motion(deg, mm, centre):
    """p -> R (p - c) + c + t, RAS, as a 4x4."""
    m = np.eye(4)
    R = rotation(deg)
    m[:3, :3] = R
    m[:3, 3] = np.asarray(centre) + np.asarray(mm) - R @ np.asarray(centre)
    return m


def regrid(img, spacing):
    """The same field of view and axes at an isotropic spacing."""
    a = img.affine.copy()
    shape = []
    for k in range(3):
        old = np.linalg.norm(a[:3, k])
        n = max(1, int(round(img.shape[k] * old / spacing)))
        scale = spacing / old
        col = a[:3, k].copy()
        a[:3, k] = col * scale
        a[:3, 3] += col * (scale - 1) / 2
        shape.append(n)
    return tuple(shape), a


def moved(img, S, spacing, path):
    """moved(p) = img(S p) on a new grid: S^-1 is the answer."""
    src = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), np.linalg.inv(S) @ img.affine)
    fill = float(np.asarray(img.dataobj).min())
    shape, affine = regrid(img, spacing)
    out = resample_from_to(src, (shape, affine), order=1, mode="constant", cval=fill)
    nib.save(nib.Nifti1Image(out.get_fdata().astype(np.float32), affine), str(path))


def head_points(region, n, seed=0):
    """n random world points (RAS) where region > 0.5."""
    idx = np.argwhere(np.asarray(region.dataobj) > 0.5)
    rng = np.random.default_rng(seed)
    pick = idx[rng.choice(len(idx), n, replace=False)]
    return nib.affines.apply_affine(region.affine, pick)


def itk_points(tfm_path, pts_ras):
    """Fixed RAS points through an ITK transform file (LPS) to moving RAS."""
    tx = ants.read_transform(str(tfm_path))
    lps = pts_ras @ LPS
    return np.array([tx.apply_to_point(tuple(p)) for p in lps]) @ LPS


def elastix_points(param_file, pts_ras, work):
    pts = work / "points.txt"
    lps = pts_ras @ LPS
    pts.write_text("point\n%d\n" % len(lps) + "\n".join("%.6f %.6f %.6f" % tuple(p) for p in lps) + "\n")
    tdir = work / "transformix"
    tdir.mkdir(exist_ok=True)
    subprocess.run(["transformix", "-def", str(pts), "-out", str(tdir), "-tp", str(param_file)],
                   check=True, capture_output=True)
    outp = []
    for line in (tdir / "outputpoints.txt").read_text().splitlines():
        seg = line.split("OutputPoint = [")[1].split("]")[0]
        outp.append([float(v) for v in seg.split()])
    return np.array(outp) @ LPS


def errors(found, truth):
    d = np.linalg.norm(found - truth, axis=1)
    # Residual rotation from the best rigid fit of found -> truth.
    fc, tc = found - found.mean(0), truth - truth.mean(0)
    u, _, vt = np.linalg.svd(fc.T @ tc)
    R = (u @ vt).T
    angle = np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1)))
    return float(d.mean()), float(d.max()), float(angle)


def run_case(name, fixed_path, moving_img, region_img, S, spacing, work):
    work.mkdir(parents=True, exist_ok=True)
    mpath = work / "moving.nii.gz"
    moved(moving_img, S, spacing, mpath)
    pts = head_points(region_img, 3000)
    truth = nib.affines.apply_affine(np.linalg.inv(S), pts)
    rows = []

    t0 = time.perf_counter()
    subprocess.run([str(medtrans), "register", "--fixed", str(fixed_path), "--moving", str(mpath),
                    "--out", str(work / "medtrans.nii.gz"), "--overwrite"], check=True, capture_output=True)
    t = time.perf_counter() - t0
    rows.append(("medtrans", t, errors(itk_points(work / "medtrans.tfm", pts), truth)))

    pfile = work / "rigid.txt"
    pfile.write_text(ELASTIX_RIGID)
    edir = work / "elastix"
    edir.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    subprocess.run(["elastix", "-f", str(fixed_path), "-m", str(mpath), "-p", str(pfile), "-out", str(edir),
                    "-threads", str(os.cpu_count())], check=True, capture_output=True)
    t = time.perf_counter() - t0
    rows.append(("elastix", t, errors(elastix_points(edir / "TransformParameters.0.txt", pts, work), truth)))

    t0 = time.perf_counter()
    f, m = ants.image_read(str(fixed_path)), ants.image_read(str(mpath))
    reg = ants.registration(f, m, type_of_transform="Rigid")
    t = time.perf_counter() - t0
    rows.append(("ANTs", t, errors(itk_points(reg["fwdtransforms"][0], pts), truth)))
    for tool, t, (mean, worst, ang) in rows:
        print(f"{name:32s} {tool:9s} {t:7.1f} s  mean {mean:.3f} mm  worst {worst:.3f} mm  rotation {ang:.3f} deg",
              flush=True)
    return [dict(case=name, tool=tool, seconds=t, mean_mm=mean, worst_mm=worst, rotation_deg=ang)
            for tool, t, (mean, worst, ang) in rows]


def main():
    if not medtrans.exists():
        sys.exit(f"{medtrans} not found: run cargo build --release first")
    icbm = data / "icbm152-2009c"
    t1_path = icbm / "mni_icbm152_t1_tal_nlin_sym_09c.nii.gz"
    t2 = nib.load(icbm / "mni_icbm152_t2_tal_nlin_sym_09c.nii.gz")
    brain = nib.load(icbm / "mni_icbm152_t1_tal_nlin_sym_09c_mask.nii.gz")
    ct_path = data / "ct-head" / "ct_head_hu.nii.gz"
    ct = nib.load(ct_path)
    head = nib.Nifti1Image((np.asarray(ct.dataobj) > -200).astype(np.uint8), ct.affine)
    ct_centre = nib.affines.apply_affine(ct.affine, np.array(ct.shape) / 2)
    cases = [
        ("T2 -> T1, (3, -2, 4) deg, (4, -3, 5) mm", t1_path, t2, brain,
         motion([3, -2, 4], [4, -3, 5], [0, -18, 18]), 1.5),
        ("T2 -> T1, (-5, 4, -2) deg, (-6, 2, -4) mm", t1_path, t2, brain,
         motion([-5, 4, -2], [-6, 2, -4], [0, -18, 18]), 1.5),
        ("T2 -> T1, (8, 0, -6) deg, (10, 8, -6) mm", t1_path, t2, brain,
         motion([8, 0, -6], [10, 8, -6], [0, -18, 18]), 2.0),
        ("CT -> CT, (2, -3, 5) deg, (-4, 5, 3) mm", ct_path, ct, head,
         motion([2, -3, 5], [-4, 5, 3], ct_centre), 1.2),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, fixed, mov, region, S, spacing) in enumerate(cases):
            rows += run_case(name, fixed, mov, region, S, spacing, pathlib.Path(tmp) / f"case{k}")
    out_dir.mkdir(parents=True, exist_ok=True)
    csv = "case,tool,seconds,mean_mm,worst_mm,rotation_deg\n" + "".join(
        f"\"{r['case']}\",{r['tool']},{r['seconds']:.2f},{r['mean_mm']:.4f},{r['worst_mm']:.4f},{r['rotation_deg']:.4f}\n"
        for r in rows)
    (out_dir / "results.csv").write_text(csv)
    md = ["| case | tool | time (s) | mean error (mm) | worst error (mm) | rotation error (deg) |",
          "|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['case']} | {r['tool']} | {r['seconds']:.1f} | {r['mean_mm']:.3f} | "
                  f"{r['worst_mm']:.3f} | {r['rotation_deg']:.3f} |")
    tools = ["medtrans", "elastix", "ANTs"]
    summary = ["", "| tool | total time (s) | time vs ANTs | mean error over cases (mm) | worst error (mm) |",
               "|---|---|---|---|---|"]
    ants_t = sum(r["seconds"] for r in rows if r["tool"] == "ANTs")
    for tool in tools:
        rs = [r for r in rows if r["tool"] == tool]
        tt = sum(r["seconds"] for r in rs)
        summary.append(f"| {tool} | {tt:.1f} | {tt / ants_t:.2f}x | {np.mean([r['mean_mm'] for r in rs]):.3f} | "
                       f"{max(r['worst_mm'] for r in rs):.3f} |")
    (out_dir / "table.md").write_text("\n".join(md + summary) + "\n")
    print("\n".join(md + summary))
    print(json.dumps({"cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
