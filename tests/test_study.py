from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, base_study
from optimizer.cli import main
from optimizer.errors import StudyError
from optimizer.study import load_study, validate_study

STUDIES = sorted((ROOT / "studies").rglob("*.yaml"))


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_studies_validate_against_their_simulators(path: Path) -> None:
    from optimizer.campaign import check_simulator
    from optimizer.executors import simulator_args

    study, text = load_study(path)
    check_simulator(study, simulator_args(study.simulator).build(), str(path))
    assert text.strip()


def test_good_study_full_schema() -> None:
    s = validate_study(base_study(
        parameters={"gap": {"low": 0.1, "high": 10, "unit": "cm", "log": True},
                    "layers": {"low": 2, "high": 40, "integer": True}},
        objectives={"bkg": {"statistic": "quantile", "q": 0.9}, "hit": {"statistic": "fraction_above", "threshold": 1.0, "direction": "maximize"}},
        constraints={"cost": {"quantity": "cost", "upper": 10}},
        execution={"backend": "ray", "address": "auto", "num_cpus": 2, "num_gpus": 0.5, "max_concurrent": 4,
                   "retries": 2, "timeout": 60},
        baselines=[{"name": "expert", "params": {"gap": 1.0, "layers": 10}}],
    ))
    assert s.parameters["gap"].log and s.constraints["cost"].statistic == "quantity"
    assert s.execution.num_gpus == 0.5


@pytest.mark.parametrize(
    "patch, field, words",
    [
        ({"parameters": {"x1": {"low": 1, "high": 1}}}, "parameters.x1.high", "greater than low"),
        ({"parameters": {"x1": {"low": 0, "high": "ten"}}}, "parameters.x1.high", "valid number"),
        ({"parameters": {"x1": {"low": -1, "high": 1, "log": True}}}, "parameters.x1.low", "log"),
        ({"parameters": {"x1": {"low": 0.2, "high": 0.8, "integer": True}}}, "parameters.x1", "no integer"),
        ({"parameters": {}}, "parameters", "at least 1"),
        ({"colour": "red"}, "colour", "unknown key"),
        ({"parameters": {"x1": {"low": 0, "high": 1, "lo": 3}}}, "parameters.x1.lo", "unknown key"),
        ({"objectives": {"f": {"statistic": "quantile"}}}, "objectives.f", "needs q"),
        ({"objectives": {"f": {"statistic": "mode"}}}, "objectives.f.statistic", "Input should be"),
        ({"objectives": {"f": {"direction": "down"}}}, "objectives.f.direction", "minimize"),
        ({"constraints": {"c": {"quantity": "cost"}}}, "constraints.c", "lower and/or upper"),
        ({"constraints": {"c": {"quantity": "cost", "lower": 2, "upper": 1}}}, "constraints.c.upper", "below lower"),
        ({"budget": {"calls": 3, "initial_design": 5}}, "budget.initial_design", "exceeds calls"),
        ({"budget": {"calls": 0}}, "budget.calls", "greater than or equal to 1"),
        ({"execution": {"backend": "slurm"}}, "execution.backend", "unknown executor 'slurm'; known: inline, ray"),
        ({"execution": {"timeout": -1}}, "execution.timeout", "greater than 0"),
        ({"baselines": [{"name": "e", "params": {"x1": 9, "x2": 0}}]}, "baselines[0].params.x1", "outside"),
        ({"baselines": [{"name": "e", "params": {"x1": 1}}]}, "baselines[0].params", "missing ['x2']"),
        ({"name": "has space"}, "name", "not a valid study name"),
        ({"simulator": {"samples_per_call": 10}}, "simulator.name", "missing"),
    ],
)
def test_bad_study_names_field(patch: dict, field: str, words: str) -> None:
    with pytest.raises(StudyError) as info:
        validate_study(base_study(**patch), "s.yaml")
    assert info.value.field == field, str(info.value)
    assert words in info.value.message, str(info.value)


def test_yaml_syntax_error_has_line(write_study) -> None:
    p = write_study("name: x\nparameters: {x1: [1, 2}\n")
    with pytest.raises(StudyError, match=r"study.yaml:2:\d+: not valid YAML"):
        load_study(p)


def test_not_a_mapping(write_study) -> None:
    with pytest.raises(StudyError, match="must be a mapping"):
        load_study(write_study("- a\n- b\n"))


@pytest.mark.parametrize(
    "patch, needle",
    [
        ({"simulator": {"name": "warp_drive"}}, "simulator.name: unknown simulator 'warp_drive'"),
        ({"strategy": {"name": "oracle"}}, "strategy.name: unknown strategy 'oracle'"),
        ({"simulator": {"name": "no_such_module:f"}}, "simulator.name: cannot import module 'no_such_module'"),
        ({"simulator": {"name": "three_hump_camel", "options": {"warp": 9}}}, "simulator.options"),
        ({"objectives": {"f": {"output": "energy"}}}, "objectives.f.output: 'energy' is not an output"),
        ({"objectives": {"f": {"quantity": "mass"}}}, "objectives.f.quantity: 'mass' is not a quantity"),
        ({"parameters": {"a": {"low": 0, "high": 1}, "b": {"low": 0, "high": 1}}}, "parameters: simulator"),
        ({"strategy": {"name": "sobol", "options": {"speed": 3}}}, "strategy.options"),
    ],
)
def test_cli_bad_input_exit_2_one_line(write_study, tmp_path: Path, capsys, patch: dict, needle: str) -> None:
    p = write_study(base_study(**patch))
    rc = main(["run", str(p), "--output", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert rc == 2
    assert needle in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing created: fixing the study and re-running works


def test_cli_missing_file_exit_2_subprocess(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "optimizer.cli", "run", str(tmp_path / "nope.yaml")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "nope.yaml: file not found" in r.stderr and "Traceback" not in r.stderr
