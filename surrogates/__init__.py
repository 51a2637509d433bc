"""Conditional generative surrogates G(z, θ) and their registry.

The protocol lives in :mod:`surrogates.base`; implementations register here by name.
``Surrogate`` (torch) loads on first use, so ``import surrogates`` costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optimizer.registry import Registry, lazy_exports

if TYPE_CHECKING:
    from surrogates.base import Surrogate

SURROGATES: Registry[type[Surrogate]] = Registry(
    "surrogate",
    {
        "mdn": "surrogates.mdn:MDN",
        "wgan": "surrogates.wgan:ConditionalWGAN",
    },
)

__getattr__, __dir__ = lazy_exports(__name__, {"Surrogate": "surrogates.base"})

__all__ = ["SURROGATES", "Surrogate"]
