"""Reference values for medtrans-metrics' paired Student's t-test:
scipy.stats.ttest_rel (two-sided) on seeded samples, including small n
(the experiments compare 10 splits) and a large effect.

Run: .venv-fixtures/bin/python scripts/make_ttest_fixture.py
"""
import json
from pathlib import Path

import numpy as np
from scipy.stats import ttest_rel

rng = np.random.default_rng(13)
cases = []
for n, shift, noise in [(3, 0.5, 1.0), (10, 0.3, 1.0), (10, 5.0, 1.0), (25, 0.0, 2.0), (10, -40.0, 30.0)]:
    a = rng.normal(100.0, 20.0, n)
    b = a + rng.normal(shift, noise, n)
    r = ttest_rel(a, b)
    cases.append({"a": a.tolist(), "b": b.tolist(), "t": float(r.statistic),
                  "df": int(n - 1), "p_value": float(r.pvalue)})
out = Path(__file__).resolve().parent.parent / "fixtures" / "metrics" / "ttest.json"
out.write_text(json.dumps({"ttest_rel": cases}, indent=1) + "\n")
print(f"wrote {out}")
