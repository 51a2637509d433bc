"""The type checker passes on the packages (configured in pyproject.toml's ``[tool.mypy]``).

Run as a test so the README's one test command also type-checks; mypy is in the ``test`` extra.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from conftest import ROOT

PACKAGES = ("optimizer", "simulators", "surrogates")


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed (pip install -e '.[test]' installs it)")
def test_mypy_passes() -> None:
    out = subprocess.run([sys.executable, "-m", "mypy", *PACKAGES], cwd=ROOT, capture_output=True, text=True,
                         timeout=540)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


def _seams() -> list[tuple[object, str, str]]:
    from optimizer.campaign import prepare
    from optimizer.report import write_report
    from optimizer.retarget import retarget
    from optimizer.sampling import generate
    from optimizer.strategies.wugo import WUGOStrategy
    from simulators.factory import build_simulator

    return [(build_simulator, "return", "Simulator"), (write_report, "campaign", "CampaignView"),
            (retarget, "campaign", "CampaignView"), (generate, "campaign", "CampaignView"),
            (WUGOStrategy.new_surrogate, "return", "Surrogate"),
            (prepare, "return", "tuple[SearchSpace, Simulator, Strategy, np.ndarray]")]


def test_seams_are_typed() -> None:
    """Where the layers meet, the checker sees the base classes, not ``Any`` (so it checks the calls across)."""
    for fn, name, expected in _seams():
        assert getattr(fn, "__annotations__")[name] == expected, (fn, name)
