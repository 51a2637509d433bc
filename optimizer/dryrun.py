"""``optimize run --dry-run``: check a study, time one call and one decision, estimate the campaign.

Nothing is written: the call runs in this process (its samples are dropped) and the strategy's decision
is timed on stand-in results built from that one call.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.errors import DetoptError
from optimizer.study import StudyConfig

#: Strategies whose decision is a lookup in a fixed sequence: nothing worth timing.
INSTANT_STRATEGIES = frozenset({"sobol", "random", "listed"})
#: Relative spread given to the stand-in objective values, so a model can be fitted on them (a GP on a
#: constant target is degenerate); the values only feed a timing, never a proposal that is used.
STANDIN_SPREAD = 0.05
#: Added to |value| before scaling by STANDIN_SPREAD, so a stand-in value of 0 still varies.
STANDIN_ZERO_SPREAD = 1e-6
#: Stand-in results the decision is timed on when the study has no initial design to mimic.
MIN_STANDIN_CALLS = 4


@dataclass
class DryRun:
    """What ``--dry-run`` measured and estimated (seconds)."""

    call_s: float
    call_at: str
    decision_s: float | None
    decision_note: str
    workers: int
    workers_note: str
    calls: int
    baselines: int
    decisions: int

    @property
    def wall_s(self) -> float:
        """Estimated campaign wall time: calls spread over the workers, decisions one after another."""
        per_call = self.call_s * -(-(self.calls + self.baselines) // self.workers)
        return per_call + (self.decision_s or 0.0) * self.decisions


def format_seconds(s: float) -> str:
    """A timing for the dry-run summary: milliseconds below 1 s, then seconds, minutes (from 90 s) or hours (from 1.5 h)."""
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 90:
        return f"{s:.1f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def workers_for(study: StudyConfig) -> tuple[int, str]:
    """Calls that run at once, from this machine's CPUs (a cluster is not contacted by a dry run)."""
    ex = study.execution
    if ex.backend == "inline":
        return 1, "inline backend: one call at a time"
    if ex.max_concurrent:
        return ex.max_concurrent, "execution.max_concurrent"
    cpus = os.cpu_count() or 1
    address = ex.address or os.environ.get("RAY_ADDRESS")
    per = ex.num_cpus if ex.num_cpus > 0 else 1
    n = max(1, int(cpus // per))
    if address:
        return n, (f"the cluster at {address} was not queried; estimated as this machine's {cpus} CPUs / "
                   f"num_cpus {ex.num_cpus:g}: divide by its share of the cluster's workers")
    return n, f"this machine's {cpus} CPUs / execution.num_cpus {ex.num_cpus:g}"


def _standin_history(study: StudyConfig, init: np.ndarray, samples: np.ndarray,
                     values: dict[str, tuple[float, float]]) -> Any:
    """A history of ``len(init)`` completed calls that all returned the timed call's samples, with objective
    values spread by :data:`STANDIN_SPREAD` (deterministic), so a model fit takes as long as a real one."""
    from optimizer.strategies.base import History

    n, d = init.shape
    obj, con = list(study.objectives), list(study.constraints)
    rng = np.random.default_rng(study.seed)

    def cols(names: list[str]) -> np.ndarray:
        base = np.array([values[k][0] for k in names], dtype=float)
        jitter = rng.standard_normal((n, len(names))) * STANDIN_SPREAD * (np.abs(base) + STANDIN_ZERO_SPREAD)
        return (base + jitter).reshape(n, len(names))

    sems = np.array([values[k][1] for k in obj], dtype=float)
    return History(
        theta=init, call_ids=np.arange(1, n + 1), objectives=cols(obj),
        objective_sems=np.tile(sems, (n, 1)).reshape(n, len(obj)), constraints=cols(con),
        constraint_sems=np.full((n, len(con)), np.nan), feasible=np.ones(n, dtype=bool),
        objective_names=obj, directions=[study.objectives[o].direction for o in obj],
        failed_theta=np.zeros((0, d)), n_issued=n, _load=lambda i: samples,
    )


def dry_run(study: StudyConfig, source: str, say: Any = print) -> DryRun:
    """Time one simulator call at the first baseline (else the centre of the space) and one strategy
    decision, and estimate the campaign's wall time. Writes nothing.

    Raises:
        DetoptError: the timed call failed (its first error line), or its metrics cannot be computed.
    """
    from optimizer.campaign import call_seed, prepare
    from optimizer.executors import CallRequest, execute_call, simulator_args
    from optimizer.metrics import evaluate_metric

    space, sim, strategy, init = prepare(study, source)
    if study.baselines:
        params, where = dict(study.baselines[0].params), f"baseline '{study.baselines[0].name}'"
    else:
        params, where = space.to_params(space.from_unit(np.full(space.dim, 0.5))), "the centre of the space"
    n = study.simulator.samples_per_call
    say(f"timing one call at {where} with {n} samples ...")
    out = execute_call(simulator_args(study.simulator), CallRequest(0, 1, params, n, call_seed(study.seed, 1)),
                       max(1, int(study.execution.num_cpus)))
    if out.status != "completed" or out.samples is None:
        first = (out.error or out.status).splitlines()[0]
        raise DetoptError(f"{source}: the timed call at {where} {out.status}: {first}")
    call_s = float((out.finished or 0.0) - (out.started or 0.0))
    try:
        values = {k: evaluate_metric(m, out.samples, list(sim.outputs), out.quantities)
                  for k, m in {**study.objectives, **study.constraints}.items()}
    except Exception as err:  # noqa: BLE001 - as in a campaign: a metric that cannot be computed is the study's problem
        raise DetoptError(f"{source}: objectives: cannot be computed from the timed call: {type(err).__name__}: {err}") from None
    budget, n_init = study.budget.calls, min(study.budget.initial_design, study.budget.calls)
    decisions = budget - n_init
    decision_s: float | None
    if study.strategy.name in INSTANT_STRATEGIES:
        decision_s, note = 0.0, "a fixed sequence: no model"
    elif decisions == 0:
        decision_s, note = 0.0, "the budget is all initial design"
    else:
        standin = init if len(init) >= MIN_STANDIN_CALLS else np.vstack(
            [init, strategy.feasible_sobol(len(init), MIN_STANDIN_CALLS - len(init))])
        history = _standin_history(study, standin, out.samples, values)
        say(f"timing two {study.strategy.name} decisions on {len(standin)} stand-in results ...")
        def decide(h: Any) -> tuple[float, np.ndarray]:
            t0 = time.perf_counter()
            strategy.tell(h)
            p = np.asarray(strategy.ask(h, np.zeros((0, space.dim)), 1), dtype=float).reshape(-1, space.dim)
            return time.perf_counter() - t0, p

        try:
            first_s, point = decide(history)
            # the second decision is the typical one: models refit warm from the first fit (WU-GO), or anew (GP)
            more = np.vstack([standin, point[:1] if len(point) else standin[:1]])
            second_s, _ = decide(_standin_history(study, more, out.samples, values))
        except Exception as err:  # noqa: BLE001 - a stand-in history may not suit every strategy: estimate without it
            decision_s, note = None, f"not timed ({type(err).__name__}); the campaign's ETA measures it"
        else:
            decision_s = (first_s + second_s * (decisions - 1)) / decisions
            note = (f"first {format_seconds(first_s)}, then {format_seconds(second_s)}, on {len(standin)} stand-in "
                    "results; decisions on more results take longer")
    workers, wnote = workers_for(study)
    return DryRun(call_s, where, decision_s, note, workers, wnote, budget, len(study.baselines), decisions)


def print_dry_run(study: StudyConfig, res: DryRun, out_dir: Path, say: Any = print) -> None:
    """Print the dry run through ``say``: one call's and one decision's timings, the workers and the estimated wall time."""
    base = f" + {res.baselines} baselines" if res.baselines else ""
    say(f"study {study.name}: valid; {res.calls} calls{base}, strategy {study.strategy.name}, "
        f"backend {study.execution.backend}")
    say(f"one call ({study.simulator.samples_per_call} samples, at {res.call_at}): {format_seconds(res.call_s)}")
    if res.decision_s is None:
        say(f"one strategy decision: {res.decision_note}")
    else:
        say(f"one strategy decision: {format_seconds(res.decision_s)} on average ({res.decision_note})")
    say(f"workers: {res.workers} ({res.workers_note})")
    say(f"estimated campaign wall time: ~{format_seconds(res.wall_s)} "
        f"({res.calls + res.baselines} calls × {format_seconds(res.call_s)} / {res.workers} worker{'s' if res.workers > 1 else ''}"
        + (f" + {res.decisions} decisions × {format_seconds(res.decision_s)}" if res.decision_s else "") + ")")
    if (out_dir / "journal.jsonl").exists():
        say(f"note: {out_dir} already holds a campaign; `optimize run` would refuse it (use `optimize resume`)")
    say(f"nothing was written; the campaign would be recorded in {out_dir}")
