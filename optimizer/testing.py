"""Conformance suites every implementation of a detopt protocol must pass.

Subclass the suite in your tests and provide the fixture it names. Apart from simulators (stateless),
each suite takes a *factory*, and every check builds the instances it needs through it (as Optuna's
``pytest_samplers.py`` does): state left by one check cannot hide a bug in another, and a resume is checked
the way it happens, on a new instance rebuilt from the journal and the saved state::

    class TestMySimulator(SimulatorConformance):
        @pytest.fixture
        def simulator(self):
            return MySimulator(...)

    class TestMyStrategy(StrategyConformance):
        @pytest.fixture
        def make_strategy(self):
            return lambda space, study, seed: MyStrategy(space, study, seed, my_option=2)

    class TestMySurrogate(SurrogateConformance):
        @pytest.fixture
        def make_surrogate(self):
            return lambda dim, k, seed: MySurrogate(dim, k, seed=seed, steps=150)

    class TestMyExecutor(ExecutorConformance):
        @pytest.fixture
        def make_executor(self):
            return MyExecutor  # called as MyExecutor(simulator_spec, execution)

    class TestMyStorage(StorageConformance):
        @pytest.fixture
        def make_storage(self):
            return MyStorage  # called as MyStorage(root)

The suites need pytest (``pip install 'detopt[test]'``).
"""

from __future__ import annotations

import io
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pytest

from optimizer.executors.base import CallOutcome, CallRequest, Executor
from optimizer.space import SearchSpace
from optimizer.storage import Storage
from optimizer.strategies.base import History, Strategy
from optimizer.study import Execution, SimulatorSpec, StudyConfig, validate_study

if TYPE_CHECKING:
    from torch import Tensor

    from surrogates.base import Surrogate


def params_inside(sim: Any, rng: np.random.Generator, bounds: dict[str, tuple[float, float]] | None = None) -> dict[str, float]:
    """A valid θ for ``sim``: its ``default_params()`` if it has them, else each parameter uniform in ``bounds`` (default ±1)."""
    default = sim.default_params() if hasattr(sim, "default_params") else None
    if default:
        return dict(default)
    names = sim.parameters or ("x1",)
    bounds = bounds or {}
    return {n: float(rng.uniform(*bounds.get(n, (-1.0, 1.0)))) for n in names}


# -- known conditional distributions with point masses (surrogate checks and bench/point_mass.py) ----------
def zero_inflated_hits(theta: Any, n: int, generator: Any) -> Any:
    """``theta [M, 1]`` → ``[M, n, 1]``: a hit weight, Exp(1) with probability 0.2 + 0.6θ, else exactly 0."""
    import torch

    hit = torch.rand(theta.shape[0], n, generator=generator) < (0.2 + 0.6 * theta)
    w = torch.empty(theta.shape[0], n, dtype=torch.float64).exponential_(1.0, generator=generator)
    return torch.where(hit, w, torch.zeros_like(w))[..., None]


def censored_pair(theta: Any, n: int, generator: Any) -> Any:
    """``theta [M, 1]`` → ``[M, n, 2]``: x ~ N(θ, 0.3²) and y = clamp(x + N(0, 0.5²), 0, 1.5), which has
    point masses at both bounds and is correlated with x."""
    import torch

    x = theta + 0.3 * torch.randn(theta.shape[0], n, generator=generator, dtype=torch.float64)
    y = (x + 0.5 * torch.randn(theta.shape[0], n, generator=generator, dtype=torch.float64)).clamp(0.0, 1.5)
    return torch.stack([x, y], -1)


class SimulatorConformance:
    """Fixtures: ``simulator``; optionally ``simulator_params`` (a valid θ)."""

    n = 64

    @pytest.fixture
    def simulator_params(self, simulator: Any) -> dict[str, float]:
        """The θ the checks simulate at (override for a simulator whose parameters need other values)."""
        return params_inside(simulator, np.random.default_rng(0))

    def test_declares_outputs(self, simulator: Any) -> None:
        assert isinstance(simulator.outputs, tuple) and len(simulator.outputs) >= 1
        assert all(isinstance(o, str) and o for o in simulator.outputs)
        assert len(set(simulator.outputs)) == len(simulator.outputs)

    def test_shape_and_finite(self, simulator: Any, simulator_params: dict[str, float]) -> None:
        from simulators.base import check_result

        res = check_result(simulator, simulator.simulate(simulator_params, self.n, 1), self.n)
        assert res.samples.ndim == 2 and res.samples.shape[1] == len(simulator.outputs)
        assert np.all(np.isfinite(res.samples))

    def test_same_seed_same_samples(self, simulator: Any, simulator_params: dict[str, float]) -> None:
        from simulators.base import check_result

        a = check_result(simulator, simulator.simulate(simulator_params, self.n, 7), self.n).samples
        b = check_result(simulator, simulator.simulate(simulator_params, self.n, 7), self.n).samples
        np.testing.assert_array_equal(a, b)

    def test_other_seed_other_samples(self, simulator: Any, simulator_params: dict[str, float]) -> None:
        from simulators.base import check_result

        a = check_result(simulator, simulator.simulate(simulator_params, self.n, 7), self.n).samples
        b = check_result(simulator, simulator.simulate(simulator_params, self.n, 8), self.n).samples
        assert not np.array_equal(a, b)

    def test_quantities(self, simulator: Any, simulator_params: dict[str, float]) -> None:
        q = simulator.quantities_at(simulator_params)
        assert set(q) == set(simulator.quantities)
        assert all(np.isfinite(float(v)) for v in q.values())




# -- factories the suites take ------------------------------------------------------------------------
class StrategyFactory(Protocol):
    """Builds a fresh strategy: ``make_strategy(space, study, seed)``."""

    def __call__(self, space: SearchSpace, study: StudyConfig, seed: int, /) -> Strategy: ...


class SurrogateFactory(Protocol):
    """Builds a fresh, unfitted surrogate: ``make_surrogate(dim, k, seed)``. Its first fit must learn the suite's
    small data sets (a few hundred steps suffice for an MDN); refits may be shorter (they start from the fit)."""

    def __call__(self, dim: int, k: int, seed: int, /) -> Surrogate: ...


class ExecutorFactory(Protocol):
    """Builds a fresh executor for a simulator and execution section: ``make_executor(simulator, execution)``."""

    def __call__(self, simulator: SimulatorSpec, execution: Execution, /) -> Executor: ...


class StorageFactory(Protocol):
    """Opens the storage kept under ``root`` (empty or not): ``make_storage(root)``."""

    def __call__(self, root: Path, /) -> Storage: ...


# -- strategies ---------------------------------------------------------------------------------------
#: Proposals closer than this (unit cube, Euclidean) to an evaluated or pending point count as the same
#: point: a repeated design wastes a call. Far below any real proposal's spacing.
SAME_POINT = 1e-9
#: Resumed and uninterrupted proposals must agree to this (float noise of a refit on the same data).
RESUME_ATOL = 1e-6


def conformance_study(**over: Any) -> StudyConfig:
    """The study the strategy suite uses by default: two parameters in [-5, 5], one objective to minimise."""
    data: dict[str, Any] = {
        "name": "conformance", "seed": 3,
        "parameters": {"x1": {"low": -5, "high": 5}, "x2": {"low": -5, "high": 5}},
        "simulator": {"name": "three_hump_camel_paper", "samples_per_call": 50},
        "objectives": {"f": {"statistic": "mean"}},
        "budget": {"calls": 20, "initial_design": 0},
        "execution": {"backend": "inline"},
    }
    data.update(over)
    return validate_study(data)


def history_prefix(h: History, m: int, n_issued: int | None = None) -> History:
    """The first ``m`` completed calls of ``h`` (the history a campaign had ``len(h) - m`` results earlier)."""
    load = h._load
    return replace(
        h, theta=h.theta[:m], call_ids=h.call_ids[:m], objectives=h.objectives[:m],
        objective_sems=h.objective_sems[:m], constraints=h.constraints[:m], feasible=h.feasible[:m],
        constraint_sems=None if h.constraint_sems is None else h.constraint_sems[:m],
        n_issued=m if n_issued is None else n_issued, _load=load, _cache={})


def state_round_trip(state: Any) -> Any:
    """``state`` after ``torch.save`` and ``torch.load(weights_only=True)``, as a campaign saves and restores it."""
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _min_distance(x: np.ndarray, others: np.ndarray) -> float:
    if len(x) == 0 or len(others) == 0:
        return np.inf
    return float(np.linalg.norm(x[:, None] - others[None], axis=-1).min())


def _check_valid(x: np.ndarray, space: SearchSpace, n: int, at_least: int = 1) -> None:
    assert x.ndim == 2 and x.shape[1] == space.dim, f"proposals must be [n', {space.dim}], got {x.shape}"
    assert at_least <= x.shape[0] <= n, f"expected {at_least}..{n} proposals, got {x.shape[0]}"
    assert np.all(np.isfinite(x)) and np.all((x >= 0) & (x <= 1)), "proposals must lie in the unit cube"


class StrategyConformance:
    """Fixtures: ``make_strategy`` (a :class:`StrategyFactory`); optionally ``space`` and ``study`` (default:
    :func:`conformance_study`). Every check builds its strategies fresh."""

    @pytest.fixture
    def study(self) -> StudyConfig:
        """The study the strategies are built for: :func:`conformance_study` unless overridden."""
        return conformance_study()

    @pytest.fixture
    def space(self, study: StudyConfig) -> SearchSpace:
        """The search space of ``study``."""
        return SearchSpace(study.parameters)

    @staticmethod
    def make_history(space: SearchSpace, n: int, n_issued: int | None = None, seed: int = 0,
                     failed: int = 0) -> History:
        """``n`` completed calls of f(θ) = Σ(θ - 0.3)² with small noise, and ``failed`` failed ones."""
        rng = np.random.default_rng(seed)
        theta = rng.random((n, space.dim))
        y = ((theta - 0.3) ** 2).sum(1, keepdims=True)
        samples = [y[i] + 0.01 * rng.standard_normal((50, 1)) for i in range(n)]
        return History(
            theta=theta, call_ids=np.arange(1, n + 1), objectives=y, objective_sems=np.full_like(y, 0.01 / np.sqrt(50)),
            constraints=np.zeros((n, 0)), feasible=np.ones(n, dtype=bool), objective_names=["f"],
            directions=["minimize"], failed_theta=rng.random((failed, space.dim)),
            n_issued=n + failed if n_issued is None else n_issued, _load=lambda i: samples[i],
        )

    @staticmethod
    def none(space: SearchSpace) -> np.ndarray:
        """No pending points: a ``[0, d]`` array."""
        return np.zeros((0, space.dim))

    def test_proposals_in_unit_cube(self, make_strategy: StrategyFactory, space: SearchSpace,
                                    study: StudyConfig) -> None:
        strategy = make_strategy(space, study, 0)
        h = self.make_history(space, 6)
        strategy.tell(h)
        _check_valid(np.asarray(strategy.ask(h, self.none(space), 3)), space, 3)

    def test_batch_is_distinct(self, make_strategy: StrategyFactory, space: SearchSpace, study: StudyConfig) -> None:
        strategy = make_strategy(space, study, 0)
        h = self.make_history(space, 6)
        strategy.tell(h)
        x = np.asarray(strategy.ask(h, self.none(space), 4))
        if len(x) > 1:
            d = np.linalg.norm(x[:, None] - x[None], axis=-1) + np.eye(len(x))
            assert d.min() > SAME_POINT

    def test_deterministic(self, make_strategy: StrategyFactory, space: SearchSpace, study: StudyConfig) -> None:
        strategy = make_strategy(space, study, 0)
        h = self.make_history(space, 6)
        strategy.tell(h)
        a = np.asarray(strategy.ask(h, self.none(space), 2))
        b = np.asarray(strategy.ask(h, self.none(space), 2))
        np.testing.assert_allclose(a, b)

    def test_fresh_instance_resumes_identically(self, make_strategy: StrategyFactory, space: SearchSpace,
                                                study: StudyConfig) -> None:
        """A campaign told results one by one, interrupted after its last tell, and resumed: the resumed
        strategy is a new instance given the saved state (if any) and the whole history once. Its next
        proposal must be the one the uninterrupted strategy makes."""
        full = self.make_history(space, 6)
        a_strat = make_strategy(space, study, 0)
        for m in (4, 5):
            h = history_prefix(full, m)
            a_strat.tell(h)
            a_strat.ask(h, self.none(space), 1)
        a_strat.tell(full)
        state = a_strat.state_dict()
        a = np.asarray(a_strat.ask(full, self.none(space), 2))
        b_strat = make_strategy(space, study, 0)
        if state is not None:
            b_strat.load_state_dict(state_round_trip(state))
        b_strat.tell(history_prefix(full, len(full)))  # the history rebuilt from the journal: a new object
        b = np.asarray(b_strat.ask(history_prefix(full, len(full)), self.none(space), 2))
        assert a.shape == b.shape, f"the resumed strategy proposed {len(b)} points, the uninterrupted one {len(a)}"
        np.testing.assert_allclose(b, a, atol=RESUME_ATOL, err_msg="a resumed campaign would propose differently")

    def test_state_dict_round_trip(self, make_strategy: StrategyFactory, space: SearchSpace,
                                   study: StudyConfig) -> None:
        """The saved state is plain data (``torch.load(weights_only=True)`` reads it) and restores the fit
        into a fresh instance: told the same history, it proposes what the original proposes."""
        h = self.make_history(space, 6)
        a_strat = make_strategy(space, study, 0)
        a_strat.tell(h)
        state = a_strat.state_dict()
        a = np.asarray(a_strat.ask(h, self.none(space), 2))
        b_strat = make_strategy(space, study, 0)
        if state is not None:
            b_strat.load_state_dict(state_round_trip(state))
        b_strat.tell(h)
        np.testing.assert_allclose(np.asarray(b_strat.ask(h, self.none(space), 2)), a, atol=RESUME_ATOL)

    def test_accepts_pending(self, make_strategy: StrategyFactory, space: SearchSpace, study: StudyConfig) -> None:
        strategy = make_strategy(space, study, 0)
        h = self.make_history(space, 6, n_issued=8)
        strategy.tell(h)
        pending = np.full((2, space.dim), 0.5)
        x = np.asarray(strategy.ask(h, pending, 2))
        assert x.shape[1] == space.dim
        assert _min_distance(x, pending) > SAME_POINT

    def test_pending_changes_the_proposal(self, make_strategy: StrategyFactory, space: SearchSpace,
                                          study: StudyConfig) -> None:
        """The point just proposed, now in flight, must not be proposed again for the next free worker."""
        strategy = make_strategy(space, study, 0)
        h = self.make_history(space, 6)
        strategy.tell(h)
        first = np.asarray(strategy.ask(h, self.none(space), 1))
        _check_valid(first, space, 1)
        second = np.asarray(strategy.ask(history_prefix(h, len(h), n_issued=h.n_issued + 1), first, 1))
        if len(second):  # nothing more to propose is an answer too
            _check_valid(second, space, 1)
            assert _min_distance(second, first) > SAME_POINT, "the pending point was proposed again"

    def test_never_reproposes_evaluated_or_pending(self, make_strategy: StrategyFactory, space: SearchSpace,
                                                   study: StudyConfig) -> None:
        strategy = make_strategy(space, study, 0)
        h = self.make_history(space, 6)
        strategy.tell(h)
        pending = np.asarray(strategy.ask(h, self.none(space), 2))
        x = np.asarray(strategy.ask(history_prefix(h, len(h), n_issued=h.n_issued + len(pending)), pending, 3))
        assert _min_distance(pending, h.theta) > SAME_POINT, "an evaluated point was proposed again"
        assert _min_distance(x, h.theta) > SAME_POINT, "an evaluated point was proposed again"
        assert _min_distance(x, pending) > SAME_POINT, "a pending point was proposed again"

    def test_empty_history(self, make_strategy: StrategyFactory, space: SearchSpace, study: StudyConfig) -> None:
        """Nothing recorded yet (no initial design): the strategy still proposes points."""
        strategy = make_strategy(space, study, 0)
        h = self.make_history(space, 0)
        strategy.tell(h)
        _check_valid(np.asarray(strategy.ask(h, self.none(space), 3)), space, 3)

    def test_all_failed_history(self, make_strategy: StrategyFactory, space: SearchSpace, study: StudyConfig) -> None:
        """Every call so far failed: no completed call to fit, yet the campaign must go on."""
        strategy = make_strategy(space, study, 0)
        h = self.make_history(space, 0, failed=4)
        strategy.tell(h)
        x = np.asarray(strategy.ask(h, self.none(space), 3))
        _check_valid(x, space, 3)

    def test_leaves_global_random_state_alone(self, make_strategy: StrategyFactory, space: SearchSpace,
                                              study: StudyConfig) -> None:
        """Building, telling and asking never touch the caller's global torch or numpy streams (a seeded
        strategy seeds its own generators, or forks the global one and restores it)."""
        torch_state, np_state = _global_random_state()
        strategy = make_strategy(space, study, 0)
        h = self.make_history(space, 6)
        strategy.tell(h)
        strategy.ask(h, self.none(space), 2)
        _check_random_state_unchanged(torch_state, np_state)


def _global_random_state() -> tuple[Any, Any]:
    """The caller's global torch and numpy random states (torch is imported first, so a strategy that
    imports it later cannot hide a reseed behind its import)."""
    import torch

    return torch.get_rng_state(), np.random.get_state(legacy=True)


def _check_random_state_unchanged(torch_state: Any, np_state: Any) -> None:
    import torch

    assert torch.equal(torch.get_rng_state(), torch_state), "the global torch random state changed"
    after = np.random.get_state(legacy=True)
    assert isinstance(after, tuple) and isinstance(np_state, tuple)
    assert np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:], "the global numpy random state changed"


# -- executors ----------------------------------------------------------------------------------------
#: How long the sleeping simulator sleeps, and the ``execution.timeout`` that must cut it short: far apart,
#: so a loaded machine that sees a call start late still cancels it long before it would finish.
SLEEP_S, CALL_TIMEOUT_S = 30.0, 0.5
#: The longest the suite waits for calls that should finish at once (a backstop, not a measurement).
DRAIN_TIMEOUT_S = 120.0


def raising_simulator(params: dict[str, float], n: int, seed: int) -> np.ndarray:
    """A simulator that always raises (``optimizer.testing:raising_simulator``)."""
    raise RuntimeError("geometry overlap in volume 3")


def sleeping_simulator(params: dict[str, float], n: int, seed: int, delay_s: float = SLEEP_S) -> np.ndarray:
    """A simulator that sleeps ``delay_s`` then returns zeros (``optimizer.testing:sleeping_simulator``)."""
    time.sleep(delay_s)
    return np.zeros((n, 1))


def nan_simulator(params: dict[str, float], n: int, seed: int) -> np.ndarray:
    """A simulator that returns NaN samples (``optimizer.testing:nan_simulator``)."""
    return np.full((n, 1), np.nan)


class ExecutorConformance:
    """Fixture: ``make_executor`` (an :class:`ExecutorFactory`; close what it built at teardown).

    Set ``enforces_timeout = False`` for an executor documented not to enforce ``execution.timeout``.
    """

    enforces_timeout = True
    #: seconds the timeout check's simulator sleeps (a correct executor cancels it after ``CALL_TIMEOUT_S``)
    sleep_s = SLEEP_S

    def _build(self, make_executor: ExecutorFactory, name: str = "three_hump_camel",
               options: dict[str, Any] | None = None, **execution: Any) -> Executor:
        return make_executor(SimulatorSpec(name=name, samples_per_call=8, options=options or {}),
                             Execution(**execution))

    def _req(self, cid: int, x: float = 0.0, n: int = 8) -> CallRequest:
        return CallRequest(cid, 1, {"x1": x, "x2": 0.0}, n, cid)

    def _drain(self, executor: Executor) -> list[CallOutcome]:
        out: list[CallOutcome] = []
        end = time.monotonic() + DRAIN_TIMEOUT_S
        while executor.in_flight():
            assert time.monotonic() < end, f"calls still in flight after {DRAIN_TIMEOUT_S:g} s"
            out += executor.wait(timeout=DRAIN_TIMEOUT_S)
        return out

    def test_runs_and_returns_numpy(self, make_executor: ExecutorFactory) -> None:
        executor = self._build(make_executor)
        executor.submit(self._req(1, 0.5, 16))
        (out,) = self._drain(executor)
        assert out.call_id == 1 and out.status == "completed"
        assert isinstance(out.samples, np.ndarray) and out.samples.shape == (16, 1)
        assert out.started is not None and out.finished is not None and out.finished >= out.started

    def test_each_call_returns_once(self, make_executor: ExecutorFactory) -> None:
        executor = self._build(make_executor)
        for cid in range(1, 6):
            executor.submit(self._req(cid, cid / 10))
        outs = self._drain(executor)
        assert sorted(o.call_id for o in outs) == [1, 2, 3, 4, 5]
        assert executor.in_flight() == 0

    def test_same_seed_same_samples(self, make_executor: ExecutorFactory) -> None:
        executor = self._build(make_executor)
        executor.submit(self._req(3))
        (a,) = self._drain(executor)
        executor.submit(self._req(3))
        (b,) = self._drain(executor)
        np.testing.assert_array_equal(a.samples, b.samples)

    def test_capacity_and_in_flight(self, make_executor: ExecutorFactory) -> None:
        """``in_flight`` counts what was submitted and not yet handed back, call by call."""
        executor = self._build(make_executor)
        cap = executor.capacity
        assert isinstance(cap, int) and cap >= 1
        assert executor.in_flight() == 0 and executor.wait(timeout=0.1) == []
        for cid in range(1, cap + 1):
            executor.submit(self._req(cid, cid / 10))
        assert executor.in_flight() == cap
        got = executor.wait(timeout=DRAIN_TIMEOUT_S)
        assert 1 <= len(got) <= cap and executor.in_flight() == cap - len(got)
        got += self._drain(executor)
        assert sorted(o.call_id for o in got) == list(range(1, cap + 1)) and executor.in_flight() == 0

    def test_simulator_error_is_an_outcome(self, make_executor: ExecutorFactory) -> None:
        """A simulator that raises is a failed call (kind ``error``), never an exception out of ``wait``."""
        executor = self._build(make_executor, "optimizer.testing:raising_simulator")
        executor.submit(self._req(1))
        executor.submit(self._req(2))
        outs = self._drain(executor)
        assert sorted(o.call_id for o in outs) == [1, 2]
        for out in outs:
            assert out.status == "error" and out.samples is None
            assert out.error and "geometry overlap in volume 3" in out.error

    def test_invalid_output_is_an_outcome(self, make_executor: ExecutorFactory) -> None:
        executor = self._build(make_executor, "optimizer.testing:nan_simulator")
        executor.submit(self._req(1))
        (out,) = self._drain(executor)
        assert out.status == "invalid_output" and out.samples is None and out.error

    def test_timeout_is_an_outcome(self, make_executor: ExecutorFactory) -> None:
        """A call running past ``execution.timeout`` comes back as kind ``timeout``."""
        if not self.enforces_timeout:
            pytest.skip("this executor is documented not to enforce execution.timeout")
        executor = self._build(make_executor, "optimizer.testing:sleeping_simulator", {"delay_s": self.sleep_s},
                               timeout=CALL_TIMEOUT_S)
        executor.submit(self._req(1))
        (out,) = self._drain(executor)
        assert out.call_id == 1 and out.status == "timeout", f"got {out.status!r}"
        assert executor.in_flight() == 0


# -- storage ------------------------------------------------------------------------------------------
def _close(storage: Storage) -> None:
    close = getattr(storage, "close", None)
    if callable(close):
        close()


def _events(storage: Storage) -> list[dict[str, Any]]:
    try:
        return list(storage.events())
    except Exception as err:  # noqa: BLE001 - a storage that cannot read back what it wrote fails the check
        raise AssertionError(f"events() raised {type(err).__name__}: {err}") from err


class StorageConformance:
    """Fixture: ``make_storage`` (a :class:`StorageFactory`). Override :meth:`tear_last_write` to run the
    torn-write check."""

    def tear_last_write(self, root: Path) -> None:
        """Leave what a process killed in the middle of appending one more event leaves under ``root``."""
        pytest.skip("the suite does not know how this storage tears a write")

    def test_events_round_trip(self, make_storage: StorageFactory, tmp_path: Path) -> None:
        storage = make_storage(tmp_path)
        storage.append({"event": "a", "x": 1})
        storage.append({"event": "b", "y": [1.5, 2.5]})
        evs = _events(storage)
        assert [e["event"] for e in evs] == ["a", "b"]
        assert evs[0]["x"] == 1 and evs[1]["y"] == [1.5, 2.5]

    def test_reopen_keeps_events(self, make_storage: StorageFactory, tmp_path: Path) -> None:
        first = make_storage(tmp_path)
        first.append({"event": "a", "x": 1})
        first.append({"event": "b", "x": 2})
        _close(first)
        second = make_storage(tmp_path)
        assert [e["event"] for e in _events(second)] == ["a", "b"]
        second.append({"event": "c", "x": 3})
        _close(second)
        evs = _events(make_storage(tmp_path))
        assert [(e["event"], e["x"]) for e in evs] == [("a", 1), ("b", 2), ("c", 3)]

    def test_torn_last_write_is_ignored_then_cut(self, make_storage: StorageFactory, tmp_path: Path) -> None:
        """A crash mid-append: that event never happened, and the next append starts clean after it."""
        first = make_storage(tmp_path)
        first.append({"event": "a", "x": 1})
        first.append({"event": "b", "x": 2})
        _close(first)
        self.tear_last_write(tmp_path)
        second = make_storage(tmp_path)
        assert [e["event"] for e in _events(second)] == ["a", "b"]
        second.append({"event": "c", "x": 3})
        _close(second)
        for storage in (second, make_storage(tmp_path)):
            evs = _events(storage)
            assert [(e["event"], e["x"]) for e in evs] == [("a", 1), ("b", 2), ("c", 3)]

    def test_samples_round_trip(self, make_storage: StorageFactory, tmp_path: Path) -> None:
        """Samples come back bit for bit, dtype and shape included, also after reopening."""
        rng = np.random.default_rng(0)
        arrays: dict[int, np.ndarray] = {
            1: rng.standard_normal((10, 3)), 2: rng.standard_normal((7, 1)).astype(np.float32),
            3: np.array([[0.0, -0.0], [np.finfo(float).tiny, 1e308]])}
        storage = make_storage(tmp_path)
        refs = {cid: storage.save_samples(cid, x) for cid, x in arrays.items()}
        _close(storage)
        for reader in (storage, make_storage(tmp_path)):
            for cid, x in arrays.items():
                y = reader.load_samples(refs[cid])
                assert y.dtype == x.dtype and y.shape == x.shape
                assert y.tobytes() == x.tobytes()


# -- surrogates ---------------------------------------------------------------------------------------
#: Far-apart θ of the θ-dependence check and the truth's mean shift between them (``2·Δθ₁``).
THETA_LO, THETA_HI = 0.05, 0.95
#: A surrogate must reproduce at least this fraction of the true shift of the output distribution between
#: the two θ (measured over data seeds 0-7, MDN of 150 steps: 0.95-1.01; one that ignores θ: 0.01-0.03).
THETA_EFFECT_FRACTION = 0.5
#: A warm refit on the same data may worsen the held-out W1 by at most this factor plus the W1 noise floor
#: of the samples compared (measured over seeds 0-7, MDN of 150 + 50 steps: (after - floor)/before ≤ 0.49,
#: after/before 0.9-1.3; the same MDN refitted from fresh weights: (after - floor)/before 5.9-17).
WARM_REFIT_FACTOR, W1_NOISE_FLOOR = 2.0, 0.02


def theta_data(dim: int, k: int, N: int, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """``N`` calls of ``n`` samples: ``theta [N, dim]``, ``y [N, n, k]`` with column ``j`` ~
    N(2θ₁ + 10j, (0.1(1 + j))²): each column θ-dependent, with its own location and scale."""
    import torch

    g = torch.Generator().manual_seed(seed)
    theta = torch.rand(N, dim, generator=g)
    j = torch.arange(k, dtype=torch.float64)
    y = (2 * theta[:, :1].double() + 10 * j)[:, None, :] + 0.1 * (1 + j) * torch.randn(N, n, k, generator=g,
                                                                                        dtype=torch.float64)
    return theta, y


def true_samples(theta: Tensor, n: int, seed: int) -> Tensor:
    """``n`` draws of column 0 of :func:`theta_data`'s truth at each ``theta [M, dim]`` → ``[M, n, 1]``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return (2 * theta[:, :1].double())[:, None, :] + 0.1 * torch.randn(theta.shape[0], n, 1, generator=g,
                                                                       dtype=torch.float64)


def w1_1d(a: Tensor, b: Tensor) -> float:
    """Mean over points of the 1-D Wasserstein-1 distance between ``a [M, n, 1]`` and ``b [M, n, 1]``."""
    return float((a.sort(1).values.double() - b.sort(1).values.double()).abs().mean())


class SurrogateConformance:
    """Fixture: ``make_surrogate`` (a :class:`SurrogateFactory`). Every check builds and fits its own models."""

    N, n = 12, 64

    def _gen(self, seed: int) -> Any:
        import torch

        return torch.Generator().manual_seed(seed)

    @pytest.mark.parametrize("k", [1, 3])
    def test_fit_then_sample_shapes(self, make_surrogate: SurrogateFactory, k: int) -> None:
        import torch

        theta, y = theta_data(2, k, self.N, self.n, 0)
        surrogate = make_surrogate(2, k, 0)
        surrogate.fit(theta, y)
        out = surrogate.sample(torch.rand(5, 2, generator=self._gen(1)), 33, generator=self._gen(2))
        assert out.shape == (5, 33, k) and torch.isfinite(out).all() and not out.requires_grad
        # each column keeps its own location (10·j apart), not a copy of another's
        centre = out.reshape(-1, k).double().mean(0)
        assert torch.allclose(centre, 1.0 + 10 * torch.arange(k, dtype=torch.float64), atol=2.0), centre

    def test_theta_dependence(self, make_surrogate: SurrogateFactory) -> None:
        """Trained on data whose distribution moves with θ₁, the samples at far-apart θ₁ move too."""
        import torch

        theta, y = theta_data(2, 1, self.N, self.n, 0)
        surrogate = make_surrogate(2, 1, 0)
        surrogate.fit(theta, y)
        x = torch.tensor([[THETA_LO, 0.5], [THETA_HI, 0.5]])
        s = surrogate.sample(x, 400, generator=self._gen(3))
        shift = w1_1d(s[1:], s[:1])
        truth = 2 * (THETA_HI - THETA_LO)
        assert shift > THETA_EFFECT_FRACTION * truth, \
            f"samples at θ₁ = {THETA_LO} and {THETA_HI} are {shift:.3f} apart (W1); the data's are {truth:.2f}"

    def test_refit_warm_starts(self, make_surrogate: SurrogateFactory) -> None:
        """A refit starts from the fitted model: on the same data, it is no worse on held-out θ afterwards
        (a refit that starts from fresh weights and trains only a refit's budget is much worse)."""
        import torch

        theta, y = theta_data(2, 1, self.N, self.n, 0)
        held_out = torch.rand(16, 2, generator=self._gen(5))
        truth = true_samples(held_out, 200, 6)
        surrogate = make_surrogate(2, 1, 0)
        surrogate.fit(theta, y)
        before = w1_1d(surrogate.sample(held_out, 200, generator=self._gen(7)), truth)
        surrogate.fit(theta, y)
        after = w1_1d(surrogate.sample(held_out, 200, generator=self._gen(7)), truth)
        assert surrogate.fits == 2
        assert after <= WARM_REFIT_FACTOR * before + W1_NOISE_FLOOR, \
            f"held-out W1 {before:.3f} after the first fit, {after:.3f} after a refit on the same data"

    def test_generator_makes_samples_reproducible(self, make_surrogate: SurrogateFactory) -> None:
        import torch

        theta, y = theta_data(2, 1, self.N, self.n, 0)
        surrogate = make_surrogate(2, 1, 0)
        surrogate.fit(theta, y)
        x = torch.rand(4, 2, generator=self._gen(1))
        a = surrogate.sample(x, 16, generator=self._gen(3))
        assert torch.equal(a, surrogate.sample(x, 16, generator=self._gen(3)))

    def test_common_random_numbers(self, make_surrogate: SurrogateFactory) -> None:
        import torch

        theta, y = theta_data(2, 1, self.N, self.n, 0)
        surrogate = make_surrogate(2, 1, 0)
        surrogate.fit(theta, y)
        x = torch.tensor([[0.3, 0.3], [0.3, 0.3]])
        same = surrogate.sample(x, 50, generator=self._gen(1), common=True)
        assert torch.equal(same[0], same[1])
        indep = surrogate.sample(x, 50, generator=self._gen(1), common=False)
        assert not torch.equal(indep[0], indep[1])

    @pytest.mark.parametrize("k", [1, 3])
    def test_state_dict_round_trip(self, make_surrogate: SurrogateFactory, k: int) -> None:
        """The state is plain data and restores the model into a fresh instance; refitting the original
        afterwards leaves the restored one alone (nothing shared)."""
        import torch

        theta, y = theta_data(2, k, self.N, self.n, 0)
        original = make_surrogate(2, k, 0)
        original.fit(theta, y)
        x = torch.rand(3, 2, generator=self._gen(1))
        expected = original.sample(x, 8, generator=self._gen(0))
        restored = make_surrogate(2, k, 0)
        restored.load_state_dict(state_round_trip(original.state_dict()))
        assert torch.equal(restored.sample(x, 8, generator=self._gen(0)), expected)
        assert restored.fits == original.fits
        shared = make_surrogate(2, k, 0)
        shared.load_state_dict(original.state_dict())  # without the copy torch.save makes
        original.fit(theta[:6], y[:6] + 5)
        assert torch.equal(shared.sample(x, 8, generator=self._gen(0)), expected)

    def test_leaves_global_random_state_alone(self, make_surrogate: SurrogateFactory) -> None:
        """Building, fitting and sampling with a generator never touch the caller's torch or numpy streams."""
        theta, y = theta_data(2, 1, self.N, self.n, 0)
        torch_state, np_state = _global_random_state()
        surrogate = make_surrogate(2, 1, 0)
        surrogate.fit(theta, y)
        surrogate.sample(theta[:2], 4, generator=self._gen(0))
        _check_random_state_unchanged(torch_state, np_state)
