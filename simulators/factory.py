"""Build the simulator a study names, from its name and options.

The one place a simulator is constructed: the driver builds one per run and hands it to whoever
needs its outputs or quantities, and each worker builds one per process from the same
``(name, options, outputs)`` the executor ships (:func:`cached_simulator`). Only the optimiser's
bottom layer (registry, errors) is imported here, so a worker pays for neither the study schema
nor torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from optimizer.errors import DetoptError, StudyError
from optimizer.registry import import_object
from simulators import SIMULATORS
from simulators.base import FunctionSimulator, Simulator, SimulatorOptionError

#: Output name of a ``module:function`` simulator whose study names none (one column).
DEFAULT_FUNCTION_OUTPUTS = ("y",)


def build_simulator(name: str, options: Mapping[str, Any], source: str = "<study>",
                    outputs: Sequence[str] | None = None) -> Simulator:
    """Instantiate the simulator ``name`` with the keyword arguments ``options``.

    Args:
        name: a name registered in :data:`simulators.SIMULATORS`, or ``module:attr`` naming a
            :class:`~simulators.base.Simulator` subclass or a plain function ``fn(params, n, seed, **options)``
            (its signature is checked here).
        options: the study's ``simulator.options``, passed as keyword arguments.
        source: the study file, for error messages.
        outputs: the study's ``simulator.outputs``: output names of a ``module:function`` simulator
            (``("y",)`` when ``None``); any other simulator declares its own and refuses these.

    Raises:
        StudyError: unknown name, failed import, wrong signature or bad options, naming the study field.
    """
    opts = dict(options)
    cls: type[Simulator]
    if ":" in name:
        try:
            target = import_object(name)
        except DetoptError as err:
            raise StudyError(source, "simulator.name", str(err)) from None
        if isinstance(target, type) and issubclass(target, Simulator):
            cls = target
        elif callable(target) and not isinstance(target, type):
            try:
                return FunctionSimulator(target, outputs=tuple(outputs or DEFAULT_FUNCTION_OUTPUTS), **opts)
            except SimulatorOptionError as err:
                raise StudyError(source, err.field, err.message) from None
        else:
            raise StudyError(source, "simulator.name", f"'{name}' is neither a Simulator class nor a function")
    else:
        try:
            cls = SIMULATORS.get(name)
        except KeyError as err:
            raise StudyError(source, "simulator.name", err.args[0]) from None
    if outputs is not None:
        raise StudyError(source, "simulator.outputs", "only a module:function simulator takes outputs")
    try:
        return cls(**opts)
    except SimulatorOptionError as err:
        raise StudyError(source, err.field, err.message) from None
    except (TypeError, ValueError) as err:
        raise StudyError(source, "simulator.options", f"{name}: {_first_line(err)}") from None
    except Exception as err:  # noqa: BLE001 - a simulator's constructor failed on its options: one line
        raise StudyError(source, "simulator.options", f"{name}: {type(err).__name__}: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


class SimulatorArgs(NamedTuple):
    """The arguments of :func:`build_simulator` as an executor ships them to its workers (picklable).

    The study's own ``simulator.name``, ``simulator.options`` and ``simulator.outputs``, unchanged:
    the worker builds its simulator from exactly what the driver built its own from.
    """

    name: str
    options: Mapping[str, Any]
    outputs: tuple[str, ...] | None = None

    def build(self, source: str = "<study>") -> Simulator:
        """:func:`build_simulator` with these arguments."""
        return build_simulator(self.name, self.options, source, self.outputs)


_CACHE: dict[str, Simulator] = {}


def cached_simulator(args: SimulatorArgs) -> Simulator:
    """``args.build()``, once per process and distinct ``args`` (a worker builds geometry and tables once)."""
    key = repr((args.name, sorted(dict(args.options).items()), args.outputs))
    if key not in _CACHE:
        _CACHE[key] = args.build()
    return _CACHE[key]
