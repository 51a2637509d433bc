"""Mixed parameters: categorical (``choices``) and conditional (``when``) ones, from the study schema through
the unit cube, every strategy, the journal and the reports."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from conftest import ROOT, base_study
from optimizer.campaign import Campaign, run_campaign
from optimizer.errors import StudyError
from optimizer.space import INACTIVE_UNIT, SearchSpace
from optimizer.strategies import STRATEGIES
from optimizer.study import load_study, validate_study

ABSORBERS = ["Pb", "W", "Fe", "Cu"]


def mixed_study(**over: Any) -> dict[str, Any]:
    """``sims_for_tests:mixed``: a categorical absorber, a range x and t, conditional on absorber ∈ {W, Pb}."""
    return base_study(
        parameters={"absorber": {"choices": ABSORBERS}, "x": {"low": 0.0, "high": 1.0},
                    "t": {"low": 0.0, "high": 1.0, "when": {"absorber": ["W", "Pb"]}}},
        simulator={"name": "sims_for_tests:mixed", "samples_per_call": 20},
        objectives={"y": {"statistic": "mean"}}, **over)


def _params(**p: Any) -> dict[str, Any]:
    return base_study(parameters=p)


# -- schema ---------------------------------------------------------------------------------------------
BAD = [
    ("choices-and-low", _params(a={"choices": ["Pb", "W"], "low": 0}), "parameters.a.low",
     "a categorical parameter (choices) takes no low, high, log or integer"),
    ("choices-and-integer", _params(a={"choices": [1, 2], "integer": True}), "parameters.a.integer", "takes no"),
    ("choices-empty", _params(a={"choices": []}), "parameters.a.choices", "needs at least one choice"),
    ("choices-duplicate", _params(a={"choices": ["Pb", "W", "Pb"]}), "parameters.a.choices[2]",
     "'Pb' repeats choices[0]"),
    ("choices-duplicate-number", _params(a={"choices": [1, 2, 1.0]}), "parameters.a.choices[2]", "repeats choices[0]"),
    ("choices-mixed", _params(a={"choices": ["Pb", 2]}), "parameters.a.choices", "mixes names and numbers"),
    ("choices-reserved", _params(a={"choices": ["Pb", "NaN"]}), "parameters.a.choices[1]", "non-finite number"),
    ("choices-bool", _params(a={"choices": [True, False]}), "parameters.a.choices[0]", "True is neither a name nor a number"),
    ("when-value-list", _params(a={"choices": ["Pb"]}, x={"low": 0, "high": 1, "when": {"a": [["Pb"]]}}),
     "parameters.x.when.a[0]", "neither a name nor a number"),
    ("range-without-high", _params(a={"low": 0}), "parameters.a.high", "required but missing"),
    ("when-unknown-parent", _params(a={"choices": ["Pb"]}, x={"low": 0, "high": 1, "when": {"b": ["Pb"]}}),
     "parameters.x.when.b", "unknown parameter"),
    ("when-parent-not-categorical", _params(a={"low": 0, "high": 1}, x={"low": 0, "high": 1, "when": {"a": [0]}}),
     "parameters.x.when.a", "'a' is not categorical"),
    ("when-unknown-value", _params(a={"choices": ["Pb", "W"]}, x={"low": 0, "high": 1, "when": {"a": ["Fe"]}}),
     "parameters.x.when.a[0]", "'Fe' is not a choice of 'a' (Pb|W)"),
    ("when-empty", _params(a={"choices": ["Pb"]}, x={"low": 0, "high": 1, "when": {}}), "parameters.x.when",
     "names no parent"),
    ("when-no-values", _params(a={"choices": ["Pb"]}, x={"low": 0, "high": 1, "when": {"a": []}}),
     "parameters.x.when.a", "needs at least one value"),
    ("when-self", _params(a={"choices": ["Pb"], "when": {"a": ["Pb"]}}), "parameters.a.when.a", "itself"),
    ("when-cycle", _params(a={"choices": ["Pb", "W"], "when": {"b": [1]}}, b={"choices": [1, 2], "when": {"a": ["W"]}}),
     "parameters.a.when", "cycle through a -> b -> a"),
    ("baseline-not-a-choice", mixed_study(baselines=[{"name": "b", "params": {"absorber": "U", "x": 0.5}}]),
     "baselines[0].params.absorber", "'U' is not one of the choices Pb|W|Fe|Cu"),
    ("baseline-inactive-given", mixed_study(baselines=[{"name": "b", "params": {"absorber": "Fe", "x": 0.5, "t": 0.1}}]),
     "baselines[0].params.t", "is inactive here"),
    ("baseline-active-missing", mixed_study(baselines=[{"name": "b", "params": {"absorber": "W", "x": 0.5}}]),
     "baselines[0].params", "missing ['t']"),
]


@pytest.mark.parametrize("data,field,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_mixed_parameters_are_refused_with_their_field(data: dict, field: str, message: str) -> None:
    with pytest.raises(StudyError) as err:
        validate_study(data, "s.yaml")
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith(f"s.yaml: {field}: "), line
    assert message in line, line


def test_a_good_mixed_study_validates_with_its_baselines() -> None:
    study = validate_study(mixed_study(baselines=[{"name": "lead", "params": {"absorber": "Pb", "x": 0.5, "t": 0.2}},
                                                  {"name": "iron", "params": {"absorber": "Fe", "x": 0.5}},
                                                  {"name": "null", "params": {"absorber": "Cu", "x": 0.5, "t": None}}]))
    assert study.parameters["absorber"].categorical and study.parameters["t"].when == {"absorber": ["W", "Pb"]}
    # `when: {parent: value}` is short for a list of one value
    assert validate_study(_params(a={"choices": ["Pb", "W"]}, x={"low": 0, "high": 1, "when": {"a": "W"}})) \
        .parameters["x"].when == {"a": ["W"]}


def test_old_studies_keep_their_fingerprint() -> None:
    """Journals written before mixed parameters resume: a study without choices/when hashes as it did."""
    study = validate_study(base_study())
    assert set(study.science_dict()["parameters"]["x1"]) == {"low", "high", "unit", "log", "integer", "description"}
    assert study.fingerprint() == "a6dac4eb89cf8a9d"  # as computed before mixed parameters existed
    assert load_study(ROOT / "studies/detectors/magnet_shape.yaml")[0].fingerprint() == "110c622d2794b357"  # baselines


def test_unknown_material_is_refused_at_load(write_study: Any) -> None:
    from optimizer.campaign import prepare

    data = yaml.safe_load((ROOT / "studies/detectors/calorimeter_materials.yaml").read_text())
    data["parameters"]["absorber"]["choices"] = ["Pb", "Unobtainium"]
    path = write_study(data)
    with pytest.raises(StudyError, match=r"parameters\.absorber\.choices: unknown material 'Unobtainium'"):
        prepare(*load_study(path)[:1], str(path))


# -- the unit cube --------------------------------------------------------------------------------------
def _space() -> SearchSpace:
    return SearchSpace(validate_study(mixed_study()).parameters)


def test_choices_own_equal_bins_and_round_trip() -> None:
    space = _space()
    u = np.random.default_rng(0).random((4000, 3))
    counts = Counter(space.to_params(x)["absorber"] for x in space.from_unit(u))
    assert set(counts) == set(ABSORBERS)
    assert all(abs(c / 4000 - 0.25) < 0.03 for c in counts.values())  # ±4.4σ of a binomial(4000, 1/4)
    for row in u[:200]:
        p = space.to_params(space.from_unit(row))
        back = space.to_unit(space.from_params(p))
        assert space.to_params(space.from_unit(back)) == p  # canonical: choices at their bins' centres
        assert back[0] == (ABSORBERS.index(p["absorber"]) + 0.5) / 4
    assert space.to_params(space.from_unit(np.array([1.0, 0.5, 0.5])))["absorber"] == "Cu"  # the top edge is valid


def test_inactive_parameters_are_none_and_sit_at_one_point() -> None:
    space = _space()
    p = space.to_params(space.from_unit(np.array([0.6, 0.2, 0.9])))  # bin 2: Fe
    assert p == {"absorber": "Fe", "x": pytest.approx(0.2), "t": None}
    assert space.to_unit(space.from_params({"absorber": "Fe", "x": 0.2}))[2] == INACTIVE_UNIT
    assert space.to_unit(space.from_params({"absorber": "Fe", "x": 0.2, "t": 0.9}))[2] == INACTIVE_UNIT
    assert space.to_params(space.from_unit(np.array([0.3, 0.2, 0.9])))["t"] == pytest.approx(0.9)  # W: active
    with pytest.raises(ValueError, match="not one of the choices"):
        space.from_params({"absorber": "U", "x": 0.2})


def test_conditions_chain_through_a_conditional_parent() -> None:
    data = _params(a={"choices": ["x", "y"]}, b={"choices": [1, 2], "when": {"a": "y"}},
                   c={"low": 0, "high": 1, "when": {"b": [2]}})
    space = SearchSpace(validate_study(data).parameters)
    assert space.to_params(space.from_unit(np.array([0.9, 0.9, 0.5])))["c"] == 0.5
    assert space.to_params(space.from_unit(np.array([0.9, 0.1, 0.5])))["c"] is None  # b = 1
    p = space.to_params(space.from_unit(np.array([0.1, 0.9, 0.5])))  # a = x: b inactive, so c too
    assert p["b"] is None and p["c"] is None


# -- every strategy on a mixed study --------------------------------------------------------------------
FAST_OPTIONS: dict[str, dict[str, Any]] = {
    "gp": {"num_restarts": 2, "raw_samples": 64, "maxiter": 30},
    "turbo": {"n_candidates": 256},
    "wugo": {"surrogate_options": {"steps": 60, "refit_steps": 20}, "candidates": 64, "generated": 32,
             "perturbations": 8, "top_k": 2},
    "nn-ensemble": {"members": 2, "steps": 60},
    "listed": {"designs": [{"absorber": a, "x": 0.1 * i, **({"t": 0.5} if a in ("W", "Pb") else {})}
                           for i, a in enumerate(ABSORBERS * 2)]},
}


def _run(tmp_path: Path, data: dict[str, Any], name: str = "c") -> Campaign:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    study, text = load_study(path)
    camp = Campaign.create(tmp_path / name, study, text, source=str(path))
    run_campaign(camp, study, source=str(path))
    return camp


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_every_strategy_proposes_valid_choices(name: str, tmp_path: Path) -> None:
    data = mixed_study(strategy={"name": name, "options": FAST_OPTIONS.get(name, {})},
                       budget={"calls": 8, "initial_design": 4})
    camp = _run(tmp_path, data)
    records = camp.records()
    assert len(records) == 8
    # the simulator refuses a t that is sent while inactive or missing while active: every call completed
    assert all(r.status == "completed" for r in records.values()), [r.error for r in records.values()]
    for r in records.values():
        assert r.params["absorber"] in ABSORBERS
        assert (r.params["t"] is None) == (r.params["absorber"] not in ("W", "Pb"))
    assert any(r.origin == "strategy" for r in records.values())


@pytest.mark.parametrize("name", ["cmaes", "gp"])
def test_an_interrupted_mixed_campaign_resumes_to_the_same_designs(name: str, tmp_path: Path) -> None:
    """Choices and inactive parameters read back from the journal as they were written: a resumed campaign
    proposes what an uninterrupted one does."""
    from test_campaign import InterruptAfter

    data = mixed_study(strategy={"name": name, "options": FAST_OPTIONS.get(name, {})},
                       budget={"calls": 8, "initial_design": 4}, execution={"backend": "inline", "max_concurrent": 1})
    whole = _run(tmp_path, data, "whole").records()
    path = tmp_path / "parts.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    study, text = load_study(path)
    camp = Campaign.create(tmp_path / "parts", study, text, source=str(path))
    assert run_campaign(camp, study, source=str(path), executor=InterruptAfter(study, k=5, capacity=1)).stopped \
        == "interrupted"
    run_campaign(Campaign.open(camp.root), study, source=str(path))
    parts = camp.records()
    assert [r.params for _, r in sorted(parts.items())] == [r.params for _, r in sorted(whole.items())]


def test_journal_records_choices_and_null_for_inactive(tmp_path: Path) -> None:
    camp = _run(tmp_path, mixed_study(budget={"calls": 12, "initial_design": 12}))
    events = [json.loads(line) for line in (camp.root / "journal.jsonl").read_text().splitlines()]
    params = [e["params"] for e in events if e["event"] == "submitted"]
    assert {p["absorber"] for p in params} == set(ABSORBERS)
    inactive = [p for p in params if p["absorber"] in ("Fe", "Cu")]
    assert inactive and all("t" in p and p["t"] is None for p in inactive)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gp_finds_the_best_category(seed: int, tmp_path: Path) -> None:
    """W is better than every other absorber by ≥ 0.5 + the x, t terms (noise s.e. 0.01): after 8 Sobol calls the
    mixed GP spends most of its 8 calls on W, and its best call is W."""
    data = mixed_study(seed=seed, strategy={"name": "gp", "options": FAST_OPTIONS["gp"]},
                       budget={"calls": 16, "initial_design": 8})
    records = _run(tmp_path, data).records()
    proposed = [r.params["absorber"] for r in records.values() if r.origin == "strategy"]
    assert proposed.count("W") >= len(proposed) // 2, proposed
    best = min((r for r in records.values() if r.status == "completed"), key=lambda r: r.metrics["y"])
    assert best.params["absorber"] == "W"


def test_gp_uses_a_categorical_kernel_and_turbo_the_bins() -> None:
    study = validate_study(mixed_study())
    space = SearchSpace(study.parameters)
    assert STRATEGIES.get("gp")(space, study, 0).cat_dims == [0]
    assert STRATEGIES.get("turbo")(space, study, 0).cat_dims == []


# -- reports ---------------------------------------------------------------------------------------------
def test_status_export_report_and_sample_render_a_mixed_campaign(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from optimizer.cli import main

    data = mixed_study(strategy={"name": "wugo", "options": FAST_OPTIONS["wugo"]}, budget={"calls": 10, "initial_design": 6},
                       baselines=[{"name": "iron", "params": {"absorber": "Fe", "x": 0.5}}])
    camp = _run(tmp_path, data)
    assert main(["status", str(camp.root)]) == 0
    out = capsys.readouterr().out
    assert any(a in out for a in ABSORBERS)
    assert main(["export", str(camp.root), "--output", str(tmp_path / "calls.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "calls.csv").open()))
    assert {r["param.absorber"] for r in rows} <= set(ABSORBERS)
    assert all(r["param.t"] == "" for r in rows if r["param.absorber"] in ("Fe", "Cu"))
    assert main(["export", str(camp.root), "--format", "json", "--output", str(tmp_path / "calls.json")]) == 0
    calls = json.loads((tmp_path / "calls.json").read_text())["calls"]
    assert {r["param.absorber"] for r in calls} <= set(ABSORBERS)
    assert all(r["param.t"] is None for r in calls if r["param.absorber"] in ("Fe", "Cu"))
    assert main(["report", str(camp.root), "--output", str(tmp_path / "report")]) == 0
    html = next((tmp_path / "report").glob("*.html")).read_text()
    assert "absorber" in html and "Fe" in html
    assert main(["sample", str(camp.root), "--at", "absorber=W,x=0.3,t=0.7", "-n", "50",
                 "--output", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (50, 1)
    assert main(["sample", str(camp.root), "--at", "absorber=Fe,x=0.3", "-n", "50",
                 "--output", str(tmp_path / "s2.npy")]) == 0
    capsys.readouterr()
    assert main(["sample", str(camp.root), "--at", "absorber=U,x=0.3", "-n", "5",
                 "--output", str(tmp_path / "s3.npy")]) == 2
    assert "--at: absorber: 'U' is not one of the choices Pb|W|Fe|Cu" in capsys.readouterr().err
    assert main(["retarget", str(camp.root), "--objective", "q={statistic: quantile, q: 0.9, output: y}", "--propose",
                 "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["recommended"]["params"]["absorber"] in ABSORBERS
    assert all(p["absorber"] in ABSORBERS for p in result["proposals"])


def test_surrogate_view_of_a_two_parameter_mixed_study_is_drawn(tmp_path: Path) -> None:
    from optimizer.cli import main

    data = base_study(parameters={"absorber": {"choices": ABSORBERS}, "x": {"low": 0.0, "high": 1.0}},
                      simulator={"name": "sims_for_tests:by_choice", "samples_per_call": 20},
                      objectives={"y": {"statistic": "mean"}}, budget={"calls": 8, "initial_design": 6},
                      strategy={"name": "wugo", "options": FAST_OPTIONS["wugo"]})
    camp = _run(tmp_path, data)
    assert main(["report", str(camp.root), "--output", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "surrogate.png").stat().st_size > 0


# -- the calorimeter's materials --------------------------------------------------------------------------
def test_calorimeter_takes_materials_and_light_yield_as_parameters() -> None:
    from simulators.calorimeter import SamplingCalorimeter

    sim = SamplingCalorimeter(energies=[10.0], device="cpu")
    base = {"t_abs": 2.0, "t_act": 4.0, "n_layers": 40, "half_width": 10.0}
    assert sim.quantities_at({**base, "absorber": "W"})["mass"] > 1.5 * sim.quantities_at(base)["mass"]  # W vs Pb
    assert sim.quantities_at({**base, "absorber": "Pb"}) == sim.quantities_at(base)  # the option's default
    assert sim.quantities_at({**base, "active": "Si"})["cost"] > 5 * sim.quantities_at(base)["cost"]  # sensors
    lar = sim.simulate({**base, "active": "LAr"}, 200, 1).samples
    sci = sim.simulate(base, 200, 1).samples
    assert not np.allclose(lar, sci)
    dim = sim.simulate({**base, "photostatistics": 10.0}, 2000, 1).samples[:, 2].std()  # response spread: +10 % of photostatistics
    assert dim > 1.2 * sim.simulate(base, 2000, 1).samples[:, 2].std()
    with pytest.raises(ValueError, match="unknown material"):
        sim.quantities_at({**base, "absorber": "Unobtainium"})
