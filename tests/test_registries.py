"""Executors and storages are chosen through their registries, so a registered one is usable everywhere."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import base_study
from optimizer import cli
from optimizer.campaign import Campaign, run_campaign
from optimizer.errors import StudyError
from optimizer.executors import EXECUTORS, CallOutcome
from optimizer.executors.inline import InlineExecutor
from optimizer.records import CampaignView
from optimizer.storage import JournalStorage, Storage
from optimizer.storages import CAMPAIGN_STORAGE, STORAGES
from optimizer.study import validate_study


@pytest.fixture
def extra_executor(monkeypatch: pytest.MonkeyPatch) -> str:
    """A third executor, registered for one test (the inline one under another name)."""
    monkeypatch.setitem(EXECUTORS._entries, "local_pool", "optimizer.executors.inline:InlineExecutor")
    return "local_pool"


def test_study_accepts_a_registered_executor(extra_executor: str) -> None:
    study = validate_study(base_study(execution={"backend": extra_executor}))
    assert study.execution.backend == extra_executor


def test_study_refuses_an_unknown_executor_naming_the_known_ones(extra_executor: str) -> None:
    with pytest.raises(StudyError) as err:
        validate_study(base_study(execution={"backend": "slurm"}))
    assert str(err.value) == "<study>: execution.backend: unknown executor 'slurm'; known: inline, local_pool, ray"


def test_cli_backend_choices_are_the_registry(extra_executor: str) -> None:
    args = cli.build_parser().parse_args(["run", "s.yaml", "--backend", extra_executor])
    assert args.backend == extra_executor


def test_cli_refuses_an_unregistered_backend(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args(["run", "s.yaml", "--backend", "slurm"])
    assert exit_.value.code == 2
    assert "invalid choice: 'slurm' (choose from 'inline', 'ray')" in capsys.readouterr().err.replace('"', "'")


def test_campaign_directories_use_the_registered_storage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert STORAGES.names() == ["journal"] and STORAGES.get(CAMPAIGN_STORAGE) is JournalStorage

    class Tagged(JournalStorage):
        pass

    monkeypatch.setitem(STORAGES._entries, CAMPAIGN_STORAGE, Tagged)
    assert type(CampaignView(tmp_path).storage) is Tagged


class MemoryStorage(Storage):
    """Only the abstract methods: what the base class declares must work from these alone."""

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self._events: list[dict[str, Any]] = []
        self._samples: dict[str, np.ndarray] = {}

    def append(self, event: dict[str, Any]) -> None:
        self._events.append(dict(event))

    def events(self) -> Iterator[dict[str, Any]]:
        yield from self._events

    def save_samples(self, call_id: int, samples: np.ndarray) -> str:
        self._samples[f"call-{call_id}"] = samples.copy()
        return f"call-{call_id}"

    def load_samples(self, ref: str) -> np.ndarray:
        return self._samples[ref]


def test_storage_base_declares_what_the_loop_calls(tmp_path: Path) -> None:
    s = MemoryStorage(tmp_path)
    assert s.root == tmp_path and not s.started()
    s.check_fresh_start()
    ref = s.save_samples(1, np.zeros((5, 2)))
    s.append({"event": "completed", "samples": ref})
    assert s.started() and s.sample_shape(ref) == (5, 2) and s.describe(ref) == ref
    s.close()  # the loop closes every storage when it stops
    s.append({"event": "campaign"})
    assert len(list(s.events())) == 2


class NoSamples(InlineExecutor):
    """An executor that breaks its contract: every completed call comes back without its samples."""

    def wait(self, timeout: float | None = None) -> list[CallOutcome]:
        return [dataclasses.replace(o, samples=None) if o.status == "completed" else o for o in super().wait(timeout)]


def test_a_completed_call_without_samples_fails_as_invalid_output(tmp_path: Path) -> None:
    """It failed with an obscure metric error (``None`` reaching the statistic); the message now says why."""
    study = validate_study(base_study(budget={"calls": 2, "initial_design": 2}))
    camp = Campaign.create(tmp_path / "c", study, "", source="x")
    run_campaign(camp, study, executor=NoSamples(study.simulator, study.execution, camp.root))
    recs = camp.records()
    assert [(r.status, r.failure_kind) for r in recs.values()] == [("failed", "invalid_output")] * 2
    assert "without samples" in str(recs[1].error)
