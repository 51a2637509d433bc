"""``strategy: {name: auto}``: the rule, the delegation, the announcement."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import base_study

from optimizer.space import SearchSpace
from optimizer.strategies.auto import AutoStrategy, choose
from optimizer.study import validate_study
from optimizer.testing import StrategyConformance


def _study(d: int, calls: int, objectives: int = 1, **over):
    params = {f"x{i}": {"low": -1, "high": 1} for i in range(d)}
    objs = {"f": {"statistic": "mean"}}
    sim = {"name": "sims_for_tests:quadratic", "samples_per_call": 20}
    if objectives > 1:
        objs = {"a": {"statistic": "mean", "output": "y0"}, "b": {"statistic": "mean", "output": "y1"}}
    return validate_study(base_study(parameters=params, objectives=objs, simulator=sim,
                                     budget={"calls": calls, "initial_design": min(calls, 10)},
                                     strategy={"name": "auto"}, **over))


@pytest.mark.parametrize("d, calls, objectives, expected", [
    (2, 50, 1, "gp"), (10, 400, 1, "gp"), (11, 100, 1, "turbo"), (42, 400, 1, "turbo"),
    (20, 30, 1, "turbo"), (20, 400, 2, "gp"),
])
def test_the_rule(d: int, calls: int, objectives: int, expected: str) -> None:
    name, reason = choose(_study(d, calls, objectives))
    assert name == expected
    assert f"{d} parameters, budget {calls} calls" in reason and f"→ {expected}" in reason


def test_the_reason_quotes_noise_and_quantity_constraints() -> None:
    study = _study(2, 20)
    assert "1 objective (mean of 20 samples per call)" in choose(study)[1]


@pytest.mark.parametrize("d, calls", [(2, 20), (12, 120)])
def test_it_proposes_exactly_what_the_chosen_strategy_does(d: int, calls: int) -> None:
    from optimizer.strategies import STRATEGIES

    study = _study(d, calls)
    space = SearchSpace(study.parameters)
    auto = AutoStrategy(space, study, 4)
    inner = STRATEGIES.get(auto.chosen)(space, study, 4)
    assert type(auto.inner) is type(inner) and auto.needs_initial_results == inner.needs_initial_results
    h = StrategyConformance.make_history(space, 12)
    pending = np.full((1, d), 0.5)
    auto.tell(h)
    inner.tell(h)
    np.testing.assert_allclose(auto.ask(h, pending, 2), inner.ask(h, pending, 2))


def test_takes_no_options() -> None:
    from optimizer.strategies.base import OptionError

    with pytest.raises(OptionError, match="strategy.options.beta: unknown option"):
        AutoStrategy.check_options({"beta": 1.0})


def test_a_campaign_says_which_it_chose(write_study, tmp_path: Path) -> None:
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.progress import LineReporter
    from optimizer.study import load_study

    data = base_study(strategy={"name": "auto", "options": {}}, budget={"calls": 5, "initial_design": 4})
    p = write_study(data)
    study, text = load_study(p)
    camp = Campaign.create(tmp_path / "c", study, text, source=str(p))
    stream = io.StringIO()
    run_campaign(camp, study, reporter=LineReporter(stream))
    lines = [line for line in stream.getvalue().splitlines() if "chose" in line]
    assert len(lines) == 1 and lines[0].startswith("[detopt] strategy auto chose gp: 2 parameters")
    events = [json.loads(x) for x in (camp.root / "journal.jsonl").read_text().splitlines()]
    chosen = [(e["strategy"], e["reason"]) for e in events if e["event"] == "strategy_chosen"]
    assert chosen == [("gp", lines[0].split("chose gp: ", 1)[1])]
    assert sum(e["event"] == "completed" for e in events) == 5
