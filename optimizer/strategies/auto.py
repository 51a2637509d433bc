"""``strategy: {name: auto}``: a strategy chosen from the study, by what detopt's benchmarks show.

The rule (:func:`choose`), with the evidence in ``docs/benchmarks.md``:

* several objectives → ``gp`` (qLogNoisyExpectedHypervolumeImprovement; the only strategy built
  for a Pareto front);
* at most :data:`LOW_DIM` parameters → ``gp`` (GP-BO is the best strategy on the 2-D paper problems);
* more parameters and a budget of at least :data:`TURBO_MIN_CALLS` calls → ``turbo`` (on a noisy 10-D
  sphere the trust-region GP and CMA-ES beat Sobol, the trust-region GP by far; on noisy
  Styblinski–Tang-20 after 100 calls it is level with GP-BO and ahead of CMA-ES and Sobol; on the 42-D
  SHiP shield under its mass limit it ends at a quarter of the new baseline's background after 100 calls,
  against 0.6–0.8 of it for GP-BO, L-GSO and CMA-ES, over 3 seeds);
* otherwise → ``gp`` (a small budget leaves a trust region too few calls to shrink and grow).

Noise (the objective's statistic and ``samples_per_call``) and the quantity constraints are read and
quoted in the reason, but change nothing today: gp and turbo both take the calls' standard errors as
known noise and pick their incumbent by posterior mean, and every strategy proposes only designs that
meet the quantity constraints. ``auto`` takes no options (name the strategy to set them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer.space import SearchSpace
from optimizer.strategies.base import FeasibilityOracle, History, Strategy
from optimizer.study import StudyConfig

if TYPE_CHECKING:
    from simulators.base import Simulator

#: Up to this many parameters GP-BO is chosen (2-D paper problems: GP-BO best; 10-D: turbo ahead).
LOW_DIM = 10
#: Calls a trust region needs to pay off (the 20-D benchmark's 100 calls); fewer go to GP-BO.
TURBO_MIN_CALLS = 100


def choose(study: StudyConfig) -> tuple[str, str]:
    """``(strategy name, one-line reason)`` for ``study``."""
    d, calls, m = len(study.parameters), study.budget.calls, len(study.objectives)
    quantity = sum(c.statistic == "quantity" for c in study.constraints.values())
    first = next(iter(study.objectives.values()))
    noise = ("deterministic" if first.statistic == "quantity" else
             f"{first.statistic} of {study.simulator.samples_per_call} samples per call")
    facts = f"{d} parameters, budget {calls} calls, {m} objective{'s' if m > 1 else ''} ({noise})"
    if quantity:
        facts += f", {quantity} quantity constraint{'s' if quantity > 1 else ''} (exact in every strategy)"
    if m > 1:
        return "gp", f"{facts}: several objectives → gp (qLogNEHVI)"
    if d <= LOW_DIM:
        return "gp", f"{facts}: ≤ {LOW_DIM} parameters → gp"
    if calls >= TURBO_MIN_CALLS:
        return "turbo", f"{facts}: > {LOW_DIM} parameters and ≥ {TURBO_MIN_CALLS} calls → turbo"
    return "gp", f"{facts}: > {LOW_DIM} parameters but < {TURBO_MIN_CALLS} calls → gp"


class AutoStrategy(Strategy):
    """Delegates every call to the strategy :func:`choose` picks; no options of its own."""

    def __init__(self, space: SearchSpace, study: StudyConfig, seed: int) -> None:
        from optimizer.strategies import STRATEGIES

        super().__init__(space, study, seed)
        self.chosen, self.reason = choose(study)
        self.inner: Strategy = STRATEGIES.get(self.chosen)(space, study, seed)
        self.needs_initial_results = self.inner.needs_initial_results
        self.refit_during_initial_design = self.inner.refit_during_initial_design

    def choice(self) -> tuple[str, str] | None:
        return self.chosen, self.reason

    def set_feasibility(self, oracle: FeasibilityOracle) -> None:
        super().set_feasibility(oracle)
        self.inner.set_feasibility(oracle)

    def set_simulator(self, sim: Simulator) -> None:
        super().set_simulator(sim)
        self.inner.set_simulator(sim)

    def tell(self, history: History) -> None:
        self.inner.tell(history)

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        return self.inner.ask(history, pending, n)

    def state_dict(self) -> dict[str, Any] | None:
        state = self.inner.state_dict()
        return None if state is None else {"chosen": self.chosen, "state": state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("chosen") == self.chosen:  # a state saved for another choice is not this strategy's
            self.inner.load_state_dict(state["state"])
