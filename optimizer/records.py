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
from optimizer.storage import CallRecord, Storage, replay
from optimizer.storages import CAMPAIGN_STORAGE, STORAGES
from optimizer.study import Constraint, Objective, StudyConfig, is_minimised, load_study

if TYPE_CHECKING:
    from typing import Self  # Python 3.11; annotations only, so 3.10 runs this module too

    from optimizer.strategies.base import History

# The files of a campaign directory besides the storage's own (see optimizer.storage for those).
STUDY_FILE = "study.yaml"
META_FILE = "campaign.json"
STRATEGY_STATE = "strategy.pt"


class CampaignView:
    """A campaign directory opened for reading: nothing here writes, locks or runs anything."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.storage: Storage = STORAGES.get(CAMPAIGN_STORAGE)(self.root)

    @classmethod
    def open(cls, root: str | Path) -> Self:
        """Open an existing campaign directory for reading.

        Raises:
            CampaignError: the directory is missing, is not a campaign, or its ``campaign.json`` cannot be read.
        """
        camp = cls(root)
        if not camp.root.is_dir():
            raise CampaignError(f"{camp.root}: no such campaign directory")
        if not camp.meta_path.exists():
            raise CampaignError(f"{camp.root}: not a campaign directory ({META_FILE} is missing)")
        camp.meta()  # a corrupt campaign.json is one line here, not a traceback later
        return camp

    @property
    def meta_path(self) -> Path:
        return self.root / META_FILE

    def meta(self) -> dict[str, Any]:
        """The campaign's ``campaign.json`` (budget, output names, detopt version) as a dict.

        Raises:
            CampaignError: the file is missing or unreadable (one line, naming it).
        """
        try:
            meta = json.loads(self.meta_path.read_text())
        except FileNotFoundError:
            raise CampaignError(f"{self.meta_path}: missing (not a campaign directory)") from None
        except (OSError, ValueError, RecursionError) as err:
            raise CampaignError(f"{self.meta_path}: cannot be read ({type(err).__name__}: {err})") from None
        if not isinstance(meta, dict):
            raise CampaignError(f"{self.meta_path}: corrupt (not a JSON object)")
        for key in ("fingerprint", "budget_calls"):
            if key not in meta:
                raise CampaignError(f"{self.meta_path}: {key}: missing")
        if isinstance(meta["budget_calls"], bool) or not isinstance(meta["budget_calls"], int):
            raise CampaignError(f"{self.meta_path}: budget_calls: not an integer")
        cap = meta.get("budget_particles")
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise CampaignError(f"{self.meta_path}: budget_particles: not a positive integer")
        return meta

    def study(self, path: str | Path | None = None) -> StudyConfig:
        """The study stored with the campaign (or the one at ``path``), with the campaign's particle budget
        (``run``/``resume --particles`` keep it in ``campaign.json``, as ``--budget`` keeps the calls)."""
        return with_particle_budget(load_study(path or self.root / STUDY_FILE)[0], self.meta())

    def records(self) -> dict[int, CallRecord]:
        """Every call, replayed from the journal; every completed call's samples file checked (header only)."""
        records = replay(self.storage.events())
        columns: int | None = None
        for cid, r in sorted(records.items()):
            if r.status != "completed":
                continue
            if not isinstance(r.samples, str) or not r.samples:
                raise CampaignError(f"{self.storage.root}: call {cid} is completed but names no samples file")
            shape = self.storage.sample_shape(r.samples)
            problem = None
            if len(shape) != 2:
                problem = f"has shape {shape}, not [n, k]"
            elif r.n_rows is not None and shape[0] != r.n_rows:
                problem = f"has {shape[0]} rows, the journal recorded {r.n_rows}"
            elif columns is not None and shape[1] != columns:
                problem = f"has {shape[1]} columns, other calls have {columns}"
            if problem:
                raise CampaignError(f"{self.storage.describe(r.samples)}: samples of call {cid} {problem}")
            columns = shape[1]
        return records


def with_particle_budget(study: StudyConfig, meta: dict[str, Any]) -> StudyConfig:
    """``study`` with ``budget.particles`` from the campaign's ``meta`` where it holds one (campaigns started
    before the key existed, or started without a particle budget, keep the study's)."""
    if meta.get("budget_particles") is None:
        return study
    return study.model_copy(update={"budget": study.budget.model_copy(
        update={"particles": int(meta["budget_particles"])})})


def is_lost_for_good(rec: CallRecord) -> bool:
    """A call whose worker kept dying: recorded final, but neither a result nor a charge to the budget."""
    return rec.status == "failed" and rec.failure_kind == "lost"


def charged(rec: CallRecord) -> bool:
    """Whether a call counts against the budget: issued by the initial design or the strategy, and not
    lost for good to worker deaths (the README's failure table: lost calls are never charged). Confirmation
    calls (``budget.confirm``) come after the budget and are not charged either."""
    return rec.origin not in ("baseline", "confirm") and not is_lost_for_good(rec)


def finished_calls(records: Iterable[CallRecord]) -> int:
    """Calls finished and charged to the budget: the one count the progress bar, the end and Ctrl-C lines
    and ``optimize status`` show against the budget (baselines and calls lost for good are not in it)."""
    return sum(1 for r in records if r.done and charged(r))


def best_so_far(study: StudyConfig, records: Iterable[CallRecord]) -> dict[str, tuple[float, int] | None]:
    """Per objective: (best value, call id) among completed feasible calls."""
    out: dict[str, tuple[float, int] | None] = {}
    recs = [r for r in records if r.status == "completed" and r.feasible]
    for name, o in study.objectives.items():
        if not recs:
            out[name] = None
            continue
        pick = min if is_minimised(o.direction) else max
        r = pick(recs, key=lambda r: r.metrics[name])
        out[name] = (r.metrics[name], r.call_id)
    return out


def metric_spec(study: StudyConfig, name: str) -> Objective | Constraint:
    """The objective or constraint called ``name``."""
    return study.objectives[name] if name in study.objectives else study.constraints[name]


def metric_label(study: StudyConfig, name: str, unit: bool = True) -> str:
    """``label [unit]`` of an objective, constraint or parameter (the key when no label is given)."""
    if name in study.parameters:
        text, u = name, study.parameters[name].unit
    else:
        m = metric_spec(study, name)
        text, u = m.label or name, m.unit
    return f"{text} [{u}]" if unit and u else text


def format_param(value: Any, digits: int = 6) -> str:
    """A parameter's value for a table or a line: a number to ``digits`` significant digits, a categorical
    choice as written, ``-`` where a conditional parameter is inactive (``None``)."""
    if value is None:
        return "-"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{digits}g}"
    return str(value)


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

    from optimizer.space import SearchSpace

    space = SearchSpace(study.parameters)

    def unit(r: CallRecord) -> list[float]:  # from the physical values: bounds may have changed (--force)
        return space.to_unit(space.from_params(r.params)).tolist()

    return History(
        theta=matrix([unit(r) for r in done], d),
        call_ids=np.array([r.call_id for r in done], dtype=int),
        objectives=matrix([[r.metrics[o] for o in obj] for r in done], len(obj)),
        objective_sems=matrix([[r.sems.get(o, np.nan) for o in obj] for r in done], len(obj)),
        constraints=matrix([[r.metrics[c] for c in con] for r in done], len(con)),
        constraint_sems=matrix([[r.sems.get(c, np.nan) for c in con] for r in done], len(con)),
        feasible=np.array([bool(r.feasible) for r in done], dtype=bool),
        objective_names=obj,
        directions=[study.objectives[o].direction for o in obj],
        failed_theta=matrix([unit(r) for r in bad], d),
        # the strategies' stream position: calls lost for good count here (their replacement is a new design),
        # though not against the budget (see `optimizer.campaign.charged`); a promotion re-simulates a design
        n_issued=sum(1 for r in records.values() if r.origin not in ("baseline", "confirm", "promote")),
        _load=lambda i: storage.load_samples(refs[i]),  # type: ignore[arg-type]
    )
