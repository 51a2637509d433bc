"""Reading a campaign directory: its files, its call records, and what they add up to.

The bottom of the reporting layer: ``status``, ``export``, ``report`` and the diagnostics read
campaigns through this module and never import the driver (:mod:`optimizer.campaign`, which
pulls in executors, strategies and torch). It needs numpy, the storage and the study schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer.errors import CampaignError
from optimizer.storage import CallRecord, JournalStorage, Storage, replay
from optimizer.study import StudyConfig, load_study

if TYPE_CHECKING:
    from optimizer.strategies.base import History

# The files of a campaign directory besides the storage's own (see optimizer.storage for those).
STUDY_FILE = "study.yaml"
META_FILE = "campaign.json"
STRATEGY_STATE = "strategy.pt"


class CampaignView:
    """A campaign directory opened for reading: nothing here writes, locks or runs anything."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.storage = JournalStorage(self.root)

    @classmethod
    def open(cls, root: str | Path) -> CampaignView:
        """Open an existing campaign directory.

        Raises:
            CampaignError: ``root`` is not a directory or holds no campaign.
        """
        view = cls(root)
        if not view.root.is_dir():
            raise CampaignError(f"{view.root}: no such campaign directory")
        if not (view.root / META_FILE).exists():
            raise CampaignError(f"{view.root}: not a campaign directory ({META_FILE} is missing)")
        return view

    def meta(self) -> dict[str, Any]:
        return json.loads((self.root / META_FILE).read_text())

    def study(self) -> StudyConfig:
        """The study stored with the campaign."""
        return load_study(self.root / STUDY_FILE)[0]

    def records(self) -> dict[int, CallRecord]:
        return replay(self.storage.events())


def best_so_far(study: StudyConfig, records: Iterable[CallRecord]) -> dict[str, tuple[float, int] | None]:
    """Per objective: (best value, call id) among completed feasible calls."""
    out: dict[str, tuple[float, int] | None] = {}
    recs = [r for r in records if r.status == "completed" and r.feasible]
    for name, o in study.objectives.items():
        if not recs:
            out[name] = None
            continue
        pick = min if o.direction == "minimize" else max
        r = pick(recs, key=lambda r: r.metrics[name])
        out[name] = (r.metrics[name], r.call_id)
    return out


def finished_in_order(records: dict[int, CallRecord]) -> list[CallRecord]:
    """Finished non-baseline calls in the order they finished: the x-axis of every "vs calls" plot."""
    return sorted(
        (r for r in records.values() if r.done and r.origin != "baseline"),
        key=lambda r: (r.finished_at or 0.0, r.call_id),
    )


def build_history(study: StudyConfig, records: dict[int, CallRecord], storage: Storage) -> History:
    """Arrays of the completed calls, in call order, for strategies."""
    # deferred: the strategies' module loads scipy.stats, which reading records does not need
    from optimizer.strategies.base import History

    done = [r for _, r in sorted(records.items()) if r.status == "completed"]
    bad = [r for _, r in sorted(records.items()) if r.status in ("failed", "infeasible")]
    obj, con = list(study.objectives), list(study.constraints)
    d = len(study.parameters)
    refs = [r.samples for r in done]

    def matrix(rows: list[list[float]], cols: int) -> np.ndarray:
        return np.array(rows, dtype=float).reshape(len(rows), cols)

    return History(
        theta=matrix([r.unit for r in done], d),
        call_ids=np.array([r.call_id for r in done], dtype=int),
        objectives=matrix([[r.metrics[o] for o in obj] for r in done], len(obj)),
        objective_sems=matrix([[r.sems.get(o, np.nan) for o in obj] for r in done], len(obj)),
        constraints=matrix([[r.metrics[c] for c in con] for r in done], len(con)),
        constraint_sems=matrix([[r.sems.get(c, np.nan) for c in con] for r in done], len(con)),
        feasible=np.array([bool(r.feasible) for r in done], dtype=bool),
        objective_names=obj,
        directions=[study.objectives[o].direction for o in obj],
        failed_theta=matrix([r.unit for r in bad], d),
        n_issued=sum(1 for r in records.values() if r.origin != "baseline"),
        _load=lambda i: storage.load_samples(refs[i]),  # type: ignore[arg-type]
    )
