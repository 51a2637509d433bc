"""Particles per call as a decision: ``budget.screen`` (screen, then top up the best) and ``budget.particles``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import base_study
from optimizer.campaign import Campaign, run_campaign
from optimizer.errors import StudyError
from optimizer.fidelity import issued_particles, promote_label, to_promote
from optimizer.records import CampaignView, charged
from optimizer.storage import CallRecord
from optimizer.study import load_study, validate_study
from test_highd_strategies import assert_resume_proposes_as_uninterrupted

FULL, SCREEN = 400, 100


def screened_study(strategy: str = "sobol", **budget) -> dict:
    return base_study(
        parameters={"x1": {"low": -2, "high": 2}, "x2": {"low": -2, "high": 2}},
        simulator={"name": "sims_for_tests:quadratic", "samples_per_call": FULL, "options": {"noise": 1.0}},
        strategy={"name": strategy},
        budget={"calls": 24, "initial_design": 6, "screen": {"samples": SCREEN}, **budget},
    )


def run(write_study, tmp_path: Path, data: dict) -> dict[int, CallRecord]:
    study, text = load_study(write_study(data))
    camp = Campaign.create(tmp_path / "c", study, text, source="s.yaml")
    run_campaign(camp, study)
    return CampaignView.open(camp.root).records()


def record(cid: int, value: float, *, origin: str = "strategy", n: int = SCREEN, feasible: bool = True,
           label: str | None = None, status: str = "completed") -> CallRecord:
    return CallRecord(call_id=cid, origin=origin, label=label, params={"x1": 0.0, "x2": 0.0}, unit=[0.5, 0.5],
                      seed=cid, n_samples=n, status=status, metrics={"f": value}, feasible=feasible)


def test_ashas_rule_promotes_the_best_third_once_each() -> None:
    study = validate_study(screened_study())
    recs = [record(i, v) for i, v in enumerate([5.0, 1.0, 3.0, 2.0, 4.0, 0.5], start=1)]
    # 6 screened: the best 2 (calls 6 and 2) qualify; the better first
    assert to_promote(study, recs).call_id == 6
    recs.append(record(7, 0.0, origin="promote", n=FULL - SCREEN, label=promote_label(6), status="submitted"))
    assert to_promote(study, recs).call_id == 2  # a promotion in flight counts as promoted
    recs.append(record(8, 0.0, origin="promote", n=FULL - SCREEN, label=promote_label(2)))
    assert to_promote(study, recs) is None  # call 4 (2.0) is third: outside ⌊6/3⌋ = 2
    recs.append(record(9, 9.0))  # 7 screened: still 2 qualify
    assert to_promote(study, recs) is None
    recs += [record(10, 9.5), record(11, 0.1, feasible=False)]  # 9 screened: 3 qualify; the infeasible ranks last
    assert to_promote(study, recs).call_id == 4


def test_a_maximised_objective_promotes_the_largest() -> None:
    data = screened_study()
    data["objectives"] = {"f": {"statistic": "mean", "direction": "maximize"}}
    recs = [record(i, v) for i, v in enumerate([5.0, 1.0, 3.0], start=1)]
    assert to_promote(validate_study(data), recs).call_id == 1


def test_without_screening_nothing_is_promoted() -> None:
    data = screened_study()
    data["budget"].pop("screen")
    assert to_promote(validate_study(data), [record(1, 0.0, n=FULL)]) is None


@pytest.mark.parametrize("strategy", ["sobol", "turbo"])
def test_a_screened_campaign_tops_up_the_promising_designs(strategy: str, write_study, tmp_path: Path) -> None:
    records = run(write_study, tmp_path, screened_study(strategy))
    designs = [r for r in records.values() if r.origin in ("initial", "strategy")]
    promoted = [r for r in records.values() if r.origin == "promote"]
    assert len(records) == 24 and all(r.status == "completed" for r in records.values())
    assert all(r.n_samples == SCREEN for r in designs) and all(r.n_samples == FULL - SCREEN for r in promoted)
    # a third of the screens at each promotion, not overall: a search that keeps improving promotes more
    assert 0 < len(promoted) < len(designs)
    by_label = {r.label: r for r in promoted}
    assert len(by_label) == len(promoted)  # each design at most once
    for r in designs:
        if promote_label(r.call_id) in by_label:
            p = by_label[promote_label(r.call_id)]
            assert p.params == r.params and p.seed != r.seed and p.call_id > r.call_id
    # every promoted design was among the best third of the screens finished before its promotion was issued
    for p in promoted:
        target = int(p.label.split()[-1])
        before = sorted((r for r in designs if r.call_id < p.call_id), key=lambda r: r.metrics["f"])
        assert target in [r.call_id for r in before[: len(before) // 3]]


def test_a_particle_budget_caps_the_campaign(write_study, tmp_path: Path) -> None:
    cap = 3000
    records = run(write_study, tmp_path, screened_study(calls=100, particles=cap))
    spent = issued_particles(records.values())
    assert spent <= cap and spent + SCREEN > cap  # stopped only when not even a screen fits
    assert spent == sum(r.n_samples for r in records.values() if charged(r))
    assert sum(charged(r) for r in records.values()) < 100


def test_screened_campaign_resumes_to_the_same_calls(write_study, tmp_path: Path) -> None:
    data = screened_study("turbo")
    data["budget"]["calls"] = 14
    assert_resume_proposes_as_uninterrupted(write_study, tmp_path, data, stop_after=7)


def test_status_and_end_line_count_particles(write_study, tmp_path: Path, capsys) -> None:
    from optimizer.cli import main

    p = write_study(screened_study(calls=100, particles=2000))
    assert main(["run", str(p), "--output", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "or 2,000 particles, screening new designs with 100 particles" in err
    assert "/2,000 particles finished" in err and " calls, 100/2,000 particles, ETA" in err, err[-600:]
    out = subprocess.run([sys.executable, "-m", "optimizer.cli", "status", str(tmp_path / "r")],
                         capture_output=True, text=True, check=True).stdout
    assert "of 2,000 issued (budget.particles)" in out and "promoted to 400 in all (budget.screen)" in out
    summary = json.loads(subprocess.run([sys.executable, "-m", "optimizer.cli", "status", str(tmp_path / "r"), "--json"],
                                        capture_output=True, text=True, check=True).stdout)
    assert summary["particles_budget"] == 2000 and summary["particles_charged"] <= 2000
    from optimizer.report import summary_facts

    camp = CampaignView.open(tmp_path / "r")
    facts = summary_facts(camp.study(), camp.records(), 100)
    assert "topped up to 400 (budget.screen)" in facts["calls"] and "of 2,000 particles (budget.particles)" in facts["calls"]


def test_particles_on_the_command_line_set_and_extend_the_cap(write_study, tmp_path: Path, capsys) -> None:
    """``run --particles`` overrides budget.particles; ``resume --particles`` moves the cap (kept in campaign.json,
    as ``--budget`` keeps the calls); status and the resumed campaign use it; the study file is not rewritten."""
    from optimizer.cli import main

    p = write_study(screened_study(calls=100, particles=50_000))
    out = tmp_path / "r"
    assert main(["run", str(p), "--output", str(out), "--particles", "1500", "-q"]) == 0
    first = CampaignView.open(out)
    assert first.meta()["budget_particles"] == 1500 and first.study().budget.particles == 1500
    spent = issued_particles(first.records().values())
    assert spent <= 1500 and spent + SCREEN > 1500
    text = (out / "study.yaml").read_text()
    assert main(["resume", str(out), "--particles", "2600", "-q"]) == 0
    again = CampaignView.open(out)
    spent2 = issued_particles(again.records().values())
    assert spent < spent2 <= 2600 and spent2 + SCREEN > 2600
    assert (out / "study.yaml").read_text() == text
    capsys.readouterr()
    assert main(["status", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["particles_budget"] == 2600


@pytest.mark.parametrize("command", ["run", "resume"])
def test_a_bad_particles_flag_is_refused_and_writes_nothing(write_study, tmp_path: Path, capsys, command) -> None:
    from optimizer.cli import main

    p = write_study(screened_study(calls=8))
    out = tmp_path / "r"
    if command == "resume":
        assert main(["run", str(p), "--output", str(out), "-q"]) == 0
        before = {f: f.read_bytes() for f in sorted(out.rglob("*")) if f.is_file()}
    capsys.readouterr()
    rc = main([command, str(p) if command == "run" else str(out), *(["--output", str(out)] if command == "run" else []),
               "--particles", "0", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip() == "error: --particles: 0 is not a positive number of particles"
    if command == "run":
        assert not out.exists()
    else:
        assert {f: f.read_bytes() for f in sorted(out.rglob("*")) if f.is_file()} == before


@pytest.mark.parametrize("budget, match", [
    ({"screen": {"samples": FULL}}, "budget.screen.samples: 400 must be below simulator.samples_per_call"),
    ({"screen": {"samples": 0}}, "budget.screen.samples: .*greater than or equal to 1"),
    ({"screen": {"samples": 10, "promote": 0}}, "budget.screen.promote: .*greater than 0"),
    ({"screen": {"samples": 10, "promote": 1.5}}, "budget.screen.promote: .*less than or equal to 1"),
    ({"screen": {"samples": 10, "keep": 1}}, "budget.screen.keep"),
    ({"particles": 0}, "budget.particles: .*greater than or equal to 1"),
])
def test_bad_fidelity_fields_are_one_line_errors(write_study, tmp_path: Path, budget, match) -> None:
    data = screened_study()
    data["budget"] = {"calls": 8, "initial_design": 2, **budget}
    p = write_study(data)
    res = subprocess.run([sys.executable, "-m", "optimizer.cli", "run", str(p), "--output", str(tmp_path / "r")],
                         capture_output=True, text=True)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert str(p) in res.stderr and __import__("re").search(match, res.stderr), res.stderr
    assert not (tmp_path / "r").exists()  # a refused command writes nothing


def test_screening_needs_a_single_objective(write_study) -> None:
    data = screened_study()
    data["objectives"] = {"f": {"statistic": "mean"}, "g": {"statistic": "std"}}
    with pytest.raises(StudyError, match="budget.screen: ranks designs by one objective"):
        load_study(write_study(data))


def test_particle_budget_leaves_the_fingerprint_alone_and_screening_does_not() -> None:
    plain = screened_study()
    plain["budget"].pop("screen")
    a = validate_study(plain).fingerprint()
    b = validate_study({**plain, "budget": {**plain["budget"], "particles": 10_000}}).fingerprint()
    c = validate_study(screened_study()).fingerprint()
    assert a == b != c
    # a study written before these fields existed keeps its fingerprint: unset keys are not hashed
    assert "screen" not in validate_study(plain).science_dict()["budget"]
    assert "particles" not in validate_study(plain).science_dict()["budget"]
