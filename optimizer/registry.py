"""String registries so a study YAML can name simulators, strategies, executors...

Entries are ``"module:attribute"`` strings imported on first use, so registering
a heavy implementation (torch, Ray) costs nothing until a study asks for it.
Adding an implementation is one new file plus one line in the owning registry.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
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


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """PEP 562 ``__getattr__`` and ``__dir__`` for a package whose public names load on first use.

    BoTorch's ``_LAZY_IMPORTS`` pattern: ``exports`` maps a public name to the module defining it, so
    ``import package`` costs only the package's own lines and ``from package import Name`` still works.
    Use as ``__getattr__, __dir__ = lazy_exports(__name__, {...})`` in the package's ``__init__``.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)  # later reads skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__


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
        """The registered names, sorted; imports nothing."""
        return sorted(self._entries)

    def source(self, name: str) -> str:
        """Where ``name`` is defined, ``"module:attr"``, without importing it."""
        target = self._entries[name]
        if isinstance(target, str):
            return target
        return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', repr(target))}"

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
        return target
