"""Project-wide conventions that a reviewer would otherwise have to remember.

An objective's direction becomes a sign in one place (:func:`optimizer.study.minimisation_sign` and
:func:`~optimizer.study.maximisation_sign`); an ad-hoc ``direction == "maximize"`` elsewhere is how two opposite
sign conventions crept in before, so the source is searched for one.
"""

from __future__ import annotations

import re

import pytest

from conftest import ROOT
from optimizer.study import is_minimised, maximisation_sign, minimisation_sign

#: Source trees searched for ad-hoc direction comparisons.
SOURCE_DIRS = ("optimizer", "simulators", "surrogates", "bench")
#: A direction compared with a literal, either way round, with ``==``/``!=`` or ``in``/``not in``.
AD_HOC_DIRECTION = re.compile(
    r"""(?:[=!]=|\bin)\s*[(\[{]?\s*["']m(?:in|ax)imi[sz]e["']"""
    r"""|["']m(?:in|ax)imi[sz]e["']\s*(?:[=!]=)"""
)


def test_signs() -> None:
    assert (minimisation_sign("minimize"), minimisation_sign("maximize")) == (1.0, -1.0)
    assert (maximisation_sign("minimize"), maximisation_sign("maximize")) == (-1.0, 1.0)
    assert is_minimised("minimize") and not is_minimised("maximize")
    with pytest.raises(ValueError, match="'minimize' or 'maximize', not 'down'"):
        minimisation_sign("down")


@pytest.mark.parametrize("line", [
    'sign = 1.0 if o.direction == "minimize" else -1.0',
    "if 'maximize' == d:",
    'pick = max if d != "minimise" else min',
    'if d in ("maximize",):',
])
def test_pattern_catches_ad_hoc_conversions(line: str) -> None:
    assert AD_HOC_DIRECTION.search(line)


@pytest.mark.parametrize("line", ['direction: Direction = "minimize"', 'directions=["minimize"] * 2',
                                  'help="direction: minimize"'])
def test_pattern_leaves_plain_uses_alone(line: str) -> None:
    assert not AD_HOC_DIRECTION.search(line)


def test_directions_become_signs_in_one_place() -> None:
    found = [f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
             for d in SOURCE_DIRS for path in sorted((ROOT / d).rglob("*.py"))
             for i, line in enumerate(path.read_text().splitlines(), 1) if AD_HOC_DIRECTION.search(line)]
    assert found == [], "use optimizer.study.minimisation_sign / maximisation_sign / is_minimised:\n" + "\n".join(found)
