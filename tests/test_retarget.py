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


def test_sample_writes_generated_samples_with_the_held_out_check(campaign: Path, tmp_path: Path, capsys) -> None:
    before = _tree_hash(campaign)
    out = tmp_path / "g.csv"
    assert main(["sample", str(campaign), "--at", "x1=0.3,x2=0.6", "-n", "500", "--output", str(out)]) == 0
    assert _tree_hash(campaign) == before
    data = np.loadtxt(out, delimiter=",", skiprows=1)
    assert out.read_text().splitlines()[0] == "y" and data.shape == (500,)
    text = capsys.readouterr().out
    assert text.count("held-out call") >= 1 and "split-half floor" in text
    # the surrogate's samples vary with the design it is asked about
    out2 = tmp_path / "g2.npy"
    assert main(["sample", str(campaign), "--at", "x1=0.9,x2=0.1", "-n", "500", "--output", str(out2)]) == 0
    assert abs(np.load(out2).mean() - data.mean()) > 0.05


@pytest.mark.parametrize("at, output, msg", [
    ("x1=0.3", "g.csv", "--at: missing x2"),
    ("x1=0.3,x2=7", "g.csv", "--at: x2: 7 lies outside"),
    ("x1=a,x2=0.1", "g.csv", "--at: x1: 'a' is not a number"),
    ("x3=1,x2=0.1", "g.csv", "--at: 'x3=1' is not NAME=VALUE"),
    ("x1=0.3,x2=0.1", "g.txt", "use a .npy or .csv"),
    ("x1=0.3,x2=0.1", "nowhere/g.csv", "no such folder"),
])
def test_bad_sample_arguments_are_one_line(campaign: Path, tmp_path: Path, capsys, at: str, output: str, msg: str) -> None:
    capsys.readouterr()
    assert main(["sample", str(campaign), "--at", at, "--output", str(tmp_path / output)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0]


def test_retarget_to_another_column_fits_its_own_model_and_says_so(tmp_path: Path, capsys) -> None:
    """The campaign's WU-GO models the column its objective reads (``sum``); an objective on ``y1`` is answered
    by a model fitted on the journal's y1 column, and the origin line says it is not the campaign's."""
    import yaml

    study = base_study(
        parameters={f"x{i}": {"low": 0, "high": 1} for i in range(1, 6)},
        simulator={"name": "family_correlated", "samples_per_call": 32},
        objectives={"s": {"output": "sum"}},
        strategy={"name": "wugo", "initial_design": "sobol",
                  "options": {"surrogate_options": {"steps": 100, "refit_steps": 30}, "candidates": 128}},
        budget={"calls": 7, "initial_design": 6},
    )
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(study))
    assert main(["run", str(tmp_path / "s.yaml"), "--output", str(tmp_path / "c"), "-q"]) == 0
    capsys.readouterr()
    assert main(["retarget", str(tmp_path / "c"), "--objective", "a={output: y1}", "--propose", "0", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert "fitted on the journal" in res["model"] and "does not model these outputs" in res["model"]
    assert main(["retarget", str(tmp_path / "c"), "--objective", "b={output: sum, statistic: median}",
                 "--propose", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"].startswith("the campaign's WU-GO surrogate")
