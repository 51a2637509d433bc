"""The `command` simulator: an external program per call, θ by arguments, environment or input file."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from optimizer.testing import SimulatorConformance
from simulators.command import CommandSimulator

PROG = """
import json, os, sys
import numpy as np
mode = sys.argv[1]
a = float(os.environ["DETOPT_PARAM_A"]); n = int(os.environ["DETOPT_N"]); seed = int(os.environ["DETOPT_SEED"])
rng = np.random.default_rng(seed)
y = a + rng.standard_normal(n)
if mode == "npy": np.save("out.npy", y[:, None])
elif mode == "npz": np.savez("out.npz", hits=np.stack([y, y**2], 1))
elif mode == "csv": np.savetxt("out.csv", np.stack([y, y**2], 1), delimiter=",", header="y,y2", comments="")
elif mode == "json": json.dump({"rows": [[v] for v in y.tolist()]}, open("out.json", "w"))
elif mode == "input": np.save("out.npy", np.full((n, 1), float(open("in.txt").read().split("=")[1])))
elif mode == "fail": print("geometry overlap in volume 3", file=sys.stderr); sys.exit(3)
elif mode == "sleep": import time; time.sleep(30)
elif mode == "tempfail": print("licence server busy", file=sys.stderr); sys.exit(75)
elif mode == "nothing": pass
print("done", mode)
"""


@pytest.fixture
def prog(tmp_path: Path) -> str:
    p = tmp_path / "prog.py"
    p.write_text(PROG)
    return str(p)


def sim(prog: str, mode: str, output: str, **kw) -> CommandSimulator:
    return CommandSimulator([sys.executable, prog, mode], output=output, **kw)


@pytest.mark.parametrize("mode, output, outputs, key", [
    ("npy", "out.npy", ("y",), None), ("npz", "out.npz", ("y", "y2"), "hits"),
    ("csv", "out.csv", ("y", "y2"), None), ("json", "out.json", ("y",), "rows")])
def test_reads_every_output_format(prog: str, mode: str, output: str, outputs, key) -> None:
    s = sim(prog, mode, output, outputs=outputs, output_key=key)
    res = s.simulate({"a": 5.0}, 400, 1)
    assert res.samples.shape == (400, len(outputs))
    assert res.samples[:, 0].mean() == pytest.approx(5.0, abs=0.2)
    assert "done" in res.metadata["stdout_tail"]


def test_template_input_file(prog: str, tmp_path: Path) -> None:
    t = tmp_path / "in.tmpl"
    t.write_text("thickness={a}")
    s = sim(prog, "input", "out.npy", input_template=str(t), input_name="in.txt")
    assert s.simulate({"a": 2.5}, 3, 0).samples.tolist() == [[2.5]] * 3


def test_failure_keeps_stderr_and_timeout(prog: str) -> None:
    with pytest.raises(RuntimeError, match="(?s)exited with code 3.*geometry overlap"):
        sim(prog, "fail", "out.npy").simulate({"a": 1.0}, 3, 0)
    with pytest.raises(TimeoutError, match="ran over 1 s"):
        sim(prog, "sleep", "out.npy", timeout=1).simulate({"a": 1.0}, 3, 0)
    with pytest.raises(FileNotFoundError, match="did not write out.npy"):
        sim(prog, "nothing", "out.npy").simulate({"a": 1.0}, 3, 0)


def test_transient_exit_codes_are_transient_failures(prog: str) -> None:
    from optimizer.executors.base import CallRequest, execute_call
    from simulators.factory import SimulatorArgs
    from simulators.base import TransientError

    with pytest.raises(TransientError, match="(?s)exited with code 75.*licence server busy"):
        sim(prog, "tempfail", "out.npy").simulate({"a": 1.0}, 3, 0)
    with pytest.raises(RuntimeError) as err:  # a code not listed is an ordinary failure
        sim(prog, "tempfail", "out.npy", transient_exit_codes=[]).simulate({"a": 1.0}, 3, 0)
    assert not isinstance(err.value, TransientError)
    kinds = {}
    for mode in ("tempfail", "fail", "sleep"):
        spec = SimulatorArgs("command", {"command": [sys.executable, prog, mode], "output": "out.npy", "timeout": 1})
        kinds[mode] = execute_call(spec, CallRequest(1, 1, {"a": 1.0}, 3, 0)).status
    assert kinds == {"tempfail": "transient", "fail": "error", "sleep": "timeout"}


def test_no_shell(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    s = CommandSimulator(["echo", "{a}"], output="x.npy")
    with pytest.raises(FileNotFoundError):
        s.simulate({"a": f"; touch {marker}"}, 1, 0)  # passed as one argument, never interpreted
    assert not marker.exists()


class TestCommandConformance(SimulatorConformance):
    @pytest.fixture
    def simulator(self, prog):
        return sim(prog, "npy", "out.npy")

    @pytest.fixture
    def simulator_params(self):
        return {"a": 1.0}


def test_readme_example_campaign(tmp_path: Path, monkeypatch) -> None:
    """studies/examples/command_study.yaml end to end (inline here; the README runs it through Ray)."""
    from optimizer.cli import main

    monkeypatch.chdir(ROOT)
    rc = main(["run", "studies/examples/command_study.yaml", "--output", str(tmp_path / "cmd"), "--backend", "inline",
               "--budget", "8", "-q"])
    assert rc == 0
    from optimizer.campaign import Campaign

    recs = Campaign.open(tmp_path / "cmd").records()
    assert len(recs) == 8 and all(r.status == "completed" for r in recs.values())
    # more iron and field bend muons away: fewer hits where thickness·field is largest
    bl = np.array([r.params["thickness"] * r.params["field"] for r in recs.values()])
    hits = np.array([r.metrics["hits"] for r in recs.values()])
    assert hits[bl.argmax()] < hits[bl.argmin()]
