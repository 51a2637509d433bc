"""Campaign pictures, drawn from the campaign directory alone (running or interrupted campaigns too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from optimizer.results import best_trace, finished_in_order, spend_trace
from optimizer.storage import CallRecord
from optimizer.study import StudyConfig


CAPTIONS = {
    "convergence": "best feasible value so far vs simulator calls; grey dots are single calls, dashed lines baselines",
    "pareto": "every evaluated design coloured by call index, the Pareto front joined, infeasible designs hollow, "
              "±1 standard error bars from the samples",
    "hypervolume": "hypervolume of the feasible front after each call",
    "cost": "progress vs calls, vs device-hours spent (as recorded) and vs wall clock",
    "timeline": "which call ran on which worker and when; gaps are idle workers",
    "parameters": "evaluated designs across the parameters, coloured by the first objective (best on top)",
    "surrogate": "the surrogate's mean, its Wasserstein uncertainty σ_W and the acquisition over the domain; "
                 "the red mark is its minimum",
    "surrogate_check": "a surrogate refitted without these calls: generated vs simulated outputs, with W1 beside "
                       "the split-half noise floor and the nearest stored call",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # headless: reports are drawn on clusters and in CI
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def convergence_plot(study: StudyConfig, records: dict[int, CallRecord], path: Path) -> Path:
    """Best objective so far vs number of simulator calls, one panel per objective; baselines as lines."""
    plt = _pyplot()

    names = list(study.objectives)
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        x, y = best_trace(study, records, name)
        ax.step(x, y, where="post", color="C0", label="best so far")
        finished = finished_in_order(records)
        pts = [(i, r.metrics[name]) for i, r in enumerate(finished, 1) if r.status == "completed"]
        if pts:
            ax.scatter(*zip(*pts), s=8, color="0.6", label="each call")
        for i, r in enumerate(r for r in records.values() if r.origin == "baseline" and r.status == "completed"):
            ax.axhline(r.metrics[name], color=f"C{i + 1}", ls="--", lw=1, label=f"baseline {r.label}")
        direction = study.objectives[name].direction
        ax.set_xlabel("simulator calls")
        ax.set_ylabel(f"{name} ({direction})")
        ax.set_title(f"{study.name}: {name}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def pareto_plot(study: StudyConfig, records: dict[int, CallRecord], path: Path, pair: tuple[str, str] | None = None) -> Path:
    """Two objectives: every evaluated design coloured by call index, the front joined, infeasible
    designs hollow, baselines labelled, ±1 standard error bars from the samples."""
    plt = _pyplot()

    from optimizer.pareto import pareto_calls

    a, b = pair or tuple(list(study.objectives)[:2])
    done = [r for r in sorted(records.values(), key=lambda r: r.call_id) if r.status == "completed"]
    fig, ax = plt.subplots(figsize=(6.5, 5))
    feas = [r for r in done if r.feasible]
    infeas = [r for r in done if not r.feasible]
    if feas:
        sc = ax.scatter([r.metrics[a] for r in feas], [r.metrics[b] for r in feas], c=[r.call_id for r in feas],
                        cmap="viridis", s=22, zorder=3)
        fig.colorbar(sc, ax=ax, label="call")
        ax.errorbar([r.metrics[a] for r in feas], [r.metrics[b] for r in feas],
                    xerr=[_finite(r.sems.get(a)) for r in feas], yerr=[_finite(r.sems.get(b)) for r in feas],
                    fmt="none", ecolor="0.7", lw=0.8, zorder=2)
    if infeas:
        ax.scatter([r.metrics[a] for r in infeas], [r.metrics[b] for r in infeas], facecolors="none",
                   edgecolors="tab:red", s=22, label="infeasible", zorder=3)
    front = sorted((records[c] for c in pareto_calls(study, records.values())), key=lambda r: r.metrics[a])
    if front:
        ax.step([r.metrics[a] for r in front], [r.metrics[b] for r in front],
                where="post" if study.objectives[b].direction == "minimize" else "pre", color="tab:orange",
                lw=1.5, label="Pareto front", zorder=4)
    for r in done:
        if r.origin == "baseline":
            ax.annotate(r.label or f"call {r.call_id}", (r.metrics[a], r.metrics[b]), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel(f"{a} ({study.objectives[a].direction})")
    ax.set_ylabel(f"{b} ({study.objectives[b].direction})")
    ax.set_title(f"{study.name}: {a} vs {b}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def hypervolume_plot(study: StudyConfig, records: dict[int, CallRecord], path: Path) -> Path:
    """Hypervolume of the feasible front after each simulator call."""
    plt = _pyplot()

    from optimizer.pareto import hypervolume_trace

    calls, hv, ref = hypervolume_trace(study, records)
    sign = [1.0 if o.direction == "maximize" else -1.0 for o in study.objectives.values()]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.step(calls, hv, where="post")
    ax.set_xlabel("simulator calls")
    ax.set_ylabel("hypervolume")
    ref_txt = ", ".join(f"{n}={v:.4g}" for n, v in zip(study.objectives, (ref.numpy() * sign).tolist()))
    ax.set_title(f"{study.name}: hypervolume (reference {ref_txt})", fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _time_axis(hours: np.ndarray) -> tuple[np.ndarray, str]:
    """Hours rescaled to a readable unit."""
    top = float(np.nanmax(hours)) if len(hours) else 0.0
    if top >= 2:
        return hours, "h"
    if top * 60 >= 2:
        return hours * 60, "min"
    return hours * 3600, "s"


def cost_plot(study: StudyConfig, records: dict[int, CallRecord], path: Path) -> Path:
    """What the campaign spent for its progress: best objective (hypervolume with several objectives)
    vs simulator calls, vs cumulative device-hours and vs wall-clock time."""
    plt = _pyplot()

    if len(study.objectives) > 1:
        from optimizer.pareto import hypervolume_trace

        calls, y, _ = hypervolume_trace(study, records)
        label = "hypervolume"
    else:
        name = next(iter(study.objectives))
        calls, y = best_trace(study, records, name)
        label = f"best {name} ({study.objectives[name].direction})"
    compute, wall = (_time_axis(t) for t in spend_trace(records))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), sharey=True)
    for ax, (x, xlabel) in zip(axes, [(calls, "simulator calls"),
                                      (compute[0], f"compute ({compute[1]} of simulator devices, as recorded)"),
                                      (wall[0], f"wall clock ({wall[1]} since the first call)")]):
        ax.step(x, y, where="post", color="C0")
        ax.grid(alpha=0.3)
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel(label)
    axes[0].set_title(f"{study.name}: progress vs cost", loc="left")
    return _save(fig, path)


def timeline_plot(records: dict[int, CallRecord], path: Path) -> Path:
    """Which call ran on which worker and when: one row per worker, idle gaps visible; utilisation in the title."""
    plt = _pyplot()

    ran = [r for r in records.values() if r.started_at is not None and r.finished_at is not None]
    t0 = min((r.submitted_at or r.started_at) for r in ran) if ran else 0.0
    workers = sorted({_worker(r) for r in ran})
    row = {w: i for i, w in enumerate(workers)}
    span = np.array([((r.started_at - t0), (r.finished_at - t0)) for r in ran]) / 3600 if ran else np.zeros((0, 2))
    scaled, unit = _time_axis(span.ravel())
    scaled = scaled.reshape(-1, 2)
    colours = {"completed": "tab:green", "failed": "tab:red", "infeasible": "tab:orange"}
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.35 * max(len(workers), 1)))
    for r, (a, b) in zip(ran, scaled):
        ax.barh(row[_worker(r)], b - a, left=a, height=0.7, color=colours.get(r.status, "0.6"), edgecolor="k", lw=0.3)
    busy = float((span[:, 1] - span[:, 0]).sum()) if ran else 0.0
    total = float(span.max()) * max(len(workers), 1) if ran else 0.0
    ax.set_yticks(range(len(workers)), workers, fontsize=7)
    ax.set_xlabel(f"time since the first call ({unit})")
    util = f"{busy / total:.0%}" if total > 0 else "n/a"
    ax.set_title(f"worker timeline: {len(ran)} calls on {len(workers)} workers, utilisation {util} "
                 "(green completed, red failed, orange infeasible)", fontsize=9)
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


def _worker(r: CallRecord) -> str:
    w = r.worker or {}
    return f"{w.get('host', '?')}:{w.get('pid', '?')}"


def parallel_coordinates_plot(study: StudyConfig, records: dict[int, CallRecord], path: Path) -> Path:
    """Every completed design as a line across the parameters (unit-scaled), coloured by the first objective."""
    plt = _pyplot()

    name = next(iter(study.objectives))
    done = [r for r in sorted(records.values(), key=lambda r: r.call_id) if r.status == "completed"]
    names = list(study.parameters)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(names) + 3), 4.5))
    if done:
        values = np.array([r.metrics[name] for r in done])
        order = np.argsort(-values if study.objectives[name].direction == "minimize" else values)
        norm = plt.Normalize(float(values.min()), float(values.max()))
        cmap = plt.get_cmap("viridis_r" if study.objectives[name].direction == "minimize" else "viridis")
        for i in order:  # best drawn last, on top
            ax.plot(range(len(names)), done[i].unit, color=cmap(norm(values[i])), lw=0.8, alpha=0.7)
        fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=name)
    labels = [_axis_label(study, p) for p in names]
    ax.set_xticks(range(len(names)), labels, rotation=60 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center",
                  fontsize=7 if len(names) > 12 else 9)
    ax.set_ylabel("position within bounds (0 = low, 1 = high)")
    ax.set_title(f"{study.name}: evaluated designs", loc="left")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _axis_label(study: StudyConfig, name: str) -> str:
    unit = study.parameters[name].unit
    return f"{name} [{unit}]" if unit else name


def surrogate_plot(study: StudyConfig, model: Any, path: Path, points: int | None = None) -> Path:
    """1–2-D studies: the surrogate's mean of the objective, σ_W and the acquisition over the whole
    domain, with the evaluated designs; the acquisition's minimum is where WU-GO would look next.

    ``model`` is an :class:`optimizer.diagnostics.ReportModel`.
    """
    plt = _pyplot()

    from optimizer.diagnostics import landscape_grid

    space, h, strat = model.space, model.history, model.strategy
    grid, axes_u = landscape_grid(space, points or (200 if space.dim == 1 else 60))
    view = strat.landscape(grid)
    names = list(study.parameters)
    oname = strat.objective
    col = list(study.objectives).index(oname)
    obj, obs = study.objectives[oname], h.objectives[:, col]
    vals = []
    for i, a in enumerate(axes_u):  # axis values in the parameter's own units
        u = np.full((len(a), space.dim), 0.5)
        u[:, i] = a
        vals.append(space.from_unit(u)[:, i])
    pts = space.from_unit(h.theta) if len(h) else np.zeros((0, space.dim))
    best = int(np.argmin(view["acquisition"]))
    titles = [f"surrogate mean of {oname} ({obj.direction})", "Wasserstein uncertainty σ_W",
              f"acquisition (κ = {strat.cfg['kappa']:g}; lower is next)"]
    keys = ["mean", "sigma", "acquisition"]
    if space.dim == 1:
        fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
        x = vals[0]
        for ax, key, title in zip(axes, keys, titles):
            ax.plot(x, view[key], color="C0")
            ax.set_title(title, fontsize=9, loc="left")
            ax.grid(alpha=0.3)
        axes[0].errorbar(pts[:, 0], obs, yerr=[_finite(v) for v in h.objective_sems[:, col]],
                         fmt="o", ms=3, color="k", label="evaluated (±1 s.e.)")
        axes[0].legend(fontsize=8)
        for ax in axes[1:]:
            ax.plot(pts[:, 0], np.full(len(pts), ax.get_ylim()[0]), "|", color="k", ms=10)
        axes[2].axvline(x[best], color="tab:red", ls="--", lw=1)
        axes[2].set_xlabel(_axis_label(study, names[0]))
        if study.parameters[names[0]].log:
            axes[2].set_xscale("log")
    else:
        fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
        X, Y = np.meshgrid(vals[0], vals[1], indexing="ij")
        for ax, key, title in zip(axes, keys, titles):
            m = ax.pcolormesh(X, Y, view[key].reshape(X.shape), shading="auto", cmap="viridis")
            fig.colorbar(m, ax=ax)
            ax.scatter(pts[:, 0], pts[:, 1], s=10, c="w", edgecolors="k", lw=0.5)
            ax.set_title(title, fontsize=9, loc="left")
            ax.set_xlabel(_axis_label(study, names[0]))
            ax.set_ylabel(_axis_label(study, names[1]))
            for i, setter in enumerate((ax.set_xscale, ax.set_yscale)):
                if study.parameters[names[i]].log:
                    setter("log")
        g = space.from_unit(grid[best][None])[0]
        axes[2].plot(g[0], g[1], "*", color="tab:red", ms=14)
    fig.suptitle(f"{study.name}: {model.origin}", fontsize=8)
    return _save(fig, path)


def holdout_plot(study: StudyConfig, held: list[Any], path: Path) -> Path:
    """Surrogate check: for stored calls left out of a refit, the simulated and generated output
    distributions (histogram and quantile–quantile plot) with their W1, beside two yardsticks: the W1
    between two halves of the simulated sample (noise floor) and to the nearest stored call."""
    plt = _pyplot()

    fig, axes = plt.subplots(len(held), 2, figsize=(10, 2.6 * len(held)), squeeze=False)
    levels = np.linspace(0.005, 0.995, 199)
    for (ax_h, ax_q), c in zip(axes, held):
        lo, hi = np.quantile(np.concatenate([c.simulated, c.generated]), [0.001, 0.999])
        bins = np.linspace(lo, hi, 50) if hi > lo else 20
        ax_h.hist(c.simulated, bins=bins, density=True, histtype="step", lw=1.5, label="simulated")
        ax_h.hist(c.generated, bins=bins, density=True, histtype="step", lw=1.5, label="generated")
        ax_h.set_xlabel(c.column)
        ax_h.set_title(f"call {c.call_id}: W1 = {c.w1:.3g} (split-half {c.w1_split:.3g}, "
                       f"nearest call {c.w1_nearest:.3g})", fontsize=8, loc="left")
        ax_h.legend(fontsize=7)
        qs, qg = np.quantile(c.simulated, levels), np.quantile(c.generated, levels)
        ax_q.plot(qs, qg, ".", ms=3)
        both = [min(qs.min(), qg.min()), max(qs.max(), qg.max())]
        ax_q.plot(both, both, color="0.5", lw=0.8)
        ax_q.set_xlabel(f"simulated {c.column} quantiles")
        ax_q.set_ylabel("generated quantiles")
        ax_q.set_title(", ".join(f"{k}={v:.4g}" for k, v in list(c.params.items())[:4]), fontsize=7, loc="left")
        for ax in (ax_h, ax_q):
            ax.grid(alpha=0.3)
    fig.suptitle(f"{study.name}: surrogate refitted without these calls", fontsize=9)
    return _save(fig, path)


def knee_point(study: StudyConfig, records: dict[int, CallRecord]) -> int | None:
    """Call of the Pareto front closest to the ideal point, objectives scaled to [0, 1] over the front."""
    from optimizer.pareto import pareto_calls

    front = list(pareto_calls(study, records.values()))
    if len(study.objectives) < 2 or not front:
        return None
    sign = np.array([1.0 if o.direction == "minimize" else -1.0 for o in study.objectives.values()])
    Y = np.array([[records[c].metrics[o] for o in study.objectives] for c in front]) * sign
    span = np.where(Y.max(0) > Y.min(0), Y.max(0) - Y.min(0), 1.0)
    return int(front[int(np.argmin(np.linalg.norm((Y - Y.min(0)) / span, axis=1)))])


def _finite(v: float | None) -> float:
    return float(v) if v is not None and v == v else 0.0


def html_report(study: StudyConfig, records: dict[int, CallRecord], figures: list[Path], path: Path,
                summary: dict[str, object]) -> Path:
    """One self-contained HTML page: summary, the figures embedded (base64 PNG or SVG), best designs beside baselines."""
    import base64
    import html

    from optimizer.records import best_so_far

    def esc(x: object) -> str:
        return html.escape(str(x))

    best = best_so_far(study, records.values())
    baselines = [r for r in records.values() if r.origin == "baseline" and r.status == "completed"]
    rows = []
    for name, b in best.items():
        if b is None:
            continue
        r = records[b[1]]
        rows.append((f"best {name}", r))
    knee = knee_point(study, records)
    if knee is not None:
        rows.append(("knee of the front", records[knee]))
    rows += [(f"baseline {r.label}", r) for r in baselines]
    ref = baselines[0] if baselines else None
    head = "".join(f"<th>{esc(p)}{' [' + esc(study.parameters[p].unit) + ']' if study.parameters[p].unit else ''}</th>"
                   for p in study.parameters)
    head += "".join(f"<th>{esc(o)}</th>" for o in study.objectives) + "".join(f"<th>{esc(c)}</th>" for c in study.constraints)
    body = ""
    for label, r in rows:
        cells = "".join(f"<td>{r.params[p]:.6g}</td>" for p in study.parameters)
        for m in [*study.objectives, *study.constraints]:
            change = ""
            if ref is not None and r is not ref and m in study.objectives and ref.metrics[m] != 0:
                change = f" ({(r.metrics[m] - ref.metrics[m]) / abs(ref.metrics[m]):+.0%})"
            cells += f"<td>{r.metrics[m]:.6g}{change}</td>"
        body += f"<tr><td>{esc(label)} (call {r.call_id})</td>{cells}</tr>"
    mime = {".png": "image/png", ".svg": "image/svg+xml"}
    imgs = "".join(
        f'<figure><img alt="{esc(f.stem)}" src="data:{mime[f.suffix]};base64,{base64.b64encode(f.read_bytes()).decode()}">'
        f"<figcaption><b>{esc(f.stem)}</b>: {esc(CAPTIONS.get(f.stem, ''))}</figcaption></figure>" for f in figures)
    facts = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in summary.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{esc(study.name)} — detopt report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}figure{{display:inline-block;margin:8px}}
img{{max-width:520px}}figcaption{{max-width:520px;font-size:85%}}</style></head><body>
<h1>{esc(study.name)}</h1><p>{esc(study.description)}</p><ul>{facts}</ul>
<h2>Designs</h2><p>Objective changes in parentheses are relative to the first baseline.</p><table><tr><th>design</th>{head}</tr>{body}</table>
<h2>Figures</h2>{imgs}</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path


def summary_facts(study: StudyConfig, records: dict[int, CallRecord], budget: int | None,
                  held: list[Any] | None = None) -> dict[str, str]:
    """The report's text summary: what ran, what it cost, what it found (and whether G can be trusted)."""
    from optimizer.records import best_so_far
    from optimizer.results import compute_hours

    counts: dict[str, int] = {}
    for r in records.values():
        if r.origin != "baseline":
            counts[r.status] = counts.get(r.status, 0) + 1
    issued = sum(counts.values())
    baselines = sum(1 for r in records.values() if r.origin == "baseline")
    calls = f"{issued}" + (f" of a budget of {budget}" if budget else "") + ": " + \
        ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    if baselines:
        calls += f"; plus {baselines} baseline design{'s' if baselines > 1 else ''}"
    _, wall = spend_trace(records)
    facts = {"strategy": study.strategy.name, "simulator": f"{study.simulator.name} "
             f"({study.simulator.samples_per_call} samples per call)", "calls": calls,
             "compute spent": f"{sum(compute_hours(r) for r in records.values()):.3g} device-hours as recorded, "
             f"{wall[-1] * 60 if len(wall) else 0:.3g} min of wall clock"}
    for name, b in best_so_far(study, records.values()).items():
        if b is None:
            facts[f"best {name}"] = "no feasible completed call yet"
            continue
        r = records[b[1]]
        sem = r.sems.get(name)
        err = f" ± {sem:.2g}" if sem is not None and sem == sem and sem > 0 else ""
        params = ", ".join(f"{p}={r.params[p]:.4g}" for p in list(study.parameters)[:6])
        more = f", … ({len(study.parameters) - 6} more)" if len(study.parameters) > 6 else ""
        facts[f"best {name}"] = f"{b[0]:.6g}{err} at call {b[1]} ({params}{more})"
    if len(study.objectives) > 1:
        from optimizer.pareto import hypervolume_trace, pareto_calls

        front = pareto_calls(study, records.values())
        _, hv, _ = hypervolume_trace(study, records)
        facts["Pareto front"] = f"{len(front)} designs, hypervolume {hv[-1] if len(hv) else 0:.4g}"
        knee = knee_point(study, records)
        if knee is not None:
            facts["knee of the front"] = f"call {knee}: " + ", ".join(
                f"{o}={records[knee].metrics[o]:.4g}" for o in study.objectives)
    if held:
        w = np.median([c.w1 for c in held])
        floor = np.median([c.w1_split for c in held])
        near = np.median([c.w1_nearest for c in held])
        facts["surrogate check"] = (f"{len(held)} calls left out of a refit: median W1 of {held[0].column} "
                                    f"{w:.3g} (split-half noise floor {floor:.3g}, nearest stored call {near:.3g})")
    return facts


def write_report(campaign: Any, out: Path, ext: str = "png", surrogate: bool = True) -> tuple[list[Path], dict[str, str]]:
    """Every figure of a campaign plus ``report.html``; returns the paths and the text summary.

    ``surrogate=False`` skips the surrogate figures (they refit a model: seconds to minutes).
    """
    from optimizer.diagnostics import held_out, report_model

    study, records = campaign.study(), campaign.records()
    paths = [convergence_plot(study, records, out / f"convergence.{ext}")]
    if len(study.objectives) > 1:
        paths += [pareto_plot(study, records, out / f"pareto.{ext}"), hypervolume_plot(study, records, out / f"hypervolume.{ext}")]
    paths += [cost_plot(study, records, out / f"cost.{ext}"), timeline_plot(records, out / f"timeline.{ext}"),
              parallel_coordinates_plot(study, records, out / f"parameters.{ext}")]
    held: list[Any] = []
    if surrogate:
        model = report_model(study, records, campaign.storage)
        if model is not None:
            if model.space.dim <= 2:
                paths.append(surrogate_plot(study, model, out / f"surrogate.{ext}"))
            held = held_out(model, study)
            if held:
                paths.append(holdout_plot(study, held, out / f"surrogate_check.{ext}"))
    facts = summary_facts(study, records, campaign.meta().get("budget_calls"), held)
    paths.append(html_report(study, records, paths, out / "report.html", facts))
    return paths, facts
