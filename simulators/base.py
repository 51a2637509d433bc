"""The Simulator protocol: θ (named parameters), a sample count and a seed in; samples out.

A call returns a *distribution* of outputs: an array of samples ``[n, k]``, one
column per declared output name. Deterministic per-θ quantities (mass, cost,
length) come from :meth:`Simulator.quantities_at` without running the simulation.
"""

from __future__ import annotations

import inspect
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    import torch


class InfeasibleDesign(Exception):
    """Raised by a simulator when θ describes a geometry that cannot be built.

    The call is recorded as ``infeasible`` (not as a simulator failure).
    """


class TransientError(Exception):
    """Raised by a simulator when a failure may go away on a re-run (a file-system hiccup, a busy GPU, a
    licence server): the call is recorded with failure kind ``transient`` and re-run up to
    ``execution.retries`` times, which is the default policy for this kind (``execution.retry_on``).
    """


class SimulatorOptionError(ValueError):
    """A simulator refuses its options (or the study's parameters) when it is built, before any call runs.

    Args:
        field: the study path of what is wrong, e.g. ``simulator.options.command`` or ``parameters.seed``.
        message: what is wrong, one line.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass
class SimulationResult:
    """What one simulator call produced.

    Attributes:
        samples: ``[n, k]`` array, columns in the order of ``Simulator.outputs``.
        metadata: small JSON-serialisable facts about the call (stored in the journal).
    """

    samples: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)


class Simulator(ABC):
    """Base class of every simulator a study can name.

    Subclasses set ``outputs`` (names of the ``k`` sample columns), optionally
    ``quantities`` (deterministic per-θ numbers) and ``parameters`` (the names θ
    must have, or may have when ``parameters_are_subset``; ``None`` accepts any),
    and implement :meth:`simulate`.
    Constructor keyword arguments are the study's ``simulator.options``.
    """

    outputs: tuple[str, ...] = ("y",)
    quantities: tuple[str, ...] = ()
    parameters: tuple[str, ...] | None = None
    #: Whether a study may vary any subset of ``parameters`` (the rest keep the simulator's design values).
    parameters_are_subset: ClassVar[bool] = False
    #: Whether a call must return exactly ``n`` rows.
    fixed_sample_count: ClassVar[bool] = True

    @abstractmethod
    def simulate(self, params: Mapping[str, float | str], n: int, seed: int) -> np.ndarray | SimulationResult:
        """Run one call.

        Args:
            params: parameter name → value in physical units (integers as ``int``, a categorical parameter's
                choice as the study spells it); inactive conditional parameters are left out.
            n: number of samples (events, particles, replicas) to produce.
            seed: the call's seed; the same seed must give the same samples on the same device.

        Returns:
            ``[n, k]`` samples (``[n]`` is accepted when ``k == 1``) or a :class:`SimulationResult`.
        """

    def check_parameters(self, example: Mapping[str, float | str]) -> None:
        """Refuse, at load, study parameters this simulator cannot take.

        Args:
            example: a θ of the study (each parameter at its lower bound, integers as ``int``).

        Raises:
            SimulatorOptionError: naming the study field.
        """

    def default_params(self) -> dict[str, float] | None:
        """A valid θ (the simulator's reference design), or ``None``; conformance tests run there."""
        return None

    def quantities_at(self, params: Mapping[str, float | str]) -> dict[str, float]:
        """Deterministic per-θ quantities, e.g. ``{"mass": 1.27e6}``; one value per ``quantities`` name."""
        return {}

    # Benchmark-only knowledge, used for regret reports and never by a strategy.
    def known_optima(self) -> list[dict[str, float]] | None:
        """Parameter sets of the known global optima, or ``None``."""
        return None

    def optimum_value(self) -> float | None:
        """Noise-free mean of the first output at the optimum, or ``None``."""
        return None


class FunctionSimulator(Simulator):
    """Wraps a user function ``fn(params: dict, n: int, seed: int, **options) -> array [n, k]``.

    A study names it as ``simulator.name: "my_module:my_function"``.
    """

    def __init__(self, function: Callable[..., Any], outputs: tuple[str, ...] = ("y",), **options: Any) -> None:
        check_signature(function, options)
        self.function = function
        self.outputs = tuple(outputs)
        self.options = options

    def simulate(self, params: Mapping[str, float | str], n: int, seed: int) -> np.ndarray | SimulationResult:
        """Call the wrapped function as ``function(params, n, seed, **options)``."""
        return self.function(dict(params), n, seed, **self.options)


def check_signature(function: Callable[..., Any], options: Mapping[str, Any]) -> None:
    """Refuse a function that cannot be called as ``function(params, n, seed, **options)``.

    Raises:
        SimulatorOptionError: on ``simulator.name`` (wrong positional parameters) or on
            ``simulator.options[.key]`` (an option it does not take, or one it needs).
    """
    try:
        sig = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: its first call will tell
        return
    name = getattr(function, "__qualname__", None) or repr(function)
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 3 and not any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params):
        raise SimulatorOptionError("simulator.name", f"{name}{sig} must take (params, n, seed, **options)")
    for key in options:
        try:
            sig.bind_partial(None, 0, 0, **{key: None})
        except TypeError:
            raise SimulatorOptionError(f"simulator.options.{key}", f"{name}{sig} cannot take option '{key}'") from None
    try:
        sig.bind(None, 0, 0, **options)
    except TypeError as err:
        raise SimulatorOptionError("simulator.options", f"{name}{sig}: {err}") from None


def check_result(sim: Simulator, raw: Any, n: int) -> SimulationResult:
    """Validate what ``simulate`` returned and normalise it to ``[n, k]`` float samples.

    Raises:
        ValueError: wrong type or shape, or NaN/inf in the samples.
    """
    result = raw if isinstance(raw, SimulationResult) else SimulationResult(np.asarray(raw))
    samples = np.asarray(result.samples)
    if samples.dtype == object or not np.issubdtype(samples.dtype, np.number):
        raise ValueError(f"samples must be numeric, got dtype {samples.dtype}")
    k = len(sim.outputs)
    if samples.ndim == 1 and k == 1:
        samples = samples[:, None]
    if samples.ndim != 2 or samples.shape[1] != k:
        raise ValueError(f"samples must have shape [n, {k}] (outputs {list(sim.outputs)}), got {list(samples.shape)}")
    if sim.fixed_sample_count and samples.shape[0] != n:
        raise ValueError(f"expected {n} samples, got {samples.shape[0]}")
    if samples.shape[0] == 0:
        raise ValueError("the call returned no samples")
    if not np.all(np.isfinite(samples)):
        bad = int(np.sum(~np.isfinite(samples)))
        raise ValueError(f"samples contain {bad} NaN/inf values")
    result.samples = np.ascontiguousarray(samples, dtype=np.float64 if samples.dtype == np.float64 else np.float32)
    return result


def chunk_generator(seed: int, chunk: int, device: "torch.device") -> "torch.Generator":
    """A generator for one chunk of a call, seeded independently per (call seed, chunk index)."""
    import torch

    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFF, int(chunk)]).generate_state(1, np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state >> 1))


def run_in_chunks(n: int, chunk: int, seed: int, device: "torch.device",
                  step: Callable[[int, int, "torch.Generator"], dict[str, "torch.Tensor"]]) -> dict[str, "torch.Tensor"]:
    """Run ``step(start, size, generator)`` over consecutive chunks of ``n`` particles (bounded memory),
    each with its own :func:`chunk_generator`, and concatenate the per-particle columns ``[n]``."""
    import torch

    parts = [step(start, min(chunk, n - start), chunk_generator(seed, c, device))
             for c, start in enumerate(range(0, n, chunk))]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def resolve_device(device: str) -> "torch.device":
    """``auto`` → CUDA when the worker has a GPU, else the CPU; ``cpu``/``cuda`` as given."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def emulate_cost(delay_s: float) -> None:
    """Sleep ``delay_s`` seconds: lets a fast simulator stand in for an expensive one (demos, scheduling tests)."""
    if delay_s > 0:
        time.sleep(delay_s)
