from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import base_study
from optimizer.cli import build_parser, main


@pytest.fixture
def finished(write_study, tmp_path: Path) -> Path:
    data = base_study(baselines=[{"name": "expert", "params": {"x1": 0.5, "x2": 0.5}}],
                      constraints={"spread": {"statistic": "std", "upper": 1.0}})
    out = tmp_path / "camp"
    assert main(["run", str(write_study(data)), "--output", str(out), "-q"]) == 0
    return out


def test_status_table_and_json(finished: Path, capsys) -> None:
    assert main(["status", str(finished), "--all"]) == 0
    out = capsys.readouterr().out
    assert "best f (minimize)" in out and "closest evaluated design to a known optimum" in out
    assert main(["status", str(finished), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["issued"] == 6 and summary["status_counts"] == {"completed": 7}
    assert summary["best"]["f"]["call"] in range(1, 8)


def test_export_csv_and_json(finished: Path, capsys) -> None:
    from optimizer.campaign import Campaign

    recs = Campaign.open(finished).records()
    assert main(["export", str(finished), "--format", "csv"]) == 0
    rows = list(csv.DictReader(open(finished / "calls.csv")))
    assert len(rows) == 7 and rows[0]["origin"] == "baseline" and rows[0]["label"] == "expert"
    for row in rows:
        r = recs[int(row["call"])]
        assert float(row["objective.f"]) == pytest.approx(r.metrics["f"])
        assert float(row["param.x1"]) == pytest.approx(r.params["x1"])
        assert row["feasible"] == "True"
    assert main(["export", str(finished), "--format", "json", "--output", str(finished / "x.json")]) == 0
    data = json.loads((finished / "x.json").read_text())
    assert data["study"] == "t" and len(data["calls"]) == 7


def test_export_parquet_without_pyarrow_is_a_clear_error(finished: Path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert main(["export", str(finished), "--format", "parquet"]) == 2
    assert "pyarrow" in capsys.readouterr().err


def test_report_draws_convergence_png(finished: Path, capsys) -> None:
    assert main(["report", str(finished)]) == 0
    png = finished / "report" / "convergence.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    page = (finished / "report" / "report.html").read_text()
    import base64

    assert base64.b64encode(png.read_bytes()).decode() in page  # embedded: opens offline
    from optimizer.campaign import Campaign, best_so_far

    camp = Campaign.open(finished)
    value, call = best_so_far(camp.study(), camp.records().values())["f"]
    assert f"best f (call {call})" in page and f"{value:.6g}" in page
    assert "baseline expert" in page


def test_status_of_missing_directory(tmp_path: Path, capsys) -> None:
    assert main(["status", str(tmp_path / "nothing")]) == 2
    assert "no such campaign directory" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["run"], ["resume"], ["status"], ["export"], ["report"], ["list"]])
def test_help_for_every_command(command: list[str]) -> None:
    r = subprocess.run([sys.executable, "-m", "optimizer.cli", *command, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "usage: optimize" in r.stdout


def test_list_names_registered_things(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "three_hump_camel_paper" in out and "sobol" in out and "ray" in out
    assert {a.dest for a in build_parser()._actions} >= {"command"}
