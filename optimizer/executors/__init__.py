"""Executors a study can name under ``execution.backend``."""

from optimizer.executors.base import CallOutcome, CallRequest, Executor, add_study_paths, build_simulator, execute_call
from optimizer.registry import Registry

EXECUTORS: Registry[type[Executor]] = Registry(
    "executor",
    {
        "ray": "optimizer.executors.ray_backend:RayExecutor",
        "inline": "optimizer.executors.inline:InlineExecutor",
    },
)

__all__ = ["EXECUTORS", "CallOutcome", "CallRequest", "Executor", "add_study_paths", "build_simulator", "execute_call"]
