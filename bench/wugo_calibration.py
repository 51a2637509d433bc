"""Does WU-GO's uncertainty predict the error of its objective estimate at new designs?

    python bench/wugo_calibration.py [--problems family_bimodal family_heavy_tail family_point_mass]
        [--samples 20 500] [--calls 10 20 40] [--seeds 2 3 5] [--heldout 256] [--members 3]

Per problem, samples per call and seed: a scrambled Sobol design of calls (simulated at the family's seeds), fitted
by the WU-GO default surrogate as a campaign would (warm refits every ``REFIT_EVERY`` calls), plus ``members − 1``
ensemble members (``uncertainty: both``, bootstrap resamples of the calls). After n calls, at ``--heldout`` new
random designs: f̂ (the objective's statistic of the primary surrogate's generated samples, as the acquisition sees
it), the exact objective there (``FamilyProblem.true_statistic``), and four uncertainties:

* ``nearest``: σ_W, the published distance (energy, the default) to the nearest stored call's outputs;
* ``ensemble``: σ_E, the mean pairwise distance between the members' generated outputs (same distance);
* ``spread``: the standard deviation of the members' f̂ (the objective's statistic, not the distribution);
* ``both``: ½(σ_W + r·σ_E), r the ratio of their medians (what ``uncertainty: both`` scores).

Scores: Spearman's ρ between u and |f̂ − f_true| (1: the uncertainty ranks the errors exactly; 0: no
information), and the ratio of the median |error| in the top third of u to that in the bottom third. Results are
appended to ``bench/results/wugo_calibration.jsonl`` (a rerun skips finished cells); the table is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "results" / "wugo_calibration.jsonl"
KINDS = ("nearest", "ensemble", "spread", "both")
#: Calls between warm refits: a campaign refits after every call; every 5th keeps this benchmark's runtime modest
#: while each checkpoint's model has had a campaign-like sequence of warm refits.
REFIT_EVERY = 5
#: Seed offset of the held-out designs' stream from the design's (any fixed value: they must differ).
HELDOUT_STREAM = 99991


def study_dict(problem: str, n: int, seed: int, members: int) -> dict[str, Any]:
    from bench.distribution_family import objective
    from simulators.family import FAMILY

    dim = FAMILY[problem][0].dim
    return {
        "name": f"calibration-{problem}", "seed": seed,
        "parameters": {f"x{i + 1}": {"low": 0.0, "high": 1.0} for i in range(dim)},
        "simulator": {"name": problem, "samples_per_call": n},
        "objectives": {"mean": objective(problem, "mean"), "tail": objective(problem, "tail")},
        "strategy": {"name": "wugo", "options": {"objective": "mean", "uncertainty": "both", "members": members}},
        "budget": {"calls": 100, "initial_design": 4},
        "execution": {"backend": "inline"},
    }


def history(sim: Any, study: Any, theta: np.ndarray, samples: list[np.ndarray]) -> Any:
    from optimizer.metrics import metric_on_samples
    from optimizer.strategies.base import History

    import torch

    outs = list(sim.outputs)
    objs = np.array([[float(metric_on_samples(m, torch.as_tensor(s)[None], outs)[0]) for m in study.objectives.values()]
                     for s in samples])
    N = len(theta)
    return History(theta=theta, call_ids=np.arange(1, N + 1), objectives=objs, objective_sems=np.full_like(objs, np.nan),
                   constraints=np.zeros((N, 0)), feasible=np.ones(N, dtype=bool), objective_names=list(study.objectives),
                   directions=["minimize"] * objs.shape[1], failed_theta=np.zeros((0, theta.shape[1])), n_issued=N,
                   _load=lambda i: samples[i])


def spearman(u: np.ndarray, e: np.ndarray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(u) & np.isfinite(e)
    return float(spearmanr(u[ok], e[ok]).statistic) if ok.sum() > 2 else float("nan")


def tercile_ratio(u: np.ndarray, e: np.ndarray) -> float:
    order = np.argsort(u, kind="stable")
    third = len(u) // 3
    lo, hi = np.median(e[order[:third]]), np.median(e[order[-third:]])
    return float(hi / lo) if lo > 0 else float("inf")


def run_cell(problem: str, n: int, seed: int, calls: list[int], heldout: int, members: int) -> list[dict[str, Any]]:
    import torch
    from scipy.stats import qmc

    from optimizer.metrics import metric_on_samples
    from optimizer.space import SearchSpace
    from optimizer.strategies.wugo import WUGOStrategy
    from optimizer.study import validate_study
    from simulators.family import FAMILY

    torch.set_num_threads(1)
    sim = FAMILY[problem][0]()
    study = validate_study(study_dict(problem, n, seed, members))
    space = SearchSpace(study.parameters)
    strat = WUGOStrategy(space, study, seed, **study.strategy.options)
    strat.set_simulator(sim)
    N = max(calls)
    theta = qmc.Sobol(sim.dim, seed=seed).random(N)
    samples = [sim.simulate(dict(zip(sim.parameters, u)), n, seed * 100003 + i) for i, u in enumerate(theta)]
    x = np.random.default_rng(seed + HELDOUT_STREAM).random((heldout, sim.dim))
    truth = {}
    for name, m in study.objectives.items():
        truth[name] = np.array([sim.true_statistic(dict(zip(sim.parameters, u)), m.statistic, m.q, m.threshold)
                                for u in x])
    rows = []
    t0 = time.time()
    steps = sorted(set(range(calls[0], N + 1, REFIT_EVERY)) | set(calls))
    for k in steps:
        strat.tell(history(sim, study, theta[:k], samples[:k]))
        if k not in calls:
            continue
        gen_seed = seed + k
        assert strat.bank is not None and strat.outputs is not None
        ys = strat.member_samples(x, gen_seed)  # [M, C, n, k]: the primary first
        sigma = strat.bank.min_distance(ys[0], chunk=strat.cfg["chunk"]).numpy()
        ens = strat.bank.disagreement(ys, chunk=strat.cfg["chunk"]).numpy()
        both = 0.5 * (sigma + np.median(sigma) / np.median(ens) * ens)
        for name, m in study.objectives.items():
            per_member = np.stack([metric_on_samples(m, y, strat.outputs).numpy() for y in ys])
            err = np.abs(per_member[0] - truth[name])
            u = {"nearest": sigma, "ensemble": ens, "spread": per_member.std(0), "both": both}
            rows.append({"problem": problem, "samples": n, "seed": seed, "calls": k, "objective": name,
                         "members": members, "fitted_members": int(ys.shape[0]), "heldout": heldout,
                         "median_error": float(np.median(err)),
                         **{f"rho_{kind}": spearman(u[kind], err) for kind in KINDS},
                         **{f"ratio_{kind}": tercile_ratio(u[kind], err) for kind in KINDS},
                         "wall_s": round(time.time() - t0, 1)})
    return rows


def _fmt(v: list[float]) -> str:
    v = [x for x in v if np.isfinite(x)]
    if not v:
        return "–"
    return f"{np.median(v):.2f} [{min(v):.2f}–{max(v):.2f}]"


def table(rows: list[dict[str, Any]], objective: str) -> str:
    keys = sorted({(r["problem"], r["samples"], r["calls"]) for r in rows if r["objective"] == objective})
    head = "| problem | samples/call | calls | " + " | ".join(f"ρ {k}" for k in KINDS) + \
        " | top/bottom tercile error, nearest | ensemble | both |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for p, s, c in keys:
        sel = [r for r in rows if (r["problem"], r["samples"], r["calls"], r["objective"]) == (p, s, c, objective)]
        cells = [_fmt([r[f"rho_{k}"] for r in sel]) for k in KINDS]
        cells += [_fmt([r[f"ratio_{k}"] for r in sel]) for k in ("nearest", "ensemble", "both")]
        lines.append(f"| {p.removeprefix('family_')} | {s} | {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> str:
    """Median ρ over every problem, seed and objective, by calls per uncertainty, and how often each wins."""
    lines = ["| calls | " + " | ".join(f"ρ {k}" for k in KINDS) + " | cells where ensemble ρ > nearest ρ |",
             "|---|" + "---|" * (len(KINDS) + 1)]
    for c in sorted({r["calls"] for r in rows}):
        sel = [r for r in rows if r["calls"] == c]
        wins = sum(r["rho_ensemble"] > r["rho_nearest"] for r in sel)
        lines.append(f"| {c} | " + " | ".join(_fmt([r[f'rho_{k}'] for r in sel]) for k in KINDS) +
                     f" | {wins}/{len(sel)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=["family_bimodal", "family_heavy_tail", "family_point_mass"])
    ap.add_argument("--samples", nargs="+", type=int, default=[20, 500])
    ap.add_argument("--calls", nargs="+", type=int, default=[10, 20, 40])
    ap.add_argument("--seeds", nargs="+", type=int, default=[2, 3, 5])
    ap.add_argument("--heldout", type=int, default=256)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    calls = sorted(args.calls)
    done = set()
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["problem"], r["samples"], r["seed"], r["members"], r["heldout"]))
    for p in args.problems:
        for n in args.samples:
            for seed in args.seeds:
                if (p, n, seed, args.members, args.heldout) in done:
                    continue
                rows = run_cell(p, n, seed, calls, args.heldout, args.members)
                with args.out.open("a") as f:
                    for r in rows:
                        f.write(json.dumps(r) + "\n")
                print(f"{p} n={n} seed={seed}: {rows[-1]['wall_s']} s", flush=True)
    rows = [json.loads(line) for line in args.out.read_text().splitlines()]
    rows = [r for r in rows if r["problem"] in args.problems and r["samples"] in args.samples
            and r["seed"] in args.seeds and r["calls"] in calls and r["members"] == args.members]
    for obj in ("mean", "tail"):
        print(f"\nobjective: {obj}\n" + table(rows, obj))
    print("\nall problems, seeds and both objectives\n" + summary(rows))


if __name__ == "__main__":
    main()
