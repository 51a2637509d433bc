"""GP Bayesian optimisation with BoTorch on the per-call objective statistic.

The GP is fitted on aggregated per-call values, never on raw samples (which would not
scale): one point per call, with the statistic's standard error² as known observation
noise (``noise: known``, the default when every call has one) or a learned homoscedastic
noise (``noise: inferred``). Inputs live in the unit cube (log-scaled parameters are
uniform there; integer parameters are rounded when mapped out); outputs are standardised.
Calls in flight are passed to the acquisition as ``X_pending``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from optimizer.space import SearchSpace
from optimizer.strategies.base import History, Strategy
from optimizer.study import StudyConfig

ACQUISITIONS = ("qlognei", "qlogei", "ucb")


class GPStrategy(Strategy):
    """Options: ``acquisition`` (qlognei | qlogei | ucb), ``beta`` (UCB), ``objective`` (default: the
    first), ``noise`` (known | inferred), ``num_restarts``, ``raw_samples``, ``maxiter``,
    ``mc_samples``, ``timeout_sec`` (per acquisition optimisation)."""

    needs_initial_results = True

    def __init__(self, space: SearchSpace, study: StudyConfig, seed: int, acquisition: str = "qlognei",
                 beta: float = 2.0, objective: str | None = None, noise: str = "known", num_restarts: int = 10,
                 raw_samples: int = 512, maxiter: int = 100, mc_samples: int = 256, timeout_sec: float | None = 60.0) -> None:
        super().__init__(space, study, seed)
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"strategy.options.acquisition: must be one of {ACQUISITIONS}, got '{acquisition}'")
        if noise not in ("known", "inferred"):
            raise ValueError("strategy.options.noise: must be 'known' or 'inferred'")
        objective = objective or next(iter(study.objectives))
        if objective not in study.objectives:
            raise ValueError(f"strategy.options.objective: '{objective}' is not an objective of the study")
        self.index = list(study.objectives).index(objective)
        self.sign = 1.0 if study.objectives[objective].direction == "minimize" else -1.0
        self.acquisition, self.beta, self.noise = acquisition, beta, noise
        self.opt = dict(num_restarts=num_restarts, raw_samples=raw_samples, maxiter=maxiter,
                        mc_samples=mc_samples, timeout_sec=timeout_sec)

    def fit_model(self, history: History) -> Any:
        """A fitted ``SingleTaskGP`` on ``history``: X ``[N, d]``, Y ``[N, 1]`` (maximised: −f for minimisation)."""
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms import Normalize, Standardize
        from gpytorch.mlls import ExactMarginalLogLikelihood

        X = torch.as_tensor(history.theta, dtype=torch.float64)
        Y = torch.as_tensor(-self.sign * history.objectives[:, [self.index]], dtype=torch.float64)
        sem = history.objective_sems[:, [self.index]]
        known = self.noise == "known" and np.all(np.isfinite(sem))
        # floor the noise: a zero-variance point makes the kernel matrix singular
        Yvar = torch.as_tensor(np.maximum(sem**2, 1e-8 * max(float(np.var(Y.numpy())), 1e-12)), dtype=torch.float64) if known else None
        gp = SingleTaskGP(X, Y, train_Yvar=Yvar, input_transform=Normalize(X.shape[-1]), outcome_transform=Standardize(1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
        return gp

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        from botorch.acquisition import qUpperConfidenceBound
        from botorch.acquisition.logei import qLogExpectedImprovement, qLogNoisyExpectedImprovement
        from botorch.optim import optimize_acqf
        from botorch.sampling import SobolQMCNormalSampler

        if len(history) == 0:
            raise RuntimeError("the GP strategy needs at least one completed call")
        torch.manual_seed(int(np.random.SeedSequence([self.seed, history.n_issued]).generate_state(1)[0]))
        gp = self.fit_model(history)
        X = torch.as_tensor(history.theta, dtype=torch.float64)
        X_pending = torch.as_tensor(pending, dtype=torch.float64) if len(pending) else None
        sampler = SobolQMCNormalSampler(torch.Size([self.opt["mc_samples"]]), seed=self.seed + history.n_issued)
        if self.acquisition == "qlognei":
            acq = qLogNoisyExpectedImprovement(gp, X_baseline=X, sampler=sampler, X_pending=X_pending)
        elif self.acquisition == "qlogei":
            best = float((-self.sign * history.objectives[:, self.index]).max())
            acq = qLogExpectedImprovement(gp, best_f=best, sampler=sampler, X_pending=X_pending)
        else:
            acq = qUpperConfidenceBound(gp, beta=self.beta, sampler=sampler, X_pending=X_pending)
        bounds = torch.stack([torch.zeros(self.space.dim), torch.ones(self.space.dim)]).double()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x, _ = optimize_acqf(acq, bounds=bounds, q=n, num_restarts=self.opt["num_restarts"],
                                 raw_samples=self.opt["raw_samples"], options={"maxiter": self.opt["maxiter"]},
                                 timeout_sec=self.opt["timeout_sec"])
        return x.detach().numpy().clip(0, 1)
