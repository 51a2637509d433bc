"""Sample efficiency of WU-GO (default preset), GP-BO and Sobol on the WU-GO paper problems.

    python bench/wugo_efficiency.py [--problems ...] [--strategies wugo sobol] [--seeds ...] [--calls 100] [--jobs 2]

Results are appended to bench/results/efficiency.jsonl (a rerun skips finished runs) and
summarised as a markdown table. ``--strategies wugo-paper`` runs the paper preset (WGAN-GP
paper training: hours per run on a CPU).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PROBLEMS, SEEDS, STRATEGIES, run_all, summarize  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    ap.add_argument("--strategies", nargs="+", default=["wugo", "sobol"], choices=list(STRATEGIES))
    ap.add_argument("--seeds", nargs="+", type=int, default=SEEDS)
    ap.add_argument("--calls", type=int, default=100, help="calls after the initial design")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "efficiency.jsonl")
    ap.add_argument("--summarize-only", action="store_true")
    ap.add_argument("--with", dest="extra", nargs="+", type=Path, default=[],
                    help="more result files to summarise beside --out (side by side with earlier runs)")
    a = ap.parse_args()
    if not a.summarize_only:
        run_all(a.problems, a.strategies, a.seeds, a.calls, a.out, a.jobs)
    print(summarize(a.out, a.calls, a.extra))


if __name__ == "__main__":
    main()
