"""A classic neural surrogate of the *mean statistic only*: a deep ensemble of small MLPs with
expected improvement, the DE baseline of the WU-GO paper.

It sees one number per call (the objective's statistic, as GP-BO does) and never the samples, so set
beside WU-GO in ``bench/distribution_family.py`` it measures what modelling the whole output
distribution adds over modelling one statistic with a flexible network. Lakshminarayanan et al.,
NeurIPS 2017: members differ by initialisation and a bootstrap of the calls; the ensemble's spread
is the epistemic uncertainty, the calls' standard errors the aleatoric part.

Proposals maximise EI over fresh Sobol candidates refined locally around the best (perturbations
reflected at the bounds, so nothing piles up on them); chosen and pending points are kept apart by a
local penalty of EI within a radius of each.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.stats import norm

from optimizer.space import SearchSpace
from optimizer.strategies.base import History, Strategy, sobol_points
from optimizer.study import StudyConfig

#: Members, hidden width and Adam steps: 5 members is where deep-ensemble uncertainty stops improving
#: much (Lakshminarayanan et al.); 64 hidden units and 400 full-batch steps fit ≤ 400 calls in well under a second.
MEMBERS = 5
HIDDEN = 64
STEPS = 400
LEARNING_RATE = 5e-3
WEIGHT_DECAY = 1e-4
#: Acquisition search: Sobol candidates, then perturbations of the best ones at shrinking radii.
CANDIDATES = 2048
TOP = 8
RADII = (0.1, 0.03, 0.01)
PERTURBATIONS = 64
#: Radius (unit cube, times √d) within which a chosen or pending point suppresses EI: keeps a batch apart.
PENALTY_RADIUS = 0.05
#: Floor of the ensemble's spread in EI: members that agree exactly would make EI 0/0.
MIN_SPREAD = 1e-9
#: Sobol seed offset between the points of one ask: a prime above any budget in calls, so point ``j`` of one ask
#: never reuses the candidates of a later ask (whose offset is its own issued count).
POINT_SEED_STRIDE = 7919
#: Decimals of the targets compared to decide that a history is the one already fitted (round-off is not news).
FIT_KEY_DECIMALS = 12


def _reflect(u: np.ndarray) -> np.ndarray:
    """Fold points back into [0, 1] at the bounds."""
    return 1.0 - np.abs(1.0 - np.mod(np.abs(u), 2.0))


class DeepEnsembleStrategy(Strategy):
    """Options: ``objective`` (default: the first), ``members``, ``steps``, ``xi`` (EI margin, in
    standardised units)."""

    needs_initial_results = True

    def __init__(self, space: SearchSpace, study: StudyConfig, seed: int, objective: str | None = None,
                 members: int = MEMBERS, steps: int = STEPS, xi: float = 0.0) -> None:
        super().__init__(space, study, seed)
        name = objective or next(iter(study.objectives))
        if name not in study.objectives:
            raise ValueError(f"strategy.options.objective: '{name}' is not an objective of the study")
        if not (isinstance(members, int) and members >= 2):
            raise ValueError("strategy.options.members: an integer of at least 2")
        if not (isinstance(steps, int) and steps >= 1):
            raise ValueError("strategy.options.steps: a positive integer")
        if not (isinstance(xi, (int, float)) and math.isfinite(xi) and xi >= 0):
            raise ValueError("strategy.options.xi: a finite number ≥ 0")
        self.index = list(study.objectives).index(name)
        self.members, self.steps, self.xi = members, steps, float(xi)
        self._nets: list[torch.nn.Module] = []
        self._fitted_on: tuple[Any, ...] = ()
        self._scale = (0.0, 1.0)

    # -- model ------------------------------------------------------------------------------
    def _targets(self, history: History) -> tuple[np.ndarray, np.ndarray]:
        """``[N]`` minimisation targets (infeasible calls pushed above the worst feasible) and their s.e."""
        y = history.minimization_targets()[:, self.index].astype(float)
        if (~history.feasible).any() and history.feasible.any():
            worst = y[history.feasible].max()
            y = np.where(history.feasible, y, worst + np.abs(y - worst))
        se = np.nan_to_num(history.objective_sems[:, self.index].astype(float), nan=0.0)
        return y, se

    def tell(self, history: History) -> None:
        """Fit the ensemble on the standardised objective: each member an MLP on its own bootstrap resample.

        Needs two completed calls; refits only when the calls or their values changed. Seeded inside a forked
        torch stream, so the caller's global torch state is unchanged.
        """
        if len(history) < 2:
            return
        y, _ = self._targets(history)
        key = (tuple(int(c) for c in history.call_ids), tuple(np.round(y, FIT_KEY_DECIMALS)))
        if key == self._fitted_on:
            return
        mu, sd = float(y.mean()), float(y.std()) or 1.0
        self._scale = (mu, sd)
        x = torch.as_tensor(history.theta, dtype=torch.float32)
        t = torch.as_tensor((y - mu) / sd, dtype=torch.float32)
        n, d = x.shape
        self._nets = []
        # scoped seed: the caller's global torch random state is left as it was
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.SeedSequence([self.seed, n]).generate_state(1)[0] % 2**31))
            for _ in range(self.members):
                boot = torch.randint(0, n, (n,))
                net = torch.nn.Sequential(torch.nn.Linear(d, HIDDEN), torch.nn.SiLU(), torch.nn.Linear(HIDDEN, HIDDEN),
                                          torch.nn.SiLU(), torch.nn.Linear(HIDDEN, 1))
                opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
                for _ in range(self.steps):
                    opt.zero_grad()
                    loss = torch.mean((net(x[boot]).squeeze(-1) - t[boot]) ** 2)
                    loss.backward()
                    opt.step()
                self._nets.append(net.eval())
        self._fitted_on = key

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and standard deviation ``[C]`` of the standardised target at ``x [C, d]``."""
        with torch.no_grad():
            p = torch.stack([net(torch.as_tensor(x, dtype=torch.float32)).squeeze(-1) for net in self._nets])
        return p.mean(0).numpy().astype(float), p.std(0).numpy().astype(float)

    # -- acquisition ------------------------------------------------------------------------
    def _ei(self, x: np.ndarray, best: float, avoid: np.ndarray) -> np.ndarray:
        m, s = self.predict(x)
        s = np.maximum(s, MIN_SPREAD)
        z = (best - self.xi - m) / s
        ei = s * (z * norm.cdf(z) + norm.pdf(z))
        ei = np.where(self.feasible(x), ei, -np.inf)  # exact quantity constraints: never propose past them
        if len(avoid):
            r = PENALTY_RADIUS * math.sqrt(self.space.dim)
            dist = np.linalg.norm(x[:, None, :] - avoid[None], axis=-1).min(1)
            ei = ei * (1.0 - np.exp(-((dist / r) ** 2)))
        return ei

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        """``[n, d]`` points of high expected improvement under the ensemble's mean and spread, one at a time.

        Each is the best of Sobol candidates refined by local perturbations, with EI damped near evaluated,
        failed, pending and already chosen points; Sobol points until two calls have completed.
        """
        if len(history) < 2:  # too little to fit: keep filling space until two calls completed
            return self.feasible_sobol(history.n_issued, n)
        self.tell(history)
        y, _ = self._targets(history)
        # incumbent by the model at the evaluated designs (noise-robust), in standardised units
        best = float(self.predict(history.theta)[0].min())
        d = self.space.dim
        chosen: list[np.ndarray] = []
        rng = np.random.default_rng([self.seed, history.n_issued])
        for j in range(n):
            avoid = np.vstack([history.theta, history.failed_theta, pending.reshape(-1, d), *(c[None] for c in chosen)])
            cands = sobol_points(d, self.seed + 1 + history.n_issued + POINT_SEED_STRIDE * j, 0, CANDIDATES)
            score = self._ei(cands, best, avoid)
            centres = cands[np.argsort(-score)[:TOP]]
            cs = -np.sort(-score)[:TOP]
            for r in RADII:
                trial = _reflect(centres[:, None, :] + r * rng.standard_normal((TOP, PERTURBATIONS, d)))
                ts = self._ei(trial.reshape(-1, d), best, avoid).reshape(TOP, PERTURBATIONS)
                k = ts.argmax(1)
                better = ts[np.arange(TOP), k] > cs
                centres[better] = trial[np.arange(TOP), k][better]
                cs[better] = ts[np.arange(TOP), k][better]
            chosen.append(centres[int(np.argmax(cs))])
        return np.array(chosen).reshape(-1, d)
