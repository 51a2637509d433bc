"""Parameter importances for many-parameter studies, from a GP's automatic-relevance lengthscales.

Per objective a GP (BoTorch ``SingleTaskGP``, one lengthscale per parameter on the unit cube, the
objective standardised) is fitted on the completed feasible calls; a parameter's importance is
1/ℓ normalised to sum to 1 over the parameters. A short lengthscale means the objective changes
quickly along that parameter. With fewer calls than parameters the ranking is indicative only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from optimizer.storage import CallRecord
from optimizer.study import StudyConfig

#: Studies with at least this many parameters get the figure (1–2-D studies have the surrogate's landscape).
MIN_PARAMETERS = 3
#: Completed feasible calls needed before a GP's lengthscales mean anything.
MIN_CALLS = 5
#: Parameters drawn, most important first (the rest are summed into one bar).
MAX_BARS = 20


@dataclass
class Importances:
    """``values[objective]``: ``[d]`` importances (sum 1) in the study's parameter order; ``calls``: the fit's size."""

    parameters: list[str]
    values: dict[str, np.ndarray]
    calls: int


def parameter_importances(study: StudyConfig, records: dict[int, CallRecord]) -> Importances | None:
    """``None`` for studies with fewer than :data:`MIN_PARAMETERS` parameters or :data:`MIN_CALLS` calls."""
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    from optimizer.space import SearchSpace
    from optimizer.strategies.gp import _quiet_known_warnings

    names = list(study.parameters)
    done = [r for _, r in sorted(records.items()) if r.status == "completed" and r.feasible]
    if len(names) < MIN_PARAMETERS or len(done) < MIN_CALLS:
        return None
    space = SearchSpace(study.parameters)
    X = torch.as_tensor(np.array([space.to_unit(space.from_params(r.params)) for r in done]), dtype=torch.float64)
    out: dict[str, np.ndarray] = {}
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(study.seed)
        _quiet_known_warnings()
        for name in study.objectives:
            y = torch.as_tensor([[r.metrics[name]] for r in done], dtype=torch.float64)
            if float(y.std()) == 0.0:  # a constant objective: no parameter matters
                out[name] = np.full(len(names), 1.0 / len(names))
                continue
            gp = SingleTaskGP(X, y, outcome_transform=Standardize(1))
            fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
            kernel = getattr(gp.covar_module, "base_kernel", gp.covar_module)  # ScaleKernel(RBF) or RBF
            inv = 1.0 / kernel.lengthscale.detach().reshape(-1).numpy()
            out[name] = inv / inv.sum()
    return Importances(names, out, len(done))
