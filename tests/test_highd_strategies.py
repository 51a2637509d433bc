"""The high-dimensional strategies (trust-region GP, CMA-ES) and exact quantity constraints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import base_study
from optimizer.campaign import Campaign, make_strategy, prepare, run_campaign
from optimizer.errors import StudyError
from optimizer.space import SearchSpace
from optimizer.strategies import STRATEGIES, History
from optimizer.strategies.base import sobol_points
from optimizer.study import validate_study
from optimizer.testing import StrategyConformance
from test_campaign import InterruptAfter, start

NEW = ("turbo", "cmaes")


def _space_study(**over):
    study = validate_study(base_study(**over))
    return SearchSpace(study.parameters), study


@pytest.mark.parametrize("name", NEW)
def test_refuses_several_objectives(name: str) -> None:
    space, study = _space_study(objectives={"f": {}, "g": {"statistic": "std"}}, strategy={"name": name})
    with pytest.raises(StudyError, match=f"strategy.name: '{name}' optimises one objective"):
        make_strategy(study, space, "s.yaml")


@pytest.mark.parametrize("name", NEW)
def test_proposal_changes_with_pending(name: str) -> None:
    space, study = _space_study(budget={"calls": 30, "initial_design": 0})
    strat = STRATEGIES.get(name)(space, study, 0)
    h = StrategyConformance.make_history(space, 8)
    none = np.zeros((0, space.dim))
    (first,) = strat.ask(h, none, 1)
    pending = first[None]
    (second,) = strat.ask(h, pending, 1)
    assert not np.allclose(first, second)
    both = strat.ask(h, none, 2)  # the batch without pending agrees with asking one at a time for CMA-ES
    if name == "cmaes":
        np.testing.assert_allclose(both, np.vstack([first, second]))


def assert_resume_proposes_as_uninterrupted(write_study, tmp_path: Path, data: dict, stop_after: int) -> None:
    """A campaign interrupted after ``stop_after`` calls and resumed records the same designs as one run through."""
    camp_a, study = start(write_study, tmp_path, data, name="a")
    run_campaign(camp_a, study, executor=InterruptAfter(study, k=100))
    camp_b, _ = start(write_study, tmp_path, data, name="b")
    assert run_campaign(camp_b, study, executor=InterruptAfter(study, k=stop_after)).stopped == "interrupted"
    run_campaign(Campaign.open(camp_b.root), study, executor=InterruptAfter(study, k=100))
    a, b = camp_a.records(), camp_b.records()
    assert sorted(a) == sorted(b) == list(range(1, data["budget"]["calls"] + 1))
    for cid in a:
        np.testing.assert_allclose(list(a[cid].params.values()), list(b[cid].params.values()), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", NEW)
def test_resumed_campaign_proposes_as_uninterrupted(name: str, write_study, tmp_path: Path) -> None:
    data = base_study(strategy={"name": name}, budget={"calls": 14, "initial_design": 4})
    assert_resume_proposes_as_uninterrupted(write_study, tmp_path, data, stop_after=7)


def test_cmaes_integer_parameters_on_the_grid() -> None:
    space, study = _space_study(parameters={"x1": {"low": -5, "high": 5}, "n": {"low": 1, "high": 6, "integer": True}},
                                budget={"calls": 30, "initial_design": 0})
    strat = STRATEGIES.get("cmaes")(space, study, 1)
    x = strat.ask(StrategyConformance.make_history(space, 0), np.zeros((0, 2)), 6)
    n = space.from_unit(x)[:, 1]
    assert len(x) == 6 and set(n) <= set(range(1, 7))
    np.testing.assert_allclose(space.to_unit(space.from_unit(x)), x, atol=1e-12)  # recorded as proposed


# -- exact quantity constraints ------------------------------------------------------------------
def _shield(**over):
    # mass = 10·x1 ≤ -30 and cost = x1 + x2/2 ≤ -3.5: ~12 % of the box, while the objective exp(-3·x1)(1 + x2²)
    # pulls x1 up, against both constraints.
    return base_study(simulator={"name": "sims_for_tests:Shield", "samples_per_call": 20},
                      constraints={"mass": {"quantity": "mass", "upper": -30.0},
                                   "cost": {"quantity": "cost", "upper": -3.5}}, **over)


@pytest.mark.parametrize("name", ["sobol", "random", "gp", "turbo", "cmaes", "nn-ensemble"])
def test_never_proposes_a_design_breaking_a_quantity_constraint(name: str, write_study, tmp_path: Path) -> None:
    options = {"num_restarts": 2, "raw_samples": 128} if name == "gp" else {}
    camp, study = start(write_study, tmp_path, _shield(strategy={"name": name, "options": options},
                                                       budget={"calls": 12, "initial_design": 4}))
    run_campaign(camp, study)
    recs = list(camp.records().values())
    assert len(recs) == 12
    for r in recs:
        assert r.status == "completed" and r.feasible
        assert 10 * r.params["x1"] <= -30.0 and r.params["x1"] + 0.5 * r.params["x2"] <= -3.5


def test_initial_design_keeps_the_feasible_sobol_points() -> None:
    study = validate_study(_shield(budget={"calls": 12, "initial_design": 5}))
    space, _, strategy, init = prepare(study, "s.yaml")
    raw = sobol_points(2, study.seed, 0, 256)
    ok = strategy.feasible(raw)
    assert 0 < ok.sum() < 256 and len(init) == 5
    np.testing.assert_allclose(init, raw[ok][:5])  # the first feasible points of the same sequence, in order


def test_oracle_rejects_a_geometry_that_cannot_be_built() -> None:
    from optimizer.constraints import QuantityConstraints
    from simulators.base import InfeasibleDesign, Simulator

    class Gapped(Simulator):
        quantities = ("mass",)

        def simulate(self, params, n, seed):
            return np.zeros(n)

        def quantities_at(self, params):
            if params["x1"] > 0:
                raise InfeasibleDesign("negative gap")
            return {"mass": 1.0}

    study = validate_study(_shield())
    space = SearchSpace(study.parameters)
    oracle = QuantityConstraints(space, Gapped(), {"mass": study.constraints["mass"].model_copy(update={"upper": 2.0})})
    np.testing.assert_array_equal(oracle(np.array([[0.2, 0.5], [0.8, 0.5]])), [True, False])


def test_empty_feasible_region_is_refused_at_prepare(write_study, tmp_path: Path, capsys) -> None:
    from optimizer.cli import main

    data = _shield()
    data["constraints"]["mass"]["upper"] = -100.0  # x1 ≥ -5: the mass is never below -50
    with pytest.raises(StudyError, match=r"constraints\.mass: no design satisfies it .*feasible region seems empty"):
        prepare(validate_study(data), "s.yaml")
    out = tmp_path / "out"
    assert main(["run", str(write_study(data)), "--output", str(out), "-q"]) == 2
    assert "constraints.mass" in capsys.readouterr().err and not (out / "journal.jsonl").exists()


# -- improves on space filling in 10-D --------------------------------------------------------------
DIM, N_INIT, CALLS, BATCH, NOISE = 10, 10, 60, 5, 0.05
OPTIMUM = 0.75  # off the centre, where CMA-ES starts


def _sphere(x: np.ndarray) -> np.ndarray:
    """``x [b, 10]`` → ``[b]``: a shifted sphere; its minimum 0 at 0.75 in every coordinate."""
    return 4.0 * ((x - OPTIMUM) ** 2).sum(-1)


def _history(X: np.ndarray, y: np.ndarray) -> History:
    return History(theta=X, call_ids=np.arange(1, len(X) + 1), objectives=y[:, None],
                   objective_sems=np.full((len(X), 1), NOISE), constraints=np.zeros((len(X), 0)),
                   feasible=np.ones(len(X), bool), objective_names=["f"], directions=["minimize"],
                   failed_theta=np.zeros((0, DIM)), n_issued=len(X))


def _run(name: str, seed: int) -> float:
    """TRUE objective of the recommended design after CALLS noisy calls (Sobol initial design first)."""
    study = validate_study(base_study(
        parameters={f"x{i}": {"low": 0, "high": 1} for i in range(DIM)}, seed=seed,
        strategy={"name": name}, budget={"calls": CALLS, "initial_design": N_INIT}))
    space = SearchSpace(study.parameters)
    strat = STRATEGIES.get(name)(space, study, seed, **({"n_candidates": 1000} if name == "turbo" else {}))
    eps = NOISE * np.random.default_rng([seed, 99]).standard_normal(CALLS)  # call i's noise, whatever the batch
    X = sobol_points(DIM, seed, 0, N_INIT)
    while len(X) < CALLS:
        h = _history(X, _sphere(X) + eps[: len(X)])
        strat.tell(h)
        X = np.vstack([X, strat.ask(h, np.zeros((0, DIM)), min(BATCH, CALLS - len(X)))])
    h = _history(X, _sphere(X) + eps)
    if name == "turbo":  # the model's incumbent (posterior mean at the evaluated designs)
        return float(_sphere(strat.incumbent(strat.model(h), h)[None])[0])
    return float(_sphere(X[np.argmin(h.objectives[:, 0])][None])[0])  # the best observed design


def test_trust_region_and_cmaes_beat_sobol_in_10d() -> None:
    # Measured over seeds 0-11 (medians of 3 consecutive seeds): Sobol 1.33-1.77, CMA-ES 0.57-1.05 (ratio to
    # Sobol's 0.40-0.61); trust-region GP 0.04 on seeds 0-2. 0.75 leaves room for the worst group seen.
    res = {name: [_run(name, seed) for seed in (0, 1, 2)] for name in ("sobol", "turbo", "cmaes")}
    for name in NEW:
        assert np.median(res[name]) < 0.75 * np.median(res["sobol"]), res


def test_trust_region_with_a_modelled_outcome_constraint() -> None:
    """An outcome constraint (not a quantity) is a GP output; Thompson draws pick candidates where it holds."""
    space, study = _space_study(constraints={"spread": {"statistic": "std", "upper": 0.5}},
                                budget={"calls": 30, "initial_design": 0})
    strat = STRATEGIES.get("turbo")(space, study, 0, n_candidates=500)
    h = StrategyConformance.make_history(space, 10)
    h.constraints = h.theta[:, :1].copy()  # the spread grows with x1: feasible where x1 ≤ 0.5
    h.constraint_sems = np.full((10, 1), 0.01)
    h.feasible = h.constraints[:, 0] <= 0.5
    x = strat.ask(h, np.zeros((0, 2)), 3)
    assert x.shape == (3, 2) and np.all((x >= 0) & (x <= 1))
    assert np.mean(x[:, 0] <= 0.6) >= 2 / 3  # measured: 18 of 18 proposals over seeds 0-5 had x1 <= 0.6
