"""Simulators that misbehave on purpose, named from studies as ``sims_for_tests:...``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from simulators.base import InfeasibleDesign, SimulationResult, Simulator, TransientError


def quadratic(params, n, seed, scale=1.0, noise=0.1):
    rng = np.random.default_rng(seed)
    x = np.array(list(params.values()))
    return scale * float((x**2).sum()) + noise * rng.standard_normal(n)


def two_outputs(params, n, seed):
    rng = np.random.default_rng(seed)
    x = params["x1"]
    return np.stack([x + rng.standard_normal(n), rng.exponential(1.0, n)], axis=1)


def normal_sin(params, n, seed):
    """y ~ N(sin 3θ, 0.1 + 0.2θ): a known conditional distribution for surrogate checks."""
    t = params["theta"]
    return np.sin(3 * t) + (0.1 + 0.2 * t) * np.random.default_rng(seed).standard_normal(n)


class Moody(Simulator):
    """Fails depending on x1: > 4 raises, < -4 returns NaN, |x2| > 4 wrong shape, x1 == 0 infeasible."""

    parameters = ("x1", "x2")
    quantities = ("cost",)

    def simulate(self, params, n, seed):
        x1, x2 = params["x1"], params["x2"]
        if x1 > 4:
            raise RuntimeError("detector geometry overlaps")
        if x1 == 0:
            raise InfeasibleDesign("magnet gap below zero")
        rng = np.random.default_rng(seed)
        y = x1**2 + x2**2 + 0.1 * rng.standard_normal(n)
        if x1 < -4:
            y[0] = np.nan
        if abs(x2) > 4:
            return np.zeros((n, 3))
        return SimulationResult(y[:, None], {"x1": x1})

    def quantities_at(self, params):
        return {"cost": abs(params["x1"]) + 1.0}


class Flaky(Simulator):
    """Raises on the first attempt of each seed (state kept in files), then works; ``transient`` raises
    TransientError instead of a plain OSError."""

    parameters = ("x1", "x2")

    def __init__(self, state_dir: str, transient: bool = False):
        self.state_dir = Path(state_dir)
        self.transient = transient

    def simulate(self, params, n, seed):
        mark = self.state_dir / f"seen-{seed}"
        if not mark.exists():
            mark.write_text("1")
            raise (TransientError if self.transient else OSError)("transient file-system hiccup")
        return np.random.default_rng(seed).standard_normal(n) + params["x1"] ** 2


class Slow(Simulator):
    """Sleeps ``delay_s`` (to be killed or timed out mid-call)."""

    parameters = ("x1", "x2")

    def __init__(self, delay_s: float = 30.0):
        self.delay_s = delay_s

    def simulate(self, params, n, seed):
        time.sleep(self.delay_s)
        return np.zeros(n)


def die(params, n, seed):
    os._exit(1)  # the worker process dies: a system failure, not a simulator error


class Shield(Simulator):
    """Toy background-vs-cost trade-off: more iron (x1) lowers background but costs and weighs more."""

    parameters = ("x1", "x2")
    quantities = ("cost", "mass")

    def simulate(self, params, n, seed):
        rng = np.random.default_rng(seed)
        rate = np.exp(-3.0 * params["x1"]) * (1.0 + params["x2"] ** 2)
        return rate + 0.05 * rng.standard_normal(n)

    def quantities_at(self, params):
        return {"cost": params["x1"] + 0.5 * params["x2"], "mass": 10.0 * params["x1"]}


def marked(params, n, seed, state_dir: str, delay: float = 2.0, fail_above: float | None = None):
    """Leaves ``start-<seed>-<node>`` and ``done-<seed>-<node>`` files around a ``delay`` s sleep, so a test can
    tell which node ran (or was running) each call. With ``fail_above``: calls with x1 above it always raise;
    the others raise TransientError on their first attempt."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    state = Path(state_dir)
    first = not list(state.glob(f"start-{seed}-*"))
    (state / f"start-{seed}-{node}-{os.getpid()}").write_text("")
    time.sleep(delay)
    if fail_above is not None:
        if params["x1"] > fail_above:
            raise RuntimeError("geometry overlap (every time)")
        if first:
            raise TransientError("licence server busy")
    (state / f"done-{seed}-{node}-{os.getpid()}").write_text("")
    return params["x1"] ** 2 + params["x2"] ** 2 + 0.1 * np.random.default_rng(seed).standard_normal(n)


def always_fails(params, n, seed):
    """Every call fails (a campaign with nothing completed)."""
    raise RuntimeError("simulator is broken")


def die_above(params, n, seed, above: float = 2.0):
    """The worker process dies (``os._exit``) for x1 above ``above``; a quadratic elsewhere."""
    if params["x1"] > above:
        os._exit(1)
    return params["x1"] ** 2 + params["x2"] ** 2 + 0.1 * np.random.default_rng(seed).standard_normal(n)


def lucky(params, n, seed):
    """1-D, deterministic samples: ``10 (x - 0.3)²`` with a small spread, except above x = 0.8, where a
    bad design (true 10 (x - 0.3)² + 0) shows a lucky low mean of -1 with a large spread (s.e. ≈ 3 at n = 100)."""
    x = params["x"]
    pattern = np.resize([1.0, -1.0], n)
    if x > 0.8:
        return -1.0 + 30.0 * pattern
    return 10 * (x - 0.3) ** 2 + 0.1 * pattern


class CountingSimulator(Simulator):
    """A noisy quadratic with a ``cost`` quantity that records every construction in ``built`` (its ``tag``)."""

    built: list[str] = []
    quantities = ("cost",)

    def __init__(self, tag: str = "") -> None:
        CountingSimulator.built.append(tag)

    def simulate(self, params, n, seed):
        x = np.array(list(params.values()))
        return float((x**2).sum()) + 0.1 * np.random.default_rng(seed).standard_normal(n)

    def quantities_at(self, params):
        return {"cost": float(sum(abs(v) for v in params.values()))}


#: Offsets of the mixed test problem's absorbers: W is clearly the best.
MIXED_OFFSETS = {"Pb": 1.0, "W": 0.0, "Fe": 2.0, "Cu": 1.5}


def mixed(params, n, seed, noise=0.05):
    """A categorical ``absorber`` (offset per choice, W best), a range ``x`` (best at 0.3) and ``t`` (best at 0.7),
    conditional on ``absorber`` being W or Pb: refuses a call where ``t`` is given but inactive or missing but active."""
    active = params["absorber"] in ("W", "Pb")
    if ("t" in params) != active:
        raise ValueError(f"t {'missing' if active else 'sent'} with absorber {params['absorber']}")
    t_term = (params["t"] - 0.7) ** 2 if active else 0.5
    mean = MIXED_OFFSETS[params["absorber"]] + (params["x"] - 0.3) ** 2 + t_term
    return mean + noise * np.random.default_rng(seed).standard_normal(n)


def by_choice(params, n, seed):
    """``MIXED_OFFSETS[absorber] + (x - 0.3)²`` with a little noise: a 2-D mixed problem."""
    mean = MIXED_OFFSETS[params["absorber"]] + (params["x"] - 0.3) ** 2
    return mean + 0.05 * np.random.default_rng(seed).standard_normal(n)
