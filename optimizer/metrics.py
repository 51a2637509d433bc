"""Reduce a call's samples to objective and constraint values.

Each metric gives a value and, where a closed form exists, its standard error
(used as known observation noise by model-based strategies).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from optimizer.study import Constraint, Metric

#: Divisor floor where a zero total weight is handled by the result (NaN or no error): it only keeps numpy
#: and torch from warning about 0/0, and never changes a value computed from positive weights.
TINY = 1e-300


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
    t = torch.as_tensor(np.asarray(samples), dtype=torch.float64)
    value = float(metric_on_samples(metric, t[None], outputs)[0])
    y, w, stat = _reduction_inputs(metric, t, outputs)
    n = y.shape[-1]
    if n < 2:
        return value, float("nan")
    if stat in ("mean", "sum"):
        if w is None:
            sem = float(y.std() / np.sqrt(n))
        else:
            total = float(w.sum())
            mean = float((w * y).sum() / total) if total > 0 else float("nan")
            n_eff = total**2 / max(float((w**2).sum()), TINY)  # Kish's effective sample size
            var = float((w * (y - mean) ** 2).sum() / total) if total > 0 else 0.0
            sem = float(np.sqrt(var / n_eff)) if n_eff > 1 else float("nan")
        # a sum of n i.i.d. terms is n·mean (or Σw·mean): its error scales alike
        scale = 1.0 if stat == "mean" else (n if w is None else float(w.sum()))
        return value, sem * scale
    if stat in ("median", "quantile"):
        return value, quantile_sem(y, 0.5 if stat == "median" else float(metric.q))  # type: ignore[arg-type]
    if stat == "std":
        return value, value / np.sqrt(2 * (n - 1))
    return value, float("nan")


def quantile_sem(y: torch.Tensor, q: float) -> float:
    """Asymptotic standard error of the sample ``q``-quantile of ``y [n]``: √(q(1−q)/n) / f(x_q).

    The density f at the quantile comes from a Gaussian kernel density estimate with Silverman's
    bandwidth (O(n), no resampling). Where the values near the quantile do not vary (a point mass,
    e.g. zero hits), the quantile does not vary between calls either: 0.
    """
    y = y.double()
    n = y.shape[-1]
    xq = float(torch.quantile(y, q))
    sd = float(y.std())
    iqr = float(torch.quantile(y, 0.75) - torch.quantile(y, 0.25))
    spread = min(sd, iqr / 1.349) if iqr > 0 else sd
    h = 0.9 * spread * n ** -0.2
    if not h > 0:
        return 0.0
    density = float(torch.exp(-0.5 * ((y - xq) / h) ** 2).mean()) / (h * np.sqrt(2 * np.pi))
    return float(np.sqrt(q * (1 - q) / n) / density) if density > 0 else float("nan")


def is_feasible(constraints: Mapping[str, Constraint], values: Mapping[str, float]) -> bool:
    """Whether every constraint's value lies within its bounds."""
    for name, c in constraints.items():
        v = values[name]
        if (c.lower is not None and v < c.lower) or (c.upper is not None and v > c.upper):
            return False
    return True


def _reduction_inputs(
    metric: Metric, samples: torch.Tensor, outputs: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """The column a metric reduces (``[..., n]``; an indicator for fractions), its weights, and the reduction."""
    y = samples[..., outputs.index(metric.output) if metric.output else 0]
    w = samples[..., outputs.index(metric.weight)] if metric.weight else None
    stat = metric.statistic
    if stat in ("fraction_above", "fraction_below"):
        threshold = metric.threshold
        assert threshold is not None, "Metric validation requires a threshold for fractions"
        y = ((y > threshold) if stat == "fraction_above" else (y < threshold)).to(samples.dtype)
        stat = "mean"
    return y, w, stat


def read_columns(metrics: Iterable[Metric], outputs: Sequence[str]) -> list[int]:
    """Indices of the output columns that ``metrics`` read (their ``output``, column 0 where none is named, and
    their ``weight``), in the simulator's order; every column if one of the names is not among ``outputs``.

    Quantity metrics read no column.
    """
    names: set[str] = set()
    for m in metrics:
        if m.statistic == "quantity":
            continue
        names.update(n for n in (m.output or (outputs[0] if outputs else None), m.weight) if n is not None)
    if not names or not names <= set(outputs):
        return list(range(len(outputs)))
    return [i for i, n in enumerate(outputs) if n in names]


def metric_on_samples(metric: Metric, samples: torch.Tensor, outputs: Sequence[str]) -> torch.Tensor:
    """The metric of many sample sets at once: ``samples [C, n, k]`` → ``[C]``.

    ``quantity`` metrics are not sample statistics.
    """
    if metric.statistic == "quantity":
        raise ValueError("a quantity metric is not computed from samples")
    y, w, stat = _reduction_inputs(metric, samples, outputs)
    if stat in ("mean", "sum"):
        if w is None:
            return y.mean(-1) if stat == "mean" else y.sum(-1)
        total = w.sum(-1)
        if stat == "sum":
            return (w * y).sum(-1)
        # no weight at all: the mean is undefined (NaN makes the call invalid_output), not 0
        return torch.where(total > 0, (w * y).sum(-1) / total.clamp_min(TINY), torch.nan)
    if stat == "median":
        return y.quantile(0.5, dim=-1)
    if stat == "std":
        return y.std(-1)
    if stat == "quantile":
        assert metric.q is not None, "Metric validation requires q for a quantile"
        return torch.quantile(y, metric.q, dim=-1)
    raise ValueError(f"unknown statistic {metric.statistic}")
