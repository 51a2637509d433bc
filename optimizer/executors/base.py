"""The Executor protocol and the worker-side body of one simulator call.

An executor runs calls somewhere (this process, Ray workers) and hands back
:class:`CallOutcome` objects as calls finish, in completion order. Workers never
touch storage: the driver records what comes back.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import traceback
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer.space import active_params
from optimizer.study import Execution, ParamValue, SimulatorSpec

if TYPE_CHECKING:
    from simulators.factory import SimulatorArgs


@dataclass(frozen=True)
class CallRequest:
    """One simulator call to run: θ in physical units, sample count and seed."""

    call_id: int
    attempt: int
    params: dict[str, ParamValue]
    n_samples: int
    seed: int


@dataclass
class CallOutcome:
    """What came back from one call.

    ``status`` is ``completed``, ``error`` (the simulator raised), ``transient`` (it raised
    :class:`simulators.base.TransientError`: may succeed on a re-run), ``invalid_output``
    (NaN/inf, wrong shape), ``infeasible`` (the simulator rejected θ), ``timeout`` (the call
    or the simulator's own program ran too long) or ``lost`` (worker or node died; not the
    simulator's fault).
    """

    call_id: int
    attempt: int
    status: str
    samples: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    quantities: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    worker: dict[str, Any] = field(default_factory=dict)
    started: float | None = None
    finished: float | None = None


class Executor(ABC):
    """Runs simulator calls; accepts at most ``capacity`` at once (running, or queued to start as
    soon as a worker frees)."""

    capacity: int

    def __init__(self, simulator: SimulatorSpec, execution: Execution, workdir: Path | None = None) -> None:
        """How :data:`optimizer.executors.EXECUTORS` builds every registered executor.

        Args:
            simulator: the study's simulator section (each worker builds its own simulator from it).
            execution: the study's execution section (resources, concurrency, retries, timeout).
            workdir: the campaign directory, where a worker may keep scratch files; ``None`` for none.
        """

    @abstractmethod
    def submit(self, request: CallRequest) -> None:
        """Start ``request`` (non-blocking where the backend allows)."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> list[CallOutcome]:
        """Block until at least one call finishes (or ``timeout`` s pass); return all finished ones."""

    @abstractmethod
    def in_flight(self) -> int:
        """Calls submitted and not yet returned by :meth:`wait`."""

    def close(self) -> None:
        """Release workers; calls still in flight are abandoned (the journal re-runs them on resume)."""


# -- simulator construction ----------------------------------------------------------
def simulator_args(spec: SimulatorSpec) -> SimulatorArgs:
    """The study's simulator section as :func:`simulators.factory.build_simulator` takes it (and workers receive it).

    ``simulator_args(study.simulator).build(source)`` is how the optimiser builds the study's simulator.
    """
    from simulators.factory import SimulatorArgs

    return SimulatorArgs(spec.name, dict(spec.options), None if spec.outputs is None else tuple(spec.outputs))


def add_study_paths(source: str | os.PathLike[str]) -> None:
    """Put the study file's folder, then the current directory, at the front of ``sys.path`` (each once).

    A ``module:function`` simulator beside the study or in the directory ``optimize`` runs from is then
    importable by the driver, as it is by the workers.
    """
    here = [str(Path(source).resolve().parent)]
    try:
        here.append(os.getcwd())
    except OSError:  # the current directory was deleted
        pass
    present = {os.path.realpath(p or os.curdir) for p in sys.path}
    new: list[str] = []
    for folder in here:
        if os.path.realpath(folder) not in present:
            present.add(os.path.realpath(folder))
            new.append(folder)
    sys.path[0:0] = new


def set_threads(n: int) -> None:
    """Pin math-library threads (Ray sets OMP_NUM_THREADS=1 for tasks it places)."""
    n = max(1, int(n))
    os.environ["OMP_NUM_THREADS"] = str(n)
    if "torch" in sys.modules:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


def execute_call(simulator: SimulatorArgs, request: CallRequest, threads: int = 1) -> CallOutcome:
    """Run one call in the current process; never raises for simulator problems.

    Args:
        simulator: the study's simulator (:func:`simulator_args`), built once per process.
        request: the call.
        threads: math-library threads for the simulator.
    """
    from simulators.base import InfeasibleDesign, TransientError, check_result
    from simulators.factory import cached_simulator

    set_threads(threads)
    worker = {"host": socket.gethostname(), "pid": os.getpid()}
    started = time.time()
    out = CallOutcome(request.call_id, request.attempt, "completed", worker=worker, started=started)
    try:
        sim = cached_simulator(simulator)
        params = active_params(request.params)
        raw = sim.simulate(params, request.n_samples, request.seed)
        try:
            result = check_result(sim, raw, request.n_samples)
        except ValueError as err:
            out.status, out.error = "invalid_output", str(err)
        else:
            out.samples, out.metadata = result.samples, dict(result.metadata)
            out.quantities = {k: float(v) for k, v in sim.quantities_at(params).items()}
            bad = [k for k, v in out.quantities.items() if not np.isfinite(v)]
            if bad:
                out.status, out.error, out.samples = "invalid_output", f"quantities {bad} are not finite", None
    except InfeasibleDesign as err:
        out.status, out.error = "infeasible", str(err) or "infeasible design"
    except Exception as err:  # noqa: BLE001 - any simulator error marks the call failed
        out.status = "transient" if isinstance(err, TransientError) else "timeout" if isinstance(err, TimeoutError) \
            else "error"
        tb = traceback.format_exc(limit=8)
        out.error = f"{type(err).__name__}: {err}\n{tb}"
    out.finished = time.time()
    return out
