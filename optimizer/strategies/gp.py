"""GP Bayesian optimisation with BoTorch on the per-call statistics.

The GP is fitted on aggregated per-call values, never on raw samples (which would not
scale): one point per call and outcome, with the statistic's standard error² as known
observation noise (``noise: known``, the default when every call has one; deterministic
quantities such as cost get a tiny floor) or a learned homoscedastic noise (``noise:
inferred``). Inputs live in the unit cube (log-scaled parameters are uniform there,
integer parameters are rounded when mapped out); outcomes are standardised.

* one objective: qLogNoisyExpectedImprovement (default), qLogExpectedImprovement or qUCB;
* several objectives: qLogNoisyExpectedHypervolumeImprovement, reference point from the
  study's ``objectives.*.reference`` or inferred from the observed front;
* outcome constraints are modelled as extra GP outputs and enter the acquisition as
  feasibility weights;
* calls in flight are passed as ``X_pending``;
* categorical parameters (``choices``): the model sees each as its choice's index under BoTorch's
  ``MixedSingleTaskGP`` (a categorical kernel: equal choices correlate, different ones by a learned
  amount, no order implied), and the acquisition is optimised by ``optimize_acqf_mixed_alternating``
  (L-BFGS on the ranges, local search over the choices). Subclasses working in the unit cube
  (TuRBO) set ``mixed_model = False`` and keep the bins every strategy sees.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

import numpy as np
import torch
from torch import Tensor

from optimizer.fallbacks import InferredNoiseWarning
from optimizer.space import SearchSpace
from optimizer.strategies.base import (
    MAX_FEASIBLE_SCAN, EmptyFeasibleRegion, History, OptionError, Strategy, all_feasible, sobol_points,
)
from optimizer.study import StudyConfig, maximisation_sign

if TYPE_CHECKING:
    from botorch.acquisition import AcquisitionFunction

ACQUISITIONS = ("qlognei", "qlogei", "ucb")
#: Floor of a known noise variance, as a fraction of the outcome's observed variance: keeps the kernel matrix
#: invertible when a statistic has zero standard error (a deterministic cost) while the GP still fits each
#: value to within 0.1 % of the outcome's spread.
NOISE_FLOOR_FRACTION = 1e-6
#: ... and an absolute floor of the variance it is a fraction of, for an outcome equal on every call.
MIN_OUTCOME_VARIANCE = 1e-12


class _AcqfOptions(TypedDict):
    """How each acquisition optimisation runs (the strategy options of the same names)."""

    num_restarts: int
    raw_samples: int
    maxiter: int
    mc_samples: int
    timeout_sec: float | None


def _first_outcome(Z: Tensor, X: Tensor | None = None) -> Tensor:
    """``Z [..., m]`` → ``[...]``: the single objective of a GP fitted on objectives then constraints."""
    return Z[..., 0]


def _at_most(col: int, upper: float) -> Callable[[Tensor], Tensor]:
    """A BoTorch outcome constraint ``Z[..., col] <= upper`` (feasible where the callable is ≤ 0)."""
    return lambda Z: Z[..., col] - upper


def _at_least(col: int, lower: float) -> Callable[[Tensor], Tensor]:
    """A BoTorch outcome constraint ``Z[..., col] >= lower``."""
    return lambda Z: lower - Z[..., col]


def _quiet_known_warnings() -> None:
    """Inside ``warnings.catch_warnings()``: silence only third-party warnings known to be harmless here.

    gpytorch's NumericalWarning says jitter was added to a Cholesky factor (routine with a known noise
    floor); BoTorch's InputDataWarning concerns inputs or outcomes we already normalise and standardise.
    BoTorch's optimisation warnings (OptimizationWarning, BadInitialCandidatesWarning) stay visible.
    """
    from botorch.exceptions.warnings import InputDataWarning
    from gpytorch.utils.warnings import NumericalWarning

    warnings.simplefilter("ignore", NumericalWarning)
    warnings.simplefilter("ignore", InputDataWarning)


class GPStrategy(Strategy):
    """Options: ``objectives`` (names to optimise; default: all), ``acquisition`` (qlognei | qlogei | ucb,
    single objective), ``beta`` (UCB), ``noise`` (known | inferred), ``num_restarts``, ``raw_samples``,
    ``maxiter``, ``mc_samples``, ``timeout_sec`` (per acquisition optimisation)."""

    needs_initial_results = True
    option_bounds = {"beta": {"ge": 0}, "num_restarts": {"ge": 1}, "raw_samples": {"ge": 1}, "maxiter": {"ge": 1},
                     "mc_samples": {"ge": 1}, "timeout_sec": {"gt": 0}, "objectives": {"min_length": 1}}
    refit_during_initial_design = False  # each fit starts from scratch: none is needed before ask
    #: Whether categorical parameters get a categorical kernel (inputs: choice indices), else their unit-cube bins.
    mixed_model: ClassVar[bool] = True

    def __init__(self, space: SearchSpace, study: StudyConfig, seed: int, objectives: Sequence[str] | None = None,
                 acquisition: str = "qlognei", beta: float = 2.0, noise: str = "known", num_restarts: int = 10,
                 raw_samples: int = 512, maxiter: int = 100, mc_samples: int = 256,
                 timeout_sec: float | None = 60.0) -> None:
        super().__init__(space, study, seed)
        if acquisition not in ACQUISITIONS:
            raise OptionError("strategy.options.acquisition", f"must be one of {', '.join(ACQUISITIONS)}, got {acquisition!r:.40}")
        if noise not in ("known", "inferred"):
            raise OptionError("strategy.options.noise", f"must be 'known' or 'inferred', got {noise!r:.40}")
        names = list(objectives or study.objectives)
        for name in names:
            if name not in study.objectives:
                raise OptionError("strategy.options.objectives", f"{name!r:.40} is not an objective of the study")
        if acquisition == "ucb" and (len(names) > 1 or study.constraints):
            raise OptionError("strategy.options.acquisition", "ucb supports one objective and no constraints")
        all_names = list(study.objectives)
        self.index = [all_names.index(n) for n in names]
        self.sign = np.array([maximisation_sign(study.objectives[n].direction) for n in names])
        self.reference = [study.objectives[n].reference for n in names]
        self.constraints = list(study.constraints.values())
        self.acquisition, self.beta, self.noise = acquisition, beta, noise
        self.opt = _AcqfOptions(num_restarts=num_restarts, raw_samples=raw_samples, maxiter=maxiter,
                                mc_samples=mc_samples, timeout_sec=timeout_sec)
        self._model: Any = None
        self._model_key: bytes | None = None
        self._warned_noise = False
        k = space.n_choices
        #: Coordinates the model treats as categorical (one choice only: a constant, left as it is).
        self.cat_dims = [j for j in range(space.dim) if self.mixed_model and k[j] >= 2]

    def encode(self, u: np.ndarray) -> np.ndarray:
        """Unit-cube ``u [..., d]`` → the model's inputs: categorical coordinates as choice indices ``0 … k-1``."""
        x = np.array(u, dtype=float)
        for j in self.cat_dims:
            k = self.space.n_choices[j]
            x[..., j] = np.minimum(np.floor(np.clip(x[..., j], 0, 1) * k), k - 1)
        return x

    def decode(self, x: np.ndarray) -> np.ndarray:
        """The model's inputs ``[..., d]`` → the unit cube (a choice at its bin's centre)."""
        u = np.array(x, dtype=float)
        for j in self.cat_dims:
            k = self.space.n_choices[j]
            u[..., j] = (np.clip(np.round(u[..., j]), 0, k - 1) + 0.5) / k
        return u.clip(0, 1)

    def model_bounds(self) -> Tensor:
        """``[2, d]`` bounds of the model's inputs."""
        hi = np.ones(self.space.dim)
        hi[self.cat_dims] = self.space.n_choices[self.cat_dims] - 1
        return torch.stack([torch.zeros(self.space.dim, dtype=torch.float64), torch.as_tensor(hi, dtype=torch.float64)])

    @property
    def m(self) -> int:
        return len(self.index)

    def outcomes(self, history: History) -> tuple[Tensor, Tensor | None]:
        """``Y [N, m + c]``: objectives (larger is better) then constraint values; ``Yvar`` likewise or ``None``."""
        Y = np.hstack([history.objectives[:, self.index] * self.sign, history.constraints])
        sems = np.hstack([history.objective_sems[:, self.index],
                          history.constraint_sems if history.constraint_sems is not None
                          else np.full(history.constraints.shape, np.nan)])
        if self.noise != "known":
            return torch.as_tensor(Y, dtype=torch.float64), None
        if not np.all(np.isfinite(sems)):
            if not self._warned_noise:
                metrics = [*(self.study.objectives[history.objective_names[i]] for i in self.index), *self.constraints]
                names = [*(history.objective_names[i] for i in self.index), *self.study.constraints]
                labels = [f"{n} ({m.statistic})" for n, m in zip(names, metrics)]
                bad = [lab for lab, ok in zip(labels, np.all(np.isfinite(sems), 0)) if not ok]
                warnings.warn(f"GP-BO: no standard error for {', '.join(bad)}; inferring a homoscedastic noise "
                              "instead of using known noise", InferredNoiseWarning, stacklevel=2)
                self._warned_noise = True
            return torch.as_tensor(Y, dtype=torch.float64), None
        # floor the noise: a zero-variance outcome (a deterministic cost) makes the kernel matrix singular
        floor = NOISE_FLOOR_FRACTION * np.maximum(Y.var(0), MIN_OUTCOME_VARIANCE)
        return torch.as_tensor(Y, dtype=torch.float64), torch.as_tensor(np.maximum(sems**2, floor), dtype=torch.float64)

    def tell(self, history: History) -> None:
        """Fit the GP on the completed calls (reused by the asks until the history changes); nothing to fit on none."""
        if len(history):
            self.model(history)

    def model(self, history: History) -> Any:
        """The GP fitted on ``history``, refitted only when the history changed.

        A campaign asks for one design per free worker; the fit is shared by those asks.
        """
        key = b"".join(np.ascontiguousarray(a).tobytes() for a in
                       (history.call_ids, history.theta, history.objectives, history.objective_sems,
                        history.constraints, history.feasible))
        if self._model is None or key != self._model_key:
            with torch.random.fork_rng(devices=[]):  # a seeded fit that leaves the caller's torch stream alone
                torch.manual_seed(int(np.random.SeedSequence([self.seed, len(history)]).generate_state(1)[0]))
                self._model, self._model_key = self.fit_model(history), key
        return self._model

    def fit_model(self, history: History) -> Any:
        """A fitted multi-output ``SingleTaskGP`` on X ``[N, d]`` and :meth:`outcomes`."""
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms import Normalize, Standardize
        from gpytorch.mlls import ExactMarginalLogLikelihood

        X = torch.as_tensor(self.encode(history.theta), dtype=torch.float64)
        Y, Yvar = self.outcomes(history)
        with warnings.catch_warnings():  # the model's construction warns too, so it is inside the guard
            _quiet_known_warnings()
            if self.cat_dims:
                from botorch.models import MixedSingleTaskGP

                cont = [j for j in range(X.shape[-1]) if j not in self.cat_dims]
                gp = MixedSingleTaskGP(X, Y, cat_dims=self.cat_dims, train_Yvar=Yvar,
                                       input_transform=Normalize(X.shape[-1], indices=cont) if cont else None,
                                       outcome_transform=Standardize(Y.shape[-1]))
            else:
                gp = SingleTaskGP(X, Y, train_Yvar=Yvar, input_transform=Normalize(X.shape[-1]),
                                  outcome_transform=Standardize(Y.shape[-1]))
            fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
        return gp

    def _constraint_fns(self) -> list[Callable[[Tensor], Tensor]]:
        """BoTorch outcome constraints: feasible where the callable is ≤ 0."""
        fns: list[Callable[[Tensor], Tensor]] = []
        for j, c in enumerate(self.constraints):
            col = self.m + j
            if c.upper is not None:
                fns.append(_at_most(col, c.upper))
            if c.lower is not None:
                fns.append(_at_least(col, c.lower))
        return fns

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        """``[n, d]`` points maximising the acquisition, with ``pending [p, d]`` as points already being evaluated.

        Seeded from the study seed and the calls issued, inside a forked torch stream: the caller's global
        torch random state is unchanged.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.SeedSequence([self.seed, history.n_issued]).generate_state(1)[0]))
            return self._ask(history, pending, n)

    def _ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        from botorch.acquisition import qUpperConfidenceBound
        from botorch.acquisition.logei import qLogExpectedImprovement, qLogNoisyExpectedImprovement
        from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
        from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
        from botorch.acquisition.objective import GenericMCObjective
        from botorch.optim import optimize_acqf
        from botorch.sampling import SobolQMCNormalSampler

        if len(history) == 0:  # every call so far failed: keep exploring space-filling until one completes
            return self.feasible_sobol(history.n_issued, n)
        gp = self.model(history)
        X = torch.as_tensor(self.encode(history.theta), dtype=torch.float64)
        X_pending = torch.as_tensor(self.encode(pending), dtype=torch.float64) if len(pending) else None
        sampler = SobolQMCNormalSampler(torch.Size([self.opt["mc_samples"]]), seed=self.seed + history.n_issued)
        with warnings.catch_warnings():  # building the acquisition evaluates the posterior too
            _quiet_known_warnings()
            cons = self._constraint_fns() or None
            acq: AcquisitionFunction
            if self.m > 1:
                Y, _ = self.outcomes(history)
                acq = qLogNoisyExpectedHypervolumeImprovement(
                    gp, ref_point=self.reference_point(Y[:, : self.m], history.feasible), X_baseline=X, sampler=sampler,
                    objective=IdentityMCMultiOutputObjective(outcomes=list(range(self.m))), constraints=cons,
                    X_pending=X_pending, prune_baseline=True,
                )
            elif self.acquisition == "ucb":
                acq = qUpperConfidenceBound(gp, beta=self.beta, sampler=sampler, X_pending=X_pending,
                                            objective=GenericMCObjective(_first_outcome))
            else:
                obj = GenericMCObjective(_first_outcome)
                if self.acquisition == "qlognei":
                    acq = qLogNoisyExpectedImprovement(gp, X_baseline=X, sampler=sampler, objective=obj,
                                                       constraints=cons, X_pending=X_pending)
                else:
                    y = history.objectives[:, self.index[0]] * self.sign[0]
                    ok = history.feasible if history.feasible.any() else np.ones(len(y), bool)
                    acq = qLogExpectedImprovement(gp, best_f=float(y[ok].max()), sampler=sampler, objective=obj,
                                                  constraints=cons, X_pending=X_pending)
            if self.cat_dims:
                from botorch.optim.optimize_mixed import optimize_acqf_mixed_alternating

                k = self.space.n_choices
                x, _ = optimize_acqf_mixed_alternating(
                    acq, bounds=self.model_bounds(), cat_dims={j: list(range(int(k[j]))) for j in self.cat_dims}, q=n,
                    num_restarts=self.opt["num_restarts"], raw_samples=self.opt["raw_samples"],
                    options={"maxiter_continuous": self.opt["maxiter"]})
            else:
                bounds = torch.stack([torch.zeros(self.space.dim), torch.ones(self.space.dim)]).double()
                x, _ = optimize_acqf(acq, bounds=bounds, q=n, num_restarts=self.opt["num_restarts"],
                                     raw_samples=self.opt["raw_samples"], options={"maxiter": self.opt["maxiter"]},
                                     timeout_sec=self.opt["timeout_sec"])
        out = self.decode(x.detach().numpy())
        if self.feasible is not all_feasible:
            out = self.make_feasible(acq, out, pending, history.n_issued)
        return out

    def make_feasible(self, acq: Any, x: np.ndarray, pending: np.ndarray, n_issued: int) -> np.ndarray:
        """Replace the rows of ``x [q, d]`` the quantity constraints reject by the best feasible raw candidate
        (Sobol points filtered by the oracle, scored one at a time with the kept rows as pending).

        A nonlinear constraint inside ``optimize_acqf`` is exact too but many times slower.
        """
        ok = np.asarray(self.feasible(x), dtype=bool)
        if ok.all():
            return x
        raw, R = np.zeros((0, self.space.dim)), int(self.opt["raw_samples"] or 512)
        for b in range(MAX_FEASIBLE_SCAN // R):
            cand = sobol_points(self.space.dim, self.seed + n_issued, b * R, R)
            raw = np.vstack([raw, cand[np.asarray(self.feasible(cand), dtype=bool)]])
            if len(raw) >= R:
                break
        if len(raw) == 0:
            raise EmptyFeasibleRegion("no raw candidate satisfies the quantity constraints")
        kept = [row for row, good in zip(x, ok) if good]
        out = []
        for row, good in zip(x, ok):
            if not good:
                P = self.encode(np.vstack([pending.reshape(-1, self.space.dim)] + [k[None] for k in kept]))
                acq.set_X_pending(torch.as_tensor(P, dtype=torch.float64) if len(P) else None)
                with torch.no_grad():
                    scores = acq(torch.as_tensor(self.encode(raw), dtype=torch.float64)[:, None, :])
                row = raw[int(torch.argmax(scores))]
                kept.append(row)
            out.append(row)
        return np.array(out)

    def reference_point(self, Y: Tensor, feasible: np.ndarray) -> Tensor:
        """Study references where given (maximisation sign), else inferred from the observed feasible front."""
        from botorch.utils.multi_objective.hypervolume import infer_reference_point
        from botorch.utils.multi_objective.pareto import is_non_dominated

        Yf = Y[torch.as_tensor(feasible)] if feasible.any() else Y
        inferred = infer_reference_point(Yf[is_non_dominated(Yf)])
        return torch.tensor([r * s if r is not None else float(i) for r, s, i in zip(self.reference, self.sign, inferred)],
                            dtype=torch.float64)
