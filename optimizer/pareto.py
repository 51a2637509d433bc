"""Pareto set, knee, Pareto table and hypervolume of a campaign, in numpy.

Objectives are turned into "larger is better" (minimised ones negated). Only completed, feasible
calls count. The non-dominated filter and the exact hypervolume are written here rather than taken
from BoTorch so that the read-only views (``optimize status``, ``export``) never import torch: they
start in well under a second. ``tests/test_pareto.py`` checks both against BoTorch's utilities.

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


def maximisation_matrix(study: StudyConfig, records: Iterable[CallRecord]) -> tuple[list[int], np.ndarray]:
    """Call ids and ``[N, m]`` objective values of completed feasible calls, larger is better."""
    recs = _feasible(records)
    Y = np.array([[r.metrics[o] for o in study.objectives] for r in recs], dtype=float).reshape(len(recs), len(study.objectives))
    return [r.call_id for r in recs], Y * signs(study)


#: Rows compared at once in :func:`non_dominated` (bounds its ``[rows, N, m]`` comparison to ~64 MB at N = 4000, m = 2).
_DOMINANCE_CHUNK = 1024


def non_dominated(Y: np.ndarray) -> np.ndarray:
    """``[N]`` mask of the rows of ``Y [N, m]`` (maximisation) that no other row dominates.

    A row is dominated when another is at least as large in every objective and larger in one;
    identical rows do not dominate each other, so duplicates on the front are all kept (BoTorch's
    ``is_non_dominated(Y, deduplicate=False)``).
    """
    Y = np.asarray(Y, dtype=float)
    keep = np.ones(len(Y), dtype=bool)
    for start in range(0, len(Y), _DOMINANCE_CHUNK):
        block = Y[start:start + _DOMINANCE_CHUNK, None, :]  # [b, 1, m] against every row [1, N, m]
        dominated = ((Y[None] >= block).all(-1) & (Y[None] > block).any(-1)).any(-1)
        keep[start:start + _DOMINANCE_CHUNK] = ~dominated
    return keep


def pareto_calls(study: StudyConfig, records: Iterable[CallRecord]) -> list[int]:
    """Call ids of the non-dominated completed feasible calls (in call order)."""
    ids, Y = maximisation_matrix(study, records)
    if not ids:
        return []
    return [i for i, keep in zip(ids, non_dominated(Y).tolist()) if keep]


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


def reference_point(study: StudyConfig, records: dict[int, CallRecord]) -> np.ndarray:
    """``[m]`` reference point in the maximisation convention."""
    ref, _ = reference(study, records)
    return ref * signs(study)


def _hv_sorted(Y: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume of mutually non-dominated ``Y [N, m]`` strictly above ``ref [m]``, by slicing on the last objective."""
    if Y.shape[1] == 1:
        return float(Y[:, 0].max() - ref[0])
    if Y.shape[1] == 2:  # the staircase: sorted by the first objective, the second falls
        Y = Y[np.argsort(-Y[:, 0])]
        widths = Y[:, 0] - np.append(Y[1:, 0], ref[0])
        return float(np.sum(widths * (np.maximum.accumulate(Y[:, 1]) - ref[1])))
    # slabs between successive values of the last objective, each covered by the points above it
    order = np.argsort(-Y[:, -1])
    Y = Y[order]
    lower = np.append(Y[1:, -1], ref[-1])
    total = 0.0
    for k in range(len(Y)):
        height = Y[k, -1] - lower[k]
        if height > 0:
            head = Y[: k + 1, :-1]
            total += height * _hv_sorted(head[non_dominated(head)], ref[:-1])
    return total


def hypervolume(Y: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume dominated by ``Y [N, m]`` (maximisation) above ``ref [m]`` (0 when ``ref`` is not finite)."""
    Y, ref = np.asarray(Y, dtype=float), np.asarray(ref, dtype=float)
    if not np.isfinite(ref).all():
        return 0.0
    Y = Y[(Y > ref).all(-1)]
    if len(Y) == 0:
        return 0.0
    return _hv_sorted(Y[non_dominated(Y)], ref)


def hypervolume_trace(study: StudyConfig, records: dict[int, CallRecord],
                      order: str = "call") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hypervolume after each finished non-baseline call, in call-id order (the numbering of every view),
    or in finish order with x = 1, 2, … (``order="finish"``, pairs with ``results.spend_trace``).

    Returns:
        ``(calls [T], hv [T], ref [m])``, ``ref`` in the maximisation convention.
    """
    ref = reference_point(study, records)
    finished = finished_in_order(records)
    if order == "call":
        finished = sorted(finished, key=lambda r: r.call_id)
    sign = signs(study)
    rows: list[np.ndarray] = []
    hv = []
    for r in finished:
        if r.status == "completed" and r.feasible:
            rows.append(np.array([r.metrics[o] for o in study.objectives], dtype=float) * sign)
        hv.append(hypervolume(np.stack(rows), ref) if rows else 0.0)
    x = [r.call_id for r in finished] if order == "call" else list(range(1, len(finished) + 1))
    return np.array(x, dtype=int), np.array(hv), ref


def hypervolume_summary(study: StudyConfig, records: dict[int, CallRecord]) -> dict[str, Any]:
    """The campaign's hypervolume, its reference and normalisation: one dict for status, report and export."""
    ref, source = reference(study, records)
    box = ideal(study, records, ref)
    _, Y = maximisation_matrix(study, records.values())
    hv = hypervolume(Y, ref * signs(study)) if len(Y) else 0.0
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
