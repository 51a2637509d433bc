"""Trust-region GP Bayesian optimisation (TuRBO-1, Eriksson et al. 2019), made robust to noise.

A box around the incumbent, shaped by the GP's lengthscales, is the only region searched:

* the incumbent is the evaluated design with the best **posterior mean** (not the luckiest
  observation), so a noisy draw does not move the box;
* the box's side ``length`` doubles after ``success_tolerance`` consecutive improvements and
  halves after ``failure_tolerance`` consecutive non-improvements; when it falls below
  ``length_min`` it is reset to ``length_init`` (a restart around the model's incumbent);
* proposals are Thompson samples on Sobol candidates in the box, each candidate perturbing
  only a random subset of the incumbent's coordinates (probability ``min(1, 20/d)`` each);
* points in flight are fantasised (the GP conditioned on one posterior draw there), so a
  proposal moves away from them;
* only candidates the study's quantity constraints accept are scored.

The trust region is a pure function of the history: it is rebuilt by replaying the completed
calls in call order, so a resumed campaign proposes what an uninterrupted one would.
The GP (known noise from the per-call standard errors, outcome constraints as extra
outputs) is :class:`~optimizer.strategies.gp.GPStrategy`'s.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from optimizer.space import SearchSpace
from optimizer.strategies.base import History, sobol_points
from optimizer.strategies.gp import GPStrategy
from optimizer.study import StudyConfig

#: A new value improves on the best only by more than this fraction of |best| (TuRBO's 1e-3).
IMPROVEMENT_FRACTION = 1e-3
#: Perturb each coordinate with probability min(1, PERTURB_DIMS / d) (TuRBO's 20).
PERTURB_DIMS = 20.0
#: Sobol candidate batches scanned when the quantity constraints reject every candidate in the box.
MAX_CANDIDATE_BATCHES = 20
#: Key offset between those batches: a prime above any budget in calls, so batch ``b`` of one ask never
#: reuses the candidate stream of a later ask (whose key is its own issued count).
CANDIDATE_BATCH_STRIDE = 7919
#: Default Thompson-sampling candidates: 200 per dimension, between 2000 (enough to cover a small box) and 5000
#: (TuRBO's cap: one posterior draw over the candidates is an n_candidates² covariance).
CANDIDATES_PER_DIM, MIN_CANDIDATES, MAX_CANDIDATES = 200, 2000, 5000
#: Default failures before the trust region shrinks: TuRBO's max(4, d) for one point per ask.
MIN_FAILURE_TOLERANCE = 4


class TrustRegionFallback(UserWarning):
    """No candidate in the trust region satisfied the quantity constraints; a global feasible point was used."""


@dataclass
class TrustRegion:
    """State replayed from the history (see :meth:`TurboStrategy.trust_region`)."""

    length: float
    successes: int = 0
    failures: int = 0
    restarts: int = 0
    best: float = math.inf  # best observed minimisation target (only for success counting)


class TurboStrategy(GPStrategy):
    """Options: ``length_init`` (0.8), ``length_min`` (0.5⁷), ``length_max`` (1.6), ``success_tolerance``
    (3 consecutive improving calls), ``failure_tolerance`` (default max(4, d) non-improving calls),
    ``n_candidates`` (default min(5000, max(2000, 200·d))), ``noise`` (known | inferred)."""

    #: The trust region is a box of the unit cube shaped by lengthscales: a categorical parameter stays a coordinate
    #: of equal bins there (its box side covers neighbouring choices), not a categorical kernel.
    mixed_model: ClassVar[bool] = False

    def __init__(self, space: SearchSpace, study: StudyConfig, seed: int, noise: str = "known",
                 length_init: float = 0.8, length_min: float = 0.5**7, length_max: float = 1.6,
                 success_tolerance: int = 3, failure_tolerance: int | None = None,
                 n_candidates: int | None = None) -> None:
        if len(study.objectives) != 1:
            raise ValueError(f"strategy.name: 'turbo' optimises one objective, the study has {len(study.objectives)} "
                             f"({', '.join(study.objectives)}); use 'gp' for several")
        super().__init__(space, study, seed, noise=noise)
        # Quantity constraints are exact (the feasibility oracle filters candidates); only the others are modelled.
        self._modelled = [j for j, c in enumerate(study.constraints.values()) if c.statistic != "quantity"]
        self.constraints = [self.constraints[j] for j in self._modelled]
        if not 0 < length_min < length_init <= length_max:
            raise ValueError("strategy.options: need 0 < length_min < length_init <= length_max")
        d = space.dim
        self.length_init, self.length_min, self.length_max = length_init, length_min, length_max
        self.success_tolerance = int(success_tolerance)
        self.failure_tolerance = int(failure_tolerance if failure_tolerance is not None else max(MIN_FAILURE_TOLERANCE, d))
        self.n_candidates = int(n_candidates if n_candidates is not None else min(MAX_CANDIDATES, max(MIN_CANDIDATES, CANDIDATES_PER_DIM * d)))
        if self.success_tolerance < 1 or self.failure_tolerance < 1 or self.n_candidates < 1:
            raise ValueError("strategy.options: success_tolerance, failure_tolerance and n_candidates must be >= 1")

    def outcomes(self, history: History) -> tuple[Tensor, Tensor | None]:
        """As :meth:`GPStrategy.outcomes`, without the quantity constraints' columns."""
        cols = self._modelled
        sems = history.constraint_sems
        return super().outcomes(replace(history, constraints=history.constraints[:, cols],
                                        constraint_sems=None if sems is None else sems[:, cols]))

    def trust_region(self, history: History) -> TrustRegion:
        """Replay the completed calls in call order: calls of the baselines and the initial design set the
        best value; each later call is a success (improves by more than ``IMPROVEMENT_FRACTION``·|best|) or a failure.
        Calls that missed an outcome constraint count as failures."""
        first = len(self.study.baselines) + self.study.budget.initial_design
        y = history.minimization_targets()[:, self.index[0]] if len(history) else np.zeros(0)
        tr = TrustRegion(self.length_init)
        for i in np.argsort(history.call_ids, kind="stable"):
            yi = float(y[i]) if history.feasible[i] else math.inf
            if history.call_ids[i] > first:
                if yi < tr.best - IMPROVEMENT_FRACTION * abs(tr.best):
                    tr.successes, tr.failures = tr.successes + 1, 0
                else:
                    tr.successes, tr.failures = 0, tr.failures + 1
                if tr.successes == self.success_tolerance:
                    tr.length, tr.successes = min(2.0 * tr.length, self.length_max), 0
                elif tr.failures == self.failure_tolerance:
                    tr.length, tr.failures = tr.length / 2.0, 0
                if tr.length < self.length_min:
                    tr.length, tr.successes, tr.failures, tr.restarts = self.length_init, 0, 0, tr.restarts + 1
            tr.best = min(tr.best, yi)
        return tr

    def incumbent(self, gp: Any, history: History) -> np.ndarray:
        """``[d]``: the evaluated design with the best posterior mean of the objective (feasible calls first)."""
        X = torch.as_tensor(history.theta, dtype=torch.float64)
        with torch.no_grad():
            mean = gp.posterior(X).mean[:, 0].numpy()  # larger is better in the model's sign
        ok = history.feasible if history.feasible.any() else np.ones(len(history), dtype=bool)
        return history.theta[int(np.argmax(np.where(ok, mean, -np.inf)))]

    @staticmethod
    def lengthscales(gp: Any, d: int) -> np.ndarray:
        """``[d]`` ARD lengthscales of the objective's kernel (output 0 of a multi-output GP)."""
        kernel = gp.covar_module
        ls = getattr(kernel, "lengthscale", None)
        if ls is None:
            ls = kernel.base_kernel.lengthscale
        return ls.detach().reshape(-1, d)[0].numpy()

    def box(self, gp: Any, centre: np.ndarray, length: float) -> tuple[np.ndarray, np.ndarray]:
        """``(lower [d], upper [d])``: the trust region, side ``length`` scaled per dimension by the lengthscales
        (normalised to geometric mean 1, as in TuRBO), clipped to the unit cube."""
        w = self.lengthscales(gp, self.space.dim)
        w = w / w.mean()
        w = w / np.prod(w ** (1.0 / len(w)))
        return np.clip(centre - w * length / 2, 0, 1), np.clip(centre + w * length / 2, 0, 1)

    def candidates(self, centre: np.ndarray, lb: np.ndarray, ub: np.ndarray, key: int) -> np.ndarray:
        """``[n_candidates, d]`` Sobol points in the box, each perturbing a random subset of ``centre``'s coordinates."""
        d = self.space.dim
        rng = np.random.default_rng([self.seed, key, 1])
        pert = lb + (ub - lb) * sobol_points(d, int(rng.integers(2**31)), 0, self.n_candidates)
        mask = rng.random((self.n_candidates, d)) <= min(1.0, PERTURB_DIMS / d)
        none = ~mask.any(1)
        mask[none, rng.integers(d, size=int(none.sum()))] = True
        return np.where(mask, pert, centre)

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        """``[n, d]`` points by Thompson sampling in the trust region around the incumbent.

        Candidates perturb a few coordinates of the incumbent inside the lengthscale-scaled box; each of ``n``
        posterior draws (fantasised over ``pending``) picks its best candidate whose drawn constraints hold.
        """
        from botorch.sampling import SobolQMCNormalSampler

        if len(history) == 0:  # every call so far failed: keep exploring space-filling until one completes
            return self.feasible_sobol(history.n_issued, n)
        gp = self.model(history)
        tr = self.trust_region(history)
        centre = self.incumbent(gp, history)
        lb, ub = self.box(gp, centre, tr.length)
        X = np.zeros((0, self.space.dim))
        for b in range(MAX_CANDIDATE_BATCHES):
            cand = self.candidates(centre, lb, ub, history.n_issued + b * CANDIDATE_BATCH_STRIDE)
            X = np.vstack([X, cand[np.asarray(self.feasible(cand), dtype=bool)]])
            if len(X) >= min(self.n_candidates, 4 * n):
                break
        if len(X) < n:
            warnings.warn(f"only {len(X)} of {MAX_CANDIDATE_BATCHES * self.n_candidates} trust-region candidates satisfy "
                          "the quantity constraints; filling with feasible Sobol points", TrustRegionFallback, stacklevel=2)
            X = np.vstack([X, self.feasible_sobol(history.n_issued, n - len(X))])
        with torch.random.fork_rng(devices=[]):  # seeded Thompson draws; the caller's torch stream is left alone
            torch.manual_seed(int(np.random.SeedSequence([self.seed, history.n_issued, 2]).generate_state(1)[0]))
            model = gp
            if len(pending):
                sampler = SobolQMCNormalSampler(torch.Size([1]), seed=self.seed + history.n_issued)
                model = gp.fantasize(torch.as_tensor(pending, dtype=torch.float64), sampler=sampler)
            Xt = torch.as_tensor(X, dtype=torch.float64)
            with torch.no_grad():
                Z = model.posterior(Xt).rsample(torch.Size([n])).reshape(n, len(X), -1)  # [n, Ncand, m + c]
        return X[self.thompson_pick(Z)]

    def thompson_pick(self, Z: Tensor) -> list[int]:
        """Indices of ``n`` distinct candidates, one per posterior draw ``Z [n, Ncand, m + c]``: the best
        objective among candidates whose drawn constraint values hold (the least violation when none do)."""
        score = Z[..., 0].clone()
        violation = torch.zeros_like(score)
        for j, c in enumerate(self.constraints):
            v = Z[..., self.m + j]
            if c.upper is not None:
                violation += (v - c.upper).clamp(min=0)
            if c.lower is not None:
                violation += (c.lower - v).clamp(min=0)
        score = torch.where(violation > 0, -math.inf, score)
        picked: list[int] = []
        for k in range(Z.shape[0]):
            s, viol = score[k].clone(), violation[k].clone()
            if picked:
                s[picked], viol[picked] = -math.inf, math.inf
            picked.append(int(torch.argmax(s)) if torch.isfinite(s).any() else int(torch.argmin(viol)))
        return picked
