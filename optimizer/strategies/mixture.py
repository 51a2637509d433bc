"""Differentiable views of a fitted mixture density network, for strategies that follow gradients in θ.

An MDN's output law at θ is a Gaussian mixture whose weights, means and scales are smooth in θ. Drawing samples
from it (component by weight, then a Gaussian draw) is not differentiable in the weights; these helpers replace the
draw by **common particles**: every component carries the same ``J`` standard-normal draws, each atom weighted by
its component's weight over ``J``. The result is a weighted sample set whose atoms move with the means and scales
and whose weights move with the mixture weights, so a statistic of it, or its distance to stored calls, has a
gradient in θ through all three. The particles are fixed, so their sampling error is the same at every θ and
does not move a gradient step.

* :func:`mixture_statistic`: an objective statistic of the mixture (means, sums, std, smoothed fractions over the
  particles; quantiles by solving the mixture's CDF, their gradient by the implicit function theorem).
* :func:`mixture_atoms`: the weighted particle set ``[M, A, k]``, ``[M, A]``.
* :func:`weighted_distance`: the energy distance or W1 of a weighted set to stored (equal-weight) quantile
  vectors, exact for step CDFs and differentiable in both atoms and weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from optimizer.study import Metric
    from surrogates.mdn import MDN

#: Standard-normal draws per mixture component for sample statistics (mean, sum, std, fractions): with 8
#: components, 512 common particles; their sampling error is the same at every θ, so it does not move the step.
PARTICLES = 64
#: Fraction statistics replace the indicator by a logistic of this width (in the output's standard deviations)
#: so that they have a gradient in the particles' positions.
FRACTION_SMOOTHING = 0.05
#: Bisection steps solving the mixture CDF for a quantile (2⁻⁶⁰ of a 16-σ bracket: float64 resolution).
QUANTILE_STEPS = 60
#: Floor under the energy distance's square: √ has an infinite slope at 0 (a set identical to a stored call).
SQRT_FLOOR = 1e-30


Mixture = tuple[Tensor, Tensor, Tensor]


def mixture_atoms(mdn: MDN, theta: Tensor, eps: Tensor, mix: Mixture | None = None) -> tuple[Tensor, Tensor]:
    """The mixture at ``theta [M, d]`` as weighted atoms: ``eps [J, k]`` common draws per component →
    atoms ``[M, C·J, k]`` (clipped like generated samples) and their weights ``[M, C·J]`` (each row sums to 1).
    ``mix``: ``mdn.mixture(theta)`` when the caller has it already."""
    logw, mu, L = mdn.mixture(theta) if mix is None else mix
    y = mu[:, :, None, :] + (L[:, :, None] @ eps[None, None, :, :, None]).squeeze(-1)  # [M, C, J, k]
    y = torch.maximum(torch.minimum(y, mdn.hi.double()), mdn.lo.double())
    M, C, J, k = y.shape
    w = (logw.exp()[:, :, None] / J).expand(M, C, J)
    return y.reshape(M, C * J, k), w.reshape(M, C * J)


def mixture_statistic(mdn: MDN, metric: Metric, theta: Tensor, outputs: Sequence[str], eps: Tensor,
                      samples_per_call: int, mix: Mixture | None = None) -> Tensor:
    """The surrogate's value of ``metric`` at ``theta [M, d]`` → ``[M]``, differentiable in θ.

    Means, sums and standard deviations are taken over the common particles ``eps [J, k]`` of every mixture
    component, each weighted by its component's weight and clipped like generated samples; fractions smooth the
    indicator (:data:`FRACTION_SMOOTHING`); quantiles solve the mixture's CDF and get their gradient by the
    implicit function theorem. ``sum`` is for a call of ``samples_per_call`` samples. ``mix``: ``mdn.mixture(theta)``
    when the caller has it already.
    """
    col = list(outputs).index(metric.output) if metric.output else 0
    lo, hi = mdn.lo.double(), mdn.hi.double()
    stat = metric.statistic
    if stat in ("median", "quantile"):
        logw, mu, L = mdn.mixture(theta) if mix is None else mix
        q = 0.5 if stat == "median" else float(metric.q)  # type: ignore[arg-type]
        m, s = mu[..., col], L[..., col, :].pow(2).sum(-1).sqrt()  # [M, C]: the column's marginal Gaussians
        w = logw.exp()

        def cdf(x: Tensor) -> Tensor:
            return (w * torch.special.ndtr((x[:, None] - m) / s)).sum(-1)

        with torch.no_grad():
            a, b = (m - 8 * s).min(-1).values, (m + 8 * s).max(-1).values
            for _ in range(QUANTILE_STEPS):
                mid = (a + b) / 2
                below = cdf(mid) < q
                a, b = torch.where(below, mid, a), torch.where(below, b, mid)
            x0 = (a + b) / 2
            dens = (w * torch.exp(-0.5 * ((x0[:, None] - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))).sum(-1)
        x = x0 - (cdf(x0) - q) / dens.clamp_min(1e-300)  # value x0, gradient -∂F/∂θ / f
        return torch.clamp(x, lo[col], hi[col])
    y, p = mixture_atoms(mdn, theta, eps, mix)  # [M, A, k], [M, A]
    v = y[..., col]
    if stat in ("fraction_above", "fraction_below"):
        width = FRACTION_SMOOTHING * float(mdn.scaler.std[col])
        z = (v - float(metric.threshold)) / width  # type: ignore[arg-type]
        v = torch.sigmoid(z if stat == "fraction_above" else -z)
        stat = "mean"
    if metric.weight:
        p = p * y[..., list(outputs).index(metric.weight)]
    total = p.sum(-1)
    mean = (p * v).sum(-1) / total.clamp_min(1e-300)
    if stat == "mean":
        return mean
    if stat == "sum":  # a call has samples_per_call samples: sum = n · E[w·y]
        return samples_per_call * (p * v).sum(-1)
    if stat == "std":
        return ((p * (v - mean[:, None]) ** 2).sum(-1) / total).clamp_min(0).sqrt()
    raise ValueError(f"unknown statistic {stat}")


def weighted_distance(atoms: Tensor, weights: Tensor, stored: Tensor, directions: Tensor | None,
                      distance: str) -> Tensor:
    """Distance from each weighted set to each stored distribution: ``atoms [M, A, k]``, ``weights [M, A]``,
    ``stored [T, L, K]`` (sorted equal-weight quantile vectors of the ``L`` projections, as a
    :class:`~optimizer.distances.DistributionBank` keeps them) → ``[M, T]``.

    ``energy``: √(2 · mean over projections of ∫ (F_a − F_t)² dz); ``w1``: mean over projections of ∫ |F_a − F_t| dz.
    Both are exact for the two step CDFs (the integral runs over the gaps of the merged sorted values), so the value
    has a gradient in every atom (through the gaps) and every weight (through F_a).
    """
    if distance not in ("energy", "w1"):
        raise ValueError(f"weighted_distance supports 'energy' and 'w1', not {distance!r}")
    M, A, _ = atoms.shape
    T, L, K = stored.shape
    proj = atoms.transpose(1, 2) if directions is None else torch.einsum("mak,lk->mla", atoms, directions.to(atoms))
    # merged values [M, T, L, A + K] with the CDF increment each value brings to the set's CDF and to the stored one
    vals = torch.cat([proj[:, None].expand(M, T, L, A), stored[None].to(atoms).expand(M, T, L, K)], -1)
    inc_a = torch.cat([weights[:, None, None, :].expand(M, T, L, A), atoms.new_zeros(M, T, L, K)], -1)
    inc_t = torch.cat([atoms.new_zeros(M, T, L, A), atoms.new_full((M, T, L, K), 1.0 / K)], -1)
    order = torch.argsort(vals.detach(), dim=-1)
    z = torch.gather(vals, -1, order)
    diff = torch.gather(inc_a, -1, order).cumsum(-1) - torch.gather(inc_t, -1, order).cumsum(-1)
    gaps = z[..., 1:] - z[..., :-1]
    gap_term = diff[..., :-1].pow(2) if distance == "energy" else diff[..., :-1].abs()
    integral = (gaps * gap_term).sum(-1).mean(-1)  # [M, T]
    # the floor keeps the square root's gradient finite where a set coincides with a stored one
    return (2 * integral).clamp_min(SQRT_FLOOR).sqrt() if distance == "energy" else integral
