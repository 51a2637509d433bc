"""WU-GO's residual correction (``correction: gp``): f̂ plus a GP fitted on its residuals at the evaluated designs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import base_study
from optimizer.space import SearchSpace
from optimizer.strategies.wugo import MIN_CORRECTION_CALLS, WUGOStrategy
from optimizer.study import validate_study
from optimizer.testing import StrategyConformance

FAST = {"surrogate_options": {"steps": 150, "refit_steps": 50}, "candidates": 256, "generated": 64,
        "perturbations": 16, "top_k": 4}
CORRECTED = {**FAST, "correction": "gp"}


def _study():
    return validate_study(base_study(strategy={"name": "wugo"}, budget={"calls": 30, "initial_design": 4}))


class TestWUGOCorrectionConformance(StrategyConformance):
    """The whole strategy suite (proposals in the cube, batches, pending points, resume) with the correction on."""

    @pytest.fixture
    def make_strategy(self):
        return lambda space, study, seed: WUGOStrategy(space, study, seed, **CORRECTED)

    @pytest.fixture
    def study(self):
        return _study()


def test_correction_is_checked_at_load_and_off_by_default() -> None:
    with pytest.raises(ValueError, match="strategy.options.correction: ") as err:
        WUGOStrategy.check_options({"correction": "kriging"})
    assert "\n" not in str(err.value)
    study = _study()
    space = SearchSpace(study.parameters)
    assert WUGOStrategy(space, study, 0).cfg["correction"] == "none"
    assert WUGOStrategy(space, study, 0, preset="wugo-paper").cfg["correction"] == "none"


def test_corrected_statistic_reproduces_the_observed_one_at_the_evaluated_designs() -> None:
    """At the data, f̂ + the residual GP's mean is the observed statistic to within a few standard errors, where the
    surrogate alone is off by its fit error; with the correction off, or too few calls, it adds nothing."""
    study = _study()
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
    study = _study()
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
