from __future__ import annotations

import numpy as np
import pytest

from optimizer.metrics import evaluate_metric, is_feasible
from optimizer.space import SearchSpace
from optimizer.study import Constraint, Metric, Parameter


def test_space_round_trip_linear_log_integer() -> None:
    space = SearchSpace({
        "a": Parameter(low=-2, high=3),
        "b": Parameter(low=0.01, high=100, log=True),
        "n": Parameter(low=1, high=5, integer=True),
    })
    assert space.from_unit(np.array([0.5, 0.5, 0.5])).tolist() == pytest.approx([0.5, 1.0, 3.0])
    x = space.from_unit(np.random.default_rng(0).random((1000, 3)))
    assert x[:, 0].min() >= -2 and x[:, 0].max() <= 3
    assert x[:, 1].min() >= 0.01 and x[:, 1].max() <= 100
    # every integer equally likely, including the end points
    counts = np.bincount(x[:, 2].astype(int), minlength=6)[1:]
    assert counts.min() > 150
    params = space.to_params(x[0])
    assert isinstance(params["n"], int) and isinstance(params["a"], float)
    np.testing.assert_allclose(space.from_unit(space.to_unit(x)), x, rtol=1e-9, atol=1e-9)


def test_mean_and_sem() -> None:
    y = np.random.default_rng(0).normal(3.0, 2.0, size=(10000, 1))
    v, s = evaluate_metric(Metric(), y, ["y"], {})
    assert v == pytest.approx(3.0, abs=0.06) and s == pytest.approx(0.02, rel=0.05)


def test_statistics_on_known_samples() -> None:
    y = np.arange(1, 101, dtype=float)[:, None]
    w = np.ones_like(y)
    s = np.hstack([y, w])
    assert evaluate_metric(Metric(statistic="median"), s, ["y", "w"], {})[0] == 50.5
    assert evaluate_metric(Metric(statistic="quantile", q=0.9), s, ["y", "w"], {})[0] == pytest.approx(90.1)
    assert evaluate_metric(Metric(statistic="fraction_above", threshold=75), s, ["y", "w"], {})[0] == 0.25
    assert evaluate_metric(Metric(statistic="fraction_below", threshold=11), s, ["y", "w"], {})[0] == 0.10
    assert evaluate_metric(Metric(statistic="sum"), s, ["y", "w"], {})[0] == 5050
    assert evaluate_metric(Metric(statistic="std"), s, ["y", "w"], {})[0] == pytest.approx(np.std(y, ddof=1))
    assert evaluate_metric(Metric(output="w"), s, ["y", "w"], {})[0] == 1.0
    assert evaluate_metric(Metric(quantity="cost"), s, ["y", "w"], {"cost": 7.5}) == (7.5, 0.0)


def test_weighted_metrics() -> None:
    s = np.array([[1.0, 3.0], [0.0, 1.0]])  # y, weight
    assert evaluate_metric(Metric(weight="w"), s, ["y", "w"], {})[0] == pytest.approx(0.75)
    assert evaluate_metric(Metric(statistic="sum", weight="w"), s, ["y", "w"], {})[0] == pytest.approx(3.0)
    assert evaluate_metric(Metric(statistic="fraction_above", threshold=0.5, weight="w"), s, ["y", "w"], {})[0] == pytest.approx(0.75)


def test_feasibility() -> None:
    cons = {"mass": Constraint(quantity="mass", upper=10), "rate": Constraint(lower=0.1)}
    assert is_feasible(cons, {"mass": 9, "rate": 0.2})
    assert not is_feasible(cons, {"mass": 11, "rate": 0.2})
    assert not is_feasible(cons, {"mass": 9, "rate": 0.0})


def test_weighted_mean_with_zero_total_weight_is_not_finite() -> None:
    """No weight at all: the mean is undefined (the campaign then records invalid_output), never 0."""
    m = Metric(statistic="mean", output="y", weight="w")
    samples = np.column_stack([np.ones(10), np.zeros(10)])
    value, _ = evaluate_metric(m, samples, ["y", "w"], {})
    assert np.isnan(value)


@pytest.mark.parametrize("statistic, q", [("quantile", 0.9), ("median", 0.5), ("quantile", 0.25)])
def test_quantile_sem_matches_monte_carlo_spread(statistic: str, q: float) -> None:
    """The asymptotic s.e. against the spread of the sample quantile over 2000 repeated calls (skewed data)."""
    rng = np.random.default_rng(0)
    m = Metric(statistic=statistic, q=q) if statistic == "quantile" else Metric(statistic=statistic)
    reps = rng.gamma(2.0, 1.0, size=(2000, 1000))
    spread = float(np.quantile(reps, q, axis=1).std())
    sems = [evaluate_metric(m, reps[i][:, None], ["y"], {})[1] for i in range(20)]
    assert float(np.median(sems)) == pytest.approx(spread, rel=0.2)


def test_quantile_sem_of_a_point_mass_is_zero() -> None:
    value, sem = evaluate_metric(Metric(statistic="quantile", q=0.5), np.zeros((100, 1)), ["y"], {})
    assert value == 0.0 and sem == 0.0
