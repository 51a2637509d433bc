"""Campaign pictures, drawn from the campaign directory alone (running or interrupted campaigns too)."""

from __future__ import annotations

from pathlib import Path

from optimizer.results import best_trace
from optimizer.storage import CallRecord
from optimizer.study import StudyConfig


def convergence_plot(study: StudyConfig, records: dict[int, CallRecord], path: Path) -> Path:
    """Best objective so far vs number of simulator calls, one panel per objective; baselines as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(study.objectives)
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        x, y = best_trace(study, records, name)
        ax.step(x, y, where="post", color="C0", label="best so far")
        finished = sorted(
            (r for r in records.values() if r.done and r.origin != "baseline"),
            key=lambda r: (r.finished_at or 0.0, r.call_id),
        )
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
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
