"""Results a reader can decide from: units on every view, the Pareto table against the journal, one fixed
hypervolume in status / report / export, and a status that fits an 80-column terminal."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import base_study
from optimizer.cli import main

UNITS = {"bkg": "fraction of muons", "cost": "MCHF"}


def _study(**over: Any) -> dict[str, Any]:
    data = base_study(
        parameters={"x1": {"low": 0, "high": 1, "unit": "m"}, "x2": {"low": 0, "high": 1, "unit": "T"}},
        simulator={"name": "sims_for_tests:Shield", "samples_per_call": 50},
        objectives={"bkg": {"statistic": "mean", "label": "background", "unit": UNITS["bkg"]},
                    "cost": {"quantity": "cost", "label": "cost", "unit": UNITS["cost"]}},
        constraints={"mass": {"quantity": "mass", "upper": 8.0, "label": "iron mass", "unit": "t"}},
        strategy={"name": "sobol"}, budget={"calls": 14, "initial_design": 6},
        baselines=[{"name": "expert", "params": {"x1": 0.5, "x2": 0.5}}],
    )
    data.update(over)
    return data


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import yaml

    tmp = tmp_path_factory.mktemp("mo")
    (tmp / "study.yaml").write_text(yaml.safe_dump(_study(), sort_keys=False))
    root = tmp / "camp"
    assert main(["run", str(tmp / "study.yaml"), "--output", str(root), "-q"]) == 0
    return root


def _journal(root: Path) -> dict[int, dict[str, Any]]:
    """Completed calls straight from the journal's events, without detopt's replay."""
    calls: dict[int, dict[str, Any]] = {}
    for line in (root / "journal.jsonl").read_text().splitlines():
        ev = json.loads(line)
        if ev.get("event") == "submitted":
            calls.setdefault(int(ev["call"]), {}).update(origin=ev["origin"], params=ev["params"])
        elif ev.get("event") == "completed":
            calls[int(ev["call"])].update(metrics=ev["metrics"], sems=ev.get("sems", {}), feasible=ev.get("feasible"))
    return {c: v for c, v in calls.items() if "metrics" in v}


def _front(calls: dict[int, dict[str, Any]]) -> list[int]:
    feas = {c: v for c, v in calls.items() if v["feasible"]}
    dominated = {c for c, v in feas.items() for d, w in feas.items() if d != c and all(
        w["metrics"][k] <= v["metrics"][k] for k in UNITS) and any(w["metrics"][k] < v["metrics"][k] for k in UNITS)}
    return sorted(set(feas) - dominated)


def test_pareto_table_numbers_equal_the_journal(campaign: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calls = _journal(campaign)
    base = next(v for v in calls.values() if v["origin"] == "baseline")
    front = _front(calls)
    assert main(["status", str(campaign), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert sorted(f["call_id"] for f in s["front"]) == front and sorted(s["pareto"]) == front
    assert sum(f["knee"] for f in s["front"]) == 1
    for f in s["front"]:
        v = calls[f["call_id"]]
        assert f["params"] == v["params"]
        for k in UNITS:
            assert f["values"][k] == v["metrics"][k]
            se, se_b = v["sems"].get(k, 0.0), base["sems"].get(k, 0.0)
            b = base["metrics"][k]
            change = (v["metrics"][k] - b) / abs(b)
            err = math.sqrt((se / b) ** 2 + (v["metrics"][k] * se_b / b**2) ** 2)
            assert f["change"][k] == pytest.approx([change, err], rel=1e-12)
    # the text table shows every front member (even with --last 2) and the page lists them too
    assert main(["status", str(campaign), "--last", "2"]) == 0
    out = capsys.readouterr().out
    from optimizer.pareto import format_change, format_value

    for f in s["front"]:
        for k in UNITS:
            assert format_value(f["values"][k], f["sems"][k]) in out
            assert format_change(tuple(f["change"][k]), percent=False) in out
    assert main(["report", str(campaign), "--no-surrogate"]) == 0
    page = (campaign / "report" / "report.html").read_text()
    for f in s["front"]:
        assert f"(call {f['call_id']})" in page
        assert f"<td>{format_value(f['values']['bkg'], f['sems']['bkg'])}</td>" in page
    assert f"<th>background [{UNITS['bkg']}]</th>" in page


def test_relative_change_propagates_both_standard_errors() -> None:
    from optimizer.pareto import relative_change

    c, se = relative_change(0.5, 0.03, 1.0, 0.04)  # (0.5 − 1)/1; √(0.03² + (0.5·0.04)²)
    assert c == pytest.approx(-0.5) and se == pytest.approx(math.sqrt(0.03**2 + 0.02**2))
    assert relative_change(1.0, 0.1, 0.0, 0.1) is None


def test_hypervolume_identical_in_status_report_and_export(campaign: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", str(campaign), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)["hypervolume"]
    assert main(["export", str(campaign), "--format", "json"]) == 0
    capsys.readouterr()
    exported = json.loads((campaign / "calls.json").read_text())["hypervolume"]
    assert status == exported
    assert status["reference_source"] == {"bkg": "baseline expert", "cost": "baseline expert"}
    assert main(["report", str(campaign), "--no-surrogate"]) == 0
    out = capsys.readouterr().out
    assert f"hypervolume {status['hypervolume']:.6g} = {status['normalised']:.4f} of the box" in out
    assert main(["status", str(campaign)]) == 0
    assert f"hypervolume {status['hypervolume']:.6g} = {status['normalised']:.4f} of the box" in capsys.readouterr().out


def test_reference_is_fixed_by_the_initial_design_and_never_moves(write_study, tmp_path: Path) -> None:
    from optimizer.campaign import Campaign
    from optimizer.pareto import REFERENCE_MARGIN, hypervolume_summary

    data = _study(baselines=[])
    data["objectives"]["cost"]["reference"] = 2.0
    root = tmp_path / "c"
    assert main(["run", str(write_study(data)), "--output", str(root), "-q"]) == 0
    camp = Campaign.open(root)
    study, recs = camp.study(), camp.records()
    init = [r for r in recs.values() if r.origin == "initial" and r.feasible]
    v = np.array([r.metrics["bkg"] for r in init])
    s = hypervolume_summary(study, recs)
    assert s["reference"] == {"bkg": pytest.approx(v.max() + REFERENCE_MARGIN * np.ptp(v)), "cost": 2.0}
    assert s["reference_source"] == {"bkg": "initial design", "cost": "study"}
    assert s["ideal"] == {"bkg": 0.0, "cost": 0.0}  # minimised, positive reference: the box starts at zero
    assert s["normalised"] == pytest.approx(s["hypervolume"] / (s["reference"]["bkg"] * 2.0))
    # later calls change the front, never the reference
    early = {c: r for c, r in recs.items() if c <= max(r.call_id for r in init)}
    assert hypervolume_summary(study, early)["reference"] == s["reference"]


def test_units_reach_axes_tables_and_exports(campaign: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from optimizer import report
    from optimizer.campaign import Campaign

    figs: list[Any] = []
    monkeypatch.setattr(report, "_save", lambda fig, path: figs.append(fig) or path)
    camp = Campaign.open(campaign)
    study, recs = camp.study(), camp.records()
    report.pareto_plot(study, recs, campaign / "p.png")
    ax = figs[-1].axes[0]
    assert ax.get_xlabel() == "background [fraction of muons] (minimize)" and ax.get_ylabel() == "cost [MCHF] (minimize)"
    assert any("knee" in t.get_text() for t in ax.get_legend().get_texts())
    report.convergence_plot(study, recs, campaign / "c.png")  # two objectives: hypervolume vs call ids
    ax = figs[-1].axes[0]
    assert ax.get_ylabel() == "hypervolume" and "fraction of muons" in ax.get_title(loc="left")
    x = ax.lines[0].get_xdata()
    assert list(x) == sorted(r.call_id for r in recs.values() if r.done and r.origin != "baseline")
    report.parallel_coordinates_plot(study, recs, campaign / "q.png")
    ax = figs[-1].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x1 [m]", "x2 [T]"]
    assert {"0", "0.5", "1"} <= {t.get_text().strip() for t in ax.texts}  # real tick values on each axis
    # exports: CSV keeps machine names, JSON carries the units
    assert main(["export", str(campaign), "--format", "json", "--output", str(campaign / "e.json")]) == 0
    doc = json.loads((campaign / "e.json").read_text())
    assert doc["units"]["objective.bkg"] == UNITS["bkg"] and doc["units"]["constraint.mass"] == "t"
    assert doc["units"]["param.x1"] == "m" and doc["labels"]["objective.bkg"] == "background"
    assert main(["status", str(campaign)]) == 0
    assert "bkg [fraction of muons]" in capsys.readouterr().out


def test_log_axis_for_an_objective_over_decades(monkeypatch: pytest.MonkeyPatch) -> None:
    from optimizer import report
    from optimizer.storage import CallRecord
    from optimizer.study import validate_study

    study = validate_study(base_study(objectives={"a": {}, "b": {}}))
    pts = {1: (1e-4, 5.0), 2: (1e-2, 3.0), 3: (1.0, 1.0), 4: (0.5, 2.0), 5: (0.9, 1e3)}
    recs = {c: CallRecord(c, "initial", {"x1": 0, "x2": 0}, [0, 0], 0, 1, status="completed", feasible=True,
                          metrics={"a": a, "b": b}, sems={"a": 0.0, "b": 0.1}) for c, (a, b) in pts.items()}
    figs: list[Any] = []
    monkeypatch.setattr(report, "_save", lambda fig, path: figs.append(fig) or path)
    report.pareto_plot(study, recs, Path("unused.png"))
    ax = figs[-1].axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"  # 4 and 3 decades
    pts[5] = (0.9, 40.0)
    recs[5].metrics = {"a": 0.9, "b": 40.0}
    report.pareto_plot(study, recs, Path("unused.png"))
    ax = figs[-1].axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylim()[1] < 40.0  # the outlier is clipped to the edge
    assert any("outside" in t.get_text() for t in ax.get_legend().get_texts())


def test_end_of_run_line_reports_the_front_not_per_objective_bests(write_study, tmp_path: Path) -> None:
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.pareto import front_table
    from optimizer.progress import LineReporter
    from optimizer.study import load_study

    p = write_study(_study())
    study, text = load_study(p)
    camp = Campaign.create(tmp_path / "e", study, text, source=str(p))
    stream = io.StringIO()
    run_campaign(camp, study, reporter=LineReporter(stream))
    last = stream.getvalue().splitlines()[-2]  # the last line says what to run next
    front = front_table(study, camp.records())
    knee = next(f for f in front if f.knee)
    assert f"Pareto front of {len(front)} designs; knee at call {knee.call_id}" in last
    assert UNITS["bkg"] in last and "vs baseline" in last and "best:" not in last


def test_status_fits_80_columns_without_wrapping_cells(campaign: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["status", str(campaign), "--all"]) == 0
    out = capsys.readouterr().out
    table = [ln for ln in out.splitlines() if ln.startswith(("┃", "│", "┏", "┡", "└", "┌", "╷", "╵"))]
    assert table and all(len(ln) <= 80 for ln in table)
    assert sum("initial" in ln for ln in table) == 6 and "baseline" in out  # whole words, one per call
    assert "in/" not in out and "…" not in "".join(table)
    hv = next(ln for ln in out.splitlines() if ln.startswith("hypervolume "))
    assert hv.endswith("of the box between reference and ideal point")
    assert any(ln.startswith("  background [fraction of muons]: reference") for ln in out.splitlines())


def test_unit_and_label_leave_the_study_fingerprint_alone() -> None:
    from optimizer.study import validate_study

    plain = validate_study(base_study(objectives={"f": {"statistic": "mean"}}))
    labelled = validate_study(base_study(objectives={"f": {"statistic": "mean", "unit": "t", "label": "mass"}}))
    assert labelled.objectives["f"].unit == "t" and plain.objectives["f"].label == ""
    assert labelled.fingerprint() == plain.fingerprint()  # presentation only: old campaigns resume unchanged


def wide(params: dict[str, float], n: int, seed: int) -> np.ndarray:
    """Two noisy objectives over many parameters: distance to 0 and to 1 (a front between them)."""
    x = np.array(list(params.values()))
    rng = np.random.default_rng(seed)
    return np.stack([((x**2).sum() + 0.1 * rng.standard_normal(n)), ((1 - x) ** 2).sum() + 0.1 * rng.standard_normal(n)], 1)


def test_many_parameters_transposed_table_and_front_only_lines(write_study, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from optimizer import report
    from optimizer.campaign import Campaign
    from optimizer.pareto import pareto_calls

    names = [f"p{i}" for i in range(14)]
    data = base_study(parameters={p: {"low": 0, "high": 1, "unit": "cm"} for p in names},
                      simulator={"name": "test_results_tables:wide", "samples_per_call": 20, "outputs": ["a", "b"]},
                      objectives={"a": {"output": "a", "unit": "t"}, "b": {"output": "b"}},
                      strategy={"name": "sobol"}, budget={"calls": 16, "initial_design": 8},
                      baselines=[{"name": "expert", "params": {p: 0.5 for p in names}}])
    root = tmp_path / "w"
    assert main(["run", str(write_study(data)), "--output", str(root), "-q"]) == 0
    camp = Campaign.open(root)
    study, recs = camp.study(), camp.records()
    figs: list[Any] = []
    monkeypatch.setattr(report, "_save", lambda fig, path: figs.append(fig) or path)
    report.parallel_coordinates_plot(study, recs, root / "p.png")
    drawn = [ln for ln in figs[-1].axes[0].lines if len(ln.get_xdata()) == len(names)]
    base = next(c for c, r in recs.items() if r.origin == "baseline")
    assert len(drawn) == len(set(pareto_calls(study, recs.values())) | {base})  # the front and the baseline only
    page = report.html_report(study, recs, [], root / "r.html", {}).read_text()
    head = page.index("<table>")
    rows = page[head:].split("<tr>")
    assert rows[2].startswith("<th>a [t]</th>") and any(r.startswith("<th>p13 [cm]</th>") for r in rows)
    assert page.index("<th>a [t]</th>") < page.index("<th>p0 [cm]</th>")  # objectives first
    assert "max-width:100%" in page and "520px" not in page


def test_no_completed_call_gives_empty_front_and_valid_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from optimizer import report
    from optimizer.pareto import front_table, hypervolume_summary, pareto_calls
    from optimizer.storage import CallRecord
    from optimizer.study import validate_study

    study = validate_study(base_study(objectives={"a": {"unit": "t"}, "b": {}}))
    recs = {1: CallRecord(1, "initial", {"x1": 0, "x2": 0}, [0, 0], 0, 1, status="failed")}
    assert pareto_calls(study, recs.values()) == [] and front_table(study, recs) == []
    s = hypervolume_summary(study, recs)
    assert s["hypervolume"] == 0.0 and s["normalised"] is None and s["reference"] == {"a": None, "b": None}
    json.dumps(s, allow_nan=False)
    monkeypatch.setattr(report, "_save", lambda fig, path: path)
    report.pareto_plot(study, recs, Path("unused.png"))
    report.convergence_plot(study, recs, Path("unused.png"))
