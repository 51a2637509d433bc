"""Local generative-surrogate optimisation, after L-GSO (Shirobokov et al., NeurIPS 2020, arXiv 2002.04632).

The campaign moves one current design θ_k through the unit cube in rounds, trust-region style:

1. **Local designs.** A round proposes ``n_local`` designs: θ_k itself (when it has not been simulated) and
   scrambled-Sobol points in the box ``|θ - θ_k|∞ ≤ r``, each one the quantity constraints accept (an
   infeasible draw is pulled back along its segment to θ_k, which is feasible). They are handed out one per
   free worker; points in flight are skipped, and when every design of the round is issued the strategy
   waits for the last results (nothing to propose).
2. **Local surrogate.** When every design of the round has a result, the conditional generative surrogate
   (detopt's MDN, warm-started from the previous round) is refitted on every completed call inside the box,
   earlier rounds' calls included (L-GSO's experience replay), on all their per-call output samples.
3. **Judge the step.** The objective statistic of the surrogate's output distribution, Ŝ(θ), is evaluated at
   θ_k and at the previous centre under this one model (common particles, no sampling noise): improvement
   keeps θ_k and grows ``r``; no improvement returns to the previous centre and shrinks ``r``. Below
   ``radius_min`` the search restarts at a fresh feasible Sobol point with ``radius_init``.
4. **Gradient step.** Ŝ(θ) is differentiable in θ through the MDN's mixture (means, scales, weights), so
   projected Adam minimises it (plus a quadratic penalty for outcome constraints) within the box of radius
   ``r`` around the kept centre; the result is rounded onto integer parameters' values and pulled back into
   the quantity constraints' feasible region. It becomes θ_{k+1}.

The rounds (centres, radii, designs) and the surrogate are saved in :meth:`state_dict`, so a resumed campaign
proposes what an uninterrupted one would. One objective only; quantity objectives are refused (no samples to
model), quantity constraints are exact through the feasibility oracle.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from optimizer.fallbacks import SurrogateFitWarning
from optimizer.metrics import read_columns
from optimizer.space import SearchSpace
from optimizer.strategies.base import (EmptyFeasibleRegion, History, OptionError, Strategy, check_options,
                                       options_model, sobol_points)
from optimizer.strategies.mixture import PARTICLES, mixture_statistic
from optimizer.study import Metric, StudyConfig, minimisation_sign

if TYPE_CHECKING:
    from surrogates.mdn import MDN

#: Two unit-cube points closer than this in every coordinate are the same design (a recorded point has made
#: a round trip through physical units: float round-off only). CMA-ES's tolerance.
MATCH_TOL = 1e-7
#: Sobol candidates drawn per design wanted, before a round settles for fewer (integer lattices can collapse them).
DRAWS_PER_DESIGN = 8
#: Bisection steps pulling an infeasible point back towards its (feasible) centre: 2⁻²⁰ of the segment.
PROJECTION_STEPS = 20
#: Rounds completed within one tell before the strategy stops and proposes what it has (a guard against a
#: design space so small that every round collapses onto simulated points).
MAX_ROUNDS_PER_TELL = 50
#: A round's local fit uses the completed calls within this many radii of its centre (L∞): its own box, as L-GSO's
#: experience replay. In development runs on the noisy 10-D sphere (60 calls, 3 seeds) twice the box blurred
#: the local trend (median 1.15 against 0.67 for the chosen settings); not tuned further.
NEIGHBOURHOOD = 1.0
#: The surrogate's θ-noise while fitting a round, as a fraction of its radius: a dozen designs in a 10-D box leave
#: a network free to bend between them; noise at the box's scale makes Ŝ smooth there, so its gradient is the
#: local trend rather than the last call's noise (chosen in the same development runs, not tuned further).
THETA_NOISE_FRACTION = 0.3
#: The surrogate's options unless the study overrides them: WU-GO's warm-refit budget (a round adds only a
#: few calls to a model already fitted nearby).
SURROGATE_DEFAULTS: dict[str, Any] = {"refit_steps": 250}


class LocalRoundWarning(UserWarning):
    """A round could not produce its designs or its step as asked (too few feasible or distinct points)."""


@dataclass
class Round:
    """One round: its centre θ_k ``[d]``, radius, the centre it stepped from (``None`` after a start or a
    restart: nothing to judge against), its designs ``[N, d]`` and the restarts so far."""

    centre: np.ndarray
    radius: float
    previous: np.ndarray | None
    designs: np.ndarray
    restarts: int = 0

    def to_state(self) -> dict[str, Any]:
        """The round as tensors and numbers (``torch.save``-able with ``weights_only=True``)."""
        return {"centre": torch.as_tensor(self.centre), "radius": self.radius, "restarts": self.restarts,
                "previous": None if self.previous is None else torch.as_tensor(self.previous),
                "designs": torch.as_tensor(self.designs)}

    @classmethod
    def from_state(cls, s: Mapping[str, Any]) -> Round:
        """The inverse of :meth:`to_state`."""
        prev = s["previous"]
        return cls(s["centre"].numpy(), float(s["radius"]), None if prev is None else prev.numpy(),
                   s["designs"].numpy(), int(s["restarts"]))


def _matches(x: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """``[len(x)]`` bool: which rows of ``x [a, d]`` equal (within MATCH_TOL) a row of ``pool [b, d]``."""
    if len(x) == 0 or len(pool) == 0:
        return np.zeros(len(x), dtype=bool)
    return np.any(np.all(np.abs(x[:, None, :] - pool[None, :, :]) < MATCH_TOL, axis=-1), axis=1)


class LGSOStrategy(Strategy):
    """Options, with the reason for each default:

    * ``n_local``: designs per round, max(6, ⌈d/2⌉). L-GSO used 15 in 10-D and 20 in 100-D with thousands of
      samples each; half the dimension keeps ≥ 7 rounds in 75 strategy calls at d = 20, and 6 is the fewest that
      shows the surrogate a spread of designs in 2-D.
    * ``radius_init`` 0.2: half-width of the box in the unit cube, L-GSO's ε for its Rosenbrock and hump problems.
    * ``radius_max`` 0.4: a box of side 0.8, TuRBO's initial trust region. ``radius_min`` 0.2·0.5⁴: four
      unanswered halvings from the start mean the local trend is lost in the noise; restart.
    * ``grow`` 1.5, ``shrink`` 0.5: a round costs ``n_local`` calls, so one judged success already grows the box
      (TuRBO needs three single-call successes), and a failure halves it as TuRBO does.
    * ``line_search`` 8: step lengths tried along the gradient, 1/8 … 1 of the radius (surrogate evaluations
      only, each a fraction of a millisecond).
    * ``penalty`` 100: weight of the squared outcome-constraint violations in units of their observed spread, so
      a violation of 0.1 spread costs as much as one spread of the objective.
    * ``surrogate_options``: the MDN's options (default: MDN's, with WU-GO's 250 warm-refit steps).
    """

    needs_initial_results = True
    #: The first round starts from the whole initial design: a fit on part of it would be thrown away.
    refit_during_initial_design = False
    option_bounds = {"n_local": {"ge": 2}, "radius_init": {"gt": 0, "le": 0.5}, "radius_min": {"gt": 0},
                     "radius_max": {"gt": 0, "le": 0.5}, "grow": {"ge": 1}, "shrink": {"gt": 0, "lt": 1},
                     "line_search": {"ge": 1}, "penalty": {"ge": 0}}

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Types and ranges of every option and of the MDN's ``surrogate_options``.

        Raises:
            OptionError: naming ``strategy.options.<key>``.
        """
        from surrogates.mdn import MDN

        super().check_options(options)
        check_options(options_model(MDN.__init__, ("dim", "k", "seed")), options.get("surrogate_options") or {},
                      "strategy.options.surrogate_options")

    def __init__(self, space: SearchSpace, study: StudyConfig, seed: int, n_local: int | None = None,
                 radius_init: float = 0.2, radius_min: float = 0.2 * 0.5**4, radius_max: float = 0.4,
                 grow: float = 1.5, shrink: float = 0.5, line_search: int = 8, penalty: float = 100.0,
                 surrogate_options: dict[str, Any] | None = None) -> None:
        super().__init__(space, study, seed)
        if len(study.objectives) != 1:
            raise ValueError(f"strategy.name: 'lgso' optimises one objective, the study has {len(study.objectives)} "
                             f"({', '.join(study.objectives)}); use 'gp' or 'wugo' for several")
        (self.objective, self.metric), = study.objectives.items()
        if self.metric.statistic == "quantity":
            raise ValueError(f"strategy.name: 'lgso' needs an objective computed from samples; "
                             f"objectives.{self.objective} is the quantity '{self.metric.quantity}'")
        if not 0 < radius_min < radius_init <= radius_max:
            raise OptionError("strategy.options", "need 0 < radius_min < radius_init <= radius_max")
        self.n_local = int(n_local if n_local is not None else max(6, math.ceil(space.dim / 2)))
        self.radius_init, self.radius_min, self.radius_max = radius_init, radius_min, radius_max
        self.grow, self.shrink, self.line_search, self.penalty = grow, shrink, int(line_search), penalty
        self.surrogate_options = {**SURROGATE_DEFAULTS, **(surrogate_options or {})}
        self.sign = minimisation_sign(self.metric.direction)
        # outcome constraints are modelled; quantity constraints are exact (the feasibility oracle)
        self.modelled = {n: c for n, c in study.constraints.items() if c.statistic != "quantity"}
        self._mcols = [j for j, c in enumerate(study.constraints.values()) if c.statistic != "quantity"]
        self.rounds: list[Round] = []
        self.surrogate: MDN | None = None
        self.outputs: list[str] | None = None  # names of the modelled columns
        self._columns: list[int] = []  # their indices among a call's stored columns
        self._n_columns = 0
        self._scales: dict[str, float] = {}
        self._samples: dict[int, Tensor] = {}
        self._eps: Tensor | None = None

    # -- the surrogate and the differentiable statistic ---------------------------------------------
    def _outputs(self, n_columns: int) -> list[str]:
        """The modelled outputs of a call's ``n_columns`` stored columns: those the objective and the outcome
        constraints read (:func:`~optimizer.metrics.read_columns`; a shield returns eight, one objective reads one
        or two, and a full-covariance mixture over all eight costs several times the fit)."""
        if self.outputs is None:
            from optimizer.executors import simulator_args

            try:  # the driver hands over its simulator; outside a campaign, build one
                sim = self.simulator if self.simulator is not None else simulator_args(self.study.simulator).build()
                names = list(sim.outputs)
            except Exception:  # noqa: BLE001 - a study-less test history: outputs by position
                names = [f"y{i}" for i in range(n_columns)]
            self._columns = read_columns([self.metric, *self.modelled.values()], names)
            self._n_columns = n_columns
            self.outputs = [names[i] for i in self._columns]
        elif not self._columns:  # names set by the caller: they name every stored column
            self._columns, self._n_columns = list(range(n_columns)), n_columns
        return self.outputs

    def _new_surrogate(self, k: int) -> MDN:
        from surrogates.mdn import MDN

        return MDN(self.space.dim, k, seed=self.seed, **self.surrogate_options)

    def _particles(self, k: int) -> Tensor:
        if self._eps is None or self._eps.shape[1] != k:
            self._eps = torch.randn(PARTICLES, k, generator=torch.Generator().manual_seed(self.seed),
                                    dtype=torch.float64)
        return self._eps

    def statistic(self, metric: Metric, theta: Tensor) -> Tensor:
        """The surrogate's value of ``metric`` at ``theta [M, d]`` → ``[M]``, differentiable in θ
        (:func:`~optimizer.strategies.mixture.mixture_statistic` over this strategy's common particles)."""
        assert self.surrogate is not None and self.outputs is not None, "tell() the history first"
        return mixture_statistic(self.surrogate, metric, theta, self.outputs, self._particles(self.surrogate.k),
                                 self.study.simulator.samples_per_call)

    def merit(self, theta: Tensor) -> Tensor:
        """What the step minimises at ``theta [M, d]`` → ``[M]``: the objective's statistic in units of its observed
        spread (lower is better), plus ``penalty`` × the squared standardised violations of outcome constraints."""
        out = self.sign * self.statistic(self.metric, theta) / self._scales.get(self.objective, 1.0)
        for name, c in self.modelled.items():
            v = self.statistic(c, theta) / self._scales.get(name, 1.0)
            viol = torch.zeros_like(v)
            if c.upper is not None:
                viol = viol + (v - c.upper / self._scales.get(name, 1.0)).clamp_min(0)
            if c.lower is not None:
                viol = viol + (c.lower / self._scales.get(name, 1.0) - v).clamp_min(0)
            out = out + self.penalty * viol**2
        return out

    def _merit_np(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.merit(torch.as_tensor(np.atleast_2d(x), dtype=torch.float64)).numpy()

    def _fit(self, history: History, rows: np.ndarray, key: int, radius: float | None = None) -> bool:
        """Fit (warm) on the completed calls ``rows`` of ``history``; False (with a warning) when it cannot."""
        from optimizer.strategies.wugo import _nan_state, _spread, stack_common

        if self.outputs is None or not self._columns:  # the first fit: which columns a call stores
            self._outputs(np.shape(history.samples(int(rows[0])))[1])
        for i in rows:
            cid = int(history.call_ids[i])
            if cid not in self._samples:
                self._samples[cid] = torch.as_tensor(np.asarray(history.samples(int(i))),
                                                     dtype=torch.float64)[:, self._columns]
        k = len(self._columns)
        if self.surrogate is None:
            self.surrogate = self._new_surrogate(k)
        before = copy.deepcopy(self.surrogate.state_dict()) if self.surrogate.fits else None
        if radius is not None and THETA_NOISE_FRACTION > 0:
            self.surrogate.theta_noise = THETA_NOISE_FRACTION * radius
        data = stack_common([self._samples[int(history.call_ids[i])] for i in rows],
                            torch.Generator().manual_seed(self.seed * 7919 + key))
        try:
            self.surrogate.fit(torch.as_tensor(history.theta[rows], dtype=torch.float32), data)
            bad = _nan_state(self.surrogate.state_dict())
            if bad:
                raise FloatingPointError(f"NaN in {bad} after the fit")
        except Exception as err:  # noqa: BLE001 - a surrogate that cannot fit must not end the campaign
            warnings.warn(f"lgso: the local surrogate could not be fitted on {len(rows)} calls ({type(err).__name__}: "
                          f"{str(err).splitlines()[0][:160] if str(err) else ''}); this round counts as a failure",
                          SurrogateFitWarning, stacklevel=3)
            if before is not None:
                self.surrogate.load_state_dict(before)
            else:
                self.surrogate = None
            return False
        self._scales = {self.objective: _spread(history.objectives[rows, 0])}
        for name, j in zip(self.modelled, self._mcols):
            self._scales[name] = _spread(history.constraints[rows, j])
        return True

    # -- geometry -----------------------------------------------------------------------------------
    def _snap(self, x: np.ndarray) -> np.ndarray:
        """Unit points ``[..., d]`` as the campaign records them (integer parameters on their values)."""
        return self.space.to_unit(self.space.from_unit(np.clip(x, 0.0, 1.0)))

    def _pull_back(self, centre: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The point furthest along centre → x that the quantity constraints accept (centre: feasible)."""
        lo, hi = 0.0, 1.0
        best = centre
        for _ in range(PROJECTION_STEPS):
            t = (lo + hi) / 2
            y = self._snap(centre + t * (x - centre))
            if bool(np.asarray(self.feasible(y[None]))[0]):
                lo, best = t, y
            else:
                hi = t
        return best

    def _designs(self, centre: np.ndarray, radius: float, key: int, history: History, include_centre: bool) -> np.ndarray:
        """``[≤ n_local, d]`` distinct feasible designs of one round, never a simulated point."""
        d = self.space.dim
        taken = np.vstack([history.theta, history.failed_theta]).reshape(-1, d)
        chosen: list[np.ndarray] = []
        centre_ok = bool(np.asarray(self.feasible(centre[None]))[0])
        if include_centre and centre_ok and not _matches(centre[None], taken)[0]:
            chosen.append(centre)
        lb, ub = np.clip(centre - radius, 0, 1), np.clip(centre + radius, 0, 1)
        seed = int(np.random.SeedSequence([self.seed, key, 11]).generate_state(1)[0] >> 1)
        cand = self._snap(lb + (ub - lb) * sobol_points(d, seed, 0, DRAWS_PER_DESIGN * self.n_local))
        ok = np.asarray(self.feasible(cand), dtype=bool)
        for x, good in zip(cand, ok):
            if len(chosen) >= self.n_local:
                break
            if not good:
                if not centre_ok:
                    continue
                x = self._pull_back(centre, x)
            pool = np.vstack([taken, *chosen]) if chosen else taken
            if not _matches(x[None], pool)[0]:
                chosen.append(x)
        if len(chosen) < self.n_local:
            warnings.warn(f"lgso: only {len(chosen)} of {self.n_local} local designs are feasible and new around "
                          f"the current design (radius {radius:.3g})", LocalRoundWarning, stacklevel=3)
        return np.array(chosen).reshape(-1, d)

    def _step(self, base: np.ndarray, radius: float) -> np.ndarray:
        """A normalised gradient step from ``base``: along −∇Ŝ scaled so that its largest coordinate moves ``radius``
        (so ``|θ − base|∞ ≤ radius``), with the length chosen on the surrogate among ``line_search`` fractions of it;
        snapped onto integer values and pulled back into the quantity constraints' feasible region."""
        theta = torch.as_tensor(base, dtype=torch.float64)[None].clone().requires_grad_(True)
        self.merit(theta)[0].backward()
        g = theta.grad[0].numpy() if theta.grad is not None else np.zeros_like(base)
        scale = float(np.max(np.abs(g)))
        if not np.isfinite(scale) or scale == 0:  # a flat surrogate: no direction to go
            return base.copy()
        ts = np.arange(1, self.line_search + 1) / self.line_search
        ray = np.clip(base[None] - ts[:, None] * radius * g[None] / scale, 0.0, 1.0)  # [T, d]
        x = self._snap(ray[int(np.argmin(self._merit_np(ray)))])
        if not bool(np.asarray(self.feasible(x[None]))[0]) and bool(np.asarray(self.feasible(base[None]))[0]):
            x = self._pull_back(base, x)
        return x

    def _restart_point(self, restarts: int) -> np.ndarray:
        """A fresh feasible Sobol point for restart number ``restarts`` (beyond the points any initial design used)."""
        return self.feasible_sobol(self.study.budget.calls + restarts, 1)[0]

    # -- rounds -------------------------------------------------------------------------------------
    def _start(self, history: History) -> None:
        """Round 0: the surrogate fitted on every completed call; its best evaluated design is the first centre."""
        rows = np.arange(len(history))
        if self._fit(history, rows, key=0):
            ok = history.feasible & np.asarray(self.feasible(history.theta), dtype=bool)
            ok = ok if ok.any() else np.asarray(self.feasible(history.theta), dtype=bool)
            score = np.where(ok, self._merit_np(history.theta), np.inf)
            centre = history.theta[int(np.argmin(score))] if np.isfinite(score).any() else self._restart_point(0)
        else:
            y = self.sign * history.objectives[:, 0]
            centre = history.theta[int(np.argmin(np.where(history.feasible, y, np.inf)))]
        centre = np.asarray(centre, dtype=float)
        self.rounds.append(Round(centre, self.radius_init, None, self._designs(centre, self.radius_init, 0, history, True)))

    def _finish(self, rnd: Round, history: History) -> None:
        """Every design of ``rnd`` has a result: refit locally, judge the last step, step again (a new round)."""
        k = len(self.rounds)
        inside = np.all(np.abs(history.theta - rnd.centre) <= NEIGHBOURHOOD * rnd.radius + MATCH_TOL, axis=1) | \
            _matches(history.theta, rnd.designs)
        rows = np.flatnonzero(inside)
        fitted = len(rows) >= 2 and self._fit(history, rows, key=k, radius=rnd.radius)
        radius, previous, restarts = rnd.radius, rnd.previous, rnd.restarts
        # candidates for the next base: the centre and the round's simulated designs that met every outcome
        # constraint, judged by the surrogate (not by their noisy observed values)
        done = _matches(history.theta, np.vstack([rnd.centre, rnd.designs]))
        cands = history.theta[done & history.feasible]
        improved = False
        base = previous if previous is not None else rnd.centre
        if fitted and len(cands):
            m = self._merit_np(cands)
            best = int(np.argmin(m))
            if previous is None or m[best] < float(self._merit_np(previous)[0]):
                improved, base = True, cands[best]
        if improved:
            if previous is not None:
                radius = min(radius * self.grow, self.radius_max)
        else:
            radius = radius * self.shrink
        if radius < self.radius_min or self.surrogate is None:
            restarts += 1
            centre = self._restart_point(restarts)
            self.rounds.append(Round(centre, self.radius_init, None,
                                     self._designs(centre, self.radius_init, k, history, True), restarts))
            return
        centre = self._step(base, radius)
        self.rounds.append(Round(centre, radius, base, self._designs(centre, radius, k, history, True), restarts))

    def _states(self, rnd: Round, history: History, pending: np.ndarray) -> list[str]:
        done = _matches(rnd.designs, np.vstack([history.theta, history.failed_theta]).reshape(-1, self.space.dim))
        flying = _matches(rnd.designs, pending)
        return ["done" if a else "pending" if b else "new" for a, b in zip(done, flying)]

    def _advance(self, history: History) -> None:
        with torch.random.fork_rng(devices=[]):  # the caller's global torch stream is left untouched
            if not self.rounds:
                self._start(history)
            for _ in range(MAX_ROUNDS_PER_TELL):
                rnd = self.rounds[-1]
                if any(s != "done" for s in self._states(rnd, history, np.zeros((0, self.space.dim)))):
                    return
                self._finish(rnd, history)

    def _initial_done(self, history: History) -> bool:
        first = len(self.study.baselines) + self.study.budget.initial_design
        return len(history) > 0 and len(history) + len(history.failed_theta) >= first

    def incumbent(self) -> np.ndarray | None:
        """``[d]``: the centre the latest step left from (the design the surrogate judged best in that round; after a
        restart, the one before it), else the first round's centre; ``None`` before the first round."""
        for rnd in reversed(self.rounds):
            if rnd.previous is not None:
                return rnd.previous.copy()
        return self.rounds[0].centre.copy() if self.rounds else None

    # -- Strategy protocol --------------------------------------------------------------------------
    def tell(self, history: History) -> None:
        if self.rounds or self._initial_done(history):
            self._advance(history)

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        d = self.space.dim
        if len(history) == 0:  # every call so far failed: keep exploring space-filling until one completes
            return self.feasible_sobol(history.n_issued, n)
        self._advance(history)
        rnd = self.rounds[-1]
        states = self._states(rnd, history, pending)
        new = rnd.designs[[s == "new" for s in states]]
        if len(new) == 0 and "pending" not in states:  # the round guard stopped on collapsed rounds
            try:
                return self.feasible_sobol(history.n_issued, n)
            except EmptyFeasibleRegion:
                return np.zeros((0, d))
        return new[:n].reshape(-1, d)

    def state_dict(self) -> dict[str, Any] | None:
        if not self.rounds:
            return None
        return {"rounds": [r.to_state() for r in self.rounds], "scales": dict(self._scales),
                "surrogate": None if self.surrogate is None else self.surrogate.state_dict(),
                "k": None if self.surrogate is None else self.surrogate.k,
                "n_columns": self._n_columns, "outputs": list(self.outputs or [])}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the rounds and the local surrogate saved by :meth:`state_dict`.

        Raises:
            ValueError: the saved surrogate models other output columns than this study reads (nothing is
                restored: the strategy starts again from the journal).
        """
        if state["surrogate"] is not None:
            k = int(state["k"])
            outputs = self._outputs(int(state.get("n_columns", k)))
            # a state saved before the column selection modelled every column: good only if those were all read
            if ("outputs" in state and list(state["outputs"]) != outputs) or ("outputs" not in state and k != len(outputs)):
                self.outputs = None
                raise ValueError(f"saved lgso state models {k} output columns, not this study's {outputs}")
        self.rounds = [Round.from_state(s) for s in state["rounds"]]
        self._scales = {str(k): float(v) for k, v in state["scales"].items()}
        if state["surrogate"] is not None:
            self.surrogate = self._new_surrogate(int(state["k"]))
            self.surrogate.load_state_dict(state["surrogate"])


__all__: Sequence[str] = ["LGSOStrategy", "LocalRoundWarning", "Round"]
