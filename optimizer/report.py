"""Campaign pictures, drawn from the campaign directory alone (running or interrupted campaigns too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optimizer.results import best_trace, finished_in_order
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


def _finite(v: float | None) -> float:
    return float(v) if v is not None and v == v else 0.0


def html_report(study: StudyConfig, records: dict[int, CallRecord], figures: list[Path], path: Path,
                summary: dict[str, object]) -> Path:
    """One self-contained HTML page: summary, the figures embedded as base64 PNG, best designs beside baselines."""
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
    rows += [(f"baseline {r.label}", r) for r in baselines]
    head = "".join(f"<th>{esc(p)}{' [' + esc(study.parameters[p].unit) + ']' if study.parameters[p].unit else ''}</th>"
                   for p in study.parameters)
    head += "".join(f"<th>{esc(o)}</th>" for o in study.objectives) + "".join(f"<th>{esc(c)}</th>" for c in study.constraints)
    body = ""
    for label, r in rows:
        cells = "".join(f"<td>{r.params[p]:.6g}</td>" for p in study.parameters)
        cells += "".join(f"<td>{r.metrics[m]:.6g}</td>" for m in [*study.objectives, *study.constraints])
        body += f"<tr><td>{esc(label)} (call {r.call_id})</td>{cells}</tr>"
    imgs = "".join(
        f'<figure><img alt="{esc(f.stem)}" src="data:image/png;base64,{base64.b64encode(f.read_bytes()).decode()}">'
        f"<figcaption>{esc(f.stem)}</figcaption></figure>" for f in figures)
    facts = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in summary.items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{esc(study.name)} — detopt report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}figure{{display:inline-block;margin:8px}}
img{{max-width:520px}}</style></head><body>
<h1>{esc(study.name)}</h1><p>{esc(study.description)}</p><ul>{facts}</ul>
<h2>Designs</h2><table><tr><th>design</th>{head}</tr>{body}</table>
<h2>Figures</h2>{imgs}</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
