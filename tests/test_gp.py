"""GP Bayesian optimisation (BoTorch): protocol, pending points, a noiseless quadratic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import base_study
from optimizer.space import SearchSpace
from optimizer.strategies.gp import GPStrategy
from optimizer.study import validate_study
from optimizer.testing import StrategyConformance

FAST = {"num_restarts": 4, "raw_samples": 128, "maxiter": 50, "mc_samples": 64}


def make(**options):
    study = validate_study(base_study(strategy={"name": "gp"}))
    space = SearchSpace(study.parameters)
    return GPStrategy(space, study, 0, **{**FAST, **options}), space


class TestGPConformance(StrategyConformance):
    @pytest.fixture(params=["qlognei", "qlogei", "ucb"])
    def make_strategy(self, request):
        return lambda space, study, seed: GPStrategy(space, study, seed, **{**FAST, "acquisition": request.param})

    @pytest.fixture
    def study(self):
        return validate_study(base_study(strategy={"name": "gp"}))


def test_pending_points_change_the_proposal() -> None:
    strat, space = make()
    h = StrategyConformance.make_history(space, 8)
    alone = strat.ask(h, np.zeros((0, 2)), 1)[0]
    again = strat.ask(h, alone[None], 1)[0]
    assert np.linalg.norm(again - alone) > 1e-3


def test_one_fit_serves_every_ask_on_the_same_history(monkeypatch) -> None:
    """The campaign asks once per free worker; the GP is refitted only when the history changes."""
    strat, space = make()
    fits = []
    orig = GPStrategy.fit_model
    monkeypatch.setattr(GPStrategy, "fit_model", lambda self, h: fits.append(len(h)) or orig(self, h))
    h = StrategyConformance.make_history(space, 8)
    strat.tell(h)
    first = strat.ask(h, np.zeros((0, 2)), 1)
    strat.ask(h, first, 1)
    assert fits == [8]
    h.objectives[0, 0] += 1.0  # a changed value is a new history
    strat.ask(h, np.zeros((0, 2)), 1)
    assert fits == [8, 8]
    h9 = StrategyConformance.make_history(space, 9)
    strat.ask(h9, np.zeros((0, 2)), 1)
    assert fits == [8, 8, 9]


def test_bad_options_rejected() -> None:
    with pytest.raises(ValueError, match="acquisition"):
        make(acquisition="pi")
    with pytest.raises(TypeError):
        make(kernel="rbf")
    with pytest.raises(ValueError, match="not an objective"):
        make(objectives=["g"])


def test_gp_finds_noiseless_quadratic_minimum(write_study, tmp_path: Path) -> None:
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.study import load_study

    data = base_study(
        parameters={"x1": {"low": -2, "high": 2}, "x2": {"low": -2, "high": 2}},
        simulator={"name": "sims_for_tests:quadratic", "samples_per_call": 2, "options": {"noise": 0.0}},
        strategy={"name": "gp", "options": FAST}, budget={"calls": 16, "initial_design": 5},
    )
    p = write_study(data)
    study, text = load_study(p)
    camp = Campaign.create(tmp_path / "gp", study, text, source=str(p))
    run_campaign(camp, study)
    theta = np.array([[r.params["x1"], r.params["x2"]] for r in camp.records().values()])
    assert np.linalg.norm(theta, axis=1).min() < 0.1  # in a [-2, 2]² box, after 11 GP proposals


def test_missing_standard_errors_warn_before_inferring_noise() -> None:
    from optimizer.fallbacks import InferredNoiseWarning

    strat, space = make()
    h = StrategyConformance.make_history(space, 6)
    h.objective_sems[:] = np.nan
    with pytest.warns(InferredNoiseWarning, match=r"f \(mean\)"):
        _, Yvar = strat.outcomes(h)
    assert Yvar is None


def test_no_gp_fit_while_the_initial_design_is_open(write_study, tmp_path: Path, monkeypatch) -> None:
    """Nothing can be proposed before the initial design completes, so the GP is not fitted on 1, 2, 3 calls."""
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.study import load_study

    fits: list[int] = []
    orig = GPStrategy.fit_model
    monkeypatch.setattr(GPStrategy, "fit_model", lambda self, h: fits.append(len(h)) or orig(self, h))
    data = base_study(strategy={"name": "gp", "options": FAST}, budget={"calls": 6, "initial_design": 4})
    p = write_study(data)
    study, text = load_study(p)
    run_campaign(Campaign.create(tmp_path / "c", study, text, source=str(p)), study)
    assert fits and min(fits) == 4, fits


def test_warning_guard_silences_only_known_harmless_warnings() -> None:
    import warnings

    from botorch.exceptions.warnings import OptimizationWarning
    from gpytorch.utils.warnings import NumericalWarning

    from optimizer.strategies.gp import _quiet_known_warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _quiet_known_warnings()
        warnings.warn("jitter added", NumericalWarning)
        warnings.warn("optimisation failed", OptimizationWarning)
    assert [w.category for w in seen] == [OptimizationWarning]
