"""`optimize report`: every figure for single- and two-objective campaigns (one with failed calls), the HTML
embeds them, and the design table's numbers are the journal's."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from conftest import base_study
from optimizer.cli import main

FIGURES_SO = ("convergence", "cost", "timeline", "parameters", "surrogate", "surrogate_check")
FIGURES_MO = (*FIGURES_SO, "pareto", "hypervolume")


def _check_figures(root: Path, names: tuple[str, ...]) -> str:
    page = (root / "report" / "report.html").read_text()
    for name in names:
        png = (root / "report" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000
        # embedded: the page opens offline (with several objectives the convergence figure is the hypervolume's)
        assert name == "hypervolume" or base64.b64encode(png).decode() in page
    assert page.count('alt="hypervolume"') == 0
    return page


def test_report_of_a_two_objective_campaign_with_failed_calls(write_study, tmp_path: Path) -> None:
    from optimizer.campaign import Campaign
    from optimizer.pareto import pareto_calls
    from optimizer.report import knee_point

    data = base_study(simulator={"name": "sims_for_tests:Moody", "samples_per_call": 20},
                      objectives={"f": {"statistic": "mean"}, "cost": {"quantity": "cost"}},
                      strategy={"name": "sobol"}, budget={"calls": 16, "initial_design": 0},
                      baselines=[{"name": "expert", "params": {"x1": 1.0, "x2": 1.0}}])
    root = tmp_path / "mo"
    assert main(["run", str(write_study(data)), "--output", str(root), "-q"]) == 0
    camp = Campaign.open(root)
    study, recs = camp.study(), camp.records()
    assert any(r.status == "failed" for r in recs.values()) and any(r.status == "completed" for r in recs.values())
    assert main(["report", str(root), "--surrogate"]) == 0
    # the cost quantity comes from the study's own module, which a report never imports: no surrogate views
    page = _check_figures(root, tuple(f for f in FIGURES_MO if not f.startswith("surrogate")))
    assert "surrogate views" in page and "never imports" in page
    knee = knee_point(study, recs)
    assert knee in pareto_calls(study, recs.values())
    r, base = recs[knee], next(r for r in recs.values() if r.label == "expert")
    assert f"knee of the front (call {knee})" in page
    from optimizer.pareto import format_change, format_value, relative_change

    for name in ("f", "cost"):  # the table's numbers are the journal's, with the change against the baseline
        se, se_b = r.sems.get(name, 0.0), base.sems.get(name, 0.0)
        assert f"<td>{format_value(r.metrics[name], se)}</td>" in page
        change = relative_change(r.metrics[name], se, base.metrics[name], se_b)
        assert change is not None and change[0] == pytest.approx((r.metrics[name] - base.metrics[name]) / abs(base.metrics[name]))
        assert f"<td>{format_change(change)}</td>" in page
    assert f"{r.params['x1']:.6g}" in page and "baseline expert" in page


def test_report_of_a_single_objective_campaign(write_study, tmp_path: Path, capsys) -> None:
    root = tmp_path / "so"
    assert main(["run", str(write_study(base_study(budget={"calls": 10, "initial_design": 4}))), "--output", str(root),
                 "-q"]) == 0
    capsys.readouterr()
    assert main(["report", str(root)]) == 0  # a sobol campaign: no WU-GO model is fitted unless asked for
    out = capsys.readouterr().out
    assert "fitting a surrogate" not in out and "surrogate check: off for a sobol campaign" in out
    page = _check_figures(root, tuple(f for f in FIGURES_SO if not f.startswith("surrogate")))
    assert not (root / "report" / "surrogate_check.png").exists() and "optimize report --surrogate" in page
    assert main(["report", str(root), "--surrogate"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^fitting a surrogate for the held-out check: ~\d+ s", out, re.M)
    page = _check_figures(root, FIGURES_SO)
    assert "knee of the front" not in page and "device-hours" in page and "surrogate check" in page
    assert main(["report", str(root), "--format", "svg", "--output", str(root / "svg"), "--surrogate"]) == 0
    page = (root / "svg" / "report.html").read_text()
    for name in FIGURES_SO:
        svg = (root / "svg" / f"{name}.svg").read_bytes()
        assert b"<svg" in svg[:1000] and base64.b64encode(svg).decode() in page


def test_report_of_a_wugo_campaign_draws_the_surrogate_check_by_default(write_study, tmp_path: Path, capsys) -> None:
    root = tmp_path / "w"
    data = base_study(strategy={"name": "wugo", "options": {"surrogate_options": {"steps": 100, "refit_steps": 20}}},
                      budget={"calls": 7, "initial_design": 7})  # the check needs 7 calls; short fits
    assert main(["run", str(write_study(data)), "--output", str(root), "-q"]) == 0
    capsys.readouterr()
    assert main(["report", str(root)]) == 0
    assert "fitting a surrogate for the held-out check: ~" in capsys.readouterr().out
    assert (root / "report" / "surrogate_check.png").exists()
    with pytest.raises(SystemExit):  # one or the other
        main(["report", str(root), "--surrogate", "--no-surrogate"])


def test_knee_point_is_the_front_member_nearest_the_ideal_point() -> None:
    from optimizer.report import knee_point
    from optimizer.storage import CallRecord
    from optimizer.study import validate_study

    study = validate_study(base_study(objectives={"a": {}, "b": {}}))
    pts = {1: (0.0, 1.0), 2: (0.2, 0.15), 3: (1.0, 0.0), 4: (0.9, 0.9)}
    recs = {c: CallRecord(c, "strategy", {"x1": 0, "x2": 0}, [0, 0], 0, 1, status="completed", feasible=True,
                          metrics={"a": a, "b": b}) for c, (a, b) in pts.items()}
    assert knee_point(study, recs) == 2


def test_spend_trace_counts_gpus_before_cpus() -> None:
    from optimizer.results import compute_hours
    from optimizer.storage import CallRecord

    r = CallRecord(1, "strategy", {}, [], 0, 1, started_at=0.0, finished_at=1800.0,
                   resources={"num_cpus": 4, "num_gpus": 1})
    assert compute_hours(r) == pytest.approx(0.5)
    r.resources = {"num_cpus": 4}
    assert compute_hours(r) == pytest.approx(2.0)


def test_surrogate_views_and_held_out_check_on_a_known_conditional_distribution(write_study, tmp_path: Path) -> None:
    """y ~ N(sin 3θ, 0.1 + 0.2θ): the report's surrogate mean follows sin 3θ, the held-out check compares the
    journal's own samples, and the refitted surrogate beats copying the nearest stored call."""
    import numpy as np
    import ot

    from optimizer.campaign import Campaign
    from optimizer.diagnostics import held_out, landscape_grid, report_model
    from optimizer.report import write_report

    data = base_study(parameters={"theta": {"low": 0.0, "high": 1.0}},
                      simulator={"name": "sims_for_tests:normal_sin", "samples_per_call": 400},
                      strategy={"name": "sobol"}, budget={"calls": 14, "initial_design": 0})
    root = tmp_path / "sin"
    assert main(["run", str(write_study(data)), "--output", str(root), "-q"]) == 0
    camp = Campaign.open(root)
    study, recs = camp.study(), camp.records()
    model = report_model(study, recs, camp.storage)
    assert model is not None and "fitted on the journal" in model.origin  # sobol keeps no generative model
    grid, (axis,) = landscape_grid(model.space, 41)
    view = model.strategy.landscape(grid)
    assert np.max(np.abs(view["mean"] - np.sin(3 * axis))) < 0.15
    assert np.all(view["sigma"] >= 0) and np.allclose(view["acquisition"], view["mean"] - 2.0 * view["sigma"])

    held = held_out(model, study)
    assert len(held) == 4
    for c in held:
        assert np.array_equal(c.simulated, camp.storage.load_samples(recs[c.call_id].samples)[:, 0])
        assert c.w1 == pytest.approx(ot.wasserstein_1d(c.simulated, c.generated))
    assert np.median([c.w1 for c in held]) < np.median([c.w1_nearest for c in held])

    paths, facts = write_report(camp, root / "report")
    assert {p.name for p in paths} >= {"surrogate.png", "surrogate_check.png", "report.html"}
    assert f"median W1 of y {np.median([c.w1 for c in held]):.3g}" in facts["surrogate check"]
    assert facts["calls"].startswith("14 of a budget of 14 finished: 14 completed")
