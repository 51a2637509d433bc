"""Particles per call as a decision: screen designs with few particles, promote the promising ones.

A stochastic simulator's cost is proportional to the particles it simulates. With ``budget.screen`` a study
simulates every new design (initial design and strategy proposals) with ``screen.samples`` particles, and tops
the promising ones up with a *promotion* call (origin ``"promote"``, labelled :func:`promote_label`) of
``samples_per_call − screen.samples`` particles, so that a promoted design has been simulated with
``samples_per_call`` particles in all, as an unscreened design is. The rule is asynchronous successive halving
(ASHA; Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020) with two rungs: whenever
a worker is free, a completed screened design is promoted if its screened value ranks within the best
``⌊promote · N⌋`` of the ``N`` screened calls completed so far and it has not been promoted yet; otherwise the
strategy proposes a new design. No worker waits for a rung to fill, and a resumed campaign re-derives every
decision from the journal.

Both calls of a promoted design stay in the history, each with its own seed and standard error, so a GP with
known noise (GP-BO, TuRBO, the recommendation) weighs each by its particles: the pooled estimate of all
``samples_per_call`` particles, without the strategies knowing about fidelities.

Low layer: imports the study schema and the records module only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from optimizer.records import charged
from optimizer.storage import CallRecord
from optimizer.study import StudyConfig, minimisation_sign

#: Origins of calls that simulate a new design (and so are screened when ``budget.screen`` is set).
DESIGN_ORIGINS = ("initial", "strategy")


def promote_label(call: int) -> str:
    """The label of the promotion call of call ``call`` (how a promoted design is found again on resume)."""
    return f"promotes call {call}"


def is_screen(study: StudyConfig, rec: CallRecord) -> bool:
    """Whether ``rec`` is a screening call: a new design simulated with the screen's particles."""
    screen = study.budget.screen
    return screen is not None and rec.origin in DESIGN_ORIGINS and rec.n_samples == screen.samples


def design_samples(study: StudyConfig) -> int:
    """Particles of a call that simulates a new design: the screen's when screening, else ``samples_per_call``."""
    screen = study.budget.screen
    return screen.samples if screen is not None else study.simulator.samples_per_call


def promotion_samples(study: StudyConfig) -> int:
    """Particles of a promotion call: what a screened design lacks of ``samples_per_call``."""
    screen = study.budget.screen
    return study.simulator.samples_per_call - (screen.samples if screen is not None else 0)


def to_promote(study: StudyConfig, records: Iterable[CallRecord]) -> CallRecord | None:
    """The screened call whose design should be re-simulated with full particles now, or ``None``.

    ASHA's rule on the study's one objective (lower is better after the direction's sign): among the ``N``
    completed screening calls, those ranked below ``⌊promote · N⌋`` qualify (a call that missed an outcome
    constraint ranks last); the best qualifying one without a promotion call (in any state) is returned.
    """
    screen = study.budget.screen
    if screen is None:
        return None
    records = list(records)
    promoted = {r.label for r in records if r.origin == "promote"}
    (name, objective), = study.objectives.items()
    sign = minimisation_sign(objective.direction)

    def key(r: CallRecord) -> tuple[float, int]:
        value = sign * r.metrics[name] if r.feasible and math.isfinite(r.metrics.get(name, math.nan)) else math.inf
        return value, r.call_id  # ties: the earlier call first, so the order never depends on dict order

    ranked = sorted((r for r in records if r.status == "completed" and is_screen(study, r)), key=key)
    top = math.floor(screen.promote * len(ranked) + 1e-9)  # 1e-9: 1/3 · 3 is one design, not zero
    for r in ranked[:top]:
        if key(r)[0] < math.inf and promote_label(r.call_id) not in promoted:
            return r
    return None


def issued_particles(records: Iterable[CallRecord]) -> int:
    """Particles of the calls charged to the budget (each counted once, whatever its attempts): what
    ``budget.particles`` caps. Baselines and confirmation calls are not charged."""
    return sum(r.n_samples for r in records if charged(r))
