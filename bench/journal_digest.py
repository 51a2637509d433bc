"""A digest of a seeded campaign's designs and values: run it in two checkouts to show a change kept behaviour.

Runs the study (inline executor, temporary directory, one torch thread) with the strategy and seed given and
prints one line per call (call, origin, params, first objective) and a SHA-256 over them. Two checkouts that
print the same digest proposed the same designs and measured the same values.

    PYTHONPATH=. python -m bench.journal_digest studies/benchmarks/himmelblau.yaml --strategy gp --seed 2 --calls 30
"""

from __future__ import annotations

import argparse
import hashlib
import json

from bench.harness import run_study


def main(argv: list[str] | None = None) -> None:
    """Run one seeded campaign and print its calls and their digest."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", help="study YAML, relative to the repository")
    ap.add_argument("--strategy", default="gp")
    ap.add_argument("--options", default="{}", help="strategy options as JSON")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--calls", type=int, default=30, help="calls in all, initial design included")
    args = ap.parse_args(argv)
    study, recs, _ = run_study(args.study, {"name": args.strategy, "options": json.loads(args.options)},
                               args.seed, args.calls)
    objective = next(iter(study.objectives))
    lines = [json.dumps([r.call_id, r.origin, {k: round(float(v), 10) for k, v in r.params.items()},
                         None if objective not in r.metrics else round(float(r.metrics[objective]), 10)])
             for r in recs]
    print("\n".join(lines))
    print("digest", hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16], f"({len(recs)} calls)")


if __name__ == "__main__":
    main()
