"""A head and two worker nodes on this machine (`ray.cluster_utils.Cluster`): a worker node dies while calls
run on it, transient and permanent simulator failures; the campaign runs as `optimize run` against the
cluster's address, as on a real cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, base_study

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster():
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    c = cluster_utils.Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 0})
    nodes = [c.add_node(num_cpus=1) for _ in range(2)]
    yield c, nodes
    c.shutdown()


def _journal(root: Path) -> list[dict]:
    path = root / "journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")]


def _run(tmp_path: Path, name: str, data: dict) -> subprocess.Popen:
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    return subprocess.Popen([sys.executable, "-m", "optimizer.cli", "run", str(p), "--output", str(tmp_path / name), "-q"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_worker_node_dies_while_calls_run_on_it_and_every_call_completes_once(cluster, tmp_path: Path) -> None:
    c, nodes = cluster
    state = tmp_path / "state"
    state.mkdir()
    data = base_study(simulator={"name": "sims_for_tests:marked", "samples_per_call": 10,
                                 "options": {"state_dir": str(state), "delay": 4.0}},
                      strategy={"name": "sobol"}, budget={"calls": 6, "initial_design": 2},
                      execution={"backend": "ray", "address": c.address})
    proc = _run(tmp_path, "kill", data)
    victim = nodes[0]
    deadline = time.time() + 120
    running = []
    while time.time() < deadline and not running:  # a call just started on the victim, after one completed
        time.sleep(0.1)
        if not any(e["event"] == "completed" for e in _journal(tmp_path / "kill")):
            continue
        finished = {f.name.split("-")[1] for f in state.glob("done-*")}
        running = [f.name.split("-")[1] for f in state.glob("start-*") if f.name.split("-")[2] == victim.node_id
                   and f.name.split("-")[1] not in finished and time.time() - f.stat().st_mtime < 2.0]
    assert running, "no call was running on the victim node"
    c.remove_node(victim, allow_graceful=False)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out

    events = _journal(tmp_path / "kill")
    completed = [e["call"] for e in events if e["event"] == "completed"]
    assert sorted(completed) == list(range(1, 7))  # every call, exactly once
    seeds = {e["call"]: e["seed"] for e in events if e["event"] == "submitted"}
    killed = [cid for cid, seed in seeds.items() if str(seed) in running]
    assert killed
    for e in events:  # the killed call completed on the surviving node
        if e["event"] == "completed" and e["call"] in killed:
            assert e["worker"]["node"] != victim.node_id
    assert not [e for e in events if e["event"] == "failed" and e["kind"] != "lost"]


def test_transient_failures_are_retried_and_permanent_ones_recorded_while_the_campaign_goes_on(cluster,
                                                                                                 tmp_path: Path) -> None:
    c, _ = cluster
    state = tmp_path / "state"
    state.mkdir()
    data = base_study(simulator={"name": "sims_for_tests:marked", "samples_per_call": 10,
                                 "options": {"state_dir": str(state), "delay": 0.2, "fail_above": 2.5}},
                      strategy={"name": "sobol"}, budget={"calls": 8, "initial_design": 2},
                      execution={"backend": "ray", "address": c.address, "retries": 2})
    proc = _run(tmp_path, "flaky", data)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    events = _journal(tmp_path / "flaky")
    params = {e["call"]: e["params"] for e in events if e["event"] == "submitted"}
    assert len(params) == 8
    bad = {cid for cid, p in params.items() if p["x1"] > 2.5}
    assert bad and len(bad) < 8
    for cid in params:
        fails = [e for e in events if e["event"] == "failed" and e["call"] == cid]
        ok = [e for e in events if e["event"] == "completed" and e["call"] == cid]
        if cid in bad:  # always fails: retried twice, then recorded failed
            assert [(f["kind"], f["final"]) for f in fails] == [("error", False), ("error", False), ("error", True)]
            assert not ok
        else:  # fails once, transiently, then completes
            assert [(f["kind"], f["final"]) for f in fails] == [("transient", False)] and len(ok) == 1
