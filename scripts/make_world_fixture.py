"""Reference values for world-space resampling (medtrans_transforms::resample).

The ICBM152 T2 and its brain mask are given a new header affine (oblique,
anisotropic, shifted: a scan from another session) with their voxels
untouched, then resampled onto the ICBM T1 grid by nibabel's
resample_from_to (scipy map_coordinates, mode="constant"): trilinear for
the image with the image minimum outside, nearest for the mask. Writes
fixtures/world/resample.json with values at random voxels, the inside count
and the mean. Run with the fixture venv (scripts/setup_fixture_env.sh):
    .venv-fixtures/bin/python scripts/make_world_fixture.py
"""
import json
import pathlib

import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to

root = pathlib.Path(__file__).resolve().parent.parent
data = root.parent / "shared" / "data" / "icbm152-2009c"
t1 = nib.load(data / "mni_icbm152_t1_tal_nlin_sym_09c.nii.gz")
t2 = nib.load(data / "mni_icbm152_t2_tal_nlin_sym_09c.nii.gz")
mask = nib.load(data / "mni_icbm152_t1_tal_nlin_sym_09c_mask.nii.gz")


def rot(ax, deg):
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    m = np.eye(4)
    i, j = [(1, 2), (0, 2), (0, 1)][ax]
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


affine = rot(0, 12.0) @ rot(1, -7.0) @ rot(2, 4.0) @ np.diag([1.1, 0.9, 1.3, 1.0])
affine[:3, 3] = [-101.0, -118.0, -95.0]

b = nib.Nifti1Image(np.asarray(t2.dataobj, dtype=np.float64), affine)
m = nib.Nifti1Image(np.asarray(mask.dataobj, dtype=np.float64), affine)
fill = float(np.asarray(b.dataobj).min())
img = resample_from_to(b, t1, order=1, mode="constant", cval=fill).get_fdata()
msk = resample_from_to(m, t1, order=0, mode="constant", cval=0.0).get_fdata()
ones = nib.Nifti1Image(np.ones(t2.shape), affine)
inside = resample_from_to(ones, t1, order=1, mode="constant", cval=0.0).get_fdata()

rng = np.random.default_rng(3)
idx = np.stack([rng.integers(0, n, 4000) for n in t1.shape], 1)
# Voxels only partly inside (none expected: mode="constant" does not
# interpolate against the fill value at the edge).
edge = np.argwhere((inside > 1e-6) & (inside < 1 - 1e-6))
out = {
    "b_affine": affine.tolist(),
    "fill": fill,
    "shape": list(t1.shape),
    "inside_count": int((inside > 0.5).sum()),
    "partial_count": int(len(edge)),
    "mean": float(img.mean()),
    "mask_sum": float(msk.sum()),
    "samples": [
        {"x": int(x), "y": int(y), "z": int(z), "image": float(img[x, y, z]), "mask": float(msk[x, y, z])}
        for x, y, z in idx
    ],
}
dest = root / "fixtures" / "world" / "resample.json"
dest.write_text(json.dumps(out, indent=0))
print(dest, out["inside_count"], out["partial_count"], out["mean"], out["mask_sum"])
