"""Runs calls as Ray tasks: an embedded local Ray by default, or an existing cluster.

One task per call, placed with the study's ``num_cpus``/``num_gpus``/custom
resources so calls land on GPU nodes when asked. Results come back as numpy
(zero-copy from the object store). System failures (worker or node died) are
retried by Ray itself (``max_retries``); when those are spent the call comes back
``lost`` and the campaign re-runs it without charging the budget.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from optimizer.errors import DetoptError
from optimizer.executors.base import CallOutcome, CallRequest, Executor, execute_call
from optimizer.study import Execution, SimulatorSpec

#: Ray-level retries of a task whose worker or node died.
SYSTEM_RETRIES = 3


def _ray_call(spec: dict[str, Any], request: CallRequest, threads: int) -> CallOutcome:
    import ray

    out = execute_call(spec, request, threads)
    ctx = ray.get_runtime_context()
    out.worker["node"] = ctx.get_node_id()
    try:
        out.worker["gpus"] = [str(g) for g in ray.get_gpu_ids()]
    except Exception:  # noqa: BLE001 - informational only
        pass
    return out


class RayExecutor(Executor):
    """Keeps up to ``capacity`` Ray tasks in flight (``slots`` running, the rest queued in Ray so a
    freed worker starts the next call while the strategy proposes) and returns them in completion order."""

    def __init__(self, simulator: SimulatorSpec, execution: Execution, workdir: Path | None = None) -> None:
        import ray

        self._ray = ray
        self._spec = simulator.model_dump()
        self._execution = execution
        self._threads = max(1, int(math.ceil(execution.num_cpus)))
        self._started_ray = False
        address = execution.address or os.environ.get("RAY_ADDRESS")
        if not ray.is_initialized():
            env = {"OMP_NUM_THREADS": str(self._threads), "MKL_NUM_THREADS": str(self._threads)}
            # Workers must import user simulators (module:function) that live beside the study or in the cwd.
            paths = [str(p) for p in (workdir, Path.cwd()) if p is not None]
            if os.environ.get("PYTHONPATH"):
                paths.append(os.environ["PYTHONPATH"])
            env["PYTHONPATH"] = os.pathsep.join(paths)
            kwargs: dict[str, Any] = dict(
                runtime_env={"env_vars": env},
                logging_level=logging.WARNING,
                log_to_driver=False,
                include_dashboard=False,
            )
            try:
                if address:
                    ray.init(address=address, **kwargs)
                else:
                    ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise DetoptError(f"execution.address: cannot connect to Ray at '{address}': {err}") from None
            self._started_ray = True
        #: calls that run at once; ``capacity`` adds the ones queued ahead in Ray
        self.slots = execution.max_concurrent or self._default_capacity()
        self.capacity = self.slots + (execution.queue_ahead if execution.max_concurrent is None else 0)
        self._remote = ray.remote(_ray_call).options(
            num_cpus=execution.num_cpus,
            num_gpus=execution.num_gpus,
            resources=dict(execution.resources) or None,
            max_retries=SYSTEM_RETRIES,
            retry_exceptions=False,
        )
        self._refs: dict[Any, tuple[CallRequest, float]] = {}  # in submission order
        self._eligible: dict[Any, float] = {}  # when a slot was free for the call: its timeout clock starts

    def _default_capacity(self) -> int:
        res = self._ray.cluster_resources()
        slots = []
        if self._execution.num_cpus > 0:
            slots.append(res.get("CPU", 1) / self._execution.num_cpus)
        if self._execution.num_gpus > 0:
            slots.append(res.get("GPU", 0) / self._execution.num_gpus)
        for name, amount in self._execution.resources.items():
            slots.append(res.get(name, 0) / amount)
        n = int(min(slots)) if slots else int(res.get("CPU", 1))
        if n < 1:
            raise DetoptError(
                "execution: the Ray cluster has no node with the resources one call asks for "
                f"(num_cpus={self._execution.num_cpus}, num_gpus={self._execution.num_gpus}, "
                f"resources={self._execution.resources}); cluster has {res}"
            )
        return n

    def submit(self, request: CallRequest) -> None:
        ref = self._remote.remote(self._spec, request, self._threads)
        self._refs[ref] = (request, time.time())

    def in_flight(self) -> int:
        return len(self._refs)

    def _start_clocks(self, now: float) -> None:
        # Ray starts queued tasks about first-in first-out: the oldest `slots` calls hold the slots.
        for ref in list(self._refs)[: self.slots]:
            self._eligible.setdefault(ref, now)

    def _expired(self, now: float) -> list[Any]:
        t = self._execution.timeout
        if t is None:
            return []
        return [ref for ref, start in self._eligible.items() if now - start > t]

    def wait(self, timeout: float | None = None) -> list[CallOutcome]:
        ray = self._ray
        if not self._refs:
            return []
        wait_for = timeout
        if self._execution.timeout is not None:
            now = time.time()
            self._start_clocks(now)
            next_deadline = min(self._eligible.values()) + self._execution.timeout - now
            wait_for = max(0.0, next_deadline) if wait_for is None else min(wait_for, max(0.0, next_deadline))
        ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=wait_for)
        if ready:
            # Collect everything else that is already done too.
            more, _ = ray.wait([r for r in self._refs if r not in ready], num_returns=len(self._refs) - len(ready), timeout=0)
            ready = ready + more
        outcomes = [self._collect(ref) for ref in ready]
        now = time.time()
        for ref in self._expired(now):
            request, _ = self._refs.pop(ref)
            started = self._eligible.pop(ref)
            ray.cancel(ref, force=True)
            outcomes.append(
                CallOutcome(
                    request.call_id, request.attempt, "timeout",
                    error=f"no result after {self._execution.timeout:g} s; cancelled",
                    started=started, finished=now,
                )
            )
        if self._execution.timeout is not None:
            self._start_clocks(now)
        return outcomes

    def _collect(self, ref: Any) -> CallOutcome:
        request, submitted = self._refs.pop(ref)
        self._eligible.pop(ref, None)
        try:
            out: CallOutcome = self._ray.get(ref)
        except self._ray.exceptions.RayError as err:
            return CallOutcome(
                request.call_id, request.attempt, "lost",
                error=f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                started=submitted, finished=time.time(),
            )
        if out.samples is not None and not out.samples.flags.writeable:
            out.samples = out.samples.copy()  # arrays from the object store are read-only
        return out

    def close(self) -> None:
        for ref in list(self._refs):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - best effort on shutdown
                pass
        self._refs.clear()
        self._eligible.clear()
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False
