"""Campaign storage: an append-only JSONL journal of every call plus the samples on disk.

Layout of a campaign directory::

    study.yaml        the study exactly as given
    campaign.json     fingerprint of the study, versions, creation time
    journal.jsonl     one event per line, flushed and fsynced before the next step
    samples/          call-000001.npy ... ([n, k] arrays)

The driver is the only writer (workers return results; they never write). A
samples file is written atomically *before* the event that names it, so every
``completed`` event points at a whole file, and never over an existing file (a call
re-run after a crash between the two gets ``call-000001.1.npy``). A torn last line (the
process died mid-write) is ignored when read and cut off before the next append; a
failed write (a full disk) takes its partial line back. Lines are strict JSON.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer.errors import CampaignError

if TYPE_CHECKING:
    from optimizer.study import ParamValue

SCHEMA_VERSION = 1
JOURNAL = "journal.jsonl"


class Storage(ABC):
    """Where a campaign's events and sample arrays live: in (or named by) the campaign directory ``root``.

    Implementations are registered in :data:`optimizer.storages.STORAGES`.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @abstractmethod
    def append(self, event: dict[str, Any]) -> None:
        """Durably record one event (a JSON-serialisable dict with an ``event`` key)."""

    @abstractmethod
    def events(self) -> Iterator[dict[str, Any]]:
        """All events recorded so far, oldest first; a torn last record is skipped."""

    @abstractmethod
    def save_samples(self, call_id: int, samples: np.ndarray) -> str:
        """Store ``[n, k]`` samples durably; return the reference to put in the ``completed`` event."""

    @abstractmethod
    def load_samples(self, ref: str) -> np.ndarray:
        """Load the ``[n, k]`` samples saved under ``ref``."""

    def close(self) -> None:  # noqa: B027 - optional: a storage without open handles has nothing to release
        """Release open handles; the loop calls it when it stops, and a later ``append`` opens them again."""

    def started(self) -> bool:
        """Whether a campaign has begun writing here (a new campaign refuses such a directory)."""
        return next(iter(self.events()), None) is not None

    def check_fresh_start(self) -> None:
        """Refuse to start a campaign from no recorded calls when that would lose data the storage holds.

        Raises:
            CampaignError: naming what is there.
        """

    def sample_shape(self, ref: str) -> tuple[int, ...]:
        """The shape of the samples saved under ``ref``; an implementation may read less than the whole array."""
        return tuple(self.load_samples(ref).shape)

    def describe(self, ref: str) -> str:
        """Where the samples saved under ``ref`` are, for a message."""
        return ref


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class JournalStorage(Storage):
    """JSONL journal + ``.npy`` samples in a directory (see module docstring)."""

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self.path = self.root / JOURNAL
        self.samples_dir = self.root / "samples"
        self._fh: int | None = None

    # -- writing ------------------------------------------------------------------
    def _open(self) -> int:
        if self._fh is None:
            try:
                self.samples_dir.mkdir(parents=True, exist_ok=True)
                self._cut_torn_tail()
                # a raw descriptor: a failed write leaves nothing buffered that a later flush could tear
                self._fh = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as err:
                raise _write_error(self.path, err) from None
        return self._fh

    def _cut_torn_tail(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb+") as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                fh.truncate(data.rfind(b"\n") + 1)
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, event: dict[str, Any]) -> None:
        record = {"v": SCHEMA_VERSION, "time": time.time(), **event}
        # strict JSON: non-finite floats become strings (see `decode_float`), never NaN/Infinity tokens
        data = (json.dumps(_strict_json(record), separators=(",", ":"), allow_nan=False, default=_json_default)
                + "\n").encode()
        fd = self._open()
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as err:
            # take back a partial line so the next event starts on a line of its own
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass  # the next open cuts the torn tail
            self.close()
            raise _write_error(self.path, err) from None

    def save_samples(self, call_id: int, samples: np.ndarray) -> str:
        """Write the samples under a name no file has yet: a file left by a driver that died before
        recording its call is kept, never overwritten."""
        self._open()
        base = f"call-{call_id:06d}"
        tmp = self.samples_dir / f".{base}.tmp"
        try:
            with open(tmp, "wb") as fh:
                np.save(fh, samples)
                fh.flush()
                os.fsync(fh.fileno())
            for k in range(MAX_SAMPLE_NAMES):
                name = f"{base}.npy" if k == 0 else f"{base}.{k}.npy"
                try:
                    os.link(tmp, self.samples_dir / name)  # fails if the name exists: no overwrite
                except FileExistsError:
                    continue
                break
            else:
                raise CampaignError(f"{self.samples_dir}: {MAX_SAMPLE_NAMES} sample files of call {call_id} already exist")
        except OSError as err:
            raise _write_error(tmp, err) from None
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(self.samples_dir)
        return f"samples/{name}"

    def started(self) -> bool:
        return self.path.exists()

    def check_fresh_start(self) -> None:
        """Samples files without the journal that names them: a lost or deleted journal, never a new campaign."""
        orphans = sorted(self.samples_dir.glob("call-*.npy")) if self.samples_dir.is_dir() else []
        if orphans:
            raise CampaignError(
                f"{self.path}: the journal is {'empty' if self.path.exists() else 'missing'} but "
                f"{self.samples_dir} holds {len(orphans)} samples files; refusing to start over "
                "(restore the journal, or start a new campaign in another directory)")

    def close(self) -> None:
        if self._fh is not None:
            try:
                os.close(self._fh)
            finally:
                self._fh = None

    # -- reading ------------------------------------------------------------------
    def events(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            lines = fh.read().split(b"\n")
        last = len(lines) - 1
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                if i == last:  # torn final write: that event never happened
                    return
                raise CampaignError(f"{self.path}: line {i + 1} is corrupt (not JSON)") from None
            if not isinstance(obj, dict):
                raise CampaignError(f"{self.path}: line {i + 1} is corrupt (not a JSON object)")
            ev = JournalEvent(obj)
            ev.where = f"{self.path}: line {i + 1}"
            yield ev

    def sample_path(self, ref: object) -> Path:
        """The file a ``completed`` event names; refuses one outside ``samples/``."""
        if not isinstance(ref, str) or not ref:
            raise CampaignError(f"{self.path}: a completed call names no samples file")
        path = (self.root / ref).resolve()
        if not path.is_relative_to(self.samples_dir.resolve()):
            raise CampaignError(f"{self.path}: samples path '{ref}' lies outside {self.samples_dir}")
        return path

    def load_samples(self, ref: str) -> np.ndarray:
        path = self.sample_path(ref)
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise CampaignError(f"{path}: cannot read samples ({type(err).__name__}: {err})") from None
        if not isinstance(arr, np.ndarray) or arr.ndim != 2:
            raise CampaignError(f"{path}: samples are not an [n, k] array")
        return arr

    def describe(self, ref: str) -> str:
        return str(self.sample_path(ref))

    def sample_shape(self, ref: str) -> tuple[int, ...]:
        """The shape of a stored samples array, read from its header (the data must be all there)."""
        path = self.sample_path(ref)
        try:
            with open(path, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                reader = {(1, 0): np.lib.format.read_array_header_1_0,
                          (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if reader is None:
                    raise ValueError(f"unsupported .npy version {version}")
                shape, _, dtype = reader(fh)
                size = int(np.prod(shape)) * dtype.itemsize
                if dtype.hasobject or os.fstat(fh.fileno()).st_size - fh.tell() < size:
                    raise ValueError("truncated or not a numeric array")
        except FileNotFoundError:
            raise CampaignError(f"{path}: samples file is missing") from None
        except (OSError, ValueError, EOFError) as err:
            raise CampaignError(f"{path}: cannot read samples ({err})") from None
        return tuple(shape)


#: A call re-run after its samples file was written but before its event was: a few spare names.
MAX_SAMPLE_NAMES = 100

#: How non-finite floats are written in the (strict JSON) journal.
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class JournalEvent(dict[str, Any]):
    """An event read from the journal, with ``where`` ("FILE: line N") for error messages."""

    where: str = "journal"


def decode_float(v: Any) -> Any:
    """A number read from the journal: the strings written for NaN and ±Infinity become floats again."""
    return _NONFINITE.get(v, v) if isinstance(v, str) else v


def _strict_json(obj: Any) -> Any:
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        if math.isfinite(f):
            return f
        return "NaN" if math.isnan(f) else ("Infinity" if f > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: _strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _strict_json(obj.tolist())
    return obj


def _write_error(path: Path, err: OSError) -> CampaignError:
    """An OS error writing the campaign directory, as one line (recorded calls are never touched)."""
    reason = (err.strerror or str(err)).lower()
    return CampaignError(f"{path}: {reason}; recorded calls are kept")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


class CampaignLock:
    """An exclusive ``flock`` on the campaign directory: one driver at a time."""

    def __init__(self, root: Path) -> None:
        self.path = root / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> CampaignLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EAGAIN, errno.EACCES):
                holder = self.path.read_text().strip() or "?"
                raise CampaignError(
                    f"{self.path.parent}: campaign is being run by another process (pid {holder})"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


# -- replay -------------------------------------------------------------------------
#: Terminal states of a call.
FINAL = ("completed", "failed", "infeasible")


@dataclass
class CallRecord:
    """Everything known about one call, rebuilt from the journal."""

    call_id: int
    origin: str  # "baseline" | "initial" | "strategy"
    params: dict[str, ParamValue]  # a choice's name for a categorical parameter, None where inactive
    unit: list[float]
    seed: int
    n_samples: int
    label: str | None = None
    status: str = "submitted"  # submitted | retry | completed | failed | infeasible
    attempts: int = 0
    failures: int = 0  # simulator failures (count against `retries`)
    losses: int = 0  # worker/node losses (never counted against anything)
    samples: str | None = None
    n_rows: int | None = None  # rows of the samples file, as recorded
    metrics: dict[str, float] = field(default_factory=dict)
    sems: dict[str, float] = field(default_factory=dict)
    quantities: dict[str, float] = field(default_factory=dict)
    feasible: bool | None = None
    error: str | None = None
    failure_kind: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    worker: dict[str, Any] = field(default_factory=dict)
    submitted_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    resources: dict[str, float] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in FINAL

    @property
    def duration(self) -> float | None:
        """Seconds the call ran on its worker, or ``None`` until it has both a start and a finish time."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


def replay(events: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> dict[int, CallRecord]:
    """Rebuild the state of every call from the journal's events (in order).

    Raises:
        CampaignError: an event names a call never submitted, or lacks a field it needs (naming its line).
    """
    calls: dict[int, CallRecord] = {}
    for ev in events:
        try:
            _apply(calls, ev)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            what = f"field {err.args[0]!r} missing" if isinstance(err, KeyError) else str(err)
            raise CampaignError(f"{getattr(ev, 'where', 'journal')}: malformed '{ev.get('event')}' event ({what})") from None
    return calls


def _floats(d: Any) -> dict[str, float]:
    if not isinstance(d, dict):
        raise TypeError(f"expected an object, got {type(d).__name__}")
    return {str(k): decode_float(v) for k, v in d.items()}


def _params(d: Any) -> dict[str, ParamValue]:
    """A call's parameters: numbers (non-finite spellings decoded), a categorical's choice, ``None`` where inactive."""
    if not isinstance(d, dict):
        raise TypeError(f"expected an object, got {type(d).__name__}")
    return {str(k): decode_float(v) for k, v in d.items()}


def _apply(calls: dict[int, CallRecord], ev: dict[str, Any]) -> None:
    kind = ev.get("event")
    where = getattr(ev, "where", "journal")
    if kind == "submitted":
        cid, attempt = int(ev["call"]), int(ev["attempt"])
        rec = calls.get(cid)
        if rec is not None and rec.done and attempt <= rec.attempts:
            return  # a repeated line of a call already finished: it never runs again
        if rec is None:
            rec = calls[cid] = CallRecord(
                call_id=cid,
                origin=str(ev["origin"]),
                params=_params(ev["params"]),
                unit=[float(decode_float(u)) for u in ev["unit"]],
                seed=int(ev["seed"]),
                n_samples=int(ev["n_samples"]),
                label=ev.get("label"),
                resources=ev.get("resources", {}),
            )
        rec.status = "submitted"
        rec.attempts = attempt
        rec.submitted_at = ev["time"]
    elif kind in ("completed", "failed"):
        cid = int(ev["call"])
        if cid not in calls:
            raise CampaignError(f"{where}: '{kind}' event for call {cid}, which was never submitted")
        rec = calls[cid]
        rec.worker = ev.get("worker", {})
        rec.started_at, rec.finished_at = ev.get("started"), ev.get("finished")
        rec.metadata = ev.get("metadata", {})
        if kind == "completed":
            rec.status = "completed"
            rec.samples = ev["samples"]
            rec.n_rows = None if ev.get("n") is None else int(ev["n"])
            rec.metrics, rec.sems = _floats(ev["metrics"]), _floats(ev.get("sems", {}))
            rec.quantities = _floats(ev.get("quantities", {}))
            rec.feasible = ev.get("feasible")
            rec.error = rec.failure_kind = None
        else:
            rec.failure_kind = ev["kind"]
            rec.error = ev.get("error")
            if ev["kind"] == "lost":
                rec.losses += 1
            elif ev["kind"] != "infeasible":
                rec.failures += 1
            if ev["kind"] == "infeasible":
                rec.status = "infeasible"
            else:
                # A non-final failure is waiting to be run again.
                rec.status = "failed" if ev.get("final") else "retry"
    elif kind == "metrics_recomputed":
        # a study changed with --force: metrics of stored calls recomputed from their samples
        for key, new in ev["calls"].items():
            cid = int(key)
            if cid not in calls:
                raise CampaignError(f"{where}: '{kind}' event for call {cid}, which was never submitted")
            rec = calls[cid]
            rec.metrics = {**rec.metrics, **_floats(new["metrics"])}
            rec.sems = {**rec.sems, **_floats(new.get("sems", {}))}
            rec.feasible = new.get("feasible", rec.feasible)
