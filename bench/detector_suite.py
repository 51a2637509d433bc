"""Detector benchmark suite: problems × strategies × seeds, scored by the TRUE objective of the recommended design.

Every run is a real seeded campaign (``bench.harness.run_study``: inline executor, temporary directory).
After the campaign, at each checkpoint of calls, the recommended design is what detopt reports
(``optimizer.recommend``: the evaluated design with the best GP posterior mean among the calls so far); the
completed feasible call with the best observed objective is scored too, as a second column. A TRUE objective is
the objective statistic re-simulated with ``TRUE_FACTOR``× the study's particles and one seed shared by
every strategy and run, so strategies are compared on the same draw. Printed per problem and strategy:
median [IQR] over seeds against calls (and particles simulated), and the fraction of calls spent on designs
that broke a constraint.

Problems (each a variant of a shipped study, built by :func:`problem`):

* ``magnet_shape42``: the 42-D SHiP-2018 magnet shapes (``studies/detectors/magnet_shape.yaml``), background
  as the one objective, SHiP-2018 mass ≤ the new baseline's (1239 t) as an exact quantity constraint.
* ``shield30``: the same shield with the 30 parameters SHiP's deterministic optimisation varies (dZ, dXIn,
  dXOut, gapIn, gapOut of the 6 magnets; the dY stay at the new baseline), mass ≤ the new baseline's and
  length ≤ the new baseline's (35.32 m); every call simulates the same muons (a fixed seed), as there.
* ``absorber15``: the hadron absorber's 14 shapes and field (``studies/detectors/absorber_shape.yaml``),
  background as the objective, total iron mass ≤ the SHiP-2018 absorber's.
* ``styblinski_tang20``: the WU-GO paper's noisy Styblinski–Tang-20.

Strategies named ``*-screen4`` screen new designs with a quarter of the particles (``budget.screen``) under a
particle budget equal to ``--calls`` full calls; every run is also scored at equal particles (the calls that fit
in the particles of k full calls), the table to compare them by.

    python -m bench.detector_suite --problems magnet_shape42 --strategies sobol cmaes gp turbo \\
        --seeds 2 3 5 --calls 150 --jobs 2 --out bench/results/detector_suite.jsonl
"""

from __future__ import annotations

import argparse
import functools
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.harness import pooled, run_study
from optimizer.recommend import RecommendationFallbackWarning, recommend
from optimizer.study import minimisation_sign
from simulators.muon_shield import MuonShield

ROOT = Path(__file__).resolve().parents[1]
#: Re-simulate the recommended design with this many times the study's particles (sem ~ 1/√10 of a call's).
TRUE_FACTOR = 10
#: The seed of every re-simulation: common random numbers across strategies and seeds.
TRUE_SEED = 20_201
#: Muons per call of the shield problems: a call takes ~0.3 s on one core, so 5 seeds × 150–400 calls × 6
#: strategies fit this machine; the s.e. of a background near the new baseline's (0.05) is then ≈ 0.003.
SHIELD_SAMPLES = 5000
#: The fixed seed of every call of ``shield30`` (its simulator ignores the call's seed).
SHIELD30_SEED = 4242
#: The SHiP-2018 new baseline's mass (``ship_mass``, t) and length (m): the shield problems' limits.
NEW_BASELINE_SHIP_MASS_T = 1238.85
NEW_BASELINE_LENGTH_M = 35.32
PROBLEMS = ("magnet_shape42", "shield30", "absorber15", "styblinski_tang20")
STRATEGIES: dict[str, dict[str, Any]] = {
    "sobol": {"name": "sobol"},
    "gp": {"name": "gp"},
    "turbo": {"name": "turbo"},
    "cmaes": {"name": "cmaes"},
    "lgso": {"name": "lgso"},
    "wugo": {"name": "wugo"},
    # multi-fidelity (``budget.screen``): new designs with 1/4 of the particles, the best third promoted to the
    # full count; as many particles in all as ``--calls`` full calls (``budget.particles``), calls uncapped
    "turbo-screen4": {"name": "turbo", "screen": 4},
}


class FixedSampleShield(MuonShield):
    """The muon shield simulating the same muons at every call (SHiP's deterministic 30-parameter setup)."""

    def simulate(self, params: Any, n: int, seed: int) -> Any:
        """The shield at ``params`` with :data:`SHIELD30_SEED`, whatever the call's seed."""
        return super().simulate(params, n, SHIELD30_SEED)


def problem(name: str) -> tuple[str, dict[str, Any], str | None]:
    """``(study path, top-level overrides, simulator name for the TRUE re-simulation or None)`` of a problem."""
    if name == "styblinski_tang20":
        return "studies/benchmarks/styblinski_tang20.yaml", {}, None
    if name == "absorber15":
        path = "studies/detectors/absorber_shape.yaml"
        data = yaml.safe_load((ROOT / path).read_text())
        base = data["baselines"][0]["params"]
        limit = MuonShield(**data["simulator"]["options"]).quantities_at(base)["mass"]
        return path, {
            "objectives": {"background": data["objectives"]["background"]},
            "constraints": {"heavy": {"quantity": "mass", "upper": round(limit, 2), "label": "iron mass", "unit": "t"}},
            "simulator": {**data["simulator"], "samples_per_call": SHIELD_SAMPLES},
            "budget": {"calls": 150, "initial_design": 20},
        }, None
    path = "studies/detectors/magnet_shape.yaml"
    data = yaml.safe_load((ROOT / path).read_text())
    mass = {"quantity": "ship_mass", "upper": NEW_BASELINE_SHIP_MASS_T, "label": "shield mass", "unit": "t"}
    over: dict[str, Any] = {
        "objectives": {"background": data["objectives"]["background"]},
        "constraints": {"heavy": mass},
        "simulator": {**data["simulator"], "samples_per_call": SHIELD_SAMPLES},
        "budget": {"calls": 150, "initial_design": 20},
    }
    if name == "magnet_shape42":
        return path, over, None
    if name != "shield30":
        raise KeyError(name)
    keep = ("dZ", "dXIn", "dXOut", "gapIn", "gapOut")
    params = {k: v for k, v in data["parameters"].items() if k.split("_", 1)[1] in keep}
    over.update(
        parameters=params,
        simulator={**over["simulator"], "name": "bench.detector_suite:FixedSampleShield"},
        constraints={"heavy": mass, "long": {"quantity": "length", "upper": NEW_BASELINE_LENGTH_M,
                                             "label": "shield length", "unit": "m"}},
        baselines=[{"name": b["name"], "params": {k: v for k, v in b["params"].items() if k in params}}
                   for b in data["baselines"]],
    )
    return path, over, "muon_shield"


def true_objective(study: Any, sim: Any, params: dict[str, Any]) -> float:
    """The first objective at ``params``, re-simulated with TRUE_FACTOR× the particles and TRUE_SEED."""
    from optimizer.metrics import evaluate_metric
    from simulators.base import check_result

    n = TRUE_FACTOR * study.simulator.samples_per_call
    samples = check_result(sim, sim.simulate(params, n, TRUE_SEED), n).samples
    name, metric = next(iter(study.objectives.items()))
    return float(evaluate_metric(metric, samples, list(sim.outputs), sim.quantities_at(params))[0])


def run_one(name: str, strategy: str, seed: int, calls: int, checkpoints: list[int]) -> dict[str, Any]:
    """One seeded campaign: TRUE objective of the recommendation at each checkpoint, infeasible fraction."""
    from optimizer.executors import simulator_args

    path, overrides, true_name = problem(name)
    spec = dict(STRATEGIES[strategy])
    factor, budget = spec.pop("screen", None), None
    full = overrides.get("simulator", {}).get("samples_per_call") or \
        yaml.safe_load((ROOT / path).read_text())["simulator"]["samples_per_call"]
    if factor:  # the same particles as `calls` full calls, spent on screens and promotions
        budget = {"particles": calls * full, "screen": {"samples": full // factor}}
    study, recs, wall = run_study(path, spec, seed, calls * (factor or 1), overrides, budget)
    spec = study.simulator if true_name is None else study.simulator.model_copy(update={"name": true_name})
    sim = simulator_args(spec).build()
    objective, obj = next(iter(study.objectives.items()))
    sign = minimisation_sign(obj.direction)
    # checkpoints count the budget's calls (initial design and strategy); the baselines are known from the start
    base = [r for r in recs if r.origin == "baseline"]
    chosen = [r for r in recs if r.origin != "baseline"]
    true, recommended, particles, by_particles = {}, {}, {}, {}
    truths: dict[int, float] = {}  # one re-simulation per design, however many checkpoints pick it

    def truth(call: int, params: dict[str, Any]) -> float:
        if call not in truths:
            truths[call] = true_objective(study, sim, params)
        return truths[call]

    @functools.cache
    def recommend_after(m: int) -> Any:  # after the first m chosen calls; one fit per prefix
        with warnings.catch_warnings():  # a fallback to the best observed is the point of the comparison
            warnings.simplefilter("ignore", RecommendationFallbackWarning)
            return recommend(study, base + chosen[:m], objective)

    spent = np.cumsum([r.n_samples for r in chosen])
    for k in checkpoints:
        # at equal particles: the calls that fit in k full calls' particles (k calls unless screening)
        rec = recommend_after(int(np.searchsorted(spent, k * full, side="right")))
        by_particles[k] = None if rec is None else truth(rec.call, rec.params)
        ok = [r for r in base + chosen[:k] if r.status == "completed" and r.feasible]
        if ok:
            best = min(ok, key=lambda r: sign * r.metrics[objective])
            true[k] = truth(best.call_id, best.params)
            rec = recommend_after(k)
            recommended[k] = true[k] if rec is None else truth(rec.call, rec.params)
        particles[k] = int(sum(r.n_samples for r in chosen[:k]))
    # baselines are the user's own designs: only what the initial design and the strategy chose counts
    broke = sum(1 for r in chosen if r.status == "infeasible" or (r.status == "completed" and not r.feasible))
    return {"problem": name, "strategy": strategy, "seed": seed, "calls": calls, "true_recommended": recommended,
            "true": true, "true_recommended_at_particles": by_particles, "n_calls": len(chosen),
            "particles": particles, "infeasible_fraction": broke / max(1, len(chosen)), "wall_s": wall}


def summarize(rows: list[dict[str, Any]], checkpoints: list[int]) -> str:
    """Markdown table: median [IQR] over seeds of the recommended design's TRUE objective at each checkpoint
    of calls, then the best observed call's at the last checkpoint."""
    head = " | ".join(f"{k} calls" for k in checkpoints)
    lines = [f"| problem | strategy | seeds | {head} | best observed, {checkpoints[-1]} calls | infeasible calls | s per run |",
             "|---|---|---|" + "---|" * len(checkpoints) + "---|---|---|"]

    def cell(rs: list[dict[str, Any]], key: str, k: int) -> str:
        v = [r[key][str(k)] if str(k) in r[key] else r[key].get(k) for r in rs]
        v = [x for x in v if x is not None]
        if not v:
            return "–"
        a = np.percentile(v, [25, 50, 75])
        return f"{a[1]:.4g} [{a[0]:.4g}–{a[2]:.4g}]"

    for p in PROBLEMS:
        for s in STRATEGIES:
            rs = [r for r in rows if r["problem"] == p and r["strategy"] == s]
            if not rs:
                continue
            cells = [cell(rs, "true_recommended", k) for k in checkpoints] + [cell(rs, "true", checkpoints[-1])]
            frac = np.mean([r["infeasible_fraction"] for r in rs])
            lines.append(f"| {p} | {s} | {len(rs)} | {' | '.join(cells)} | {100 * frac:.1f} % | "
                         f"{np.median([r['wall_s'] for r in rs]):.0f} |")
    # at equal particles: what screening strategies are compared by (for the others it is the table above)
    lines += ["", f"At equal particles (the particles of k full calls): | problem | strategy | seeds | calls made | "
              + " | ".join(f"{k}" for k in checkpoints) + " |", "|---|---|---|---|" + "---|" * len(checkpoints)]
    for p in PROBLEMS:
        for s in STRATEGIES:
            rs = [r for r in rows if r["problem"] == p and r["strategy"] == s and "true_recommended_at_particles" in r]
            if rs:
                cells = [cell(rs, "true_recommended_at_particles", k) for k in checkpoints]
                made = np.median([r["n_calls"] for r in rs])
                lines.append(f"| {p} | {s} | {len(rs)} | {made:.0f} | {' | '.join(cells)} |")
    return "\n".join(lines)


def baseline_truth(name: str) -> dict[str, float]:
    """TRUE objective of each feasible baseline of a problem (the designs a physicist starts from), for reference."""
    from optimizer.executors import simulator_args
    from optimizer.study import validate_study

    path, overrides, true_name = problem(name)
    data = {**yaml.safe_load((ROOT / path).read_text()), **overrides}
    study = validate_study(data)
    spec = study.simulator if true_name is None else study.simulator.model_copy(update={"name": true_name})
    sim = simulator_args(spec).build()
    out = {}
    for b in study.baselines:
        q = sim.quantities_at(b.params)
        if all((c.upper is None or q[c.quantity] <= c.upper) and (c.lower is None or q[c.quantity] >= c.lower)
               for c in study.constraints.values() if c.quantity):
            out[b.name] = true_objective(study, sim, b.params)
    return out


def _worker(args: tuple[str, str, int, int, list[int]]) -> dict[str, Any]:
    import os

    os.environ["OMP_NUM_THREADS"] = "1"
    return run_one(*args)


def main(argv: list[str] | None = None) -> None:
    """Run every (problem, strategy, seed) not yet in ``--out`` (JSONL, appended as runs finish), then summarise."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    ap.add_argument("--strategies", nargs="+", default=["sobol", "gp", "turbo", "cmaes"], choices=list(STRATEGIES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[2, 3, 5])
    ap.add_argument("--calls", type=int, default=100, help="calls per campaign, initial design included")
    ap.add_argument("--checkpoints", nargs="+", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=1, help="campaigns run at once (one core each)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/detector_suite.jsonl")
    args = ap.parse_args(argv)
    checkpoints = args.checkpoints or [args.calls // 4, args.calls // 2, 3 * args.calls // 4, args.calls]
    done: set[tuple[str, str, int, int]] = set()
    rows: list[dict[str, Any]] = []
    if args.out.exists():
        # rows from before recommendations were scored are left in the file but neither reused nor summarised
        rows = [r for r in map(json.loads, args.out.read_text().splitlines()) if "true_recommended" in r]
        done = {(r["problem"], r["strategy"], r["seed"], r["calls"]) for r in rows}
    todo = [(p, s, seed, args.calls, checkpoints) for p in args.problems for s in args.strategies for seed in args.seeds
            if (p, s, seed, args.calls) not in done]
    t0 = time.time()
    for r in pooled(_worker, todo, args.jobs, args.out):
        rows.append(r)
        print(f"{r['problem']} {r['strategy']:6s} seed {r['seed']}: true {r['true_recommended']} (best observed "
              f"{r['true']}), infeasible {r['infeasible_fraction']:.2f}, {r['wall_s']:.0f} s "
              f"[{time.time() - t0:.0f} s in all]", flush=True)
    rows = [r for r in rows if r["calls"] == args.calls and r["problem"] in args.problems]
    print(summarize(rows, checkpoints))
    for p in args.problems:
        truth = baseline_truth(p)
        if truth:
            print(f"{p}: TRUE objective of the feasible baselines: " + ", ".join(f"{k} {v:.4g}" for k, v in truth.items()))


if __name__ == "__main__":
    main()
