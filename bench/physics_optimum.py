"""How the optimum moves with the physics: the 42-D magnet shapes optimised under ideal and realistic physics.

Each campaign is ``bench.detector_suite``'s ``magnet_shape42`` problem (background, SHiP-2018 mass ≤ the new
baseline's) with the simulator's ``physics`` replaced; same strategy, seeds, particles and budget for both.
The design each campaign recommends (``optimizer.recommend``) is then re-simulated with
``TRUE_FACTOR``× the particles and one common seed under **both** physics models. Printed per seed and as
medians: what the campaign believes its design achieves (ideal-physics re-simulation for the ideal
campaign) and what it achieves under the realistic model; the difference is how much of a toy optimum was an
artefact of what the toy leaves out.

    PYTHONPATH=. python -m bench.physics_optimum --strategy cmaes --seeds 2 3 5 --calls 100 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from bench.detector_suite import STRATEGIES, TRUE_FACTOR, TRUE_SEED, problem
from bench.harness import pooled, run_study

ROOT = Path(__file__).resolve().parents[1]
#: The simulator as it was before the physics work: design field wherever there is iron, Gaussian (Highland)
#: scattering only, no ionisation straggling, no deflection in radiative losses, constant b = 6.5e-6 cm²/g.
IDEAL: dict[str, Any] = {"field": "ideal", "scattering": "gaussian", "straggling": False,
                         "radiative_deflection": False, "dedx_b": 6.5e-6}
#: Today's best model: saturating iron (B–H curve, coil ampere-turns), single-scattering tails, straggling,
#: radiative kicks and b(E) (the simulator's defaults apart from the field).
REALISTIC: dict[str, Any] = {"field": "saturating"}
PHYSICS = {"ideal": IDEAL, "realistic": REALISTIC}


def _overrides(physics: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    path, over, _ = problem("magnet_shape42")
    sim = dict(over["simulator"])
    sim["options"] = {**sim.get("options", {}), "physics": physics}
    return path, {**over, "simulator": sim}


def resimulate(study: Any, params: dict[str, Any], physics: dict[str, Any]) -> float:
    """Background at ``params`` under ``physics``, TRUE_FACTOR× the study's particles, seed TRUE_SEED."""
    from optimizer.metrics import evaluate_metric
    from simulators.base import check_result
    from simulators.muon_shield import MuonShield

    sim = MuonShield(**{**study.simulator.options, "physics": physics})
    n = TRUE_FACTOR * study.simulator.samples_per_call
    samples = check_result(sim, sim.simulate(params, n, TRUE_SEED), n).samples
    metric = study.objectives["background"]
    return float(evaluate_metric(metric, samples, list(sim.outputs), sim.quantities_at(params))[0])


def run_one(physics: str, strategy: str, seed: int, calls: int) -> dict[str, Any]:
    """One campaign under ``physics``; its recommended design re-simulated under both models."""
    from optimizer.recommend import RecommendationFallbackWarning, recommend

    path, over = _overrides(PHYSICS[physics])
    study, recs, wall = run_study(path, STRATEGIES[strategy], seed, calls, over)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecommendationFallbackWarning)
        rec = recommend(study, recs, "background")
    assert rec is not None, "no feasible completed call"
    return {"physics": physics, "strategy": strategy, "seed": seed, "calls": calls, "call": rec.call,
            "params": rec.params, "origin": next(r.origin for r in recs if r.call_id == rec.call),
            "under": {k: resimulate(study, rec.params, v) for k, v in PHYSICS.items()}, "wall_s": wall}


def _worker(args: tuple[str, str, int, int]) -> dict[str, Any]:
    return run_one(*args)


def main(argv: list[str] | None = None) -> None:
    """Run the campaigns not yet in ``--out`` and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strategy", default="cmaes", choices=list(STRATEGIES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[2, 3, 5])
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/physics_optimum.jsonl")
    args = ap.parse_args(argv)
    rows = [json.loads(x) for x in args.out.read_text().splitlines()] if args.out.exists() else []
    done = {(r["physics"], r["strategy"], r["seed"], r["calls"]) for r in rows}
    todo = [(p, args.strategy, s, args.calls) for p in PHYSICS for s in args.seeds
            if (p, args.strategy, s, args.calls) not in done]
    t0 = time.time()
    for r in pooled(_worker, todo, args.jobs, args.out):
        rows.append(r)
        print(f"{r['physics']:9s} seed {r['seed']}: call {r['call']} ({r['origin']}), background under ideal "
              f"{r['under']['ideal']:.4g}, under realistic {r['under']['realistic']:.4g} [{time.time() - t0:.0f} s]",
              flush=True)
    rows = [r for r in rows if r["strategy"] == args.strategy and r["calls"] == args.calls and r["seed"] in args.seeds]
    print(f"| optimised under | seeds | background under ideal physics | background under realistic physics |")
    print("|---|---|---|---|")
    for p in PHYSICS:
        rs = [r for r in rows if r["physics"] == p]
        if not rs:
            continue
        cells = []
        for k in PHYSICS:
            q = np.percentile([r["under"][k] for r in rs], [25, 50, 75])
            cells.append(f"{q[1]:.4g} [{q[0]:.4g}–{q[2]:.4g}]")
        print(f"| {p} | {len(rs)} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
