"""Worker utilisation of whole campaigns through Ray: wall time vs the ideal budget·T/W.

    python bench/utilisation.py [--workers 4] [--duration 10] [--calls 64] [--strategies sobol wugo gp]
                                [--queue-ahead 1 0] [--repeats 1]

A sleep-based simulator of fixed duration T (no CPU use, so W workers fit on any machine) runs
a 4-D noisy quadratic. Each campaign runs through an embedded Ray with W logical CPUs. The
strategy proposes on the driver while the workers sleep; with ``queue_ahead`` 1 a call waits
in Ray for the next free worker, so proposing never leaves a worker idle unless it takes
longer than T/W on average. Ray's worker start-up is left out (a warm-up campaign runs
first). Printed per run: wall, the ideal budget·T/W, their ratio
(ideal/wall), and the busy fraction of the workers from the journal's start and finish times.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def sleepy(params: dict[str, float], n: int, seed: int, duration: float = 10.0) -> np.ndarray:
    """Sleeps ``duration`` s, then returns ``[n]`` samples of Σ(x − 0.3)² + N(0, 0.1²)."""
    time.sleep(duration)
    x = np.array([params[k] for k in sorted(params)])
    return float(((x - 0.3) ** 2).sum()) + 0.1 * np.random.default_rng(seed).standard_normal(n)


STRATEGIES = {
    "sobol": {"name": "sobol"},
    "wugo": {"name": "wugo"},
    "gp": {"name": "gp"},
}


def run(strategy: str, workers: int, duration: float, calls: int, queue_ahead: int, seed: int) -> dict[str, float]:
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.study import validate_study

    data = {
        "name": "utilisation", "seed": seed,
        "parameters": {f"x{i}": {"low": 0.0, "high": 1.0} for i in range(4)},
        "simulator": {"name": "utilisation:sleepy", "samples_per_call": 200, "options": {"duration": duration}},
        "objectives": {"f": {"statistic": "mean"}},
        "strategy": {**STRATEGIES[strategy], "initial_design": "sobol"},
        "budget": {"calls": calls, "initial_design": 2 * workers},
        "execution": {"backend": "ray", "num_cpus": 1, "queue_ahead": queue_ahead},
    }
    study = validate_study(data)
    with tempfile.TemporaryDirectory() as d:
        camp = Campaign.create(Path(d) / "c", study, json.dumps(data), source=str(HERE / "utilisation.yaml"))
        run_campaign(camp, study, source=str(HERE / "utilisation.yaml"))
        recs = [r for r in camp.records().values() if r.status == "completed"]
    t0 = min(r.submitted_at for r in recs)
    wall = max(r.finished_at for r in recs) - t0
    busy = sum(r.finished_at - r.started_at for r in recs)
    ideal = calls * duration / workers
    return {"wall_s": wall, "ideal_s": ideal, "ratio": ideal / wall, "busy": busy / (workers * wall), "completed": len(recs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per simulator call (T)")
    ap.add_argument("--calls", type=int, default=64)
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    ap.add_argument("--queue-ahead", nargs="+", type=int, default=[1, 0])
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()

    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=a.workers, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}})
    run("sobol", a.workers, 0.0, 2 * a.workers, 0, 0)  # warm-up: worker processes started, imports done
    print(f"W = {a.workers} workers, T = {a.duration:g} s, {a.calls} calls: ideal wall {a.calls * a.duration / a.workers:.0f} s")
    print("| strategy | queue_ahead | wall [s] | ideal/wall | workers busy |")
    print("|---|---|---|---|---|")
    for s in a.strategies:
        for q in a.queue_ahead:
            rs = [run(s, a.workers, a.duration, a.calls, q, seed) for seed in range(a.repeats)]
            med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
            print(f"| {s} | {q} | {med['wall_s']:.1f} | {med['ratio']:.1%} | {med['busy']:.1%} |", flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
