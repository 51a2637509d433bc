"""A campaign: the study, its directory, and the loop that runs it.

The loop in :func:`run_campaign` is the whole control flow, top to bottom::

    strategy proposes → executor runs → storage records → strategy (surrogate) refits

Everything it needs to continue is in the journal, so ``resume`` replays the
journal, re-runs the calls that were in flight when the driver died, and goes on.
"""

from __future__ import annotations

import json
import platform
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optimizer import __version__
from optimizer.errors import CampaignError, StudyError
from optimizer.executors import EXECUTORS, CallOutcome, CallRequest, Executor, build_simulator
from optimizer.metrics import evaluate_metric, is_feasible
from optimizer.progress import NullReporter, Reporter
from optimizer.space import SearchSpace
from optimizer.storage import CallRecord, CampaignLock, JournalStorage, replay
from optimizer.strategies import STRATEGIES, History, Strategy, initial_design
from optimizer.study import StudyConfig, load_study

#: Re-runs of a call whose worker/node was lost after Ray's own retries (never charged to the budget).
MAX_LOST_RERUNS = 3
STUDY_FILE = "study.yaml"
META_FILE = "campaign.json"


def call_seed(study_seed: int, call_id: int) -> int:
    """The seed of call ``call_id``: independent streams per call, reproducible from the study seed."""
    return int(np.random.SeedSequence([study_seed, call_id]).generate_state(1)[0])


# -- the campaign directory -------------------------------------------------------------
class Campaign:
    """A campaign directory (see :mod:`optimizer.storage` for its layout)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.storage = JournalStorage(self.root)

    @property
    def meta_path(self) -> Path:
        return self.root / META_FILE

    def meta(self) -> dict[str, Any]:
        return json.loads(self.meta_path.read_text())

    def _write_meta(self, meta: dict[str, Any]) -> None:
        tmp = self.meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, indent=2))
        tmp.replace(self.meta_path)

    @classmethod
    def create(cls, root: str | Path, study: StudyConfig, text: str, source: str, budget: int | None = None) -> Campaign:
        """Start a new campaign directory; refuses one that already holds a campaign."""
        camp = cls(root)
        if camp.meta_path.exists() or camp.storage.path.exists():
            raise CampaignError(
                f"{camp.root}: already holds a campaign; continue it with 'optimize resume {camp.root}' "
                "or choose another --output"
            )
        camp.root.mkdir(parents=True, exist_ok=True)
        (camp.root / STUDY_FILE).write_text(text)
        camp._write_meta(
            {
                "name": study.name,
                "source": str(Path(source).resolve()),
                "fingerprint": study.fingerprint(),
                "science": study.science_dict(),
                "budget_calls": budget or study.budget.calls,
                "created": time.time(),
                "detopt": __version__,
                "python": platform.python_version(),
            }
        )
        return camp

    @classmethod
    def open(cls, root: str | Path) -> Campaign:
        camp = cls(root)
        if not camp.root.is_dir():
            raise CampaignError(f"{camp.root}: no such campaign directory")
        if not camp.meta_path.exists():
            raise CampaignError(f"{camp.root}: not a campaign directory ({META_FILE} is missing)")
        return camp

    def study(self, path: str | Path | None = None) -> StudyConfig:
        """The study stored with the campaign (or the one at ``path``)."""
        return load_study(path or self.root / STUDY_FILE)[0]

    def check_study(self, study: StudyConfig, text: str | None, force: bool) -> None:
        """Refuse a study that changed since the campaign started, unless ``force``.

        With ``force`` the new study replaces the stored one (the old file is kept beside it).
        """
        meta = self.meta()
        same = study.fingerprint() == meta["fingerprint"]
        old, new = meta.get("science", {}), study.science_dict()
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if not same and not force:
            raise CampaignError(
                f"{self.root}: the study changed since the campaign started ({', '.join(changed) or 'content'} differ); "
                "resume with --force to continue with the new study"
            )
        current = self.root / STUDY_FILE
        if text is not None and current.read_text() != text:
            # Keep the previous file: the campaign's history was produced under it.
            stamp, i = time.strftime("%Y%m%d-%H%M%S"), 0
            while (self.root / f"study-{stamp}-{i}.yaml").exists():
                i += 1
            current.replace(self.root / f"study-{stamp}-{i}.yaml")
            current.write_text(text)
        if same:
            return
        # A surrogate fitted under the old study may not fit the new one: refit from the journal.
        (self.root / STRATEGY_STATE).unlink(missing_ok=True)
        meta.update(fingerprint=study.fingerprint(), science=new)
        self._write_meta(meta)
        self.storage.append({"event": "study_changed", "changed": changed})
        self.storage.close()

    def set_budget(self, calls: int) -> None:
        meta = self.meta()
        meta["budget_calls"] = int(calls)
        self._write_meta(meta)

    def records(self) -> dict[int, CallRecord]:
        return replay(self.storage.events())


# -- checks of a study against its simulator ---------------------------------------------
def check_simulator(study: StudyConfig, sim: Any, source: str) -> None:
    """Cross-check names the study uses against what the simulator declares."""
    if sim.parameters is not None and getattr(sim, "parameters_are_subset", False):
        unknown = [p for p in study.parameters if p not in sim.parameters]
        if unknown:
            raise StudyError(
                source, f"parameters.{unknown[0]}",
                f"not a parameter of simulator '{study.simulator.name}' (it takes: {', '.join(sim.parameters)})",
            )
    elif sim.parameters is not None and set(sim.parameters) != set(study.parameters):
        raise StudyError(
            source, "parameters",
            f"simulator '{study.simulator.name}' takes parameters {list(sim.parameters)}, the study has {list(study.parameters)}",
        )
    for section in ("objectives", "constraints"):
        for name, m in getattr(study, section).items():
            if m.statistic == "quantity":
                if m.quantity not in sim.quantities:
                    raise StudyError(
                        source, f"{section}.{name}.quantity",
                        f"'{m.quantity}' is not a quantity of simulator '{study.simulator.name}' "
                        f"(it has: {', '.join(sim.quantities) or 'none'})",
                    )
                continue
            for key in ("output", "weight"):
                col = getattr(m, key)
                if col is not None and col not in sim.outputs:
                    raise StudyError(
                        source, f"{section}.{name}.{key}",
                        f"'{col}' is not an output of simulator '{study.simulator.name}' (outputs: {', '.join(sim.outputs)})",
                    )


def make_strategy(study: StudyConfig, space: SearchSpace, source: str) -> Strategy:
    try:
        cls = STRATEGIES.get(study.strategy.name)
    except KeyError as err:
        raise StudyError(source, "strategy.name", err.args[0]) from None
    try:
        return cls(space, study, study.seed, **study.strategy.options)
    except TypeError as err:
        raise StudyError(source, "strategy.options", str(err)) from None
    except ValueError as err:
        raise StudyError(source, "", str(err)) from None


def prepare(study: StudyConfig, source: str) -> tuple[SearchSpace, Any, Strategy, np.ndarray]:
    """Build and cross-check everything a study names, before anything is written or run.

    Returns:
        The search space, the simulator, the strategy and the ``[n_init, d]`` initial design.

    Raises:
        StudyError / DetoptError: naming the field that is wrong.
    """
    space = SearchSpace(study.parameters)
    sim = build_simulator(study.simulator)
    check_simulator(study, sim, source)
    strategy = make_strategy(study, space, source)
    try:
        init = initial_design(study.strategy.initial_design, study.budget.initial_design, space.dim, study.seed)
    except ValueError as err:
        raise StudyError(source, "strategy.initial_design", str(err)) from None
    return space, sim, strategy, init


def make_executor(study: StudyConfig, workdir: Path | None) -> Executor:
    return EXECUTORS.get(study.execution.backend)(study.simulator, study.execution, workdir)


# -- results ---------------------------------------------------------------------------
def build_history(study: StudyConfig, records: dict[int, CallRecord], storage: JournalStorage) -> History:
    """Arrays of the completed calls, in call order, for strategies."""
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
        _load=lambda i: storage.load_samples(refs[i]),  # type: ignore[index]
    )


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


STRATEGY_STATE = "strategy.pt"


def save_strategy(campaign: Campaign, strategy: Strategy) -> None:
    """Write the strategy's fitted state (surrogate weights) atomically; a crash leaves the previous one."""
    state = strategy.state_dict()
    if state is None:
        return
    import torch

    path = campaign.root / STRATEGY_STATE
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def restore_strategy(campaign: Campaign, strategy: Strategy) -> bool:
    """Load a saved strategy state; on any mismatch the strategy refits from the journal instead."""
    path = campaign.root / STRATEGY_STATE
    if not path.exists():
        return False
    import torch

    try:
        strategy.load_state_dict(torch.load(path, weights_only=False))
    except Exception as err:  # noqa: BLE001 - a stale or foreign state is not fatal: refit from the journal
        campaign.storage.append({"event": "strategy_state_ignored", "reason": f"{type(err).__name__}: {err}"})
        return False
    return True


@dataclass
class CampaignSummary:
    root: Path
    calls: int
    completed: int
    failed: int
    best: dict[str, tuple[float, int] | None]
    wall_s: float
    stopped: str  # "budget" | "strategy" | "interrupted" ("error" is raised, not returned)


# -- the loop ----------------------------------------------------------------------------
def run_campaign(
    campaign: Campaign,
    study: StudyConfig,
    *,
    source: str | None = None,
    reporter: Reporter | None = None,
    executor: Executor | None = None,
) -> CampaignSummary:
    """Run (or continue) a campaign until its budget is spent or the strategy stops.

    Args:
        campaign: the campaign directory (created or opened).
        study: the validated study.
        source: the study file's name for error messages.
        reporter: progress display; none by default.
        executor: an executor to use instead of the study's (tests).
    """
    source = source or str(campaign.root / STUDY_FILE)
    reporter = reporter or NullReporter()
    t0 = time.time()
    space, sim, strategy, init_points = prepare(study, source)
    budget = int(campaign.meta()["budget_calls"])
    n_init = study.budget.initial_design
    storage = campaign.storage
    exec_res = {"num_cpus": study.execution.num_cpus, "num_gpus": study.execution.num_gpus}

    with CampaignLock(campaign.root):
        records = campaign.records()
        resumed = bool(records)
        # Calls that were in flight when a previous driver died, or failed with retries left, run again.
        rerun: deque[CallRecord] = deque(r for _, r in sorted(records.items()) if not r.done)
        baselines = deque(b for b in study.baselines if b.name not in {r.label for r in records.values() if r.origin == "baseline"})
        in_flight: dict[int, CallRecord] = {}
        storage.append({"event": "campaign", "action": "resume" if resumed else "start", "budget": budget,
                        "fingerprint": study.fingerprint(), "detopt": __version__})
        strategy_done = False

        def n_issued() -> int:
            return sum(1 for r in records.values() if r.origin != "baseline")

        def history() -> History:
            return build_history(study, records, storage)

        def new_call(origin: str, unit: np.ndarray, label: str | None = None) -> CallRecord:
            params = space.to_params(space.from_unit(unit))
            cid = max(records, default=0) + 1
            rec = CallRecord(
                call_id=cid, origin=origin, label=label, params=params,
                unit=space.to_unit(space.from_params(params)).tolist(),
                seed=call_seed(study.seed, cid), n_samples=study.simulator.samples_per_call, resources=exec_res,
            )
            records[cid] = rec
            return rec

        def propose(free: int) -> Iterator[CallRecord]:
            """Up to ``free`` calls to start now: re-runs, baselines, initial design, then the strategy.

            A generator: each call is submitted before the next is chosen, so a worker starts as soon
            as its design exists instead of waiting for a whole batch, and the strategy sees the calls
            just submitted as pending points.
            """
            nonlocal strategy_done
            n = 0
            while rerun and n < free:
                n += 1
                yield rerun.popleft()
            while baselines and n < free:
                b = baselines.popleft()
                n += 1
                yield new_call("baseline", space.to_unit(space.from_params(b.params)), label=b.name)
            while n_issued() < min(n_init, budget) and n < free:
                n += 1
                yield new_call("initial", init_points[n_issued()])
            initial_open = any(r.origin == "initial" and not r.done for r in records.values())
            if strategy.needs_initial_results and initial_open:
                return
            while n < free and n_issued() < budget and not strategy_done:
                pending = np.array([r.unit for r in in_flight.values()], dtype=float).reshape(-1, space.dim)
                points = np.asarray(strategy.ask(history(), pending, 1), dtype=float).reshape(-1, space.dim)
                if len(points) == 0:
                    strategy_done = not in_flight
                    return
                n += 1
                yield new_call("strategy", points[0])

        def submit(rec: CallRecord) -> None:
            rec.attempts += 1
            rec.status = "submitted"
            storage.append({
                "event": "submitted", "call": rec.call_id, "attempt": rec.attempts, "origin": rec.origin,
                "label": rec.label, "params": rec.params, "unit": rec.unit, "seed": rec.seed,
                "n_samples": rec.n_samples, "resources": rec.resources,
            })
            rec.submitted_at = time.time()
            in_flight[rec.call_id] = rec
            executor_.submit(CallRequest(rec.call_id, rec.attempts, rec.params, rec.n_samples, rec.seed))
            reporter.submitted(rec)

        def record(out: CallOutcome) -> None:
            rec = in_flight.pop(out.call_id)
            rec.worker, rec.started_at, rec.finished_at = out.worker, out.started, out.finished
            common = {"call": rec.call_id, "attempt": out.attempt, "worker": out.worker,
                      "started": out.started, "finished": out.finished, "metadata": out.metadata}
            status, error = out.status, out.error
            if status == "completed":
                try:
                    values = {n: evaluate_metric(m, out.samples, list(sim.outputs), out.quantities)
                              for n, m in {**study.objectives, **study.constraints}.items()}
                except Exception as err:  # noqa: BLE001 - a metric that cannot be computed fails the call
                    status, error = "invalid_output", f"cannot compute metrics: {type(err).__name__}: {err}"
                else:
                    if not all(np.isfinite(v) for v, _ in values.values()):
                        status, error = "invalid_output", "an objective or constraint is not finite"
            if status == "completed":
                rec.samples = storage.save_samples(rec.call_id, out.samples)
                rec.metrics = {n: v for n, (v, _) in values.items()}
                rec.sems = {n: s for n, (_, s) in values.items()}
                rec.quantities, rec.metadata = out.quantities, out.metadata
                rec.feasible = is_feasible(study.constraints, rec.metrics)
                rec.status, rec.error, rec.failure_kind = "completed", None, None
                storage.append({"event": "completed", **common, "samples": rec.samples,
                                "n": int(out.samples.shape[0]), "metrics": rec.metrics, "sems": rec.sems,
                                "quantities": rec.quantities, "feasible": rec.feasible})
            else:
                if status == "lost":
                    rec.losses += 1
                    final = rec.losses > MAX_LOST_RERUNS
                elif status == "infeasible":
                    final = True
                else:  # kinds outside retry_on would fail the same way again
                    rec.failures += 1
                    final = status not in study.execution.retry_on or rec.failures > study.execution.retries
                rec.status = ("infeasible" if status == "infeasible" else "failed") if final else "retry"
                rec.error, rec.failure_kind = error, status
                storage.append({"event": "failed", **common, "kind": status, "error": error, "final": final})
                if not final:
                    rerun.append(rec)
            reporter.finished(rec, best_so_far(study, records.values()))

        restore_strategy(campaign, strategy)
        executor_ = executor or make_executor(study, Path(source).resolve().parent)
        reporter.start(study, budget, records)
        stopped = "budget"
        try:
            strategy.tell(history())
            save_strategy(campaign, strategy)
            while True:
                free = executor_.capacity - executor_.in_flight()
                for rec in propose(free) if free > 0 else []:
                    submit(rec)
                if executor_.in_flight() == 0:
                    stopped = "strategy" if strategy_done else "budget"
                    break
                outcomes = executor_.wait()
                for out in outcomes:
                    record(out)
                # no refit while the unfinished initial design keeps the strategy from proposing (ask refits)
                if outcomes and not (not strategy.refit_during_initial_design and (n_issued() < min(n_init, budget) or
                                     any(r.origin == "initial" and not r.done for r in records.values()))):
                    strategy.tell(history())
                    save_strategy(campaign, strategy)
        except KeyboardInterrupt:
            stopped = "interrupted"
            storage.append({"event": "campaign", "action": "interrupted", "in_flight": sorted(in_flight)})
        except Exception as err:
            # Recorded calls stay valid; the in-flight ones run again on resume.
            stopped = "error"
            storage.append({"event": "campaign", "action": "error", "error": f"{type(err).__name__}: {err}",
                            "in_flight": sorted(in_flight)})
            raise
        finally:
            executor_.close()
            if stopped not in ("interrupted", "error"):
                storage.append({"event": "campaign", "action": "finished", "stopped": stopped})
            storage.close()
        summary = CampaignSummary(
            root=campaign.root,
            calls=len(records),
            completed=sum(r.status == "completed" for r in records.values()),
            failed=sum(r.status in ("failed", "infeasible") for r in records.values()),
            best=best_so_far(study, records.values()),
            wall_s=time.time() - t0,
            stopped=stopped,
        )
        reporter.end(summary)
        return summary
