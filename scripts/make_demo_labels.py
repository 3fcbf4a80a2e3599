"""Per-slice labels for the demo subject: the brain area (mm^2) of every
axial slice, from the shipped brain mask. medtrans's predictor-guided mode
learns them (`medtrans prepare --slice-labels data/demo/brain_area.csv`).

Run: .venv-fixtures/bin/python scripts/make_demo_labels.py
"""
import nibabel as nib
import numpy as np
from pathlib import Path

demo = Path(__file__).resolve().parent.parent / "data" / "demo"
mask = nib.load(demo / "mask.nii.gz")
m = np.asarray(mask.dataobj) > 0.5
sx, sy = (float(v) for v in mask.header.get_zooms()[:2])
lines = ["volume,slice,label"]
for z in range(m.shape[2]):
    area = m[:, :, z].sum() * sx * sy
    if area > 0:
        # The same measurement labels both contrasts' slices.
        lines.append(f"t1.nii.gz,{z},{area:g}")
        lines.append(f"t2.nii.gz,{z},{area:g}")
(demo / "brain_area.csv").write_text("\n".join(lines) + "\n")
print(f"{len(lines) - 1} rows")
