"""Stochastic problems whose output distribution changes shape with θ, with exact true objectives.

A benchmark family for strategies that model whole output distributions: on each problem the
optimum of a tail statistic (a high quantile, a rare-exceedance fraction) lies elsewhere than the
optimum of the mean, because the noise is skewed, heteroscedastic, multimodal, has a point mass or a
heavy tail that depends on θ. Every problem is a frozen distribution per θ, so the true value of any
statistic a study can name (``mean``, ``quantile``, ``fraction_above``/``fraction_below``, ``median``,
``std``) is exact (closed form, or a root of an exact CDF for mixtures), never a noisy estimate.

Parameters are ``x1 … xd`` in [0, 1]. Only numpy and scipy are imported: the module is cheap to load
in every worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

import numpy as np
from scipy import optimize, special, stats

from simulators.base import Simulator

#: Absolute tolerance of a mixture quantile (Brent's method), and the bracket width below which the parts'
#: quantiles already agree: far below the sampling error of any finite set of calls.
PPF_XTOL = 1e-12


class _Dist(Protocol):
    """What a problem returns at θ: the parts of a frozen scipy distribution the scores use."""

    def mean(self) -> float: ...
    def std(self) -> float: ...
    def ppf(self, q: float) -> float: ...
    def cdf(self, x: float) -> float: ...
    def sf(self, x: float) -> float: ...
    def rvs(self, size: int, random_state: np.random.Generator) -> np.ndarray: ...


class Mixture:
    """A finite mixture of frozen scipy distributions, with the same methods (ppf by bracketing)."""

    def __init__(self, weights: list[float], parts: list[Any]) -> None:
        w = np.asarray(weights, dtype=float)
        self.w, self.parts = w / w.sum(), parts

    def mean(self) -> float:
        """The mixture's mean, ``Σ w_j·μ_j``."""
        return float(sum(w * p.mean() for w, p in zip(self.w, self.parts)))

    def std(self) -> float:
        """The mixture's standard deviation, from its second moment ``Σ w_j·(σ_j² + μ_j²)``."""
        m = self.mean()
        second = sum(w * (p.var() + p.mean() ** 2) for w, p in zip(self.w, self.parts))
        return float(np.sqrt(max(second - m * m, 0.0)))

    def cdf(self, x: float) -> float:
        """``P(Y ≤ x)``."""
        return float(sum(w * p.cdf(x) for w, p in zip(self.w, self.parts)))

    def sf(self, x: float) -> float:
        """``P(Y > x)``."""
        return 1.0 - self.cdf(x)

    def ppf(self, q: float) -> float:
        """The ``q``-quantile, found by Brent's method between the parts' own ``q``-quantiles (which bracket it)."""
        lo = min(p.ppf(q) for p in self.parts)  # the mixture's quantile lies between its parts' quantiles
        hi = max(p.ppf(q) for p in self.parts)
        if hi - lo < PPF_XTOL:
            return float(lo)
        return float(optimize.brentq(lambda x: self.cdf(x) - q, lo, hi, xtol=PPF_XTOL))

    def rvs(self, size: int, random_state: np.random.Generator) -> np.ndarray:
        """``[size]`` draws: each picks a part by weight, then draws from it with ``random_state``."""
        which = random_state.choice(len(self.parts), size=size, p=self.w)
        out = np.empty(size)
        for j, p in enumerate(self.parts):
            m = which == j
            if m.any():
                out[m] = p.rvs(size=int(m.sum()), random_state=random_state)
        return out


class PointMassAtZero(Mixture):
    """``P(y = 0) = p``, else a continuous positive law: the hit-weight shape of shield outputs."""

    def __init__(self, p: float, rest: Any) -> None:
        super().__init__([p, 1.0 - p], [stats.uniform(0.0, 0.0), rest])

    def cdf(self, x: float) -> float:
        return float((self.w[0] if x >= 0 else 0.0) + self.w[1] * self.parts[1].cdf(x))

    def ppf(self, q: float) -> float:
        if q <= self.w[0]:
            return 0.0
        return float(self.parts[1].ppf((q - self.w[0]) / self.w[1]))

    def mean(self) -> float:
        return float(self.w[1] * self.parts[1].mean())

    def std(self) -> float:
        m2 = self.w[1] * (self.parts[1].var() + self.parts[1].mean() ** 2)
        return float(np.sqrt(max(m2 - self.mean() ** 2, 0.0)))

    def rvs(self, size: int, random_state: np.random.Generator) -> np.ndarray:
        zero = random_state.random(size) < self.w[0]
        out = np.zeros(size)
        out[~zero] = self.parts[1].rvs(size=int((~zero).sum()), random_state=random_state)
        return out


class FamilyProblem(Simulator):
    """A problem of the family: :meth:`dist` gives the exact output law at θ.

    Multi-output problems override :meth:`simulate` and declare which output :meth:`dist` describes.
    """

    dim: ClassVar[int] = 2
    parameters: tuple[str, ...]  # x1 … xd, set by __init__
    #: A one-line description of the distribution's shape, for tables.
    shape: ClassVar[str] = ""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.parameters = tuple(f"x{i + 1}" for i in range(self.dim))
        self.delay_s = float(delay_s)

    def _u(self, params: Mapping[str, float | str]) -> np.ndarray:
        return np.array([float(params[p]) for p in self.parameters])

    def dist(self, u: np.ndarray) -> _Dist:
        """The output law at unit point ``u [d]``."""
        raise NotImplementedError

    def default_params(self) -> dict[str, float]:
        return {p: 0.5 for p in self.parameters}

    def simulate(self, params: Mapping[str, float | str], n: int, seed: int) -> np.ndarray:
        from simulators.base import emulate_cost

        emulate_cost(self.delay_s)
        return self.dist(self._u(params)).rvs(size=n, random_state=np.random.default_rng(seed))[:, None]

    # -- exact scores (benchmarks only; never seen by a strategy) --------------------------
    def true_statistic(self, params: Mapping[str, float | str], statistic: str, q: float | None = None,
                       threshold: float | None = None) -> float:
        """The exact value of a study statistic of the output law at ``params``."""
        d = self.dist(self._u(params))
        if statistic == "mean":
            return float(d.mean())
        if statistic == "std":
            return float(d.std())
        if statistic == "median":
            return float(d.ppf(0.5))
        if statistic == "quantile":
            assert q is not None
            return float(d.ppf(q))
        if statistic == "fraction_above":
            assert threshold is not None
            return float(d.sf(threshold))
        if statistic == "fraction_below":
            assert threshold is not None
            return float(d.cdf(threshold))
        raise ValueError(f"no exact value for statistic '{statistic}'")

    def true_optimum(self, statistic: str, q: float | None = None, threshold: float | None = None,
                     starts: int = 64, seed: int = 0) -> tuple[float, np.ndarray]:
        """Minimum of the exact statistic over [0, 1]^d by multi-start bounded L-BFGS (a benchmark's
        reference value; the problems are smooth enough for it). Returns ``(value, u*)``."""
        def f(u: np.ndarray) -> float:
            return self.true_statistic(dict(zip(self.parameters, np.clip(u, 0, 1))), statistic, q, threshold)

        rng = np.random.default_rng(seed)
        x0s = np.vstack([stats.qmc.Sobol(self.dim, seed=rng).random(starts), np.full((1, self.dim), 0.5)])
        vals = np.array([f(x) for x in x0s])
        best_v, best_u = np.inf, x0s[0]
        for x0 in x0s[np.argsort(vals)[:8]]:
            res = optimize.minimize(f, x0, method="L-BFGS-B", bounds=[(0, 1)] * self.dim)
            if res.fun < best_v:
                best_v, best_u = float(res.fun), np.clip(res.x, 0, 1)
        return best_v, best_u


def _sq(u: np.ndarray, c: float | np.ndarray) -> float:
    return float(np.sum((u - c) ** 2))


class SkewedHeteroscedastic(FamilyProblem):
    """6-D. y = g(θ) + s(θ)·(G − k)/√k, G ~ Gamma(k = 2): the mean is smallest at 0.3·1, while the
    right-skewed noise grows away from 0.7·1, so the 0.9 quantile's optimum lies between the two."""

    dim = 6
    shape = "skewed, scale grows away from a second centre"
    K = 2.0

    def dist(self, u: np.ndarray) -> _Dist:
        g, s = _sq(u, 0.3), 0.05 + 1.5 * _sq(u, 0.7)
        return stats.gamma(self.K, loc=g - s * np.sqrt(self.K), scale=s / np.sqrt(self.K))


class Bimodal(FamilyProblem):
    """2-D. Two Gaussian modes: a low one whose weight falls with x1 and a high one that the mean
    averages away; the 0.9 quantile sits on the high mode wherever its weight exceeds 10 %."""

    dim = 2
    shape = "two modes, θ-dependent weight and separation"

    def dist(self, u: np.ndarray) -> _Dist:
        w_high = float(special.expit(8.0 * (u[0] - 0.35)))
        base = 2.0 * (u[1] - 0.6) ** 2 + 0.5 * (u[0] - 0.8) ** 2
        gap = 0.5 + 2.5 * u[0] * (1 - u[1])
        return Mixture([1 - w_high, w_high], [stats.norm(base, 0.1), stats.norm(base + gap, 0.15)])


class PointMass(FamilyProblem):
    """4-D. y = 0 with probability p(θ) (a muon stopped: hit weight exactly 0), else log-normal.
    The mean trades p against the log-normal's median; a rare-exceedance fraction (y > 1) weighs its
    θ-dependent tail width instead."""

    dim = 4
    shape = "point mass at 0 plus log-normal with θ-dependent tail"

    def dist(self, u: np.ndarray) -> _Dist:
        p = float(special.expit(3.0 - 10.0 * _sq(u[:2], 0.65)))
        # a wider log-normal (x3 up) has a lower median: the mean and the exceedance trade x3 differently
        mu = -0.5 + 2.0 * _sq(u[[0, 1, 3]], np.array([0.3, 0.3, 0.5])) - 1.2 * u[2]
        sigma = 0.2 + 1.6 * u[2]
        return PointMassAtZero(p, stats.lognorm(sigma, scale=np.exp(mu)))


class HeavyTail(FamilyProblem):
    """3-D. Student-t with θ-dependent degrees of freedom ν = 2.5 + 30·x3: the mean ignores x3, a
    0.99 quantile prefers large ν (light tails) and pays for it in location."""

    dim = 3
    shape = "Student-t, tail weight depends on θ"

    def dist(self, u: np.ndarray) -> _Dist:
        nu = 2.5 + 30.0 * u[2]
        loc = _sq(u[:2], 0.4) + 0.6 * u[2] ** 2
        return stats.t(nu, loc=loc, scale=0.3)


class Heteroscedastic(FamilyProblem):
    """10-D. Gaussian, mean a weighted quadratic around 0.3·1, standard deviation growing with
    distance from a centre at x1 = 0.8: the tail optimum is pulled along x1."""

    dim = 10
    shape = "Gaussian, heteroscedastic"
    W = np.linspace(1.0, 0.2, 10)

    def dist(self, u: np.ndarray) -> _Dist:
        g = float(np.sum(self.W * (u - 0.3) ** 2))
        s = 0.1 + 3.0 * (u[0] - 0.8) ** 2
        return stats.norm(g, s)


class CorrelatedPair(FamilyProblem):
    """5-D, two outputs and their sum. (y1, y2) bivariate normal with correlation ρ(θ) = tanh(3(x5 − 0.5)):
    the mean of the sum ignores ρ, the 0.95 quantile of the sum prefers anti-correlated outputs. The exact
    scores describe the ``sum`` column."""

    dim = 5
    shape = "two correlated outputs, objective on their sum"
    outputs = ("y1", "y2", "sum")
    SIGMA = 0.5

    def _moments(self, u: np.ndarray) -> tuple[float, float, float]:
        g1 = _sq(u[:2], 0.3) + 0.3 * u[4] ** 2
        g2 = _sq(u[2:4], 0.6) + 0.3 * (1 - u[4]) ** 2
        rho = float(np.tanh(3.0 * (u[4] - 0.5)))
        return g1, g2, rho

    def dist(self, u: np.ndarray) -> _Dist:
        g1, g2, rho = self._moments(u)
        return stats.norm(g1 + g2, self.SIGMA * np.sqrt(2.0 * (1.0 + rho)))

    def simulate(self, params: Mapping[str, float | str], n: int, seed: int) -> np.ndarray:
        g1, g2, rho = self._moments(self._u(params))
        rng = np.random.default_rng(seed)
        z1, z2 = rng.standard_normal(n), rng.standard_normal(n)
        y1 = g1 + self.SIGMA * z1
        y2 = g2 + self.SIGMA * (rho * z1 + np.sqrt(1.0 - rho * rho) * z2)
        return np.stack([y1, y2, y1 + y2], axis=1)


#: The family, by registered simulator name; each entry: (class, tail objective of the benchmark).
FAMILY: dict[str, tuple[type[FamilyProblem], dict[str, Any]]] = {
    "family_skewed": (SkewedHeteroscedastic, {"statistic": "quantile", "q": 0.9}),
    "family_bimodal": (Bimodal, {"statistic": "quantile", "q": 0.9}),
    "family_point_mass": (PointMass, {"statistic": "fraction_above", "threshold": 1.0}),
    "family_heavy_tail": (HeavyTail, {"statistic": "quantile", "q": 0.99}),
    "family_hetero": (Heteroscedastic, {"statistic": "quantile", "q": 0.9}),
    "family_correlated": (CorrelatedPair, {"statistic": "quantile", "q": 0.95, "output": "sum"}),
}
