"""Executors a study can name under ``execution.backend``.

The executor types and helpers load on first use, so listing the names costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optimizer.registry import Registry, lazy_exports

if TYPE_CHECKING:
    from optimizer.executors.base import (
        CallOutcome, CallRequest, Executor, add_study_paths, simulator_args, execute_call,
    )

EXECUTORS: Registry[type[Executor]] = Registry(
    "executor",
    {
        "ray": "optimizer.executors.ray_backend:RayExecutor",
        "inline": "optimizer.executors.inline:InlineExecutor",
    },
)

__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(
    ("CallOutcome", "CallRequest", "Executor", "add_study_paths", "simulator_args", "execute_call"), "optimizer.executors.base"))

__all__ = ["EXECUTORS", "CallOutcome", "CallRequest", "Executor", "add_study_paths", "simulator_args", "execute_call"]
