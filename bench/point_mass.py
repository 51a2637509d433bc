"""Outputs with point masses on a hard bound: how the MDN treats them, by held-out W1.

    python bench/point_mass.py [--seeds 0 1 2] [--campaign DIR]

Three MDN variants, side by side on the same data: no treatment (``clip_to_data: false``),
clipping the samples at the atom (``censor: false``), and the default, which also trains on
the atom's values as censored (a Tobit likelihood).

* ``hits``: a hit weight that is Exp(1) with probability 0.2 + 0.6θ and exactly 0 otherwise
  (``optimizer.testing.zero_inflated_hits``).
* ``pair``: x ~ N(θ, 0.3²) beside y = clamp(x + N(0, 0.5²), 0, 1.5)
  (``optimizer.testing.censored_pair``): atoms at both bounds, correlated with x. Scored on y.

Each is fitted on 30 calls × 300 samples at random θ and scored at θ = 0.25 and 0.75 against 4000 fresh
samples. The table gives the W1 and, for the lower atom, its generated weight against the true one.

``--campaign DIR`` runs the report's held-out check (``optimizer.diagnostics.held_out``: 4 calls left
out, a fresh surrogate refitted on the rest) on a stored campaign with and without censoring.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import ot  # noqa: E402
import torch  # noqa: E402

from optimizer.testing import censored_pair, zero_inflated_hits  # noqa: E402
from surrogates import SURROGATES  # noqa: E402

VARIANTS = {"none": {"clip_to_data": False}, "clip": {"censor": False}, "censor (default)": {}}
PROBLEMS = {"hits": (zero_inflated_hits, 0), "pair": (censored_pair, 1)}
AT = torch.tensor([[0.25], [0.75]])


def one(problem: str, variant: str, seed: int) -> dict[str, list[float]]:
    truth, col = PROBLEMS[problem]
    g = torch.Generator().manual_seed(seed)
    theta = torch.rand(30, 1, generator=g)
    data = truth(theta, 300, g)
    real = truth(AT, 4000, g)[..., col].numpy()
    model = SURROGATES.get("mdn")(1, data.shape[-1], seed=seed, **VARIANTS[variant])
    t = time.perf_counter()
    model.fit(theta, data)
    fit = time.perf_counter() - t
    fake = model.sample(AT, 4000, generator=torch.Generator().manual_seed(seed + 1))[..., col].numpy()
    lo = real.min()
    return {"w1": [float(ot.wasserstein_1d(fake[i], real[i])) for i in range(2)],
            "atom": [float((fake[i] <= lo).mean()) for i in range(2)],
            "true": [float((real[i] == lo).mean()) for i in range(2)], "fit": [fit]}


def campaign(path: str) -> None:
    from optimizer.campaign import Campaign
    from optimizer.diagnostics import held_out, report_model

    camp = Campaign.open(path)
    study = camp.study()
    print(f"\nheld-out check on {path} ({study.name}): W1 of the objective's column at 4 left-out calls")
    print("| MDN | W1 | noise floor | nearest stored call | check (s) |")
    print("|---|---|---|---|---|")
    for censor in (False, True):
        t = time.perf_counter()
        model = report_model(study, camp.records(), camp.storage)
        model.strategy.cfg["surrogate_options"] = {**model.strategy.cfg["surrogate_options"], "censor": censor}
        rows = held_out(model, study)

        def fmt(key: str) -> str:
            return " / ".join(f"{getattr(h, key):.3f}" for h in rows)

        name = "censor (default)" if censor else "clip"
        print(f"| {name} | {fmt('w1')} | {fmt('w1_split')} | {fmt('w1_nearest')} | {time.perf_counter() - t:.0f} |",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--campaign", help="a campaign directory for the report's held-out check")
    a = ap.parse_args()
    torch.set_num_threads(1)
    print(f"medians over seeds {a.seeds}; θ = 0.25 / 0.75")
    print("| problem | MDN | held-out W1 | generated mass at or below the lower atom | true atom weight | fit (s) |")
    print("|---|---|---|---|---|---|")
    for problem in PROBLEMS:
        for variant in VARIANTS:
            rs = [one(problem, variant, s) for s in a.seeds]
            med = {k: [statistics.median(r[k][i] for r in rs) for i in range(len(rs[0][k]))] for k in rs[0]}
            f = lambda v: " / ".join(f"{x:.3f}" for x in v)  # noqa: E731
            print(f"| {problem} | {variant} | {f(med['w1'])} | {f(med['atom'])} | {f(med['true'])} | {med['fit'][0]:.1f} |",
                  flush=True)
    if a.campaign:
        campaign(a.campaign)


if __name__ == "__main__":
    main()
