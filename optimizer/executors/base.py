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

from optimizer.errors import DetoptError, StudyError
from optimizer.registry import import_object
from optimizer.space import active_params
from optimizer.study import Execution, ParamValue, SimulatorSpec

if TYPE_CHECKING:
    from simulators.base import Simulator


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
def build_simulator(spec: SimulatorSpec, source: str = "<study>") -> Simulator:
    """Instantiate the simulator a study names.

    ``spec.name`` is a registered name, or ``module:attr`` naming a Simulator subclass
    or a plain function ``fn(params, n, seed, **options)`` (its signature is checked here).

    Args:
        spec: the study's simulator section.
        source: the study file, for error messages.

    Raises:
        StudyError: unknown name, failed import, wrong signature or bad options, naming the study field.
    """
    from simulators import SIMULATORS, FunctionSimulator, Simulator, SimulatorOptionError

    options = dict(spec.options)
    if ":" in spec.name:
        try:
            target = import_object(spec.name)
        except DetoptError as err:
            raise StudyError(source, "simulator.name", str(err)) from None
        if isinstance(target, type) and issubclass(target, Simulator):
            cls: Any = target
        elif callable(target) and not isinstance(target, type):
            outputs = tuple(spec.outputs or ("y",))
            try:
                return FunctionSimulator(target, outputs=outputs, **options)
            except SimulatorOptionError as err:
                raise StudyError(source, err.field, err.message) from None
        else:
            raise StudyError(source, "simulator.name", f"'{spec.name}' is neither a Simulator class nor a function")
    else:
        try:
            cls = SIMULATORS.get(spec.name)
        except KeyError as err:
            raise StudyError(source, "simulator.name", err.args[0]) from None
    if spec.outputs is not None:
        raise StudyError(source, "simulator.outputs", "only a module:function simulator takes outputs")
    try:
        return cls(**options)
    except SimulatorOptionError as err:
        raise StudyError(source, err.field, err.message) from None
    except (TypeError, ValueError) as err:
        raise StudyError(source, "simulator.options", f"{spec.name}: {_first_line(err)}") from None
    except Exception as err:  # noqa: BLE001 - a simulator's constructor failed on its options: one line
        raise StudyError(source, "simulator.options", f"{spec.name}: {type(err).__name__}: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


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


_SIM_CACHE: dict[str, Simulator] = {}


def _cached_simulator(spec: dict[str, Any]) -> Simulator:
    # One construction per worker process: geometry/tables are built once.
    key = repr(sorted(spec.items()))
    if key not in _SIM_CACHE:
        _SIM_CACHE[key] = build_simulator(SimulatorSpec(**spec))
    return _SIM_CACHE[key]


def set_threads(n: int) -> None:
    """Pin math-library threads (Ray sets OMP_NUM_THREADS=1 for tasks it places)."""
    n = max(1, int(n))
    os.environ["OMP_NUM_THREADS"] = str(n)
    if "torch" in sys.modules:
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


def execute_call(spec: dict[str, Any], request: CallRequest, threads: int = 1) -> CallOutcome:
    """Run one call in the current process; never raises for simulator problems.

    Args:
        spec: ``SimulatorSpec.model_dump()`` of the study's simulator.
        request: the call.
        threads: math-library threads for the simulator.
    """
    from simulators.base import InfeasibleDesign, TransientError, check_result

    set_threads(threads)
    worker = {"host": socket.gethostname(), "pid": os.getpid()}
    started = time.time()
    out = CallOutcome(request.call_id, request.attempt, "completed", worker=worker, started=started)
    try:
        sim = _cached_simulator(spec)
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
