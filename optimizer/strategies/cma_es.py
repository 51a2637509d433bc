"""CMA-ES through the ``cmaes`` library (CMA, or CMA with margin when the space has integer or categorical parameters).

CMA-ES works in generations of ``popsize`` members; detopt asks asynchronously, one design per
free worker. The mapping:

* the current generation's members are proposed in order as workers free up;
* a generation is told when every member has a result; failed calls, calls that missed an
  outcome constraint and members the quantity constraints reject are told a penalty worse
  than every value of the generation (CMA-ES uses ranks only, so its size does not matter);
* members the quantity constraints reject are resampled up to ``MAX_RESAMPLES`` times, and a
  member still infeasible is told the penalty without being simulated;
* while the last members of a generation are in flight there is nothing to propose (the
  campaign waits for them);
* when the library says the run has converged (``should_stop``) a fresh run starts from the
  centre with the next seed.

The optimiser's state is a pure function of the history: every ask replays the completed calls
through a fresh optimiser with the study's seed, matching each generation's members to the
recorded designs, so a resumed campaign proposes what an uninterrupted one would.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer.space import SearchSpace
from optimizer.strategies.base import History, Strategy
from optimizer.study import StudyConfig

#: Times a member rejected by the quantity constraints is redrawn before it is told the penalty unsimulated.
MAX_RESAMPLES = 100
#: Consecutive generations with no member the quantity constraints accept before CMA-ES gives up on its
#: distribution and proposes feasible Sobol points (it is stuck in an infeasible region).
MAX_UNSIMULATED_GENERATIONS = 200
#: A recorded unit point is this generation member when they differ by less than this in every coordinate
#: (the campaign stores the point after a round trip through physical units: float round-off only).
MATCH_TOL = 1e-7


class InfeasibleDistribution(UserWarning):
    """CMA-ES drew no design the quantity constraints accept for many generations; Sobol points are proposed."""


@dataclass
class Member:
    """One member of a generation: ``raw`` is what the optimiser is told, ``unit`` what is simulated."""

    raw: np.ndarray
    unit: np.ndarray
    simulate: bool  # False: rejected by the quantity constraints, told the penalty without a call


class _Stuck(Exception):
    pass


class CMAESStrategy(Strategy):
    """Options: ``sigma0`` (initial step size in the unit cube, 0.3), ``popsize`` (default: the library's
    4 + ⌊3 ln d⌋)."""

    def __init__(self, space: SearchSpace, study: StudyConfig, seed: int, sigma0: float = 0.3,
                 popsize: int | None = None) -> None:
        super().__init__(space, study, seed)
        if len(study.objectives) != 1:
            raise ValueError(f"strategy.name: 'cmaes' optimises one objective, the study has {len(study.objectives)} "
                             f"({', '.join(study.objectives)}); use 'gp' for several")
        if not sigma0 > 0:
            raise ValueError("strategy.options.sigma0: must be > 0")
        if popsize is not None and popsize < 2:
            raise ValueError("strategy.options.popsize: must be >= 2")
        self.sigma0, self.popsize = float(sigma0), popsize
        # Integer parameters with ≥ 2 values live on a lattice (i + 0.5)/k of [0, 1] with step 1/k (CMA with margin),
        # and so do categorical ones with k ≥ 2 choices: their k bins are the same lattice, the index the choice's.
        d = space.dim
        self._k = np.zeros(d, dtype=int)
        self._int_low = np.zeros(d, dtype=int)
        for j, p in enumerate(space.parameters.values()):
            if p.choices is not None and len(p.choices) >= 2:
                self._k[j] = len(p.choices)
            elif p.integer:
                low, high = p.bounds()
                if math.floor(high) - math.ceil(low) >= 1:
                    self._int_low[j] = math.ceil(low)
                    self._k[j] = math.floor(high) - math.ceil(low) + 1
        self._discrete = self._k > 0
        self._oracle_memo: dict[bytes, bool] = {}

    # -- the optimiser and its coordinates ------------------------------------------------------
    def _optimizer(self, run: int) -> Any:
        from cmaes import CMA, CMAwM

        seed = int(np.random.SeedSequence([self.seed, run]).generate_state(1)[0] >> 1)
        mean = np.full(self.space.dim, 0.5)
        bounds = np.tile([0.0, 1.0], (self.space.dim, 1))
        if not self._discrete.any():
            return CMA(mean=mean, sigma=self.sigma0, bounds=bounds, seed=seed, population_size=self.popsize)
        k = np.where(self._discrete, self._k, 1)
        bounds[self._discrete, 0] = 0.5 / k[self._discrete]
        bounds[self._discrete, 1] = 1 - 0.5 / k[self._discrete]
        steps = np.where(self._discrete, 1.0 / k, 0.0)
        return CMAwM(mean=mean, sigma=self.sigma0, bounds=bounds, steps=steps, seed=seed, population_size=self.popsize)

    def _to_unit(self, x: np.ndarray) -> np.ndarray:
        """Optimiser coordinates ``[d]`` → the unit-cube point the campaign records (integers at their centres)."""
        u = np.clip(x, 0.0, 1.0)
        if not self._discrete.any():
            return u
        phys = self.space.from_unit(u)
        idx = np.clip(np.round(x * self._k - 0.5), 0, self._k - 1)
        phys = np.where(self._discrete, self._int_low + idx, phys)
        return self.space.to_unit(phys)

    def _accepts(self, u: np.ndarray) -> bool:
        key = u.tobytes()
        if key not in self._oracle_memo:
            self._oracle_memo[key] = bool(np.asarray(self.feasible(u[None]))[0])
        return self._oracle_memo[key]

    def _generation(self, opt: Any) -> list[Member]:
        members = []
        for _ in range(opt.population_size):
            for _ in range(MAX_RESAMPLES):
                out = opt.ask()
                enc, raw = out if isinstance(out, tuple) else (out, out)
                unit = self._to_unit(enc)
                if self._accepts(unit):
                    members.append(Member(raw, unit, True))
                    break
            else:
                members.append(Member(raw, unit, False))
        return members

    # -- replay ---------------------------------------------------------------------------------
    def current_generation(self, history: History, pending: np.ndarray) -> tuple[list[Member], list[str]]:
        """Replay the history; return the first generation not yet complete and each member's state
        (``"done"``, ``"pending"`` or ``"new"``)."""
        order = np.argsort(history.call_ids, kind="stable")
        theta = history.theta[order]
        y = history.minimization_targets()[order, 0] if len(history) else np.zeros(0)
        y = np.where(history.feasible[order], y, np.inf)  # missed an outcome constraint: penalised
        pools = [(theta, y, np.zeros(len(theta), bool)),
                 (history.failed_theta, np.full(len(history.failed_theta), np.inf), np.zeros(len(history.failed_theta), bool)),
                 (pending, np.full(len(pending), np.nan), np.zeros(len(pending), bool))]
        run, unsimulated = 0, 0
        opt = self._optimizer(run)
        while True:
            members = self._generation(opt)
            unsimulated = 0 if any(m.simulate for m in members) else unsimulated + 1
            if unsimulated >= MAX_UNSIMULATED_GENERATIONS:
                raise _Stuck
            values, states = [], []
            for m in members:
                if not m.simulate:
                    values.append(math.inf)
                    states.append("done")
                    continue
                for X, v, used in pools:
                    hit = np.flatnonzero(~used & np.all(np.abs(X - m.unit) < MATCH_TOL, axis=1)) if len(X) else np.zeros(0, int)
                    if len(hit):
                        used[hit[0]] = True
                        values.append(float(v[hit[0]]))
                        states.append("pending" if np.isnan(v[hit[0]]) else "done")
                        break
                else:
                    values.append(math.nan)
                    states.append("new")
            if any(s != "done" for s in states):
                return members, states
            finite = [v for v in values if np.isfinite(v)]
            worst = max(finite) if finite else 0.0
            penalty = worst + 1.0 + abs(worst)  # worse than every member; ranks are all CMA-ES uses
            opt.tell([(m.raw, v if np.isfinite(v) else penalty) for m, v in zip(members, values)])
            if opt.should_stop():
                run += 1
                opt = self._optimizer(run)

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        """Up to ``n`` members of the current generation not yet issued (replayed from the history, so resumes agree).

        Falls back to feasible Sobol points, with an :class:`InfeasibleDistribution` warning, when CMA-ES keeps drawing
        only designs the quantity constraints reject.
        """
        try:
            members, states = self.current_generation(history, pending)
        except _Stuck:
            warnings.warn(f"CMA-ES drew no feasible design in {MAX_UNSIMULATED_GENERATIONS} generations; proposing "
                          "feasible Sobol points", InfeasibleDistribution, stacklevel=2)
            return self.feasible_sobol(history.n_issued, n)
        new = [m.unit for m, s in zip(members, states) if s == "new"]
        return np.array(new[:n]).reshape(-1, self.space.dim)
