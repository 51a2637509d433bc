"""Campaign storage: an append-only JSONL journal of every call plus the samples on disk.

Layout of a campaign directory::

    study.yaml        the study exactly as given
    campaign.json     fingerprint of the study, versions, creation time
    journal.jsonl     one event per line, flushed and fsynced before the next step
    samples/          call-000001.npy ... ([n, k] arrays)

The driver is the only writer (workers return results; they never write). A
samples file is written atomically *before* the event that names it, so every
``completed`` event points at a whole file. A torn last line (the process died
mid-write) is ignored when read and cut off before the next append.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.errors import CampaignError

SCHEMA_VERSION = 1
JOURNAL = "journal.jsonl"


class Storage(ABC):
    """Where a campaign's events and sample arrays live."""

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
        self.root = Path(root)
        self.path = self.root / JOURNAL
        self.samples_dir = self.root / "samples"
        self._fh: Any = None

    # -- writing ------------------------------------------------------------------
    def _open(self) -> Any:
        if self._fh is None:
            self.samples_dir.mkdir(parents=True, exist_ok=True)
            self._cut_torn_tail()
            self._fh = open(self.path, "a", encoding="utf-8")
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
        fh = self._open()
        fh.write(json.dumps(record, separators=(",", ":"), default=_json_default) + "\n")
        fh.flush()
        os.fsync(fh.fileno())

    def save_samples(self, call_id: int, samples: np.ndarray) -> str:
        self._open()
        name = f"call-{call_id:06d}.npy"
        tmp = self.samples_dir / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            np.save(fh, samples)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.samples_dir / name)
        _fsync_dir(self.samples_dir)
        return f"samples/{name}"

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
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
                yield json.loads(line)
            except json.JSONDecodeError:
                if i == last:  # torn final write: that event never happened
                    return
                raise CampaignError(f"{self.path}: line {i + 1} is corrupt (not JSON)") from None

    def load_samples(self, ref: str) -> np.ndarray:
        return np.load(self.root / ref)


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
    params: dict[str, float]
    unit: list[float]
    seed: int
    n_samples: int
    label: str | None = None
    status: str = "submitted"  # submitted | retry | completed | failed | infeasible
    attempts: int = 0
    failures: int = 0  # simulator failures (count against `retries`)
    losses: int = 0  # worker/node losses (never counted against anything)
    samples: str | None = None
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
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


def replay(events: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> dict[int, CallRecord]:
    """Rebuild the state of every call from the journal's events (in order)."""
    calls: dict[int, CallRecord] = {}
    for ev in events:
        kind = ev.get("event")
        if kind == "submitted":
            cid = int(ev["call"])
            rec = calls.get(cid)
            if rec is None:
                rec = calls[cid] = CallRecord(
                    call_id=cid,
                    origin=ev["origin"],
                    params=ev["params"],
                    unit=ev["unit"],
                    seed=int(ev["seed"]),
                    n_samples=int(ev["n_samples"]),
                    label=ev.get("label"),
                    resources=ev.get("resources", {}),
                )
            rec.status = "submitted"
            rec.attempts = int(ev["attempt"])
            rec.submitted_at = ev["time"]
        elif kind in ("completed", "failed"):
            rec = calls[int(ev["call"])]
            rec.worker = ev.get("worker", {})
            rec.started_at, rec.finished_at = ev.get("started"), ev.get("finished")
            rec.metadata = ev.get("metadata", {})
            if kind == "completed":
                rec.status = "completed"
                rec.samples = ev["samples"]
                rec.metrics, rec.sems = ev["metrics"], ev.get("sems", {})
                rec.quantities = ev.get("quantities", {})
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
    return calls
