"""Tabular views of a campaign's calls: status tables and exports."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.errors import DetoptError
from optimizer.records import finished_in_order, metric_label, metric_spec  # noqa: F401 - re-exported
from optimizer.storage import CallRecord
from optimizer.study import StudyConfig, minimisation_sign


def column_units(study: StudyConfig) -> dict[str, str]:
    """Unit of every export column that has one (parameters, objectives and their s.e., constraints)."""
    out = {f"param.{k}": p.unit for k, p in study.parameters.items() if p.unit}
    for k, o in study.objectives.items():
        if o.unit:
            out[f"objective.{k}"] = out[f"sem.{k}"] = o.unit
    out.update({f"constraint.{k}": c.unit for k, c in study.constraints.items() if c.unit})
    return out


def column_labels(study: StudyConfig) -> dict[str, str]:
    """Human-readable label of every objective and constraint column."""
    out = {f"objective.{k}": o.label or k for k, o in study.objectives.items()}
    out.update({f"constraint.{k}": c.label or k for k, c in study.constraints.items()})
    return out


def call_rows(study: StudyConfig, records: dict[int, CallRecord]) -> list[dict[str, Any]]:
    """One flat row per call: ids, status, parameters, objectives (+ standard errors), constraints, timing."""
    rows = []
    front: set[int] = set()
    if len(study.objectives) > 1:
        from optimizer.pareto import pareto_calls

        front = set(pareto_calls(study, records.values()))
    for cid, r in sorted(records.items()):
        row: dict[str, Any] = {
            "call": cid, "origin": r.origin, "label": r.label or "", "status": r.status,
            "failure": r.failure_kind or "", "attempts": r.attempts, "lost_reruns": r.losses, "seed": r.seed, "n_samples": r.n_samples,
        }
        row.update({f"param.{k}": v for k, v in r.params.items()})
        for name in study.objectives:
            row[f"objective.{name}"] = r.metrics.get(name)
            row[f"sem.{name}"] = r.sems.get(name)
        for name in study.constraints:
            row[f"constraint.{name}"] = r.metrics.get(name)
        row.update({f"quantity.{k}": v for k, v in r.quantities.items()})
        row["feasible"] = r.feasible
        if len(study.objectives) > 1:
            row["pareto"] = cid in front
        row["duration_s"] = r.duration
        row["node"] = r.worker.get("node") or r.worker.get("host")
        row["error"] = (r.error or "").splitlines()[0] if r.error else ""
        row["samples"] = r.samples or ""
        rows.append(row)
    return rows


def export(study: StudyConfig, records: dict[int, CallRecord], fmt: str, path: Path) -> Path:
    """Write every call to ``path`` as csv, json or parquet."""
    rows = call_rows(study, records)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    if fmt == "csv":
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=columns)
            w.writeheader()
            for row in rows:
                w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    elif fmt == "json":
        clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()} for r in rows]
        doc: dict[str, Any] = {"study": study.name, "units": column_units(study), "labels": column_labels(study)}
        if len(study.objectives) > 1:
            from optimizer.pareto import hypervolume_summary

            doc["hypervolume"] = hypervolume_summary(study, records)
        doc["calls"] = clean
        path.write_text(json.dumps(doc, indent=1))
    elif fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise DetoptError("--format parquet needs pyarrow: pip install 'detopt[parquet]'") from None
        table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])
        pq.write_table(table, path)
    else:
        raise DetoptError(f"--format: unknown format '{fmt}' (csv, json, parquet)")
    return path


def compute_hours(record: CallRecord) -> float:
    """Device-hours one call used as recorded: its run time × the GPUs (else CPUs) it asked for."""
    res = record.resources or {}
    units = res.get("num_gpus") or res.get("num_cpus") or 1
    return (record.duration or 0.0) * float(units) / 3600


def particles(record: CallRecord) -> int:
    """Particles one call simulated: its ``n_samples`` (from the ``submitted`` event) × its finished attempts
    (a failed attempt simulated too; an attempt still in flight has not finished yet)."""
    return record.n_samples * max(0, record.attempts - (record.status == "submitted"))


def particle_trace(records: dict[int, CallRecord]) -> np.ndarray:
    """``[T]`` cumulative particles simulated after each finished non-baseline call (the order of
    :func:`finished_in_order`, as :func:`spend_trace`)."""
    return np.cumsum([particles(r) for r in finished_in_order(records)], dtype=float)


def spend_trace(records: dict[int, CallRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative compute (device-hours) and wall-clock hours since the first submission, after each
    finished non-baseline call (the order of :func:`finished_in_order`).

    Returns:
        ``(compute [T], wall [T])``.
    """
    done = finished_in_order(records)
    starts = [t for r in records.values() if (t := r.submitted_at or r.started_at)]
    t0 = min(starts) if starts else 0.0
    compute = np.cumsum([compute_hours(r) for r in done]) if done else np.zeros(0)
    wall = np.array([((r.finished_at or t0) - t0) / 3600 for r in done])
    return compute, wall


def best_trace(study: StudyConfig, records: dict[int, CallRecord], objective: str,
               order: str = "call") -> tuple[np.ndarray, np.ndarray]:
    """Best feasible value of ``objective`` after each finished non-baseline call.

    ``order="call"`` walks the calls by call id and returns the ids as x (the numbering of the journal,
    ``status`` and the bar); ``order="finish"`` walks them in finish order and returns 1, 2, … (pairs
    with :func:`spend_trace`).

    Returns:
        ``(calls [T], best [T])``: call id (or count), best value so far (NaN before the first).
    """
    sign = minimisation_sign(study.objectives[objective].direction)
    done = finished_in_order(records)
    if order == "call":
        done = sorted(done, key=lambda r: r.call_id)
    best, xs, ys = math.inf, [], []
    for i, r in enumerate(done, 1):
        if r.status == "completed" and r.feasible:
            best = min(best, sign * r.metrics[objective])
        xs.append(r.call_id if order == "call" else i)
        ys.append(sign * best if math.isfinite(best) else math.nan)
    return np.array(xs, dtype=int), np.array(ys, dtype=float)
