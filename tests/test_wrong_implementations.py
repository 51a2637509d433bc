"""Deliberately wrong implementations, kept as fixtures: each must fail the conformance check written to
catch it (and each passes the older, weaker check it used to slip through, where there was one).

A check is called directly, with the fixture values pytest would give it; it fails when it raises.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from optimizer.executors.base import CallOutcome, CallRequest, simulator_args
from optimizer.executors.inline import InlineExecutor
from optimizer.space import SearchSpace
from optimizer.storage import JournalStorage
from optimizer.strategies.base import History, SobolStrategy, Strategy
from optimizer.study import Execution, SimulatorSpec, StudyConfig
from optimizer.testing import (
    ExecutorConformance,
    StorageConformance,
    StrategyConformance,
    SurrogateConformance,
    conformance_study,
)
from surrogates.base import mlp
from surrogates.mdn import MDN

SMALL_MDN: dict[str, Any] = {"steps": 150, "refit_steps": 50}


def fails(check: Callable[..., None], **fixtures: Any) -> BaseException:
    """Run one conformance check; return what it raised, or fail the test if it passed (or skipped)."""
    try:
        check(**fixtures)
    except pytest.skip.Exception as skip:
        pytest.fail(f"{check.__name__} skipped instead of failing: {skip}")
    except Exception as err:  # noqa: BLE001 - any exception is the check failing
        return err
    pytest.fail(f"{check.__name__} passed a wrong implementation")


# -- surrogates -------------------------------------------------------------------------------------------
class OneOutputMDN(MDN):
    """Wrong: models only the first output column, whatever k is asked for."""

    def __init__(self, dim: int, k: int, seed: int = 0, **options: Any) -> None:
        super().__init__(dim, 1, seed, **options)

    def fit(self, theta: torch.Tensor, samples: torch.Tensor) -> None:
        super().fit(theta, samples[..., :1])


class ThetaBlindMDN(MDN):
    """Wrong: never looks at θ (fits and samples the marginal of all calls)."""

    def fit(self, theta: torch.Tensor, samples: torch.Tensor) -> None:
        super().fit(torch.zeros_like(theta), samples)

    def sample(self, theta: torch.Tensor, n: int, generator: torch.Generator | None = None,
               common: bool = False) -> torch.Tensor:
        return super().sample(torch.zeros_like(theta), n, generator, common)


class FromScratchMDN(MDN):
    """Wrong: every refit starts from fresh weights (then trains only a refit's short budget)."""

    def __init__(self, dim: int, k: int, seed: int = 0, hidden: int = 64, layers: int = 2, **options: Any) -> None:
        super().__init__(dim, k, seed, hidden=hidden, layers=layers, **options)
        self.shape = (hidden, layers)

    def fit(self, theta: torch.Tensor, samples: torch.Tensor) -> None:
        if self.fits:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                self.net = mlp(self.dim, self.C * (1 + self.k + self.n_tril), *self.shape)
        super().fit(theta, samples)


def _surrogate_factory(cls: type[MDN]) -> Callable[[int, int, int], MDN]:
    return lambda dim, k, seed: cls(dim, k, seed=seed, **SMALL_MDN)


def test_one_output_surrogate_fails_the_k3_shape_check() -> None:
    suite, make = SurrogateConformance(), _surrogate_factory(OneOutputMDN)
    suite.test_fit_then_sample_shapes(make_surrogate=make, k=1)  # what the old suite tested
    assert isinstance(fails(suite.test_fit_then_sample_shapes, make_surrogate=make, k=3), AssertionError)


def test_theta_blind_surrogate_fails_the_theta_dependence_check() -> None:
    suite, make = SurrogateConformance(), _surrogate_factory(ThetaBlindMDN)
    suite.test_fit_then_sample_shapes(make_surrogate=make, k=1)
    assert isinstance(fails(suite.test_theta_dependence, make_surrogate=make), AssertionError)


def test_from_scratch_refit_fails_the_warm_start_check() -> None:
    suite, make = SurrogateConformance(), _surrogate_factory(FromScratchMDN)
    err = fails(suite.test_refit_warm_starts, make_surrogate=make)
    assert isinstance(err, AssertionError) and "after a refit on the same data" in str(err)  # not the fits count


def test_the_correct_mdn_passes_the_checks_the_wrong_ones_fail() -> None:
    suite, make = SurrogateConformance(), _surrogate_factory(MDN)
    suite.test_fit_then_sample_shapes(make_surrogate=make, k=3)
    suite.test_theta_dependence(make_surrogate=make)
    suite.test_refit_warm_starts(make_surrogate=make)


# -- strategies -------------------------------------------------------------------------------------------
class TellCountingSobol(SobolStrategy):
    """Wrong: each ``tell`` moves the sequence on, so a resumed instance (told once) proposes differently.
    Asking twice after one tell gives the same answer: the old same-instance check passed it."""

    def __init__(self, space: SearchSpace, study: StudyConfig, seed: int) -> None:
        super().__init__(space, study, seed)
        self.tells = 0

    def tell(self, history: History) -> None:
        self.tells += 1

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        return self.feasible_sobol(history.n_issued + self.tells, n)


class PendingBlindLocalSearch(Strategy):
    """Wrong: perturbs the best point with a stream fixed by the completed calls, ignoring the calls in flight
    (and ``n_issued``): the next free worker gets the point already running."""

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        if len(history) == 0:
            return self.feasible_sobol(history.n_issued, n)
        best = history.theta[int(np.argmin(history.minimization_targets()[:, 0]))]
        rng = np.random.default_rng([self.seed, len(history)])
        return np.clip(best + 0.1 * rng.standard_normal((n, self.space.dim)), 0.0, 1.0)


class ReproposesBest(SobolStrategy):
    """Wrong: exploits by proposing the best evaluated point again (unless it is already in flight)."""

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        rest = self.feasible_sobol(history.n_issued, n)
        if len(history) == 0:
            return rest
        best = history.theta[int(np.argmin(history.minimization_targets()[:, 0]))]
        if len(pending) and np.isclose(pending, best).all(1).any():
            return rest
        return np.vstack([best, rest])[:n]


@pytest.fixture
def study() -> StudyConfig:
    return conformance_study()


@pytest.fixture
def space(study: StudyConfig) -> SearchSpace:
    return SearchSpace(study.parameters)


def test_tell_that_changes_state_fails_the_fresh_instance_resume_check(space, study) -> None:
    suite = StrategyConformance()
    suite.test_deterministic(make_strategy=TellCountingSobol, space=space, study=study)  # the old check passes it
    suite.test_state_dict_round_trip(make_strategy=TellCountingSobol, space=space, study=study)  # one tell each
    err = fails(suite.test_fresh_instance_resumes_identically, make_strategy=TellCountingSobol, space=space, study=study)
    assert isinstance(err, AssertionError)


def test_pending_blind_strategy_fails_the_pending_check(space, study) -> None:
    suite = StrategyConformance()
    suite.test_accepts_pending(make_strategy=PendingBlindLocalSearch, space=space, study=study)  # the old check
    err = fails(suite.test_pending_changes_the_proposal, make_strategy=PendingBlindLocalSearch, space=space, study=study)
    assert isinstance(err, AssertionError) and "pending point was proposed again" in str(err)


def test_strategy_reproposing_the_best_point_fails_the_no_repeat_check(space, study) -> None:
    suite = StrategyConformance()
    for old in (suite.test_proposals_in_unit_cube, suite.test_deterministic, suite.test_accepts_pending,
                suite.test_pending_changes_the_proposal):
        old(make_strategy=ReproposesBest, space=space, study=study)
    err = fails(suite.test_never_reproposes_evaluated_or_pending, make_strategy=ReproposesBest, space=space, study=study)
    assert isinstance(err, AssertionError) and "evaluated point was proposed again" in str(err)


class CrashesWithoutHistory(SobolStrategy):
    """Wrong: fits a model on the completed calls without checking there are any."""

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        best = history.theta[int(np.argmin(history.minimization_targets()[:, 0]))]
        return np.vstack([np.clip(best + 0.01, 0, 1), self.feasible_sobol(history.n_issued, n)])[:n]


def test_strategy_needing_a_completed_call_fails_the_failure_path_checks(space, study) -> None:
    suite = StrategyConformance()
    suite.test_proposals_in_unit_cube(make_strategy=CrashesWithoutHistory, space=space, study=study)
    for check in (suite.test_empty_history, suite.test_all_failed_history):
        assert isinstance(fails(check, make_strategy=CrashesWithoutHistory, space=space, study=study), ValueError)


# -- executors --------------------------------------------------------------------------------------------
class RaisingInlineExecutor(InlineExecutor):
    """Wrong: calls the simulator directly, so its exception escapes ``wait`` instead of failing the call."""

    def __init__(self, simulator: SimulatorSpec, execution: Execution, workdir: Path | None = None) -> None:
        super().__init__(simulator, execution, workdir)
        self._sim = simulator_args(simulator).build()

    def wait(self, timeout: float | None = None) -> list[CallOutcome]:
        if not self._queue:
            return []
        req: CallRequest = self._queue.popleft()
        samples = np.asarray(self._sim.simulate(dict(req.params), req.n_samples, req.seed))
        return [CallOutcome(req.call_id, req.attempt, "completed", samples=samples, started=0.0, finished=0.0)]


def test_executor_letting_simulator_errors_out_fails_the_error_check() -> None:
    suite = ExecutorConformance()
    suite.test_runs_and_returns_numpy(make_executor=RaisingInlineExecutor)  # the old checks pass it
    suite.test_each_call_returns_once(make_executor=RaisingInlineExecutor)
    err = fails(suite.test_simulator_error_is_an_outcome, make_executor=RaisingInlineExecutor)
    assert isinstance(err, RuntimeError) and "geometry overlap" in str(err)


class InlineClaimingTimeouts(ExecutorConformance):
    enforces_timeout = True  # the inline executor does not enforce execution.timeout: it must fail
    sleep_s = 1.0  # it runs the call to its end: no need to wait the suite's full sleep


def test_executor_ignoring_the_timeout_fails_the_timeout_check() -> None:
    err = fails(InlineClaimingTimeouts().test_timeout_is_an_outcome, make_executor=InlineExecutor)
    assert isinstance(err, AssertionError) and "'completed'" in str(err)


# -- storage ----------------------------------------------------------------------------------------------
class JournalKeepingTornTail(JournalStorage):
    """Wrong: appends after a torn last line instead of cutting it, gluing the next event to the fragment."""

    def _cut_torn_tail(self) -> None:
        pass


class JournalLosingPrecision(JournalStorage):
    """Wrong: stores samples one unit in the last place off (as a lossy text format would)."""

    def save_samples(self, call_id: int, samples: np.ndarray) -> str:
        return super().save_samples(call_id, np.nextafter(samples, np.inf))


class JournalSuite(StorageConformance):
    def tear_last_write(self, root: Path) -> None:
        with open(root / "journal.jsonl", "ab") as fh:
            fh.write(b'{"v":1,"event":"lost","x":[1.5,')


def test_storage_keeping_a_torn_tail_fails_the_torn_write_check(tmp_path: Path) -> None:
    suite = JournalSuite()
    suite.test_reopen_keeps_events(make_storage=JournalKeepingTornTail, tmp_path=tmp_path / "a")
    err = fails(suite.test_torn_last_write_is_ignored_then_cut, make_storage=JournalKeepingTornTail,
                tmp_path=tmp_path / "b")
    assert isinstance(err, AssertionError) and "corrupt" in str(err)


def test_storage_losing_precision_fails_the_samples_check(tmp_path: Path) -> None:
    err = fails(JournalSuite().test_samples_round_trip, make_storage=JournalLosingPrecision, tmp_path=tmp_path)
    assert isinstance(err, AssertionError)
