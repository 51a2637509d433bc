"""Quick screen of WU-GO options on a few (problem, seed) pairs: how the default preset was chosen.

    python bench/wugo_screen.py --variant 'w2-kappa4={"distance": "w2", "kappa": 4.0}' \\
        --variant 'energy-kappa2={"distance": "energy", "kappa": 2.0}' \\
        --runs three_hump_camel:3:60 three_hump_camel:2:60 ackley:2:60 levi:2:50 [--jobs 2]

Each variant is a name and the JSON of WU-GO options layered on the default preset; each run is
``problem:seed:calls``. Prints calls-to-ε (None: not reached) and the final distance to the optimum.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def _one(args: tuple[str, dict, str, int, int]) -> str:
    name, opts, problem, seed, calls = args
    harness.STRATEGIES[name] = {"name": "wugo", "options": opts}
    r = harness.run_one(problem, name, seed, calls)
    return f"| {name} | {problem} | {seed} | {calls} | {r['calls_to_eps']} | {r['distance']:.3g} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", action="append", required=True, help="NAME=JSON options")
    ap.add_argument("--runs", nargs="+", required=True, help="problem:seed:calls")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    variants = [(v.split("=", 1)[0], json.loads(v.split("=", 1)[1])) for v in a.variant]
    runs = [(p, int(s), int(c)) for p, s, c in (r.split(":") for r in a.runs)]
    os.environ["OMP_NUM_THREADS"] = "1"
    todo = [(n, o, p, s, c) for n, o in variants for p, s, c in runs]
    print("| variant | problem | seed | calls | calls-to-ε | distance |\n|---|---|---|---|---|---|")
    with mp.get_context("spawn").Pool(a.jobs) as pool:
        for line in pool.imap(_one, todo):
            print(line, flush=True)


if __name__ == "__main__":
    main()
