"""Stochastic benchmark problems of the WU-GO paper (Ramazyan et al., ECAI 2024), vectorised in torch.

Two families, named apart:

* ``*_paper`` reproduce the public WU-GO code exactly: the response is
  ``log(f(θ) + 1e-8)`` plus N(0, 0.1²) noise, 1000 samples per call in the paper's
  studies, Ackley with its ``cos(2·π^x)`` typo, Styblinski–Tang with the
  ``39.16617·d²`` offset, and Lévi with its θ-dependent two-component mixture noise.
* the plain names are the textbook functions (no log transform, Gaussian noise of
  ``sigma``; Ackley and Styblinski–Tang in their standard forms).

Parameters are named ``x1 … xd``. ``known_optima``/``optimum_value`` serve regret
reports only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from simulators.base import Simulator, emulate_cost

#: Offset inside the log of the log-transformed variants, so a response of exactly 0 (at the minimum) stays finite.
LOG_EPS = 1e-8


class Benchmark(Simulator):
    """A test function ``f: [..., d] -> [...]`` observed through noise.

    Args:
        dim: input dimension (only for the problems defined in any dimension).
        sigma: noise standard deviation of the response.
        delay_s: seconds each call sleeps, to emulate an expensive simulator.
    """

    outputs = ("y",)
    parameters: tuple[str, ...]  # x1 … xd, set by __init__
    default_dim = 2
    variable_dim = False
    log_transform = False
    #: Paper's success radius around the optimum, in parameter space.
    epsilon: float = 0.1
    domain: tuple[float, float] = (-5.0, 5.0)

    def __init__(self, dim: int | None = None, sigma: float = 0.1, delay_s: float = 0.0) -> None:
        if dim is not None and dim != self.default_dim and not self.variable_dim:
            raise ValueError(f"{type(self).__name__} is defined only for dim={self.default_dim}")
        self.dim = int(dim or self.default_dim)
        if self.dim < 2:
            raise ValueError("dim must be at least 2")
        if sigma < 0:
            raise ValueError("sigma must be non-negative")
        self.sigma = float(sigma)
        self.delay_s = float(delay_s)
        self.parameters = tuple(f"x{i + 1}" for i in range(self.dim))

    # -- the function --------------------------------------------------------------
    def f(self, x: Tensor) -> Tensor:
        """Raw noise-free function. ``x``: ``[..., d]`` → ``[...]``."""
        raise NotImplementedError

    def optima(self) -> Tensor:
        """Global minimisers, ``[m, d]``."""
        raise NotImplementedError

    def expected(self, x: Tensor) -> Tensor:
        """Noise-free mean response. ``x``: ``[..., d]`` → ``[...]``."""
        y = self.f(x)
        return torch.log(y + LOG_EPS) if self.log_transform else y

    def noise(self, x: Tensor, n: int, gen: torch.Generator) -> Tensor:
        """Additive noise of one call at ``x`` (``[d]``) → ``[n]``."""
        return self.sigma * torch.randn(n, generator=gen, dtype=torch.float64)

    # -- Simulator protocol ---------------------------------------------------------
    def _theta(self, params: Mapping[str, float | str]) -> Tensor:
        return torch.tensor([float(params[name]) for name in self.parameters], dtype=torch.float64)

    def simulate(self, params: Mapping[str, float | str], n: int, seed: int) -> np.ndarray:
        """``[n, 1]`` samples: the noise-free response at θ plus :meth:`noise`, drawn from a generator seeded by ``seed``."""
        emulate_cost(self.delay_s)
        x = self._theta(params)
        gen = torch.Generator().manual_seed(int(seed))
        y = self.expected(x) + self.noise(x, n, gen)
        return y.reshape(n, 1).numpy()

    def known_optima(self) -> list[dict[str, float]]:
        return [dict(zip(self.parameters, row.tolist())) for row in self.optima()]

    def optimum_value(self) -> float:
        return float(self.expected(self.optima()[0]))


class ThreeHumpCamel(Benchmark):
    """Textbook three-hump camel in 2-D, ``2a² − 1.05a⁴ + a⁶/6 + ab + b²``: minimum 0 at the origin."""

    def f(self, x: Tensor) -> Tensor:
        a, b = x[..., 0], x[..., 1]
        return 2 * a**2 - 1.05 * a**4 + a**6 / 6 + a * b + b**2

    def optima(self) -> Tensor:
        return torch.zeros(1, 2, dtype=torch.float64)


class Ackley(Benchmark):
    """Textbook Ackley in any dimension: minimum 0 at the origin."""

    variable_dim = True

    def f(self, x: Tensor) -> Tensor:
        d = x.shape[-1]
        r = torch.sqrt((x**2).sum(-1) / d)
        c = torch.cos(2 * math.pi * x).sum(-1) / d
        return -20 * torch.exp(-0.2 * r) - torch.exp(c) + math.e + 20

    def optima(self) -> Tensor:
        return torch.zeros(1, self.dim, dtype=torch.float64)


class Levi(Benchmark):
    """Lévi N.13: minimum 0 at (1, 1)."""

    domain = (-4.0, 6.0)

    def f(self, x: Tensor) -> Tensor:
        a, b = x[..., 0], x[..., 1]
        return (
            torch.sin(3 * math.pi * a) ** 2
            + (a - 1) ** 2 * (1 + torch.sin(3 * math.pi * b) ** 2)
            + (b - 1) ** 2 * (1 + torch.sin(2 * math.pi * b) ** 2)
        )

    def optima(self) -> Tensor:
        return torch.ones(1, 2, dtype=torch.float64)


class Himmelblau(Benchmark):
    """Four global minima of value 0."""

    def f(self, x: Tensor) -> Tensor:
        a, b = x[..., 0], x[..., 1]
        return (a**2 + b - 11) ** 2 + (a + b**2 - 7) ** 2

    def optima(self) -> Tensor:
        return torch.tensor(
            [[3.0, 2.0], [-2.805118, 3.131312], [-3.779310, -3.283186], [3.584428, -1.848126]], dtype=torch.float64
        )


class Rosenbrock(Benchmark):
    """Textbook Rosenbrock valley in any dimension (default 8) on ``[-2, 2]^d``: minimum 0 at ``(1, …, 1)``."""

    variable_dim = True
    default_dim = 8
    domain = (-2.0, 2.0)

    @property
    def epsilon(self) -> float:  # type: ignore[override]
        # the paper's success radii for its 8-D and 20-D runs; 0.1·√d in other dimensions
        return {8: 1.1, 20: 2.0}.get(self.dim, 0.1 * math.sqrt(self.dim))

    def f(self, x: Tensor) -> Tensor:
        return (100 * (x[..., 1:] - x[..., :-1] ** 2) ** 2 + (1 - x[..., :-1]) ** 2).sum(-1)

    def optima(self) -> Tensor:
        return torch.ones(1, self.dim, dtype=torch.float64)


TANG_ARGMIN = -2.903534


class StyblinskiTang(Benchmark):
    """Textbook ``½·Σ(x⁴ − 16x² + 5x)``: minimum ≈ −39.16617·d at x_i = −2.903534."""

    variable_dim = True
    default_dim = 20
    epsilon = 5.0

    def f(self, x: Tensor) -> Tensor:
        return 0.5 * (x**4 - 16 * x**2 + 5 * x).sum(-1)

    def optima(self) -> Tensor:
        return torch.full((1, self.dim), TANG_ARGMIN, dtype=torch.float64)


# -- the variants exactly as the WU-GO public code defines them -------------------------
class _Paper:
    log_transform = True


class ThreeHumpCamelPaper(_Paper, ThreeHumpCamel):
    """The three-hump camel as the WU-GO code uses it: the textbook function, observed as ``log(f + LOG_EPS)``."""


class AckleyPaper(_Paper, Benchmark):
    """The WU-GO code's 2-D Ackley with ``cos(2·π^x)`` for the first coordinate (minimum 1.3793 at 0)."""

    def f(self, x: Tensor) -> Tensor:
        a, b = x[..., 0], x[..., 1]
        r = torch.sqrt(0.5 * (a**2 + b**2))
        c = 0.5 * (torch.cos(2 * math.pi**a) + torch.cos(2 * math.pi * b))
        return -20 * torch.exp(-0.2 * r) - torch.exp(c) + math.e + 20

    def optima(self) -> Tensor:
        return torch.zeros(1, 2, dtype=torch.float64)


class LeviPaper(_Paper, Levi):
    """Lévi with the paper's θ-dependent two-component mixture noise (``sigma`` is unused).

    With ``s = sin²(3π·x2)``: the first ⌊n/2⌋ samples are N(m − 0.05, (0.04 − 0.03s)²),
    the rest N(m + 0.05, (0.001 + 0.03s)²).
    """

    def noise(self, x: Tensor, n: int, gen: torch.Generator) -> Tensor:
        s = torch.sin(3 * math.pi * x[1]) ** 2
        half = n // 2
        z = torch.randn(n, generator=gen, dtype=torch.float64)
        low = -0.05 + (0.04 - 0.03 * s) * z[:half]
        high = 0.05 + (0.001 + 0.03 * s) * z[half:]
        return torch.cat([low, high])


class HimmelblauPaper(_Paper, Himmelblau):
    """Himmelblau as the WU-GO code uses it: the textbook function (four minima), observed as ``log(f + LOG_EPS)``."""


class RosenbrockPaper(_Paper, Rosenbrock):
    """Rosenbrock as the WU-GO code uses it: the textbook function, observed as ``log(f + LOG_EPS)``."""


class StyblinskiTangPaper(_Paper, StyblinskiTang):
    """The WU-GO code's Tang: ``Σ(x⁴ − 16x² + 5x) + 39.16617·d²`` (no ½), log-transformed."""

    def f(self, x: Tensor) -> Tensor:
        d = x.shape[-1]
        return (x**4 - 16 * x**2 + 5 * x + 39.16617 * d).sum(-1)


class BraninCurrin(Simulator):
    """Two-objective test problem with a known Pareto front (BoTorch's ``BraninCurrin``, both minimised)
    observed through Gaussian noise: each sample is ``(branin, currin) + N(0, sigma²)``.

    Parameters ``x1, x2`` in [0, 1]. The hypervolume of the true front w.r.t. the reference point
    (18, 6) is :attr:`MAX_HV` (BoTorch's NSGA-II estimate), for benchmark scores only.

    Args:
        sigma: noise standard deviation of (branin, currin) per sample.
        delay_s: seconds each call sleeps, to emulate an expensive simulator.
    """

    outputs = ("branin", "currin")
    parameters = ("x1", "x2")
    REF_POINT = (18.0, 6.0)
    MAX_HV = 59.36011874867746

    def __init__(self, sigma: tuple[float, float] | list[float] = (15.0, 0.5), delay_s: float = 0.0) -> None:
        from botorch.test_functions.multi_objective import BraninCurrin as _BC

        if len(sigma) != 2 or min(sigma) < 0:
            raise ValueError("sigma must be two non-negative numbers (branin, currin)")
        self.sigma = torch.tensor([float(s) for s in sigma], dtype=torch.float64)
        self.delay_s = float(delay_s)
        self._f = _BC()

    def default_params(self) -> dict[str, float]:
        return {"x1": 0.5, "x2": 0.5}

    def expected(self, x: Tensor) -> Tensor:
        """Noise-free objectives: ``x [..., 2]`` → ``[..., 2]`` (branin, currin)."""
        return self._f.evaluate_true(x.to(torch.float64))

    def simulate(self, params: Mapping[str, float | str], n: int, seed: int) -> np.ndarray:
        """``[n, 2]`` samples: the noise-free Branin and Currin values at θ plus Gaussian noise of ``sigma`` per column."""
        emulate_cost(self.delay_s)
        x = torch.tensor([[float(params["x1"]), float(params["x2"])]], dtype=torch.float64)
        gen = torch.Generator().manual_seed(int(seed))
        y = self.expected(x) + self.sigma * torch.randn(n, 2, generator=gen, dtype=torch.float64)
        return y.numpy()
