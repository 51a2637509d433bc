"""Per-call overhead of the Ray executor vs the inline executor.

Runs the same campaign (three-hump camel, paper variant, Sobol strategy) through
both executors and reports the median over repeats of the wall time per call,
excluding executor start-up/shutdown (timed separately). Both are measured side
by side in one process so machine noise hits them alike.

    python bench/executor_overhead.py [--calls 200] [--repeats 3] [--samples 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from optimizer.campaign import Campaign, run_campaign  # noqa: E402
from optimizer.executors import EXECUTORS  # noqa: E402
from optimizer.study import validate_study  # noqa: E402


def study(backend: str, calls: int, samples: int, concurrent: int):
    return validate_study({
        "name": f"overhead_{backend}", "seed": 1,
        "parameters": {"x1": {"low": -5, "high": 5}, "x2": {"low": -5, "high": 5}},
        "simulator": {"name": "three_hump_camel_paper", "samples_per_call": samples},
        "objectives": {"f": {}},
        "budget": {"calls": calls, "initial_design": 0},
        "execution": {"backend": backend, "max_concurrent": concurrent},
    })


def raw_round_trip(ex, calls: int, samples: int) -> float:
    """Seconds per call for submit → wait, one call at a time (no journal)."""
    from optimizer.executors import CallRequest

    t0 = time.perf_counter()
    for i in range(calls):
        ex.submit(CallRequest(i, 1, {"x1": 0.1, "x2": 0.2}, samples, i))
        while ex.in_flight():
            ex.wait()
    return (time.perf_counter() - t0) / calls


def one(backend: str, calls: int, samples: int, concurrent: int, tmp: Path) -> tuple[float, float, float]:
    s = study(backend, calls, samples, concurrent)
    t0 = time.perf_counter()
    ex = EXECUTORS.get(backend)(s.simulator, s.execution, None)
    # warm the workers (first task imports torch in each worker process)
    from optimizer.executors import CallRequest

    for i in range(ex.capacity):
        ex.submit(CallRequest(-1 - i, 1, {"x1": 0.0, "x2": 0.0}, 10, i))
    while ex.in_flight():
        ex.wait()
    startup = time.perf_counter() - t0
    raw = raw_round_trip(ex, calls, samples)
    camp = Campaign.create(tmp / f"{backend}-{time.monotonic_ns()}", s, "", source="bench")
    close = ex.close
    ex.close = lambda: None  # keep Ray up between repeats; closed below
    t1 = time.perf_counter()
    summary = run_campaign(camp, s, executor=ex)
    per_call = (time.perf_counter() - t1) / calls
    assert summary.completed == calls
    close()
    return per_call, startup, raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--concurrent", type=int, default=2)
    a = ap.parse_args()
    res: dict[str, list[tuple[float, float, float]]] = {"inline": [], "ray": []}
    with tempfile.TemporaryDirectory() as d:
        for _ in range(a.repeats):
            for backend in ("inline", "ray"):
                res[backend].append(one(backend, a.calls, a.samples, a.concurrent, Path(d)))
    med = {b: statistics.median(p for p, _, _ in v) for b, v in res.items()}
    start = {b: statistics.median(s for _, s, _ in v) for b, v in res.items()}
    raw = {b: statistics.median(r for _, _, r in v) for b, v in res.items()}
    print(f"calls={a.calls} samples/call={a.samples} ray max_concurrent={a.concurrent} repeats={a.repeats} cpus={os.cpu_count()}")
    print("executor round trip, one call at a time, no journal (median over repeats):")
    for b in ("inline", "ray"):
        print(f"  {b:7s} {1e3 * raw[b]:7.2f} ms/call  (repeats: {', '.join(f'{1e3 * r:.2f}' for _, _, r in res[b])})")
    print(f"  ray overhead per call: {1e3 * (raw['ray'] - raw['inline']):.2f} ms; ratio ray/inline {raw['ray'] / raw['inline']:.2f}")
    print("whole campaign incl. journal fsyncs and strategy, wall per call (median):")
    for b in ("inline", "ray"):
        print(f"  {b:7s} {1e3 * med[b]:7.2f} ms/call  start-up {start[b]:5.2f} s  "
              f"(repeats: {', '.join(f'{1e3 * p:.2f}' for p, _, _ in res[b])})")


if __name__ == "__main__":
    main()
