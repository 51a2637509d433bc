"""Reduce a call's samples to objective and constraint values.

Each metric gives a value and, where a closed form exists, its standard error
(used as known observation noise by model-based strategies).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from optimizer.study import Constraint, Metric


def evaluate_metric(
    metric: Metric, samples: np.ndarray, outputs: Sequence[str], quantities: Mapping[str, float]
) -> tuple[float, float]:
    """Value and standard error of ``metric`` for one call.

    Args:
        samples: ``[n, k]``, columns named by ``outputs``.
        quantities: the simulator's deterministic per-θ quantities.

    Returns:
        ``(value, sem)``; ``sem`` is 0 for deterministic quantities and NaN where no closed form is used.
    """
    if metric.statistic == "quantity":
        return float(quantities[metric.quantity]), 0.0  # type: ignore[index]
    col = outputs.index(metric.output) if metric.output else 0
    y = samples[:, col].astype(np.float64)
    n = y.shape[0]
    w = samples[:, outputs.index(metric.weight)].astype(np.float64) if metric.weight else None
    stat = metric.statistic
    if stat in ("fraction_above", "fraction_below"):
        y = (y > metric.threshold) if stat == "fraction_above" else (y < metric.threshold)
        y = y.astype(np.float64)
        stat = "mean"
    if stat in ("mean", "sum"):
        if w is None:
            mean = float(y.mean())
            sem = float(y.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        else:
            total = w.sum()
            mean = float((w * y).sum() / total) if total > 0 else 0.0
            # Kish's effective sample size for the weighted mean's error.
            n_eff = total**2 / max((w**2).sum(), 1e-300)
            var = float((w * (y - mean) ** 2).sum() / total) if total > 0 else 0.0
            sem = float(np.sqrt(var / n_eff)) if n_eff > 1 else float("nan")
        if stat == "sum":
            # Sum of n i.i.d. terms: sum = n·mean (or Σw·y); error scales alike.
            scale = n if w is None else float(w.sum())
            return mean * scale, sem * scale
        return mean, sem
    if stat == "median":
        return float(np.median(y)), float(1.2533 * y.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    if stat == "std":
        s = float(y.std(ddof=1)) if n > 1 else 0.0
        return s, float(s / np.sqrt(2 * (n - 1))) if n > 1 else float("nan")
    if stat == "quantile":
        return float(np.quantile(y, metric.q)), float("nan")
    raise ValueError(f"unknown statistic {metric.statistic}")


def is_feasible(constraints: Mapping[str, Constraint], values: Mapping[str, float]) -> bool:
    """Whether every constraint's value lies within its bounds."""
    for name, c in constraints.items():
        v = values[name]
        if (c.lower is not None and v < c.lower) or (c.upper is not None and v > c.upper):
            return False
    return True


def metric_on_samples(metric: Metric, samples: torch.Tensor, outputs: Sequence[str]) -> torch.Tensor:
    """The metric of many generated sample sets at once: ``samples [C, n, k]`` → ``[C]``.

    Same definitions as :func:`evaluate_metric`; ``quantity`` metrics are not sample statistics.
    """
    if metric.statistic == "quantity":
        raise ValueError("a quantity metric is not computed from samples")
    y = samples[..., outputs.index(metric.output) if metric.output else 0]
    w = samples[..., outputs.index(metric.weight)] if metric.weight else None
    stat = metric.statistic
    if stat in ("fraction_above", "fraction_below"):
        y = (y > metric.threshold) if stat == "fraction_above" else (y < metric.threshold)
        y = y.to(samples.dtype)
        stat = "mean"
    if stat in ("mean", "sum"):
        if w is None:
            return y.mean(-1) if stat == "mean" else y.sum(-1)
        total = w.sum(-1)
        return (w * y).sum(-1) / total.clamp_min(1e-300) if stat == "mean" else (w * y).sum(-1)
    if stat == "median":
        return y.median(-1).values
    if stat == "std":
        return y.std(-1)
    if stat == "quantile":
        return torch.quantile(y, metric.q, dim=-1)
    raise ValueError(f"unknown statistic {metric.statistic}")
