from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token banner for the test-local cluster

ROOT = Path(__file__).resolve().parents[1]


def base_study(**over: Any) -> dict[str, Any]:
    study: dict[str, Any] = {
        "name": "t",
        "seed": 3,
        "parameters": {"x1": {"low": -5, "high": 5}, "x2": {"low": -5, "high": 5}},
        "simulator": {"name": "three_hump_camel_paper", "samples_per_call": 100},
        "objectives": {"f": {"statistic": "mean"}},
        "budget": {"calls": 6, "initial_design": 3},
        "execution": {"backend": "inline"},
    }
    study.update(over)
    return study


#: WU-GO options small enough for a test: a short fit and few candidates, the same acquisition otherwise.
FAST_WUGO: dict[str, Any] = {"surrogate_options": {"steps": 150, "refit_steps": 50}, "candidates": 256,
                             "generated": 64, "perturbations": 16, "top_k": 4}


def wugo_study() -> Any:
    """The validated 2-D base study with WU-GO and room for 30 calls (4 initial), for strategy-level tests."""
    from optimizer.study import validate_study

    return validate_study(base_study(strategy={"name": "wugo"}, budget={"calls": 30, "initial_design": 4}))


@pytest.fixture
def write_study(tmp_path: Path):
    def write(data: dict[str, Any] | str, name: str = "study.yaml") -> Path:
        p = tmp_path / name
        p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
        return p

    return write


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for every test that needs it (start-up costs ~7 s)."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        # address="local": a private instance, never a cluster some `ray start` left on the machine
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}})
    yield ray
    ray.shutdown()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, every Ray test runs on one worker, one at a time: two Ray instances starting at once
    on a 2-core machine would make the timing-sensitive ones (a timeout counted from a call's start) flaky."""
    for item in items:
        if item.get_closest_marker("ray"):
            item.add_marker(pytest.mark.xdist_group("ray"))
