"""The design a campaign reports as its result, chosen by a model rather than by the luckiest draw.

Under noise the best *observed* value is an optimistic draw: among many calls, the one whose
statistic came out lowest is, more often than not, a design whose noise happened to go its way.
Here a GP (BoTorch ``SingleTaskGP``, the calls' standard errors² as known noise, as in GP-BO) is
fitted on the completed feasible calls of one objective and the recommendation is the **evaluated
design with the best posterior mean**, quoted as posterior mean ± posterior std (of the latent
objective, observation noise excluded). With fewer than :data:`MIN_CALLS` calls, or when the fit
fails, it is the best observed call, with a :class:`RecommendationFallbackWarning`.

Confirmation calls (``origin == "confirm"``, see ``budget.confirm``) re-simulate the recommended
design; they are left out of the fit so the recommendation stays the design they confirm.

:func:`recommend_cached` keeps the answer in the campaign directory, keyed by a hash of exactly what
the fit reads, so ``optimize status`` on a finished campaign answers without importing torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.fallbacks import DetoptFallbackWarning
from optimizer.storage import CallRecord
from optimizer.study import ParamValue, StudyConfig, minimisation_sign

#: Fewer completed feasible calls than this and a GP's hyperparameters are not identified: report the best observed.
MIN_CALLS = 3
#: Seed of the fit's torch stream (a restart after a failed optimisation draws from it): the same
#: journal gives the same recommendation every time status or report reads it.
FIT_SEED = 0
#: Where :func:`recommend_cached` keeps its answers, inside the campaign directory (never the journal).
CACHE_DIR = "cache"
#: Bumped when what a recommendation contains or how it is computed changes: older cache files are ignored.
CACHE_VERSION = 1
MODEL_METHOD = "model-based: posterior mean at evaluated designs"
OBSERVED_METHOD = "best observed"


class RecommendationFallbackWarning(DetoptFallbackWarning):
    """The recommendation fell back to the best observed call (too few calls, or the GP fit failed)."""


class ConfirmSkippedWarning(DetoptFallbackWarning):
    """``budget.confirm`` was asked for but there is no feasible completed call to confirm."""


def confirm_label(call: int) -> str:
    """The label of a confirmation call of call ``call`` (how its confirmations are found again)."""
    return f"confirms call {call}"


@dataclass
class Recommendation:
    """The reported design of one objective.

    ``mean``/``std``: posterior mean and std at the design (model-based), or the observed value and its
    s.e. (fallback). ``observed``/``observed_sem``: the call's own statistic. ``confirmation``: the
    value, s.e., particles and call ids of the confirmation calls of this design, when there are any.
    """

    objective: str
    call: int
    params: dict[str, ParamValue]
    mean: float
    std: float
    observed: float
    observed_sem: float
    method: str
    reason: str | None = None
    confirmation: dict[str, Any] | None = None
    model: Any = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The recommendation as JSON-ready data (``status --json``, the cache): call, params, predicted and
        observed values, method. ``reason`` and ``confirmation`` are included only when set; the fitted model is left out.
        """
        out = {k: getattr(self, k) for k in ("call", "params", "mean", "std", "observed", "observed_sem", "method")}
        if self.reason:
            out["reason"] = self.reason
        if self.confirmation:
            out["confirmation"] = self.confirmation
        return out

    @classmethod
    def from_dict(cls, objective: str, d: dict[str, Any]) -> Recommendation:
        """The inverse of :meth:`as_dict` (``model`` is ``None``)."""
        return cls(objective, int(d["call"]), dict(d["params"]), float(d["mean"]), float(d["std"]),
                   float(d["observed"]), float(d["observed_sem"]), str(d["method"]), d.get("reason"),
                   d.get("confirmation"))


def fit_gp(X: np.ndarray, y: np.ndarray, sem: np.ndarray) -> Any:
    """A fitted one-output ``SingleTaskGP``.

    Args:
        X: ``[N, d]`` unit-cube designs.
        y: ``[N]`` observed statistics.
        sem: ``[N]`` their standard errors (NaN anywhere: the noise is inferred instead).
    """
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms import Normalize, Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    from optimizer.strategies.gp import MIN_OUTCOME_VARIANCE, NOISE_FLOOR_FRACTION, _quiet_known_warnings

    Xt = torch.as_tensor(X, dtype=torch.float64)
    Y = torch.as_tensor(y, dtype=torch.float64).reshape(-1, 1)
    Yvar = None
    if np.all(np.isfinite(sem)):
        # floor as in GP-BO: a zero-variance (deterministic) statistic makes the kernel matrix singular
        floor = NOISE_FLOOR_FRACTION * max(float(np.var(y)), MIN_OUTCOME_VARIANCE)
        Yvar = torch.as_tensor(np.maximum(np.asarray(sem, float) ** 2, floor), dtype=torch.float64).reshape(-1, 1)
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(FIT_SEED)
        _quiet_known_warnings()
        gp = SingleTaskGP(Xt, Y, train_Yvar=Yvar, input_transform=Normalize(Xt.shape[-1]),
                          outcome_transform=Standardize(1))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
    return gp


def _candidates(records: Iterable[CallRecord], name: str) -> list[CallRecord]:
    return [r for r in sorted(records, key=lambda r: r.call_id)
            if r.status == "completed" and r.feasible and r.origin != "confirm" and np.isfinite(r.metrics.get(name, np.nan))]


def _confirmation(records: Iterable[CallRecord], name: str, call: int) -> dict[str, Any] | None:
    """Pooled value ± s.e. of the completed confirmation calls of call ``call`` (inverse-variance weights)."""
    conf = [r for r in records if r.origin == "confirm" and r.status == "completed" and r.label == confirm_label(call)]
    if not conf:
        return None
    v = np.array([r.metrics[name] for r in conf])
    s = np.array([r.sems.get(name, np.nan) for r in conf])
    if not np.all(np.isfinite(s) & (s > 0)):
        value, sem = float(v.mean()), float("nan")
    else:
        w = 1 / s**2
        value, sem = float((w * v).sum() / w.sum()), float(1 / np.sqrt(w.sum()))
    return {"value": value, "sem": sem, "calls": [r.call_id for r in conf], "of_call": call,
            "particles": int(sum(r.n_samples for r in conf))}


def recommend(study: StudyConfig, records: Iterable[CallRecord], name: str | None = None) -> Recommendation | None:
    """The recommended design of objective ``name`` (default: the study's first), ``None`` with no feasible call.

    Warns:
        RecommendationFallbackWarning: fewer than :data:`MIN_CALLS` completed feasible calls, or the fit failed.
    """
    from optimizer.space import SearchSpace

    records = list(records)
    name = name or next(iter(study.objectives))
    recs = _candidates(records, name)
    if not recs:
        return None
    sign = minimisation_sign(study.objectives[name].direction)
    y = np.array([r.metrics[name] for r in recs])
    sem = np.array([r.sems.get(name, np.nan) for r in recs])
    reason: str | None = None
    if len(recs) < MIN_CALLS:
        reason = f"{len(recs)} completed feasible calls (a GP needs {MIN_CALLS})"
    else:
        space = SearchSpace(study.parameters)
        X = np.array([space.to_unit(space.from_params(r.params)) for r in recs])
        try:
            gp = fit_gp(X, y, sem)
            import torch

            with torch.no_grad():
                post = gp.posterior(torch.as_tensor(X, dtype=torch.float64))
                mean = post.mean[:, 0].numpy()
                std = post.variance[:, 0].clamp_min(0).sqrt().numpy()
        except Exception as err:  # noqa: BLE001 - any failure of the fit falls back, with a warning
            reason = f"the GP fit failed ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        else:
            if np.all(np.isfinite(mean)):
                i = int(np.argmin(sign * mean))
                r = recs[i]
                return Recommendation(name, r.call_id, r.params, float(mean[i]), float(std[i]), float(y[i]),
                                      float(sem[i]), MODEL_METHOD,
                                      confirmation=_confirmation(records, name, r.call_id), model=gp)
            reason = "the GP's posterior mean is not finite"
    warnings.warn(f"recommendation of {name}: best observed call instead of the model's ({reason})",
                  RecommendationFallbackWarning, stacklevel=2)
    i = int(np.argmin(sign * y))
    r = recs[i]
    return Recommendation(name, r.call_id, r.params, float(y[i]), float(sem[i]), float(y[i]), float(sem[i]),
                          OBSERVED_METHOD, reason=reason, confirmation=_confirmation(records, name, r.call_id))


def _cache_key(study: StudyConfig, records: list[CallRecord], name: str) -> str:
    """A hash of everything :func:`recommend` reads for objective ``name``."""
    used = [[r.call_id, r.origin, r.label, r.params, r.metrics.get(name), r.sems.get(name), r.n_samples]
            for r in sorted(records, key=lambda r: r.call_id)
            if r.status == "completed" and r.feasible and name in r.metrics]
    what = {"version": CACHE_VERSION, "objective": name, "direction": study.objectives[name].direction,
            "parameters": {k: p.model_dump() for k, p in study.parameters.items()}, "calls": used}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


def recommend_cached(study: StudyConfig, records: Iterable[CallRecord], root: str | Path,
                     name: str | None = None) -> Recommendation | None:
    """:func:`recommend`, answered from ``ROOT/cache`` when the calls it reads are unchanged.

    A miss computes and stores the answer (written atomically; a read-only directory is just not
    cached). A cached fallback warns again, as the computation would.
    """
    records = list(records)
    name = name or next(iter(study.objectives))
    key = _cache_key(study, records, name)
    path = Path(root) / CACHE_DIR / f"recommendation-{hashlib.sha256(name.encode()).hexdigest()[:12]}.json"
    try:
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            if cached["rec"] is None:
                return None
            hit = Recommendation.from_dict(name, cached["rec"])
            if hit.reason:
                warnings.warn(f"recommendation of {name}: best observed call instead of the model's ({hit.reason})",
                              RecommendationFallbackWarning, stacklevel=2)
            return hit
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # no cache, or an unreadable one: compute
    rec = recommend(study, records, name)
    try:
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": key, "rec": None if rec is None else rec.as_dict()}, allow_nan=True))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only campaign directory: answer without caching
    return rec
