"""The ``optimize`` command line: run, resume, status, export, report, list.

Bad input prints one line naming the file/field and the problem, and exits with
code 2; nothing already recorded is touched.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
from pathlib import Path
from typing import Any

from optimizer.errors import DetoptError

EXIT_USAGE = 2


def _reporter(args: argparse.Namespace) -> Any:
    from optimizer.progress import default_reporter

    return default_reporter(quiet=args.quiet)


def _with_overrides(study: Any, args: argparse.Namespace) -> Any:
    if getattr(args, "backend", None):
        study = study.model_copy(update={"execution": study.execution.model_copy(update={"backend": args.backend})})
    return study


def cmd_run(args: argparse.Namespace) -> int:
    from optimizer.campaign import Campaign, prepare, run_campaign
    from optimizer.study import load_study

    study, text = load_study(args.study)
    prepare(study, args.study)  # every check before the campaign directory is created
    if args.budget is not None and args.budget < study.budget.initial_design:
        raise DetoptError(f"--budget: {args.budget} is below budget.initial_design ({study.budget.initial_design})")
    study = _with_overrides(study, args)
    out = Path(args.output or study.output or Path("runs") / study.name)
    camp = Campaign.create(out, study, text, source=args.study, budget=args.budget)
    summary = run_campaign(camp, study, source=args.study, reporter=_reporter(args))
    return 130 if summary.stopped == "interrupted" else 0


def cmd_resume(args: argparse.Namespace) -> int:
    from optimizer.campaign import Campaign, run_campaign
    from optimizer.study import load_study

    camp = Campaign.open(args.dir)
    source = args.study or str(camp.root / "study.yaml")
    study, text = load_study(source)
    camp.check_study(study, text, force=args.force)
    if args.budget is not None:
        camp.set_budget(args.budget)
    study = _with_overrides(study, args)
    summary = run_campaign(camp, study, source=source, reporter=_reporter(args))
    return 130 if summary.stopped == "interrupted" else 0


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return str(v)


#: Studies with more parameters than this leave them out of the status table.
MAX_STATUS_PARAMETERS = 8


def cmd_status(args: argparse.Namespace) -> int:
    from optimizer.campaign import Campaign, best_so_far
    from optimizer.executors import build_simulator
    from optimizer.results import call_rows

    camp = Campaign.open(args.dir)
    study = camp.study()
    records = camp.records()
    budget = camp.meta()["budget_calls"]
    best = best_so_far(study, records.values())
    counts: dict[str, int] = {}
    for r in records.values():
        counts[r.status] = counts.get(r.status, 0) + 1
    issued = sum(r.origin != "baseline" for r in records.values())
    summary: dict[str, Any] = {
        "study": study.name, "directory": str(camp.root), "budget": budget, "issued": issued,
        "status_counts": counts,
        "best": {k: (None if v is None else {"value": v[0], "call": v[1], "params": records[v[1]].params})
                 for k, v in best.items()},
    }
    if len(study.objectives) > 1:
        from optimizer.pareto import hypervolume_trace, pareto_calls

        summary["pareto"] = pareto_calls(study, records.values())
        _, hv, ref = hypervolume_trace(study, records)
        summary["hypervolume"] = float(hv[-1]) if len(hv) else 0.0
        sign = [1.0 if o.direction == "maximize" else -1.0 for o in study.objectives.values()]
        summary["reference_point"] = dict(zip(study.objectives, (ref.numpy() * sign).tolist()))
    # Benchmarks know their optimum: report how close the campaign got (never used by strategies).
    try:
        sim = build_simulator(study.simulator)
        optima = sim.known_optima()
    except DetoptError:
        optima = None
    if optima:
        import numpy as np

        pts = [r for r in records.values() if r.status == "completed" and r.origin != "baseline"]
        if pts:
            opt = np.array([[o[n] for n in study.parameters] for o in optima])
            theta = np.array([[r.params[n] for n in study.parameters] for r in pts])
            dist = np.linalg.norm(theta[:, None, :] - opt[None], axis=-1).min()
            summary["distance_to_optimum"] = float(dist)
            summary["optimum_value"] = sim.optimum_value()
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    con = Console()
    rows = call_rows(study, records)
    table = Table(title=f"{study.name}: {issued}/{budget} calls issued ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))})")
    # wide studies (the 42-parameter shield) would squeeze every column to nothing: their parameters are in
    # `optimize export` and in the best-design lines below
    shown_params = list(study.parameters) if len(study.parameters) <= MAX_STATUS_PARAMETERS else []
    cols = ["call", "origin", "status", "failure", "attempts"] + [f"param.{p}" for p in shown_params]
    cols += [f"objective.{o}" for o in study.objectives] + [f"constraint.{c}" for c in study.constraints]
    cols += ["feasible", "duration_s", "error"]
    for c in cols:
        table.add_column(c.split(".", 1)[-1], overflow="fold")
    shown = rows if args.all else rows[-args.last:]
    for row in shown:
        table.add_row(*[_fmt(row.get(c)) for c in cols])
    con.print(table)
    if len(shown) < len(rows):
        con.print(f"({len(rows) - len(shown)} earlier calls hidden; --all shows every call)")
    if not shown_params:
        con.print(f"({len(study.parameters)} parameters not shown in the table; `optimize export` lists them)")
    for name, b in summary["best"].items():
        if b is None:
            con.print(f"best {name}: no feasible completed call yet")
        else:
            params = ", ".join(f"{k}={_fmt(v)}{study.parameters[k].unit and ' ' + study.parameters[k].unit}"
                               for k, v in b["params"].items())
            con.print(f"best {name} ({study.objectives[name].direction}): {_fmt(b['value'])} at call {b['call']} ({params})")
    if "pareto" in summary:
        con.print(f"Pareto front ({len(summary['pareto'])} designs): calls {', '.join(map(str, summary['pareto']))}; "
                  f"hypervolume {summary['hypervolume']:.6g} w.r.t. {summary['reference_point']}")
    if "distance_to_optimum" in summary:
        con.print(f"closest evaluated design to a known optimum: {summary['distance_to_optimum']:.4g} "
                  f"(optimum value {summary['optimum_value']:.6g})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from optimizer.campaign import Campaign
    from optimizer.results import export

    camp = Campaign.open(args.dir)
    path = Path(args.output or camp.root / f"calls.{args.format}")
    export(camp.study(), camp.records(), args.format, path)
    print(path)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from optimizer.campaign import Campaign
    from optimizer.report import write_report

    camp = Campaign.open(args.dir)
    out = Path(args.output or camp.root / "report")
    paths, facts = write_report(camp, out, "svg" if args.format == "svg" else "png", surrogate=not args.no_surrogate)
    for k, v in facts.items():
        print(f"{k}: {v}")
    for p in paths:
        print(p)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from optimizer.executors import EXECUTORS
    from optimizer.strategies import STRATEGIES
    from simulators import SIMULATORS

    for title, reg in (("simulators", SIMULATORS), ("strategies", STRATEGIES), ("executors", EXECUTORS)):
        if args.what in (None, title):
            print(f"{title}: {', '.join(reg.names())}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="optimize", description="detopt: detector-design optimisation campaigns.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--budget", type=int, help="total simulator calls (initial design included, baselines not)")
        sp.add_argument("--backend", choices=["ray", "inline"], help="override execution.backend")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    sp = sub.add_parser("run", help="start a campaign from a study YAML", description="Start a campaign from a study YAML.")
    sp.add_argument("study", help="study YAML file")
    sp.add_argument("--output", help="campaign directory (default: the study's output, else runs/NAME)")
    common(sp)
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("resume", help="continue (or extend with --budget) a campaign",
                        description="Continue a campaign: completed calls are kept, calls in flight at a crash run again.")
    sp.add_argument("dir", help="campaign directory")
    sp.add_argument("--study", help="a changed study to continue with (needs --force)")
    sp.add_argument("--force", action="store_true", help="accept a study that changed since the campaign started")
    common(sp)
    sp.set_defaults(func=cmd_resume)

    sp = sub.add_parser("status", help="table of calls and best so far", description="Table of calls and best so far.")
    sp.add_argument("dir", help="campaign directory")
    sp.add_argument("--all", action="store_true", help="show every call")
    sp.add_argument("--last", type=int, default=20, help="show the last N calls (default 20)")
    sp.add_argument("--json", action="store_true", help="machine-readable summary on stdout")
    sp.set_defaults(func=cmd_status)

    sp = sub.add_parser("export", help="write every call to csv, parquet or json", description="Write every call to a file.")
    sp.add_argument("dir", help="campaign directory")
    sp.add_argument("--format", choices=["csv", "parquet", "json"], default="csv")
    sp.add_argument("--output", help="file to write (default DIR/calls.FORMAT)")
    sp.set_defaults(func=cmd_export)

    sp = sub.add_parser("report", help="draw the campaign's plots", description="Draw the campaign's plots.")
    sp.add_argument("dir", help="campaign directory")
    sp.add_argument("--output", help="folder for the figures (default DIR/report)")
    sp.add_argument("--format", choices=["html", "png", "svg"], default="html",
                    help="figure files beside report.html: png (html, the default, also means png) or svg")
    sp.add_argument("--no-surrogate", action="store_true",
                    help="skip the surrogate views and the held-out check (they refit a model)")
    sp.set_defaults(func=cmd_report)

    sp = sub.add_parser("list", help="registered simulators, strategies, executors", description="List registered names.")
    sp.add_argument("what", nargs="?", choices=["simulators", "strategies", "executors"])
    sp.set_defaults(func=cmd_list)
    return p


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    from optimizer.fallbacks import one_line_warnings

    one_line_warnings()
    try:
        return int(args.func(args) or 0)
    except DetoptError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted; recorded calls are kept. Continue with: optimize resume DIR", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
