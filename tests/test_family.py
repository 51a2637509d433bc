"""The distribution-shape benchmark family: exact statistics agree with large Monte Carlo, and each
problem's tail optimum lies away from its mean optimum (so modelling the distribution can matter)."""

from __future__ import annotations

import numpy as np
import pytest

from simulators import SIMULATORS
from simulators.family import FAMILY

#: Samples per Monte-Carlo check: quantile errors then sit near 1 % of the spread.
MC = 200_000


@pytest.mark.parametrize("name", list(FAMILY))
def test_exact_statistics_match_monte_carlo(name: str) -> None:
    cls, tail = FAMILY[name]
    sim = SIMULATORS.get(name)()
    assert isinstance(sim, cls)
    col = list(sim.outputs).index(tail.get("output", sim.outputs[-1]))
    rng = np.random.default_rng(1)
    for u in rng.random((3, cls.dim)):
        params = dict(zip(sim.parameters, u))
        y = sim.simulate(params, MC, seed=7)[:, col]
        sd = y.std()
        assert abs(y.mean() - sim.true_statistic(params, "mean")) < 5 * sd / np.sqrt(MC)
        assert abs(np.quantile(y, 0.5) - sim.true_statistic(params, "median")) < 0.02 * sd + 1e-9
        if tail["statistic"] == "quantile":
            assert abs(np.quantile(y, tail["q"]) - sim.true_statistic(params, "quantile", q=tail["q"])) < 0.03 * sd
        else:
            p = sim.true_statistic(params, tail["statistic"], threshold=tail["threshold"])
            assert abs(np.mean(y > tail["threshold"]) - p) < 5 * np.sqrt(p * (1 - p) / MC) + 1e-4


@pytest.mark.parametrize("name", list(FAMILY))
def test_tail_optimum_is_not_the_mean_optimum(name: str) -> None:
    cls, tail = FAMILY[name]
    sim = cls()
    t = {k: v for k, v in tail.items() if k != "output"}
    _, u_mean = sim.true_optimum("mean", starts=16)
    v_tail, _ = sim.true_optimum(**t, starts=16)
    at_mean = sim.true_statistic(dict(zip(sim.parameters, u_mean)), **t)
    # optimising the mean leaves a clear tail regret: at least 5 % of the tail statistic's range over the
    # box, or (a rare-exceedance fraction, tiny near both optima) five times the attainable fraction
    rng = np.random.default_rng(0)
    spread = np.ptp([sim.true_statistic(dict(zip(sim.parameters, u)), **t) for u in rng.random((64, cls.dim))])
    assert at_mean - v_tail > 0.05 * spread or (t["statistic"] == "fraction_above" and at_mean > 5 * v_tail)
