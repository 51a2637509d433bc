"""Fidelity and cost of the conditional surrogates on held-out calls.

Trains each surrogate on calls of a benchmark simulator at Sobol points (as a campaign would
store them) and measures, at held-out points, W1 between the surrogate's samples and fresh
simulator samples, next to the noise floor (W1 between two independent simulator sample sets
of the same size). Also times the fit and the generation of 10,000 candidates × 256 samples.

    python bench/surrogate_fidelity.py [--problems levi_paper ackley_paper] [--calls 40] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from optimizer.space import SearchSpace  # noqa: E402
from optimizer.strategies.base import sobol_points  # noqa: E402
from optimizer.study import Parameter  # noqa: E402
from simulators import SIMULATORS  # noqa: E402
from surrogates import SURROGATES  # noqa: E402

MODELS = {
    "mdn (default)": ("mdn", {}),
    "wgan fast": ("wgan", {"preset": "fast"}),
    "wgan paper, 5 epochs": ("wgan", {"preset": "paper", "epochs": 5}),
}


def w1(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.sort(a) - np.sort(b)).mean())


def one(problem: str, model: str, calls: int, n: int, seed: int) -> dict[str, float]:
    sim = SIMULATORS.get(problem)()
    lo, hi = sim.domain
    space = SearchSpace({p: Parameter(low=lo, high=hi) for p in sim.parameters})
    train = sobol_points(space.dim, seed, 0, calls)
    test = sobol_points(space.dim, seed + 1000, 0, 16)
    y = torch.stack([torch.as_tensor(sim.simulate(space.to_params(space.from_unit(u)), n, i)) for i, u in enumerate(train)])
    name, opts = MODELS[model]
    if opts.get("preset") == "paper":
        opts = {**opts, "theta_low": [lo] * space.dim, "theta_high": [hi] * space.dim}
    m = SURROGATES.get(name)(space.dim, 1, seed=seed, **opts)
    t0 = time.perf_counter()
    m.fit(torch.as_tensor(train, dtype=torch.float32), y)
    fit_s = time.perf_counter() - t0
    g = torch.Generator().manual_seed(seed)
    fake = m.sample(torch.as_tensor(test, dtype=torch.float32), n, generator=g)[..., 0].numpy()
    errs, floors = [], []
    for i, u in enumerate(test):
        params = space.to_params(space.from_unit(u))
        real = sim.simulate(params, n, 10_000 + i)[:, 0]
        real2 = sim.simulate(params, n, 20_000 + i)[:, 0]
        errs.append(w1(fake[i], real))
        floors.append(w1(real2, real))
    t0 = time.perf_counter()
    m.sample(torch.rand(10_000, space.dim), 256, generator=g, common=True)
    sample_s = time.perf_counter() - t0
    return {"w1": float(np.mean(errs)), "floor": float(np.mean(floors)), "fit_s": fit_s, "sample_s": sample_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=["levi_paper", "ackley_paper", "three_hump_camel_paper"])
    ap.add_argument("--models", nargs="+", default=["mdn (default)", "wgan fast"], choices=list(MODELS))
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    a = ap.parse_args()
    torch.set_num_threads(1)
    print(f"{a.calls} training calls x {a.samples} samples, 16 held-out points, seeds {a.seeds}, 1 torch thread")
    print("| problem | surrogate | held-out W1 (median over seeds) | noise floor | fit (s) | 10k x 256 samples (s) |")
    print("|---|---|---|---|---|---|")
    for p in a.problems:
        for model in a.models:
            rs = [one(p, model, a.calls, a.samples, s) for s in a.seeds]
            med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
            print(f"| {p} | {model} | {med['w1']:.3f} | {med['floor']:.3f} | {med['fit_s']:.1f} | {med['sample_s']:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
