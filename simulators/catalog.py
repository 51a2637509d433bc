"""What a registered simulator takes and gives, for ``optimize list simulators -v``.

Reads the class (importing only its own module); a class that sets its parameters, outputs or
quantities when built is built once with no options, which is what a study without
``simulator.options`` gets. Nothing is simulated.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from simulators import SIMULATORS
from simulators.base import Simulator

#: The per-class attributes a study's names are checked against.
DECLARED = ("parameters", "outputs", "quantities")


@dataclass
class SimulatorInfo:
    """One simulator's description; ``None`` for what only its options decide."""

    name: str
    source: str
    summary: str
    parameters: tuple[str, ...] | None
    parameters_are_subset: bool
    outputs: tuple[str, ...] | None
    quantities: tuple[str, ...] | None
    options: list[str]
    note: str = ""

    def lines(self) -> list[str]:
        """The ``optimize list simulators NAME -v`` entry: name and source, summary, parameters, outputs, quantities, options."""
        def names(values: tuple[str, ...] | None, empty: str) -> str:
            if values is None:
                return "set by the options"
            return ", ".join(values) if values else empty

        params = names(self.parameters, "none")
        if self.parameters is not None and self.parameters_are_subset:
            params = f"any of {len(self.parameters)}: {params}"
        out = [f"{self.name}  ({self.source})"]
        out += [f"  {self.summary}"] if self.summary else []
        out += [f"  parameters: {params}", f"  outputs: {names(self.outputs, 'none')}",
                f"  quantities: {names(self.quantities, 'none')}",
                f"  options: {', '.join(self.options) or 'none'}"]
        out += [f"  ({self.note})"] if self.note else []
        return out


def _declared_by_class(cls: type, attr: str) -> bool:
    """Whether a subclass (not the base :class:`Simulator`) sets ``attr`` at class level."""
    return any(attr in vars(k) for k in cls.__mro__ if k is not Simulator and issubclass(k, Simulator))


def _options(cls: type) -> list[str]:
    try:
        sig = inspect.signature(cls)  # the constructor's, without self
    except (TypeError, ValueError):
        return []
    out = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out.append(f"{p.name} (required)" if p.default is p.empty else f"{p.name}={p.default!r}")
    return out


def _first_line(doc: str | None) -> str:
    doc = (doc or "").strip()
    return doc.splitlines()[0].rstrip() if doc else ""


def describe(name: str) -> SimulatorInfo:
    """Describe the simulator registered as ``name`` (imports only its module)."""
    cls = SIMULATORS.get(name)
    values = {a: getattr(cls, a) if _declared_by_class(cls, a) else None for a in DECLARED}
    note = ""
    if values["parameters"] is None or values["outputs"] is None:
        try:
            sim = cls()
        except Exception as err:  # noqa: BLE001 - a simulator that needs options cannot be shown without them
            note = f"needs options to say more: {type(err).__name__}: {err}"
        else:
            values = {a: v if v is not None else getattr(sim, a) for a, v in values.items()}
            note = "as built with no options"
    if values["quantities"] is None and not note.startswith("needs"):
        values["quantities"] = Simulator.quantities  # declared nowhere: the base class's (none)
    summary = _first_line(cls.__doc__)
    if not summary or summary.endswith(":"):  # a class docstring that opens with "Args:": the module says what it is
        summary = _first_line(inspect.getmodule(cls).__doc__) or summary
    as_tuple = {a: None if v is None else tuple(v) for a, v in values.items()}
    return SimulatorInfo(
        name=name, source=SIMULATORS.source(name), summary=summary,
        parameters=as_tuple["parameters"], parameters_are_subset=bool(getattr(cls, "parameters_are_subset", False)),
        outputs=as_tuple["outputs"], quantities=as_tuple["quantities"], options=_options(cls), note=note,
    )
