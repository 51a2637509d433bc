"""Benchmark harness: seeded campaigns on the WU-GO paper problems, scored against the known optima.

Every run is a real campaign (inline executor, temporary directory) with the study from
``studies/benchmarks/`` and the strategy swapped in; scores are computed afterwards from the
journal, so strategies never see the optimum.

* calls-to-ε: simulator calls after the initial design until a design within ε of an optimum
  is evaluated (that call counted; 0 if the initial design already has one; censored at the budget).
* distance: the smallest distance of an evaluated design to an optimum after the budget.
* regret: noise-free objective at the design with the best observed objective, minus the optimum value.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [2, 3, 5, 7, 11, 13, 17, 19, 23, 73]
PROBLEMS = {  # name: (study file, ε)
    "three_hump_camel": ("studies/benchmarks/three_hump_camel.yaml", 0.1),
    "ackley": ("studies/benchmarks/ackley.yaml", 0.1),
    "levi": ("studies/benchmarks/levi.yaml", 0.1),
    "himmelblau": ("studies/benchmarks/himmelblau.yaml", 0.1),
    "rosenbrock8": ("studies/benchmarks/rosenbrock8.yaml", 1.1),
}
STRATEGIES: dict[str, dict[str, Any]] = {
    "sobol": {"name": "sobol"},
    "wugo": {"name": "wugo"},
    "wugo-paper": {"name": "wugo", "options": {"preset": "wugo-paper"}},
    "gp": {"name": "gp"},
    # f̂ corrected by a GP on its residuals at the evaluated designs (see WUGOStrategy's correction)
    "wugo-gpc": {"name": "wugo", "options": {"correction": "gp"}},
    "wugo-gplcb": {"name": "wugo", "options": {"correction": "gp", "uncertainty": "residual"}},
    "wugo-gpei": {"name": "wugo", "options": {"correction": "gp", "uncertainty": "residual", "criterion": "ei"}},
}


def run_study(path: str, strategy: dict[str, Any], seed: int, calls: int,
              overrides: dict[str, Any] | None = None,
              budget: dict[str, Any] | None = None) -> tuple[Any, list[Any], float]:
    """One seeded inline campaign of the study at ``path`` (relative to the repository) with ``strategy``
    swapped in and ``calls`` in all; ``overrides`` replaces top-level sections of the study first (a
    benchmark variant of a shipped study), ``budget`` adds keys to its budget (``particles``, ``screen``).
    Returns the study, its records in call order and the wall time."""
    import torch

    torch.set_num_threads(1)
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.study import validate_study

    data = {**yaml.safe_load((ROOT / path).read_text()), **(overrides or {})}
    init = data["budget"]["initial_design"]
    data.update(seed=seed, budget={"calls": calls, "initial_design": init, **(budget or {})}, execution={"backend": "inline"})
    data["strategy"] = {**strategy, "initial_design": data["strategy"]["initial_design"]}
    study = validate_study(data)
    with tempfile.TemporaryDirectory() as d:
        camp = Campaign.create(Path(d) / "c", study, yaml.safe_dump(data), source=path)
        t0 = time.time()
        run_campaign(camp, study)
        wall = time.time() - t0
        recs = sorted(camp.records().values(), key=lambda r: r.call_id)
    return study, recs, wall


def run_one(problem: str, strategy: str, seed: int, calls: int) -> dict[str, Any]:
    """One seeded campaign; returns its scores and per-iteration strategy time."""
    from optimizer.executors import simulator_args

    path, eps = PROBLEMS[problem]
    init = yaml.safe_load((ROOT / path).read_text())["budget"]["initial_design"]
    study, recs, wall = run_study(path, STRATEGIES[strategy], seed, init + calls)
    sim = simulator_args(study.simulator).build()
    names = list(study.parameters)
    opt = np.array([[o[n] for n in names] for o in sim.known_optima()])
    theta = np.array([[r.params[n] for n in names] for r in recs])
    dist = np.linalg.norm(theta[:, None, :] - opt[None], axis=-1).min(1)
    hit = np.flatnonzero(dist <= eps)
    calls_to_eps = None if len(hit) == 0 else max(0, int(hit[0]) + 1 - init)
    best = int(np.argmin([r.metrics["f"] for r in recs]))
    import torch as _t

    regret = float(sim.expected(_t.tensor(theta[best], dtype=_t.float64))) - sim.optimum_value()
    return {"problem": problem, "strategy": strategy, "seed": seed, "calls": calls, "init": init, "eps": eps,
            "calls_to_eps": calls_to_eps, "distance": float(dist.min()), "regret": regret,
            "wall_s": wall, "s_per_call": wall / len(recs)}


def pooled(worker: Any, todo: list[Any], jobs: int, out: Path) -> Any:
    """Run ``worker`` on every item of ``todo`` in ``jobs`` spawned processes; append each result to ``out``
    (JSONL, flushed as runs finish, so an interrupted benchmark resumes) and yield it as JSON round-trips it."""
    import multiprocessing as mp

    out.parent.mkdir(parents=True, exist_ok=True)
    with mp.get_context("spawn").Pool(max(1, jobs)) as pool, open(out, "a") as fh:
        for r in pool.imap_unordered(worker, todo):
            fh.write(json.dumps(r) + "\n")
            fh.flush()
            yield json.loads(json.dumps(r))


def _worker(args: tuple[str, str, int, int]) -> dict[str, Any]:
    return run_one(*args)


def run_all(problems: list[str], strategies: list[str], seeds: list[int], calls: int, out: Path, jobs: int) -> None:
    """Run every (problem, strategy, seed) not yet in ``out`` (JSONL, appended as runs finish)."""
    import multiprocessing as mp

    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["problem"], r["strategy"], r["seed"], r["calls"]))
    todo = [(p, s, seed, calls) for p in problems for s in strategies for seed in seeds if (p, s, seed, calls) not in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    os.environ["OMP_NUM_THREADS"] = "1"
    ctx = mp.get_context("spawn")
    with ctx.Pool(jobs) as pool, open(out, "a") as fh:
        for r in pool.imap_unordered(_worker, todo):
            fh.write(json.dumps(r) + "\n")
            fh.flush()
            print(f"{r['problem']:17s} {r['strategy']:10s} seed {r['seed']:3d}: calls-to-ε {r['calls_to_eps']}, "
                  f"distance {r['distance']:.3g}, regret {r['regret']:.3g}, {r['wall_s']:.0f} s", flush=True)


def summarize(out: Path, calls: int, extra: list[Path] | None = None) -> str:
    """Markdown table: median [25–75 %] of calls-to-ε (censored runs count as > budget), distance, regret, over the
    runs of ``out`` and of the ``extra`` result files (runs recorded by earlier commands, side by side)."""
    rows = [json.loads(line) for f in [out, *(extra or [])] for line in f.read_text().splitlines()]
    rows = [r for r in rows if r["calls"] == calls]
    lines = ["| problem | strategy | runs | reached ε | calls-to-ε median [IQR] | distance median [IQR] | regret median [IQR] | s per call |",
             "|---|---|---|---|---|---|---|---|"]

    def q(v: list[float]) -> str:
        a = np.percentile(v, [25, 50, 75])
        return f"{a[1]:.3g} [{a[0]:.3g}–{a[2]:.3g}]"

    for p in PROBLEMS:
        for s in STRATEGIES:
            rs = [r for r in rows if r["problem"] == p and r["strategy"] == s]
            if not rs:
                continue
            cte = [r["calls_to_eps"] if r["calls_to_eps"] is not None else np.inf for r in rs]
            reached = sum(np.isfinite(cte))
            med = censored_percentiles(cte, [25, 50, 75])
            lines.append(f"| {p} | {s} | {len(rs)} | {reached}/{len(rs)} | {_fmt_cte(med, calls)} | "
                         f"{q([r['distance'] for r in rs])} | {q([r['regret'] for r in rs])} | "
                         f"{np.median([r['s_per_call'] for r in rs]):.2f} |")
    return "\n".join(lines)


def censored_percentiles(values: list[float], qs: list[float]) -> np.ndarray:
    """Linear-interpolation percentiles of values where ``inf`` marks a censored run (larger than every finite one).

    A percentile between a finite value and a censored one is ``inf`` (unknown beyond a bound); one that falls
    exactly on a finite value is that value. NumPy's own interpolation gives NaN in both cases (``inf − inf``),
    which read as censored: 5 runs, 3 reached at 18, 19, 28 had a median of ">100", not 28.
    """
    v = np.sort(np.asarray(values, dtype=float))
    out = []
    for q in qs:
        h = (len(v) - 1) * q / 100
        lo, hi = int(np.floor(h)), int(np.ceil(h))
        frac = h - lo
        if frac == 0 or v[lo] == v[hi]:
            out.append(v[lo])
        elif not np.isfinite(v[hi]):
            out.append(np.inf)
        else:
            out.append(v[lo] + frac * (v[hi] - v[lo]))
    return np.array(out)


def _fmt_cte(med: np.ndarray, calls: int) -> str:
    f = [f">{calls}" if not np.isfinite(x) else f"{x:.0f}" for x in med]
    return f"{f[1]} [{f[0]}–{f[2]}]"
