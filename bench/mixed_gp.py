"""GP-BO on a mixed problem: a categorical kernel (``MixedSingleTaskGP``) against the unit-cube bins.

The problem (``tests/sims_for_tests.py:mixed``): an absorber among Pb, W, Fe, Cu (W better than the
next by ≥ 0.5), a range ``x`` and a range ``t`` conditional on absorber ∈ {W, Pb}; 20 samples per call
(s.e. ≈ 0.01). 8 Sobol calls then 8 GP calls (qLogNEI), small acquisition options, several seeds.
Prints, per encoding, the fraction of GP proposals on W and the true value of the best evaluated design.

    python bench/mixed_gp.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from optimizer.strategies.gp import GPStrategy  # noqa: E402
from sims_for_tests import MIXED_OFFSETS  # noqa: E402
from test_mixed import FAST_OPTIONS, _run, mixed_study  # noqa: E402


def true_value(p: dict) -> float:
    t = (p["t"] - 0.7) ** 2 if p["t"] is not None else 0.5
    return MIXED_OFFSETS[p["absorber"]] + (p["x"] - 0.3) ** 2 + t


def scores(strategy: dict, seeds: int, calls: int, initial: int) -> tuple[list[float], list[float]]:
    """Per seed ``0 … seeds-1``: the fraction of the strategy's proposals on W and the true value of the best
    evaluated design of one campaign of ``calls`` (``initial`` Sobol first)."""
    on_w, best = [], []
    for seed in range(seeds):
        with tempfile.TemporaryDirectory() as d:
            data = mixed_study(seed=seed, strategy=strategy, budget={"calls": calls, "initial_design": initial})
            recs = _run(Path(d), data).records()
            proposed = [r.params for r in recs.values() if r.origin == "strategy"]
            on_w.append(float(np.mean([p["absorber"] == "W" for p in proposed])))
            best.append(min(true_value(r.params) for r in recs.values() if r.status == "completed"))
    return on_w, best


def describe(on_w: list[float], best: list[float]) -> str:
    return (f"proposals on W {np.mean(on_w):.2f} (per seed {np.round(on_w, 2).tolist()}); true value of the best "
            f"evaluated design: median {np.median(best):.4f} (per seed {np.round(best, 4).tolist()})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    for mixed in (True, False):
        GPStrategy.mixed_model = mixed  # False: the categorical coordinate stays a continuous bin coordinate
        on_w, best = scores({"name": "gp", "options": FAST_OPTIONS["gp"]}, args.seeds, 16, 8)
        print(f"{'categorical kernel' if mixed else 'unit-cube bins    '}: GP {describe(on_w, best)}")


if __name__ == "__main__":
    main()
