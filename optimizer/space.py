"""The design space: named parameters ↔ points of the unit cube.

Strategies work in ``[0, 1]^d``; simulators receive physical values. Log-scaled
parameters are uniform in log space; integer parameters are rounded when mapped out.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from optimizer.study import Parameter


class SearchSpace:
    """Maps between unit-cube arrays and named physical parameters."""

    def __init__(self, parameters: Mapping[str, Parameter]) -> None:
        self.parameters = dict(parameters)
        self.names: list[str] = list(parameters)
        p = list(parameters.values())
        self._log = np.array([q.log for q in p])
        self._int = np.array([q.integer for q in p])
        lo = np.array([q.low for q in p], dtype=float)
        hi = np.array([q.high for q in p], dtype=float)
        # Integers own the interval [k - 0.5, k + 0.5] so every integer is equally likely.
        lo = np.where(self._int, np.ceil(lo) - 0.5 + 1e-9, lo)
        hi = np.where(self._int, np.floor(hi) + 0.5 - 1e-9, hi)
        self._lo = np.where(self._log, np.log(np.where(self._log, lo, 1.0)), lo)
        self._hi = np.where(self._log, np.log(np.where(self._log, hi, 1.0)), hi)

    @property
    def dim(self) -> int:
        return len(self.names)

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """``u``: ``[..., d]`` in the unit cube → ``[..., d]`` physical values."""
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        x = self._lo + u * (self._hi - self._lo)
        x = np.where(self._log, np.exp(x), x)
        return np.where(self._int, np.round(x), x)

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        """``x``: ``[..., d]`` physical values → ``[..., d]`` in the unit cube."""
        x = np.asarray(x, dtype=float)
        x = np.where(self._log, np.log(np.maximum(x, 1e-300)), x)
        return np.clip((x - self._lo) / (self._hi - self._lo), 0.0, 1.0)

    def to_params(self, x: np.ndarray) -> dict[str, float | int]:
        """One physical point ``[d]`` → ``{name: value}`` (``int`` for integer parameters)."""
        return {n: (int(v) if i else float(v)) for n, v, i in zip(self.names, np.asarray(x).tolist(), self._int)}

    def from_params(self, params: Mapping[str, float]) -> np.ndarray:
        """``{name: value}`` → ``[d]`` physical values in the space's order."""
        return np.array([float(params[n]) for n in self.names])
