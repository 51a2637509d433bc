"""A Python API for notebooks: run a study on an in-process function, read results as a table.

::

    import detopt

    def shield(params, n, seed):                     # -> array [n, k] of samples
        rng = np.random.default_rng(seed)
        return rng.normal(params["x"] ** 2, 0.1, size=(n, 1))

    res = detopt.optimize(shield, {"name": "demo", "parameters": {"x": {"low": -1, "high": 1}},
                                   "objectives": {"y": {"statistic": "mean"}},
                                   "budget": {"calls": 20, "initial_design": 5}})
    res.best(), res.to_pandas()
    detopt.open_campaign("runs/demo").pareto()      # any campaign directory, also one run by `optimize run`

The campaign is an ordinary campaign directory (journal, samples): ``optimize status``, ``report`` and
``export`` read it. The function runs in this process (the inline backend), one call at a time.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from optimizer.errors import DetoptError
from optimizer.records import CampaignView
from optimizer.study import StudyConfig

#: In-process functions given to :func:`optimize`, reachable as ``optimizer.api:FUNCTIONS.<key>`` so that the
#: study's ``simulator.name`` stays an ordinary ``module:attr`` (a notebook's functions cannot be imported).
FUNCTIONS = types.SimpleNamespace()


class SimulatorFunction(Protocol):
    """``fn(params, n, seed) -> array [n, k]`` (or a :class:`simulators.base.SimulationResult`)."""

    def __call__(self, params: dict[str, float], n: int, seed: int, /) -> Any: ...


def _simulator_name(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of an importable function; else a name under :data:`FUNCTIONS`, the same for the
    same function in every session (the study's fingerprint includes it, so a campaign can be resumed)."""
    from optimizer.registry import import_object

    module, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if module and qual and module != "__main__" and "<" not in qual:
        try:
            if import_object(f"{module}:{qual}") is fn:
                return f"{module}:{qual}"
        except DetoptError:
            pass
    key = re.sub(r"\W", "_", f"{module or 'fn'}__{qual or getattr(fn, '__name__', 'function')}")
    setattr(FUNCTIONS, key, fn)
    return f"optimizer.api:FUNCTIONS.{key}"


def _study_data(study: Mapping[str, Any] | str | Path) -> tuple[dict[str, Any], str]:
    import yaml

    if isinstance(study, Mapping):
        return dict(study), "<study>"
    path = Path(study)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise DetoptError(f"{path}: file not found") from None
    except yaml.YAMLError as err:
        raise DetoptError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise DetoptError(f"{path}: a study must be a mapping of keys")
    return data, str(path)


def optimize(fn: SimulatorFunction, study: Mapping[str, Any] | str | Path, output: str | Path | None = None,
             budget: int | None = None, *, outputs: list[str] | None = None, resume: bool = False,
             progress: bool = False) -> Results:
    """Run a study (a mapping, or a YAML file) on ``fn(params, n, seed) -> array [n, k]`` in this process.

    Args:
        fn: the simulator; its ``k`` output columns are named by ``outputs`` (else the study's
            ``simulator.outputs``, else ``y``).
        study: as a study YAML; its ``simulator`` section may be left out (``samples_per_call`` defaults to 1000)
            and its ``execution`` is the inline backend.
        output: the campaign directory (default: the study's ``output``, else ``runs/NAME``).
        budget: simulator calls, overriding ``budget.calls``.
        resume: continue the campaign already in ``output`` instead of refusing it.
        progress: print one line per call (to stderr).

    Raises:
        DetoptError (StudyError, CampaignError): the study or the directory is wrong, one line as the CLI says it.
    """
    import yaml

    from optimizer.campaign import Campaign, check_output_dir, prepare, run_campaign
    from optimizer.progress import LineReporter, Reporter
    from optimizer.study import validate_study

    data, source = _study_data(study)
    sim = dict(data.get("simulator") or {})
    sim["name"] = _simulator_name(fn)
    if outputs is not None:
        sim["outputs"] = list(outputs)
    data["simulator"] = sim
    data["execution"] = {**dict(data.get("execution") or {}), "backend": "inline"}  # fn lives in this process
    if budget is not None:
        data["budget"] = {**dict(data.get("budget") or {}), "calls": budget}
    cfg = validate_study(data, source)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    prepare(cfg, source)  # every check before anything is written
    out = Path(output or cfg.output or Path("runs") / cfg.name)
    reporter = LineReporter() if progress else Reporter()
    if resume and (out / "journal.jsonl").exists():
        camp = Campaign(out)
        with camp.lock():
            camp.check_study(cfg, text, force=False)
            if budget is not None:
                camp.set_budget(budget)
            run_campaign(camp, cfg, source=source, reporter=reporter)
        return Results(CampaignView.open(out))
    check_output_dir(out)
    camp = Campaign(out)
    with camp.lock():
        camp.initialise(cfg, text, source=source if source != "<study>" else str(out / "study.yaml"), budget=budget)
        summary = run_campaign(camp, cfg, source=source, reporter=reporter)
    if summary.stopped == "interrupted":
        raise KeyboardInterrupt(f"interrupted; recorded calls are kept; continue with optimize(..., output={str(out)!r}, "
                                "resume=True)")
    return Results(CampaignView.open(out))


def open_campaign(directory: str | Path) -> Results:
    """The results of an existing campaign directory (finished, running or interrupted); reads only."""
    return Results(CampaignView.open(directory))


class Results:
    """A campaign's calls as rows, its best design(s) and Pareto front. Re-reads the journal on each call,
    so it follows a running campaign."""

    def __init__(self, view: CampaignView) -> None:
        self.view = view
        self.directory = view.root

    @property
    def study(self) -> StudyConfig:
        return self.view.study()

    def table(self) -> list[dict[str, Any]]:
        """One row per call (as ``optimize export``): ``call``, ``origin``, ``status``, ``param.*``,
        ``objective.*``, ``sem.*``, ``constraint.*``, ``feasible``, ``pareto`` (several objectives), timings."""
        from optimizer.results import call_rows

        return call_rows(self.study, self.view.records())

    def to_pandas(self) -> Any:
        """:meth:`table` as a ``pandas.DataFrame`` indexed by call id (needs pandas)."""
        try:
            import pandas as pd  # type: ignore[import-untyped,unused-ignore]
        except ImportError:
            raise DetoptError("Results.to_pandas: needs pandas (pip install pandas); Results.table() gives the "
                              "same rows as dicts") from None
        return pd.DataFrame(self.table()).set_index("call")

    def best(self, objective: str | None = None) -> dict[str, Any] | None:
        """The row of the best feasible completed call for ``objective`` (default: the only one); with several
        objectives and none named, the knee of the Pareto front. ``None`` before any feasible call."""
        from optimizer.records import best_so_far

        study, records = self.study, self.view.records()
        if objective is None and len(study.objectives) > 1:
            knee = next((f for f in self.pareto() if f["knee"]), None)
            return None if knee is None else self._row(knee["call_id"])
        name = objective or next(iter(study.objectives))
        if name not in study.objectives:
            raise DetoptError(f"Results.best: unknown objective '{name}'; known: {', '.join(study.objectives)}")
        b = best_so_far(study, records.values())[name]
        return None if b is None else self._row(b[1])

    def pareto(self) -> list[dict[str, Any]]:
        """Pareto-front members as in ``optimize status``: ``call_id``, ``values``, ``sems``, ``change`` (against
        the first baseline), ``knee``, ``params``, ``baseline``. One objective: the best call alone."""
        from optimizer.pareto import front_table

        study, records = self.study, self.view.records()
        if len(study.objectives) > 1:
            return [asdict(f) for f in front_table(study, records)]
        best = self.best()
        if best is None:
            return []
        name = next(iter(study.objectives))
        return [{"call_id": best["call"], "values": {name: best[f"objective.{name}"]},
                 "sems": {name: best[f"sem.{name}"]}, "change": {name: None}, "knee": True,
                 "params": {k.removeprefix("param."): v for k, v in best.items() if k.startswith("param.")},
                 "baseline": best["label"] or None if best["origin"] == "baseline" else None}]

    def _row(self, call: int) -> dict[str, Any]:
        return next(r for r in self.table() if r["call"] == call)

    def __len__(self) -> int:
        return len(self.view.records())

    def __repr__(self) -> str:
        recs = self.view.records()
        done = sum(r.status == "completed" for r in recs.values())
        return f"Results({self.study.name!r}: {done} of {len(recs)} calls completed, in {str(self.directory)!r})"
