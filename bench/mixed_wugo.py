"""WU-GO on a mixed problem: one-hot surrogate inputs (``encoding: one_hot``) against the unit-cube bins.

The problem is ``bench/mixed_gp.py``'s (``tests/sims_for_tests.py:mixed``): an absorber among Pb, W, Fe, Cu
(W better than the next by ≥ 0.5), a range ``x`` and a range ``t`` conditional on absorber ∈ {W, Pb}; 20 samples
per call. 8 Sobol calls then 16 WU-GO calls of the default preset, several seeds, both encodings side by side.
Prints, per encoding, the fraction of WU-GO proposals on W and the true value of the best evaluated design.

    python bench/mixed_wugo.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from mixed_gp import true_value  # noqa: E402
from test_mixed import _run, mixed_study  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for encoding in ("one_hot", "bins"):
        on_w, best = [], []
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as d:
                data = mixed_study(seed=seed, strategy={"name": "wugo", "options": {"encoding": encoding}},
                                   budget={"calls": 24, "initial_design": 8})
                recs = _run(Path(d), data).records()
                proposed = [r.params for r in recs.values() if r.origin == "strategy"]
                on_w.append(float(np.mean([p["absorber"] == "W" for p in proposed])))
                best.append(min(true_value(r.params) for r in recs.values() if r.status == "completed"))
        print(f"{encoding:8s}: WU-GO proposals on W {np.mean(on_w):.2f} (per seed {np.round(on_w, 2).tolist()}); "
              f"true value of the best evaluated design: median {np.median(best):.4f} "
              f"(per seed {np.round(best, 4).tolist()})", flush=True)


if __name__ == "__main__":
    main()
