"""Per-iteration cost of WU-GO on three-hump camel (paper variant, 1000 samples per call).

One iteration = warm refit of the surrogate on all stored calls + one proposal (generation,
σ_W against every stored call, acquisition optimisation). Measured at 4 and 100 stored calls
for the default preset and ``wugo-paper``, side by side in one process, median of repeats.

The paper preset trains its WGAN-GP for 100 epochs at batch 16 over every stored sample; its
fit is timed over ``--paper-epochs`` epochs and scaled linearly to 100 (marked "extrapolated").
Also times σ_W alone for 10,201 candidates × 104 stored calls × 1000 samples.

    python bench/wugo_overhead.py [--repeats 3] [--paper-epochs 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from optimizer.distances import DistributionBank  # noqa: E402
from optimizer.space import SearchSpace  # noqa: E402
from optimizer.strategies.base import History, sobol_points  # noqa: E402
from optimizer.strategies.wugo import WUGOStrategy  # noqa: E402
from optimizer.study import validate_study  # noqa: E402
from simulators import SIMULATORS  # noqa: E402

STUDY = validate_study({
    "name": "overhead", "seed": 2,
    "parameters": {"x1": {"low": -5, "high": 5}, "x2": {"low": -5, "high": 5}},
    "simulator": {"name": "three_hump_camel_paper", "samples_per_call": 1000},
    "objectives": {"f": {}}, "budget": {"calls": 200, "initial_design": 4},
})


def history(n_calls: int) -> History:
    space = SearchSpace(STUDY.parameters)
    sim = SIMULATORS.get("three_hump_camel_paper")()
    unit = sobol_points(2, 2, 0, n_calls)
    samples = [sim.simulate(space.to_params(space.from_unit(u)), 1000, i) for i, u in enumerate(unit)]
    f = np.array([[s.mean()] for s in samples])
    return History(theta=unit, call_ids=np.arange(1, n_calls + 1), objectives=f, objective_sems=f * 0,
                   constraints=np.zeros((n_calls, 0)), feasible=np.ones(n_calls, bool), objective_names=["f"],
                   directions=["minimize"], failed_theta=np.zeros((0, 2)), n_issued=n_calls,
                   _load=lambda i: samples[i])


def iteration(preset: str, h: History, paper_epochs: int) -> tuple[float, float, float]:
    """(refit seconds, proposal seconds, refit scale factor) for one warm iteration on ``h``."""
    space = SearchSpace(STUDY.parameters)
    opts = {"surrogate_options": {"preset": "paper", "epochs": paper_epochs}} if preset == "wugo-paper" else {}
    strat = WUGOStrategy(space, STUDY, 2, preset=preset, **opts)
    first = History(**{**h.__dict__, "theta": h.theta[:-1], "call_ids": h.call_ids[:-1], "objectives": h.objectives[:-1],
                       "objective_sems": h.objective_sems[:-1], "constraints": h.constraints[:-1],
                       "feasible": h.feasible[:-1], "_cache": {}})
    strat.tell(first)  # the previous iteration's fit: the timed one below is a warm refit
    t0 = time.perf_counter()
    strat.tell(h)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    strat.ask(h, np.zeros((0, 2)), 1)
    ask = time.perf_counter() - t0
    return fit, ask, (100 / paper_epochs if preset == "wugo-paper" else 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--paper-epochs", type=int, default=1)
    ap.add_argument("--only-sigma", action="store_true", help="time σ_W alone")
    a = ap.parse_args()
    if not a.only_sigma:
        iterations(a)
    sigma(a)


def iterations(a: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    print(f"torch threads 1, cpus {os.cpu_count()}, repeats {a.repeats}")
    print("| stored calls | preset | refit (s) | proposal: generation + σ_W + acquisition (s) | iteration (s) |")
    print("|---|---|---|---|---|")
    totals: dict[tuple[int, str], float] = {}
    for n in (4, 100):
        h = history(n)
        for preset in ("default", "wugo-paper"):
            runs = [iteration(preset, h, a.paper_epochs) for _ in range(a.repeats if preset == "default" else 1)]
            fit = statistics.median(r[0] * r[2] for r in runs)
            ask = statistics.median(r[1] for r in runs)
            totals[(n, preset)] = fit + ask
            note = f" (extrapolated from {a.paper_epochs} epoch(s))" if preset == "wugo-paper" else ""
            print(f"| {n} | {preset} | {fit:.2f}{note} | {ask:.2f} | {fit + ask:.2f} |", flush=True)
    for n in (4, 100):
        print(f"speed-up of default over wugo-paper at {n} stored calls: {totals[(n, 'wugo-paper')] / totals[(n, 'default')]:.0f}x")


def sigma(a: argparse.Namespace) -> None:
    g = torch.Generator().manual_seed(0)
    cands = torch.randn(10201, 1000, 1, generator=g, dtype=torch.float64)
    for threads, dist in [(t, d) for t in (1, os.cpu_count() or 1) for d in ("w2", "w1", "energy")]:
        torch.set_num_threads(threads)
        bank = DistributionBank(dist)
        for j in range(104):
            bank.add(j, torch.randn(1000, 1, generator=g, dtype=torch.float64) + 0.01 * j)
        ts = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            bank.min_distance(cands)
            ts.append(time.perf_counter() - t0)
        print(f"σ_W {dist}, {threads} thread(s): 10,201 candidates x 104 stored calls x 1000 samples: median {statistics.median(ts):.2f} s "
              f"({', '.join(f'{t:.2f}' for t in ts)})")


if __name__ == "__main__":
    main()
