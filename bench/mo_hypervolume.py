"""Two objectives with a known Pareto front: hypervolume vs calls for GP-BO (qLogNEHVI), WU-GO
(random Chebyshev scalarisations with σ_W) and Sobol on noisy BraninCurrin.

    python bench/mo_hypervolume.py [--strategies gp wugo sobol] [--seeds 2 3 5 7 11] [--calls 40] [--jobs 1]

Every run is a real campaign (inline executor) with ``studies/benchmarks/branin_currin.yaml``
and the strategy swapped in. Scores use the noise-free objectives of every evaluated design
(strategies only ever see the noisy means): the hypervolume w.r.t. (18, 6) after each call,
and the log10 gap to the front's hypervolume (59.36, BoTorch's NSGA-II estimate). Runs are
appended to ``bench/results/mo_hypervolume.jsonl``; a rerun skips finished ones.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import run_study  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STUDY = "studies/benchmarks/branin_currin.yaml"
STRATEGIES = {"gp": {"name": "gp"}, "wugo": {"name": "wugo"}, "sobol": {"name": "sobol"}}
CHECKPOINTS = (10, 20, 30, 40)


def true_hypervolume_trace(theta: np.ndarray) -> np.ndarray:
    """``theta [N, 2]`` in call order → ``[N]`` hypervolume of the noise-free objectives of the first i designs."""
    import torch
    from botorch.utils.multi_objective.hypervolume import Hypervolume
    from botorch.utils.multi_objective.pareto import is_non_dominated

    from simulators.benchmarks import BraninCurrin

    sim = BraninCurrin()
    Y = -sim.expected(torch.as_tensor(theta, dtype=torch.float64))  # maximisation convention
    hv = Hypervolume(-torch.tensor(BraninCurrin.REF_POINT, dtype=torch.float64))
    out = []
    for i in range(1, len(Y) + 1):
        y = Y[:i]
        y = y[(y > hv.ref_point).all(-1)]
        out.append(hv.compute(y[is_non_dominated(y)]) if len(y) else 0.0)
    return np.array(out)


def run_one(strategy: str, seed: int, calls: int) -> dict[str, Any]:
    init = yaml.safe_load((ROOT / STUDY).read_text())["budget"]["initial_design"]
    _, recs, wall = run_study(STUDY, STRATEGIES[strategy], seed, calls)
    theta = np.array([[r.params["x1"], r.params["x2"]] for r in recs])
    hv = true_hypervolume_trace(theta)
    return {"strategy": strategy, "seed": seed, "calls": calls, "init": init, "hv": hv.tolist(), "wall_s": wall,
            "s_per_call": wall / len(recs)}


def _worker(args: tuple[str, int, int]) -> dict[str, Any]:
    return run_one(*args)


def summarize(out: Path, calls: int) -> str:
    from simulators.benchmarks import BraninCurrin

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    rows = [r for r in rows if r["calls"] == calls]
    cps = [c for c in CHECKPOINTS if c <= calls]
    lines = ["| strategy | runs | " + " | ".join(f"HV after {c} calls" for c in cps) +
             f" | log10(HV gap) after {calls} | s per call |",
             "|---|---|" + "---|" * len(cps) + "---|---|"]
    for s in STRATEGIES:
        rs = [r for r in rows if r["strategy"] == s]
        if not rs:
            continue

        def q(v: list[float]) -> str:
            a = np.percentile(v, [25, 50, 75])
            return f"{a[1]:.3g} [{a[0]:.3g}–{a[2]:.3g}]"

        cells = [q([r["hv"][c - 1] for r in rs]) for c in cps]
        gap = [np.log10(max(BraninCurrin.MAX_HV - r["hv"][-1], 1e-6)) for r in rs]
        lines.append(f"| {s} | {len(rs)} | " + " | ".join(cells) + f" | {q(gap)} | "
                     f"{np.median([r['s_per_call'] for r in rs]):.2f} |")
    return "\n".join(lines)


def main() -> None:
    import multiprocessing as mp

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[2, 3, 5, 7, 11])
    ap.add_argument("--calls", type=int, default=40, help="calls, initial design (8) included")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "mo_hypervolume.jsonl")
    ap.add_argument("--summarize-only", action="store_true")
    a = ap.parse_args()
    if not a.summarize_only:
        done = set()
        if a.out.exists():
            done = {(r["strategy"], r["seed"], r["calls"]) for r in map(json.loads, a.out.read_text().splitlines())}
        # seed-major, so an interrupted run leaves every strategy with about as many seeds
        todo = [(s, seed, a.calls) for seed in a.seeds for s in a.strategies if (s, seed, a.calls) not in done]
        a.out.parent.mkdir(parents=True, exist_ok=True)
        os.environ["OMP_NUM_THREADS"] = "1"
        with mp.get_context("spawn").Pool(a.jobs) as pool, open(a.out, "a") as fh:
            for r in pool.imap_unordered(_worker, todo):
                fh.write(json.dumps(r) + "\n")
                fh.flush()
                print(f"{r['strategy']:6s} seed {r['seed']:3d}: HV {r['hv'][-1]:.3f}, {r['wall_s']:.0f} s", flush=True)
    print(summarize(a.out, a.calls))


if __name__ == "__main__":
    main()
