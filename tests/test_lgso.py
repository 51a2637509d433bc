"""The L-GSO-style local generative-surrogate strategy (``lgso``).

The conformance suite runs on it through ``test_conformance.py`` (every registered strategy); here: its
differentiable statistics, refusals, pending points, quantity constraints, integers, resume, and a seeded
comparison with Sobol in 10-D.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import base_study
from optimizer.campaign import make_strategy, run_campaign
from optimizer.errors import StudyError
from optimizer.metrics import metric_on_samples
from optimizer.space import SearchSpace
from optimizer.strategies import STRATEGIES, History
from optimizer.strategies.base import sobol_points
from optimizer.strategies.lgso import LGSOStrategy
from optimizer.study import Metric, validate_study
from optimizer.testing import StrategyConformance, history_prefix, state_round_trip
from test_campaign import start
from test_highd_strategies import _shield, assert_resume_proposes_as_uninterrupted

SMALL = {"surrogate_options": {"steps": 300, "refit_steps": 100}}  # small fits: these tests check logic, not skill


def _space_study(**over):
    study = validate_study(base_study(**over))
    return SearchSpace(study.parameters), study


def test_refuses_several_objectives_and_a_quantity_objective() -> None:
    space, study = _space_study(objectives={"f": {}, "g": {"statistic": "std"}}, strategy={"name": "lgso"})
    with pytest.raises(StudyError, match="strategy.name: 'lgso' optimises one objective, the study has 2"):
        make_strategy(study, space, "s.yaml")
    space, study = _space_study(simulator={"name": "sims_for_tests:Shield", "samples_per_call": 20},
                                objectives={"cost": {"quantity": "cost"}}, strategy={"name": "lgso"})
    with pytest.raises(StudyError, match="'lgso' needs an objective computed from samples"):
        make_strategy(study, space, "s.yaml")


def test_refuses_a_misspelt_surrogate_option() -> None:
    space, study = _space_study(strategy={"name": "lgso", "options": {"surrogate_options": {"stepz": 3}}})
    with pytest.raises(StudyError, match=r"strategy\.options\.surrogate_options\.stepz: unknown option"):
        make_strategy(study, space, "s.yaml")


def _fitted(k: int = 2, seed: int = 0) -> LGSOStrategy:
    """A strategy whose MDN is fitted on 12 calls of y ~ N(θ₁ + 2θ₂, 0.3²), w ~ U(0, 1) (outputs y, w)."""
    space, study = _space_study(simulator={"name": "three_hump_camel_paper", "samples_per_call": 400})
    strat = LGSOStrategy(space, study, seed, **SMALL)
    rng = np.random.default_rng(seed)
    theta = rng.random((12, 2))
    samples = [np.column_stack([t[0] + 2 * t[1] + 0.3 * rng.standard_normal(400), rng.random(400)])[:, :k]
               for t in theta]
    h = History(theta=theta, call_ids=np.arange(1, 13), objectives=np.array([[s[:, 0].mean()] for s in samples]),
                objective_sems=np.full((12, 1), 0.02), constraints=np.zeros((12, 0)), feasible=np.ones(12, bool),
                objective_names=["f"], directions=["minimize"], failed_theta=np.zeros((0, 2)), n_issued=12,
                _load=lambda i: samples[i])
    strat.outputs = ["y", "w"][:k]
    assert strat._fit(h, np.arange(12), key=0)
    return strat


@pytest.mark.parametrize("metric", [
    {"statistic": "mean", "output": "y"}, {"statistic": "std", "output": "y"},
    {"statistic": "quantile", "q": 0.8, "output": "y"}, {"statistic": "median", "output": "y"},
    {"statistic": "fraction_above", "threshold": 1.5, "output": "y"},
    {"statistic": "mean", "output": "y", "weight": "w"}, {"statistic": "sum", "output": "y"},
])
def test_statistic_matches_generated_samples_and_has_a_gradient(metric: dict) -> None:
    """The differentiable statistic of the mixture agrees with the same statistic of the MDN's own samples."""
    strat = _fitted()
    m = Metric(**metric)
    theta = torch.tensor([[0.2, 0.3], [0.7, 0.6]], dtype=torch.float64, requires_grad=True)
    value = strat.statistic(m, theta)
    value.sum().backward()
    assert theta.grad is not None and torch.isfinite(theta.grad).all() and theta.grad.abs().sum() > 0
    ys = strat.surrogate.sample(theta.detach().float(), 20_000, generator=torch.Generator().manual_seed(1))
    ref = metric_on_samples(m, ys, ["y", "w"]).numpy()
    if m.statistic == "sum":
        ref = ref * 400 / 20_000
    got = value.detach().numpy()
    # particles and 20 000 samples both carry Monte Carlo error; the smoothed fraction a little bias
    np.testing.assert_allclose(got, ref, rtol=0.05, atol=0.03 * (400 if m.statistic == "sum" else 1))


def test_gradient_points_downhill() -> None:
    """y grows with θ₁ + 2θ₂: the mean's gradient is positive in both, larger in θ₂."""
    strat = _fitted(k=1)
    theta = torch.tensor([[0.5, 0.5]], dtype=torch.float64, requires_grad=True)
    strat.statistic(Metric(statistic="mean"), theta)[0].backward()
    g = theta.grad[0].numpy()
    assert g[0] > 0 and g[1] > g[0], g


def test_pending_points_change_the_proposal_and_a_round_waits_for_its_last_results() -> None:
    space, study = _space_study(budget={"calls": 30, "initial_design": 0})
    strat = LGSOStrategy(space, study, 0, n_local=4, **SMALL)
    h = StrategyConformance.make_history(space, 8)
    none = np.zeros((0, 2))
    (first,) = strat.ask(h, none, 1)
    (second,) = strat.ask(h, first[None], 1)
    assert not np.allclose(first, second)
    np.testing.assert_allclose(strat.ask(h, none, 2), np.vstack([first, second]))  # batch = one at a time
    everything = strat.ask(h, none, 10)
    assert len(everything) == 4  # a round has n_local designs
    assert len(strat.ask(h, everything, 3)) == 0  # all in flight: nothing to propose until they finish


def test_global_torch_stream_is_untouched() -> None:
    space, study = _space_study(budget={"calls": 30, "initial_design": 0})
    strat = LGSOStrategy(space, study, 0, n_local=4, **SMALL)
    h = StrategyConformance.make_history(space, 8)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    strat.tell(h)
    strat.ask(h, np.zeros((0, 2)), 2)
    torch.testing.assert_close(torch.rand(3), expected)


def _complete(h: History, new: np.ndarray, f) -> History:
    """``h`` with the calls ``new [b, d]`` completed (50 samples of f(θ) + 0.01·noise each)."""
    rng = np.random.default_rng(len(h))
    theta = np.vstack([h.theta, new])
    old = [h.samples(i) for i in range(len(h))]
    samples = old + [f(x) + 0.01 * rng.standard_normal((50, 1)) for x in new]
    y = np.array([[s.mean()] for s in samples])
    return History(theta=theta, call_ids=np.arange(1, len(theta) + 1), objectives=y,
                   objective_sems=np.full_like(y, 0.01), constraints=np.zeros((len(theta), 0)),
                   feasible=np.ones(len(theta), bool), objective_names=["f"], directions=["minimize"],
                   failed_theta=np.zeros((0, h.theta.shape[1])), n_issued=len(theta), _load=lambda i: samples[i])


def test_never_proposes_outside_the_quantity_constraints_over_several_rounds() -> None:
    """The optimum (0.9, 0.9) lies outside the feasible half-plane θ₁ + θ₂ ≤ 1: rounds and steps press against it."""
    space, study = _space_study(budget={"calls": 60, "initial_design": 0})
    strat = LGSOStrategy(space, study, 1, n_local=5, **SMALL)
    strat.set_feasibility(lambda u: np.asarray(u)[:, 0] + np.asarray(u)[:, 1] <= 1.0)
    f = lambda x: np.array([((x - 0.9) ** 2).sum()])  # noqa: E731
    h = _complete(StrategyConformance.make_history(space, 0), sobol_points(2, 1, 0, 16)[
        sobol_points(2, 1, 0, 16).sum(1) <= 1][:6], f)
    proposed = []
    for _ in range(6):
        strat.tell(h)
        x = strat.ask(h, np.zeros((0, 2)), 5)
        proposed.append(x)
        h = _complete(h, x, f)
    allx = np.vstack(proposed)
    assert len(strat.rounds) >= 4 and len(allx) >= 20
    assert np.all(allx.sum(1) <= 1.0), allx[allx.sum(1) > 1.0]
    assert np.all([r.centre.sum() <= 1.0 for r in strat.rounds])
    assert h.objectives[6:, 0].min() < h.objectives[:6, 0].min()  # it moved towards the constrained optimum


def test_integer_parameters_are_proposed_on_their_values() -> None:
    space, study = _space_study(parameters={"x1": {"low": -5, "high": 5}, "n": {"low": 1, "high": 6, "integer": True}},
                                budget={"calls": 40, "initial_design": 0})
    strat = LGSOStrategy(space, study, 2, n_local=6, radius_init=0.4, **SMALL)
    f = lambda x: np.array([(x[0] - 0.3) ** 2 + (x[1] - 0.6) ** 2])  # noqa: E731
    h = _complete(StrategyConformance.make_history(space, 0), sobol_points(2, 2, 0, 6), f)
    for _ in range(3):
        strat.tell(h)
        x = strat.ask(h, np.zeros((0, 2)), 6)
        assert len(x)
        np.testing.assert_allclose(space.to_unit(space.from_unit(x)), x, atol=1e-12)  # recorded as proposed
        assert set(space.from_unit(x)[:, 1]) <= set(range(1, 7))
        h = _complete(h, x, f)


def test_state_restores_the_rounds_mid_round() -> None:
    """Saved halfway through a round (some designs done, one pending), a fresh instance proposes the same."""
    space, study = _space_study(budget={"calls": 30, "initial_design": 0})
    f = lambda x: np.array([((x - 0.3) ** 2).sum()])  # noqa: E731
    a = LGSOStrategy(space, study, 4, n_local=5, **SMALL)
    h = _complete(StrategyConformance.make_history(space, 0), sobol_points(2, 4, 0, 6), f)
    for _ in range(2):
        a.tell(h)
        h = _complete(h, a.ask(h, np.zeros((0, 2)), 5), f)
    a.tell(h)
    x = a.ask(h, np.zeros((0, 2)), 5)
    h = _complete(h, x[:2], f)  # two done, one in flight, two to issue
    a.tell(h)
    state = a.state_dict()
    want = a.ask(h, x[2:3], 5)
    b = LGSOStrategy(space, study, 4, n_local=5, **SMALL)
    b.load_state_dict(state_round_trip(state))
    b.tell(history_prefix(h, len(h)))
    np.testing.assert_allclose(b.ask(history_prefix(h, len(h)), x[2:3], 5), want, atol=1e-9)
    assert len(want) == 2


def test_resumed_campaign_proposes_as_uninterrupted(write_study, tmp_path: Path) -> None:
    data = base_study(strategy={"name": "lgso", "options": {"n_local": 4, **SMALL}},
                      budget={"calls": 16, "initial_design": 4})
    assert_resume_proposes_as_uninterrupted(write_study, tmp_path, data, stop_after=9)


def test_campaign_never_spends_a_call_on_a_design_breaking_a_quantity_constraint(write_study, tmp_path: Path) -> None:
    camp, study = start(write_study, tmp_path, _shield(strategy={"name": "lgso", "options": {"n_local": 4, **SMALL}},
                                                       budget={"calls": 14, "initial_design": 4}))
    run_campaign(camp, study)
    recs = list(camp.records().values())
    assert len(recs) == 14
    for r in recs:
        assert r.status == "completed" and r.feasible
        assert 10 * r.params["x1"] <= -30.0 and r.params["x1"] + 0.5 * r.params["x2"] <= -3.5


# -- improves on space filling in 10-D --------------------------------------------------------------
DIM, N_INIT, CALLS, BATCH, NOISE, SAMPLES = 10, 10, 60, 5, 0.05, 50
OPTIMUM = 0.75


def _sphere(x: np.ndarray) -> np.ndarray:
    """``x [b, 10]`` → ``[b]``: a shifted sphere; its minimum 0 at 0.75 in every coordinate."""
    return 4.0 * ((x - OPTIMUM) ** 2).sum(-1)


def _run(name: str, seed: int) -> float:
    """TRUE objective of the strategy's final design after CALLS calls of SAMPLES noisy samples (Sobol first):
    for ``lgso`` the last centre the surrogate kept, for Sobol the best observed call."""
    study = validate_study(base_study(
        parameters={f"x{i}": {"low": 0, "high": 1} for i in range(DIM)}, seed=seed,
        strategy={"name": name}, budget={"calls": CALLS, "initial_design": N_INIT}))
    space = SearchSpace(study.parameters)
    strat = STRATEGIES.get(name)(space, study, seed)
    rng = np.random.default_rng([seed, 99])
    X = sobol_points(DIM, seed, 0, N_INIT)
    S = [_sphere(x[None]) + NOISE * rng.standard_normal((SAMPLES, 1)) for x in X]

    def history() -> History:
        y = np.array([[s.mean()] for s in S])
        return History(theta=X, call_ids=np.arange(1, len(X) + 1), objectives=y,
                       objective_sems=np.full_like(y, NOISE / np.sqrt(SAMPLES)), constraints=np.zeros((len(X), 0)),
                       feasible=np.ones(len(X), bool), objective_names=["f"], directions=["minimize"],
                       failed_theta=np.zeros((0, DIM)), n_issued=len(X), _load=lambda i, S=S: S[i])

    while len(X) < CALLS:
        h = history()
        strat.tell(h)
        new = strat.ask(h, np.zeros((0, DIM)), min(BATCH, CALLS - len(X)))
        X = np.vstack([X, new])
        S += [_sphere(x[None]) + NOISE * rng.standard_normal((SAMPLES, 1)) for x in new]
    if name == "lgso":
        return float(_sphere(strat.incumbent()[None])[0])
    return float(_sphere(X[np.argmin(history().objectives[:, 0])][None])[0])


def test_beats_sobol_in_10d() -> None:
    # Measured, seeds 0-2: lgso's kept centre 0.45 / 1.02 / 0.29 (median 0.45), Sobol's best observed call
    # 1.83 / 1.33 / 0.81 (median 1.33); seed 3 is level (0.61 / 0.60). A median below 0.6 × Sobol's still holds
    # if one of the three seeds were as level as seed 3.
    res = {name: [_run(name, seed) for seed in (0, 1, 2)] for name in ("sobol", "lgso")}
    assert np.median(res["lgso"]) < 0.6 * np.median(res["sobol"]), res


def test_the_local_surrogate_models_only_the_columns_the_study_reads() -> None:
    from test_wugo import _pair_history, _pair_study

    study = _pair_study(strategy={"name": "lgso"}, budget={"calls": 20, "initial_design": 0})
    space, h = _pair_history(study, 8)
    a = LGSOStrategy(space, study, 1, n_local=5, **SMALL)
    a.tell(h)
    assert a.ask(h, np.zeros((0, 5)), 5).shape == (5, 5)
    a.tell(h)
    assert a.outputs == ["sum"] and a.surrogate is not None and a.surrogate.k == 1
    state = a.state_dict()
    b = LGSOStrategy(space, study, 1, n_local=5, **SMALL)
    b.load_state_dict(state_round_trip(state))
    assert b.surrogate is not None and b.surrogate.k == 1
    every = {**state, "k": 3, "outputs": ["y1", "y2", "sum"]}  # a model of other columns is refused, nothing kept
    c = LGSOStrategy(space, study, 1, n_local=5, **SMALL)
    with pytest.raises(ValueError, match="output columns"):
        c.load_state_dict(every)
    assert c.rounds == [] and c.surrogate is None
    old = {k: v for k, v in every.items() if k not in ("outputs", "n_columns")}  # saved before the selection
    with pytest.raises(ValueError, match="output columns"):
        LGSOStrategy(space, study, 1, n_local=5, **SMALL).load_state_dict(old)
