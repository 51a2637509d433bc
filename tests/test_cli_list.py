"""``optimize --version`` and ``optimize list simulators -v``."""

from __future__ import annotations

import re

import pytest

import optimizer
from conftest import ROOT
from optimizer.cli import main
from simulators import SIMULATORS


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"detopt {optimizer.__version__}"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^version = "(.+)"$', pyproject, re.M).group(1) == optimizer.__version__  # type: ignore[union-attr]


def test_list_simulators_verbose_describes_every_simulator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "simulators", "-v"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n  parameters: ") == len(SIMULATORS.names())
    for name in SIMULATORS.names():
        assert f"\n{name}  ({SIMULATORS.source(name)})\n" in out


def test_list_named_simulators(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "simulators", "muon_shield", "branin_currin", "command"]) == 0
    out = capsys.readouterr().out
    shield, branin, command = out.strip().split("\n\n")
    assert "B_abs" in shield and "any of" in shield  # built with no options: a study may vary any subset
    assert re.search(r"outputs: .*\bhit\b", shield) and re.search(r"quantities: mass, length, cost", shield)
    assert "parameters: x1, x2\n" in branin and "outputs: branin, currin\n" in branin and "quantities: none" in branin
    assert "command (required)" in command and "parameters: set by the options" in command
    assert "simulators: " not in out  # named: only their descriptions


@pytest.mark.parametrize("argv, message", [
    (["list", "simulators", "nope"], "error: list: unknown simulator 'nope'; known: "),
    (["list", "strategies", "gp"], "error: list: names can follow 'simulators' only"),
])
def test_list_refuses_bad_names(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.startswith(message) and cap.err.count("\n") == 1
