"""Conformance suites every implementation of a detopt protocol must pass.

Subclass the suite in your tests and provide the fixture it names::

    class TestMySimulator(SimulatorConformance):
        @pytest.fixture
        def simulator(self):
            return MySimulator(...)

The suites need pytest (``pip install 'detopt[test]'``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from optimizer.executors.base import CallRequest, Executor
from optimizer.space import SearchSpace
from optimizer.storage import Storage
from optimizer.strategies.base import History, Strategy


def params_inside(sim: Any, rng: np.random.Generator, bounds: dict[str, tuple[float, float]] | None = None) -> dict[str, float]:
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


class StrategyConformance:
    """Fixtures: ``strategy`` (a :class:`Strategy`) and ``space`` (its :class:`SearchSpace`)."""

    @staticmethod
    def make_history(space: SearchSpace, n: int, n_issued: int | None = None, seed: int = 0) -> History:
        rng = np.random.default_rng(seed)
        theta = rng.random((n, space.dim))
        y = ((theta - 0.3) ** 2).sum(1, keepdims=True)
        samples = [y[i] + 0.01 * rng.standard_normal((50, 1)) for i in range(n)]
        return History(
            theta=theta, call_ids=np.arange(1, n + 1), objectives=y, objective_sems=np.full_like(y, 0.01 / np.sqrt(50)),
            constraints=np.zeros((n, 0)), feasible=np.ones(n, dtype=bool), objective_names=["f"],
            directions=["minimize"], failed_theta=np.zeros((0, space.dim)),
            n_issued=n if n_issued is None else n_issued, _load=lambda i: samples[i],
        )

    def test_proposals_in_unit_cube(self, strategy: Strategy, space: SearchSpace) -> None:
        h = self.make_history(space, 6)
        strategy.tell(h)
        x = np.asarray(strategy.ask(h, np.zeros((0, space.dim)), 3))
        assert x.ndim == 2 and x.shape[1] == space.dim and 1 <= x.shape[0] <= 3
        assert np.all((x >= 0) & (x <= 1)) and np.all(np.isfinite(x))

    def test_batch_is_distinct(self, strategy: Strategy, space: SearchSpace) -> None:
        h = self.make_history(space, 6)
        strategy.tell(h)
        x = np.asarray(strategy.ask(h, np.zeros((0, space.dim)), 4))
        if len(x) > 1:
            d = np.linalg.norm(x[:, None] - x[None], axis=-1) + np.eye(len(x))
            assert d.min() > 1e-9

    def test_deterministic(self, strategy: Strategy, space: SearchSpace) -> None:
        h = self.make_history(space, 6)
        strategy.tell(h)
        a = np.asarray(strategy.ask(h, np.zeros((0, space.dim)), 2))
        b = np.asarray(strategy.ask(h, np.zeros((0, space.dim)), 2))
        np.testing.assert_allclose(a, b)

    def test_accepts_pending(self, strategy: Strategy, space: SearchSpace) -> None:
        h = self.make_history(space, 6, n_issued=8)
        strategy.tell(h)
        pending = np.full((2, space.dim), 0.5)
        x = np.asarray(strategy.ask(h, pending, 2))
        assert x.shape[1] == space.dim
        assert not np.any(np.all(np.isclose(x[:, None], pending[None]), axis=-1))


class ExecutorConformance:
    """Fixture: ``executor`` built for the ``three_hump_camel`` simulator with capacity ≥ 1."""

    def _req(self, cid: int, x: float = 0.0, n: int = 8) -> CallRequest:
        return CallRequest(cid, 1, {"x1": x, "x2": 0.0}, n, cid)

    def _drain(self, executor: Executor) -> list[Any]:
        out = []
        while executor.in_flight():
            out += executor.wait(timeout=120)
        return out

    def test_runs_and_returns_numpy(self, executor: Executor) -> None:
        executor.submit(self._req(1, 0.5, 16))
        (out,) = self._drain(executor)
        assert out.call_id == 1 and out.status == "completed"
        assert isinstance(out.samples, np.ndarray) and out.samples.shape == (16, 1)
        assert out.started is not None and out.finished is not None and out.finished >= out.started

    def test_each_call_returns_once(self, executor: Executor) -> None:
        for cid in range(1, 6):
            executor.submit(self._req(cid, cid / 10))
        outs = self._drain(executor)
        assert sorted(o.call_id for o in outs) == [1, 2, 3, 4, 5]
        assert executor.in_flight() == 0

    def test_same_seed_same_samples(self, executor: Executor) -> None:
        executor.submit(self._req(3))
        (a,) = self._drain(executor)
        executor.submit(self._req(3))
        (b,) = self._drain(executor)
        np.testing.assert_array_equal(a.samples, b.samples)


class StorageConformance:
    """Fixture: ``storage`` (empty)."""

    def test_events_round_trip(self, storage: Storage) -> None:
        storage.append({"event": "a", "x": 1})
        storage.append({"event": "b", "y": [1.5, 2.5]})
        evs = list(storage.events())
        assert [e["event"] for e in evs] == ["a", "b"]
        assert evs[1]["y"] == [1.5, 2.5]

    def test_samples_round_trip(self, storage: Storage) -> None:
        x = np.random.default_rng(0).standard_normal((10, 3))
        ref = storage.save_samples(4, x)
        np.testing.assert_array_equal(storage.load_samples(ref), x)


class SurrogateConformance:
    """Fixture: ``surrogate`` built as ``cls(dim=2, k=1, seed=0, **small_options)``."""

    def _data(self, N: int = 12, n: int = 64) -> tuple[Any, Any]:
        import torch

        g = torch.Generator().manual_seed(0)
        theta = torch.rand(N, 2, generator=g)
        y = (theta.sum(1, keepdim=True)[:, None, :] + 0.1 * torch.randn(N, n, 1, generator=g)).double()
        return theta, y

    def test_fit_then_sample_shapes(self, surrogate: Any) -> None:
        import torch

        theta, y = self._data()
        surrogate.fit(theta, y)
        out = surrogate.sample(torch.rand(5, 2), 33)
        assert out.shape == (5, 33, 1) and torch.isfinite(out).all() and not out.requires_grad

    def test_refit_warm_starts(self, surrogate: Any) -> None:
        theta, y = self._data()
        surrogate.fit(theta, y)
        surrogate.fit(theta[:8], y[:8])
        assert surrogate.fits == 2

    def test_generator_makes_samples_reproducible(self, surrogate: Any) -> None:
        import torch

        theta, y = self._data()
        surrogate.fit(theta, y)
        x = torch.rand(4, 2)
        a = surrogate.sample(x, 16, generator=torch.Generator().manual_seed(3))
        b = surrogate.sample(x, 16, generator=torch.Generator().manual_seed(3))
        assert torch.equal(a, b)

    def test_common_random_numbers(self, surrogate: Any) -> None:
        import torch

        theta, y = self._data()
        surrogate.fit(theta, y)
        x = torch.tensor([[0.3, 0.3], [0.3, 0.3]])
        same = surrogate.sample(x, 50, generator=torch.Generator().manual_seed(1), common=True)
        assert torch.equal(same[0], same[1])
        indep = surrogate.sample(x, 50, generator=torch.Generator().manual_seed(1), common=False)
        assert not torch.equal(indep[0], indep[1])

    def test_state_dict_round_trip(self, surrogate: Any) -> None:
        import copy

        import torch

        theta, y = self._data()
        surrogate.fit(theta, y)
        clone = copy.deepcopy(surrogate)
        surrogate.fit(theta[:6], y[:6] + 5)
        surrogate.load_state_dict(clone.state_dict())
        x = torch.rand(3, 2)
        g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
        assert torch.equal(surrogate.sample(x, 8, generator=g()), clone.sample(x, 8, generator=g()))
