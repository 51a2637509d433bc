"""`optimize run --initial-design N` and `optimize run --dry-run`."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import base_study
from optimizer.cli import main


def test_initial_design_override_is_run_and_resumable(write_study, tmp_path: Path) -> None:
    from optimizer.campaign import Campaign

    out = tmp_path / "camp"
    study = write_study(base_study(budget={"calls": 5, "initial_design": 3}))
    assert main(["run", str(study), "--output", str(out), "--initial-design", "1", "-q"]) == 0
    recs = Campaign.open(out).records()
    assert [r.origin for _, r in sorted(recs.items())] == ["initial"] + ["strategy"] * 4
    assert "initial_design: 1" in (out / "study.yaml").read_text()  # the stored study says what ran
    assert main(["resume", str(out), "--budget", "6", "-q"]) == 0  # same fingerprint: no --force needed
    assert len(Campaign.open(out).records()) == 6


@pytest.mark.parametrize("args, needle", [
    (["--initial-design", "7"], "--initial-design: 7 is outside 0 ... the budget (6 calls)"),
    (["--initial-design", "-1"], "--initial-design: -1 is outside"),
    (["--initial-design", "4", "--budget", "3"], "--initial-design: 4 is outside 0 ... the budget (3 calls)"),
])
def test_initial_design_out_of_range_is_one_line_and_writes_nothing(write_study, tmp_path, capsys, args, needle) -> None:
    out = tmp_path / "camp"
    assert main(["run", str(write_study(base_study())), "--output", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_initial_design_zero_with_budget(write_study, tmp_path: Path) -> None:
    from optimizer.campaign import Campaign

    out = tmp_path / "camp"
    study = write_study(base_study(strategy={"name": "sobol"}))
    assert main(["run", str(study), "--output", str(out), "--initial-design", "0", "--budget", "2", "-q"]) == 0
    assert [r.origin for r in Campaign.open(out).records().values()] == ["strategy", "strategy"]


def test_dry_run_times_a_call_estimates_and_writes_nothing(write_study, tmp_path, capsys) -> None:
    out = tmp_path / "never"
    data = base_study(strategy={"name": "sobol"}, baselines=[{"name": "expert", "params": {"x1": 1.0, "x2": 2.0}}])
    assert main(["run", str(write_study(data)), "--output", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "one call (100 samples, at baseline 'expert')" in text
    assert "estimated campaign wall time" in text and "7 calls" in text  # 6 budget calls + 1 baseline
    assert "nothing was written" in text
    assert not out.exists() and not (tmp_path / "runs").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]


def test_dry_run_times_a_model_decision(write_study, tmp_path, capsys) -> None:
    out = tmp_path / "never"
    assert main(["run", str(write_study(base_study(strategy={"name": "gp"}))), "--output", str(out), "--dry-run",
                 "--initial-design", "2", "--budget", "4"]) == 0
    text = capsys.readouterr().out
    assert "at the centre of the space" in text
    assert "two gp decisions on 4 stand-in results" in text and "+ 2 decisions ×" in text
    assert not out.exists()


def test_dry_run_reports_a_failing_call_as_one_line(write_study, tmp_path, capsys) -> None:
    data = base_study(simulator={"name": "sims_for_tests:always_fails", "samples_per_call": 10})
    assert main(["run", str(write_study(data)), "--output", str(tmp_path / "never"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert "the timed call at the centre of the space error: RuntimeError: simulator is broken" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "never").exists()


def test_dry_run_estimate_spreads_calls_over_workers() -> None:
    from optimizer.dryrun import DryRun

    r = DryRun(call_s=10.0, call_at="c", decision_s=0.5, decision_note="", workers=4, workers_note="",
               calls=10, baselines=2, decisions=8)
    assert r.wall_s == pytest.approx(10.0 * 3 + 0.5 * 8)  # 12 calls in 3 rounds of 4, decisions in series
