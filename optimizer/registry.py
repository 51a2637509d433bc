"""String registries so a study YAML can name simulators, strategies, executors...

Entries are ``"module:attribute"`` strings imported on first use, so registering
a heavy implementation (torch, Ray) costs nothing until a study asks for it.
Adding an implementation is one new file plus one line in the owning registry.
"""

from __future__ import annotations

import importlib
from typing import Any, Generic, TypeVar

from optimizer.errors import DetoptError

T = TypeVar("T")


def import_object(path: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise DetoptError(f"'{path}' is not of the form module:attribute")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise DetoptError(f"cannot import module '{module_name}' (from '{path}'): {_first_line(err)}") from None
    except (Exception, SystemExit) as err:  # noqa: BLE001 - the module's own code failed: one line, not a traceback
        raise DetoptError(
            f"importing module '{module_name}' (from '{path}') raised {type(err).__name__}: {_first_line(err)}") from None
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise DetoptError(f"module '{module_name}' has no attribute '{attr}'") from None
    return obj


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else ""


class Registry(Generic[T]):
    """Name → implementation, with lazy ``module:attr`` entries."""

    def __init__(self, kind: str, entries: dict[str, str | T] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, str | T] = dict(entries or {})

    def register(self, name: str, target: str | T) -> None:
        """Add ``name``; ``target`` is the object or its ``"module:attr"`` path."""
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._entries[name] = target

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> T:
        """Return the implementation registered as ``name``.

        Raises:
            KeyError: with the known names, when ``name`` is not registered.
        """
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} '{name}'; known: {', '.join(self.names())}")
        target = self._entries[name]
        if isinstance(target, str):
            target = import_object(target)
            self._entries[name] = target
        return target  # type: ignore[return-value]
