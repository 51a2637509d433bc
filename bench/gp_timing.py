"""Median time of one GP-BO iteration (GP fit + q=4 acquisition optimisation) with default options.

Synthetic histories of N calls in d dimensions (a noisy quadratic with known per-call noise);
single objective (qLogNEI) at N ∈ {20, 100, 300}, d ∈ {4, 20}, and two objectives (qLogNEHVI,
one of them a deterministic cost) at N ∈ {20, 100}, d = 4.

    python bench/gp_timing.py [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from optimizer.space import SearchSpace
from optimizer.strategies.base import History
from optimizer.strategies.gp import GPStrategy
from optimizer.study import validate_study


def setup(N: int, d: int, objectives: int, seed: int = 0) -> tuple[GPStrategy, History]:
    params = {f"x{i}": {"low": 0, "high": 1} for i in range(d)}
    objs = {"f": {}} if objectives == 1 else {"f": {}, "cost": {"quantity": "cost"}}
    study = validate_study({"name": "t", "parameters": params, "simulator": {"name": "x"}, "objectives": objs,
                            "budget": {"calls": 1000}, "strategy": {"name": "gp"}})
    rng = np.random.default_rng(seed)
    X = rng.random((N, d))
    f = ((X - 0.3) ** 2).sum(1) + 0.01 * rng.standard_normal(N)
    cols = [f] if objectives == 1 else [f, X.sum(1)]
    Y = np.stack(cols, 1)
    sems = np.stack([np.full(N, 0.01)] + ([np.zeros(N)] if objectives == 2 else []), 1)
    h = History(theta=X, call_ids=np.arange(N), objectives=Y, objective_sems=sems, constraints=np.zeros((N, 0)),
                feasible=np.ones(N, bool), objective_names=list(objs), directions=["minimize"] * objectives,
                failed_theta=np.zeros((0, d)), n_issued=N)
    return GPStrategy(SearchSpace(study.parameters), study, seed), h


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch threads {a.threads}, repeats {a.repeats}, q = 4, num_restarts 10, raw_samples 512")
    print("| objectives | d | calls N | median iteration (s) | all repeats (s) |")
    print("|---|---|---|---|---|")
    cases = [(1, d, N) for d in (4, 20) for N in (20, 100, 300)] + [(2, 4, N) for N in (20, 100)]
    for m, d, N in cases:
        ts = []
        for r in range(a.repeats):
            strat, h = setup(N, d, m, seed=r)
            t0 = time.perf_counter()
            x = strat.ask(h, np.zeros((0, d)), 4)
            ts.append(time.perf_counter() - t0)
            assert x.shape == (4, d)
        print(f"| {m} | {d} | {N} | {statistics.median(ts):.2f} | {', '.join(f'{t:.2f}' for t in ts)} |", flush=True)


if __name__ == "__main__":
    main()
