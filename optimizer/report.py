"""Campaign pictures, drawn from the campaign directory alone (running or interrupted campaigns too)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.records import CampaignView, format_param
from optimizer.results import best_trace, finished_in_order, metric_label, particle_trace, spend_trace
from optimizer.storage import CallRecord
from optimizer.study import StudyConfig, is_minimised, minimisation_sign


CAPTIONS = {
    "convergence": "best feasible value so far vs call id (grey dots single calls, dashed lines baselines)",
    #: the convergence figure of a campaign with several objectives (the hypervolume trace)
    "convergence_front": "hypervolume w.r.t. the fixed reference vs call id: it stays 0 until a design beats the "
                         "reference in every objective (a baseline reference: better than that design in all of them)",
    "pareto": "every evaluated design coloured by call id, the Pareto front joined, the knee starred, baselines as "
              "black diamonds, infeasible designs hollow, ±1 standard error bars from the samples; an objective over "
              "more than two decades is on a log axis, otherwise designs outside the 5–95 % range sit at the edge as triangles",
    "hypervolume": "hypervolume of the feasible front after each call (call id), w.r.t. the fixed reference; right "
                   "axis: the fraction of the box between reference and ideal point",
    "cost": "progress vs calls, vs device-hours spent (as recorded) and vs wall clock",
    "timeline": "which call ran on which worker and when; gaps are idle workers",
    "parameters": "evaluated designs across the parameters (each axis labelled in its own unit, low to high bound; "
                  "a categorical axis in equal bins of its choices; a line skips an inactive conditional parameter), "
                  "coloured by the first objective, best on top; above 12 parameters only the front (or the best "
                  "designs) and the baselines",
    "surrogate": "the surrogate's mean, its Wasserstein uncertainty σ_W and the acquisition over the domain; "
                 "the red mark is its minimum",
    "importance": "per objective, how fast it changes along each parameter: 1 / the lengthscale of a GP fitted on the "
                  "completed feasible calls (unit cube), normalised to sum 1; indicative only with fewer calls than parameters",
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
    fig.savefig(path, dpi=150)  # sharp at the page's width (the HTML scales figures down, never up)
    _pyplot().close(fig)
    return path


#: An objective spanning more than this many decades (all values positive) is drawn on a log axis.
LOG_AXIS_DECADES = 2.0
#: Otherwise the Pareto plot's limits are these quantiles of the values (outliers drawn at the edge as arrows).
ROBUST_QUANTILES = (0.05, 0.95)
#: Margin beyond those limits, as a fraction of their span (so edge points are not cut by the frame).
AXIS_PAD = 0.08
#: Quantile levels of the surrogate check's Q-Q plot: 199 mid-range levels; the extreme 0.5 % at each end
#: rest on a handful of samples and would dominate the plot with noise.
QQ_LEVELS = np.linspace(0.005, 0.995, 199)
#: Its histograms span these quantiles of the pooled samples (a far outlier would squeeze every bin).
HIST_QUANTILES = (0.001, 0.999)


def convergence_plot(study: StudyConfig, records: dict[int, CallRecord], path: Path) -> Path:
    """Single objective: best so far vs call id, each call as a dot, baselines as lines.
    Several objectives: the hypervolume vs call id (per-objective bests would stay flat on dominated designs)."""
    plt = _pyplot()

    if len(study.objectives) > 1:
        fig, ax = plt.subplots(figsize=(6.5, 4))
        _hypervolume_axes(study, records, ax)
        return _save(fig, path)
    name = next(iter(study.objectives))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    x, y = best_trace(study, records, name)
    ax.step(x, y, where="post", color="C0", label="best so far")
    pts = [(r.call_id, r.metrics[name]) for r in finished_in_order(records) if r.status == "completed"]
    if pts:
        ax.scatter(*zip(*pts), s=8, color="0.6", label="each call")
    for i, r in enumerate(r for r in records.values() if r.origin == "baseline" and r.status == "completed"):
        ax.axhline(r.metrics[name], color=f"C{i + 1}", ls="--", lw=1, label=f"baseline {r.label}")
    ax.set_xlabel("call (as numbered in the journal)")
    ax.set_ylabel(f"{metric_label(study, name)} ({study.objectives[name].direction})")
    ax.set_title(f"{study.name}: {metric_label(study, name, unit=False)}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _axis_scale(values: np.ndarray, keep: np.ndarray) -> tuple[str, tuple[float, float] | None]:
    """``("log", None)`` for positive values over > LOG_AXIS_DECADES decades, else linear with robust
    limits that always contain ``keep`` (the front and the baselines)."""
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return "linear", None
    if v.min() > 0 and np.log10(v.max() / v.min()) > LOG_AXIS_DECADES:
        return "log", None
    lo, hi = np.quantile(v, ROBUST_QUANTILES)
    k = keep[np.isfinite(keep)]
    if len(k):
        lo, hi = min(lo, k.min()), max(hi, k.max())
    pad = AXIS_PAD * (hi - lo) if hi > lo else (abs(hi) * 0.1 or 1.0)
    return "linear", (float(lo - pad), float(hi + pad))


def pareto_plot(study: StudyConfig, records: dict[int, CallRecord], path: Path, pair: tuple[str, str] | None = None) -> Path:
    """Two objectives: every evaluated design coloured by call id, the front joined, the knee starred,
    infeasible designs hollow, baselines labelled, ±1 standard error bars from the samples. An objective
    spanning > 2 decades gets a log axis, else the axes clip outliers (5–95 %) and mark them as arrows."""
    plt = _pyplot()

    from optimizer.pareto import knee_call, pareto_calls

    a, b = pair or tuple(list(study.objectives)[:2])
    done = [r for r in sorted(records.values(), key=lambda r: r.call_id) if r.status == "completed"]
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    front = sorted((records[c] for c in pareto_calls(study, records.values())), key=lambda r: r.metrics[a])
    keep = [r for r in done if r.origin == "baseline"] + front
    limits = []
    for name, setter in ((a, ax.set_xscale), (b, ax.set_yscale)):
        scale, lim = _axis_scale(np.array([r.metrics[name] for r in done], dtype=float),
                                 np.array([r.metrics[name] for r in keep], dtype=float))
        setter(scale)
        limits.append(lim)
    feas = [r for r in done if r.feasible]
    infeas = [r for r in done if not r.feasible]

    def xy(rs: list[CallRecord]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions clipped into the limits and which points were clipped."""
        x = np.array([r.metrics[a] for r in rs], dtype=float)
        y = np.array([r.metrics[b] for r in rs], dtype=float)
        out = np.zeros(len(rs), bool)
        for arr, lim in ((x, limits[0]), (y, limits[1])):
            if lim is not None:
                out |= (arr < lim[0]) | (arr > lim[1])
                np.clip(arr, *lim, out=arr)
        return x, y, out

    if feas:
        x, y, out = xy(feas)
        sc = ax.scatter(x[~out], y[~out], c=[r.call_id for r, o in zip(feas, out) if not o], cmap="viridis", s=18,
                        zorder=3, vmin=1, vmax=max(r.call_id for r in done))
        fig.colorbar(sc, ax=ax, label="call")
        ax.errorbar(x[~out], y[~out], xerr=[_finite(r.sems.get(a)) for r, o in zip(feas, out) if not o],
                    yerr=[_finite(r.sems.get(b)) for r, o in zip(feas, out) if not o],
                    fmt="none", ecolor="0.25", elinewidth=0.9, capsize=2, zorder=5, label="±1 s.e.")
        if out.any():
            ax.scatter(x[out], y[out], marker="^", color="0.5", s=30, zorder=3, clip_on=False,
                       label=f"{int(out.sum())} outside the 5–95 % range (at the edge)")
    if infeas:
        x, y, _ = xy(infeas)
        ax.scatter(x, y, facecolors="none", edgecolors="tab:red", s=22, label="infeasible", zorder=3)
    if front:
        ax.step([r.metrics[a] for r in front], [r.metrics[b] for r in front],
                where="post" if is_minimised(study.objectives[b].direction) else "pre", color="tab:orange",
                lw=1.5, label="Pareto front", zorder=4)
    knee = knee_call(study, records)
    if knee is not None:
        k = records[knee]
        ax.plot(k.metrics[a], k.metrics[b], "*", color="tab:red", ms=16, mec="k", zorder=6, label=f"knee (call {knee})")
    for r in done:
        if r.origin == "baseline":
            ax.plot(r.metrics[a], r.metrics[b], "D", color="k", ms=6, zorder=6)
            ax.annotate(r.label or f"call {r.call_id}", (r.metrics[a], r.metrics[b]), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
    if limits[0] is not None:
        ax.set_xlim(*limits[0])
    if limits[1] is not None:
        ax.set_ylim(*limits[1])
    ax.set_xlabel(f"{metric_label(study, a)} ({study.objectives[a].direction})")
    ax.set_ylabel(f"{metric_label(study, b)} ({study.objectives[b].direction})")
    ax.set_title(f"{study.name}: {metric_label(study, a, unit=False)} vs {metric_label(study, b, unit=False)}")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return _save(fig, path)


def _hypervolume_axes(study: StudyConfig, records: dict[int, CallRecord], ax: Any) -> None:
    from optimizer.pareto import hypervolume_summary, hypervolume_trace

    calls, hv, _ = hypervolume_trace(study, records)
    s = hypervolume_summary(study, records)
    ax.step(calls, hv, where="post")
    ax.set_xlabel("call (as numbered in the journal)")
    ax.set_ylabel("hypervolume")
    if s["normalised"] is not None and s["hypervolume"] > 0:
        sec = ax.secondary_yaxis("right", functions=(lambda v: v * s["normalised"] / s["hypervolume"],
                                                     lambda f: f * s["hypervolume"] / s["normalised"]))
        sec.set_ylabel("fraction of the reference–ideal box")
    ref_txt = ", ".join(f"{metric_label(study, n)} {'-' if v is None else f'{v:.4g}'} ({s['reference_source'][n]})"
                        for n, v in s["reference"].items())
    ax.set_title(f"{study.name}: hypervolume w.r.t. the reference\n{ref_txt}", fontsize=8, loc="left")
    ax.grid(alpha=0.3)


def hypervolume_plot(study: StudyConfig, records: dict[int, CallRecord], path: Path) -> Path:
    """Hypervolume of the feasible front after each simulator call (call ids on x)."""
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(6.5, 4))
    _hypervolume_axes(study, records, ax)
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
    vs simulator calls, vs particles simulated, vs cumulative device-hours and vs wall-clock time."""
    plt = _pyplot()

    if len(study.objectives) > 1:
        from optimizer.pareto import hypervolume_trace

        calls, y, _ = hypervolume_trace(study, records, order="finish")
        label = "hypervolume"
    else:
        name = next(iter(study.objectives))
        calls, y = best_trace(study, records, name, order="finish")
        label = f"best {metric_label(study, name)} ({study.objectives[name].direction})"
    compute, wall = (_time_axis(t) for t in spend_trace(records))
    fig, axes = plt.subplots(1, 4, figsize=(20, 4), sharey=True)
    for ax, (x, xlabel) in zip(axes, [(calls, "simulator calls finished"),
                                      (particle_trace(records), "particles simulated"),
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

    # (call, first time, start, finish) of each call that ran
    times = [(r, r.submitted_at or r.started_at, r.started_at, r.finished_at) for r in records.values()
             if r.started_at is not None and r.finished_at is not None]
    ran = [t[0] for t in times]
    t0 = min(t[1] for t in times) if times else 0.0
    workers = sorted({_worker(r) for r in ran})
    row = {w: i for i, w in enumerate(workers)}
    span = np.array([(s - t0, f - t0) for _, _, s, f in times]) / 3600 if times else np.zeros((0, 2))
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


#: With more parameters than this, the parallel-coordinates plot draws only the front (or best designs) and baselines.
MAX_PARALLEL_ALL = 12
#: Designs drawn for a single objective when the parameters are many: the best ones.
PARALLEL_BEST = 10


def _physical(p: Any, u: float) -> float:
    low, high = p.bounds()
    return float(low * (high / low) ** u) if p.log else float(low + u * (high - low))


def _line(r: CallRecord, names: list[str]) -> tuple[list[int], list[float]]:
    """A design's (axis, unit-cube coordinate) points; an inactive conditional parameter's axis is skipped."""
    points = [(i, u) for i, (n, u) in enumerate(zip(names, r.unit)) if r.params.get(n, 0.0) is not None]
    return [i for i, _ in points], [u for _, u in points]


def parallel_coordinates_plot(study: StudyConfig, records: dict[int, CallRecord], path: Path) -> Path:
    """Completed designs as lines across the parameters, each axis ticked in its own physical units,
    coloured by the first objective. With more than MAX_PARALLEL_ALL parameters only the Pareto front
    (or the best designs) and the baselines are drawn, so the lines stay readable."""
    plt = _pyplot()

    from optimizer.pareto import pareto_calls

    name = next(iter(study.objectives))
    done = [r for r in sorted(records.values(), key=lambda r: r.call_id) if r.status == "completed"]
    names = list(study.parameters)
    subset = ""
    if len(names) > MAX_PARALLEL_ALL and done:
        if len(study.objectives) > 1:
            keep = set(pareto_calls(study, records.values()))
            subset = "Pareto front and baselines"
        else:
            s = minimisation_sign(study.objectives[name].direction)
            keep = {r.call_id for r in sorted((r for r in done if r.feasible), key=lambda r: s * r.metrics[name])[:PARALLEL_BEST]}
            subset = f"the {PARALLEL_BEST} best designs and baselines"
        done = [r for r in done if r.call_id in keep or r.origin == "baseline"]
    fig, ax = plt.subplots(figsize=(min(max(7.0, 0.6 * len(names) + 3), 18.0), 5))  # wider is unreadable scaled to a page
    strategy = [r for r in done if r.origin != "baseline"]
    if strategy:
        values = np.array([r.metrics[name] for r in strategy])
        order = np.argsort(-minimisation_sign(study.objectives[name].direction) * values)
        norm = plt.Normalize(float(values.min()), float(values.max()))
        cmap = plt.get_cmap("viridis_r" if is_minimised(study.objectives[name].direction) else "viridis")
        for i in order:  # best drawn last, on top
            ax.plot(*_line(strategy[i], names), color=cmap(norm(values[i])), lw=1.0, alpha=0.8)
        fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=metric_label(study, name))
    for r in done:
        if r.origin == "baseline":
            ax.plot(*_line(r, names), color="k", ls="--", lw=1.5, label=f"baseline {r.label}")
    for i, p in enumerate(names):  # each axis carries its own physical scale
        spec = study.parameters[p]
        ax.axvline(i, color="0.6", lw=0.6, zorder=0)
        ticks = [((j + 0.5) / len(spec.choices), str(c)) for j, c in enumerate(spec.choices)] if spec.choices is not None \
            else [(u, f"{_physical(spec, u):.3g}") for u in (0.0, 0.5, 1.0)]  # a categorical axis: its choices' bins
        for u, tick in ticks:
            ax.text(i, u, f" {tick}", fontsize=7, ha="left", va="center", color="0.2", zorder=10,
                    bbox={"fc": "white", "ec": "none", "alpha": 0.75, "pad": 0.5})
    labels = [_axis_label(study, p) for p in names]
    ax.set_xticks(range(len(names)), labels, rotation=60 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center",
                  fontsize=7 if len(names) > 12 else 9)
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("low → high bound of each parameter")
    ax.set_title(f"{study.name}: evaluated designs" + (f" ({subset})" if subset else ""), loc="left")
    if any(r.origin == "baseline" for r in done):
        ax.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return _save(fig, path)


def _axis_label(study: StudyConfig, name: str) -> str:
    return metric_label(study, name)


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
    cat = space.categorical  # a categorical axis stays in its unit-cube bins, ticked with its choices

    def physical(u: np.ndarray) -> np.ndarray:
        return np.where(cat, u, space.from_unit(u))

    vals = []
    for i, a in enumerate(axes_u):  # axis values in the parameter's own units
        u = np.full((len(a), space.dim), 0.5)
        u[:, i] = a
        vals.append(physical(u)[:, i])
    pts = physical(h.theta) if len(h) else np.zeros((0, space.dim))
    best = int(np.argmin(view["acquisition"]))
    titles = [f"surrogate mean of {metric_label(study, oname)} ({obj.direction})", "Wasserstein uncertainty σ_W",
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
        _choice_ticks(axes[2].set_xticks, study.parameters[names[0]].choices)
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
            _choice_ticks(ax.set_xticks, study.parameters[names[0]].choices)
            _choice_ticks(ax.set_yticks, study.parameters[names[1]].choices)
        g = physical(grid[best][None])[0]
        axes[2].plot(g[0], g[1], "*", color="tab:red", ms=14)
    fig.suptitle(f"{study.name}: {model.origin}", fontsize=8)
    return _save(fig, path)


def _choice_ticks(set_ticks: Any, choices: list[Any] | None) -> None:
    """Tick a categorical axis (unit-cube coordinates) with its choices at their bins' centres."""
    if choices is not None:
        set_ticks([(j + 0.5) / len(choices) for j in range(len(choices))], [str(c) for c in choices])


def holdout_plot(study: StudyConfig, held: list[Any], path: Path) -> Path:
    """Surrogate check: for stored calls left out of a refit, the simulated and generated output
    distributions (histogram and quantile–quantile plot) with their W1, beside two yardsticks: the W1
    between two halves of the simulated sample (noise floor) and to the nearest stored call."""
    plt = _pyplot()

    fig, axes = plt.subplots(len(held), 2, figsize=(10, 2.6 * len(held)), squeeze=False)
    levels = QQ_LEVELS
    for (ax_h, ax_q), c in zip(axes, held):
        lo, hi = np.quantile(np.concatenate([c.simulated, c.generated]), HIST_QUANTILES)
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
        ax_q.set_title(", ".join(f"{k}={format_param(v, 4)}" for k, v in list(c.params.items())[:4]), fontsize=7, loc="left")
        for ax in (ax_h, ax_q):
            ax.grid(alpha=0.3)
    fig.suptitle(f"{study.name}: surrogate refitted without these calls", fontsize=9)
    return _save(fig, path)


def importance_plot(study: StudyConfig, imp: Any, path: Path) -> Path:
    """Horizontal bars per objective (``imp``: :class:`optimizer.importance.Importances`), parameters sorted by
    their largest importance, the top ``MAX_BARS``."""
    from optimizer.importance import MAX_BARS

    plt = _pyplot()
    score = np.max(np.stack(list(imp.values.values())), axis=0)
    order = list(np.argsort(-score)[:MAX_BARS])
    rest = [i for i in range(len(imp.parameters)) if i not in order]
    labels = [f"{imp.parameters[i]}" + (f" [{study.parameters[imp.parameters[i]].unit}]"
                                        if study.parameters[imp.parameters[i]].unit else "") for i in order]
    if rest:
        labels.append(f"{len(rest)} others (sum)")
    m = len(imp.values)
    height = 0.8 / m
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.32 * len(labels) * max(1, m * 0.7)))
    pos = np.arange(len(labels))
    for j, (name, v) in enumerate(imp.values.items()):
        vals = [v[i] for i in order] + ([float(v[rest].sum())] if rest else [])
        ax.barh(pos + j * height, vals, height=height, label=metric_label(study, name))
    ax.set_yticks(pos + height * (m - 1) / 2, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("importance (1 / GP lengthscale, normalised to sum 1)")
    ax.set_title(f"{study.name}: parameter importance from {imp.calls} completed calls", loc="left")
    if m > 1:
        ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def knee_point(study: StudyConfig, records: dict[int, CallRecord]) -> int | None:
    """Call of the Pareto front closest to the ideal point (see :func:`optimizer.pareto.knee_call`)."""
    from optimizer.pareto import knee_call

    return knee_call(study, records)


def _finite(v: float | None) -> float:
    return float(v) if v is not None and v == v else 0.0


#: Studies with more parameters than this get the design table transposed (one column per design).
TRANSPOSE_PARAMETERS = 10


def design_rows(study: StudyConfig, records: dict[int, CallRecord]) -> list[tuple[str, CallRecord]]:
    """The designs a reader decides between: the Pareto front (several objectives) or the best call,
    then the baselines."""
    from optimizer.records import best_so_far
    from optimizer.pareto import front_table

    rows: list[tuple[str, CallRecord]] = []
    if len(study.objectives) > 1:
        for f in front_table(study, records):
            label = f"baseline {f.baseline}, on the front" if f.baseline else "Pareto front"
            rows.append((f"knee of the front ({label})" if f.knee and f.baseline else
                         "knee of the front" if f.knee else label, records[f.call_id]))
    else:
        for name, b in best_so_far(study, records.values()).items():
            if b is not None:
                rows.append((f"best {name}", records[b[1]]))
    listed = {r.call_id for _, r in rows}
    rows += [(f"baseline {r.label}", r) for r in sorted(records.values(), key=lambda r: r.call_id)
             if r.origin == "baseline" and r.status == "completed" and r.call_id not in listed]
    return rows


def _caption(study: StudyConfig, stem: str) -> str:
    """The caption of figure ``stem`` for this study (the convergence figure differs with several objectives)."""
    if stem == "convergence" and len(study.objectives) > 1:
        return CAPTIONS["convergence_front"]
    return CAPTIONS.get(stem, "")


def html_report(study: StudyConfig, records: dict[int, CallRecord], figures: list[Path], path: Path,
                summary: Mapping[str, object]) -> Path:
    """One self-contained HTML page: summary, the designs (objectives first, ± s.e. and change against the
    first baseline), the figures embedded full-width (base64 PNG or SVG)."""
    import base64
    import html

    from optimizer.pareto import format_change, format_value, relative_change
    from optimizer.records import best_so_far

    def esc(x: object) -> str:
        return html.escape(str(x))

    rows = design_rows(study, records)
    base = next((r for r in sorted(records.values(), key=lambda r: r.call_id)
                 if r.origin == "baseline" and r.status == "completed"), None)
    columns: list[tuple[str, list[str]]] = []  # (header, one cell per design)
    for o, spec in study.objectives.items():
        columns.append((metric_label(study, o), [esc(format_value(r.metrics[o], _finite(r.sems.get(o))))
                                                 for _, r in rows]))
        if base is not None:
            columns.append((f"{esc(spec.label or o)}: change vs {esc(base.label)}", [
                "" if r is base else esc(format_change(relative_change(r.metrics[o], _finite(r.sems.get(o)),
                                                                       base.metrics[o], _finite(base.sems.get(o)))))
                for _, r in rows]))
    for c in study.constraints:
        columns.append((metric_label(study, c), [f"{r.metrics[c]:.6g}" for _, r in rows]))
    for p in study.parameters:
        columns.append((metric_label(study, p), [esc(format_param(r.params.get(p))) for _, r in rows]))
    designs = [f"{esc(label)} (call {r.call_id})" for label, r in rows]
    if len(study.parameters) > TRANSPOSE_PARAMETERS:
        table = "<tr><th></th>" + "".join(f"<th>{d}</th>" for d in designs) + "</tr>"
        table += "".join(f"<tr><th>{esc(h)}</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
                         for h, cells in columns)
    else:
        table = "<tr><th>design</th>" + "".join(f"<th>{esc(h)}</th>" for h, _ in columns) + "</tr>"
        table += "".join(f"<tr><td>{d}</td>" + "".join(f"<td>{cells[i]}</td>" for _, cells in columns) + "</tr>"
                         for i, d in enumerate(designs))
    mime = {".png": "image/png", ".svg": "image/svg+xml"}
    if len(study.objectives) > 1:  # convergence already is the hypervolume trace: show it once
        figures = [f for f in figures if f.stem != "hypervolume"]
    imgs = "".join(
        f'<figure><img alt="{esc(f.stem)}" src="data:{mime[f.suffix]};base64,{base64.b64encode(f.read_bytes()).decode()}">'
        f"<figcaption><b>{esc(f.stem)}</b>: {esc(_caption(study, f.stem))}</figcaption></figure>" for f in figures)
    facts = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in summary.items())
    note = ("Values are ± 1 standard error from the samples; changes are relative to the first baseline, "
            "with both designs' standard errors propagated.")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{esc(study.name)} — detopt report</title>
<style>body{{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}}.scroll{{overflow-x:auto}}
figure{{display:block;margin:1.5em 0}}img{{max-width:100%;height:auto}}figcaption{{font-size:90%}}</style></head><body>
<h1>{esc(study.name)}</h1><p>{esc(study.description)}</p><ul>{facts}</ul>
<h2>Designs</h2><p>{note}</p><div class="scroll"><table>{table}</table></div>
<h2>Figures</h2>{imgs}</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path


def summary_facts(study: StudyConfig, records: dict[int, CallRecord], budget: int | None,
                  held: list[Any] | None = None, root: Path | None = None) -> dict[str, str]:
    """The report's text summary: what ran, what it cost, what it found (and whether G can be trusted)."""
    from optimizer.records import best_so_far
    from optimizer.results import compute_hours

    counts: dict[str, int] = {}
    for r in records.values():
        if r.origin not in ("baseline", "confirm"):
            counts[r.status] = counts.get(r.status, 0) + 1
    from optimizer.records import finished_calls

    baselines = sum(1 for r in records.values() if r.origin == "baseline")
    confirms = [r for r in records.values() if r.origin == "confirm"]
    # the progress bar's and `optimize status`'s count: finished calls charged to the budget
    calls = f"{finished_calls(records.values())}" + (f" of a budget of {budget}" if budget else "") + " finished: " + \
        ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    if baselines:
        calls += f"; plus {baselines} baseline design{'s' if baselines > 1 else ''}"
    if confirms:
        calls += f"; plus {len(confirms)} confirmation call(s) of {confirms[0].n_samples} particles (budget.confirm)"
    if study.budget.screen is not None:
        promoted = sum(1 for r in records.values() if r.origin == "promote")
        calls += (f"; new designs screened with {study.budget.screen.samples} particles, {promoted} of them topped up "
                  f"to {study.simulator.samples_per_call} (budget.screen)")
    if study.budget.particles is not None:
        from optimizer.fidelity import issued_particles

        calls += f"; {issued_particles(records.values()):,} of {study.budget.particles:,} particles (budget.particles)"
    if not any(r.status == "completed" for r in records.values()):
        calls += "; no completed calls, so the figures are empty"
    _, wall = spend_trace(records)
    facts = {"strategy": study.strategy.name, "simulator": f"{study.simulator.name} "
             f"({study.simulator.samples_per_call} samples per call)", "calls": calls,
             "compute spent": f"{sum(compute_hours(r) for r in records.values()):.3g} device-hours as recorded, "
             f"{wall[-1] * 60 if len(wall) else 0:.3g} min of wall clock"}
    if len(study.objectives) == 1:
        for name, b in best_so_far(study, records.values()).items():
            if b is None:
                facts[f"best {name}"] = "no feasible completed call yet"
                continue
            r = records[b[1]]
            sem = r.sems.get(name)
            err = f" ± {sem:.2g}" if sem is not None and sem == sem and sem > 0 else ""
            unit = f" {study.objectives[name].unit}" if study.objectives[name].unit else ""
            params = ", ".join(f"{p}={format_param(r.params.get(p), 4)}" for p in list(study.parameters)[:6])
            more = f", … ({len(study.parameters) - 6} more)" if len(study.parameters) > 6 else ""
            facts[f"best {name}"] = f"{b[0]:.6g}{err}{unit} at call {b[1]} ({params}{more})"
            facts.update(_recommended_fact(study, records, name, unit, root))
    else:
        from optimizer.pareto import format_hypervolume, hypervolume_summary, pareto_calls
        from optimizer.progress import format_front

        front = pareto_calls(study, records.values())
        facts["Pareto front"] = f"{len(front)} designs (calls {', '.join(map(str, front))})" if front else \
            "no feasible completed call yet"
        if front:
            facts["knee of the front"] = format_front(study, records).split("; knee at ", 1)[1]
        facts["hypervolume"] = "; ".join(line.strip() for line in format_hypervolume(study, hypervolume_summary(study, records)))
    if held:
        w = np.median([c.w1 for c in held])
        floor = np.median([c.w1_split for c in held])
        near = np.median([c.w1_nearest for c in held])
        facts["surrogate check"] = (f"{len(held)} calls left out of a refit: median W1 of {held[0].column} "
                                    f"{w:.3g} (split-half noise floor {floor:.3g}, nearest stored call {near:.3g})")
    return facts


def _recommended_fact(study: StudyConfig, records: dict[int, CallRecord], name: str, unit: str,
                      root: Path | None = None) -> dict[str, str]:
    """``recommended NAME``: the model's best evaluated design (:mod:`optimizer.recommend`), and its confirmation."""
    from optimizer.recommend import recommend, recommend_cached

    rec = recommend(study, records.values(), name) if root is None else recommend_cached(study, records.values(), root, name)
    if rec is None:
        return {}
    params = ", ".join(f"{p}={format_param(rec.params.get(p), 4)}" for p in list(study.parameters)[:6])
    more = f", … ({len(study.parameters) - 6} more)" if len(study.parameters) > 6 else ""
    why = f"; {rec.reason}" if rec.reason else ""
    out = {f"recommended {name}": f"{rec.mean:.6g} ± {rec.std:.2g}{unit} at call {rec.call} ({rec.method}{why}; "
                                  f"observed {rec.observed:.6g} ± {rec.observed_sem:.2g}; {params}{more})"}
    if rec.confirmation:
        c = rec.confirmation
        out[f"confirmed {name}"] = (f"{c['value']:.6g} ± {c['sem']:.2g}{unit} from {len(c['calls'])} confirmation "
                                    f"call(s) of call {rec.call}, {c['particles']} particles")
    return out


#: Strategies whose campaigns get the surrogate figures by default: the report's WU-GO model is theirs (for the
#: others it is fitted for the report, minutes on a large campaign, so it is drawn on request).
SURROGATE_BY_DEFAULT = frozenset({"wugo"})


def write_report(campaign: CampaignView, out: Path, ext: str = "png", surrogate: bool | None = True) -> tuple[list[Path], dict[str, str]]:
    """Every figure of a campaign plus ``report.html``; returns the paths and the text summary.

    ``surrogate=False`` skips the surrogate figures (they refit a model: seconds to minutes); ``None`` draws
    them for WU-GO campaigns only, and says so in the summary for the others.
    """
    from optimizer.diagnostics import held_out, report_model

    study, records = campaign.study(), campaign.records()
    skipped = surrogate is None and study.strategy.name not in SURROGATE_BY_DEFAULT
    if surrogate is None:
        surrogate = not skipped
    paths = [convergence_plot(study, records, out / f"convergence.{ext}")]
    if len(study.objectives) > 1:
        paths += [pareto_plot(study, records, out / f"pareto.{ext}"), hypervolume_plot(study, records, out / f"hypervolume.{ext}")]
    paths += [cost_plot(study, records, out / f"cost.{ext}"), timeline_plot(records, out / f"timeline.{ext}"),
              parallel_coordinates_plot(study, records, out / f"parameters.{ext}")]
    from optimizer.importance import parameter_importances

    imp = parameter_importances(study, records)
    if imp is not None:
        paths.append(importance_plot(study, imp, out / f"importance.{ext}"))
    held: list[Any] = []
    if surrogate:
        model = report_model(study, records, campaign.storage)
        if model is not None:
            if model.space.dim <= 2:
                paths.append(surrogate_plot(study, model, out / f"surrogate.{ext}"))
            held = held_out(model, study)
            if held:
                paths.append(holdout_plot(study, held, out / f"surrogate_check.{ext}"))
    facts = summary_facts(study, records, campaign.meta().get("budget_calls"), held, campaign.root)
    if surrogate:
        from optimizer.diagnostics import unavailable_offline

        reason = unavailable_offline(study, campaign.root)
        if reason:
            facts["surrogate views"] = f"not drawn: {reason}"
    if imp is not None:
        for name, v in imp.values.items():
            top = np.argsort(-v)[:5]
            facts[f"most important parameters for {name}"] = ", ".join(f"{imp.parameters[i]} {v[i]:.0%}" for i in top)
    if skipped:
        facts["surrogate check"] = (f"off for a {study.strategy.name} campaign (it fits a WU-GO surrogate for the "
                                    "report); `optimize report --surrogate` draws it")
    paths.append(html_report(study, records, paths, out / "report.html", facts))
    return paths, facts
