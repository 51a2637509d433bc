"""The Surrogate protocol: a conditional generative model G(z, θ) of a simulator's output distribution."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor

# Mixes the model seed with the refit count into one minibatch stream per fit (a prime, so
# seed·P + fits never collides between seeds for fewer than P refits).
FIT_STREAM_PRIME = 7919


class Surrogate(ABC):
    """Learns p(y | θ) from every stored call and samples from it.

    Constructed as ``cls(dim, k, seed=..., **options)``: ``dim`` inputs (θ in the unit
    cube), ``k`` output columns (raw simulator units; implementations standardise inside).
    """

    def __init__(self, dim: int, k: int, seed: int = 0) -> None:
        self.dim, self.k, self.seed = dim, k, seed
        self.fits = 0

    @abstractmethod
    def fit(self, theta: Tensor, samples: Tensor) -> None:
        """Fit on all stored calls; from the second call on, start from the current weights.

        Args:
            theta: ``[N, d]`` unit-cube points of the stored calls.
            samples: ``[N, n, k]`` their output samples.
        """

    @abstractmethod
    def sample(self, theta: Tensor, n: int, generator: torch.Generator | None = None, common: bool = False) -> Tensor:
        """Draw ``n`` outputs at each point: ``theta [M, d]`` → ``[M, n, k]`` (no gradients).

        With ``common=True`` every point uses the same latent draws (common random numbers), so
        differences between points are not blurred by sampling noise.
        """

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore the fitted model."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a model saved by :meth:`state_dict`."""


def mlp(inp: int, out: int, hidden: int, layers: int, act: type[torch.nn.Module] = torch.nn.SiLU) -> torch.nn.Sequential:
    """A ``layers``-hidden-layer perceptron ``[..., inp]`` → ``[..., out]``, each hidden layer ``hidden`` wide followed by ``act``."""
    mods: list[torch.nn.Module] = []
    width = inp
    for _ in range(layers):
        mods += [torch.nn.Linear(width, hidden), act()]
        width = hidden
    mods.append(torch.nn.Linear(width, out))
    return torch.nn.Sequential(*mods)


#: Floor of a column's standard deviation: a constant output (all samples equal) divides by this, not by 0.
MIN_STD = 1e-12


class Standardizer:
    """Per-column affine standardisation of outputs, refreshed at each fit."""

    def __init__(self, k: int) -> None:
        self.mean = torch.zeros(k, dtype=torch.float64)
        self.std = torch.ones(k, dtype=torch.float64)

    def fit(self, y: Tensor) -> None:
        """Set the per-column mean and standard deviation from ``y [..., k]`` (all leading dimensions pooled)."""
        flat = y.reshape(-1, y.shape[-1]).double()
        self.mean = flat.mean(0)
        self.std = flat.std(0).clamp_min(MIN_STD)

    def forward(self, y: Tensor) -> Tensor:
        """``y [..., k]`` → standardised ``[..., k]`` (float32, as the networks take it)."""
        return ((y.double() - self.mean) / self.std).float()

    def inverse(self, z: Tensor) -> Tensor:
        """Standardised ``z [..., k]`` → ``[..., k]`` in the outputs' own units (float64)."""
        return z.double() * self.std + self.mean

    def state(self) -> dict[str, Tensor]:
        """``{"mean": [k], "std": [k]}`` for a surrogate's ``state_dict``."""
        return {"mean": self.mean, "std": self.std}

    def load(self, s: dict[str, Tensor]) -> None:
        """Restore the statistics saved by :meth:`state`."""
        self.mean, self.std = s["mean"], s["std"]
