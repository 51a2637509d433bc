"""Retargeting: a campaign run for the mean, asked afterwards about a tail objective with no new calls,
against a campaign run for the tail objective from scratch with the same budget.

    python bench/retarget.py [--problems family_skewed family_bimodal ...] [--samples 100] [--seeds 2 3 5]

Per problem and seed (all runs real seeded inline campaigns of ``simulators/family.py``; every score is
the exact tail statistic of a design minus its exact optimum):

* ``retarget``: WU-GO campaign on the mean, then ``optimize retarget`` to the tail objective: its
  recommended design (surrogate's optimum);
* ``retarget-evaluated``: the evaluated design retargeting picks (best surrogate statistic);
* ``stored-empirical``: the stored call with the best *empirical* tail statistic (retargeting without a model);
* ``scratch-wugo`` / ``scratch-gp``: the best observed design of a campaign run for the tail from the start.

Raw rows go to ``bench/results/retarget.jsonl`` (a rerun skips finished ones).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from distribution_family import objective, optimum, run_one, study_dict  # noqa: E402

OUT = ROOT / "bench" / "results" / "retarget.jsonl"


def run_retarget(problem: str, n: int, seed: int) -> dict[str, Any]:
    import torch
    import yaml

    torch.set_num_threads(1)
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.retarget import retarget
    from optimizer.study import Objective, validate_study
    from simulators.family import FAMILY

    sim = FAMILY[problem][0]()
    tail = objective(problem, "tail")
    q, th = tail.get("q"), tail.get("threshold")
    true = lambda p: sim.true_statistic(p, tail["statistic"], q, th) - optimum(problem, "tail")  # noqa: E731
    data = study_dict(problem, "mean", n, {"name": "wugo"}, seed)
    study = validate_study(data)
    with tempfile.TemporaryDirectory() as d:
        camp = Campaign.create(Path(d) / "c", study, yaml.safe_dump(data), source=f"<{problem}>")
        run_campaign(camp, study)
        res = retarget(camp, "tail", Objective.model_validate(tail), propose=0)
        from optimizer.retarget import recompute, retarget_study

        rs = recompute(retarget_study(study, "tail", Objective.model_validate(tail)), camp.records(), camp.storage,
                       list(sim.outputs))
        emp = min(rs.values(), key=lambda r: r.metrics["tail"])
    return {"problem": problem, "samples": n, "seed": seed, "retarget": true(res.recommended["params"]),
            "retarget-evaluated": true(res.best_evaluated["params"]), "stored-empirical": true(emp.params)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", nargs="+", default=["family_skewed", "family_bimodal", "family_heavy_tail",
                                                      "family_correlated"])
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--seeds", nargs="+", type=int, default=[2, 3, 5])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    done = {(r["problem"], r["samples"], r["seed"]) for r in
            (json.loads(x) for x in (args.out.read_text().splitlines() if args.out.exists() else []))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as fh:
        for p in args.problems:
            for seed in args.seeds:
                if (p, args.samples, seed) in done:
                    continue
                row = run_retarget(p, args.samples, seed)
                for s in ("wugo", "gp"):
                    row[f"scratch-{s}"] = run_one(p, "tail", args.samples, s, seed)["regret"]
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                print(json.dumps(row), flush=True)
    rows = [json.loads(x) for x in args.out.read_text().splitlines()]
    cols = ["retarget", "retarget-evaluated", "stored-empirical", "scratch-wugo", "scratch-gp"]
    print("| problem | samples/call | seeds | " + " | ".join(cols) + " |")
    print("|---" * (3 + len(cols)) + "|")
    for p in dict.fromkeys(r["problem"] for r in rows):
        rs = [r for r in rows if r["problem"] == p and r["samples"] == args.samples]
        if not rs:
            continue
        cells = []
        for c in cols:
            v = np.percentile([r[c] for r in rs], [25, 50, 75])
            cells.append(f"{v[1]:.3g} [{v[0]:.3g}–{v[2]:.3g}]")
        print(f"| {p} | {args.samples} | {len(rs)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
