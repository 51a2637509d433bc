"""The Surrogate protocol: a conditional generative model of a simulator's output distribution."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor


class Surrogate(ABC):
    """Learns p(y | θ) from every stored call and samples from it.

    ``θ`` is in the unit cube; outputs are whatever the simulator returns (implementations
    standardise internally).
    """

    @abstractmethod
    def fit(self, theta: Tensor, samples: Tensor, warm_start: bool = True) -> None:
        """Fit (or refit, starting from the current weights when ``warm_start``).

        Args:
            theta: ``[N, d]`` unit-cube points of the stored calls.
            samples: ``[N, n, k]`` their output samples.
        """

    @abstractmethod
    def sample(self, theta: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` outputs at each point: ``theta [M, d]`` → ``[M, n, k]``."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore the fitted model (saved with the campaign)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a model saved by :meth:`state_dict`."""
