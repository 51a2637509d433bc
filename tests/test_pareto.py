"""Pareto set and hypervolume (numpy, checked against BoTorch's utilities) and a two-objective campaign with a constraint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import FAST_WUGO, base_study
from optimizer.pareto import hypervolume, hypervolume_trace, maximisation_matrix, non_dominated, pareto_calls
from optimizer.storage import CallRecord
from optimizer.study import validate_study


def rec(cid: int, bkg: float, cost: float, feasible: bool = True, status: str = "completed") -> CallRecord:
    return CallRecord(call_id=cid, origin="strategy", params={}, unit=[], seed=0, n_samples=1, status=status,
                      metrics={"bkg": bkg, "cost": cost}, feasible=feasible, finished_at=float(cid))


STUDY = validate_study(base_study(objectives={"bkg": {}, "cost": {"direction": "minimize", "reference": 4.0}}))


def test_pareto_and_hypervolume_hand_computed() -> None:
    # minimise both: (1,3), (2,2), (3,1) form the front; (2.5,2.5) is dominated by (2,2);
    # (0.5,0.5) would dominate everything but is infeasible; call 6 failed.
    records = {1: rec(1, 1, 3), 2: rec(2, 2, 2), 3: rec(3, 3, 1), 4: rec(4, 2.5, 2.5),
               5: rec(5, 0.5, 0.5, feasible=False), 6: rec(6, 0, 0, status="failed")}
    assert pareto_calls(STUDY, records.values()) == [1, 2, 3]
    ids, Y = maximisation_matrix(STUDY, records.values())
    assert ids == [1, 2, 3, 4]
    # reference (4, 4) in minimisation terms: staircase columns x∈[1,2]: 1, [2,3]: 2, [3,4]: 3 → 6
    assert hypervolume(Y, np.array([-4.0, -4.0])) == pytest.approx(6.0)
    study = validate_study(base_study(objectives={"bkg": {"reference": 4.0}, "cost": {"reference": 4.0}}))
    calls, hv, ref = hypervolume_trace(study, records)
    assert ref.tolist() == [-4.0, -4.0]
    # (1,3) alone: 3·1; with (2,2): 3 + 4 − 2 overlap = 5; with (3,1): 6; then flat
    assert hv.tolist() == pytest.approx([3.0, 5.0, 6.0, 6.0, 6.0, 6.0])


@pytest.mark.parametrize("m", [2, 3, 4])
def test_non_dominated_and_hypervolume_equal_botorch(m: int) -> None:
    from botorch.utils.multi_objective.box_decompositions.dominated import DominatedPartitioning
    from botorch.utils.multi_objective.pareto import is_non_dominated

    rng = np.random.default_rng(m)
    for trial in range(6):
        n = int(rng.integers(1, 40))
        Y = rng.normal(size=(n, m))
        if trial % 2:  # ties and duplicates, as a journal of rounded values has
            Y = np.round(Y, 1)
            Y[-1] = Y[0]
        ref = Y.min(0) - rng.uniform(0.0, 0.5, size=m)
        if trial == 5:
            ref = np.quantile(Y, 0.5, axis=0)  # some points at or below the reference
        T = torch.as_tensor(Y, dtype=torch.float64)
        assert non_dominated(Y).tolist() == is_non_dominated(T, deduplicate=False).tolist()
        R = torch.as_tensor(ref, dtype=torch.float64)
        above = T[(T > R).all(-1)]
        expected = float(DominatedPartitioning(ref_point=R, Y=above).compute_hypervolume()) if len(above) else 0.0
        assert hypervolume(Y, ref) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_status_pareto_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, optimizer.pareto, optimizer.results, optimizer.records; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_maximised_objective_sign() -> None:
    study = validate_study(base_study(objectives={"bkg": {"direction": "maximize"}, "cost": {}}))
    records = {1: rec(1, 1, 1), 2: rec(2, 2, 1)}
    assert pareto_calls(study, records.values()) == [2]


def test_two_objective_gp_campaign_with_cost_and_constraint(write_study, tmp_path: Path, capsys) -> None:
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.cli import main
    from optimizer.study import load_study

    data = base_study(
        parameters={"x1": {"low": 0, "high": 1}, "x2": {"low": 0, "high": 1}},
        simulator={"name": "sims_for_tests:Shield", "samples_per_call": 50},
        objectives={"bkg": {"statistic": "mean"}, "cost": {"quantity": "cost"}},
        constraints={"mass": {"quantity": "mass", "upper": 8.0}},
        strategy={"name": "gp", "options": {"num_restarts": 2, "raw_samples": 32, "maxiter": 20, "mc_samples": 16}},
        budget={"calls": 8, "initial_design": 5},
    )
    p = write_study(data)
    study, text = load_study(p)
    camp = Campaign.create(tmp_path / "mo", study, text, source=str(p))
    summary = run_campaign(camp, study)
    recs = camp.records()
    assert summary.completed == 8
    for r in recs.values():
        assert r.metrics["cost"] == pytest.approx(r.params["x1"] + 0.5 * r.params["x2"])
        assert r.feasible == (10 * r.params["x1"] <= 8.0)
    front = pareto_calls(study, recs.values())
    assert front and all(recs[c].feasible for c in front)
    _, hv, _ = hypervolume_trace(study, recs)
    assert np.all(np.diff(hv) >= -1e-12) and hv[-1] > 0
    assert main(["status", str(camp.root), "--json"]) == 0
    import json

    s = json.loads(capsys.readouterr().out)
    assert s["pareto"] == front and s["hypervolume"]["hypervolume"] == pytest.approx(hv[-1])
    assert main(["export", str(camp.root), "--format", "csv"]) == 0
    rows = (camp.root / "calls.csv").read_text().splitlines()
    assert rows[0].split(",").count("pareto") == 1
    assert main(["report", str(camp.root)]) == 0
    for name in ("convergence", "pareto", "hypervolume"):
        assert (camp.root / "report" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_wugo_multi_objective_respects_exact_quantity_constraint(write_study, tmp_path: Path) -> None:
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.study import load_study

    fast = FAST_WUGO
    data = base_study(
        parameters={"x1": {"low": 0, "high": 1}, "x2": {"low": 0, "high": 1}},
        simulator={"name": "sims_for_tests:Shield", "samples_per_call": 50},
        objectives={"bkg": {"statistic": "mean"}, "cost": {"quantity": "cost"}},
        constraints={"mass": {"quantity": "mass", "upper": 5.0}},
        strategy={"name": "wugo", "options": fast}, budget={"calls": 12, "initial_design": 4},
    )
    p = write_study(data)
    study, text = load_study(p)
    camp = Campaign.create(tmp_path / "wmo", study, text, source=str(p))
    run_campaign(camp, study)
    recs = camp.records()
    proposed = [r for r in recs.values() if r.origin == "strategy"]
    assert len(proposed) == 8 and all(r.feasible for r in proposed)  # mass = 10·x1 is known exactly
    # scalarisations with different weights spread the proposals along the trade-off
    assert np.ptp([r.params["x1"] for r in proposed]) > 0.1
    assert pareto_calls(study, recs.values())
