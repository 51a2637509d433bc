"""Runs calls one at a time in the driver process: for debugging (pdb works, no Ray start-up).

The per-call ``timeout`` is not enforced here.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

from optimizer.executors.base import CallOutcome, CallRequest, Executor, execute_call, simulator_args
from optimizer.study import Execution, SimulatorSpec


class InlineExecutor(Executor):
    """Runs each call in the driver process, one at a time, when :meth:`wait` is called (no workers, no timeout).

    The simulator is built here once per process from the study's name and options, as a worker would.
    """

    capacity = 1

    def __init__(self, simulator: SimulatorSpec, execution: Execution, workdir: Path | None = None) -> None:
        self._simulator = simulator_args(simulator)
        self._threads = max(1, int(execution.num_cpus))
        self._queue: deque[CallRequest] = deque()

    def submit(self, request: CallRequest) -> None:
        self._queue.append(request)

    def wait(self, timeout: float | None = None) -> list[CallOutcome]:
        if not self._queue:
            return []
        return [execute_call(self._simulator, self._queue.popleft(), self._threads)]

    def in_flight(self) -> int:
        return len(self._queue)
