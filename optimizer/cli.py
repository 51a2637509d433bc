"""The ``optimize`` command line: run, resume, status, export, report, list.

Bad input prints one line naming the file/field and the problem, and exits with
code 2; nothing already recorded is touched.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimizer import __version__
from optimizer.errors import DetoptError, InfrastructureError

if TYPE_CHECKING:
    from optimizer.study import StudyConfig

EXIT_USAGE = 2
#: OS errors about a file that the user can fix (space, permissions, paths), shown as one line.
USER_FILE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT,
                    errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG}
#: The Ray cluster (raylet, GCS) was lost: nothing is wrong with the input, resume when Ray is back.
EXIT_INFRASTRUCTURE = 3
#: Stopped by a signal: 128 + its number, with either backend (SIGINT 130, SIGTERM 143). Recorded calls
#: are kept and the calls in flight run again on resume.
EXIT_SIGNAL_BASE = 128
_last_signal = signal.SIGINT


def _reporter(args: argparse.Namespace) -> Any:
    from optimizer.progress import default_reporter

    return default_reporter(quiet=args.quiet)


def _with_overrides(study: StudyConfig, args: argparse.Namespace) -> StudyConfig:
    if getattr(args, "backend", None):
        study = study.model_copy(update={"execution": study.execution.model_copy(update={"backend": args.backend})})
    if study.execution.backend == "ray":  # an unreachable cluster is refused before anything is written
        from optimizer.executors.ray_backend import preflight

        preflight(study.execution)
    return study


def _check_budget(budget: int | None, particles: int | None = None) -> None:
    if budget is not None and budget < 1:
        raise DetoptError(f"--budget: {budget} is not a positive number of calls")
    if particles is not None and particles < 1:
        raise DetoptError(f"--particles: {particles} is not a positive number of particles")


def cmd_run(args: argparse.Namespace) -> int:
    """``optimize run STUDY``: check everything the study names, create the campaign directory and run it.

    Returns:
        0 when the budget is spent or the strategy stops, the signal exit code when interrupted.
    """
    from optimizer.study import load_study

    _check_budget(args.budget, args.particles)
    study, text = load_study(args.study)
    if args.initial_design is not None:
        study, text = _with_initial_design(study, text, args)
    if args.budget is not None and args.budget < study.budget.initial_design:
        raise DetoptError(f"--budget: {args.budget} is below budget.initial_design ({study.budget.initial_design})")
    if args.budget is not None:
        study = study.model_copy(update={"budget": study.budget.model_copy(update={"calls": args.budget})})
    if args.particles is not None:
        study = study.model_copy(update={"budget": study.budget.model_copy(update={"particles": args.particles})})
    out = Path(args.output or study.output or Path("runs") / study.name)
    if args.dry_run:  # checks and times, writes nothing (no campaign directory)
        from optimizer.dryrun import dry_run, print_dry_run

        study = _with_overrides(study, args)
        print_dry_run(study, dry_run(study, args.study), out)
        return 0
    # after the study's own checks: a typo is refused without importing torch and the strategies (~4 s)
    from optimizer.campaign import Campaign, check_output_dir, prepare, run_campaign

    prepare(study, args.study)  # every check before the campaign directory is created
    study = _with_overrides(study, args)
    check_output_dir(out)
    camp = Campaign(out)
    with camp.lock():  # held from the first write to the last
        camp.initialise(study, text, source=args.study, budget=args.budget, particles=args.particles)
        summary = run_campaign(camp, study, source=args.study, reporter=_reporter(args))
    return _interrupted(camp.root, summary) if summary.stopped == "interrupted" else 0


def _with_initial_design(study: Any, text: str, args: argparse.Namespace) -> tuple[Any, str]:
    """The study with ``--initial-design N`` (0 ≤ N ≤ the budget), and the text stored with the campaign:
    the initial design is part of the study's fingerprint, so the stored study says what was run."""
    import yaml

    n, calls = args.initial_design, args.budget if args.budget is not None else study.budget.calls
    if n < 0 or n > calls:
        raise DetoptError(f"--initial-design: {n} is outside 0 ... the budget ({calls} calls)")
    study = study.model_copy(update={"budget": study.budget.model_copy(update={"initial_design": n})})
    data = yaml.safe_load(text)
    data.setdefault("budget", {})["initial_design"] = n
    text = f"# {args.study} with --initial-design {n}\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return study, text


def cmd_resume(args: argparse.Namespace) -> int:
    """``optimize resume DIR``: continue a campaign from its journal (re-running the calls in flight when it stopped).

    A changed study is accepted only with ``--force`` and only where the stored calls support it.
    """
    from optimizer.campaign import Campaign, prepare, run_campaign
    from optimizer.study import load_study

    _check_budget(args.budget, args.particles)
    camp = Campaign.open(args.dir)
    source = args.study or str(camp.root / "study.yaml")
    study, text = load_study(source)
    prepare(study, source)  # a study that cannot run changes nothing
    study = _with_overrides(study, args)  # its checks (a reachable Ray address) run before anything is written
    with camp.lock():  # a resume refused by the lock writes nothing
        camp.check_study(study, text, force=args.force)
        if args.budget is not None or args.particles is not None:
            camp.set_budget(args.budget, args.particles)
        summary = run_campaign(camp, study, source=source, reporter=_reporter(args))
    return _interrupted(camp.root, summary) if summary.stopped == "interrupted" else 0


def _interrupted(root: Any = "DIR", summary: Any = None) -> int:
    # the count is the progress bar's: finished calls charged to the budget
    done = f" ({summary.finished} of {summary.budget} calls finished)" if summary is not None else ""
    print(f"interrupted; recorded calls are kept; continue with: optimize resume {root}{done}", file=sys.stderr)
    return EXIT_SIGNAL_BASE + int(_last_signal)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return str(v)


#: Studies with more parameters than this leave them out of the status tables (`--params` lists them).
MAX_STATUS_PARAMETERS = 8
#: Longest error text shown in a status cell (the full text is in `optimize export`).
MAX_ERROR_CHARS = 60


def _fit(cols: list[str], cells: list[list[str]], essential: int, width: int) -> list[int]:
    """Indices of the columns to show: the first ``essential`` always, then the others in order while the
    table still fits ``width`` characters unwrapped (rich adds 3 characters of padding and rule per column)."""
    need = [max([len(c), *(len(row[i]) for row in cells)]) + 3 for i, c in enumerate(cols)]
    keep, used = list(range(min(essential, len(cols)))), 1 + sum(need[:essential])
    for i in range(essential, len(cols)):
        if used + need[i] <= width:
            keep.append(i)
            used += need[i]
    return keep


def _table(title: str, cols: list[str], cells: list[list[str]], essential: int, width: int) -> tuple[Any, list[str]]:
    from rich.table import Table

    # optional columns with nothing to show (no failures, no errors) are not worth a cell
    empty = {i for i in range(essential, len(cols)) if all(row[i] in ("", "-") for row in cells)}
    cols_, cells_ = [c for i, c in enumerate(cols) if i not in empty], [[v for i, v in enumerate(r) if i not in empty] for r in cells]
    cols, cells = cols_, cells_
    keep = _fit(cols, cells, essential, width)
    table = Table(title=title, title_justify="left")
    for i in keep:
        table.add_column(cols[i], no_wrap=True, justify="right" if i else "left")
    for row in cells:
        table.add_row(*[row[i] for i in keep])
    return table, [cols[i] for i in range(len(cols)) if i not in keep]


def cmd_status(args: argparse.Namespace) -> int:
    """``optimize status DIR``: counts, best and recommended designs (or the Pareto front) from the records alone.

    Never imports the driver; ``--json`` prints the same facts as one JSON object.
    """
    from optimizer.diagnostics import registered_simulator
    from optimizer.executors import simulator_args
    from optimizer.records import CampaignView, best_so_far, charged, finished_calls, is_lost_for_good
    from optimizer.fidelity import issued_particles
    from optimizer.results import call_rows, column_units, compute_hours, particles

    camp = CampaignView.open(args.dir)
    study = camp.study()
    records = camp.records()
    budget = camp.meta()["budget_calls"]
    best = best_so_far(study, records.values())
    counts: dict[str, int] = {}
    for r in records.values():
        counts[r.status] = counts.get(r.status, 0) + 1
    issued = sum(charged(r) for r in records.values())  # calls lost to worker deaths are not charged
    finished = finished_calls(records.values())  # the progress bar's count
    lost = sum(is_lost_for_good(r) for r in records.values())
    summary: dict[str, Any] = {
        "study": study.name, "directory": str(camp.root), "budget": budget, "issued": issued, "finished": finished, "lost": lost,
        "status_counts": counts, "units": column_units(study),
        "particles": sum(particles(r) for r in records.values()),
        "particles_budget": study.budget.particles, "particles_charged": issued_particles(records.values()),
        "device_hours": sum(compute_hours(r) for r in records.values()),
        "best": {k: (None if v is None else {"value": v[0], "call": v[1], "params": records[v[1]].params})
                 for k, v in best.items()},
    }
    if len(study.objectives) == 1:  # several objectives report a Pareto front instead
        from optimizer.recommend import recommend_cached

        recs = {k: recommend_cached(study, records.values(), camp.root, k) for k in study.objectives}
        summary["recommended"] = {k: None if r is None else r.as_dict() for k, r in recs.items()}
    front: list[Any] = []
    if len(study.objectives) > 1:
        from dataclasses import asdict

        from optimizer.pareto import front_table, hypervolume_summary, pareto_calls

        summary["pareto"] = pareto_calls(study, records.values())
        front = front_table(study, records)
        summary["front"] = [asdict(f) for f in front]
        summary["hypervolume"] = hypervolume_summary(study, records)
    # Benchmarks know their optimum: report how close the campaign got (never used by strategies).
    # Only detopt's own simulators: a campaign directory never makes status import a user's module.
    meta = camp.meta()
    optima, optimum_value = meta.get("known_optima"), meta.get("optimum_value")
    if "known_optima" not in meta and registered_simulator(study):  # written before the driver recorded them
        try:
            sim = simulator_args(study.simulator).build()
            optima, optimum_value = sim.known_optima(), sim.optimum_value()
        except DetoptError:
            optima = None
    if optima and not any(p.categorical for p in study.parameters.values()):  # a distance needs numbers
        import numpy as np

        pts = [r for r in records.values() if r.status == "completed" and r.origin != "baseline"]
        if pts:
            opt = np.array([[o[n] for n in study.parameters] for o in optima])
            theta = np.array([[r.params[n] for n in study.parameters] for r in pts])
            dist = np.linalg.norm(theta[:, None, :] - opt[None], axis=-1).min()
            summary["distance_to_optimum"] = float(dist)
            summary["optimum_value"] = optimum_value
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
        return 0
    from rich.console import Console

    con = Console()

    def say(text: str) -> None:  # plain lines are never wrapped or cut by the console width
        con.print(text, markup=False, highlight=False, soft_wrap=True)

    units = {k: study.objectives[k].unit for k in study.objectives} | {k: study.constraints[k].unit for k in study.constraints}
    rows = call_rows(study, records)
    few = len(study.parameters) <= MAX_STATUS_PARAMETERS
    shown_params = list(study.parameters) if few else []
    cols = ["call", "origin", "status"] + [f"objective.{o}" for o in study.objectives] + ["feasible"]
    cols += [f"constraint.{c}" for c in study.constraints] + ["failure", "attempts"]
    cols += [f"param.{p}" for p in shown_params] + ["duration_s", "error"]
    shown = rows if args.all else rows[max(len(rows) - args.last, 0):]
    cells = [[_fmt(row.get(c))[:MAX_ERROR_CHARS] for c in cols] for row in shown]
    unfinished = f", {issued - finished} in flight or to re-run" if issued > finished else ""
    title = (f"{study.name}: {finished}/{budget} calls finished{unfinished} "
             f"({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))})")
    table, dropped = _table(title, [c.split(".", 1)[-1] for c in cols], cells, 4 + len(study.objectives), con.width)
    con.print(table)
    legend = [f"{k} [{u}]" for k, u in units.items() if u]
    if legend:
        say("units: " + ", ".join(legend))
    if len(shown) < len(rows):
        say(f"({len(rows) - len(shown)} earlier calls hidden; --all shows every call"
            + ("; every Pareto-front member is in the table below" if front else "") + ")")
    say(f"particles simulated: {summary['particles']:,} (every finished attempt, baselines and confirmations "
        f"included); device-hours: {summary['device_hours']:.3g} as recorded")
    if study.budget.particles is not None:
        say(f"particle budget: {summary['particles_charged']:,} of {study.budget.particles:,} issued (budget.particles)")
    if study.budget.screen is not None:
        promoted = sum(1 for r in records.values() if r.origin == "promote")
        say(f"screening: new designs with {study.budget.screen.samples:,} particles, {promoted} promoted to "
            f"{study.simulator.samples_per_call:,} in all (budget.screen)")
    if lost:
        say(f"({lost} calls lost to worker or node deaths after every re-run; not charged to the budget)")
    if dropped:
        say(f"(columns left out to fit {con.width} characters: {', '.join(dropped)}; `optimize export` has them all)")
    if not few:
        say(f"({len(study.parameters)} parameters not shown in the tables; --params lists them, `optimize export` has them)")
    if front:
        from optimizer.pareto import format_change, format_hypervolume, format_value

        has_base = any(v is not None for f in front for v in f.change.values())
        fcols = ["call", "knee"] + list(study.objectives) + ([f"Δ{o} %" for o in study.objectives] if has_base else [])
        fcols += shown_params
        fcells = []
        for f in front:
            row = [f"{f.call_id} (b)" if f.baseline else str(f.call_id), "*" if f.knee else ""] + [format_value(f.values[o], f.sems[o]) for o in study.objectives]
            row += [format_change(f.change[o], percent=False) for o in study.objectives] if has_base else []
            row += [_fmt(f.params[p]) for p in shown_params]
            fcells.append(row)
        ptable, pdropped = _table(f"Pareto front: {len(front)} designs (± s.e.; * the knee)", fcols, fcells,
                                  2 + len(study.objectives) * (2 if has_base else 1), con.width)
        con.print(ptable)
        if has_base:
            say("Δ: change against the first baseline in %, ± its s.e. (both designs' s.e. propagated)")
        if any(f.baseline for f in front):
            say("(b): a baseline design: " + ", ".join(f"call {f.call_id} = {f.baseline}" for f in front if f.baseline))
        if pdropped and not args.params:
            say("(parameters of the front: --params)")
        if args.params:
            for f in front:
                say(f"call {f.call_id}{' (knee)' if f.knee else ''}: " + ", ".join(
                    f"{k}={_fmt(v)}{study.parameters[k].unit and v is not None and ' ' + study.parameters[k].unit or ''}"
                    for k, v in f.params.items()))
        for line in format_hypervolume(study, summary["hypervolume"]):
            say(line)
    else:
        for name, b in summary["best"].items():
            if b is None:
                say(f"best {name}: no feasible completed call yet")
            else:
                params = ", ".join(f"{k}={_fmt(v)}{study.parameters[k].unit and ' ' + study.parameters[k].unit}"
                                   for k, v in b["params"].items())
                unit = f" {units[name]}" if units[name] else ""
                say(f"best {name} ({study.objectives[name].direction}): {_fmt(b['value'])}{unit} at call {b['call']} ({params})")
                for line in _recommended_lines(study, name, summary["recommended"].get(name), unit):
                    say(line)
    if "distance_to_optimum" in summary:
        say(f"closest evaluated design to a known optimum: {summary['distance_to_optimum']:.4g} "
            f"(optimum value {summary['optimum_value']:.6g})")
    return 0


def _recommended_lines(study: Any, name: str, rec: dict[str, Any] | None, unit: str) -> list[str]:
    """The recommended design of ``name`` (``Recommendation.as_dict``) and its confirmation, as status lines."""
    if rec is None:
        return []
    params = ", ".join(f"{k}={_fmt(v)}{study.parameters[k].unit and ' ' + study.parameters[k].unit}"
                       for k, v in rec["params"].items())
    why = f"; {rec['reason']}" if rec.get("reason") else ""
    lines = [f"recommended {name} ({rec['method']}{why}): {_fmt(rec['mean'])} ± {_fmt(rec['std'])}{unit} at call "
             f"{rec['call']} (observed {_fmt(rec['observed'])} ± {_fmt(rec['observed_sem'])}; {params})"]
    c = rec.get("confirmation")
    if c:
        lines.append(f"confirmed {name}: {_fmt(c['value'])} ± {_fmt(c['sem'])}{unit} from {len(c['calls'])} "
                     f"confirmation call(s), {c['particles']} particles (calls {', '.join(map(str, c['calls']))})")
    return lines


def cmd_export(args: argparse.Namespace) -> int:
    """``optimize export DIR``: write one row per call (CSV or JSON) and print the file's path."""
    from optimizer.records import CampaignView
    from optimizer.results import export

    camp = CampaignView.open(args.dir)
    path = Path(args.output or camp.root / f"calls.{args.format}")
    if path.is_dir():
        raise DetoptError(f"--output: {path} is a directory; name the file to write")
    if not path.parent.is_dir():
        raise DetoptError(f"--output: folder {path.parent} does not exist")
    export(camp.study(), camp.records(), args.format, path)
    print(path)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``optimize report DIR``: write the HTML report with its figures (``--watch S`` re-renders as the journal grows)."""
    from optimizer.records import CampaignView
    from optimizer.report import SURROGATE_BY_DEFAULT, write_report

    camp = CampaignView.open(args.dir)
    out = Path(args.output or camp.root / "report")
    if out.exists() and not out.is_dir():
        raise DetoptError(f"--output: {out} exists and is not a folder")
    surrogate = True if args.surrogate else False if args.no_surrogate else None
    if args.watch is not None:
        from optimizer.watch import watch

        if not math.isfinite(args.watch) or args.watch <= 0:
            raise DetoptError(f"--watch: {args.watch:g} is not a positive number of seconds")

        def render() -> None:  # a fresh view each time: the journal grew
            view = CampaignView.open(args.dir)  # no surrogate refit per update unless asked for (--surrogate)
            write_report(view, out, "svg" if args.format == "svg" else "png", surrogate=bool(surrogate))

        from optimizer.storage import JOURNAL

        watch(camp.root / JOURNAL, out / "report.html", render, args.watch, max_updates=args.max_updates)
        return 0
    if surrogate or (surrogate is None and camp.study().strategy.name in SURROGATE_BY_DEFAULT):
        from optimizer.diagnostics import surrogate_cost

        cost = surrogate_cost(camp.study(), camp.records(), camp.storage)
        if cost is not None:
            print(f"fitting a surrogate for the held-out check: ~{cost:.0f} s (--no-surrogate skips it)", flush=True)
    paths, facts = write_report(camp, out, "svg" if args.format == "svg" else "png", surrogate=surrogate)
    for k, v in facts.items():
        print(f"{k}: {v}")
    for p in paths:
        print(p)
    return 0


def _parse_objective(text: str) -> tuple[str, Any]:
    """``NAME={statistic: quantile, q: 0.99, output: hits}`` (YAML flow mapping) → (name, Objective)."""
    import re

    import yaml
    from pydantic import ValidationError

    from optimizer.study import Objective

    name, sep, body = text.partition("=")
    name = name.strip()
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}", name):
        raise DetoptError("--objective: expected NAME={statistic: ..., ...}, e.g. 'bkg99={statistic: quantile, q: 0.99}'")
    try:
        data = yaml.safe_load(body) if body.strip() else {}
    except yaml.YAMLError as err:
        raise DetoptError(f"--objective: not a YAML mapping: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise DetoptError("--objective: the part after '=' must be a mapping, e.g. {statistic: quantile, q: 0.99}")
    try:
        return name, Objective.model_validate(data)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        raise DetoptError(f"--objective: {name}{'.' + field if field else ''}: {first['msg'].removeprefix('Value error, ')}") from None


def cmd_retarget(args: argparse.Namespace) -> int:
    """``optimize retarget DIR --objective NAME={...}``: a new objective's recommendation from the stored samples.

    Writes nothing; prints the surrogate's optimum, the best evaluated call and optional proposals.
    """
    from optimizer.records import CampaignView
    from optimizer.retarget import retarget

    camp = CampaignView.open(args.dir)
    name, objective = _parse_objective(args.objective)
    res = retarget(camp, name, objective, propose=args.propose)
    if args.json:
        print(json.dumps(res.__dict__, indent=1, default=float))
        return 0
    study = camp.study()

    def fmt_params(p: dict[str, Any]) -> str:
        return ", ".join(f"{k}={_fmt(v)}{study.parameters[k].unit and ' ' + study.parameters[k].unit}" for k, v in p.items())

    print(f"{name} ({objective.statistic}, {objective.direction}) from {len(camp.records())} stored calls; "
          f"model: {res.model}")
    r, b = res.recommended, res.best_evaluated
    print(f"recommended (surrogate's optimum): predicted {_fmt(r['predicted'])} at {fmt_params(r['params'])}")
    print(f"best evaluated (by the surrogate): call {b['call']}, predicted {_fmt(b['predicted'])}, "
          f"measured {_fmt(b['measured'])} ± {_fmt(b['measured_sem'])}")
    for i, p in enumerate(res.proposals, 1):
        print(f"proposal {i}: {fmt_params(p)}")
    print("nothing was written; run the proposals with strategy: {name: listed, options: {designs: [...]}} "
          "or --json for machine-readable output")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """``optimize sample DIR --at θ -n N``: draw ``N`` samples at θ from the campaign's fitted surrogate and write them."""
    from optimizer.records import CampaignView
    from optimizer.sampling import check_output, generate, parse_design, write

    camp = CampaignView.open(args.dir)
    params = parse_design(args.at, camp.study())
    if args.n < 1:
        raise DetoptError(f"-n: must be at least 1 (got {args.n})")
    out = Path(args.output)
    check_output(out)
    gen = generate(camp, params, args.n, seed=args.seed)
    write(gen, out)
    print(f"{args.n} samples of {', '.join(gen.outputs)} generated at "
          + ", ".join(f"{k}={_fmt(v)}" for k, v in gen.params.items()) + f" → {out}")
    print(f"model: {gen.model}")
    for h in gen.held_out:
        flag = "  (well above the noise floor: do not trust the surrogate there)" if h["w1"] > 2 * max(h["w1_split"], h["w1_nearest"]) else ""
        print(f"held-out call {h['call']}: W1 {h['w1']:.4g} (split-half floor {h['w1_split']:.4g}, "
              f"nearest stored call {h['w1_nearest']:.4g}){flag}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """``optimize list [simulators|strategies|executors] [NAME...] [-v]``: the registered names (``-v`` describes simulators)."""
    from optimizer.executors import EXECUTORS
    from optimizer.strategies import STRATEGIES
    from simulators import SIMULATORS

    if args.names and args.what != "simulators":
        raise DetoptError("list: names can follow 'simulators' only (optimize list simulators NAME... -v)")
    unknown = [n for n in args.names if n not in SIMULATORS]
    if unknown:
        raise DetoptError(f"list: unknown simulator '{unknown[0]}'; known: {', '.join(SIMULATORS.names())}")
    for title, reg in (("simulators", SIMULATORS), ("strategies", STRATEGIES), ("executors", EXECUTORS)):
        if args.what in (None, title) and not args.names:
            print(f"{title}: {', '.join(reg.names())}")
    if args.verbose or args.names:
        from simulators.catalog import describe  # imports each described simulator's module

        for name in args.names or (SIMULATORS.names() if args.what in (None, "simulators") else []):
            print("\n".join(["", *describe(name).lines()]))
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``optimize`` argument parser; choices come from the registries, so importing it stays light."""
    p = argparse.ArgumentParser(prog="optimize", description="detopt: detector-design optimisation campaigns.")
    p.add_argument("--version", action="version", version=f"detopt {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from optimizer.executors import EXECUTORS

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--budget", type=int, help="total simulator calls (initial design included, baselines not)")
        sp.add_argument("--particles", type=int, metavar="N",
                        help="total particles of the charged calls (overrides budget.particles; a cap beside --budget)")
        sp.add_argument("--backend", choices=EXECUTORS.names(), help="override execution.backend")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    sp = sub.add_parser("run", help="start a campaign from a study YAML", description="Start a campaign from a study YAML.")
    sp.add_argument("study", help="study YAML file")
    sp.add_argument("--output", help="campaign directory (default: the study's output, else runs/NAME)")
    sp.add_argument("--initial-design", type=int, metavar="N",
                    help="initial-design calls (overrides budget.initial_design; 0 ≤ N ≤ the budget)")
    sp.add_argument("--dry-run", action="store_true",
                    help="check the study, time one call and one strategy decision, estimate the campaign's "
                         "wall time; writes nothing")
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
    sp.add_argument("--last", type=_positive_int, default=20, help="show the last N calls (default 20)")
    sp.add_argument("--json", action="store_true", help="machine-readable summary on stdout")
    sp.add_argument("--params", action="store_true", help="list the parameters of every Pareto-front member")
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
    which = sp.add_mutually_exclusive_group()
    which.add_argument("--surrogate", action="store_true",
                       help="draw the surrogate views and the held-out check for any strategy (on by default for "
                            "WU-GO campaigns only: for the others a WU-GO model is fitted, minutes on large campaigns)")
    which.add_argument("--no-surrogate", action="store_true",
                       help="skip the surrogate views and the held-out check (they refit a model)")
    sp.add_argument("--watch", nargs="?", type=float, const=10.0, metavar="SECONDS",
                    help="keep the report live: re-write it whenever the journal grows, polling every SECONDS "
                         "(default 10; the page refreshes itself; surrogate views only with --surrogate); Ctrl-C stops")
    sp.add_argument("--max-updates", type=_positive_int, help=argparse.SUPPRESS)  # ends a --watch (tests)
    sp.set_defaults(func=cmd_report)

    sp = sub.add_parser("retarget", help="re-optimise a new objective on the stored calls, without new calls",
                        description="Recommend and propose designs for a new objective from the campaign's stored "
                                    "samples and its generative surrogate. Writes nothing.")
    sp.add_argument("dir", help="campaign directory")
    sp.add_argument("--objective", required=True,
                    help="NAME={statistic: quantile, q: 0.99, output: hits, direction: minimize} (a YAML mapping)")
    sp.add_argument("--propose", type=int, default=4, help="next designs to propose (default 4)")
    sp.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    sp.set_defaults(func=cmd_retarget)

    sp = sub.add_parser("sample", help="generated samples of the campaign's surrogate at a design",
                        description="The surrogate as a fast simulator: write N generated samples at a design, "
                                    "with the held-out check of the surrogate that made them.")
    sp.add_argument("dir", help="campaign directory")
    sp.add_argument("--at", required=True, help="the design, NAME=VALUE for every (active) parameter: x1=0.3,x2=2,absorber=W")
    sp.add_argument("-n", type=int, default=10000, help="samples to generate (default 10000)")
    sp.add_argument("--output", default="generated.csv", help="a .csv (header of output names) or .npy file")
    sp.add_argument("--seed", type=int, default=0, help="seed of the generated draws")
    sp.set_defaults(func=cmd_sample)

    sp = sub.add_parser("list", help="registered simulators, strategies, executors", description="List registered names.")
    sp.add_argument("what", nargs="?", choices=["simulators", "strategies", "executors"])
    sp.add_argument("names", nargs="*", metavar="NAME", help="simulators to describe (implies -v)")
    sp.add_argument("-v", "--verbose", action="store_true",
                    help="each simulator's parameters, outputs, quantities and options")
    sp.set_defaults(func=cmd_list)
    return p


def _interrupt(signum: int, frame: Any) -> None:
    """SIGINT and SIGTERM both stop a campaign as Ctrl-C does (the loop records the interruption)."""
    global _last_signal
    _last_signal = signal.Signals(signum)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the ``optimize`` command line with ``argv`` (default ``sys.argv[1:]``) and return its exit code.

    Exit codes: 0 done, 2 bad input (one ``error:`` line), 3 the Ray cluster was lost, 128 + signal when interrupted.
    """
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    from optimizer.fallbacks import one_line_warnings

    one_line_warnings()
    try:
        return int(args.func(args) or 0)
    except DetoptError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except InfrastructureError as err:
        print(f"Ray cluster lost: {err}; recorded calls are kept; continue with: optimize resume "
              f"{err.campaign or 'DIR'}", file=sys.stderr)
        return EXIT_INFRASTRUCTURE
    except OSError as err:
        # a file the user named or a campaign directory that cannot be written (full, read-only, gone):
        # one line; OS errors without a file name, or of other kinds, are bugs and keep their traceback
        if err.filename is None or err.errno not in USER_FILE_ERRNOS:
            raise
        print(f"error: {err.filename}: {(err.strerror or str(err)).lower()}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return _interrupted()


if __name__ == "__main__":
    sys.exit(main())
