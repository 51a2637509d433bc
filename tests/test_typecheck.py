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
