"""``strategy: {name: auto}``: a strategy chosen from the study, by what detopt's benchmarks show.

The rule (:func:`choose`), with the evidence in ``docs/benchmarks.md``:

* several objectives → ``gp`` (qLogNoisyExpectedHypervolumeImprovement; the only strategy built
  for a Pareto front);
* at most :data:`LOW_DIM` parameters → ``gp`` (GP-BO is the best strategy on the 2-D paper problems);
* more parameters → ``turbo``, whatever the budget. On the 42-D SHiP shield under its mass limit it
  ends at a quarter of the new baseline's background after 100 calls, against 0.6–0.8 of it for GP-BO,
  L-GSO and CMA-ES (3 seeds); on the 30-D shield at half of it, ahead of WU-GO, CMA-ES, L-GSO and
  Sobol (GP-BO not run); on the 15-D absorber level with GP-BO and WU-GO from 100 calls (5 seeds).
  At 50 calls it is already ahead of GP-BO on the 42-D shield (0.029 against 0.031) and on the
  absorber (0.0067 against 0.0081), at a quarter to a third of GP-BO's strategy time, so a small
  budget is no reason to fall back to GP-BO.

The budget, the noise (the objective's statistic and ``samples_per_call``) and the quantity constraints
are read and quoted in the reason, but change nothing today: no benchmark has shown a budget at which
GP-BO overtakes the trust region in high dimensions, gp and turbo both take the calls' standard errors
as known noise and pick their incumbent by posterior mean, and every strategy proposes only designs
that meet the quantity constraints. ``auto`` takes no options (name the strategy to set them).
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
    return "turbo", f"{facts}: > {LOW_DIM} parameters → turbo"


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
