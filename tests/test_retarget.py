"""optimize retarget: a new objective from the stored calls and the surrogate, with nothing written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from optimizer.cli import main
from tests.conftest import base_study


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def campaign(tmp_path_factory) -> Path:
    import yaml

    d = tmp_path_factory.mktemp("rt")
    study = base_study(
        parameters={"x1": {"low": 0, "high": 1}, "x2": {"low": 0, "high": 1}},
        simulator={"name": "family_bimodal", "samples_per_call": 64},
        strategy={"name": "wugo", "initial_design": "sobol"},
        budget={"calls": 9, "initial_design": 6},
    )
    (d / "s.yaml").write_text(yaml.safe_dump(study))
    assert main(["run", str(d / "s.yaml"), "--output", str(d / "c"), "-q"]) == 0
    return d / "c"


def test_retarget_recommends_and_proposes_without_writing(campaign: Path, capsys) -> None:
    before = _tree_hash(campaign)
    capsys.readouterr()
    assert main(["retarget", str(campaign), "--objective", "q90={statistic: quantile, q: 0.9}", "--propose", "3",
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert _tree_hash(campaign) == before
    assert len(res["proposals"]) == 3
    for p in [res["recommended"]["params"], *res["proposals"]]:
        assert set(p) == {"x1", "x2"} and all(0 <= v <= 1 for v in p.values())
    # the measured value it quotes is the call's own empirical 0.9 quantile, recomputed from its samples file
    call = res["best_evaluated"]["call"]
    samples = np.load(campaign / "samples" / f"call-{call:06d}.npy")
    assert res["best_evaluated"]["measured"] == pytest.approx(float(np.quantile(samples[:, 0], 0.9)), rel=1e-9)


def test_recompute_of_the_campaigns_own_objective_reproduces_the_journal(campaign: Path) -> None:
    from optimizer.campaign import Campaign
    from optimizer.retarget import recompute

    camp = Campaign.open(campaign)
    study = camp.study()
    records = camp.records()
    again = recompute(study, records, camp.storage, ["y"])
    assert again and all(again[c].metrics["f"] == records[c].metrics["f"] for c in again)


@pytest.mark.parametrize("objective, field", [
    ("q90", "--objective: expected NAME="),
    ("q90={statistic: quantil}", "--objective: q90.statistic"),
    ("q90={statistic: quantile}", "--objective: q90"),
    ("q90=[1, 2]", "must be a mapping"),
    ("q90={statistic: mean, output: nope}", "'nope' is not an output"),
    ("c={quantity: cost}", "deterministic quantity"),
])
def test_bad_objective_is_one_line_and_writes_nothing(campaign: Path, capsys, objective: str, field: str) -> None:
    before = _tree_hash(campaign)
    capsys.readouterr()
    assert main(["retarget", str(campaign), "--objective", objective]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and field in err[0]
    assert _tree_hash(campaign) == before
