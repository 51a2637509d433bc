"""Campaign pictures, drawn from the campaign directory alone (running or interrupted campaigns too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from optimizer.results import best_trace, finished_in_order, spend_trace
from optimizer.storage import CallRecord
from optimizer.study import StudyConfig


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
    labels = [f"{p} [{study.parameters[p].unit}]" if study.parameters[p].unit else p for p in names]
    ax.set_xticks(range(len(names)), labels, rotation=60 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center",
                  fontsize=7 if len(names) > 12 else 9)
    ax.set_ylabel("position within bounds (0 = low, 1 = high)")
    ax.set_title(f"{study.name}: evaluated designs", loc="left")
    ax.grid(alpha=0.3)
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

    from optimizer.campaign import best_so_far

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
        f"<figcaption>{esc(f.stem)}</figcaption></figure>" for f in figures)
    facts = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in summary.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{esc(study.name)} — detopt report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}figure{{display:inline-block;margin:8px}}
img{{max-width:520px}}</style></head><body>
<h1>{esc(study.name)}</h1><p>{esc(study.description)}</p><ul>{facts}</ul>
<h2>Designs</h2><p>Objective changes in parentheses are relative to the first baseline.</p><table><tr><th>design</th>{head}</tr>{body}</table>
<h2>Figures</h2>{imgs}</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
