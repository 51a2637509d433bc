"""Pareto set, knee, Pareto table and hypervolume of a campaign, with BoTorch's multi-objective utilities.

Objectives are turned into "larger is better" (minimised ones negated) before BoTorch sees
them. Only completed, feasible calls count.

Hypervolume reference (fixed, never moved by the front): per objective, the study's
``objectives.NAME.reference`` where given; else the first completed baseline's value; else the
worst value among the initial-design calls plus :data:`REFERENCE_MARGIN` of their range. It is
derived from the journal, so every view (``status``, ``report``, ``export``) computes the same one.

Normalised hypervolume: the hypervolume divided by the volume of the box between the reference
and an ideal point fixed the same way: 0 for a minimised objective with a positive reference
(background fractions, masses, costs cannot go below zero), else the best value among the
initial-design calls. For non-negative minimised objectives it is the fraction of the box
[0, reference] the front dominates (0 … 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from optimizer.records import finished_in_order
from optimizer.storage import CallRecord
from optimizer.study import ParamValue, StudyConfig, maximisation_sign

#: The reference taken from the initial design lies this fraction of the initial design's range beyond
#: its worst value, so the worst initial designs still add a little volume instead of sitting on the edge.
REFERENCE_MARGIN = 0.1
#: A campaign without an initial design takes its reference from this many first completed feasible calls.
REFERENCE_CALLS = 10


def signs(study: StudyConfig) -> np.ndarray:
    """``[m]``: +1 for maximised objectives, −1 for minimised ones."""
    return np.array([maximisation_sign(o.direction) for o in study.objectives.values()])


def _feasible(records: Iterable[CallRecord]) -> list[CallRecord]:
    return [r for r in sorted(records, key=lambda r: r.call_id) if r.status == "completed" and r.feasible]


def maximisation_matrix(study: StudyConfig, records: Iterable[CallRecord]) -> tuple[list[int], torch.Tensor]:
    """Call ids and ``[N, m]`` objective values of completed feasible calls, larger is better."""
    recs = _feasible(records)
    Y = np.array([[r.metrics[o] for o in study.objectives] for r in recs], dtype=float).reshape(len(recs), len(study.objectives))
    return [r.call_id for r in recs], torch.as_tensor(Y * signs(study), dtype=torch.float64)


def pareto_calls(study: StudyConfig, records: Iterable[CallRecord]) -> list[int]:
    """Call ids of the non-dominated completed feasible calls (in call order)."""
    from botorch.utils.multi_objective.pareto import is_non_dominated

    ids, Y = maximisation_matrix(study, records)
    if not ids:
        return []
    mask = is_non_dominated(Y, deduplicate=False)
    return [i for i, keep in zip(ids, mask.tolist()) if keep]


def knee_call(study: StudyConfig, records: dict[int, CallRecord]) -> int | None:
    """Call of the Pareto front closest to the ideal point, objectives scaled to [0, 1] over the front."""
    front = pareto_calls(study, records.values())
    if len(study.objectives) < 2 or not front:
        return None
    Y = -np.array([[records[c].metrics[o] for o in study.objectives] for c in front]) * signs(study)
    span = np.where(Y.max(0) > Y.min(0), Y.max(0) - Y.min(0), 1.0)
    return int(front[int(np.argmin(np.linalg.norm((Y - Y.min(0)) / span, axis=1)))])


def _reference_calls(study: StudyConfig, records: dict[int, CallRecord]) -> list[CallRecord]:
    feas = _feasible(records.values())
    initial = [r for r in feas if r.origin == "initial"]
    return initial or [r for r in feas if r.origin != "baseline"][:REFERENCE_CALLS]


def reference(study: StudyConfig, records: dict[int, CallRecord]) -> tuple[np.ndarray, list[str]]:
    """``[m]`` hypervolume reference in the objectives' own units and where each value came from."""
    base = next((r for r in sorted(records.values(), key=lambda r: r.call_id)
                 if r.origin == "baseline" and r.status == "completed"), None)
    init = _reference_calls(study, records)
    ref, source = [], []
    for (name, o), s in zip(study.objectives.items(), signs(study)):
        if o.reference is not None:
            ref.append(float(o.reference))
            source.append("study")
        elif base is not None:
            ref.append(float(base.metrics[name]))
            source.append(f"baseline {base.label or base.call_id}")
        elif init:
            v = np.array([r.metrics[name] for r in init], dtype=float)
            worst = v.min() if s > 0 else v.max()
            margin = REFERENCE_MARGIN * (float(np.ptp(v)) or abs(float(worst)) or 1.0)
            ref.append(float(worst - s * margin))
            source.append("initial design")
        else:
            ref.append(math.nan)
            source.append("none yet")
    return np.array(ref), source


def ideal(study: StudyConfig, records: dict[int, CallRecord], ref: np.ndarray) -> np.ndarray:
    """``[m]`` corner of the normalisation box opposite the reference (see the module docstring)."""
    init = _reference_calls(study, records)
    out = []
    for name, s, r in zip(study.objectives, signs(study), ref):
        if s < 0 and r > 0:
            out.append(0.0)
        elif init:
            v = np.array([c.metrics[name] for c in init], dtype=float)
            out.append(float(v.max() if s > 0 else v.min()))
        else:
            out.append(math.nan)
    return np.array(out)


def reference_point(study: StudyConfig, records: dict[int, CallRecord]) -> torch.Tensor:
    """``[m]`` reference point in the maximisation convention."""
    ref, _ = reference(study, records)
    return torch.as_tensor(ref * signs(study), dtype=torch.float64)


def hypervolume(Y: torch.Tensor, ref: torch.Tensor) -> float:
    """Hypervolume dominated by ``Y [N, m]`` (maximisation) above ``ref [m]``."""
    from botorch.utils.multi_objective.box_decompositions.dominated import DominatedPartitioning

    if not bool(torch.isfinite(ref).all()):
        return 0.0
    Y = Y[(Y > ref).all(-1)]
    if len(Y) == 0:
        return 0.0
    return float(DominatedPartitioning(ref_point=ref, Y=Y).compute_hypervolume())


def hypervolume_trace(study: StudyConfig, records: dict[int, CallRecord],
                      order: str = "call") -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """Hypervolume after each finished non-baseline call, in call-id order (the numbering of every view),
    or in finish order with x = 1, 2, … (``order="finish"``, pairs with ``results.spend_trace``).

    Returns:
        ``(calls [T], hv [T], ref [m])``, ``ref`` in the maximisation convention.
    """
    ref = reference_point(study, records)
    finished = finished_in_order(records)
    if order == "call":
        finished = sorted(finished, key=lambda r: r.call_id)
    sign = torch.as_tensor(signs(study), dtype=torch.float64)
    rows: list[torch.Tensor] = []
    hv = []
    for r in finished:
        if r.status == "completed" and r.feasible:
            rows.append(torch.tensor([r.metrics[o] for o in study.objectives], dtype=torch.float64) * sign)
        hv.append(hypervolume(torch.stack(rows), ref) if rows else 0.0)
    x = [r.call_id for r in finished] if order == "call" else list(range(1, len(finished) + 1))
    return np.array(x, dtype=int), np.array(hv), ref


def hypervolume_summary(study: StudyConfig, records: dict[int, CallRecord]) -> dict[str, Any]:
    """The campaign's hypervolume, its reference and normalisation: one dict for status, report and export."""
    ref, source = reference(study, records)
    box = ideal(study, records, ref)
    _, Y = maximisation_matrix(study, records.values())
    hv = hypervolume(Y, torch.as_tensor(ref * signs(study), dtype=torch.float64)) if len(Y) else 0.0
    volume = float(np.prod(np.abs(ref - box)))
    names = list(study.objectives)
    return {
        "hypervolume": hv,
        "normalised": hv / volume if volume > 0 and math.isfinite(volume) else None,
        # None, not NaN, before any completed call: the JSON export stays valid JSON
        "reference": dict(zip(names, [v if math.isfinite(v) else None for v in ref.tolist()])),
        "reference_source": dict(zip(names, source)),
        "ideal": dict(zip(names, [v if math.isfinite(v) else None for v in box.tolist()])),
    }


def format_hypervolume(study: StudyConfig, hv: dict[str, Any]) -> list[str]:
    """Plain text lines of :func:`hypervolume_summary` (never cut by a table)."""
    from optimizer.records import metric_label

    norm = hv["normalised"]
    lines = [f"hypervolume {hv['hypervolume']:.6g}"
             + (f" = {norm:.4f} of the box between reference and ideal point" if norm is not None else "")
             + (" (no design dominates the reference yet)" if hv["hypervolume"] == 0 else "")]
    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:.6g}"

    for name in study.objectives:
        lines.append(f"  {metric_label(study, name)}: reference {num(hv['reference'][name])} "
                     f"({hv['reference_source'][name]}), ideal {num(hv['ideal'][name])}")
    return lines


@dataclass
class FrontRow:
    """One Pareto-front member: objective values ± s.e. and the change against the first baseline."""

    call_id: int
    values: dict[str, float]
    sems: dict[str, float]
    #: Relative change against the first baseline (fraction, e.g. −0.5 = −50 %) and its s.e.; None without one.
    change: dict[str, tuple[float, float] | None]
    knee: bool
    params: dict[str, ParamValue] = field(default_factory=dict)
    #: The baseline's name when this front member is a baseline design.
    baseline: str | None = None


def _sem(r: CallRecord, name: str) -> float:
    v = r.sems.get(name)
    return float(v) if v is not None and math.isfinite(v) else 0.0


def relative_change(v: float, se_v: float, b: float, se_b: float) -> tuple[float, float] | None:
    """``(v − b)/|b|`` and its s.e. by first-order propagation of both standard errors (independent calls)."""
    if b == 0 or not math.isfinite(b):
        return None
    c = (v - b) / abs(b)
    se = math.sqrt((se_v / b) ** 2 + (v * se_b / b**2) ** 2)
    return c, se


def front_table(study: StudyConfig, records: dict[int, CallRecord]) -> list[FrontRow]:
    """The Pareto front in order of the first objective, with changes against the first completed baseline."""
    front = pareto_calls(study, records.values())
    knee = knee_call(study, records)
    base = next((r for r in sorted(records.values(), key=lambda r: r.call_id)
                 if r.origin == "baseline" and r.status == "completed"), None)
    first = next(iter(study.objectives))
    rows = []
    for cid in sorted(front, key=lambda c: (records[c].metrics[first], c)):
        r = records[cid]
        if r is base:  # the baseline against itself: no change, and no uncertainty in it
            change: dict[str, tuple[float, float] | None] = {n: (0.0, 0.0) for n in study.objectives}
        else:
            change = {n: (relative_change(r.metrics[n], _sem(r, n), base.metrics[n], _sem(base, n))
                          if base is not None else None) for n in study.objectives}
        rows.append(FrontRow(cid, {n: r.metrics[n] for n in study.objectives}, {n: _sem(r, n) for n in study.objectives},
                             change, cid == knee, dict(r.params), (r.label or "baseline") if r.origin == "baseline" else None))
    return rows


def format_value(value: float, sem: float, unit: str = "") -> str:
    """``value ± s.e. unit`` with the value rounded to the s.e.'s precision."""
    if sem > 0 and math.isfinite(sem) and value != 0:
        digits = max(0, 1 - int(math.floor(math.log10(sem))))  # two significant digits of the s.e.
        text = f"{value:.{digits}f} ± {sem:.{digits}f}" if digits <= 8 else f"{value:.3g} ± {sem:.2g}"
    else:
        text = f"{value:.6g}"
    return f"{text} {unit}".rstrip()


def format_change(change: tuple[float, float] | None, percent: bool = True) -> str:
    """``+12.3 ± 4.5 %`` (no ± for exactly known values, e.g. masses)."""
    if change is None:
        return "-"
    err = f" ± {change[1] * 100:.1f}" if change[1] > 0 else ""
    return f"{change[0] * 100:+.1f}{err}" + (" %" if percent else "")
