"""Campaigns through Ray: the executor's protocol, timeouts, and a real kill -9 mid-campaign then resume."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import FAST_WUGO, ROOT, base_study
from optimizer.study import validate_study
from optimizer.testing import ExecutorConformance

pytestmark = pytest.mark.ray


class TestRayExecutor(ExecutorConformance):
    @pytest.fixture
    def make_executor(self, ray_cluster):
        from optimizer.executors.ray_backend import RayExecutor

        built: list[RayExecutor] = []

        def make(simulator, execution):
            built.append(RayExecutor(simulator, execution))
            return built[-1]

        yield make
        for ex in built:
            ex.close()


def test_ray_executor_capacity(ray_cluster) -> None:
    from optimizer.executors.ray_backend import RayExecutor

    study = validate_study(base_study(simulator={"name": "three_hump_camel"}, execution={"backend": "ray"}))
    ex = RayExecutor(study.simulator, study.execution)
    try:
        assert (ex.slots, ex.capacity) == (2, 3)  # two CPUs, one per call, and one call queued ahead
    finally:
        ex.close()


def test_timeout_and_errors_through_ray(ray_cluster, write_study, tmp_path: Path) -> None:
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.study import load_study

    data = base_study(
        simulator={"name": "sims_for_tests:Slow", "samples_per_call": 5, "options": {"delay_s": 60}},
        execution={"backend": "ray", "timeout": 2, "max_concurrent": 2},
        budget={"calls": 2, "initial_design": 2},
    )
    p = write_study(data)
    study, text = load_study(p)
    camp = Campaign.create(tmp_path / "slow", study, text, source=str(p))
    t0 = time.time()
    summary = run_campaign(camp, study, source=str(p))
    assert time.time() - t0 < 50  # the calls were cancelled, not waited for
    recs = camp.records()
    assert summary.failed == 2 and all(r.failure_kind == "timeout" and r.status == "failed" for r in recs.values())


def test_a_call_queued_ahead_starts_when_a_worker_frees_and_is_timed_from_then(ray_cluster, write_study,
                                                                                 tmp_path: Path) -> None:
    """Two slots and one call queued ahead: three calls are in flight before the first result, and the
    queued call's timeout starts when a slot frees: it completes although submission to result takes
    longer than the timeout."""
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.study import load_study

    def campaign(name: str, delay: float, timeout: float) -> Campaign:
        data = base_study(simulator={"name": "sims_for_tests:Slow", "samples_per_call": 5, "options": {"delay_s": delay}},
                          execution={"backend": "ray", "timeout": timeout}, strategy={"name": "sobol"},
                          budget={"calls": 3, "initial_design": 3})
        p = write_study(data, f"{name}.yaml")
        study, text = load_study(p)
        camp = Campaign.create(tmp_path / name, study, text, source=str(p))
        run_campaign(camp, study, source=str(p))
        return camp

    campaign("warm", 0.0, 120)  # both workers started and the test simulators imported
    camp = campaign("queued", 4.0, 7.0)
    events = [e["event"] for e in _journal(camp.root) if e["event"] in ("submitted", "completed", "failed")]
    recs = sorted(camp.records().values(), key=lambda r: r.started_at or 0)
    assert all(r.status == "completed" for r in recs), [r.error for r in recs]
    assert events[:4] == ["submitted"] * 3 + ["completed"]
    assert recs[2].started_at >= min(r.finished_at for r in recs[:2]) - 0.5  # it waited in Ray for a slot
    assert recs[2].finished_at - recs[2].submitted_at > 7.0  # and was not timed from its submission


def _journal(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "journal.jsonl").read_text().splitlines() if line.strip()]


def test_wugo_proposes_asynchronously_through_ray(ray_cluster, write_study, tmp_path: Path) -> None:
    """Two Ray workers, WU-GO asked for one point whenever a worker frees, the other call pending."""
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.study import load_study

    fast = FAST_WUGO
    data = base_study(strategy={"name": "wugo", "options": fast}, budget={"calls": 9, "initial_design": 3},
                      execution={"backend": "ray", "max_concurrent": 2})
    p = write_study(data)
    study, text = load_study(p)
    camp = Campaign.create(tmp_path / "w", study, text, source=str(p))
    summary = run_campaign(camp, study, source=str(p))
    recs = camp.records()
    assert summary.completed == 9 and [r.origin for r in recs.values()].count("strategy") == 6
    units = np.array([r.unit for r in recs.values()])
    d = np.linalg.norm(units[:, None] - units[None], axis=-1)[np.triu_indices(9, 1)]
    assert d.min() > 1e-6  # no design proposed twice, pending ones included


@pytest.mark.parametrize("study_file, n, calls", [("single_magnet.yaml", 300, 4), ("calorimeter_absorber.yaml", 200, 4),
                                                   ("magnet_shape.yaml", 200, 4)])
def test_detector_simulators_run_a_campaign_through_ray(ray_cluster, write_study, tmp_path: Path, study_file: str,
                                                        n: int, calls: int) -> None:
    """Each detector study, shrunk to a few calls of a few hundred particles, runs through Ray workers
    (baselines included) and records finite objectives and the exact quantities."""
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.study import load_study

    data = yaml.safe_load((ROOT / "studies/detectors" / study_file).read_text())
    data["simulator"]["samples_per_call"] = n
    data["strategy"] = {"name": "sobol"}
    data["budget"] = {"calls": calls, "initial_design": 0}
    data["execution"] = {"backend": "ray", "max_concurrent": 2}
    p = write_study(data)
    study, text = load_study(p)
    camp = Campaign.create(tmp_path / "det", study, text, source=str(p))
    summary = run_campaign(camp, study, source=str(p))
    recs = list(camp.records().values())
    assert summary.completed == calls + len(data.get("baselines", [])) and summary.failed == 0
    sim_quantities = {o.quantity for o in study.objectives.values() if o.quantity}
    for r in recs:
        assert r.status == "completed" and all(np.isfinite(v) for v in r.metrics.values())
        assert sim_quantities <= set(r.quantities) and r.n_samples == n
        assert r.worker.get("pid") != os.getpid()  # ran in a Ray worker, not in the driver


# -- the embedded Ray is private, quiet, and times calls from their start -------------------------------
_PRIVATE_PROBE = r"""
import json, sys
import ray
from optimizer.executors.base import CallRequest
from optimizer.executors.ray_backend import RayExecutor
from optimizer.study import validate_study
study = validate_study({"name": "t", "parameters": {"x1": {"low": -5, "high": 5}, "x2": {"low": -5, "high": 5}},
                        "simulator": {"name": "three_hump_camel"}, "objectives": {"f": {"statistic": "mean"}},
                        "budget": {"calls": 4, "initial_design": 2},
                        "execution": {"backend": "ray", "timeout": 5, "max_concurrent": 4}})
ex = RayExecutor(study.simulator, study.execution)
for cid in range(1, 5):  # four 1 ms calls on fresh workers, each worker starting for seconds
    ex.submit(CallRequest(cid, 1, {"x1": 0.1 * cid, "x2": 0.0}, 8, cid))
outs = []
while ex.in_flight():
    outs += ex.wait(timeout=120)
print(json.dumps({"resources": ray.cluster_resources(), "nodes": [n["NodeID"] for n in ray.nodes()],
                  "status": sorted(o.status for o in outs), "ran_on": sorted({o.worker.get("node") for o in outs})}))
ex.close()
"""


@pytest.fixture
def foreign_cluster(tmp_path: Path):
    """A `ray start --head` cluster with a 'foreign' resource, found through Ray's current-cluster file in a
    temp dir of its own (RAY_TMPDIR: other Ray users of this machine never see it)."""
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="rf", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
    env.update(RAY_TMPDIR=str(tmp), HOME=str(tmp))  # HOME: a token of its own under ~/.ray
    ray_cli = [sys.executable, "-c", "from ray.scripts.scripts import main; main()"]
    r = subprocess.run([*ray_cli, "start", "--head", "--num-cpus=1", '--resources={"foreign": 1}', "--port=0",
                        "--include-dashboard=false", "--disable-usage-stats"],
                       env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp / "ray" / "ray_current_cluster").exists()
    yield env
    # not `ray stop`: it kills every Ray process on the machine (this session's own cluster too); only the
    # processes of this cluster name its temp dir on their command lines
    _kill_processes_mentioning(str(tmp))
    shutil.rmtree(tmp, ignore_errors=True)


def _kill_processes_mentioning(text: str) -> None:
    """SIGKILL every process whose command line contains ``text`` (never this one)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(proc.name), signal.SIGKILL)


def test_embedded_ray_is_private_quiet_and_times_calls_from_their_start(foreign_cluster: dict) -> None:
    """With a `ray start` cluster on the machine, the executor starts its own instance (no 'foreign'
    resource, other node ids), prints no token-authentication notice or start-up banner with RAY_AUTH_MODE
    unset, and four 1 ms calls with `timeout: 5` complete although fresh workers take seconds to start."""
    env = {**foreign_cluster, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    r = subprocess.run([sys.executable, "-c", _PRIVATE_PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert "foreign" not in got["resources"]
    assert got["status"] == ["completed"] * 4
    assert set(got["ran_on"]) <= set(got["nodes"])
    assert "Token authentication" not in r.stderr and "Started a local Ray" not in r.stderr, r.stderr


def test_unreachable_address_is_one_line_and_exit_2(write_study, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = write_study(base_study(execution={"backend": "ray", "address": f"127.0.0.1:{port}"}))
    r = subprocess.run([sys.executable, "-m", "optimizer.cli", "run", str(p), "--output", str(tmp_path / "c")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert r.stderr.startswith(f"error: execution.address: cannot reach Ray at '127.0.0.1:{port}' ("), r.stderr
    assert not (tmp_path / "c").exists()


# -- worker deaths are never charged; Ray's own death stops the campaign ---------------------------------
def test_worker_deaths_are_not_charged_to_the_budget(ray_cluster, write_study, tmp_path: Path, monkeypatch) -> None:
    """Calls whose worker dies (os._exit) every time end final `lost` and are replaced: the budget still
    buys 6 charged calls, all completed."""
    from optimizer import campaign as campaign_mod
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.executors import ray_backend
    from optimizer.study import load_study

    monkeypatch.setattr(ray_backend, "SYSTEM_RETRIES", 0)  # one death per attempt keeps the test short
    monkeypatch.setattr(campaign_mod, "MAX_LOST_RERUNS", 0)
    data = base_study(simulator={"name": "sims_for_tests:die_above", "samples_per_call": 10, "options": {"above": 1.5}},
                      strategy={"name": "sobol"}, budget={"calls": 6, "initial_design": 3},
                      execution={"backend": "ray", "max_concurrent": 2})
    p = write_study(data)
    study, text = load_study(p)
    camp = Campaign.create(tmp_path / "die", study, text, source=str(p))
    summary = run_campaign(camp, study, source=str(p))
    recs = list(camp.records().values())
    lost = [r for r in recs if r.failure_kind == "lost"]
    assert lost and all(r.status == "failed" and r.params["x1"] > 1.5 for r in lost)
    charged = [r for r in recs if r.origin != "baseline" and r.failure_kind != "lost"]
    assert len(charged) == 6 and summary.completed == 6 and summary.stopped == "budget"
    events = _journal(camp.root)
    assert all(e["final"] for e in events if e["event"] == "failed")
    s = subprocess.run([sys.executable, "-m", "optimizer.cli", "status", str(camp.root), "--json"],
                       capture_output=True, text=True, timeout=120)
    got = json.loads(s.stdout)
    assert (got["issued"], got["lost"]) == (6, len(lost))


def test_a_simulator_that_always_kills_its_worker_stops_the_campaign(ray_cluster, write_study, tmp_path: Path,
                                                                     monkeypatch) -> None:
    from optimizer import campaign as campaign_mod
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.executors import ray_backend
    from optimizer.study import load_study

    monkeypatch.setattr(ray_backend, "SYSTEM_RETRIES", 0)
    monkeypatch.setattr(campaign_mod, "MAX_LOST_RERUNS", 0)
    data = base_study(simulator={"name": "sims_for_tests:die", "samples_per_call": 10}, strategy={"name": "sobol"},
                      budget={"calls": 2, "initial_design": 2}, execution={"backend": "ray", "max_concurrent": 2})
    p = write_study(data)
    study, text = load_study(p)
    camp = Campaign.create(tmp_path / "die", study, text, source=str(p))
    summary = run_campaign(camp, study, source=str(p))
    assert summary.stopped == "lost" and summary.completed == 0
    assert all(r.failure_kind == "lost" for r in camp.records().values())


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    return subprocess.Popen([sys.executable, "-m", "optimizer.cli", *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)


def _wait_completed(proc: subprocess.Popen, out: Path, n: int, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        evs = _journal(out) if (out / "journal.jsonl").exists() else []
        if sum(e["event"] == "completed" for e in evs) >= n:
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} completed calls in {timeout} s")


def _slow_study(tmp_path: Path, calls: int, delay: float) -> Path:
    data = base_study(simulator={"name": "sims_for_tests:Slow", "samples_per_call": 5, "options": {"delay_s": delay}},
                      strategy={"name": "sobol"}, budget={"calls": calls, "initial_design": 2},
                      execution={"backend": "ray", "max_concurrent": 2})
    p = tmp_path / "slow.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def _campaign_events(root: Path, action: str) -> list[dict]:
    return [e for e in _journal(root) if e["event"] == "campaign" and e["action"] == action]


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        me = todo.pop()
        kids = [p for p, pp in parent.items() if pp == me]
        out += kids
        todo += kids
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the raylet through /proc")
def test_every_way_a_ray_campaign_stops_and_resume_completes_it(tmp_path: Path) -> None:
    """One campaign through the embedded Ray, stopped four ways in turn, each time resumed:
    1. SIGKILL of the private Ray's raylet: exit 3 with one clear line; the calls in flight are neither failed
       nor charged;
    2. SIGTERM to the driver and 3. Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stop it
       at once, like inline: an `interrupted` event listing the calls in flight, exit 143 / 130, a line saying
       how to resume;
    4. SIGKILL of the whole process group with calls in flight: nothing recorded is lost.
    The last resume completes every call exactly once; a re-run repeats its θ and seed.
    (One chain rather than four campaigns: each stop costs a fresh embedded Ray, ~10 s.)"""
    out = tmp_path / "camp"
    calls = 10
    study = _slow_study(tmp_path, calls, 1.5)
    resume_line = f"recorded calls are kept; continue with: optimize resume {out}"

    def completed() -> set[int]:
        return {e["call"] for e in _journal(out) if e["event"] == "completed"}

    # 1. the raylet dies
    proc = _cli("run", str(study), "--output", str(out), "-q")
    _wait_completed(proc, out, 1)
    raylets = [pid for pid in _descendants(proc.pid) if Path(f"/proc/{pid}/comm").read_text().strip() == "raylet"]
    assert len(raylets) == 1
    os.kill(raylets[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert f"Ray cluster lost: the local Ray's raylet process died; {resume_line}" in err
    (stop,) = _campaign_events(out, "infrastructure_error")
    assert stop["in_flight"] and not set(stop["in_flight"]) & completed()
    assert not [e for e in _journal(out) if e["event"] == "failed"]

    # 2. SIGTERM to the driver, 3. SIGINT to the process group
    for n, send, code in ((3, lambda p: p.send_signal(signal.SIGTERM), 143),
                          (5, lambda p: os.killpg(p.pid, signal.SIGINT), 130)):
        proc = _cli("resume", str(out), "-q")
        _wait_completed(proc, out, n)
        send(proc)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == code, err
        assert len(completed()) < calls  # stopped, not run out
        assert f"interrupted; {resume_line}" in err
        stops = _campaign_events(out, "interrupted")
        assert len(stops) == (1 if code == 143 else 2) and stops[-1]["in_flight"]
        assert not _campaign_events(out, "finished")

    # 4. SIGKILL of everything, with calls in flight
    proc = _cli("resume", str(out), "-q")
    _wait_completed(proc, out, 7)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    before = _journal(out)
    done_before = {e["call"]: e for e in before if e["event"] == "completed"}
    assert 7 <= len(done_before) < calls
    assert {e["call"] for e in before if e["event"] == "submitted"} - set(done_before), "no call was in flight"

    r = _cli("resume", str(out), "-q")
    _, err = r.communicate(timeout=300)
    assert r.returncode == 0, err
    events = _journal(out)
    assert sorted(e["call"] for e in events if e["event"] == "completed") == list(range(1, calls + 1))  # exactly once
    assert [e for e in events if e["event"] == "completed" and e["call"] in done_before] == list(done_before.values())
    done: set[int] = set()
    params: dict[int, tuple] = {}
    for e in events:
        if e["event"] == "submitted":
            assert e["call"] not in done  # a completed call is never run again
            assert params.setdefault(e["call"], (e["params"], e["seed"])) == (e["params"], e["seed"])
        elif e["event"] == "completed":
            done.add(e["call"])
    s = subprocess.run([sys.executable, "-m", "optimizer.cli", "status", str(out), "--json"], capture_output=True,
                       text=True, timeout=120)
    assert json.loads(s.stdout)["status_counts"] == {"completed": calls}
