"""Re-optimise a new objective on a campaign's stored calls, without new simulator calls.

The generative surrogate G(z, θ) models the simulator's *outputs*, not one statistic of them, and every
call stores all of its output samples, so a campaign run for one objective (the mean background, say)
can answer for any other statistic of the same outputs (a 0.99 quantile, a rare-hit fraction, another
output's mean). This module recomputes the new objective on every stored call from its samples, fits
the WU-GO surrogate on the columns the new objective reads (or reuses the campaign's, where it models
exactly those: ``outputs: used`` models the columns of the study's own objectives), and returns

* the **recommendation**: the design that minimises the surrogate's statistic (exploitation, κ = 0),
  searched over Sobol candidates, every evaluated design, and local refinement around the best;
* the best **evaluated** design under the new objective, by the surrogate's statistic there (not by
  the noisy per-call value);
* the next **proposals** for a campaign that continues with the new objective (the WU-GO acquisition
  with the campaign's κ), to run with ``strategy: listed`` or a resumed campaign.

Nothing is written to the campaign directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer.errors import CampaignError
from optimizer.metrics import evaluate_metric
from optimizer.records import CampaignView
from optimizer.storage import CallRecord, Storage
from optimizer.study import Objective, ParamValue, StudyConfig, minimisation_sign

#: Candidates of the recommendation search (Sobol), and the local-refinement radii around its best ones
#: in the unit cube: coarse enough to leave a basin, fine enough to settle in a narrow valley.
RECOMMEND_CANDIDATES = 4096
RECOMMEND_RADII = (0.05, 0.015, 0.005)
RECOMMEND_CENTRES = 8
RECOMMEND_PERTURBATIONS = 64


@dataclass
class Retargeted:
    """What the stored calls say about a new objective.

    Attributes:
        objective: the new objective's name.
        recommended: design (physical units) minimising the surrogate's statistic, and its predicted value.
        best_evaluated: the evaluated design with the best surrogate statistic: call id, params, predicted
            value and the call's own (noisy) measured value.
        proposals: next designs (physical units) by the WU-GO acquisition.
        model: one line on which surrogate was used.
    """

    objective: str
    recommended: dict[str, Any]
    best_evaluated: dict[str, Any]
    proposals: list[dict[str, ParamValue]]
    model: str


def retarget_study(study: StudyConfig, name: str, objective: Objective) -> StudyConfig:
    """The campaign's study with its objectives replaced by ``name: objective`` (constraints kept)."""
    if objective.statistic == "quantity":
        raise CampaignError(f"--objective: '{name}' is a deterministic quantity; retargeting needs a statistic of the samples")
    return study.model_copy(update={"objectives": {name: objective}})


def recompute(study: StudyConfig, records: dict[int, CallRecord], storage: Storage, outputs: list[str]) -> dict[int, CallRecord]:
    """Copies of the completed calls with the study's objectives recomputed from their stored samples."""
    out: dict[int, CallRecord] = {}
    for cid, r in records.items():
        if r.status != "completed" or r.samples is None:
            continue
        samples = storage.load_samples(r.samples)
        metrics, sems = dict(r.metrics), dict(r.sems)
        for name, m in study.objectives.items():
            for col in (m.output, m.weight):
                if col is not None and col not in outputs:
                    raise CampaignError(f"--objective: '{col}' is not an output of the simulator (outputs: {', '.join(outputs)})")
            metrics[name], sems[name] = evaluate_metric(m, samples, outputs, r.quantities)
        out[cid] = CallRecord(**{**r.__dict__, "metrics": metrics, "sems": sems})
    return out


def retarget(campaign: CampaignView, name: str, objective: Objective, propose: int = 4) -> Retargeted:
    """Recommend and propose designs for ``name: objective`` from ``campaign``'s stored calls.

    Raises:
        CampaignError: fewer than two completed calls, an unknown output, or a quantity objective.
    """
    from optimizer.diagnostics import one_thread, report_model
    from optimizer.strategies.base import sobol_points

    base = campaign.study()
    study = retarget_study(base, name, objective)
    from optimizer.executors import simulator_args

    outputs = list(simulator_args(base.simulator).build().outputs)
    done = recompute(study, campaign.records(), campaign.storage, outputs)
    model = report_model(study, done, campaign.storage)
    if model is None:
        raise CampaignError(f"{campaign.root}: retargeting needs at least two completed calls with samples")
    strat, hist, space = model.strategy, model.history, model.space
    sign = minimisation_sign(objective.direction)
    with one_thread():
        pred_eval = strat.landscape(hist.theta)["mean"]
        i_eval = int(np.argmin(sign * pred_eval))
        cands = np.vstack([sobol_points(space.dim, study.seed + 7, 0, RECOMMEND_CANDIDATES), hist.theta])
        score = sign * strat.landscape(cands)["mean"]
        centres = cands[np.argsort(score)[:RECOMMEND_CENTRES]]
        cscore = np.sort(score)[:RECOMMEND_CENTRES]
        rng = np.random.default_rng(study.seed)
        for r in RECOMMEND_RADII:
            trial = centres[:, None, :] + r * rng.standard_normal((len(centres), RECOMMEND_PERTURBATIONS, space.dim))
            trial = _reflect(trial).reshape(-1, space.dim)
            ts = (sign * strat.landscape(trial)["mean"]).reshape(len(centres), RECOMMEND_PERTURBATIONS)
            j = ts.argmin(1)
            better = ts[np.arange(len(centres)), j] < cscore
            centres[better] = trial.reshape(len(centres), RECOMMEND_PERTURBATIONS, -1)[np.arange(len(centres)), j][better]
            cscore[better] = ts[np.arange(len(centres)), j][better]
        best = int(np.argmin(cscore))
        proposals = strat.ask(hist, np.zeros((0, space.dim)), propose) if propose > 0 else np.zeros((0, space.dim))
    params = lambda u: space.to_params(space.from_unit(np.asarray(u)))  # noqa: E731
    cid = int(hist.call_ids[i_eval])
    return Retargeted(
        objective=name,
        recommended={"params": params(centres[best]), "predicted": float(sign * cscore[best])},
        best_evaluated={"call": cid, "params": done[cid].params, "predicted": float(pred_eval[i_eval]),
                        "measured": float(done[cid].metrics[name]), "measured_sem": float(done[cid].sems.get(name, np.nan))},
        proposals=[params(u) for u in proposals],
        model=model.origin,
    )


def _reflect(u: np.ndarray) -> np.ndarray:
    """Fold points back into [0, 1] at the bounds (a perturbation past a bound lands inside, not on it)."""
    u = np.abs(u)
    u = 1.0 - np.abs(1.0 - np.mod(u, 2.0))
    return u
