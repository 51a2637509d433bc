"""Parameter importances from a GP's ARD lengthscales, and their figure in the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import base_study
from optimizer.importance import parameter_importances
from optimizer.storage import CallRecord
from optimizer.study import validate_study

PARAMS = {f"x{i}": {"low": 0.0, "high": 1.0} for i in range(1, 6)}


def _records(seed: int, n: int = 32) -> dict[int, CallRecord]:
    """y = 3·sin(3·x1) + 0.3·x2 + noise; x3..x5 do nothing."""
    from scipy.stats import qmc

    rng = np.random.default_rng(seed)
    u = qmc.Sobol(5, seed=seed).random(n)
    recs = {}
    for i, row in enumerate(u, 1):
        y = 3 * np.sin(3 * row[0]) + 0.3 * row[1] + rng.normal(0, 0.01)
        recs[i] = CallRecord(i, "initial", {f"x{j + 1}": float(v) for j, v in enumerate(row)}, row.tolist(), 0, 1,
                             status="completed", feasible=True, metrics={"f": float(y)})
    return recs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_parameter_that_drives_the_objective_ranks_first(seed: int) -> None:
    study = validate_study(base_study(parameters=PARAMS, seed=seed))
    imp = parameter_importances(study, _records(seed))
    assert imp is not None and imp.calls == 32
    v = imp.values["f"]
    assert v.sum() == pytest.approx(1.0) and int(np.argmax(v)) == 0
    assert v[0] > 2 * v[1] and v[1] > max(v[2:])  # x2's weak linear effect above the three idle parameters


def test_no_importances_for_small_studies() -> None:
    assert parameter_importances(validate_study(base_study()), _records(0)) is None  # 2 parameters
    study = validate_study(base_study(parameters=PARAMS))
    assert parameter_importances(study, dict(list(_records(0).items())[:4])) is None  # 4 calls


def test_report_draws_importances_for_a_three_parameter_study(write_study, tmp_path: Path) -> None:
    from optimizer.cli import main

    data = base_study(parameters={f"x{i}": {"low": -1.0, "high": 1.0} for i in range(1, 4)},
                      simulator={"name": "sims_for_tests:quadratic", "samples_per_call": 20},
                      strategy={"name": "sobol"}, budget={"calls": 6, "initial_design": 0})
    root = tmp_path / "c"
    assert main(["run", str(write_study(data)), "--output", str(root), "-q"]) == 0
    assert main(["report", str(root)]) == 0
    assert (root / "report" / "importance.png").read_bytes()[:4] == b"\x89PNG"
    assert 'alt="importance"' in (root / "report" / "report.html").read_text()
