"""The study YAML: schema, validation with field-path errors, and loading.

A study is validated by pydantic v2 with unknown keys rejected. Every error
names the YAML path (``parameters.x1.high``) and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from optimizer.errors import StudyError
from optimizer.executors import EXECUTORS

#: Names of the study, its parameters, objectives, constraints and outputs (matched whole, never with ``$``,
#: which would accept a trailing newline).
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
#: Names become directory names (``runs/NAME``), environment variables and table headers; file systems
#: refuse names over 255 bytes, and 64 characters keep tables readable.
MAX_NAME_LENGTH = 64
#: Largest magnitude of a parameter bound: ``high - low`` and the unit-cube mapping stay finite in float64.
MAX_ABS_BOUND = 1e300
#: Smallest ``low`` of a log-scaled parameter: its logarithm stays a normal float64.
MIN_LOG_LOW = 1e-300
#: Largest magnitude of an integer parameter's bounds: float64 holds every integer up to 2**53 exactly.
MAX_INTEGER_BOUND = 2.0**53
#: Deepest nesting of a study file; a study needs a handful of levels, and deeper YAML would exhaust
#: the parser's recursion long before it meant anything.
MAX_YAML_DEPTH = 64
#: Most values a study may hold once YAML aliases are expanded: ten aliases of ten aliases of ... would
#: otherwise grow to billions of values when the study is hashed or written.
MAX_YAML_NODES = 1_000_000
#: Largest study file read: a study is written by hand, and a device such as /dev/zero would never end.
MAX_STUDY_BYTES = 10 * 2**20


def check_name(name: Any, what: str = "name") -> str:
    """Refuse anything but a short identifier (letters, digits, ``_ . -``; not starting with a digit)."""
    if not isinstance(name, str) or not _IDENT.fullmatch(name):
        raise ValueError(f"{_short(name)} is not a valid {what} (letters, digits, _ . -; not starting with a digit)")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"{_short(name)} is not a valid {what}: longer than {MAX_NAME_LENGTH} characters")
    return name


def _short(value: Any, limit: int = 40) -> str:
    """``repr`` of a user value cut to ``limit`` characters, so an error stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Strict(BaseModel):
    # strict: no bool or string where a number is expected; no NaN or infinity anywhere in a study
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


#: A categorical parameter's value as the study writes it: a name (``Pb``) or a number.
Choice = str | int | float
#: A parameter's value in a call's ``params``: ``None`` where a conditional parameter is inactive.
ParamValue = Choice | None
#: Most choices of one categorical parameter: each owns a bin of one unit-cube coordinate, and a bin narrower
#: than 1/256 would leave a strategy's steps (CMA-ES margins, GP length scales) nothing to resolve.
MAX_CHOICES = 256
#: Strings the journal writes for non-finite floats (see ``optimizer.storage``): as names they would read back as numbers.
RESERVED_CHOICES = ("NaN", "Infinity", "-Infinity")


class Parameter(_Strict):
    """One design parameter: a range (``low``/``high``, optionally ``log`` or ``integer``) in physical units,
    or a categorical one (``choices``). ``when: {parent: [values]}`` makes it conditional: active only while
    every named categorical parent is active and takes one of those values; an inactive parameter is not sent
    to the simulator and is recorded as ``null``."""

    low: float | None = None
    high: float | None = None
    choices: list[Choice] | None = None
    when: dict[str, list[Choice]] | None = None
    unit: str = ""
    log: bool = False
    integer: bool = False
    description: str = ""

    @field_validator("low", "high")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is None:
            return v
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        if abs(v) > MAX_ABS_BOUND:
            raise ValueError(f"{v:g} is beyond the largest bound detopt handles (±{MAX_ABS_BOUND:g})")
        return v

    @field_validator("choices", mode="before")
    @classmethod
    def _choice_values(cls, v: Any) -> Any:
        _check_choice_values(v, ())
        return v

    @field_validator("when", mode="before")
    @classmethod
    def _when_lists(cls, v: Any) -> Any:
        # `when: {active: scintillator}` is short for `when: {active: [scintillator]}`
        if isinstance(v, dict):
            v = {k: (x if isinstance(x, list) else [x]) for k, x in v.items()}
            for k, x in v.items():
                _check_choice_values(x, (k,))
        return v

    @model_validator(mode="after")
    def _check(self) -> Parameter:
        if self.choices is not None:
            return self._check_choices()
        if self.low is None or self.high is None:
            missing = "low" if self.low is None else "high"
            raise _PathError((missing,), "required but missing (or give choices: [...] for a categorical parameter)")
        if self.low >= self.high:
            raise _PathError(("high",), f"must be greater than low ({self.high:g} <= {self.low:g})")
        if self.log and self.low <= 0:
            raise _PathError(("low",), f"a log-scaled parameter needs low > 0 (got {self.low:g})")
        if self.log and self.low < MIN_LOG_LOW:
            raise _PathError(("low",), f"a log-scaled parameter needs low >= {MIN_LOG_LOW:g} (got {self.low:g})")
        if self.integer:
            for key in ("low", "high"):
                if abs(getattr(self, key)) > MAX_INTEGER_BOUND:
                    raise _PathError((key,), f"an integer parameter's bounds must lie within ±2**53 (got {getattr(self, key):g})")
        if self.integer and math.ceil(self.low) > math.floor(self.high):
            raise ValueError(f"no integer lies in [{self.low:g}, {self.high:g}]")
        return self

    def _check_choices(self) -> Parameter:
        choices = self.choices or []
        for key, unset in (("low", None), ("high", None), ("log", False), ("integer", False)):
            if getattr(self, key) is not unset:
                raise _PathError((key,), "a categorical parameter (choices) takes no low, high, log or integer")
        if not choices:
            raise _PathError(("choices",), "needs at least one choice")
        if len(choices) > MAX_CHOICES:
            raise _PathError(("choices",), f"{len(choices)} choices; at most {MAX_CHOICES}")
        kinds = {isinstance(c, str) for c in choices}
        if len(kinds) > 1:
            raise _PathError(("choices",), "mixes names and numbers; give all as names (quoted) or all as numbers")
        for i, c in enumerate(choices):
            if isinstance(c, str) and (not c or any(ord(ch) < 32 or ord(ch) == 127 for ch in c)):
                raise _PathError(("choices", i), f"{_short(c)} must be non-empty one-line text")
            if isinstance(c, float) and not math.isfinite(c):
                raise _PathError(("choices", i), "must be a finite number")
            if c in RESERVED_CHOICES:
                raise _PathError(("choices", i), f"'{c}' is how the journal writes a non-finite number; choose another name")
            if choices.index(c) != i:  # 1 and 1.0 are the same choice too
                raise _PathError(("choices", i), f"{_short(c)} repeats choices[{choices.index(c)}]")
        return self

    @property
    def categorical(self) -> bool:
        """Whether the parameter picks one of ``choices`` (else it is a range ``[low, high]``)."""
        return self.choices is not None

    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` of a range parameter.

        Raises:
            ValueError: the parameter is categorical.
        """
        if self.low is None or self.high is None:
            raise ValueError("a categorical parameter has no bounds")
        return self.low, self.high

    def example(self) -> Choice:
        """A valid value: the first choice, or the lower bound (rounded up for an integer)."""
        if self.choices is not None:
            return self.choices[0]
        low = self.bounds()[0]
        return math.ceil(low) if self.integer else low

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not a value of this parameter (``None`` when it is)."""
        if self.choices is not None:
            if isinstance(value, bool) or value not in self.choices:
                return f"{_short(value)} is not one of the choices {_choices_text(self.choices)}"
            return None
        low, high = self.bounds()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{_short(value)} is not a number"
        if not low <= value <= high:
            return f"{value:g} lies outside [{low:g}, {high:g}]"
        return None


def _check_choice_values(values: Any, loc: tuple[Any, ...]) -> None:
    """Refuse what is neither a name nor a number before the union type, whose error would name a member
    type (``choices[0].str``) instead of the problem."""
    for i, c in enumerate(values) if isinstance(values, list) else ():
        if isinstance(c, bool) or not isinstance(c, (str, int, float)):
            raise _PathError((*loc, i), f"{_short(c)} is neither a name nor a number")


def _choices_text(choices: list[Choice]) -> str:
    """``Pb|W|Fe|Cu`` for a message, cut short when long."""
    text = "|".join(str(c) for c in choices)
    return text if len(text) <= 60 else text[:57] + "..."


def check_conditions(parameters: dict[str, Parameter]) -> None:
    """Refuse ``when`` conditions naming an unknown or non-categorical parent, a value it lacks, or a cycle.

    Raises:
        _PathError: at ``parameters.NAME.when.PARENT``.
    """
    for name, p in parameters.items():
        if p.when is not None and not p.when:
            raise _PathError(("parameters", name, "when"), "names no parent: give {parent: [values]}")
        for parent, values in (p.when or {}).items():
            where = ("parameters", name, "when", parent)
            if parent == name:
                raise _PathError(where, "a parameter cannot depend on itself")
            if parent not in parameters:
                raise _PathError(where, f"unknown parameter (parameters: {', '.join(parameters)})")
            choices = parameters[parent].choices
            if choices is None:
                raise _PathError(where, f"'{parent}' is not categorical (a condition needs a parameter with choices)")
            if not values:
                raise _PathError(where, f"needs at least one value of '{parent}'")
            for i, v in enumerate(values):
                if isinstance(v, bool) or v not in choices:
                    raise _PathError(where + (i,), f"{_short(v)} is not a choice of '{parent}' ({_choices_text(choices)})")
    for name in parameters:  # a chain of parents that comes back to where it started
        seen, todo = [name], list((parameters[name].when or {}))
        while todo:
            parent = todo.pop()
            if parent == name:
                raise _PathError(("parameters", name, "when"), "its conditions form a cycle through "
                                 + " -> ".join([*seen, name]))
            if parent not in seen:
                seen.append(parent)
                todo.extend(parameters[parent].when or {})


def is_active(parameters: dict[str, Parameter], name: str, values: dict[str, Any]) -> bool:
    """Whether parameter ``name`` is active given the (categorical) ``values`` of its parents."""
    p = parameters[name]
    return all(parent in values and values[parent] in allowed and is_active(parameters, parent, values)
               for parent, allowed in (p.when or {}).items())


Statistic = Literal["mean", "median", "std", "sum", "quantile", "fraction_above", "fraction_below", "quantity"]


class Metric(_Strict):
    """How a call's samples (or the simulator's deterministic quantities) reduce to one number.

    ``statistic: quantity`` reads the simulator's deterministic per-θ ``quantity``
    (cost, mass) instead of the samples. ``weight`` names an output column holding
    per-sample weights (e.g. muon weights) for mean/sum/fraction statistics.
    """

    output: str | None = None
    statistic: Statistic = "mean"
    q: float | None = Field(default=None, gt=0, lt=1)
    threshold: float | None = None
    quantity: str | None = None
    weight: str | None = None
    #: Unit shown beside the value on every axis, table and CLI line ("t", "m", "fraction of muons").
    unit: str = ""
    #: Human-readable name for axes and tables; the metric's key when empty.
    label: str = ""

    @model_validator(mode="before")
    @classmethod
    def _quantity_shorthand(cls, data: Any) -> Any:
        # `quantity: cost` alone means `statistic: quantity, quantity: cost`.
        if isinstance(data, dict) and data.get("quantity") is not None and "statistic" not in data:
            data = {**data, "statistic": "quantity"}
        return data

    @model_validator(mode="after")
    def _check(self) -> Metric:
        if self.statistic == "quantile" and self.q is None:
            raise ValueError("statistic 'quantile' needs q (between 0 and 1)")
        if self.statistic in ("fraction_above", "fraction_below") and self.threshold is None:
            raise ValueError(f"statistic '{self.statistic}' needs threshold")
        if self.statistic == "quantity":
            if not self.quantity:
                raise ValueError("statistic 'quantity' needs quantity: <name of a simulator quantity>")
            if self.output is not None or self.weight is not None:
                raise ValueError("a quantity metric takes no output or weight")
        elif self.quantity is not None:
            raise ValueError(f"quantity is only used with statistic 'quantity', not '{self.statistic}'")
        if self.q is not None and self.statistic != "quantile":
            raise _PathError(("q",), f"q is only used with statistic 'quantile', not '{self.statistic}'")
        if self.threshold is not None and self.statistic not in ("fraction_above", "fraction_below"):
            raise _PathError(("threshold",), f"threshold is only used with fraction_above/fraction_below, "
                                             f"not '{self.statistic}'")
        if self.weight is not None and self.statistic in ("median", "quantile", "std"):
            raise ValueError(f"weight is not supported with statistic '{self.statistic}'")
        return self


#: How an objective is optimised, as the study spells it.
Direction = Literal["minimize", "maximize"]
#: ``direction`` → its sign with "+1 = minimise": ``sign * value`` is lower-is-better. The only place a direction
#: becomes a number (tests/test_conventions.py greps for others), so the two conventions below cannot drift apart.
_MINIMISATION_SIGNS: dict[str, float] = {"minimize": 1.0, "maximize": -1.0}


def minimisation_sign(direction: str) -> float:
    """+1.0 for a minimised objective, -1.0 for a maximised one: ``sign * value`` is lower-is-better.

    Raises:
        ValueError: ``direction`` is neither ``"minimize"`` nor ``"maximize"``.
    """
    try:
        return _MINIMISATION_SIGNS[direction]
    except KeyError:
        raise ValueError(f"direction must be 'minimize' or 'maximize', not {direction!r}") from None


def maximisation_sign(direction: str) -> float:
    """+1.0 for a maximised objective, -1.0 for a minimised one: ``sign * value`` is larger-is-better (BoTorch)."""
    return -minimisation_sign(direction)


def is_minimised(direction: str) -> bool:
    """Whether lower values of an objective with this ``direction`` are better."""
    return minimisation_sign(direction) > 0


class Objective(Metric):
    """A metric to optimise: minimised or maximised (``direction``), with an optional hypervolume reference value."""

    direction: Direction = "minimize"
    #: Hypervolume reference value (the worst value still of interest); inferred from the data when absent.
    reference: float | None = None


class Constraint(Metric):
    """An outcome bound: ``lower <= metric <= upper`` (either bound may be absent)."""

    lower: float | None = None
    upper: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Constraint:
        if self.lower is None and self.upper is None:
            raise ValueError("a constraint needs lower and/or upper")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise _PathError(("upper",), f"{self.upper:g} is below lower ({self.lower:g})")
        return self


class SimulatorSpec(_Strict):
    """A registered simulator name, or ``module:function`` for a user function."""

    name: str = Field(min_length=1)
    samples_per_call: int = Field(default=1000, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)
    #: Output names, needed only for a ``module:function`` simulator with several outputs.
    outputs: list[str] | None = Field(default=None, min_length=1)

    @field_validator("outputs")
    @classmethod
    def _output_names(cls, v: list[str] | None) -> list[str] | None:
        for i, name in enumerate(v or []):
            try:
                check_name(name, "output name")
            except ValueError as err:
                raise _PathError((i,), str(err)) from None
        if v is not None and len(set(v)) != len(v):
            raise ValueError(f"output names repeat: {v}")
        return v


class StrategySpec(_Strict):
    """The study's ``strategy`` section: a name in :data:`optimizer.strategies.STRATEGIES`, its initial design and options."""

    name: str = "sobol"
    #: How the initial design is drawn: sobol, lhs, olhs (orthogonal LHS of strength 2 where it exists, else an
    #: optimised LHS) or random.
    initial_design: Literal["sobol", "lhs", "olhs", "random"] = "sobol"
    options: dict[str, Any] = Field(default_factory=dict)


#: Default particles of a confirmation call, as a multiple of ``samples_per_call``: its s.e. is ~1/√10 of a call's.
CONFIRM_FACTOR = 10


#: ASHA's usual reduction factor η = 3: a third of the screened designs get the full particles.
DEFAULT_PROMOTE = 1 / 3


class Screen(_Strict):
    """``budget.screen``: simulate new designs with ``samples`` particles, top the best ``promote`` fraction up to
    ``simulator.samples_per_call`` (asynchronous successive halving, :mod:`optimizer.fidelity`)."""

    samples: int = Field(ge=1, description="particles of a screening call (fewer than simulator.samples_per_call)")
    promote: float = Field(default=DEFAULT_PROMOTE, gt=0, le=1)


class Budget(_Strict):
    """The study's ``budget`` section: calls (initial design included), an optional particle cap, screening,
    and the optional confirmation calls after them."""

    calls: int = Field(ge=1, description="simulator calls, initial design included, baselines excluded")
    initial_design: int = Field(default=0, ge=0)
    #: Particles the charged calls may simulate in all (a call that would pass it is not issued); none: no cap.
    particles: int | None = Field(default=None, ge=1)
    #: Multi-fidelity: screen new designs with few particles and promote the best (see :class:`Screen`).
    screen: Screen | None = None
    #: Calls after the budget that re-simulate the recommended design (origin "confirm", not charged to ``calls``).
    confirm: int = Field(default=0, ge=0)
    #: Particles of each confirmation call; default: CONFIRM_FACTOR × ``simulator.samples_per_call``.
    confirm_samples: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> Budget:
        if self.initial_design > self.calls:
            raise _PathError(("initial_design",), f"{self.initial_design} exceeds calls ({self.calls})")
        if self.confirm_samples is not None and not self.confirm:
            raise _PathError(("confirm_samples",), "is only used with budget.confirm > 0")
        return self


#: Kinds of simulator failure a call may be re-run after (``execution.retry_on``).
RetryKind = Literal["transient", "error", "timeout", "invalid_output"]
#: ``invalid_output`` is left out: a seeded call that returned NaN or the wrong shape will do so again.
DEFAULT_RETRY_ON: tuple[RetryKind, ...] = ("transient", "error", "timeout")


class Execution(_Strict):
    #: A name in :data:`optimizer.executors.EXECUTORS`.
    """The study's ``execution`` section: where calls run (backend, Ray address), per-call resources, concurrency and retries."""

    backend: str = "ray"
    #: Existing Ray cluster (``auto``, ``host:port``, ``ray://…``); else ``RAY_ADDRESS``; else an embedded local Ray.
    address: str | None = None
    num_cpus: float = Field(default=1, ge=0)
    num_gpus: float = Field(default=0, ge=0)
    resources: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    #: Calls in flight at once; default: as many as the cluster's CPUs (or GPUs) allow.
    max_concurrent: int | None = Field(default=None, ge=1)
    #: Calls queued in Ray beyond the free slots, so a worker that frees starts the next call at once
    #: while the strategy proposes (each queued call is proposed with one result fewer). Used only when
    #: ``max_concurrent`` is not set, since Ray would otherwise start a queued call at once.
    queue_ahead: int = Field(default=1, ge=0)
    #: Re-runs of a call whose simulator failed with a kind listed in ``retry_on``.
    retries: int = Field(default=0, ge=0)
    #: Failure kinds that may go away on a re-run. ``invalid_output`` is left out by default: a seeded
    #: call that returned NaN or the wrong shape will do so again.
    retry_on: list[RetryKind] = Field(default_factory=lambda: list(DEFAULT_RETRY_ON))
    #: Seconds before a running call is cancelled and marked failed.
    timeout: float | None = Field(default=None, gt=0)

    @field_validator("backend")
    @classmethod
    def _registered(cls, v: str) -> str:
        if v not in EXECUTORS:
            raise ValueError(f"unknown executor {_short(v)}; known: {', '.join(EXECUTORS.names())}")
        return v


class Baseline(_Strict):
    """An expert's design, evaluated before the campaign and marked in results."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    params: dict[str, Choice | None]

    @field_validator("params", mode="before")
    @classmethod
    def _scalars(cls, v: Any) -> Any:
        # before the union type, whose error would name a member type (`x1.str`) instead of the problem
        for key, value in v.items() if isinstance(v, dict) else ():
            if isinstance(value, bool) or not isinstance(value, (str, int, float, type(None))):
                raise _PathError((key,), f"{_short(value)} is not a number or a choice")
        # numbers as floats, as before categorical parameters existed: the study's fingerprint is unchanged
        return {k: float(x) if isinstance(x, int) else x for k, x in v.items()} if isinstance(v, dict) else v

    @field_validator("name")
    @classmethod
    def _one_line(cls, v: str) -> str:
        if any(ord(c) < 32 or ord(c) == 127 for c in v):  # shown in tables and one-line messages
            raise ValueError(f"{_short(v)} must be one line of text, without control characters")
        return v


class StudyConfig(_Strict):
    """The whole study file."""

    name: str
    description: str = ""
    seed: int = Field(default=0, ge=0)
    parameters: dict[str, Parameter] = Field(min_length=1)
    simulator: SimulatorSpec
    objectives: dict[str, Objective] = Field(min_length=1)
    constraints: dict[str, Constraint] = Field(default_factory=dict)
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    budget: Budget
    execution: Execution = Field(default_factory=Execution)
    output: str | None = Field(default=None, min_length=1)
    baselines: list[Baseline] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _study_name(cls, v: str) -> str:
        return check_name(v, "study name")

    @field_validator("parameters", "objectives", "constraints", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        # before validation, so a bad key is named even when its value is bad too
        for key in v if isinstance(v, dict) else ():
            check_name(key)
        return v

    @model_validator(mode="after")
    def _cross(self) -> StudyConfig:
        check_conditions(self.parameters)
        clash = set(self.objectives) & set(self.constraints)
        if clash:
            raise ValueError(f"names used both as objective and constraint: {sorted(clash)}")
        screen = self.budget.screen
        if screen is not None and screen.samples >= self.simulator.samples_per_call:
            raise _PathError(("budget", "screen", "samples"), f"{screen.samples} must be below simulator.samples_per_call "
                             f"({self.simulator.samples_per_call}), the particles a promoted design gets in all")
        if screen is not None and len(self.objectives) > 1:
            raise _PathError(("budget", "screen"), f"ranks designs by one objective; the study has {len(self.objectives)}")
        if self.budget.confirm and len(self.objectives) > 1:
            raise _PathError(("budget", "confirm"), f"confirms the recommended design of one objective; "
                             f"the study has {len(self.objectives)} (a Pareto front has no single design)")
        names: dict[str, int] = {}
        for i, base in enumerate(self.baselines):
            # a resumed campaign knows which baselines ran by their names
            if names.setdefault(base.name, i) != i:
                raise _PathError(("baselines", i, "name"), f"'{base.name}' is also the name of baselines[{names[base.name]}]")
            # an inactive conditional parameter may be left out (or given as null)
            missing = {n for n in self.parameters if n not in base.params and is_active(self.parameters, n, base.params)}
            extra = set(base.params) - set(self.parameters)
            if missing or extra:
                raise _PathError(
                    ("baselines", i, "params"),
                    f"must set exactly the study's parameters; missing {sorted(missing)}, unknown {sorted(extra)}",
                )
            for pname, value in base.params.items():
                p = self.parameters[pname]
                if not is_active(self.parameters, pname, base.params):
                    if value is not None:
                        raise _PathError(("baselines", i, "params", pname),
                                         f"is inactive here (when: {p.when}); leave it out or give null")
                    continue
                problem = p.problem(value)
                if problem:
                    raise _PathError(("baselines", i, "params", pname), problem)
        return self

    @property
    def confirm_samples(self) -> int:
        """Particles of each ``budget.confirm`` call."""
        return self.budget.confirm_samples or CONFIRM_FACTOR * self.simulator.samples_per_call

    def fingerprint(self) -> str:
        """Hash of what defines the optimisation problem and its random streams.

        Excludes ``budget.calls`` (a campaign may be extended), ``execution``
        (a campaign may resume on another cluster), ``output`` and ``description``.
        """
        data = self.science_dict()
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def science_dict(self) -> dict[str, Any]:
        """The study as data without what leaves the problem unchanged (execution, output, description, budget sizes, labels).

        Two studies with the same science dict are the same optimisation problem: :meth:`fingerprint` hashes it,
        and a campaign refuses to resume under a study whose science dict differs.
        """
        data = self.model_dump(mode="json", exclude={"execution", "output", "description"})
        data["budget"].pop("calls"), data["budget"].pop("particles")  # sizes: a campaign may be extended
        if data["budget"]["screen"] is None:  # unset: the same problem as before screening existed
            data["budget"].pop("screen")
        # confirmation calls come after the optimisation and draw no strategy stream: like calls, not the problem
        data["budget"].pop("confirm"), data["budget"].pop("confirm_samples")
        for p in data["parameters"].values():  # keys a study leaves unset: the same problem as before they existed
            for key in ("low", "high", "choices", "when"):
                if p[key] is None:
                    p.pop(key)
        for group in ("objectives", "constraints"):  # unit and label only present results: same problem
            for metric in data[group].values():
                metric.pop("unit"), metric.pop("label")
        return data


class _PathError(ValueError):
    """A cross-field error that knows its own YAML path."""

    def __init__(self, loc: tuple[Any, ...], message: str) -> None:
        super().__init__(message)
        self.loc, self.message = loc, message


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _first_error(err: ValidationError) -> tuple[str, str]:
    first = err.errors(include_url=False)[0]
    loc = tuple(p for p in first["loc"] if p not in ("function-after", "function-before"))
    ctx_err = (first.get("ctx") or {}).get("error")
    if isinstance(ctx_err, _PathError):
        return _dotted(loc + ctx_err.loc), ctx_err.message
    msg = first["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "missing":
        msg = "required but missing"
    elif "input" in first and first["type"].endswith(("_type", "_parsing")):
        msg = f"{msg} (got {_short(first['input'])})"
    return _dotted(loc), _one_line(msg)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _StudyYAMLError(yaml.MarkedYAMLError):
    """A study-specific refusal found while reading the YAML (duplicate key, nesting too deep)."""


class StudyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys and deep nesting, and reads ``1e3`` as a number.

    PyYAML follows YAML 1.1, where a float needs a dot (``1e-3`` would be the string "1e-3"); a study
    is validated strictly, so exponents without a dot are read as YAML 1.2 does.
    """

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Compose one node, refusing nesting deeper than ``MAX_YAML_DEPTH`` (a deep document would exhaust the stack)."""
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _StudyYAMLError(problem=f"nested deeper than {MAX_YAML_DEPTH} levels",
                                      problem_mark=self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        """Compose the document, refusing one that expands to more than ``MAX_YAML_NODES`` values (alias bombs) or refers to itself."""
        node = super().compose_document()
        sizes: dict[int, int] = {}

        def size(n: Any) -> int:  # values after alias expansion; an aliased node is counted once per use
            if sizes.get(id(n)) == -1:
                raise _StudyYAMLError(problem="a YAML alias refers to the node that contains it",
                                      problem_mark=n.start_mark)
            if id(n) not in sizes:
                sizes[id(n)] = -1
                kids = n.value if isinstance(n.value, list) else []
                flat = [c for kid in kids for c in (kid if isinstance(kid, tuple) else (kid,))]
                sizes[id(n)] = 1 + sum(size(c) for c in flat)
            return sizes[id(n)]

        if node is not None and size(node) > MAX_YAML_NODES:
            raise _StudyYAMLError(problem=f"more than {MAX_YAML_NODES} values once aliases are expanded",
                                  problem_mark=node.start_mark)
        return node

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        """Build a mapping, refusing a key given twice (PyYAML keeps the last silently); ``<<`` merge keys may be overridden."""
        first: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` entries may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                prev = first.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key: the base class names it
                continue
            if prev is not key_node.start_mark:
                raise _StudyYAMLError(problem=f"duplicate key {_short(key)} (first given on line {prev.line + 1})",
                                      problem_mark=key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


StudyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def validate_study(data: Any, source: str = "<study>") -> StudyConfig:
    """Validate a parsed study mapping.

    Raises:
        StudyError: naming ``source``, the field path and the problem.
    """
    if data is None:
        raise StudyError(source, "", "the file is empty (a study is a YAML mapping of keys)")
    if not isinstance(data, dict):
        raise StudyError(source, "", f"a study must be a mapping of keys, got {type(data).__name__}")
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as err:
        field, msg = _first_error(err)
        raise StudyError(source, field, msg) from None


def load_study(path: str | Path) -> tuple[StudyConfig, str]:
    """Read and validate a study YAML file.

    Returns:
        The validated study and the file's text (kept verbatim in the campaign directory).

    Raises:
        StudyError: missing file, unparsable YAML (with line and column) or invalid study.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_STUDY_BYTES + 1)
    except FileNotFoundError:
        raise StudyError(str(path), "", "file not found") from None
    except IsADirectoryError:
        raise StudyError(str(path), "", "is a directory, not a study file") from None
    except OSError as err:
        raise StudyError(str(path), "", f"cannot read: {err.strerror or err}") from None
    if len(raw) > MAX_STUDY_BYTES:
        raise StudyError(str(path), "", f"larger than {MAX_STUDY_BYTES // 2**20} MiB: not a study file")
    if b"\0" in raw:
        raise StudyError(str(path), "", "a binary file, not a YAML study")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise StudyError(str(path), "", f"not UTF-8 text (byte {err.start})") from None
    try:
        data = yaml.load(text, Loader=StudyLoader)  # noqa: S506 - a SafeLoader subclass
    except _StudyYAMLError as err:
        raise StudyError(_where(path, err.problem_mark), "", str(err.problem)) from None
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise StudyError(_where(path, getattr(err, "problem_mark", None)), "", f"not valid YAML: {_one_line(problem)}") \
            from None
    except RecursionError:  # a construct the depth limit does not see; never a traceback
        raise StudyError(str(path), "", "nested too deeply") from None
    try:
        return validate_study(data, str(path)), text
    except RecursionError:
        raise StudyError(str(path), "", "nested too deeply") from None


def _where(path: Path, mark: Any) -> str:
    return f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
