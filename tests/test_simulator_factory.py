"""The simulator factory (:mod:`simulators.factory`) and how often a run constructs the simulator.

The driver builds the study's simulator once per run and hands it to the strategy (output names, exact
quantities) and the constraint oracle; each worker process builds its own once from the same name and
options. Geometry or field maps built in a constructor are then paid for once, not once per consumer.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import sims_for_tests
from conftest import base_study
from optimizer.campaign import Campaign, run_campaign
from optimizer.errors import StudyError
from optimizer.executors import simulator_args
from optimizer.study import load_study
from simulators.factory import SimulatorArgs, build_simulator, cached_simulator

FAST_WUGO = {"surrogate_options": {"steps": 20, "refit_steps": 5}, "candidates": 64, "generated": 16,
             "perturbations": 4, "top_k": 2}
#: Constructions in one inline run: the driver's one instance, and the in-process worker's one.
INLINE_RUN_CONSTRUCTIONS = 2


def test_factory_builds_registered_and_module_simulators() -> None:
    assert type(build_simulator("three_hump_camel", {})).__name__ == "ThreeHumpCamel"
    sim = build_simulator("sims_for_tests:quadratic", {"scale": 2.0}, outputs=["z"])
    assert sim.outputs == ("z",)


@pytest.mark.parametrize(("name", "options", "outputs", "field"), [
    ("no_such_simulator", {}, None, "simulator.name"),
    ("sims_for_tests:nothing_here", {}, None, "simulator.name"),
    ("three_hump_camel", {"bogus": 1}, None, "simulator.options"),
    ("three_hump_camel", {}, ("y",), "simulator.outputs"),
])
def test_factory_errors_name_the_study_field(name: str, options: dict, outputs: tuple | None, field: str) -> None:
    with pytest.raises(StudyError) as err:
        build_simulator(name, options, "s.yaml", outputs)
    assert err.value.field == field and str(err.value).startswith(f"s.yaml: {field}: ")


def test_workers_build_from_the_study_values_once_per_process() -> None:
    tag = uuid.uuid4().hex
    args = SimulatorArgs("sims_for_tests:CountingSimulator", {"tag": tag})
    first = cached_simulator(args)
    assert cached_simulator(SimulatorArgs("sims_for_tests:CountingSimulator", {"tag": tag})) is first
    assert sims_for_tests.CountingSimulator.built.count(tag) == 1


@pytest.mark.parametrize("strategy", [{"name": "sobol"}, {"name": "wugo", "options": FAST_WUGO}])
def test_an_inline_run_constructs_the_simulator_once_in_the_driver(strategy: dict, write_study, tmp_path: Path) -> None:
    """A quantity constraint (the feasibility oracle) and WU-GO (exact quantities) both use the driver's instance."""
    tag = uuid.uuid4().hex  # a fresh worker-cache key, so the in-process worker builds its own once
    data = base_study(simulator={"name": "sims_for_tests:CountingSimulator", "samples_per_call": 20,
                                 "options": {"tag": tag}},
                      constraints={"cheap": {"statistic": "quantity", "quantity": "cost", "upper": 9.0}},
                      strategy=strategy, budget={"calls": 6, "initial_design": 3})
    study, text = load_study(write_study(data))
    camp = Campaign.create(tmp_path / "camp", study, text, source=str(tmp_path / "study.yaml"), budget=6)
    summary = run_campaign(camp, study)
    assert summary.completed == 6
    assert sims_for_tests.CountingSimulator.built.count(tag) == INLINE_RUN_CONSTRUCTIONS


def test_simulator_args_carry_the_study_section_unchanged(write_study) -> None:
    data = base_study(simulator={"name": "sims_for_tests:quadratic", "samples_per_call": 5,
                                 "options": {"scale": 3.0}, "outputs": ["q"]})
    study, _ = load_study(write_study(data))
    assert simulator_args(study.simulator) == SimulatorArgs("sims_for_tests:quadratic", {"scale": 3.0}, ("q",))
