"""Conditional generative surrogates G(z, θ) and their registry.

The protocol lives in :mod:`surrogates.base`; implementations register here by name.
"""

from optimizer.registry import Registry
from surrogates.base import Surrogate

SURROGATES: Registry[type[Surrogate]] = Registry(
    "surrogate",
    {
        "mdn": "surrogates.mdn:MDN",
        "wgan": "surrogates.wgan:ConditionalWGAN",
    },
)

__all__ = ["SURROGATES", "Surrogate"]
