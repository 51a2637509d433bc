"""A campaign directory is data: nothing in it runs code, every command that writes holds the lock first,
--force changes are checked against the stored history, and a damaged journal, samples file, campaign.json
or full disk is one line with exit 2 — never a traceback, never a change to what is recorded."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT, base_study
from optimizer.cli import main


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the hash of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _events(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "journal.jsonl").read_text().splitlines() if line.strip()]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def _finished(write_study, tmp_path: Path, name: str = "c", **over) -> Path:
    data = base_study(strategy={"name": "sobol"}, **over)
    root = tmp_path / name
    assert main(["run", str(write_study(data, f"{name}.yaml")), "--output", str(root), "-q"]) == 0
    return root


@pytest.fixture
def finished(write_study, tmp_path: Path) -> Path:
    return _finished(write_study, tmp_path)


# -- 1. nothing in a campaign directory is unpickled ---------------------------------------------
class _RunsCode:
    """Unpickling this runs code (what a crafted strategy.pt does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def _plant(root: Path, marker: Path) -> None:
    import torch

    torch.save({"preset": "default", "surrogate": _RunsCode(marker)}, root / "strategy.pt")


def test_crafted_strategy_state_does_not_run_on_resume(finished: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran.marker"
    _plant(finished, marker)
    assert main(["resume", str(finished), "--budget", "8", "-q"]) == 0
    assert not marker.exists()
    events = _events(finished)
    assert any(e["event"] == "strategy_state_ignored" for e in events)  # the state was refused, and said so
    assert sum(e["event"] == "completed" for e in events) == 8  # and the campaign went on from the journal


def test_crafted_strategy_state_does_not_run_on_report(write_study, tmp_path: Path) -> None:
    data = base_study(strategy={"name": "wugo"}, budget={"calls": 4, "initial_design": 3})
    root = tmp_path / "w"
    assert main(["run", str(write_study(data)), "--output", str(root), "-q"]) == 0
    assert (root / "strategy.pt").exists()
    marker = tmp_path / "ran.marker"
    _plant(root, marker)
    assert main(["report", str(root)]) == 0
    assert not marker.exists()


def test_saved_wugo_state_loads_weights_only(write_study, tmp_path: Path) -> None:
    """What WU-GO saves is plain tensors, dicts, lists and numbers: it restores under weights_only."""
    import torch

    from optimizer.campaign import Campaign, make_strategy, restore_strategy
    from optimizer.space import SearchSpace

    data = base_study(strategy={"name": "wugo"}, budget={"calls": 4, "initial_design": 3})
    root = tmp_path / "w"
    assert main(["run", str(write_study(data)), "--output", str(root), "-q"]) == 0
    torch.load(root / "strategy.pt", weights_only=True)
    camp = Campaign.open(root)
    study = camp.study()
    assert restore_strategy(camp, make_strategy(study, SearchSpace(study.parameters), "s"))
    assert not any(e["event"] == "strategy_state_ignored" for e in _events(root))


# -- 2. status, export and report never import a user's module ------------------------------------
def test_status_export_report_do_not_import_the_user_module(write_study, tmp_path: Path, monkeypatch) -> None:
    mod = "detopt_marker_sim"
    (tmp_path / f"{mod}.py").write_text(textwrap.dedent("""
        from pathlib import Path
        import numpy as np
        Path(__file__).with_name("imported.marker").write_text("imported")

        def fn(params, n, seed):
            return np.random.default_rng(seed).standard_normal(n) + params["x1"] ** 2 + params["x2"] ** 2
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    data = base_study(simulator={"name": f"{mod}:fn", "samples_per_call": 100}, strategy={"name": "sobol"},
                      budget={"calls": 8, "initial_design": 3})
    root = tmp_path / "u"
    assert main(["run", str(write_study(data)), "--output", str(root), "-q"]) == 0
    marker = tmp_path / "imported.marker"
    assert marker.exists()
    for command in (["status", str(root)], ["status", str(root), "--json"], ["export", str(root)],
                    ["report", str(root)]):
        marker.unlink(missing_ok=True)
        sys.modules.pop(mod, None)
        assert main(command) == 0, command
        assert not marker.exists(), command


# -- 3. the lock comes before any write -------------------------------------------------------
@pytest.fixture
def locked(finished: Path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\nfcntl.flock(fd, fcntl.LOCK_EX)\n"
         "os.ftruncate(fd, 0); os.write(fd, b'4242'); print('ready', flush=True); time.sleep(120)",
         str(finished / ".lock")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    yield finished
    holder.kill()
    holder.wait()


def test_resume_refused_by_the_lock_writes_nothing(locked: Path, capsys) -> None:
    before = _snapshot(locked)
    assert main(["resume", str(locked), "--budget", "50", "-q"]) == 2
    assert "another process (pid 4242)" in _one_error_line(capsys)
    assert _snapshot(locked) == before


def test_forced_resume_refused_by_the_lock_writes_nothing(locked: Path, write_study, capsys) -> None:
    changed = write_study(base_study(strategy={"name": "sobol"}, seed=11), "changed.yaml")
    (locked / "strategy.pt").write_bytes(b"state")  # a forced change would delete it
    before = _snapshot(locked)
    assert main(["resume", str(locked), "--force", "--study", str(changed), "-q"]) == 2
    assert "another process" in _one_error_line(capsys)
    assert _snapshot(locked) == before


# -- 4. --force changes and the stored history ---------------------------------------------------
def test_forced_new_objective_and_constraint_are_recomputed_from_stored_samples(finished: Path, write_study,
                                                                                 tmp_path: Path, capsys) -> None:
    from optimizer.campaign import Campaign
    from optimizer.metrics import evaluate_metric

    data = base_study(strategy={"name": "sobol"})
    data["objectives"]["spread"] = {"statistic": "std", "direction": "minimize"}
    data["constraints"] = {"q90": {"statistic": "quantile", "q": 0.9, "upper": 1e9}}
    new = write_study(data, "more.yaml")
    assert main(["resume", str(finished), "--force", "--study", str(new), "--budget", "8", "-q"]) == 0
    camp = Campaign.open(finished)
    study, recs = camp.study(), camp.records()
    assert sum(r.status == "completed" for r in recs.values()) == 8
    for r in recs.values():
        samples = camp.storage.load_samples(r.samples)
        for name in ("spread", "q90"):
            m = {**study.objectives, **study.constraints}[name]
            assert r.metrics[name] == pytest.approx(evaluate_metric(m, samples, ["y"], {})[0], rel=1e-12)
        assert r.feasible
    recomputed = [e for e in _events(finished) if e["event"] == "metrics_recomputed"]
    assert len(recomputed) == 1 and len(recomputed[0]["calls"]) == 6  # the calls stored before the change
    capsys.readouterr()
    assert main(["status", str(finished), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["best"]) == {"f", "spread"}
    assert main(["export", str(finished)]) == 0
    assert main(["report", str(finished), "--no-surrogate"]) == 0


def test_forced_constraint_on_an_unrecorded_quantity_is_refused(write_study, tmp_path: Path, capsys) -> None:
    moody = {"name": "sims_for_tests:Moody", "samples_per_call": 20}
    params = {"x1": {"low": 1, "high": 3}, "x2": {"low": 1, "high": 3}}
    root = _finished(write_study, tmp_path, simulator=moody, parameters=params)
    lines = (root / "journal.jsonl").read_text().splitlines()
    stored = [json.loads(x) for x in lines]
    for e in stored:  # a campaign recorded before its simulator reported this quantity
        e.get("quantities", {}).pop("cost", None)
    (root / "journal.jsonl").write_text("".join(json.dumps(e) + "\n" for e in stored))
    data = base_study(strategy={"name": "sobol"}, simulator=moody, parameters=params,
                      constraints={"cost": {"statistic": "quantity", "quantity": "cost", "upper": 10}})
    before = _snapshot(root)
    assert main(["resume", str(root), "--force", "--study", str(write_study(data, "cost.yaml")), "-q"]) == 2
    err = _one_error_line(capsys)
    assert "constraints.cost.quantity" in err and "not recorded" in err
    assert _snapshot(root) == before


def test_forced_narrower_bounds_that_exclude_stored_calls_are_refused(finished: Path, write_study, capsys) -> None:
    data = base_study(strategy={"name": "sobol"}, parameters={"x1": {"low": -0.1, "high": 0.1},
                                                             "x2": {"low": -5, "high": 5}})
    before = _snapshot(finished)
    assert main(["resume", str(finished), "--force", "--study", str(write_study(data, "narrow.yaml")), "-q"]) == 2
    err = _one_error_line(capsys)
    assert "parameters.x1" in err and "outside the new bounds" in err
    assert _snapshot(finished) == before


def test_forced_wider_bounds_recompute_stored_unit_coordinates(finished: Path, write_study) -> None:
    from optimizer.campaign import Campaign, build_history

    data = base_study(strategy={"name": "sobol"}, parameters={"x1": {"low": -10, "high": 10},
                                                             "x2": {"low": -5, "high": 15}})
    assert main(["resume", str(finished), "--force", "--study", str(write_study(data, "wide.yaml")),
                 "--budget", "7", "-q"]) == 0
    camp = Campaign.open(finished)
    study, recs = camp.study(), camp.records()
    h = build_history(study, recs, camp.storage)
    expect = [[(r.params["x1"] + 10) / 20, (r.params["x2"] + 5) / 20] for _, r in sorted(recs.items())
              if r.status == "completed"]
    np.testing.assert_allclose(h.theta, expect, rtol=1e-12)


# -- 5. journal edge cases ------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["empty", "deleted"])
def test_resume_without_a_journal_but_with_samples_is_refused(finished: Path, damage: str, capsys) -> None:
    journal = finished / "journal.jsonl"
    journal.write_text("") if damage == "empty" else journal.unlink()
    before = _snapshot(finished)
    assert main(["resume", str(finished), "-q"]) == 2
    assert "refusing to start over" in _one_error_line(capsys)
    assert _snapshot(finished) == before


def test_a_samples_file_is_never_overwritten(tmp_path: Path) -> None:
    from optimizer.storage import JournalStorage

    j = JournalStorage(tmp_path)
    first = j.save_samples(1, np.zeros((3, 1)))
    second = j.save_samples(1, np.ones((3, 1)))  # a re-run after a crash before the call was recorded
    assert first != second
    np.testing.assert_array_equal(np.load(tmp_path / first), np.zeros((3, 1)))
    np.testing.assert_array_equal(np.load(tmp_path / second), np.ones((3, 1)))


def test_a_duplicated_submitted_line_does_not_rerun_a_completed_call(finished: Path) -> None:
    lines = (finished / "journal.jsonl").read_text().splitlines(keepends=True)
    first = next(i for i, x in enumerate(lines) if json.loads(x)["event"] == "submitted")
    with open(finished / "journal.jsonl", "a") as fh:
        fh.write(lines[first])
    assert main(["resume", str(finished), "-q"]) == 0
    events = _events(finished)
    call = json.loads(lines[first])["call"]
    assert sum(e["event"] == "completed" and e["call"] == call for e in events) == 1


BAD_LINES = {
    "array": "[1, 2]",
    "number": "3",
    "unknown call": json.dumps({"v": 1, "time": 0, "event": "completed", "call": 999, "attempt": 1,
                                "samples": "samples/call-000001.npy", "metrics": {"f": 1.0}}),
    "missing field": json.dumps({"v": 1, "time": 0, "event": "submitted", "call": 7}),
}


@pytest.mark.parametrize("command", ["status", "export", "report", "resume"])
@pytest.mark.parametrize("bad", list(BAD_LINES))
def test_a_bad_journal_line_is_one_line_naming_it(finished: Path, command: str, bad: str, capsys) -> None:
    journal = finished / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    lines.insert(3, BAD_LINES[bad] + "\n")
    journal.write_text("".join(lines))
    before = _snapshot(finished)
    argv = [command, str(finished)] + (["-q"] if command == "resume" else [])
    assert main(argv) == 2
    assert f"journal.jsonl: line 4" in _one_error_line(capsys)
    assert _snapshot(finished) == before


@pytest.mark.parametrize("damage", ["deleted", "wrong shape", "truncated", "outside"])
@pytest.mark.parametrize("command", ["status", "report", "resume"])
def test_a_damaged_samples_file_is_noticed(finished: Path, damage: str, command: str, capsys) -> None:
    journal = finished / "journal.jsonl"
    target = finished / "samples" / "call-000002.npy"
    if damage == "deleted":
        target.unlink()
    elif damage == "wrong shape":
        np.save(target, np.zeros((100, 3)))
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[:200])
    else:
        journal.write_text(journal.read_text().replace("samples/call-000002.npy", "../../etc/passwd"))
    before = _snapshot(finished)
    argv = [command, str(finished)] + (["-q"] if command == "resume" else [])
    assert main(argv) == 2
    err = _one_error_line(capsys)
    assert ("outside" in err) if damage == "outside" else ("call-000002.npy" in err)
    assert _snapshot(finished) == before


def test_the_journal_is_strict_json_and_non_finite_values_survive_replay(write_study, tmp_path: Path) -> None:
    from optimizer.campaign import Campaign

    # one sample per call has no standard error: its sem is NaN
    root = _finished(write_study, tmp_path, simulator={"name": "three_hump_camel_paper", "samples_per_call": 1})

    def refuse(token: str):
        raise ValueError(f"non-standard JSON token {token}")

    for line in (root / "journal.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=refuse)
    recs = Campaign.open(root).records()
    assert all(np.isnan(r.sems["f"]) for r in recs.values())


# -- 6. budgets, outputs, damaged metadata, full disks ----------------------------------------------
@pytest.mark.parametrize("budget", ["-1", "0"])
def test_resume_with_a_non_positive_budget_is_refused(finished: Path, budget: str, capsys) -> None:
    before = _snapshot(finished)
    assert main(["resume", str(finished), "--budget", budget, "-q"]) == 2
    assert "--budget" in _one_error_line(capsys)
    assert _snapshot(finished) == before


@pytest.mark.parametrize("budget", ["-1", "0"])
def test_run_with_a_non_positive_budget_is_refused(write_study, tmp_path: Path, budget: str, capsys) -> None:
    data = base_study(strategy={"name": "sobol"}, budget={"calls": 6, "initial_design": 0})
    assert main(["run", str(write_study(data)), "--output", str(tmp_path / "b"), "--budget", budget, "-q"]) == 2
    assert "--budget" in _one_error_line(capsys)
    assert not (tmp_path / "b").exists()


def test_create_honours_a_zero_budget_by_refusing_it(write_study, tmp_path: Path) -> None:
    from optimizer.campaign import Campaign
    from optimizer.errors import CampaignError
    from optimizer.study import load_study

    study, text = load_study(write_study(base_study(budget={"calls": 6, "initial_design": 0})))
    with pytest.raises(CampaignError, match="--budget"):
        Campaign.create(tmp_path / "z", study, text, "s", budget=0)


def test_export_into_a_missing_folder_is_refused(finished: Path, tmp_path: Path, capsys) -> None:
    assert main(["export", str(finished), "--output", str(tmp_path / "nowhere" / "calls.csv")]) == 2
    assert "nowhere" in _one_error_line(capsys)
    assert not (tmp_path / "nowhere").exists()


def test_report_onto_a_file_is_refused(finished: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "a-file"
    target.write_text("keep me")
    assert main(["report", str(finished), "--output", str(target), "--no-surrogate"]) == 2
    assert "a-file" in _one_error_line(capsys)
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("content", ["{", "[1]", '{"name": "t"}', '{"fingerprint": "x", "budget_calls": "many"}'])
@pytest.mark.parametrize("command", ["status", "export", "report", "resume"])
def test_a_corrupt_campaign_json_is_one_line(finished: Path, content: str, command: str, capsys) -> None:
    (finished / "campaign.json").write_text(content)
    before = _snapshot(finished)
    argv = [command, str(finished)] + (["-q"] if command == "resume" else [])
    assert main(argv) == 2
    assert "campaign.json" in _one_error_line(capsys)
    assert _snapshot(finished) == before


def test_status_last_must_be_positive(finished: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["status", str(finished), "--last", "-5"])
    assert exit_.value.code == 2
    assert "--last" in capsys.readouterr().err


def _fill_disk_at(monkeypatch, journal: Path, after: int) -> None:
    """Writes to ``journal`` fail with ENOSPC after ``after`` whole writes, the failing one half-written."""
    real = os.write
    state = {"n": 0}

    def write(fd: int, data) -> int:
        if os.readlink(f"/proc/self/fd/{fd}") != str(journal.resolve()):
            return real(fd, data)
        state["n"] += 1
        if state["n"] > after:
            real(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)


@pytest.mark.parametrize("after", [0, 5])
def test_a_full_disk_is_one_line_and_leaves_no_torn_line(write_study, tmp_path: Path, monkeypatch, capsys,
                                                         after: int) -> None:
    study = write_study(base_study(strategy={"name": "sobol"}))
    root = tmp_path / "full"
    with monkeypatch.context() as m:
        _fill_disk_at(m, root / "journal.jsonl", after)
        assert main(["run", str(study), "--output", str(root), "-q"]) == 2
    assert _one_error_line(capsys) == f"error: {root}/journal.jsonl: no space left on device; recorded calls are kept"
    kept = _events(root) if (root / "journal.jsonl").exists() else []  # every line whole
    assert len(kept) == after
    with monkeypatch.context() as m:  # resume while still full: refused, nothing torn
        _fill_disk_at(m, root / "journal.jsonl", 0)
        assert main(["resume", str(root), "-q"]) == 2
    _one_error_line(capsys)
    assert (_events(root) if (root / "journal.jsonl").exists() else []) == kept
    assert main(["resume", str(root), "-q"]) == 0  # space again: the campaign finishes
    assert sum(e["event"] == "completed" for e in _events(root)) == 6


def test_report_of_a_campaign_whose_calls_all_failed(write_study, tmp_path: Path, capsys) -> None:
    root = _finished(write_study, tmp_path, simulator={"name": "sims_for_tests:always_fails", "samples_per_call": 10})
    capsys.readouterr()
    assert main(["report", str(root)]) == 0
    assert "no completed call" in capsys.readouterr().out
    assert main(["status", str(root)]) == 0


# -- 7. output directories that cannot hold a campaign ---------------------------------------------
def _outputs(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a-file").write_text("keep me")
    return {"a file": tmp_path / "a-file", "under a file": tmp_path / "a-file" / "camp",
            "under /proc": Path("/proc/detopt-campaign")}


@pytest.mark.parametrize("where", ["a file", "under a file", "under /proc"])
def test_run_into_an_output_that_cannot_hold_a_campaign(write_study, tmp_path: Path, where: str, capsys) -> None:
    study = write_study(base_study(strategy={"name": "sobol"}))
    out = _outputs(tmp_path)[where]
    before = _snapshot(tmp_path)
    assert main(["run", str(study), "--output", str(out), "-q"]) == 2
    assert str(out) in _one_error_line(capsys)
    assert _snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_run_into_a_read_only_folder(write_study, tmp_path: Path, capsys) -> None:
    study = write_study(base_study(strategy={"name": "sobol"}))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert main(["run", str(study), "--output", str(ro / "camp"), "-q"]) == 2
        _one_error_line(capsys)
        assert not any(ro.iterdir())
    finally:
        ro.chmod(0o700)


def test_an_os_error_writing_a_named_file_is_one_line(finished: Path, capsys) -> None:
    assert main(["export", str(finished), "--output", "/proc/detopt-calls.csv"]) == 2
    assert "/proc/detopt-calls.csv" in _one_error_line(capsys)
