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
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from mixed_gp import describe, scores  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for encoding in ("one_hot", "bins"):
        on_w, best = scores({"name": "wugo", "options": {"encoding": encoding}}, args.seeds, 24, 8)
        print(f"{encoding:8s}: WU-GO {describe(on_w, best)}", flush=True)


if __name__ == "__main__":
    main()
