"""Progress display: a rich live bar on a terminal, one plain line per call otherwise (logs, CI)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    from optimizer.storage import CallRecord
    from optimizer.study import StudyConfig

Best = dict[str, "tuple[float, int] | None"]


class CampaignSummary(Protocol):
    """What a reporter reads of :class:`optimizer.campaign.CampaignSummary` (declared here, as the
    loop calls the reporter and not the other way round)."""

    root: Path
    completed: int
    failed: int
    best: Best
    wall_s: float
    stopped: str
    finished: int
    budget: int
    recommended: dict[str, Any] | None
    particles: int
    particles_budget: int | None


#: Phases of the strategy's work between calls, named by the loop (``Reporter.phase``).
FITTING = "fitting surrogate"
CHOOSING = "choosing designs"
#: BoTorch's first acquisition optimisation compiles kernels (minutes on a CPU); later ones reuse them.
COMPILING = "choosing designs (compiling kernels, once)"


def format_duration(s: float) -> str:
    """A duration for a progress line: seconds below 90 s, minutes below 1.5 h, hours beyond."""
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


class Eta:
    """Remaining wall time from measured call durations and decision times:
    median call duration × remaining calls / workers + remaining decisions × mean decision time."""

    def __init__(self) -> None:
        self.workers = 1
        self.decision_s = 0.0  # strategy time (fits, proposals) measured in this run
        self.decided = 0  # calls the strategy chose in this run

    def estimate(self, study: StudyConfig, budget: int, records: dict[int, CallRecord]) -> float | None:
        """Seconds left, or None before any call has a measured duration."""
        from statistics import median

        from optimizer.records import finished_calls

        durations = [r.duration for r in records.values() if r.duration is not None]
        if not durations:
            return None
        left = max(0, budget - finished_calls(records.values()))
        initial = [r for r in records.values() if r.origin == "initial"]
        # initial-design calls not yet issued or not finished need no decision
        initial_left = max(0, min(study.budget.initial_design, budget) - len(initial)) + sum(not r.done for r in initial)
        decisions = max(0, left - initial_left)
        per_decision = self.decision_s / self.decided if self.decided else 0.0
        cap = study.budget.particles
        if cap is not None:  # a call's time scales with its particles, and the particles may run out first
            from optimizer.fidelity import design_samples
            from optimizer.records import charged

            rates = [r.duration / r.n_samples for r in records.values() if r.duration is not None and r.n_samples > 0]
            spent = sum(r.n_samples for r in records.values() if r.done and charged(r))
            per_particle = median(rates) if rates else 0.0
            decisions = min(decisions, max(0, cap - spent) // design_samples(study))
            by_calls = median(durations) * left  # whichever budget runs out first
            return min(by_calls, per_particle * max(0, cap - spent)) / max(1, self.workers) + per_decision * decisions
        return median(durations) * left / max(1, self.workers) + per_decision * decisions

    def untimed_decisions(self, study: StudyConfig, budget: int, records: dict[int, CallRecord]) -> bool:
        """Whether strategy decisions are still to come but none has been timed yet (the estimate is a lower bound)."""
        if self.decided or study.strategy.name in ("sobol", "random"):
            return False
        return budget > min(study.budget.initial_design, budget)


def format_best(best: Best, study: StudyConfig | None = None) -> str:
    """Per-objective bests (single objective), with the objective's unit when the study is known."""
    def unit(k: str) -> str:
        u = study.objectives[k].unit if study is not None and k in study.objectives else ""
        return f" {u}" if u else ""

    parts = [f"{k}={v[0]:.6g}{unit(k)} (call {v[1]})" for k, v in best.items() if v is not None]
    return ", ".join(parts) or "-"


def format_front(study: StudyConfig, records: dict[int, CallRecord], short: bool = False) -> str:
    """Several objectives: the Pareto front's size and its knee's values (± s.e., units, change vs baseline).

    Per-objective bests would name dominated designs (the lightest design with the most hits).
    """
    from optimizer.pareto import format_change, format_value, front_table

    rows = front_table(study, records)
    if not rows:
        return "no feasible completed call yet"
    knee = next(r for r in rows if r.knee)
    if short:
        vals = ", ".join(f"{k}={v:.4g}" for k, v in knee.values.items())
        return f"front {len(rows)}, knee call {knee.call_id}: {vals}"
    vals = ", ".join(
        f"{k} = {format_value(knee.values[k], knee.sems[k], study.objectives[k].unit)}"
        + (f" ({format_change(knee.change[k])} vs baseline)" if knee.change[k] is not None else "")
        for k in study.objectives)
    return f"Pareto front of {len(rows)} designs; knee at call {knee.call_id}: {vals}"


class Reporter:
    """Receives campaign events; the base class ignores them."""

    def start(self, study: StudyConfig, budget: int, records: dict[int, CallRecord]) -> None:
        """The loop begins: ``budget`` calls in all, ``records`` already in the journal (a resume)."""

    def workers(self, n: int) -> None:
        """``n`` calls run at once (for the ETA)."""

    def phase(self, what: str) -> None:
        """The strategy started ``what`` (:data:`FITTING`, :data:`CHOOSING`, :data:`COMPILING`)."""

    def phase_done(self, what: str, seconds: float) -> None:
        """... and finished it after ``seconds``."""

    def submitted(self, rec: CallRecord) -> None:
        """Call ``rec`` was handed to the executor."""

    def note(self, text: str) -> None:
        """One line about the campaign (e.g. which strategy ``auto`` chose)."""

    def finished(self, rec: CallRecord, best: Best) -> None:
        """Call ``rec`` was recorded (completed, failed or to be retried); ``best`` is the best so far per objective."""

    def end(self, summary: CampaignSummary) -> None:
        """The loop stopped; ``summary`` says why and what it found."""


def format_recommended(rec: dict[str, Any], study: StudyConfig | None = None) -> str:
    """``recommended NAME = mean ± std UNIT at call N (method)``: the design a single-objective campaign reports."""
    name = rec["objective"]
    unit = study.objectives[name].unit if study is not None and name in study.objectives else ""
    why = f"; {rec['reason']}" if rec.get("reason") else ""
    return (f"recommended {name} = {rec['mean']:.6g} ± {rec['std']:.2g}{' ' + unit if unit else ''} at call "
            f"{rec['call']} ({rec['method']}{why})")


def end_lines(summary: CampaignSummary, best: str, study: StudyConfig | None = None) -> list[str]:
    """The end-of-run lines: what ran, what it found, and what to run next."""
    failed = f", {summary.failed} failed" if summary.failed else ""
    more = ", baselines included" if summary.completed + summary.failed > summary.finished else ""
    rec = summary.recommended
    if rec is not None:  # under noise the best observed value is an optimistic draw: the model's choice leads
        best = f"{format_recommended(rec, study)}; {best.replace('best: ', 'best observed: ', 1)}"
    cap = summary.particles_budget
    spent = f", {summary.particles:,}/{cap:,} particles" if cap is not None else ""
    head = (f"{summary.stopped}: {summary.finished}/{summary.budget} calls{spent} finished ({summary.completed} "
            f"completed{failed}{more}) in {format_duration(summary.wall_s)}; {best}")
    if summary.stopped == "interrupted":
        return [head, f"results so far in {summary.root} (optimize status {summary.root})"]
    return [head, f"results in {summary.root}; next: optimize report {summary.root} (figures, report.html), "
                  f"optimize status {summary.root}"]


NullReporter = Reporter


class LineReporter(Reporter):
    """One line per finished call on ``stream`` (stderr by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.study: StudyConfig | None = None
        self.records: dict[int, CallRecord] = {}
        self.budget = 0
        self.eta = Eta()
        self._phases_said: set[str] = set()

    def workers(self, n: int) -> None:
        self.eta.workers = n

    def phase(self, what: str) -> None:
        if what not in self._phases_said:  # a log says each phase once; a long first one is then explained
            self._phases_said.add(what)
            self._say(f"[detopt] {what} ...")

    def phase_done(self, what: str, seconds: float) -> None:
        self.eta.decision_s += seconds

    def _eta(self) -> str:
        if self.study is None:
            return "-"
        left = self.eta.estimate(self.study, self.budget, self.records)
        if left is None:
            return "-"
        # during the initial design no decision has been timed: a GP or WU-GO decision can outweigh every call
        bound = "≥" if self.eta.untimed_decisions(self.study, self.budget, self.records) else "~"
        return f"{bound}{format_duration(left)}"

    def _best(self, best: Best, short: bool = False) -> str:
        if self.study is not None and len(self.study.objectives) > 1:
            return format_front(self.study, self.records, short=short)
        return format_best(best, self.study)

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def note(self, text: str) -> None:
        self._say(f"[detopt] {text}")

    def start(self, study: StudyConfig, budget: int, records: dict[int, CallRecord]) -> None:
        self.study, self.records, self.budget = study, records, budget  # the campaign's live records
        done = sum(r.done for r in records.values())
        verb = f"resuming ({done} calls recorded)" if records else "starting"
        cap = f" or {study.budget.particles:,} particles" if study.budget.particles is not None else ""
        screen = (f", screening new designs with {study.budget.screen.samples:,} particles"
                  if study.budget.screen is not None else "")
        self._say(f"[detopt] {study.name}: {verb}; budget {budget} calls{cap}{screen}, strategy {study.strategy.name}, "
                  f"backend {study.execution.backend}")

    def submitted(self, rec: CallRecord) -> None:
        if rec.origin == "strategy" and rec.attempts == 1:
            self.eta.decided += 1

    def _count(self) -> str:
        from optimizer.records import finished_calls

        count = f"{finished_calls(self.records.values())}/{self.budget}"
        cap = self.study.budget.particles if self.study is not None else None
        if cap is not None:  # with a particle budget, calls are only the upper bound
            from optimizer.fidelity import issued_particles

            count += f" calls, {issued_particles(self.records.values()):,}/{cap:,} particles"
        return count

    def finished(self, rec: CallRecord, best: Best) -> None:
        what = rec.status if rec.status != "retry" else f"failed ({rec.failure_kind}), will retry"
        extra = f" error: {rec.error.splitlines()[0]}" if rec.error and rec.status != "completed" else ""
        self._say(f"[detopt] call {rec.call_id} ({rec.origin}) {what} [{self._count()}, ETA {self._eta()}]; "
                  f"best: {self._best(best, short=True)}{extra}")

    @property
    def _multi(self) -> bool:
        return self.study is not None and len(self.study.objectives) > 1

    def end(self, summary: CampaignSummary) -> None:
        for line in end_lines(summary, f"{'' if self._multi else 'best: '}{self._best(summary.best)}", self.study):
            self._say(f"[detopt] {line}")


class RichReporter(LineReporter):
    """A live progress bar: calls done / budget, in flight, best so far."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(file=self.stream)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("in flight {task.fields[inflight]}"), TextColumn("best {task.fields[best]}"),
            TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"), TextColumn("{task.fields[phase]}"),
            console=self.console, transient=False,
        )
        self.task: Any = None
        self.inflight = 0

    def _say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def start(self, study: StudyConfig, budget: int, records: dict[int, CallRecord]) -> None:
        from optimizer.records import finished_calls

        super().start(study, budget, records)
        self.progress.start()
        self.task = self.progress.add_task(study.name, total=budget, completed=finished_calls(records.values()),
                                           inflight=0, best="-", eta="-", phase="")

    def phase(self, what: str) -> None:  # shown live beside the bar, not logged
        if self.task is not None:
            self.progress.update(self.task, phase=what + " ...")

    def phase_done(self, what: str, seconds: float) -> None:
        super().phase_done(what, seconds)
        if self.task is not None:
            self.progress.update(self.task, phase="")

    def submitted(self, rec: CallRecord) -> None:
        super().submitted(rec)
        self.inflight += 1
        self.progress.update(self.task, inflight=self.inflight)

    def finished(self, rec: CallRecord, best: Best) -> None:
        self.inflight -= 1
        if rec.status not in ("completed", "retry"):
            self.progress.console.print(f"call {rec.call_id} {rec.status}: {(rec.error or '').splitlines()[0] if rec.error else ''}",
                                        markup=False, highlight=False)
        from optimizer.records import finished_calls

        # the same count as the end, Ctrl-C and status lines: finished calls charged to the budget
        self.progress.update(self.task, completed=finished_calls(self.records.values()), inflight=self.inflight,
                             best=self._best(best, short=True), eta=self._eta())

    def end(self, summary: CampaignSummary) -> None:
        self.progress.stop()
        super().end(summary)


def default_reporter(quiet: bool = False) -> Reporter:
    """The progress display for the CLI: none when ``quiet``, a live rich display on a terminal, plain lines otherwise."""
    if quiet:
        return Reporter()
    return RichReporter() if sys.stderr.isatty() else LineReporter()
