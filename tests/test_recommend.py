"""Recommendation under noise: the model's best evaluated design, not the luckiest observed value."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import base_study

LISTED = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9]


def lucky_study(**over):
    data = base_study(
        parameters={"x": {"low": 0, "high": 1}},
        simulator={"name": "sims_for_tests:lucky", "samples_per_call": 100},
        strategy={"name": "listed", "options": {"designs": [{"x": x} for x in LISTED]}},
        budget={"calls": len(LISTED), "initial_design": 0},
    )
    data.update(over)
    return data


@pytest.fixture
def lucky_campaign(write_study, tmp_path: Path) -> Path:
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.study import load_study

    p = write_study(lucky_study())
    study, text = load_study(p)
    camp = Campaign.create(tmp_path / "c", study, text, source=str(p))
    run_campaign(camp, study)
    return camp.root


def _journal_calls(root: Path) -> list[dict]:
    """Completed calls straight from the journal: params, value, s.e."""
    sub, out = {}, []
    for line in (root / "journal.jsonl").read_text().splitlines():
        ev = json.loads(line)
        if ev["event"] == "submitted":
            sub[ev["call"]] = ev
        elif ev["event"] == "completed":
            out.append({"call": ev["call"], "x": sub[ev["call"]]["params"]["x"], "y": ev["metrics"]["f"],
                        "sem": ev["sems"]["f"]})
    return out


def test_the_lucky_bad_design_is_not_recommended(lucky_campaign: Path) -> None:
    from optimizer.records import CampaignView, best_so_far
    from optimizer.recommend import MODEL_METHOD, recommend

    camp = CampaignView.open(lucky_campaign)
    study, records = camp.study(), camp.records()
    best = best_so_far(study, records.values())["f"]
    assert records[best[1]].params["x"] == pytest.approx(0.9)  # the luckiest observation is the bad design
    rec = recommend(study, records.values())
    assert rec is not None and rec.method == MODEL_METHOD
    assert rec.params["x"] == pytest.approx(0.3)  # the good region, where the values agree
    assert 0 < rec.std < 0.1


def test_recommendation_numbers_equal_a_computation_from_the_journal(lucky_campaign: Path) -> None:
    """Posterior mean and std at every evaluated design, by hand (numpy) from the journal and the
    fitted hyperparameters: same inputs, same normalisation, same GP algebra."""
    from optimizer.records import CampaignView
    from optimizer.recommend import recommend

    camp = CampaignView.open(lucky_campaign)
    rec = recommend(camp.study(), camp.records().values())
    calls = _journal_calls(lucky_campaign)
    x = np.array([c["x"] for c in calls])
    y = np.array([c["y"] for c in calls])
    sem = np.array([c["sem"] for c in calls])
    gp = rec.model
    ls = float(gp.covar_module.lengthscale.detach().reshape(-1)[0])
    scale = float(getattr(gp.covar_module, "outputscale", 1.0))
    const = float(gp.mean_module.constant.detach())
    u = (x - x.min()) / (x.max() - x.min())  # Normalize: min/max of the training inputs
    mu, sd = y.mean(), y.std(ddof=1)  # Standardize
    ys, noise = (y - mu) / sd, sem**2 / sd**2
    kern = str(type(getattr(gp.covar_module, "base_kernel", gp.covar_module)).__name__)
    r = np.abs(u[:, None] - u[None]) / ls
    if kern == "RBFKernel":
        K = np.exp(-0.5 * r**2)
    else:
        assert kern == "MaternKernel"
        K = (1 + np.sqrt(5) * r + 5 / 3 * r**2) * np.exp(-np.sqrt(5) * r)
    K = scale * K
    A = K + np.diag(noise)
    mean = const + K @ np.linalg.solve(A, ys - const)
    var = np.diag(K - K @ np.linalg.solve(A, K))
    i = int(np.argmin(mean))
    assert calls[i]["call"] == rec.call
    assert rec.mean == pytest.approx(mu + sd * mean[i], rel=1e-6, abs=1e-9)
    assert rec.std == pytest.approx(sd * np.sqrt(var[i]), rel=1e-5)
    assert rec.observed == calls[i]["y"] and rec.observed_sem == calls[i]["sem"]


def test_fewer_than_three_calls_fall_back_with_a_warning(write_study, tmp_path: Path) -> None:
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.records import CampaignView
    from optimizer.recommend import OBSERVED_METHOD, RecommendationFallbackWarning, recommend
    from optimizer.study import load_study

    data = lucky_study(strategy={"name": "listed", "options": {"designs": [{"x": 0.3}, {"x": 0.9}]}},
                       budget={"calls": 2, "initial_design": 0})
    p = write_study(data)
    study, text = load_study(p)
    camp = Campaign.create(tmp_path / "c", study, text, source=str(p))
    run_campaign(camp, study)
    with pytest.warns(RecommendationFallbackWarning, match="2 completed feasible calls"):
        rec = recommend(study, CampaignView.open(camp.root).records().values())
    assert rec.method == OBSERVED_METHOD and rec.params["x"] == pytest.approx(0.9)


def test_status_shows_the_recommendation_beside_the_best(lucky_campaign: Path) -> None:
    def status(*extra: str) -> str:
        return subprocess.run([sys.executable, "-m", "optimizer.cli", "status", str(lucky_campaign), *extra],
                              capture_output=True, text=True, check=True).stdout

    summary = json.loads(status("--json"))
    assert summary["best"]["f"]["params"]["x"] == pytest.approx(0.9)
    rec = summary["recommended"]["f"]
    assert rec["params"]["x"] == pytest.approx(0.3)
    assert rec["method"] == "model-based: posterior mean at evaluated designs"
    text = status()
    assert "recommended f (model-based: posterior mean at evaluated designs)" in text


def test_report_summary_quotes_the_recommendation(lucky_campaign: Path) -> None:
    from optimizer.records import CampaignView
    from optimizer.report import summary_facts

    camp = CampaignView.open(lucky_campaign)
    facts = summary_facts(camp.study(), camp.records(), 8)
    assert "at call 8" in facts["best f"]  # the lucky one
    assert "at call 3 (model-based: posterior mean at evaluated designs" in facts["recommended f"]


def test_confirm_resimulates_the_recommended_design_after_the_budget(write_study, tmp_path: Path) -> None:
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.records import CampaignView, charged
    from optimizer.recommend import recommend
    from optimizer.report import summary_facts
    from optimizer.study import load_study

    p = write_study(lucky_study(budget={"calls": len(LISTED), "initial_design": 0, "confirm": 2}))
    study, text = load_study(p)
    camp = Campaign.create(tmp_path / "c", study, text, source=str(p))
    run_campaign(camp, study)
    records = CampaignView.open(camp.root).records()
    conf = [r for r in records.values() if r.origin == "confirm"]
    assert len(conf) == 2 and len(records) == len(LISTED) + 2
    assert sum(charged(r) for r in records.values()) == len(LISTED)  # not charged to budget.calls
    assert all(r.status == "completed" and r.n_samples == 10 * 100 and r.params["x"] == pytest.approx(0.3) for r in conf)
    assert len({r.seed for r in conf}) == 2  # two independent re-simulations
    rec = recommend(study, records.values())
    assert rec.call == 3 and rec.confirmation["calls"] == [r.call_id for r in conf]
    v, s = np.array([r.metrics["f"] for r in conf]), np.array([r.sems["f"] for r in conf])
    w = 1 / s**2
    assert rec.confirmation["value"] == pytest.approx((w * v).sum() / w.sum())
    assert rec.confirmation["sem"] == pytest.approx(w.sum() ** -0.5)
    assert rec.confirmation["particles"] == 2000
    facts = summary_facts(study, records, len(LISTED))
    assert "plus 2 confirmation call(s) of 1000 particles" in facts["calls"] and "confirmed f" in facts
    out = subprocess.run([sys.executable, "-m", "optimizer.cli", "status", str(camp.root)],
                         capture_output=True, text=True, check=True).stdout
    assert f"{len(LISTED)}/{len(LISTED)} calls finished" in out and "confirmed f:" in out and "2000 particles" in out
    # a resume of the finished campaign confirms nothing more
    run_campaign(Campaign.open(camp.root), study)
    assert sum(r.origin == "confirm" for r in CampaignView.open(camp.root).records().values()) == 2


@pytest.mark.parametrize("budget, match", [
    ({"calls": 4, "confirm": -1}, "budget.confirm: .*greater than or equal to 0"),
    ({"calls": 4, "confirm": 1, "confirm_samples": 0}, "budget.confirm_samples: .*greater than or equal to 1"),
    ({"calls": 4, "confirm_samples": 50}, "budget.confirm_samples: is only used with budget.confirm > 0"),
])
def test_bad_confirm_fields_are_one_line_errors(write_study, budget, match) -> None:
    p = write_study(lucky_study(budget=budget))
    res = subprocess.run([sys.executable, "-m", "optimizer.cli", "run", str(p)], capture_output=True, text=True)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stderr.startswith("error: ") and __import__("re").search(match, res.stderr), res.stderr


def test_confirm_needs_a_single_objective(write_study) -> None:
    from optimizer.errors import StudyError
    from optimizer.study import load_study

    data = lucky_study(budget={"calls": 4, "confirm": 1})
    data["simulator"] = {"name": "sims_for_tests:two_outputs", "samples_per_call": 10}
    data["parameters"] = {"x1": {"low": 0, "high": 1}}
    data["strategy"] = {"name": "sobol"}
    data["objectives"] = {"a": {"statistic": "mean", "output": "y0"}, "b": {"statistic": "mean", "output": "y1"}}
    with pytest.raises(StudyError, match="budget.confirm: confirms the recommended design of one objective"):
        load_study(write_study(data))


def test_confirm_fields_leave_the_fingerprint_alone() -> None:
    from optimizer.study import validate_study

    a = validate_study(lucky_study())
    b = validate_study(lucky_study(budget={"calls": len(LISTED), "confirm": 3, "confirm_samples": 5000}))
    assert a.fingerprint() == b.fingerprint() and b.confirm_samples == 5000 and a.confirm_samples == 1000


def test_particles_simulated_equal_the_journal(write_study, tmp_path: Path, monkeypatch) -> None:
    """status: particles from the journal's `submitted` events (one per attempt), device-hours from the
    recorded run times; the report's cost figure has a particles axis with the same cumulative count."""
    import optimizer.report as report
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.records import CampaignView
    from optimizer.study import load_study

    p = write_study(lucky_study(budget={"calls": 4, "initial_design": 0, "confirm": 1, "confirm_samples": 700}))
    study, text = load_study(p)
    camp = Campaign.create(tmp_path / "c", study, text, source=str(p))
    run_campaign(camp, study)
    events = [json.loads(line) for line in (camp.root / "journal.jsonl").read_text().splitlines()]
    expected = sum(e["n_samples"] for e in events if e["event"] == "submitted")
    assert expected == 4 * 100 + 700
    hours = sum((e["finished"] - e["started"]) / 3600 for e in events if e["event"] == "completed")
    res = subprocess.run([sys.executable, "-m", "optimizer.cli", "status", str(camp.root), "--json"],
                         capture_output=True, text=True, check=True)
    summary = json.loads(res.stdout)
    assert summary["particles"] == expected and summary["device_hours"] == pytest.approx(hours, rel=1e-9, abs=1e-15)
    text_out = subprocess.run([sys.executable, "-m", "optimizer.cli", "status", str(camp.root)],
                              capture_output=True, text=True, check=True).stdout
    assert f"particles simulated: {expected:,}" in text_out and "device-hours:" in text_out

    drawn: list = []
    real = report._save
    monkeypatch.setattr(report, "_save", lambda fig, path: drawn.append(fig) or real(fig, path))
    view = CampaignView.open(camp.root)
    report.cost_plot(study, view.records(), tmp_path / "cost.png")
    axes = drawn[0].axes
    assert axes[1].get_xlabel() == "particles simulated"
    assert axes[1].lines[0].get_xdata()[-1] == expected


def test_the_end_of_run_line_leads_with_the_recommendation(write_study, tmp_path: Path, capsys) -> None:
    from optimizer.cli import main

    p = write_study(lucky_study())
    assert main(["run", str(p), "--output", str(tmp_path / "e")]) == 0
    end = [line for line in capsys.readouterr().err.splitlines() if "calls finished" in line][-1]
    # the model's choice (x = 0.3) first, the optimistic draw (x = 0.9, call 8) after it and named as such
    assert "recommended f = " in end and "(model-based: posterior mean at evaluated designs)" in end
    assert end.index("recommended f") < end.index("best observed: f=") and "(call 8)" in end


def test_status_answers_from_the_cache_without_torch(lucky_campaign: Path) -> None:
    from optimizer.recommend import CACHE_DIR

    assert list((lucky_campaign / CACHE_DIR).glob("recommendation-*.json"))  # written at the campaign's end
    code = ("import sys, json; from optimizer.cli import main; main(['status', sys.argv[1], '--json']); "
            "print('torch' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, str(lucky_campaign)], capture_output=True, text=True, check=True)
    assert out.stderr.strip().splitlines()[-1] == "False"
    assert json.loads(out.stdout)["recommended"]["f"]["params"]["x"] == pytest.approx(0.3)


def test_the_cache_answers_only_for_the_calls_it_was_computed_from(lucky_campaign: Path) -> None:
    from optimizer.records import CampaignView
    from optimizer.recommend import CACHE_DIR, recommend, recommend_cached

    camp = CampaignView.open(lucky_campaign)
    study, records = camp.study(), camp.records()
    cached = recommend_cached(study, records.values(), lucky_campaign)
    fresh = recommend(study, records.values())
    assert cached is not None and fresh is not None
    assert cached.call == fresh.call and cached.params == fresh.params
    assert cached.mean == pytest.approx(fresh.mean, rel=1e-9) and cached.std == pytest.approx(fresh.std, rel=1e-9)
    # a changed journal (one call fewer, one value moved) is a miss: the answer is recomputed, then cached again
    fewer = {k: v for k, v in records.items() if k != max(records)}
    assert recommend_cached(study, fewer.values(), lucky_campaign).mean == pytest.approx(
        recommend(study, fewer.values()).mean, rel=1e-9)
    moved = dict(records)
    r = moved[3]
    moved[3] = type(r)(**{**r.__dict__, "metrics": {"f": r.metrics["f"] + 5.0}})
    assert recommend_cached(study, moved.values(), lucky_campaign).call != 3
    # a corrupt cache file is ignored, not trusted
    for f in (lucky_campaign / CACHE_DIR).glob("*.json"):
        f.write_text("{not json")
    assert recommend_cached(study, records.values(), lucky_campaign).call == fresh.call
