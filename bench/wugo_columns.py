"""What WU-GO's ``outputs`` option costs on a detector study: the surrogate over every stored column or only over
the columns the study reads.

The problem is the detector suite's ``absorber15`` (15 parameters, 5000 muons per call; the shield simulator
stores eight columns per muon, the objective reads one, ``ship_w``). One seeded Sobol campaign gives the stored
calls; on its first ``N`` completed calls a fresh WU-GO (default preset, ``outputs: all`` and ``outputs: used``,
side by side in one process, one torch thread) is timed over

* its first fit (``tell`` on N calls: the cold fit, 250 steps at most of the MDN),
* one warm refit (``tell`` with one more call), and
* one proposal (``ask``: generation, σ_W against every stored call, the refinement),

median of ``--repeats``, in CPU seconds of this process (``time.process_time``: the machine may be
shared, and one torch thread makes CPU time the cost). ``N`` = 21 is where the strategy takes over from the initial design; 61 and 121 are later.

    PYTHONPATH=. python bench/wugo_columns.py [--calls 21 61 121] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from bench.detector_suite import problem  # noqa: E402
from optimizer.campaign import Campaign, run_campaign  # noqa: E402
from optimizer.records import build_history  # noqa: E402
from optimizer.space import SearchSpace  # noqa: E402
from optimizer.strategies.wugo import WUGOStrategy  # noqa: E402
from optimizer.study import validate_study  # noqa: E402
from optimizer.testing import history_prefix  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", nargs="+", type=int, default=[21, 61, 121])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    path, over, _ = problem("absorber15")
    data = {**yaml.safe_load((ROOT / path).read_text()), **over}
    data.update(seed=2, execution={"backend": "inline"}, strategy={"name": "sobol", "initial_design": "sobol"},
                budget={"calls": max(args.calls) + 1, "initial_design": 20})
    with tempfile.TemporaryDirectory() as d:
        study = validate_study(data)
        camp = Campaign.create(Path(d) / "c", study, yaml.safe_dump(data), source=path)
        run_campaign(camp, study)
        wugo = validate_study({**data, "strategy": {"name": "wugo", "initial_design": "sobol"}})
        full = build_history(wugo, camp.records(), camp.storage)
        space = SearchSpace(wugo.parameters)
        print(f"absorber15: {len(full)} completed calls of {np.shape(full.samples(0))[0]} muons, "
              f"{np.shape(full.samples(0))[1]} stored columns; torch threads 1; CPU seconds, median of {args.repeats}")
        print("| stored calls | outputs | modelled columns | first fit (CPU s) | warm refit (CPU s) | proposal (CPU s) |")
        print("|---|---|---|---|---|---|")
        for n in args.calls:
            for outputs in ("all", "used"):
                times: dict[str, list[float]] = {"fit": [], "refit": [], "ask": []}
                k = 0
                for rep in range(args.repeats):
                    strat = WUGOStrategy(space, wugo, 2 + rep, outputs=outputs)
                    h = history_prefix(full, n)
                    t = time.process_time()
                    strat.tell(h)
                    times["fit"].append(time.process_time() - t)
                    h = history_prefix(full, n + 1)
                    t = time.process_time()
                    strat.tell(h)
                    times["refit"].append(time.process_time() - t)
                    t = time.process_time()
                    strat.ask(h, np.zeros((0, space.dim)), 1)
                    times["ask"].append(time.process_time() - t)
                    k = len(strat.outputs or [])
                med = {key: statistics.median(v) for key, v in times.items()}
                print(f"| {n} | {outputs} | {k} | {med['fit']:.2f} | {med['refit']:.2f} | {med['ask']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
