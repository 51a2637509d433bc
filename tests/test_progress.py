"""The progress reporter: phases, ETA, end and Ctrl-C lines, one count of finished calls."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from conftest import base_study
from optimizer.progress import CHOOSING, COMPILING, FITTING, Eta, LineReporter, Reporter
from optimizer.storage import CallRecord


class Recorder(Reporter):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def workers(self, n: int) -> None:
        self.events.append(("workers", n))

    def phase(self, what: str) -> None:
        self.events.append(("phase", what))

    def phase_done(self, what: str, seconds: float) -> None:
        assert seconds >= 0
        self.events.append(("done", what))

    def submitted(self, rec: CallRecord) -> None:
        self.events.append(("submitted", rec.origin))


def _run(write_study, tmp_path: Path, reporter: Reporter, **over: Any) -> Any:
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.study import load_study

    p = write_study(base_study(**over))
    study, text = load_study(p)
    camp = Campaign.create(tmp_path / "c", study, text, source=str(p))
    return camp, run_campaign(camp, study, reporter=reporter)


def test_loop_announces_fits_and_choices_around_each_decision(write_study, tmp_path: Path) -> None:
    rec = Recorder()
    _run(write_study, tmp_path, rec, strategy={"name": "gp"}, budget={"calls": 5, "initial_design": 3})
    ev = rec.events
    assert ev[0] == ("workers", 1)
    asks = [e for e in ev if e[0] == "phase" and e[1] in (CHOOSING, COMPILING)]
    assert asks[0] == ("phase", COMPILING) and asks[1:] == [("phase", CHOOSING)]  # the first acquisition only
    assert len(asks) == 2 and ("phase", FITTING) in ev
    assert ev.index(("phase", FITTING)) > ev.index(("submitted", "initial"))  # no fit announced before any result
    for i, e in enumerate(ev):  # every phase ends before the next event of the loop
        if e[0] == "phase":
            assert ev[i + 1] == ("done", e[1])
    # a strategy decision comes right before its call is submitted
    assert all(ev[i + 2] == ("submitted", "strategy") for i, e in enumerate(ev) if e in asks)


def test_fixed_sequence_strategy_has_no_fit_phase(write_study, tmp_path: Path) -> None:
    rec = Recorder()
    _run(write_study, tmp_path, rec, strategy={"name": "sobol"}, budget={"calls": 3, "initial_design": 1})
    assert ("phase", FITTING) not in rec.events and ("phase", CHOOSING) in rec.events


def test_plain_lines_say_each_phase_once_the_eta_and_what_to_run_next(write_study, tmp_path: Path) -> None:
    stream = io.StringIO()
    camp, summary = _run(write_study, tmp_path, LineReporter(stream), strategy={"name": "sobol"},
                         baselines=[{"name": "expert", "params": {"x1": 0.5, "x2": 0.5}}])
    lines = stream.getvalue().splitlines()
    assert sum(ln == f"[detopt] {CHOOSING} ..." for ln in lines) == 1
    calls = [ln for ln in lines if ln.startswith("[detopt] call ")]
    assert len(calls) == 7 and "[0/6, ETA" in calls[0] and "[6/6, ETA ~0 s]" in calls[-1]  # the baseline is not counted
    assert lines[-2].startswith("[detopt] budget: 6/6 calls finished (7 completed, baselines included)")
    assert lines[-1] == (f"[detopt] results in {camp.root}; next: optimize report {camp.root} (figures, report.html), "
                         f"optimize status {camp.root}")
    assert summary.finished == 6 and summary.budget == 6


_CALLS = {"n": 0}


def interrupting(params: dict[str, float], n: int, seed: int) -> Any:
    """Ctrl-C during the 5th call of a process: 1 baseline + 3 budget calls are done by then."""
    import numpy as np

    _CALLS["n"] += 1
    if _CALLS["n"] == 5:
        raise KeyboardInterrupt
    return np.random.default_rng(seed).normal(params["x1"] ** 2 + params["x2"] ** 2, 0.1, size=(n, 1))


def test_interrupt_lines_count_the_calls_as_the_bar_and_say_resume(write_study, tmp_path: Path, capsys) -> None:
    from optimizer.campaign import Campaign
    from optimizer.cli import main
    from optimizer.records import finished_calls

    data = base_study(simulator={"name": "test_progress:interrupting", "samples_per_call": 10},
                      baselines=[{"name": "expert", "params": {"x1": 0.5, "x2": 0.5}}])
    _CALLS["n"] = 0
    out = tmp_path / "camp"
    code = main(["run", str(write_study(data)), "--output", str(out)])
    assert code == 130
    err = capsys.readouterr().err.splitlines()
    done = finished_calls(Campaign.open(out).records().values())
    assert done == 3
    assert err[-3].startswith("[detopt] interrupted: 3/6 calls finished")
    assert err[-2] == f"[detopt] results so far in {out} (optimize status {out})"
    assert err[-1] == f"interrupted; recorded calls are kept; continue with: optimize resume {out} (3 of 6 calls finished)"
    assert "[3/6, ETA" in [ln for ln in err if ln.startswith("[detopt] call 4 ")][0]
    capsys.readouterr()
    assert main(["status", str(out)]) == 0
    assert "t: 3/6 calls finished, 1 in flight or to re-run" in capsys.readouterr().out
    from optimizer.report import summary_facts

    view = Campaign.open(out)
    assert summary_facts(view.study(), view.records(), 6)["calls"].startswith("3 of a budget of 6 finished: ")


def _rec(cid: int, origin: str, dur: float | None, status: str = "completed") -> CallRecord:
    r = CallRecord(call_id=cid, origin=origin, label=None, params={}, unit=[], seed=0, n_samples=1)
    r.status = status
    if dur is not None:
        r.started_at, r.finished_at = 100.0, 100.0 + dur
    return r


def test_eta_is_median_call_times_remaining_over_workers_plus_decisions() -> None:
    from optimizer.study import StudyConfig

    study = StudyConfig.model_validate(base_study(budget={"calls": 10, "initial_design": 4}))
    recs = {1: _rec(1, "baseline", 50.0), 2: _rec(2, "initial", 2.0), 3: _rec(3, "initial", 4.0),
            4: _rec(4, "initial", 100.0), 5: _rec(5, "initial", None, status="submitted")}
    eta = Eta()
    eta.workers, eta.decision_s, eta.decided = 2, 6.0, 3
    # median of measured durations (2, 4, 50, 100) = 27; 7 budget calls left, 6 of them strategy decisions
    assert eta.estimate(study, 10, recs) == pytest.approx(27.0 * 7 / 2 + 2.0 * 6)
    assert Eta().estimate(study, 10, {5: recs[5]}) is None  # nothing measured yet


def test_eta_is_a_lower_bound_until_a_decision_is_timed() -> None:
    import io

    from optimizer.progress import LineReporter
    from optimizer.study import StudyConfig

    study = StudyConfig.model_validate(base_study(budget={"calls": 10, "initial_design": 4}, strategy={"name": "gp"}))
    recs = {2: _rec(2, "initial", 2.0), 3: _rec(3, "initial", 4.0)}
    rep = LineReporter(io.StringIO())
    rep.start(study, 10, recs)
    assert rep._eta().startswith("≥")  # 6 strategy decisions to come, none timed: calls alone underestimate
    rep.eta.decision_s, rep.eta.decided = 5.0, 1
    assert rep._eta().startswith("~")
    sobol = StudyConfig.model_validate(base_study(budget={"calls": 10, "initial_design": 4}, strategy={"name": "sobol"}))
    rep = LineReporter(io.StringIO())
    rep.start(sobol, 10, recs)
    assert rep._eta().startswith("~")  # space filling decides in no time
