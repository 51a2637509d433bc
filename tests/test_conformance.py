"""Every registered implementation passes its protocol's conformance suite."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import base_study
from optimizer.executors.inline import InlineExecutor
from optimizer.space import SearchSpace
from optimizer.strategies import STRATEGIES
from optimizer.study import validate_study
from optimizer.testing import ExecutorConformance, SimulatorConformance, StrategyConformance
from simulators import SIMULATORS


# Simulators that need options to exist are covered by their own conformance classes (test_command.py).
NEEDS_OPTIONS = {"command"}


@pytest.fixture(params=[n for n in SIMULATORS.names() if n not in NEEDS_OPTIONS])
def simulator(request):
    return SIMULATORS.get(request.param)()


class TestRegisteredSimulators(SimulatorConformance):
    pass


class TestFunctionSimulator(SimulatorConformance):
    @pytest.fixture
    def simulator(self):
        from simulators import FunctionSimulator
        from sims_for_tests import two_outputs

        return FunctionSimulator(two_outputs, outputs=("pos", "energy"))

    @pytest.fixture
    def simulator_params(self):
        return {"x1": 0.3}


STRATEGY_OPTIONS = {
    "listed": {"designs": [{"x1": v, "x2": -v} for v in (0.0, 1.0, 2.0, 3.0, 4.0, -1.0, -2.0)]},
    "nn-ensemble": {"members": 3, "steps": 150},  # a small ensemble: every check fits its own
}
# Strategies whose own test file runs the suite on each variant, with small models (the same run here
# would repeat one of them).
OWN_SUITE = {"gp": "test_gp.py", "wugo": "test_wugo.py"}


@pytest.fixture
def space():
    return SearchSpace(validate_study(base_study()).parameters)


class TestRegisteredStrategies(StrategyConformance):
    @pytest.fixture(params=[n for n in STRATEGIES.names() if n not in OWN_SUITE])
    def make_strategy(self, request):
        options = STRATEGY_OPTIONS.get(request.param, {})
        return lambda space, study, seed: STRATEGIES.get(request.param)(space, study, seed, **options)


class TestInlineExecutor(ExecutorConformance):
    enforces_timeout = False  # documented: the inline executor runs each call to its end in the driver

    @pytest.fixture
    def make_executor(self):
        return InlineExecutor


def test_sobol_continues_initial_design(space) -> None:
    from optimizer.strategies.base import SobolStrategy, initial_design

    study = validate_study(base_study())
    init = initial_design("sobol", 4, 2, seed=3)
    nxt = SobolStrategy(space, study, 3).ask(StrategyConformance.make_history(space, 4), np.zeros((0, 2)), 4)
    both = initial_design("sobol", 8, 2, seed=3)
    np.testing.assert_allclose(np.vstack([init, nxt]), both)


def test_olhs_initial_design_as_in_paper() -> None:
    import warnings

    from optimizer.strategies.base import initial_design

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 4 = 2² in 2-D: the strength-2 construction, no fallback
        x = initial_design("olhs", 4, 2, seed=2)
    # strength-2 orthogonal LHS: one point in each row and column stratum, both coordinates
    for col in x.T:
        assert sorted(np.floor(col * 4).astype(int)) == [0, 1, 2, 3]
    # ... and every pair of coordinates covers each of the 2 × 2 cells of the half-split once
    for i in range(2):
        for j in range(i + 1, 2):
            cells = {(a, b) for a, b in np.floor(x[:, [i, j]] * 2).astype(int)}
            assert len(cells) == 4


@pytest.mark.parametrize("n, dim", [(12, 6), (6, 2), (4, 20), (1, 3), (9, 5)])
def test_olhs_any_size_falls_back_to_an_optimised_lhs(n: int, dim: int) -> None:
    from optimizer.strategies.base import InitialDesignFallbackWarning, initial_design

    with pytest.warns(InitialDesignFallbackWarning, match=f"olhs: no strength-2 orthogonal LHS of {n} points in {dim}-D") as rec:
        x = initial_design("olhs", n, dim, seed=2)
        again = initial_design("olhs", n, dim, seed=2)
    assert len([w for w in rec if issubclass(w.category, InitialDesignFallbackWarning)]) == 2  # one per design
    assert x.shape == (n, dim) and np.all((x >= 0) & (x < 1))
    for col in x.T:  # Latin hypercube: exactly one point in each 1/n stratum of every coordinate
        assert sorted(np.floor(col * n).astype(int)) == list(range(n))
    np.testing.assert_array_equal(x, again)  # reproducible from the seed
