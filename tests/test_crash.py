"""The campaign process killed (SIGKILL) at several random moments, resumed after each: afterwards the journal
holds every call of the budget completed exactly once, nothing recorded is lost, and re-runs repeat θ and seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from conftest import ROOT, base_study


def _events(root: Path) -> list[dict]:
    lines = (root / "journal.jsonl").read_text().splitlines() if (root / "journal.jsonl").exists() else []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a torn last line: resume drops it
            pass
    return out


def test_kill_at_random_moments_then_resume_loses_and_repeats_nothing(write_study, tmp_path: Path) -> None:
    data = base_study(simulator={"name": "sims_for_tests:Slow", "samples_per_call": 50, "options": {"delay_s": 0.1}},
                      strategy={"name": "sobol"}, budget={"calls": 40, "initial_design": 4},
                      execution={"backend": "inline"})
    study = write_study(data)
    root = tmp_path / "camp"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    cli = [sys.executable, "-m", "optimizer.cli"]
    rng = np.random.default_rng(2026)
    seen_completed: dict[int, dict] = {}
    kills = 0
    cmd = [*cli, "run", str(study), "--output", str(root), "-q"]
    for _ in range(6):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        # wait until this driver records a call, then kill it a random moment later
        before = len(_events(root))
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None and len(_events(root)) <= before + 2:
            time.sleep(0.02)
        time.sleep(float(rng.uniform(0.0, 0.6)))
        if proc.poll() is not None:
            break
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        events = _events(root)
        for e in events:  # nothing recorded before is lost or changed
            if e["event"] == "completed":
                assert seen_completed.setdefault(e["call"], e["metrics"]) == e["metrics"]
        assert set(seen_completed) == {e["call"] for e in events if e["event"] == "completed"}
        cmd = [*cli, "resume", str(root), "-q"]
    assert kills >= 4
    final = subprocess.run([*cli, "resume", str(root), "-q"], env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr

    events = _events(root)
    completed = [e["call"] for e in events if e["event"] == "completed"]
    assert sorted(completed) == list(range(1, 41))  # every call of the budget, exactly once
    first = {}
    for e in events:
        if e["event"] == "submitted":  # a re-run after a kill repeats θ and seed
            assert first.setdefault(e["call"], (e["params"], e["seed"])) == (e["params"], e["seed"])
    for e in events:
        if e["event"] == "completed":
            assert np.load(root / e["samples"]).shape == (50, 1)
            assert e["metrics"] == seen_completed.get(e["call"], e["metrics"])
    restarts = [e for e in events if e["event"] == "campaign" and e["action"] == "resume"]
    assert len(restarts) == kills  # one resume after each kill
    status = subprocess.run([*cli, "status", str(root), "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(status.stdout)["status_counts"] == {"completed": 40}
