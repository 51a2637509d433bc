"""Runs calls as Ray tasks: a private local Ray by default, or an existing cluster.

One task per call, placed with the study's ``num_cpus``/``num_gpus``/custom
resources so calls land on GPU nodes when asked. Results come back as numpy
(zero-copy from the object store). System failures (worker or node died) are
retried by Ray itself (``max_retries``); when those are spent the call comes back
``lost`` and the campaign re-runs it without charging the budget. When Ray itself
is gone (the local raylet or the GCS died, the driver lost its cluster) the executor
raises :class:`~optimizer.errors.InfrastructureError` instead: nothing in flight is
the calls' fault.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimizer.errors import DetoptError, InfrastructureError
from optimizer.executors.base import CallOutcome, CallRequest, Executor, execute_call, simulator_args
from optimizer.study import Execution, SimulatorSpec

if TYPE_CHECKING:
    from simulators.factory import SimulatorArgs

#: Ray-level retries of a task whose worker or node died.
SYSTEM_RETRIES = 3
#: Longest single ``ray.wait``: the driver is back in Python this often, so SIGINT/SIGTERM act at once
#: (a signal handler runs only between bytecodes, never inside Ray's C++ wait).
POLL_S = 0.5
#: Seconds to wait for a TCP connection to ``execution.address``: ``ray.init`` on an unreachable
#: address retries for minutes without answering signals.
CONNECT_TIMEOUT_S = 5.0
#: Backstop of ``execution.timeout`` for a call whose start was never seen (start board lost):
#: timed from when a slot was free for it, plus this much for a worker to start (process spawn,
#: imports, a runtime_env install on a busy node).
STARTUP_GRACE_S = 120.0
#: How often the driver asks the GCS whether it is alive, and how long it waits for the answer
#: (Ray itself kills a driver whose GCS is silent for 60 s, with no chance to record anything).
GCS_PROBE_INTERVAL_S = 5.0
GCS_PROBE_TIMEOUT_S = 10.0
#: Consecutive unanswered probes before the cluster counts as lost (one can be a slow GCS).
GCS_PROBE_FAILURES = 2
#: Processes of the private local Ray without which no call can run.
_VITAL_PROCESSES = ("gcs_server", "raylet")


class RayHealthCheckUnavailable(UserWarning):
    """This Ray version lacks an internal the driver uses to notice a dead raylet or GCS early; Ray's own
    (slower) detection still applies."""


def _infrastructure_errors(ray: Any) -> tuple[type[BaseException], ...]:
    """Exceptions from ``ray.get``/``ray.wait``/``.remote`` that mean Ray itself is gone, not a worker."""
    ex = ray.exceptions
    return (ex.LocalRayletDiedError, ex.RaySystemError, ex.RpcError, ConnectionError)


class _StartBoard:
    """A tiny actor that calls report to when they start running, so ``execution.timeout`` is timed from
    then, not from submission (a fresh worker takes seconds to start and import detopt). Works the same on
    a cluster: the driver reads the board with its own clock, so node clocks never matter."""

    def __init__(self) -> None:
        self._started: list[tuple[int, int]] = []

    def started(self, key: tuple[int, int]) -> None:
        self._started.append(key)

    def drain(self) -> list[tuple[int, int]]:
        out, self._started = self._started, []
        return out


def _ray_call(simulator: SimulatorArgs, request: CallRequest, threads: int, board: Any = None) -> CallOutcome:
    import ray

    from simulators.factory import cached_simulator

    if board is not None:
        try:  # one-time construction (geometry, tables) is start-up too; its errors are reported by execute_call
            cached_simulator(simulator)
        except Exception:  # noqa: BLE001 - execute_call builds it again and records the error
            pass
        board.started.remote((request.call_id, request.attempt))
    out = execute_call(simulator, request, threads)
    ctx = ray.get_runtime_context()
    out.worker["node"] = ctx.get_node_id()
    try:
        out.worker["gpus"] = [str(g) for g in ray.get_gpu_ids()]
    except Exception:  # noqa: BLE001 - informational only
        pass
    return out


class _QuietTokenBanner(logging.Filter):
    """Drops Ray's "Token authentication is enabled for this Ray cluster ..." notice, printed on every
    start of a local Ray when RAY_AUTH_MODE is unset. Token authentication itself stays on (Ray's default
    for local clusters): the private instance's ports are reachable from the network, and the token keeps
    other users of the machine or network from running code on it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled")


def check_reachable(address: str, origin: str) -> None:
    """Refuse, within :data:`CONNECT_TIMEOUT_S`, a Ray address nothing listens on.

    Raises:
        DetoptError: ``origin: cannot reach Ray at 'HOST:PORT' (reason)``.
    """
    if address in ("auto", "local"):
        return  # Ray looks these up itself
    hostport = address.split("://", 1)[-1].split("/", 1)[0]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return  # no port to try: Ray's own error names the problem
    host = host.strip("[]") or "127.0.0.1"
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        reason = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise DetoptError(f"{origin}: cannot reach Ray at '{host}:{port}' ({reason})") from None


def preflight(execution: Execution) -> None:
    """The checks that need no Ray start, run before a command writes anything: the address answers."""
    address = execution.address or os.environ.get("RAY_ADDRESS")
    if address:
        check_reachable(address, "execution.address" if execution.address else "RAY_ADDRESS")


class RayExecutor(Executor):
    """Keeps up to ``capacity`` Ray tasks in flight (``slots`` running, the rest queued in Ray so a
    freed worker starts the next call while the strategy proposes) and returns them in completion order."""

    def __init__(self, simulator: SimulatorSpec, execution: Execution, workdir: Path | None = None) -> None:
        import ray

        self._ray = ray
        self._simulator = simulator_args(simulator)
        self._execution = execution
        self._threads = max(1, int(math.ceil(execution.num_cpus)))
        self._started_ray = False  # this executor called ray.init (and shuts it down)
        self._private = False  # ... and the instance is its own local one
        self._broken: InfrastructureError | None = None
        if not ray.is_initialized():
            self._init(workdir)
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
        self._eligible: dict[Any, float] = {}  # when a slot was free for the call (the backstop's clock)
        self._running: dict[Any, float] = {}  # when the driver saw the call start on a worker (the timeout's clock)
        self._board: Any = None
        self._board_poll: Any = None
        if execution.timeout is not None:
            self._board = ray.remote(num_cpus=0, max_restarts=0)(_StartBoard).remote()
        self._next_probe = 0.0
        self._probe_failures = 0

    # -- start-up ---------------------------------------------------------------------
    def _init(self, workdir: Path | None) -> None:
        ray, execution = self._ray, self._execution
        origin = "execution.address" if execution.address else "RAY_ADDRESS"
        address = execution.address or os.environ.get("RAY_ADDRESS") or None
        env = {"OMP_NUM_THREADS": str(self._threads), "MKL_NUM_THREADS": str(self._threads)}
        # Workers must import user simulators (module:function) that live beside the study or in the cwd.
        paths = [str(p) for p in (workdir, Path.cwd()) if p is not None]
        if os.environ.get("PYTHONPATH"):
            paths.append(os.environ["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        kwargs: dict[str, Any] = dict(
            runtime_env={"env_vars": env},
            logging_level=logging.WARNING,  # no "Started a local Ray instance" banner
            log_to_driver=False,
            include_dashboard=False,
        )
        if address:
            check_reachable(address, origin)
        # ray.init installs its own SIGTERM handler (sys.exit, which skips the campaign's interrupt
        # handling); the process's handlers are put back once Ray is up.
        handlers = _signal_handlers()
        banner = logging.getLogger("ray._private.authentication.authentication_token_setup")
        quiet = _QuietTokenBanner()
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:
                # address="local" always starts a new instance: with no address, ray.init would join the
                # cluster of the machine's latest `ray start` (Ray's current-cluster file) and run every
                # call on a foreign node. Its session directory is its own (a new one under Ray's temp dir),
                # and RAY_ADDRESS is not read for "local".
                banner.addFilter(quiet)
                ray.init(address="local", **kwargs)
                self._private = True
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = f"{origin}: cannot connect to Ray at '{address}'" if address else "cannot start a local Ray"
            raise DetoptError(f"{where}: {err}") from None
        finally:
            banner.removeFilter(quiet)
            _restore_signal_handlers(handlers)
        self._started_ray = True

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

    # -- health -------------------------------------------------------------------------
    def _check_alive(self, now: float) -> None:
        """Raise :class:`InfrastructureError` when Ray itself is gone."""
        if self._broken is not None:
            raise self._broken
        ray = self._ray
        reason = None
        if not ray.is_initialized():
            reason = "Ray is no longer initialised in the driver"
        elif self._private:
            node: Any = getattr(ray._private.worker, "_global_node", None)
            try:
                dead = sorted({kind for kind, _ in node.dead_processes() if kind in _VITAL_PROCESSES})
            except AttributeError:
                dead = []
                self._warn_unavailable("Node.dead_processes")
            if dead:
                reason = f"the local Ray's {' and '.join(dead)} process died"
        if reason is None and now >= self._next_probe:
            self._next_probe = now + GCS_PROBE_INTERVAL_S
            gcs = getattr(ray._private.worker.global_worker, "gcs_client", None)
            if gcs is None or not hasattr(gcs, "get_all_node_info"):
                self._warn_unavailable("GcsClient.get_all_node_info")
            else:
                try:
                    gcs.get_all_node_info(timeout=GCS_PROBE_TIMEOUT_S)
                    self._probe_failures = 0
                except TypeError:  # another signature in another Ray version
                    self._next_probe = math.inf
                    self._warn_unavailable("GcsClient.get_all_node_info(timeout=...)")
                except Exception as err:  # noqa: BLE001 - any failure to answer counts
                    self._probe_failures += 1
                    if self._probe_failures >= GCS_PROBE_FAILURES:
                        reason = f"the Ray GCS does not answer ({type(err).__name__}: {_first_line(err)})"
        if reason is not None:
            self._broken = InfrastructureError(reason)
            raise self._broken

    _warned = False

    def _warn_unavailable(self, what: str) -> None:
        if not RayExecutor._warned:
            RayExecutor._warned = True
            warnings.warn(f"Ray {self._ray.__version__} has no {what}: a dead raylet or GCS is noticed only "
                          "when Ray reports it", RayHealthCheckUnavailable, stacklevel=3)

    # -- calls ------------------------------------------------------------------------------
    def submit(self, request: CallRequest) -> None:
        if self._broken is not None:
            raise self._broken
        try:
            ref = self._remote.remote(self._simulator, request, self._threads, self._board)
        except _infrastructure_errors(self._ray) as err:
            self._broken = InfrastructureError(f"cannot submit a call: {type(err).__name__}: {_first_line(err)}")
            raise self._broken from None
        self._refs[ref] = (request, time.time())

    def in_flight(self) -> int:
        return len(self._refs)

    def _start_clocks(self, now: float) -> None:
        # Ray starts queued tasks about first-in first-out: the oldest `slots` calls hold the slots.
        for ref in list(self._refs)[: self.slots]:
            self._eligible.setdefault(ref, now)

    def _poll_board(self, now: float) -> None:
        """Start the timeout clock of every call whose start the board has seen since the last poll."""
        if self._board is None:
            return
        ray = self._ray
        if self._board_poll is None:
            self._board_poll = self._board.drain.remote()
        ready, _ = ray.wait([self._board_poll], timeout=0)
        if not ready:
            return
        try:
            started = ray.get(self._board_poll)
        except ray.exceptions.RayError:
            self._board = None  # board lost: the backstop clocks still time every call
            return
        finally:
            self._board_poll = None
        keys = {(req.call_id, req.attempt): ref for ref, (req, _) in self._refs.items()}
        for key in started:
            ref = keys.get(tuple(key))
            if ref is not None:
                self._running[ref] = now  # a Ray retry of a crashed attempt restarts the clock

    def _deadline(self, ref: Any) -> float:
        t = self._execution.timeout
        assert t is not None
        if ref in self._running:
            return self._running[ref] + t
        return self._eligible[ref] + t + STARTUP_GRACE_S

    def _timed(self) -> list[Any]:
        return [r for r in self._refs if r in self._running or r in self._eligible]

    def _expired(self, now: float) -> list[Any]:
        if self._execution.timeout is None:
            return []
        return [ref for ref in self._timed() if now > self._deadline(ref)]

    def wait(self, timeout: float | None = None) -> list[CallOutcome]:
        """Wait in steps of at most :data:`POLL_S` (signals act between steps) until a call finishes,
        times out, or ``timeout`` s pass.

        Raises:
            InfrastructureError: Ray itself is gone; the calls in flight are left unanswered.
        """
        ray = self._ray
        end = None if timeout is None else time.time() + timeout
        while True:
            now = time.time()
            self._check_alive(now)
            if not self._refs:
                return []
            step = POLL_S
            if self._execution.timeout is not None:
                self._start_clocks(now)
                self._poll_board(now)
                timed = self._timed()
                if timed:
                    step = min(step, max(0.0, min(self._deadline(r) for r in timed) - now))
            if end is not None:
                step = min(step, max(0.0, end - now))
            try:
                ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=step)
                if ready:  # collect everything else that is already done too
                    rest = [r for r in self._refs if r not in ready]
                    more, _ = ray.wait(rest, num_returns=len(rest), timeout=0) if rest else ([], [])
                    ready = ready + more
            except _infrastructure_errors(ray) as err:
                self._broken = InfrastructureError(f"ray.wait failed: {type(err).__name__}: {_first_line(err)}")
                raise self._broken from None
            outcomes = [o for o in (self._collect(ref) for ref in ready) if o is not None]
            now = time.time()
            for ref in self._expired(now):
                request, _ = self._refs.pop(ref)
                started = self._running.pop(ref, None) or self._eligible[ref]
                self._eligible.pop(ref, None)
                ray.cancel(ref, force=True)
                outcomes.append(
                    CallOutcome(
                        request.call_id, request.attempt, "timeout",
                        error=f"no result after {self._execution.timeout:g} s; cancelled",
                        started=started, finished=now,
                    )
                )
            if outcomes:
                return outcomes  # a broken Ray found meanwhile is raised by the next call
            if self._broken is not None:
                raise self._broken
            if end is not None and time.time() >= end:
                return []

    def _collect(self, ref: Any) -> CallOutcome | None:
        """The outcome of a finished task; ``None`` when Ray itself failed (the call stays in flight)."""
        ray = self._ray
        request, submitted = self._refs[ref]
        try:
            out: CallOutcome = ray.get(ref)
        except _infrastructure_errors(ray) as err:
            self._broken = self._broken or InfrastructureError(f"{type(err).__name__}: {_first_line(err)}")
            return None
        except ray.exceptions.RayTaskError as err:
            # detopt's own task body raised (e.g. detopt cannot be imported on that node): not a lost worker
            out = CallOutcome(request.call_id, request.attempt, "error", error=f"{type(err).__name__}: {err}",
                              started=submitted, finished=time.time())
        except ray.exceptions.RayError as err:  # the worker or its node died, after Ray's own retries
            out = CallOutcome(request.call_id, request.attempt, "lost",
                              error=f"{type(err).__name__}: {_first_line(err)}",
                              started=submitted, finished=time.time())
        del self._refs[ref]
        self._eligible.pop(ref, None)
        self._running.pop(ref, None)
        if out.samples is not None and not out.samples.flags.writeable:
            out.samples = out.samples.copy()  # arrays from the object store are read-only
        return out

    def close(self) -> None:
        """Cancel every call in flight and shut down a Ray this executor started (promptly: no waiting)."""
        if self._broken is None:
            for ref in list(self._refs):
                try:
                    self._ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - best effort on shutdown
                    pass
        self._refs.clear()
        self._eligible.clear()
        self._running.clear()
        self._board = self._board_poll = None
        if self._started_ray:
            self._started_ray = False
            try:
                self._ray.shutdown()
            except Exception:  # noqa: BLE001 - a dead cluster may fail to disconnect cleanly
                pass


def _first_line(err: BaseException) -> str:
    text = str(err)
    return text.splitlines()[0] if text else ""


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _signal_handlers() -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.getsignal(s) for s in _SIGNALS}


def _restore_signal_handlers(handlers: dict[int, Any]) -> None:
    for sig, handler in handlers.items():
        if handler is not None and signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)
