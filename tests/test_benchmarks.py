"""Benchmark problems: values at the optima, the noise models, reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from simulators import SIMULATORS
from simulators.benchmarks import LOG_EPS

PAPER = ["three_hump_camel_paper", "ackley_paper", "levi_paper", "himmelblau_paper", "rosenbrock_paper", "styblinski_tang_paper"]
TEXTBOOK = ["three_hump_camel", "ackley", "levi", "himmelblau", "rosenbrock", "styblinski_tang"]


@pytest.mark.parametrize(
    "name, options, value",
    [
        ("three_hump_camel_paper", {}, math.log(LOG_EPS)),
        ("ackley_paper", {}, math.log(1.3793 + LOG_EPS)),  # the cos(2·π^x) typo lifts the minimum to 1.3793
        ("levi_paper", {}, math.log(LOG_EPS)),
        ("himmelblau_paper", {}, math.log(LOG_EPS)),
        ("rosenbrock_paper", {"dim": 8}, math.log(LOG_EPS)),
        ("rosenbrock_paper", {"dim": 20}, math.log(LOG_EPS)),
        ("styblinski_tang_paper", {"dim": 20}, 9.554),  # log(14099.8): the 39.16617·d² offset
        ("three_hump_camel", {}, 0.0),
        ("ackley", {}, 0.0),
        ("levi", {}, 0.0),
        ("himmelblau", {}, 0.0),
        ("rosenbrock", {"dim": 20}, 0.0),
        ("styblinski_tang", {"dim": 20}, -39.16617 * 20),
    ],
)
def test_value_at_optimum(name: str, options: dict, value: float) -> None:
    sim = SIMULATORS.get(name)(**options)
    for opt in sim.optima():
        assert float(sim.expected(opt)) == pytest.approx(value, abs=2e-3)
    assert sim.optimum_value() == pytest.approx(value, abs=2e-3)


@pytest.mark.parametrize("name", PAPER + TEXTBOOK)
def test_optimum_is_a_local_minimum(name: str) -> None:
    sim = SIMULATORS.get(name)()
    opt = sim.optima()[0]
    g = torch.Generator().manual_seed(0)
    nearby = opt + 0.05 * torch.randn(200, sim.dim, generator=g, dtype=torch.float64)
    assert torch.all(sim.f(nearby) >= sim.f(opt) - 1e-6)


def test_himmelblau_has_four_minima() -> None:
    sim = SIMULATORS.get("himmelblau")()
    assert len(sim.known_optima()) == 4
    assert torch.all(sim.f(sim.optima()) < 1e-9)


def test_ackley_typo_differs_from_textbook_off_axis() -> None:
    paper, book = SIMULATORS.get("ackley_paper")(), SIMULATORS.get("ackley")()
    x = torch.tensor([0.5, 0.0], dtype=torch.float64)
    # cos(2·π^0.5) vs cos(π): the paper's landscape is not periodic in x1
    assert not math.isclose(float(torch.log(paper.f(x))), float(torch.log(book.f(x) + LOG_EPS)), rel_tol=1e-3)
    assert float(paper.f(torch.zeros(2, dtype=torch.float64))) == pytest.approx(1.3793, abs=1e-4)


@pytest.mark.parametrize("name", ["three_hump_camel_paper", "ackley_paper", "himmelblau_paper", "rosenbrock_paper", "three_hump_camel"])
def test_gaussian_noise_model(name: str) -> None:
    sim = SIMULATORS.get(name)()
    params = {p: 0.3 for p in sim.parameters}
    y = sim.simulate(params, 20000, seed=5)[:, 0]
    mean = float(sim.expected(sim._theta(params)))
    assert y.mean() == pytest.approx(mean, abs=4 * 0.1 / math.sqrt(20000))
    assert y.std() == pytest.approx(0.1, rel=0.03)


def test_levi_mixture_noise() -> None:
    sim = SIMULATORS.get("levi_paper")()
    for x2 in (1.0, 1.0 + 1 / 6):  # s = sin²(3π·x2) = 0 and 1
        params = {"x1": 0.5, "x2": x2}
        s = math.sin(3 * math.pi * x2) ** 2
        m = float(sim.expected(sim._theta(params)))
        y = sim.simulate(params, 20000, seed=1)[:, 0]
        lo, hi = y[:10000], y[10000:]
        assert lo.mean() == pytest.approx(m - 0.05, abs=1e-3)
        assert hi.mean() == pytest.approx(m + 0.05, abs=1e-3)
        assert lo.std() == pytest.approx(0.04 - 0.03 * s, rel=0.05)
        assert hi.std() == pytest.approx(0.001 + 0.03 * s, rel=0.05)


def test_sigma_option_and_reproducibility() -> None:
    sim = SIMULATORS.get("ackley")(sigma=0.5)
    a = sim.simulate({"x1": 1.0, "x2": 2.0}, 5000, seed=3)
    b = sim.simulate({"x1": 1.0, "x2": 2.0}, 5000, seed=3)
    c = sim.simulate({"x1": 1.0, "x2": 2.0}, 5000, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.std() == pytest.approx(0.5, rel=0.05)


def test_fixed_dim_problem_rejects_other_dim() -> None:
    with pytest.raises(ValueError, match="only for dim=2"):
        SIMULATORS.get("himmelblau")(dim=3)


def test_vectorised_over_batches() -> None:
    sim = SIMULATORS.get("rosenbrock")(dim=8)
    x = torch.rand(7, 3, 8, dtype=torch.float64)
    out = sim.expected(x)
    assert out.shape == (7, 3)
    assert float(out[2, 1]) == pytest.approx(float(sim.expected(x[2, 1])))


def test_branin_currin_is_botorchs_problem_observed_through_its_noise() -> None:
    import numpy as np
    import torch
    from botorch.test_functions.multi_objective import BraninCurrin as Reference

    from simulators.benchmarks import BraninCurrin

    sim = BraninCurrin(sigma=(15.0, 0.5))
    x = {"x1": 0.3, "x2": 0.7}
    y = sim.simulate(x, 20000, seed=4)
    truth = Reference().evaluate_true(torch.tensor([[0.3, 0.7]], dtype=torch.float64))[0].numpy()
    assert y.shape == (20000, 2)
    assert np.allclose(y.mean(0), truth, atol=4 * np.array([15.0, 0.5]) / np.sqrt(20000))
    assert np.allclose(y.std(0), [15.0, 0.5], rtol=0.03)
