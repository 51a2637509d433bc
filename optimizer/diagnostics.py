"""How far the generative surrogate can be trusted: its view of 1–2-D domains and held-out fidelity.

Everything here is computed from the campaign directory alone (journal, samples and the saved
strategy state), so it works on running and interrupted campaigns, and never writes to them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer.space import SearchSpace
from optimizer.storage import CallRecord, Storage
from optimizer.study import ParamValue, StudyConfig


@dataclass
class ReportModel:
    """A fitted WU-GO model of a campaign and where it came from."""

    strategy: Any  # WUGOStrategy, fitted on ``history``
    history: Any  # optimizer.strategies.base.History
    space: SearchSpace
    origin: str  # one line for captions: which model, and why


@dataclass
class HeldOut:
    """One stored call left out of a refit, compared with what the refitted surrogate generates there.

    ``simulated [n]`` and ``generated [n_gen]`` are the chosen output column; ``w1`` is their 1-D
    Wasserstein distance, ``w1_split`` the distance between two halves of the simulated sample (the
    noise floor at this sample size) and ``w1_nearest`` the distance to the stored call nearest in θ
    (what copying the nearest evaluated design would give).
    """

    call_id: int
    params: dict[str, ParamValue]
    column: str
    simulated: np.ndarray
    generated: np.ndarray
    w1: float
    w1_split: float
    w1_nearest: float


@contextmanager
def one_thread() -> Iterator[None]:
    """Small surrogate networks gain nothing from more threads, and lose badly when a shared node is busy."""
    import torch  # deferred: `optimize status` reads this module's light helpers without torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def report_model(study: StudyConfig, records: dict[int, CallRecord], storage: Storage) -> ReportModel | None:
    """The campaign's own WU-GO model (saved state, refitted if calls arrived since), or, for other
    strategies, a default WU-GO model fitted on the journal. ``None`` when the study has no objective
    computed from samples or fewer than two calls completed."""
    import torch

    from optimizer.records import STRATEGY_STATE, build_history
    from optimizer.strategies.wugo import WUGOStrategy

    space = SearchSpace(study.parameters)
    history = build_history(study, records, storage)
    if len(history) < 2 or all(o.statistic == "quantity" for o in study.objectives.values()):
        return None
    own = study.strategy.name == "wugo"
    options = dict(study.strategy.options) if own else {}
    strat = WUGOStrategy(space, study, study.seed, **options)
    if not registered_simulator(study):
        # a user's module is never imported to draw a report: output names come from campaign.json
        if unavailable_offline(study, storage.root):
            return None
        strat.offline_outputs = _stored_outputs(storage.root)
    origin = f"the campaign's WU-GO surrogate ({strat.cfg['surrogate']}, preset {strat.preset})"
    state = storage.root / STRATEGY_STATE
    if own and state.exists():
        try:
            strat.load_state_dict(torch.load(state, weights_only=True))  # data only: never unpickle code
        except Exception:  # noqa: BLE001 - a stale state (or one of other columns): refit from the journal below
            offline = strat.offline_outputs
            strat = WUGOStrategy(space, study, study.seed, **options)
            strat.offline_outputs = offline
            origin = (f"a WU-GO surrogate ({strat.cfg['surrogate']}, preset {strat.preset}) fitted on the journal: "
                      "the campaign's saved one does not model these outputs")
    if not own:
        origin = (f"a default WU-GO surrogate ({strat.cfg['surrogate']}) fitted on the journal for this report; "
                  f"the campaign's strategy, {study.strategy.name}, keeps no generative model")
    with one_thread():
        strat.tell(history)
    return ReportModel(strat, history, space, origin)


#: Gradient steps timed to estimate a surrogate fit's cost (its full fit takes ``steps`` of the same size).
PROBE_STEPS = 10


def surrogate_cost(study: StudyConfig, records: dict[int, CallRecord], storage: Any) -> float | None:
    """Estimated seconds of the report's surrogate fits (the report model unless the campaign saved it, and
    the held-out refit): a few gradient steps of a fresh surrogate on the journal's samples are timed and
    scaled to the full fit. ``None`` when nothing would be fitted or the surrogate has no step count."""
    import torch

    import time

    from optimizer.records import STRATEGY_STATE, build_history
    from optimizer.strategies.wugo import WUGOStrategy, stack_common

    history = build_history(study, records, storage)
    if len(history) < 2 or all(o.statistic == "quantity" for o in study.objectives.values()):
        return None
    if unavailable_offline(study, storage.root):  # no model would be fitted
        return None
    own = study.strategy.name == "wugo"
    strat = WUGOStrategy(SearchSpace(study.parameters), study, study.seed, **(dict(study.strategy.options) if own else {}))
    if not registered_simulator(study):  # output names from campaign.json: a report never imports a user's module
        strat.offline_outputs = _stored_outputs(storage.root)
    t0 = time.perf_counter()
    cols = strat.modelled_columns(np.shape(history.samples(0))[1])
    data = stack_common([torch.as_tensor(np.asarray(history.samples(i)), dtype=torch.float64)[:, cols]
                         for i in range(len(history))], torch.Generator().manual_seed(study.seed))
    load_s = time.perf_counter() - t0
    full = getattr(strat.new_surrogate(data.shape[-1]), "steps", None)
    if not isinstance(full, int) or full <= 0:
        return None
    theta = torch.as_tensor(history.theta, dtype=torch.float32)

    def fit_s(steps: int) -> float:
        probe = strat.new_surrogate(data.shape[-1])
        setattr(probe, "steps", steps)  # the step count of surrogates that train for a fixed number of steps
        t0 = time.perf_counter()
        with one_thread():
            probe.fit(theta, data)
        return time.perf_counter() - t0

    fit_s(1)  # one-time start-up costs (first use of torch's kernels) are not a per-step cost
    short, long = fit_s(PROBE_STEPS), fit_s(3 * PROBE_STEPS)
    per_step = max(long - short, 0.0) / (2 * PROBE_STEPS)
    fixed = max(short - per_step * PROBE_STEPS, 0.0)
    fits = 1 if own and (storage.root / STRATEGY_STATE).exists() else 2
    return fits * (load_s + fixed + per_step * full)


def registered_simulator(study: StudyConfig) -> bool:
    """Whether the study's simulator is one of detopt's own (``module:attr`` names a user's module)."""
    from simulators import SIMULATORS

    return ":" not in study.simulator.name and study.simulator.name in SIMULATORS


def unavailable_offline(study: StudyConfig, root: Any) -> str | None:
    """Why the surrogate of a campaign cannot be drawn without importing its simulator's module (``None``: it can)."""
    if registered_simulator(study):
        return None
    if any(m.statistic == "quantity" for m in {**study.objectives, **study.constraints}.values()):
        return (f"the study's quantities come from its simulator module ({study.simulator.name}), "
                "which a report never imports")
    if _stored_outputs(root) is None:
        return "campaign.json does not list the simulator's outputs yet (resuming the campaign records them)"
    return None


def _stored_outputs(root: Any) -> list[str] | None:
    import json

    from optimizer.records import META_FILE

    try:
        outputs = json.loads((root / META_FILE).read_text()).get("outputs")
    except (OSError, ValueError, AttributeError):
        return None
    return [str(o) for o in outputs] if isinstance(outputs, list) else None


def landscape_grid(space: SearchSpace, points: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Unit-cube grid over a 1- or 2-D space: ``[G, d]`` points and the per-axis ``[points]`` unit coordinates."""
    axis = np.linspace(0.0, 1.0, points)
    if space.dim == 1:
        return axis[:, None], [axis]
    if space.dim == 2:
        u, v = np.meshgrid(axis, axis, indexing="ij")
        return np.stack([u.ravel(), v.ravel()], -1), [axis, axis]
    raise ValueError("a landscape needs a 1- or 2-D search space")


def held_out(model: ReportModel, study: StudyConfig, calls: int = 4, generated: int = 2000) -> list[HeldOut]:
    """Refit a fresh surrogate of the campaign's kind without ``calls`` stored calls (spread over the
    campaign) and compare what it generates at each left-out θ with the simulated samples.

    Needs at least ``calls + 3`` completed calls; returns ``[]`` otherwise.
    """
    import torch

    import ot

    from optimizer.strategies.wugo import stack_common

    h = model.history
    N = len(h)
    if N < calls + 3:
        return []
    picks = sorted({int(round(i)) for i in np.linspace(0, N - 1, calls + 2)[1:-1]})
    keep = [i for i in range(N) if i not in picks]
    strat = model.strategy
    samples = [strat.select(h.samples(i)) for i in range(N)]  # the columns the model was fitted on
    data = stack_common([samples[i] for i in keep], torch.Generator().manual_seed(study.seed))
    fresh = strat.new_surrogate(data.shape[-1])
    with one_thread():
        fresh.fit(torch.as_tensor(h.theta[keep], dtype=torch.float32), data)
    j, column = _column(study, strat.outputs)
    gen = fresh.sample(torch.as_tensor(h.theta[picks], dtype=torch.float32), generated,
                       generator=torch.Generator().manual_seed(study.seed))
    out = []
    for row, i in enumerate(picks):
        sim = samples[i][:, j].numpy()
        gi = gen[row, :, j].numpy()
        nearest = keep[int(np.argmin(np.linalg.norm(h.theta[keep] - h.theta[i], axis=1)))]
        half = len(sim) // 2
        out.append(HeldOut(
            call_id=int(h.call_ids[i]), params=model.space.to_params(model.space.from_unit(h.theta[i])), column=column,
            simulated=sim, generated=gi, w1=float(ot.wasserstein_1d(sim, gi)),
            w1_split=float(ot.wasserstein_1d(sim[:half], sim[half:])),
            w1_nearest=float(ot.wasserstein_1d(sim, samples[nearest][:, j].numpy())),
        ))
    return out


def _column(study: StudyConfig, outputs: list[str]) -> tuple[int, str]:
    """The output column the first sample-based objective reads (its weight column if it only weights)."""
    for o in study.objectives.values():
        if o.statistic == "quantity":
            continue
        name = o.output or o.weight
        if name in outputs:
            return outputs.index(name), name
        break
    return 0, outputs[0]
