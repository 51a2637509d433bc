"""A campaign: the study, its directory, and the loop that runs it.

The loop in :func:`run_campaign` is the whole control flow, top to bottom::

    strategy proposes → executor runs → storage records → strategy (surrogate) refits

Everything it needs to continue is in the journal, so ``resume`` replays the
journal, re-runs the calls that were in flight when the driver died, and goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer import __version__
from optimizer.constraints import quantity_oracle
from optimizer.errors import CampaignError, InfrastructureError, StudyError
from optimizer.executors import EXECUTORS, CallOutcome, CallRequest, Executor, add_study_paths, simulator_args
from optimizer.fidelity import design_samples, issued_particles, promote_label, promotion_samples, to_promote
from optimizer.metrics import evaluate_metric, is_feasible
from optimizer.progress import CHOOSING, COMPILING, FITTING, NullReporter, Reporter
from optimizer.recommend import (ConfirmSkippedWarning, RecommendationFallbackWarning, confirm_label, recommend,
                                 recommend_cached)
from optimizer.records import (  # noqa: F401 - re-exported
    META_FILE, STRATEGY_STATE, STUDY_FILE, CampaignView, best_so_far, build_history, charged, finished_calls,
    is_lost_for_good, with_particle_budget,
)
from optimizer.space import SearchSpace
from optimizer.storage import CallRecord, CampaignLock, replay
from optimizer.strategies import STRATEGIES, History, Strategy, initial_design
from optimizer.strategies.base import OptionError
from optimizer.study import ParamValue, StudyConfig, load_study

if TYPE_CHECKING:
    from simulators.base import Simulator

#: Re-runs of a call whose worker/node was lost after Ray's own retries (never charged to the budget).
MAX_LOST_RERUNS = 3
#: A call lost more often than MAX_LOST_RERUNS is recorded final and replaced; once this many calls per
#: budget call are lost for good (every replacement dies too) the campaign stops instead of trying forever.
MAX_LOST_CALLS_PER_BUDGET = 1.0


def call_seed(study_seed: int, call_id: int) -> int:
    """The seed of call ``call_id``: independent streams per call, reproducible from the study seed."""
    return int(np.random.SeedSequence([study_seed, call_id]).generate_state(1)[0])


# -- the campaign directory -------------------------------------------------------------
class Campaign(CampaignView):
    """A campaign directory the driver writes to (see :mod:`optimizer.storage` for its layout); reading
    it is :class:`optimizer.records.CampaignView`'s."""

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self._lock: CampaignLock | None = None

    def _write_meta(self, meta: dict[str, Any]) -> None:
        tmp = self.meta_path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(meta, indent=2))
            tmp.replace(self.meta_path)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise CampaignError(f"{self.meta_path}: cannot be written ({(err.strerror or str(err)).lower()})") from None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the campaign's lock (re-entrant for this object: a command holds it around every write)."""
        if self._lock is not None:
            yield
            return
        held = CampaignLock(self.root)
        try:
            held.__enter__()
        except OSError as err:  # a directory that cannot be created or written
            raise CampaignError(f"{held.path}: cannot take the campaign lock "
                                f"({(err.strerror or str(err)).lower()})") from None
        self._lock = held
        try:
            yield
        finally:
            self._lock = None
            held.__exit__(None, None, None)

    @classmethod
    def create(cls, root: str | Path, study: StudyConfig, text: str, source: str, budget: int | None = None) -> Campaign:
        """Start a new campaign directory; refuses one that already holds a campaign."""
        camp = cls(root)
        camp.initialise(study, text, source, budget)
        return camp

    def initialise(self, study: StudyConfig, text: str, source: str, budget: int | None = None,
                   particles: int | None = None) -> None:
        """Write a new campaign's study and metadata (under the lock; refuses a directory holding one).

        ``budget`` (calls) and ``particles`` override the study's ``budget.calls`` and ``budget.particles``; both
        caps live in ``campaign.json`` from then on, so ``resume --budget/--particles`` can move them.
        """
        camp = self
        calls = study.budget.calls if budget is None else budget
        if calls < 1:
            raise CampaignError(f"--budget: {calls} is not a positive number of calls")
        cap = study.budget.particles if particles is None else particles
        if cap is not None and cap < 1:
            raise CampaignError(f"--particles: {cap} is not a positive number of particles")
        check_output_dir(camp.root)
        with camp.lock():
            if camp.meta_path.exists() or camp.storage.started():
                raise CampaignError(
                    f"{camp.root}: already holds a campaign; continue it with 'optimize resume {camp.root}' "
                    "or choose another --output"
                )
            try:
                (camp.root / STUDY_FILE).write_text(text)
            except OSError as err:
                raise CampaignError(f"{camp.root / STUDY_FILE}: {(err.strerror or str(err)).lower()}") from None
            camp._write_meta(
                {
                    "name": study.name,
                    "source": str(Path(source).resolve()),
                    "fingerprint": study.fingerprint(),
                    "science": study.science_dict(),
                    "budget_calls": calls,
                    "budget_particles": cap,
                    "created": time.time(),
                    "detopt": __version__,
                    "python": platform.python_version(),
                }
            )

    def check_study(self, study: StudyConfig, text: str | None, force: bool) -> None:
        """Refuse a study that changed since the campaign started, unless ``force``.

        With ``force`` the new study replaces the stored one (the old file is kept beside it), if the
        stored history can support it: objectives and constraints that are new or redefined are
        recomputed for every completed call from its stored samples (a ``metrics_recomputed`` event),
        and every stored call must lie within the new parameter bounds. Everything is checked before
        anything is written; the caller holds the campaign lock.
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
        recomputed = None if same else self._supported_change(study, old)
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
        if recomputed:
            self.storage.append({"event": "metrics_recomputed", "calls": recomputed})
        self.storage.close()

    def _supported_change(self, study: StudyConfig, old: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """What the stored calls need under a changed ``study``: per completed call, the metrics that are
        new or redefined, recomputed from its samples (and its feasibility). Refuses what they cannot support."""
        records = self.records()
        calls = [r for _, r in sorted(records.items())]
        for r in calls:
            missing = [p for p in study.parameters if p not in r.params and not study.parameters[p].when]
            if missing:
                raise CampaignError(
                    f"{self.root}: parameters.{missing[0]}: stored call {r.call_id} has no value for this parameter; "
                    "start a new campaign for a different set of parameters")
            for name, p in study.parameters.items():
                v = r.params.get(name)
                if (v is None and p.when) or p.problem(v) is None:
                    continue
                shown = f"{v:g}" if isinstance(v, (int, float)) else repr(v)
                how = (f"not one of the new choices {p.choices}; add it back" if p.choices is not None else
                       "not a number" if p.problem(v) and not isinstance(v, (int, float)) else
                       "outside the new bounds [{:g}, {:g}]; widen the bounds".format(*p.bounds()))
                raise CampaignError(f"{self.root}: parameters.{name}: stored call {r.call_id} has {name}={shown}, {how} "
                                    "or start a new campaign")
        old_metrics = {**old.get("objectives", {}), **old.get("constraints", {})}
        new_metrics = {**study.objectives, **study.constraints}
        redo = [n for n, m in new_metrics.items() if old_metrics.get(n) != m.model_dump(mode="json")]
        constraints_changed = old.get("constraints") != study.science_dict().get("constraints")
        done = [r for r in calls if r.status == "completed"]
        if not done or not (redo or constraints_changed):
            return {}
        from_samples = any(new_metrics[n].statistic != "quantity" for n in redo)
        outputs = list(simulator_args(study.simulator).build().outputs) if from_samples else []
        out: dict[str, dict[str, Any]] = {}
        for r in done:
            metrics, sems = {}, {}
            samples = self.storage.load_samples(str(r.samples)) if from_samples else np.empty((0, 0))
            for n in redo:
                m = new_metrics[n]
                section = "objectives" if n in study.objectives else "constraints"
                if m.statistic == "quantity" and m.quantity not in r.quantities:
                    raise CampaignError(
                        f"{self.root}: {section}.{n}.quantity: '{m.quantity}' was not recorded for call {r.call_id}; "
                        "it cannot be computed for the stored calls")
                try:
                    v, sem = evaluate_metric(m, samples, outputs, r.quantities)
                except (ValueError, IndexError, KeyError) as err:
                    raise CampaignError(
                        f"{self.root}: {section}.{n}: cannot be computed from the stored samples of call "
                        f"{r.call_id} ({type(err).__name__}: {err})") from None
                metrics[n], sems[n] = v, sem
            values = {**r.metrics, **metrics}
            out[str(r.call_id)] = {"metrics": metrics, "sems": sems,
                                   "feasible": is_feasible(study.constraints, values)}
        return out

    def set_budget(self, calls: int | None = None, particles: int | None = None) -> None:
        """Set the campaign's total budget to ``calls`` (``resume --budget``) and its particle cap to ``particles``
        (``resume --particles``); ``None`` keeps that one. The journal is untouched.

        Raises:
            CampaignError: ``calls`` or ``particles`` is not positive (nothing is written).
        """
        if calls is not None and calls < 1:
            raise CampaignError(f"--budget: {calls} is not a positive number of calls")
        if particles is not None and particles < 1:
            raise CampaignError(f"--particles: {particles} is not a positive number of particles")
        meta = self.meta()
        if calls is not None:
            meta["budget_calls"] = int(calls)
        if particles is not None:
            meta["budget_particles"] = int(particles)
        self._write_meta(meta)



def check_output_dir(root: Path) -> None:
    """Refuse a campaign directory that cannot be created or written, before anything is written."""
    if root.exists() and not root.is_dir():
        raise CampaignError(f"{root}: exists and is not a directory")
    parent = root
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise CampaignError(f"{parent}: is not a directory, so {root} cannot be created")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CampaignError(f"{root}: cannot be created ({(err.strerror or str(err)).lower()})") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise CampaignError(f"{root}: is not writable")


# -- checks of a study against its simulator ---------------------------------------------
def check_simulator(study: StudyConfig, sim: Simulator, source: str) -> None:
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
    from simulators import SimulatorOptionError

    example = {n: p.example() for n, p in study.parameters.items()}
    # each choice of a categorical parameter once, the rest at the example
    examples = [example, *({**example, n: c} for n, p in study.parameters.items() for c in (p.choices or [])[1:])]
    try:
        for ex in examples:
            getattr(sim, "check_parameters", lambda _: None)(ex)
    except SimulatorOptionError as err:
        raise StudyError(source, err.field, err.message) from None


def make_strategy(study: StudyConfig, space: SearchSpace, source: str) -> Strategy:
    """The strategy the study names, with its options checked.

    Raises:
        StudyError: unknown name or bad options, naming the ``strategy`` field.
    """
    try:
        cls = STRATEGIES.get(study.strategy.name)
    except KeyError as err:
        raise StudyError(source, "strategy.name", err.args[0]) from None
    try:
        cls.check_options(study.strategy.options)
        return cls(space, study, study.seed, **study.strategy.options)
    except OptionError as err:
        raise StudyError(source, err.field, err.message) from None
    except TypeError as err:
        raise StudyError(source, "strategy.options", str(err)) from None
    except ValueError as err:
        raise StudyError(source, "", str(err)) from None


def prepare(study: StudyConfig, source: str) -> tuple[SearchSpace, Simulator, Strategy, np.ndarray]:
    """Build and cross-check everything a study names, before anything is written or run.

    Returns:
        The search space, the simulator, the strategy and the ``[n_init, d]`` initial design.

    Raises:
        StudyError / DetoptError: naming the field that is wrong.
    """
    space = SearchSpace(study.parameters)
    if ":" in study.simulator.name:
        add_study_paths(source)
    sim = simulator_args(study.simulator).build(source)  # the run's one instance in the driver
    check_simulator(study, sim, source)
    strategy = make_strategy(study, space, source)
    strategy.set_simulator(sim)
    oracle = quantity_oracle(study, space, sim, source)
    if oracle is not None:
        strategy.set_feasibility(oracle)
    try:
        init = initial_design(study.strategy.initial_design, study.budget.initial_design, space.dim, study.seed)
        if oracle is not None:  # cheap constraints are exact: refill rejected points from the feasible Sobol points
            init = (strategy.feasible_sobol(0, len(init)) if study.strategy.initial_design == "sobol" else
                    np.vstack([init[oracle(init)], strategy.feasible_sobol(0, len(init) - int(oracle(init).sum()))]))
    except ValueError as err:
        raise StudyError(source, "strategy.initial_design", str(err)) from None
    return space, sim, strategy, init


def make_executor(study: StudyConfig, workdir: Path | None) -> Executor:
    """The executor ``execution.backend`` names, given the study's simulator and execution sections.

    Args:
        workdir: the folder workers may keep scratch files in (the study's folder), or ``None``.
    """
    return EXECUTORS.get(study.execution.backend)(study.simulator, study.execution, workdir)


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
        # weights_only: a campaign directory is data; unpickling arbitrary objects would run code
        strategy.load_state_dict(torch.load(path, weights_only=True))
    except Exception as err:  # noqa: BLE001 - a stale or foreign state is not fatal: refit from the journal
        campaign.storage.append({"event": "strategy_state_ignored", "reason": f"{type(err).__name__}: {err}"})
        return False
    return True


@dataclass
class CampaignSummary:
    """How a run of :func:`run_campaign` ended: calls recorded, the best values, and why it stopped.

    ``best`` maps each objective to ``(value, call id)`` of the best feasible completed call (``None`` if none).
    """

    root: Path
    calls: int
    completed: int
    failed: int
    best: dict[str, tuple[float, int] | None]
    wall_s: float
    stopped: str  # "budget" | "strategy" | "lost" | "interrupted" (errors are raised, not returned)
    finished: int = 0  # finished calls charged to the budget (`optimizer.records.finished_calls`)
    budget: int = 0
    #: One objective: the model-based recommendation (``Recommendation.as_dict`` plus ``objective``), else None.
    recommended: dict[str, Any] | None = None
    particles: int = 0  # particles of the charged calls (what ``budget.particles`` caps)
    particles_budget: int | None = None


#: Strategies built on BoTorch (auto chooses gp or turbo): their first acquisition optimisation in a process
#: compiles kernels.
BOTORCH_STRATEGIES = frozenset({"gp", "turbo", "auto"})


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
    n_init = study.budget.initial_design
    storage = campaign.storage
    exec_res = {"num_cpus": study.execution.num_cpus, "num_gpus": study.execution.num_gpus}

    with campaign.lock():
        meta = campaign.meta()
        budget = int(meta["budget_calls"])
        study = with_particle_budget(study, meta)  # the campaign's particle cap, as its call budget
        records = campaign.records()
        resumed = bool(records)
        if not records:
            storage.check_fresh_start()
        for r in records.values():  # stored coordinates follow the current bounds (a --force change)
            r.unit = space.to_unit(space.from_params(r.params)).tolist()
        known = {"outputs": list(sim.outputs), "known_optima": sim.known_optima(), "optimum_value": sim.optimum_value()}
        if any(meta.get(k, "unset") != v for k, v in known.items()):
            # reports and status read these from here, without importing (or building) the simulator
            campaign._write_meta({**meta, **known})
        # Calls that were in flight when a previous driver died, or failed with retries left, run again.
        rerun: deque[CallRecord] = deque(r for _, r in sorted(records.items()) if not r.done)
        baselines = deque(b for b in study.baselines if b.name not in {r.label for r in records.values() if r.origin == "baseline"})
        in_flight: dict[int, CallRecord] = {}
        storage.append({"event": "campaign", "action": "resume" if resumed else "start", "budget": budget,
                        "fingerprint": study.fingerprint(), "detopt": __version__})
        strategy_done = False
        models = type(strategy).tell is not Strategy.tell  # a fit worth announcing
        first_ask = [study.strategy.name in BOTORCH_STRATEGIES]
        new_design, top_up = design_samples(study), promotion_samples(study)  # particles of a call

        @contextlib.contextmanager
        def phase(what: str) -> Iterator[None]:
            t = time.perf_counter()
            reporter.phase(what)
            try:
                yield
            finally:
                reporter.phase_done(what, time.perf_counter() - t)

        def tell() -> None:
            fits = models and any(r.status == "completed" for r in records.values())  # else nothing to fit on
            with phase(FITTING) if fits else contextlib.nullcontext():
                strategy.tell(history())

        def n_issued() -> int:  # charged to the budget: calls lost for good are replaced
            return sum(1 for r in records.values() if charged(r))

        def n_initial() -> int:  # initial-design points used, lost ones included (never proposed twice)
            return sum(1 for r in records.values() if r.origin == "initial")

        def initial_open() -> bool:  # initial-design calls still to issue or to finish
            designs = sum(1 for r in records.values() if charged(r) and r.origin != "promote")
            return designs < min(n_init, budget) or any(r.origin == "initial" and not r.done for r in records.values())

        def affordable(n_samples: int) -> bool:  # one more charged call fits both budgets
            cap = study.budget.particles
            return n_issued() < budget and (cap is None or issued_particles(records.values()) + n_samples <= cap)

        def too_many_lost() -> bool:
            return sum(1 for r in records.values() if is_lost_for_good(r)) >= MAX_LOST_CALLS_PER_BUDGET * budget

        def history() -> History:
            return build_history(study, records, storage)

        def new_call(origin: str, unit: np.ndarray, label: str | None = None, n_samples: int | None = None,
                     params: dict[str, ParamValue] | None = None) -> CallRecord:
            params = params or space.to_params(space.from_unit(unit))
            cid = max(records, default=0) + 1
            rec = CallRecord(
                call_id=cid, origin=origin, label=label, params=params,
                unit=space.to_unit(space.from_params(params)).tolist(),
                seed=call_seed(study.seed, cid), n_samples=n_samples or study.simulator.samples_per_call,
                resources=exec_res,
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
            while n_initial() < min(n_init, budget) and affordable(new_design) and n < free:
                n += 1
                yield new_call("initial", init_points[n_initial()], n_samples=new_design)
            while n < free and affordable(top_up) and (screened := to_promote(study, records.values())) is not None:
                n += 1  # multi-fidelity: a promising screened design is topped up to the full particles first
                yield new_call("promote", np.zeros(space.dim), label=promote_label(screened.call_id),
                               n_samples=top_up, params=screened.params)
            if strategy.needs_initial_results and any(r.origin == "initial" and not r.done for r in records.values()):
                return
            while n < free and affordable(new_design) and not strategy_done and not too_many_lost():
                pending = np.array([r.unit for r in in_flight.values()], dtype=float).reshape(-1, space.dim)
                with phase(COMPILING if first_ask[0] else CHOOSING):
                    first_ask[0] = False
                    points = np.asarray(strategy.ask(history(), pending, 1), dtype=float).reshape(-1, space.dim)
                if len(points) == 0:
                    strategy_done = not in_flight
                    return
                n += 1
                yield new_call("strategy", points[0], n_samples=new_design)
            if n < free and not in_flight and not rerun and not baselines and (not affordable(new_design) or strategy_done):
                yield from confirmations(free - n)

        def confirmations(free: int) -> Iterator[CallRecord]:
            """``budget.confirm`` calls re-simulating the recommended design with ``confirm_samples`` particles."""
            done = [r for r in records.values() if r.origin == "confirm"]
            left = min(free, study.budget.confirm - len(done))
            if left <= 0:
                return
            if done:  # the design chosen when confirmation began
                params, label = done[0].params, done[0].label
            else:
                rec = recommend(study, records.values())
                if rec is None:
                    warnings.warn("budget.confirm: no feasible completed call to confirm", ConfirmSkippedWarning,
                                  stacklevel=2)
                    return
                params, label = rec.params, confirm_label(rec.call)
            for _ in range(left):
                yield new_call("confirm", np.zeros(space.dim), label=label, n_samples=study.confirm_samples,
                               params=params)

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
            status, error, samples = out.status, out.error, out.samples
            if status == "completed" and samples is None:  # an executor that breaks its contract fails the call
                status, error = "invalid_output", "the executor returned a completed call without samples"
            if status == "completed" and samples is not None:
                try:
                    values = {n: evaluate_metric(m, samples, list(sim.outputs), out.quantities)
                              for n, m in {**study.objectives, **study.constraints}.items()}
                except Exception as err:  # noqa: BLE001 - a metric that cannot be computed fails the call
                    status, error = "invalid_output", f"cannot compute metrics: {type(err).__name__}: {err}"
                else:
                    if not all(np.isfinite(v) for v, _ in values.values()):
                        status, error = "invalid_output", "an objective or constraint is not finite"
            if status == "completed" and samples is not None:
                rec.samples = storage.save_samples(rec.call_id, samples)
                rec.metrics = {n: v for n, (v, _) in values.items()}
                rec.sems = {n: s for n, (_, s) in values.items()}
                rec.quantities, rec.metadata = out.quantities, out.metadata
                rec.feasible = is_feasible(study.constraints, rec.metrics)
                rec.status, rec.error, rec.failure_kind = "completed", None, None
                storage.append({"event": "completed", **common, "samples": rec.samples,
                                "n": int(samples.shape[0]), "metrics": rec.metrics, "sems": rec.sems,
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
        reporter.workers(int(getattr(executor_, "slots", executor_.capacity)))
        chosen = strategy.choice()
        if chosen is not None:
            storage.append({"event": "strategy_chosen", "strategy": chosen[0], "reason": chosen[1]})
            reporter.note(f"strategy {study.strategy.name} chose {chosen[0]}: {chosen[1]}")
        stopped = ""  # set when the loop ends; a "finished" event is written only then
        try:
            tell()
            save_strategy(campaign, strategy)
            while True:
                free = executor_.capacity - executor_.in_flight()
                for rec in propose(free) if free > 0 else []:
                    submit(rec)
                if executor_.in_flight() == 0:
                    stopped = "strategy" if strategy_done else "lost" if too_many_lost() else "budget"
                    break
                outcomes = executor_.wait()
                for out in outcomes:
                    record(out)
                # no refit while the unfinished initial design keeps the strategy from proposing (ask refits)
                if outcomes and (strategy.refit_during_initial_design or not initial_open()):
                    tell()
                    save_strategy(campaign, strategy)
        except KeyboardInterrupt:
            stopped = "interrupted"
            storage.append({"event": "campaign", "action": "interrupted", "in_flight": sorted(in_flight)})
        except InfrastructureError as err:
            # Ray is gone, not the calls: the ones in flight stay "submitted" (re-run on resume, not charged).
            stopped = "infrastructure_error"
            storage.append({"event": "campaign", "action": "infrastructure_error", "error": str(err),
                            "in_flight": sorted(in_flight)})
            err.campaign = str(campaign.root)
            raise
        except Exception as err:
            # Recorded calls stay valid; the in-flight ones run again on resume.
            stopped = "error"
            with contextlib.suppress(CampaignError):  # a full disk: the error itself is what matters
                storage.append({"event": "campaign", "action": "error", "error": f"{type(err).__name__}: {err}",
                                "in_flight": sorted(in_flight)})
            raise
        finally:
            executor_.close()
            if stopped in ("budget", "strategy", "lost"):
                storage.append({"event": "campaign", "action": "finished", "stopped": stopped})
            storage.close()
        recommended = None
        if len(study.objectives) == 1 and stopped != "interrupted":  # Ctrl-C ends now; status recommends later
            with warnings.catch_warnings():  # a fallback says why in the end line itself
                warnings.simplefilter("ignore", RecommendationFallbackWarning)
                final = recommend_cached(study, records.values(), campaign.root)
            recommended = None if final is None else {"objective": final.objective, **final.as_dict()}
        summary = CampaignSummary(
            root=campaign.root,
            calls=len(records),
            completed=sum(r.status == "completed" for r in records.values()),
            failed=sum(r.status in ("failed", "infeasible") for r in records.values()),
            best=best_so_far(study, records.values()),
            wall_s=time.time() - t0,
            stopped=stopped,
            finished=finished_calls(records.values()),
            budget=budget,
            recommended=recommended,
            particles=issued_particles(records.values()),
            particles_budget=study.budget.particles,
        )
        reporter.end(summary)
        return summary
