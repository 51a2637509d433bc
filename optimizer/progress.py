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

    def start(self, study: StudyConfig, budget: int, records: dict[int, CallRecord]) -> None: ...

    def submitted(self, rec: CallRecord) -> None: ...

    def note(self, text: str) -> None:
        """One line about the campaign (e.g. which strategy ``auto`` chose)."""

    def finished(self, rec: CallRecord, best: Best) -> None: ...

    def end(self, summary: CampaignSummary) -> None: ...


NullReporter = Reporter


class LineReporter(Reporter):
    """One line per finished call on ``stream`` (stderr by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.study: StudyConfig | None = None
        self.records: dict[int, CallRecord] = {}

    def _best(self, best: Best, short: bool = False) -> str:
        if self.study is not None and len(self.study.objectives) > 1:
            return format_front(self.study, self.records, short=short)
        return format_best(best, self.study)

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def note(self, text: str) -> None:
        self._say(f"[detopt] {text}")

    def start(self, study: StudyConfig, budget: int, records: dict[int, CallRecord]) -> None:
        self.study, self.records = study, records  # the campaign's live records
        done = sum(r.done for r in records.values())
        verb = f"resuming ({done} calls recorded)" if records else "starting"
        self._say(f"[detopt] {study.name}: {verb}; budget {budget} calls, strategy {study.strategy.name}, "
                  f"backend {study.execution.backend}")

    def finished(self, rec: CallRecord, best: Best) -> None:
        what = rec.status if rec.status != "retry" else f"failed ({rec.failure_kind}), will retry"
        extra = f" error: {rec.error.splitlines()[0]}" if rec.error and rec.status != "completed" else ""
        self._say(f"[detopt] call {rec.call_id} ({rec.origin}) {what}; best: {self._best(best, short=True)}{extra}")

    @property
    def _multi(self) -> bool:
        return self.study is not None and len(self.study.objectives) > 1

    def end(self, summary: CampaignSummary) -> None:
        self._say(
            f"[detopt] {summary.stopped}: {summary.completed} completed, {summary.failed} failed "
            f"in {summary.wall_s:.1f} s; {'' if self._multi else 'best: '}{self._best(summary.best)}; results in {summary.root}"
        )


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
            TimeElapsedColumn(), console=self.console, transient=False,
        )
        self.task: Any = None
        self.inflight = 0

    def _say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def start(self, study: StudyConfig, budget: int, records: dict[int, CallRecord]) -> None:
        super().start(study, budget, records)
        done = sum(r.done and r.origin != "baseline" for r in records.values())
        self.progress.start()
        self.task = self.progress.add_task(study.name, total=budget, completed=done, inflight=0, best="-")

    def submitted(self, rec: CallRecord) -> None:
        self.inflight += 1
        self.progress.update(self.task, inflight=self.inflight)

    def finished(self, rec: CallRecord, best: Best) -> None:
        self.inflight -= 1
        if rec.status not in ("completed", "retry"):
            self.progress.console.print(f"call {rec.call_id} {rec.status}: {(rec.error or '').splitlines()[0] if rec.error else ''}",
                                        markup=False, highlight=False)
        advance = 1 if rec.done and rec.origin != "baseline" else 0
        self.progress.update(self.task, advance=advance, inflight=self.inflight, best=self._best(best, short=True))

    def end(self, summary: CampaignSummary) -> None:
        self.progress.stop()
        super().end(summary)


def default_reporter(quiet: bool = False) -> Reporter:
    if quiet:
        return Reporter()
    return RichReporter() if sys.stderr.isatty() else LineReporter()
