"""The campaign loop with the inline executor: ordering, failures, retries, resume, extension."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import base_study
from optimizer.campaign import Campaign, run_campaign
from optimizer.errors import CampaignError
from optimizer.executors.base import CallOutcome, CallRequest, Executor, execute_call, simulator_args
from optimizer.study import load_study


def start(write_study, tmp_path: Path, data: dict, budget: int | None = None, name: str = "c") -> tuple[Campaign, Any]:
    p = write_study(data, f"{name}.yaml")
    study, text = load_study(p)
    camp = Campaign.create(tmp_path / name, study, text, source=str(p), budget=budget)
    return camp, study


class InterruptAfter(Executor):
    """Inline runs that stop the driver (like Ctrl-C) after ``k`` results, with calls still in flight."""

    def __init__(self, study: Any, k: int, capacity: int = 3) -> None:
        self.spec = simulator_args(study.simulator)
        self.k, self.capacity, self.q = k, capacity, deque()

    def submit(self, request: CallRequest) -> None:
        self.q.append(request)

    def in_flight(self) -> int:
        return len(self.q)

    def wait(self, timeout: float | None = None) -> list[CallOutcome]:
        if self.k == 0:
            raise KeyboardInterrupt
        self.k -= 1
        return [execute_call(self.spec, self.q.popleft())]


def test_campaign_runs_to_budget_with_baselines_first(write_study, tmp_path: Path) -> None:
    data = base_study(baselines=[{"name": "expert", "params": {"x1": 1.0, "x2": -1.0}}])
    camp, study = start(write_study, tmp_path, data)
    summary = run_campaign(camp, study)
    recs = camp.records()
    assert summary.stopped == "budget" and summary.completed == 7 and summary.failed == 0
    assert [r.origin for r in recs.values()] == ["baseline"] + ["initial"] * 3 + ["strategy"] * 3
    assert recs[1].label == "expert" and recs[1].params == {"x1": 1.0, "x2": -1.0}
    assert len({r.seed for r in recs.values()}) == 7
    for r in recs.values():
        s = camp.storage.load_samples(r.samples)
        assert s.shape == (100, 1)
        assert r.metrics["f"] == pytest.approx(s.mean())
    assert summary.best["f"][0] == min(r.metrics["f"] for r in recs.values())


def test_same_study_same_campaign(write_study, tmp_path: Path) -> None:
    c1, s1 = start(write_study, tmp_path, base_study(strategy={"name": "random"}), name="a")
    c2, s2 = start(write_study, tmp_path, base_study(strategy={"name": "random"}), name="b")
    run_campaign(c1, s1)
    run_campaign(c2, s2)
    r1, r2 = c1.records(), c2.records()
    assert [r.params for r in r1.values()] == [r.params for r in r2.values()]
    assert [r.metrics for r in r1.values()] == [r.metrics for r in r2.values()]


def test_failures_are_recorded_and_campaign_goes_on(write_study, tmp_path: Path) -> None:
    designs = [{"x1": 5, "x2": 0}, {"x1": -5, "x2": 0}, {"x1": 1, "x2": 5}, {"x1": 0, "x2": 1}, {"x1": 1, "x2": 1}]
    data = base_study(
        simulator={"name": "sims_for_tests:Moody", "samples_per_call": 20},
        strategy={"name": "listed", "options": {"designs": designs}},
        budget={"calls": 10, "initial_design": 0},
        objectives={"f": {}, "cost": {"quantity": "cost"}},
    )
    camp, study = start(write_study, tmp_path, data)
    summary = run_campaign(camp, study)
    recs = camp.records()
    assert summary.stopped == "strategy"  # the list ran out before the budget
    kinds = [(r.status, r.failure_kind) for r in recs.values()]
    assert kinds == [("failed", "error"), ("failed", "invalid_output"), ("failed", "invalid_output"),
                     ("infeasible", "infeasible"), ("completed", None)]
    assert "detector geometry overlaps" in recs[1].error and "Traceback" in recs[1].error
    assert "NaN" in recs[2].error and "shape" in recs[3].error and "magnet gap" in recs[4].error
    assert recs[5].metrics == {"f": pytest.approx(2.0, abs=0.1), "cost": 2.0} and recs[5].metadata == {"x1": 1}
    assert not list((tmp_path / "c" / "samples").glob("call-00000[1-4].npy"))


def test_transient_failure_is_retried(write_study, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    sim = {"name": "sims_for_tests:Flaky", "samples_per_call": 10, "options": {"state_dir": str(state)}}
    camp, study = start(write_study, tmp_path, base_study(simulator=sim, execution={"backend": "inline", "retries": 1}),
                        budget=4, name="retry")
    run_campaign(camp, study)
    recs = camp.records()
    assert all(r.status == "completed" and r.attempts == 2 and r.failures == 1 for r in recs.values())
    events = [e for e in camp.storage.events() if e["event"] == "failed"]
    assert len(events) == 4 and all(not e["final"] and "transient" in e["error"] for e in events)

    for f in state.iterdir():
        f.unlink()
    camp2, study2 = start(write_study, tmp_path, base_study(simulator=sim), budget=3, name="noretry")
    run_campaign(camp2, study2)
    assert all(r.status == "failed" for r in camp2.records().values())


def test_retry_policy_follows_the_failure_kind(write_study, tmp_path: Path) -> None:
    """retry_on [transient]: a TransientError is re-run, a plain exception is final at once; by default a
    NaN output (invalid_output) is never re-run, since the seeded call would repeat it."""
    def flaky(name: str, transient: bool, budget: int) -> dict[int, object]:
        state = tmp_path / f"state-{name}"
        state.mkdir()
        sim = {"name": "sims_for_tests:Flaky", "samples_per_call": 10,
               "options": {"state_dir": str(state), "transient": transient}}
        ex = {"backend": "inline", "retries": 2, "retry_on": ["transient"]}
        camp, study = start(write_study, tmp_path, base_study(simulator=sim, execution=ex), budget=budget, name=name)
        run_campaign(camp, study)
        return camp.records()

    recs = flaky("transient", True, 3)
    assert all(r.status == "completed" and r.failures == 1 and r.attempts == 2 for r in recs.values())
    recs = flaky("plain", False, 3)
    assert all(r.status == "failed" and r.failure_kind == "error" and r.attempts == 1 for r in recs.values())

    data = base_study(simulator={"name": "sims_for_tests:Moody", "samples_per_call": 20},
                      strategy={"name": "listed", "options": {"designs": [{"x1": -5, "x2": 0}, {"x1": 1, "x2": 1}]}},
                      budget={"calls": 2, "initial_design": 0}, execution={"backend": "inline", "retries": 3})
    camp, study = start(write_study, tmp_path, data, name="nan")
    run_campaign(camp, study)
    recs = camp.records()
    assert (recs[1].status, recs[1].failure_kind, recs[1].attempts) == ("failed", "invalid_output", 1)
    assert recs[2].status == "completed"


def test_interrupted_campaign_resumes_without_loss_or_repeat(write_study, tmp_path: Path) -> None:
    camp, study = start(write_study, tmp_path, base_study(budget={"calls": 8, "initial_design": 3}))
    summary = run_campaign(camp, study, executor=InterruptAfter(study, k=4))
    assert summary.stopped == "interrupted"
    before = camp.records()
    done_before = {cid: r for cid, r in before.items() if r.done}
    open_before = {cid for cid, r in before.items() if not r.done}
    assert len(done_before) == 4 and open_before  # calls were in flight at the interruption

    summary = run_campaign(Campaign.open(camp.root), study)
    after = camp.records()
    assert summary.stopped == "budget"
    assert sorted(after) == list(range(1, 9)) and all(r.status == "completed" for r in after.values())
    for cid, r in done_before.items():  # completed calls were not run again
        assert after[cid].attempts == 1 and after[cid].metrics == r.metrics
    for cid in open_before:  # in-flight calls ran again with the same θ and seed
        assert after[cid].attempts == 2 and after[cid].params == before[cid].params and after[cid].seed == before[cid].seed
    completed = [e["call"] for e in camp.storage.events() if e["event"] == "completed"]
    assert sorted(completed) == list(range(1, 9))  # each exactly once


def test_resume_after_torn_journal_tail(write_study, tmp_path: Path) -> None:
    camp, study = start(write_study, tmp_path, base_study())
    run_campaign(camp, study, executor=InterruptAfter(study, k=2, capacity=1))
    with open(camp.storage.path, "a") as fh:
        fh.write('{"v":1,"event":"completed","ca')
    run_campaign(Campaign.open(camp.root), study)
    recs = camp.records()
    assert sorted(recs) == list(range(1, 7)) and all(r.status == "completed" for r in recs.values())


def test_extend_budget_on_resume(write_study, tmp_path: Path, capsys) -> None:
    from optimizer.cli import main

    camp, study = start(write_study, tmp_path, base_study(), budget=4)
    run_campaign(camp, study)
    first = {cid: r.params for cid, r in camp.records().items()}
    assert len(first) == 4
    assert main(["resume", str(camp.root), "--budget", "7", "-q"]) == 0
    recs = camp.records()
    assert len(recs) == 7 and all(recs[c].params == p and recs[c].attempts == 1 for c, p in first.items())
    assert main(["resume", str(camp.root), "-q"]) == 0  # nothing left to do
    assert len(camp.records()) == 7


def test_changed_study_refused_unless_forced(write_study, tmp_path: Path, capsys) -> None:
    from optimizer.cli import main

    camp, study = start(write_study, tmp_path, base_study(), budget=3)
    run_campaign(camp, study)
    changed = write_study(base_study(parameters={"x1": {"low": -5, "high": 6}, "x2": {"low": -5, "high": 5}}), "new.yaml")
    assert main(["resume", str(camp.root), "--study", str(changed), "--budget", "4", "-q"]) == 2
    err = capsys.readouterr().err
    assert "study changed" in err and "parameters" in err and "--force" in err
    assert len(camp.records()) == 3  # nothing ran, nothing lost
    assert main(["resume", str(camp.root), "--study", str(changed), "--budget", "4", "--force", "-q"]) == 0
    assert len(camp.records()) == 4
    assert len(list(camp.root.glob("study-*.yaml"))) == 1  # the old study is kept
    # execution-only changes are not a changed study
    other = write_study(base_study(execution={"backend": "inline", "retries": 3},
                                   parameters={"x1": {"low": -5, "high": 6}, "x2": {"low": -5, "high": 5}}), "exec.yaml")
    assert main(["resume", str(camp.root), "--study", str(other), "-q"]) == 0
    assert camp.study().execution.retries == 3  # the stored study follows, so a plain resume uses it
    assert len(list(camp.root.glob("study-*.yaml"))) == 2  # both earlier versions kept


def test_run_refuses_existing_campaign(write_study, tmp_path: Path) -> None:
    camp, study = start(write_study, tmp_path, base_study(), budget=2)
    run_campaign(camp, study)
    with pytest.raises(CampaignError, match="already holds a campaign"):
        Campaign.create(camp.root, study, "", source="x")


class RecordingStrategyExecutor(InterruptAfter):
    def wait(self, timeout: float | None = None) -> list[CallOutcome]:
        return [execute_call(self.spec, self.q.popleft())] if self.q else []


def test_strategy_sees_pending_points(write_study, tmp_path: Path, monkeypatch) -> None:
    from optimizer.strategies.base import SobolStrategy

    seen: list[tuple[int, np.ndarray, int]] = []
    orig = SobolStrategy.ask

    def spy(self, history, pending, n):
        seen.append((len(history), pending.copy(), n))
        return orig(self, history, pending, n)

    monkeypatch.setattr(SobolStrategy, "ask", spy)
    camp, study = start(write_study, tmp_path, base_study(budget={"calls": 8, "initial_design": 2}))
    run_campaign(camp, study, executor=RecordingStrategyExecutor(study, k=0, capacity=3))
    # first ask: the 2 initial points are in flight and one worker is free
    n_hist, pending, n = seen[0]
    assert n_hist == 0 and n == 1 and pending.shape == (2, 2)
    recs = camp.records()
    np.testing.assert_allclose(pending, [recs[1].unit, recs[2].unit])
    assert all(p.shape[0] == 2 for _, p, _ in seen)  # always 2 others in flight with capacity 3
    assert len(recs) == 8


class DrainingExecutor(InterruptAfter):
    """Every call in flight finishes at once, so the driver has ``capacity`` free workers to fill."""

    def __init__(self, study: Any, capacity: int, log: list[tuple[str, int]]) -> None:
        super().__init__(study, k=0, capacity=capacity)
        self.log = log

    def submit(self, request: CallRequest) -> None:
        self.log.append(("submit", request.call_id))
        super().submit(request)

    def wait(self, timeout: float | None = None) -> list[CallOutcome]:
        out = [execute_call(self.spec, r) for r in self.q]
        self.q.clear()
        return out


def test_free_workers_get_their_designs_one_at_a_time(write_study, tmp_path: Path, monkeypatch) -> None:
    """Each design is submitted before the next is chosen, and the next ask sees it as pending."""
    from optimizer.strategies.base import SobolStrategy

    log: list[tuple[str, int]] = []
    orig = SobolStrategy.ask

    def spy(self, history, pending, n):
        log.append(("ask", len(pending)))
        assert n == 1
        return orig(self, history, pending, n)

    monkeypatch.setattr(SobolStrategy, "ask", spy)
    camp, study = start(write_study, tmp_path, base_study(budget={"calls": 9, "initial_design": 3}))
    run_campaign(camp, study, executor=DrainingExecutor(study, capacity=3, log=log))
    assert log == [("submit", 1), ("submit", 2), ("submit", 3),
                   ("ask", 0), ("submit", 4), ("ask", 1), ("submit", 5), ("ask", 2), ("submit", 6),
                   ("ask", 0), ("submit", 7), ("ask", 1), ("submit", 8), ("ask", 2), ("submit", 9)]
    assert len(camp.records()) == 9


def test_function_simulator_with_two_outputs(write_study, tmp_path: Path) -> None:
    data = base_study(
        parameters={"x1": {"low": -1, "high": 1}},
        simulator={"name": "sims_for_tests:two_outputs", "samples_per_call": 500, "outputs": ["pos", "energy"]},
        objectives={"spread": {"output": "pos", "statistic": "std"},
                    "tail": {"output": "energy", "statistic": "fraction_above", "threshold": 2.0}},
        constraints={"center": {"output": "pos", "upper": 0.5}},
    )
    camp, study = start(write_study, tmp_path, data, budget=4)
    run_campaign(camp, study)
    for r in camp.records().values():
        assert r.metrics["spread"] == pytest.approx(1.0, abs=0.15)
        assert r.metrics["tail"] == pytest.approx(np.exp(-2), abs=0.06)
        assert r.feasible == (r.metrics["center"] <= 0.5)


def test_strategy_error_is_recorded_and_resume_recovers(write_study, tmp_path: Path, monkeypatch) -> None:
    from optimizer.strategies.base import SobolStrategy

    camp, study = start(write_study, tmp_path, base_study(budget={"calls": 6, "initial_design": 2}))
    orig = SobolStrategy.ask
    monkeypatch.setattr(SobolStrategy, "ask", lambda self, h, p, n: (_ for _ in ()).throw(RuntimeError("model blew up")))
    with pytest.raises(RuntimeError, match="model blew up"):
        run_campaign(camp, study)
    events = list(camp.storage.events())
    assert events[-1]["action"] == "error" and "model blew up" in events[-1]["error"]
    assert not any(e.get("action") == "finished" for e in events)
    monkeypatch.setattr(SobolStrategy, "ask", orig)
    summary = run_campaign(Campaign.open(camp.root), study)
    assert summary.completed == 6


class LoseAfter(InterruptAfter):
    """``k`` results, then every call comes back ``lost`` (its worker died), as a fake Ray would."""

    def wait(self, timeout: float | None = None) -> list[CallOutcome]:
        if self.k == 0:
            r = self.q.popleft()
            return [CallOutcome(r.call_id, r.attempt, "lost", error="WorkerCrashedError")]
        return super().wait(timeout)


class RayGoneAfter(InterruptAfter):
    """``k`` results, then Ray itself is gone."""

    def wait(self, timeout: float | None = None) -> list[CallOutcome]:
        if self.k == 0:
            from optimizer.errors import InfrastructureError

            raise InfrastructureError("the local Ray's raylet process died")
        return super().wait(timeout)


def test_infrastructure_failure_stops_the_campaign_and_charges_nothing(write_study, tmp_path: Path) -> None:
    from optimizer.errors import InfrastructureError

    camp, study = start(write_study, tmp_path, base_study(budget={"calls": 8, "initial_design": 3}))
    with pytest.raises(InfrastructureError) as err:
        run_campaign(camp, study, executor=RayGoneAfter(study, k=2))
    assert err.value.campaign == str(camp.root)
    events = list(camp.storage.events())
    (stop,) = [e for e in events if e["event"] == "campaign" and e["action"] == "infrastructure_error"]
    assert stop["in_flight"] and stop["error"] == "the local Ray's raylet process died"
    assert not [e for e in events if e["event"] == "failed" or e.get("action") == "finished"]
    summary = run_campaign(Campaign.open(camp.root), study)  # resume: in-flight calls run again, nothing lost
    assert summary.stopped == "budget" and summary.completed == 8 and sorted(camp.records()) == list(range(1, 9))


def test_calls_lost_for_good_are_replaced_not_charged(write_study, tmp_path: Path, monkeypatch) -> None:
    from optimizer import campaign as campaign_mod

    monkeypatch.setattr(campaign_mod, "MAX_LOST_RERUNS", 0)
    camp, study = start(write_study, tmp_path, base_study(budget={"calls": 4, "initial_design": 2}))
    summary = run_campaign(camp, study, executor=LoseAfter(study, k=3, capacity=1))
    recs = camp.records()
    assert summary.completed == 3 and summary.stopped == "lost"  # after 3 results every call dies
    lost = [r for r in recs.values() if r.failure_kind == "lost"]
    assert len(lost) == 4 and all(r.status == "failed" for r in lost)  # as many lost calls as the budget
    assert len({tuple(r.unit) for r in recs.values()}) == len(recs)  # each replacement is a new design
