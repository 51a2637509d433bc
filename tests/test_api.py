"""The notebook API: `detopt.optimize(fn, study)` on an in-process function, `Results`, `open_campaign`."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import detopt
from optimizer.errors import DetoptError

STUDY: dict[str, Any] = {
    "name": "api_demo", "seed": 5,
    "parameters": {"x": {"low": -2.0, "high": 2.0, "unit": "cm"}, "z": {"low": -2.0, "high": 2.0}},
    "simulator": {"samples_per_call": 50},
    "objectives": {"y": {"statistic": "mean", "unit": "MeV"}},
    "strategy": {"name": "sobol"},
    "budget": {"calls": 6, "initial_design": 2},
}


def test_optimize_a_quadratic_in_process(tmp_path: Path) -> None:
    seen: list[tuple[float, float]] = []

    def quadratic(params: dict[str, float], n: int, seed: int) -> np.ndarray:  # a local function: not importable
        seen.append((params["x"], params["z"]))
        return np.random.default_rng(seed).normal((params["x"] - 0.5) ** 2 + params["z"] ** 2, 0.01, size=(n, 1))

    res = detopt.optimize(quadratic, STUDY, output=tmp_path / "c")
    assert len(seen) == 6 and len(res) == 6
    rows = res.table()
    assert [r["call"] for r in rows] == [1, 2, 3, 4, 5, 6] and all(r["status"] == "completed" for r in rows)
    truth = [(r["param.x"] - 0.5) ** 2 + r["param.z"] ** 2 for r in rows]
    assert np.allclose([r["objective.y"] for r in rows], truth, atol=0.01)
    best = res.best()
    assert best is not None and best["objective.y"] == min(r["objective.y"] for r in rows)
    (front,) = res.pareto()
    assert front["call_id"] == best["call"] and front["params"] == {"x": best["param.x"], "z": best["param.z"]}
    # the same campaign, opened from its directory as any other (what `optimize status` reads)
    again = detopt.open_campaign(tmp_path / "c")
    assert again.table() == rows and "api_demo" in repr(again)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "pandas", None)
        with pytest.raises(DetoptError, match="needs pandas"):
            res.to_pandas()
    class FakeFrame:  # stands in for pandas where it is not installed: what to_pandas hands it
        def __init__(self, data: list[dict[str, Any]]) -> None:
            self.data, self.index_col = data, None

        def set_index(self, col: str) -> FakeFrame:
            self.index_col = col
            return self

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "pandas", types.SimpleNamespace(DataFrame=FakeFrame))
        df = res.to_pandas()
    assert df.data == rows and df.index_col == "call"


def test_to_pandas_with_pandas(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    res = detopt.optimize(lambda p, n, s: np.full((n, 1), p["x"]), STUDY, output=tmp_path / "c")
    df = res.to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df.index) == [1, 2, 3, 4, 5, 6]


def test_optimize_with_budget_resume_and_two_objectives(tmp_path: Path) -> None:
    def two(params: dict[str, float], n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return np.stack([rng.normal(params["x"] ** 2, 0.01, n), rng.normal((params["x"] - 1) ** 2, 0.01, n)], -1)

    study = {**STUDY, "objectives": {"a": {"output": "a"}, "b": {"output": "b"}}}
    res = detopt.optimize(two, study, output=tmp_path / "m", budget=4, outputs=["a", "b"])
    assert len(res) == 4
    with pytest.raises(DetoptError, match="already holds a campaign"):
        detopt.optimize(two, study, output=tmp_path / "m", budget=4, outputs=["a", "b"])
    res = detopt.optimize(two, study, output=tmp_path / "m", budget=6, outputs=["a", "b"], resume=True)
    assert len(res) == 6
    front = res.pareto()
    assert front and sum(f["knee"] for f in front) == 1
    knee = next(f for f in front if f["knee"])
    assert res.best()["call"] == knee["call_id"]
    assert {r["call"] for r in res.table() if r["pareto"]} == {f["call_id"] for f in front}
    with pytest.raises(DetoptError, match="unknown objective 'c'"):
        res.best("c")


def test_a_bad_study_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    bad = {**STUDY, "budget": {"calls": 1, "initial_design": 2}}
    with pytest.raises(DetoptError, match="budget.initial_design"):
        detopt.optimize(lambda p, n, s: np.zeros((n, 1)), bad, output=tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_import_detopt_is_cheap() -> None:
    code = "import sys, detopt; assert 'torch' not in sys.modules and 'optimizer.api' not in sys.modules; print(detopt.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == detopt.__version__
