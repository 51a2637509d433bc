"""The Strategy protocol and the campaign history it proposes from.

A strategy works in the unit cube ``[0, 1]^d``. The campaign calls
:meth:`Strategy.tell` after each recorded result (model-based strategies refit
there) and :meth:`Strategy.ask` whenever workers are free, passing the points
still in flight as ``pending`` so a batch or an asynchronous proposal avoids them.
A strategy can be rebuilt from the journal alone: every input it needs is in
:class:`History`.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import qmc

from optimizer.space import SearchSpace
from optimizer.study import StudyConfig


@dataclass
class History:
    """Completed calls of a campaign, as arrays.

    Attributes:
        theta: ``[N, d]`` unit-cube points of completed calls (baselines included).
        call_ids: ``[N]`` call ids.
        objectives: ``[N, m]`` objective values as measured (not sign-flipped).
        objective_sems: ``[N, m]`` standard errors of the objective values (NaN: unknown).
        constraints: ``[N, c]`` constraint metric values.
        feasible: ``[N]`` whether each call met every constraint.
        objective_names, directions: the study's objectives, ``"minimize"``/``"maximize"``.
        failed_theta: ``[F, d]`` points whose calls failed or were infeasible.
        n_issued: call ids issued by the initial design and the strategy (baselines excluded), pending included.
        constraint_sems: ``[N, c]`` standard errors of the constraint values (NaN: unknown).
    """

    theta: np.ndarray
    call_ids: np.ndarray
    objectives: np.ndarray
    objective_sems: np.ndarray
    constraints: np.ndarray
    feasible: np.ndarray
    objective_names: list[str]
    directions: list[str]
    failed_theta: np.ndarray
    n_issued: int
    constraint_sems: np.ndarray | None = None
    _load: Callable[[int], np.ndarray] | None = field(default=None, repr=False)
    _cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.theta.shape[0])

    def samples(self, i: int) -> np.ndarray:
        """Samples ``[n_i, k]`` of the ``i``-th completed call (loaded from storage once)."""
        if i not in self._cache:
            if self._load is None:
                raise RuntimeError("this history holds no samples")
            self._cache[i] = self._load(i)
        return self._cache[i]

    def minimization_targets(self) -> np.ndarray:
        """``[N, m]`` objectives with maximised ones negated, so lower is better everywhere."""
        sign = np.array([1.0 if d == "minimize" else -1.0 for d in self.directions])
        return self.objectives * sign


class Strategy(ABC):
    """Proposes the next designs.

    Subclasses take their study options as keyword arguments in ``__init__``
    (after ``space``, ``study`` and ``seed``), and must give the same proposals
    for the same history, pending points and seed (campaigns resume from the journal).
    """

    #: Wait until every initial-design call has finished before the first ``ask`` (model-based strategies).
    needs_initial_results: bool = False
    #: whether :meth:`tell` should still run after each initial-design call. False where a fit is wasted
    #: until the strategy can propose (GP-BO refits from scratch); WU-GO's warm-started surrogate keeps
    #: the training those early fits give it.
    refit_during_initial_design: bool = True

    def __init__(self, space: SearchSpace, study: StudyConfig, seed: int) -> None:
        self.space, self.study, self.seed = space, study, seed

    def tell(self, history: History) -> None:
        """New results were recorded; refit models here."""

    def state_dict(self) -> dict[str, Any] | None:
        """Fitted state worth saving with the campaign (``None``: nothing to save)."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the next :meth:`tell` sees the same history it was fitted on."""

    @abstractmethod
    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        """Propose up to ``n`` new points.

        Args:
            history: every completed call so far.
            pending: ``[P, d]`` unit-cube points in flight.
            n: how many workers are free.

        Returns:
            ``[n', d]`` unit-cube points, ``n' <= n``; ``n' == 0`` means the strategy has nothing more to propose.
        """


def initial_design(method: str, n: int, dim: int, seed: int) -> np.ndarray:
    """``[n, dim]`` space-filling unit-cube points.

    ``olhs`` is scipy's orthogonal Latin hypercube (strength 2), as in the WU-GO code; it
    needs ``n = p²`` for a prime ``p`` with ``n > (dim - 1)²``.
    """
    if n == 0:
        return np.zeros((0, dim))
    if method == "sobol":
        return sobol_points(dim, seed, start=0, n=n)
    if method == "lhs":
        return qmc.LatinHypercube(dim, rng=seed).random(n)
    if method == "olhs":
        try:
            return qmc.LatinHypercube(dim, strength=2, rng=seed).random(n)
        except ValueError as err:
            raise ValueError(f"olhs with {n} points in {dim}-D: {err}") from None
    if method == "random":
        return np.random.default_rng(seed).random((n, dim))
    raise ValueError(f"unknown initial design '{method}'")


def sobol_points(dim: int, seed: int, start: int, n: int) -> np.ndarray:
    """Points ``start … start+n-1`` of the scrambled Sobol sequence seeded by ``seed``."""
    engine = qmc.Sobol(dim, scramble=True, rng=seed)
    if start:
        engine.fast_forward(start)
    with warnings.catch_warnings():
        # Balance warnings for n not a power of 2 do not apply to a sequence consumed incrementally.
        warnings.simplefilter("ignore", UserWarning)
        return engine.random(n)


class SobolStrategy(Strategy):
    """Continues the scrambled Sobol sequence of the initial design: a space-filling baseline."""

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        return sobol_points(self.space.dim, self.seed, history.n_issued, n)


class RandomStrategy(Strategy):
    """Independent uniform points (seeded by the call index, so resumes reproduce them)."""

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, history.n_issued])
        return rng.random((n, self.space.dim))


class ListedStrategy(Strategy):
    """Evaluates user-listed designs in order, then stops.

    Options:
        designs: list of ``{parameter: value}`` mappings.
    """

    def __init__(self, space: SearchSpace, study: StudyConfig, seed: int, designs: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(space, study, seed)
        if not designs:
            raise ValueError("strategy.options.designs: give at least one design")
        rows = []
        for i, d in enumerate(designs):
            if not isinstance(d, dict) or set(d) != set(space.names):
                raise ValueError(f"strategy.options.designs[{i}]: must set exactly the parameters {space.names}")
            for name, v in d.items():
                p = space.parameters[name]
                if not isinstance(v, (int, float)) or not p.low <= v <= p.high:
                    raise ValueError(f"strategy.options.designs[{i}].{name}: {v!r} is not in [{p.low:g}, {p.high:g}]")
            rows.append(space.to_unit(space.from_params(d)))
        self.designs = np.array(rows)
        self.offset = study.budget.initial_design

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        start = history.n_issued - self.offset
        return self.designs[start : start + n]
