"""A surrogate conditioned on one-hot choices instead of a categorical parameter's unit-cube bin.

detopt's strategies see a categorical parameter with ``k`` choices as one coordinate split into ``k`` equal
bins. A network fed that coordinate must learn steps at the bin edges and meets the choices in an arbitrary
order (Cu "between" W and Fe). :class:`OneHot` replaces each such coordinate by ``k`` indicator inputs and
keeps every range coordinate as it is, so choices are unordered and equally far apart; it wraps any
:class:`~surrogates.base.Surrogate` and forwards everything else to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from surrogates.base import Surrogate


def encoded_dim(n_choices: Sequence[int]) -> int:
    """Inputs after encoding: one per range coordinate (``0`` choices), ``k`` per categorical one."""
    return sum(int(k) if k > 0 else 1 for k in n_choices)


def one_hot(theta: Tensor, n_choices: Sequence[int]) -> Tensor:
    """``theta [M, d]`` (unit cube) → ``[M, encoded_dim]``: range coordinates kept (differentiable), each categorical
    coordinate replaced by the indicator of its bin ``min(⌊u·k⌋, k − 1)``."""
    cols = []
    for j, k in enumerate(n_choices):
        u = theta[:, j : j + 1]
        if k <= 0:
            cols.append(u)
            continue
        idx = torch.clamp(torch.floor(u.detach() * k), 0, k - 1).long()[:, 0]
        cols.append(torch.nn.functional.one_hot(idx, int(k)).to(theta.dtype))
    return torch.cat(cols, dim=1)


class OneHot(Surrogate):
    """``inner`` (built for :func:`encoded_dim` inputs) seen through :func:`one_hot`; ``n_choices [d]`` as
    :attr:`optimizer.space.SearchSpace.n_choices` gives it (0 for a range)."""

    def __init__(self, inner: Surrogate, n_choices: Sequence[int]) -> None:  # noqa: D107 - the class says it
        if inner.dim != encoded_dim(n_choices):
            raise ValueError(f"the wrapped surrogate takes {inner.dim} inputs, the encoding gives {encoded_dim(n_choices)}")
        self.inner, self.n_choices = inner, [int(k) for k in n_choices]
        self.dim, self.k, self.seed = len(self.n_choices), inner.k, inner.seed

    @property
    def fits(self) -> int:  # type: ignore[override]
        return self.inner.fits

    def encode(self, theta: Tensor) -> Tensor:
        """``[M, d]`` → ``[M, encoded_dim]`` (see :func:`one_hot`)."""
        return one_hot(theta, self.n_choices)

    def fit(self, theta: Tensor, samples: Tensor) -> None:
        self.inner.fit(self.encode(theta), samples)

    def sample(self, theta: Tensor, n: int, generator: torch.Generator | None = None, common: bool = False) -> Tensor:
        return self.inner.sample(self.encode(theta), n, generator=generator, common=common)

    def mixture(self, theta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The wrapped model's mixture at the encoded ``theta`` (surrogates that have one, as the MDN)."""
        return self.inner.mixture(self.encode(theta))  # type: ignore[attr-defined]

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)

    def __getattr__(self, name: str) -> Any:
        # attributes the wrapper does not define (the MDN's C, lo, hi, scaler, steps) are the inner model's
        if name == "inner":  # not set yet (copy/unpickle): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # training settings set on the wrapper (a probe's ``steps``, lgso's ``theta_noise``) reach the model
        if name not in ("inner", "n_choices", "dim", "k", "seed") and "inner" in self.__dict__ \
                and hasattr(self.inner, name):
            setattr(self.inner, name, value)
        else:
            object.__setattr__(self, name, value)
