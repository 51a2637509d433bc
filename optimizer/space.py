"""The design space: named parameters ↔ points of the unit cube.

Strategies work in ``[0, 1]^d``; simulators receive physical values. Log-scaled
parameters are uniform in log space; integer parameters are rounded when mapped out.
A categorical parameter with ``k`` choices owns ``k`` equal bins of its coordinate (choice ``j``
is ``[j/k, (j+1)/k)``), so every strategy proposes valid choices without knowing about them; in the
physical array its value is the choice's index, and :meth:`SearchSpace.to_params` names the choice.
A conditional parameter whose condition fails is inactive: ``NaN`` in physical arrays, ``None`` in
parameter dicts, and :data:`INACTIVE_UNIT` in the unit cube (whatever a strategy proposed there).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from optimizer.study import Choice, Parameter, ParamValue

#: Unit-cube coordinate of an inactive parameter: one fixed value, so models see no spurious variation there.
INACTIVE_UNIT = 0.5


class SearchSpace:
    """Maps between unit-cube arrays and named physical parameters."""

    def __init__(self, parameters: Mapping[str, Parameter]) -> None:
        self.parameters = dict(parameters)
        self.names: list[str] = list(parameters)
        p = list(parameters.values())
        self._log = np.array([q.log for q in p], dtype=bool)
        self._int = np.array([q.integer for q in p], dtype=bool)
        self._cat = np.array([q.categorical for q in p], dtype=bool)
        #: ``[d]`` number of choices of each categorical parameter (0 for a range).
        self.n_choices = np.array([len(q.choices or ()) for q in p], dtype=int)
        lo = np.array([0.0 if q.categorical else q.bounds()[0] for q in p], dtype=float)
        hi = np.array([1.0 if q.categorical else q.bounds()[1] for q in p], dtype=float)
        # Integers own the interval [k - 0.5, k + 0.5] so every integer is equally likely.
        lo = np.where(self._int, np.ceil(lo) - 0.5 + 1e-9, lo)
        hi = np.where(self._int, np.floor(hi) + 0.5 - 1e-9, hi)
        self._lo = np.where(self._log, np.log(np.where(self._log, lo, 1.0)), lo)
        self._hi = np.where(self._log, np.log(np.where(self._log, hi, 1.0)), hi)
        # conditions as (child, parent, allowed choice indices), parents before children
        self._conditions = [(self.names.index(n), self.names.index(parent),
                             np.array([parameters[parent].choices.index(v) for v in vals]))  # type: ignore[union-attr]
                            for n in self._by_depth() for parent, vals in (parameters[n].when or {}).items()]

    def _by_depth(self) -> list[str]:
        """Conditional parameters, each after its parents (the study refuses cycles)."""
        out: list[str] = []

        def visit(n: str) -> None:
            for parent in self.parameters[n].when or {}:
                visit(parent)
            if self.parameters[n].when and n not in out:
                out.append(n)

        for n in self.names:
            visit(n)
        return out

    @property
    def dim(self) -> int:
        return len(self.names)

    @property
    def categorical(self) -> np.ndarray:
        """``[d]`` whether each coordinate is a categorical parameter."""
        return self._cat.copy()

    @property
    def conditional(self) -> bool:
        """Whether some parameter can be inactive."""
        return bool(self._conditions)

    def _mask_inactive(self, x: np.ndarray) -> np.ndarray:
        """Physical ``x [..., d]`` with inactive coordinates set to NaN (a NaN parent makes its children inactive)."""
        if not self._conditions:
            return x
        x = x.copy()
        for child, parent, allowed in self._conditions:
            ok = np.isin(x[..., parent], allowed)  # NaN is never in allowed
            x[..., child] = np.where(ok, x[..., child], np.nan)
        return x

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """``u``: ``[..., d]`` in the unit cube → ``[..., d]`` physical values (choice indices; NaN: inactive)."""
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        x = self._lo + u * (self._hi - self._lo)
        x = np.where(self._log, np.exp(x), x)
        x = np.where(self._int, np.round(x), x)
        k = np.maximum(self.n_choices, 1)
        x = np.where(self._cat, np.minimum(np.floor(u * k), k - 1), x)
        return self._mask_inactive(x)

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        """``x``: ``[..., d]`` physical values → ``[..., d]`` in the unit cube (choices at their bins' centres)."""
        x = self._mask_inactive(np.asarray(x, dtype=float))
        with np.errstate(invalid="ignore"):
            xl = np.where(self._log, np.log(np.maximum(x, 1e-300)), x)
            u = np.clip((xl - self._lo) / (self._hi - self._lo), 0.0, 1.0)
            u = np.where(self._cat, (x + 0.5) / np.maximum(self.n_choices, 1), u)
        return np.where(np.isnan(u), INACTIVE_UNIT, u)

    def to_params(self, x: np.ndarray) -> dict[str, ParamValue]:
        """One physical point ``[d]`` → ``{name: value}`` (``int`` for integers, the choice for categoricals,
        ``None`` for inactive parameters)."""
        out: dict[str, ParamValue] = {}
        for n, v, i, c in zip(self.names, np.asarray(x, dtype=float).tolist(), self._int, self._cat):
            choices = self.parameters[n].choices
            out[n] = None if v != v else choices[int(v)] if c and choices else int(v) if i else float(v)
        return out

    def from_params(self, params: Mapping[str, ParamValue]) -> np.ndarray:
        """``{name: value}`` → ``[d]`` physical values in the space's order (a conditional parameter may be
        absent or ``None``; inactive ones come out NaN).

        Raises:
            KeyError: an unconditional parameter is missing.
            ValueError: a categorical value is not one of the parameter's choices.
        """
        out = np.full(self.dim, np.nan)
        for j, n in enumerate(self.names):
            p = self.parameters[n]
            v = params[n] if n in params or not p.when else None
            if v is None:
                continue
            if p.choices is not None:
                if isinstance(v, bool) or v not in p.choices:
                    raise ValueError(f"{n}: {v!r:.40} is not one of the choices {p.choices}")
                out[j] = p.choices.index(v)
            else:
                out[j] = float(v)
        return self._mask_inactive(out)


def active_params(params: Mapping[str, ParamValue]) -> dict[str, Choice]:
    """What a simulator receives of a call's ``params``: inactive conditional parameters (``None``) left out."""
    return {k: v for k, v in params.items() if v is not None}
