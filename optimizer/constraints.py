"""Exact feasibility from the study's ``quantity`` constraints (mass, cost, length), known before simulating.

:func:`quantity_oracle` builds a :class:`~optimizer.strategies.base.FeasibilityOracle` over unit-cube
points; the campaign hands it to the strategy so no call is spent on a design that breaks one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optimizer.errors import StudyError
from optimizer.space import SearchSpace, active_params
from optimizer.strategies.base import MAX_FEASIBLE_SCAN, sobol_points
from optimizer.study import Constraint, StudyConfig
from simulators.base import InfeasibleDesign

_CHECK_CHUNK = 1024


class QuantityConstraints:
    """``__call__(u)``: ``u [b, d]`` unit-cube points → ``[b]`` bool, ``True`` where every quantity constraint holds.

    Each point is mapped to physical parameters exactly as the campaign does before a call (integers
    rounded), and ``sim.quantities_at`` is evaluated once per distinct point (memoised); a point whose
    ``quantities_at`` raises :class:`~simulators.base.InfeasibleDesign` meets none.
    """

    def __init__(self, space: SearchSpace, sim: Any, constraints: Mapping[str, Constraint]) -> None:
        self.space, self.sim = space, sim
        self.constraints = {n: c for n, c in constraints.items() if c.statistic == "quantity"}
        self._memo: dict[bytes, np.ndarray] = {}

    def __bool__(self) -> bool:
        return bool(self.constraints)

    def satisfied(self, u: np.ndarray) -> np.ndarray:
        """``[b, c]`` bool: which quantity constraint each point meets."""
        u = np.atleast_2d(np.asarray(u, dtype=float))
        out = np.ones((len(u), len(self.constraints)), dtype=bool)
        for i, row in enumerate(u):
            key = row.tobytes()
            if key not in self._memo:
                try:
                    q = self.sim.quantities_at(active_params(self.space.to_params(self.space.from_unit(row))))
                except InfeasibleDesign:  # a geometry that cannot be built meets no constraint
                    self._memo[key] = np.zeros(len(self.constraints), dtype=bool)
                    out[i] = self._memo[key]
                    continue
                self._memo[key] = np.array([
                    (c.lower is None or q[c.quantity] >= c.lower) and (c.upper is None or q[c.quantity] <= c.upper)
                    for c in self.constraints.values()
                ], dtype=bool)
            out[i] = self._memo[key]
        return out

    def __call__(self, u: np.ndarray) -> np.ndarray:
        return np.asarray(self.satisfied(u).all(axis=1), dtype=bool)


def quantity_oracle(study: StudyConfig, space: SearchSpace, sim: Any, source: str) -> QuantityConstraints | None:
    """The oracle of the study's quantity constraints, or ``None`` when it has none.

    Raises:
        StudyError: when none of ``MAX_FEASIBLE_SCAN`` Sobol points satisfies them, naming the constraint
            no point met (or all of them, when each alone can be met but not together).
    """
    oracle = QuantityConstraints(space, sim, study.constraints)
    if not oracle:
        return None
    met = np.zeros(len(oracle.constraints), dtype=int)
    for start in range(0, MAX_FEASIBLE_SCAN, _CHECK_CHUNK):
        ok = oracle.satisfied(sobol_points(space.dim, study.seed, start, _CHECK_CHUNK))
        if ok.all(axis=1).any():
            return oracle
        met += ok.sum(axis=0)
    names = list(oracle.constraints)
    never = [n for n, k in zip(names, met) if k == 0]
    field = f"constraints.{never[0]}" if never else "constraints"
    what = (f"no design satisfies it" if never else f"no design satisfies {', '.join(names)} together")
    raise StudyError(source, field, f"{what} (0 of {MAX_FEASIBLE_SCAN} Sobol points over the parameter box): "
                                    "the feasible region seems empty; check the bound and the parameter ranges")
