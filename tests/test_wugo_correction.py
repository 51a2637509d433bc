"""WU-GO's residual correction (``correction: gp``): f̂ plus a GP fitted on its residuals at the evaluated designs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import FAST_WUGO, base_study, wugo_study
from optimizer.space import SearchSpace
from optimizer.strategies.wugo import MIN_CORRECTION_CALLS, WUGOStrategy, log_expected_improvement
from optimizer.study import validate_study
from optimizer.testing import StrategyConformance

FAST = FAST_WUGO
CORRECTED = {**FAST, "correction": "gp"}


LCB = {**CORRECTED, "uncertainty": "residual"}
EI = {**LCB, "criterion": "ei"}


class TestWUGOCorrectionConformance(StrategyConformance):
    """The whole strategy suite (proposals in the cube, batches, pending points, resume) with the correction on:
    f̂ corrected (σ_W), the residual GP's std as the uncertainty (which must collapse at points in flight, or a
    batch would pile up), and log EI under the residual GP."""

    @pytest.fixture(params=[CORRECTED, LCB, EI], ids=["mean", "residual", "ei"])
    def make_strategy(self, request):
        return lambda space, study, seed: WUGOStrategy(space, study, seed, **request.param)

    @pytest.fixture
    def study(self):
        return wugo_study()


def test_correction_is_checked_at_load_and_off_by_default() -> None:
    with pytest.raises(ValueError, match="strategy.options.correction: ") as err:
        WUGOStrategy.check_options({"correction": "kriging"})
    assert "\n" not in str(err.value)
    study = wugo_study()
    space = SearchSpace(study.parameters)
    assert WUGOStrategy(space, study, 0).cfg["correction"] == "none"
    assert WUGOStrategy(space, study, 0, preset="wugo-paper").cfg["correction"] == "none"


def test_corrected_statistic_reproduces_the_observed_one_at_the_evaluated_designs() -> None:
    """At the data, f̂ + the residual GP's mean is the observed statistic to within a few standard errors, where the
    surrogate alone is off by its fit error; with the correction off, or too few calls, it adds nothing."""
    study = wugo_study()
    space = SearchSpace(study.parameters)
    history = StrategyConformance.make_history(space, 12)
    strat = WUGOStrategy(space, study, 0, **CORRECTED)
    strat.tell(history)
    gen_seed = 123
    strat._correction = strat._fit_correction(history, gen_seed)
    assert strat._correction is not None
    fhat = strat._value(strat.metric, strat._generate(history.theta, gen_seed), {})
    y = history.objectives[:, 0]
    raw = np.abs(fhat - y)
    corrected = np.abs(fhat + strat.correction_at(history.theta) - y)
    sem = float(history.objective_sems[0, 0])
    assert corrected.max() < 5 * sem < raw.max()
    assert corrected.max() < 0.2 * raw.max()
    off = WUGOStrategy(space, study, 0, **FAST)
    assert off._fit_correction(history, gen_seed) is None
    few = StrategyConformance.make_history(space, MIN_CORRECTION_CALLS - 1)
    assert strat._fit_correction(few, gen_seed) is None


def test_polish_descends_the_corrected_twin() -> None:
    """With the polish on, the twin adds the residual GP's mean, differentiably: the polished values are the twin's."""
    study = wugo_study()
    space = SearchSpace(study.parameters)
    strat = WUGOStrategy(space, study, 0, **CORRECTED, polish=10)
    history = StrategyConformance.make_history(space, 8)
    strat.ask(history, np.zeros((0, space.dim)), 1)  # fits the surrogate and the pick's correction
    assert strat._correction is not None
    starts = np.array([[0.3, 0.4], [0.6, 0.2]])
    points, values = strat._polish(starts)
    with torch.no_grad():
        twin = strat._polish_acquisition(torch.as_tensor(points, dtype=torch.float64)).numpy()
        uncorrected = twin - strat.correction_at(points) / strat._spread["f"]
    np.testing.assert_allclose(values, twin)
    assert not np.allclose(twin, uncorrected)


def test_residual_uncertainty_needs_the_correction() -> None:
    with pytest.raises(ValueError, match="strategy.options.uncertainty: residual needs correction: gp") as err:
        WUGOStrategy.check_options({"uncertainty": "residual"})
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="strategy.options.members: "):
        WUGOStrategy.check_options({"uncertainty": "residual", "correction": "gp", "members": 3})
    WUGOStrategy.check_options(LCB)


def test_residual_uncertainty_is_the_gps_std_and_collapses_where_points_are_in_flight() -> None:
    """The acquisition's term is the residual GP's posterior std: it is larger away from the data, and, once the
    ask's in-flight points are conditioned on, near zero at them and unchanged far from them."""
    study = wugo_study()
    space = SearchSpace(study.parameters)
    history = StrategyConformance.make_history(space, 10)
    strat = WUGOStrategy(space, study, 0, **LCB)
    strat.tell(history)
    flight = np.array([[0.5, 0.5], [0.2, 0.8]])
    far = np.array([[0.97, 0.03]])
    strat._correction = strat._fit_correction(history, 7)
    before = strat.correction_at(np.vstack([flight, far]), "std")
    ys = strat._generate(np.vstack([flight, far]), 7)
    term = strat._uncertainty(np.vstack([flight, far]), ys, 7)
    sigma_w = strat.bank.min_distance(ys).numpy()
    np.testing.assert_allclose(term, before)
    assert not np.allclose(term, sigma_w)
    assert before.min() > 0
    strat._correction = strat._fit_correction(history, 7, flight)
    after = strat.correction_at(np.vstack([flight, far]), "std")
    assert after[:2].max() < 0.05 * before[:2].min()
    assert after[2] > 0.5 * before[2]
    means = strat.correction_at(flight)  # the believer's fantasy keeps the mean where it was
    strat._correction = strat._fit_correction(history, 7)
    np.testing.assert_allclose(means, strat.correction_at(flight), rtol=1e-3, atol=1e-6)


def test_residual_uncertainty_refuses_several_objectives() -> None:
    study = validate_study(base_study(simulator={"name": "sims_for_tests:Shield", "samples_per_call": 50},
                                      parameters={"x1": {"low": 0, "high": 1}, "x2": {"low": 0, "high": 1}},
                                      objectives={"bkg": {"statistic": "mean"}, "cost": {"quantity": "cost"}}))
    space = SearchSpace(study.parameters)
    with pytest.raises(ValueError, match="strategy.options.uncertainty: residual needs one objective"):
        WUGOStrategy(space, study, 0, **LCB)
    WUGOStrategy(space, study, 0, **LCB, objective="bkg")  # one of them: fine


def test_ei_needs_the_residual_posterior() -> None:
    with pytest.raises(ValueError, match="strategy.options.criterion: ei needs uncertainty: residual"):
        WUGOStrategy.check_options({"criterion": "ei", "correction": "gp"})
    with pytest.raises(ValueError, match="strategy.options.criterion: "):
        WUGOStrategy.check_options({"criterion": "pi"})
    assert WUGOStrategy(SearchSpace(wugo_study().parameters), wugo_study(), 0).cfg["criterion"] == "lcb"


def test_log_expected_improvement_matches_the_closed_form_and_stays_finite_in_the_tail() -> None:
    from scipy.stats import norm

    gain = np.array([-30.0, -8.0, -1.0, 0.0, 0.7, 4.0])
    sd = np.array([1.0, 2.0, 0.5, 1.0, 3.0, 1.0])
    u = gain / sd
    np.testing.assert_allclose(log_expected_improvement(gain, sd), np.log(sd * (norm.pdf(u) + u * norm.cdf(u))),
                               rtol=1e-9)
    far = log_expected_improvement(np.array([-50.0, -5e3]), np.ones(2))
    # the asymptote: log φ(u) − 2 log|u|
    np.testing.assert_allclose(far, -0.5 * np.array([50.0, 5e3]) ** 2 - 0.5 * np.log(2 * np.pi)
                               - 2 * np.log([50.0, 5e3]), rtol=1e-6)
    assert np.all(np.diff(log_expected_improvement(np.linspace(-40, 5, 50), np.ones(50))) > 0)


def test_ei_score_is_minus_log_ei_of_the_corrected_statistic() -> None:
    """Under ``ei`` the pick's score is −log EI of f̂ + residual mean against the model's best evaluated design: the
    score is finite everywhere, the evaluated designs included (their sd is the noise floor)."""
    study = wugo_study()
    space = SearchSpace(study.parameters)
    history = StrategyConformance.make_history(space, 10)
    strat = WUGOStrategy(space, study, 0, **EI)
    x = strat.ask(history, np.zeros((0, space.dim)), 1)
    assert strat._correction is not None
    pts = np.vstack([x, history.theta])
    score, ys = strat._score(pts, 11)
    f = strat._value(strat.metric, ys, {}) + strat.correction_at(pts)
    sd = strat.correction_at(pts, "std")
    np.testing.assert_allclose(score, -log_expected_improvement(strat._incumbent - strat.sign * f, sd), rtol=1e-9)
    assert np.all(np.isfinite(score))
