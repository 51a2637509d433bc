"""Pareto set and hypervolume of a campaign, with BoTorch's multi-objective utilities.

Objectives are turned into "larger is better" (minimised ones negated) before BoTorch sees
them. Only completed, feasible calls count. The hypervolume reference point is the study's
``objectives.*.reference`` where given, else BoTorch's ``infer_reference_point`` on the
final Pareto front (fixed for the whole trace, so values along it are comparable).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from optimizer.records import finished_in_order
from optimizer.storage import CallRecord
from optimizer.study import StudyConfig


def signs(study: StudyConfig) -> np.ndarray:
    """``[m]``: +1 for maximised objectives, −1 for minimised ones."""
    return np.array([1.0 if o.direction == "maximize" else -1.0 for o in study.objectives.values()])


def _feasible(records: Iterable[CallRecord]) -> list[CallRecord]:
    return [r for r in sorted(records, key=lambda r: r.call_id) if r.status == "completed" and r.feasible]


def maximisation_matrix(study: StudyConfig, records: Iterable[CallRecord]) -> tuple[list[int], torch.Tensor]:
    """Call ids and ``[N, m]`` objective values of completed feasible calls, larger is better."""
    recs = _feasible(records)
    Y = np.array([[r.metrics[o] for o in study.objectives] for r in recs], dtype=float).reshape(len(recs), -1)
    return [r.call_id for r in recs], torch.as_tensor(Y * signs(study), dtype=torch.float64)


def pareto_calls(study: StudyConfig, records: Iterable[CallRecord]) -> list[int]:
    """Call ids of the non-dominated completed feasible calls (in call order)."""
    from botorch.utils.multi_objective.pareto import is_non_dominated

    ids, Y = maximisation_matrix(study, records)
    if not ids:
        return []
    mask = is_non_dominated(Y, deduplicate=False)
    return [i for i, keep in zip(ids, mask.tolist()) if keep]


def reference_point(study: StudyConfig, Y: torch.Tensor) -> torch.Tensor:
    """``[m]`` reference point in the maximisation convention."""
    from botorch.utils.multi_objective.hypervolume import infer_reference_point
    from botorch.utils.multi_objective.pareto import is_non_dominated

    given = [o.reference for o in study.objectives.values()]
    inferred = infer_reference_point(Y[is_non_dominated(Y)]) if len(Y) else torch.zeros(len(given), dtype=torch.float64)
    s = signs(study)
    return torch.tensor([g * si if g is not None else float(inf) for g, si, inf in zip(given, s, inferred)],
                        dtype=torch.float64)


def hypervolume(Y: torch.Tensor, ref: torch.Tensor) -> float:
    """Hypervolume dominated by ``Y [N, m]`` (maximisation) above ``ref [m]``."""
    from botorch.utils.multi_objective.box_decompositions.dominated import DominatedPartitioning

    Y = Y[(Y > ref).all(-1)]
    if len(Y) == 0:
        return 0.0
    return float(DominatedPartitioning(ref_point=ref, Y=Y).compute_hypervolume())


def hypervolume_trace(study: StudyConfig, records: dict[int, CallRecord]) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """Hypervolume after each finished non-baseline call (finish order).

    Returns:
        ``(calls [T], hv [T], ref [m])``.
    """
    _, Y_all = maximisation_matrix(study, records.values())
    ref = reference_point(study, Y_all)
    finished = finished_in_order(records)
    sign = torch.as_tensor(signs(study), dtype=torch.float64)
    rows: list[torch.Tensor] = []
    hv = []
    for r in finished:
        if r.status == "completed" and r.feasible:
            rows.append(torch.tensor([r.metrics[o] for o in study.objectives], dtype=torch.float64) * sign)
        hv.append(hypervolume(torch.stack(rows), ref) if rows else 0.0)
    return np.arange(1, len(finished) + 1), np.array(hv), ref
