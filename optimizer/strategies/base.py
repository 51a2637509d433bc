"""The Strategy protocol and the campaign history it proposes from.

A strategy works in the unit cube ``[0, 1]^d``. The campaign calls
:meth:`Strategy.tell` after each recorded result (model-based strategies refit
there) and :meth:`Strategy.ask` whenever workers are free, passing the points
still in flight as ``pending`` so a batch or an asynchronous proposal avoids them.
A strategy can be rebuilt from the journal alone: every input it needs is in
:class:`History`.
"""

from __future__ import annotations

import inspect
import typing
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol

import numpy as np
import pydantic
from scipy.stats import qmc

from optimizer.space import SearchSpace
from optimizer.study import StudyConfig, minimisation_sign

if TYPE_CHECKING:
    from simulators.base import Simulator


@dataclass
class History:
    """Completed calls of a campaign, as arrays.

    Attributes:
        theta: ``[N, d]`` unit-cube points of completed calls (baselines included).
        call_ids: ``[N]`` call ids.
        objectives: ``[N, m]`` objective values as measured (not sign-flipped).
        objective_sems: ``[N, m]`` standard errors of the objective values (NaN: unknown).
        constraints: ``[N, c]`` constraint metric values.
        feasible: ``[N]`` whether each call met every constraint.
        objective_names, directions: the study's objectives, ``"minimize"``/``"maximize"``.
        failed_theta: ``[F, d]`` points whose calls failed or were infeasible.
        n_issued: call ids issued by the initial design and the strategy (baselines excluded), pending included.
        constraint_sems: ``[N, c]`` standard errors of the constraint values (NaN: unknown).
    """

    theta: np.ndarray
    call_ids: np.ndarray
    objectives: np.ndarray
    objective_sems: np.ndarray
    constraints: np.ndarray
    feasible: np.ndarray
    objective_names: list[str]
    directions: list[str]
    failed_theta: np.ndarray
    n_issued: int
    constraint_sems: np.ndarray | None = None
    _load: Callable[[int], np.ndarray] | None = field(default=None, repr=False)
    _cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.theta.shape[0])

    def samples(self, i: int) -> np.ndarray:
        """Samples ``[n_i, k]`` of the ``i``-th completed call (loaded from storage once)."""
        if i not in self._cache:
            if self._load is None:
                raise RuntimeError("this history holds no samples")
            self._cache[i] = self._load(i)
        return self._cache[i]

    def minimization_targets(self) -> np.ndarray:
        """``[N, m]`` objectives with maximised ones negated, so lower is better everywhere."""
        sign = np.array([minimisation_sign(d) for d in self.directions])
        return self.objectives * sign


class OptionError(ValueError):
    """A strategy option is wrong, found when the study loads.

    Args:
        field: the option's study path, e.g. ``strategy.options.kappa``.
        message: what is wrong, one line.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


#: Options are checked strictly: no bool or string where a number is expected, no NaN or infinity.
_OPTIONS_CONFIG = pydantic.ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, arbitrary_types_allowed=True)


def options_model(fn: Callable[..., Any], skip: Sequence[str],
                  constraints: Mapping[str, Mapping[str, Any]] | None = None) -> type[pydantic.BaseModel]:
    """A pydantic model of the keyword arguments of ``fn`` after ``skip``, typed by its annotations.

    ``constraints`` adds ``pydantic.Field`` bounds per argument (``{"beta": {"ge": 0}}``). A ``**kwargs``
    argument lets other keys through (the function checks those itself).
    """
    hints = typing.get_type_hints(fn)
    fields: dict[str, Any] = {}
    extra = "forbid"
    for name, p in inspect.signature(fn).parameters.items():
        if name in skip or name == "self" or p.kind == p.VAR_POSITIONAL:
            continue
        if p.kind == p.VAR_KEYWORD:
            extra = "allow"
            continue
        ann = hints.get(name, Any)
        bounds = dict((constraints or {}).get(name, {}))
        default = ... if p.default is p.empty else p.default
        fields[name] = (Annotated[ann, pydantic.Field(**bounds)] if bounds else ann, default)
    config = pydantic.ConfigDict(**{**_OPTIONS_CONFIG, "extra": extra})  # type: ignore[typeddict-item]
    return pydantic.create_model(f"{getattr(fn, '__qualname__', 'fn')}Options", __config__=config, **fields)


def check_options(model: type[pydantic.BaseModel], options: Mapping[str, Any], prefix: str) -> None:
    """Validate ``options`` against ``model``.

    Raises:
        OptionError: naming ``prefix.key`` and the problem (the first one found).
    """
    if not isinstance(options, Mapping):
        raise OptionError(prefix, f"must be a mapping, got {type(options).__name__}")
    try:
        model.model_validate(dict(options))
    except pydantic.ValidationError as err:
        first = err.errors(include_url=False)[0]
        loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in first["loc"]).replace(".[", "[")
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            known = [k for k in model.model_fields]
            msg = f"unknown option; known: {', '.join(known) or 'none'}"
        elif first["type"] == "missing":
            msg = "required but missing"
        elif "input" in first:
            got = repr(first["input"])
            msg = f"{msg} (got {got if len(got) <= 40 else got[:37] + '...'})"
        raise OptionError(f"{prefix}.{loc}" if loc else prefix, " ".join(msg.split())) from None


class FeasibilityOracle(Protocol):
    """Exact, cheap feasibility of unit-cube points (the study's ``quantity`` constraints).

    ``__call__(u)``: ``u [b, d]`` unit-cube points → ``[b]`` bool, ``True`` where every quantity
    constraint holds. Computed without simulating, so strategies propose only points where it is ``True``.
    """

    def __call__(self, u: np.ndarray) -> np.ndarray: ...


def all_feasible(u: np.ndarray) -> np.ndarray:
    """The default oracle: every point is feasible. ``u [b, d]`` → ``[b]`` bool."""
    return np.ones(np.asarray(u).shape[0], dtype=bool)


#: Sobol points scanned for feasible ones before a region is declared empty (0.2 % feasible,
#: the easy SHiP shield's uniform rate, gives ~200 feasible points in this many).
MAX_FEASIBLE_SCAN = 100_000
_SCAN_CHUNK = 1024


class EmptyFeasibleRegion(ValueError):
    """No scanned point satisfies the quantity constraints."""


class FeasibleSobol:
    """The feasible subsequence of one scrambled Sobol sequence, scanned lazily and cached.

    ``points(start, n)`` are feasible points number ``start … start+n-1``: without constraints exactly
    :func:`sobol_points`, so the initial design and the Sobol strategy continue each other either way.
    """

    def __init__(self, dim: int, seed: int, oracle: FeasibilityOracle) -> None:
        self.dim, self.seed, self.oracle = dim, seed, oracle
        self._found: list[np.ndarray] = []
        self._scanned = 0

    def points(self, start: int, n: int) -> np.ndarray:
        """``[n, d]`` feasible points; raises :class:`EmptyFeasibleRegion` when the scan cap is reached."""
        while len(self._found) < start + n:
            if self._scanned >= MAX_FEASIBLE_SCAN:
                raise EmptyFeasibleRegion(f"only {len(self._found)} of {self._scanned} Sobol points satisfy the quantity constraints")
            chunk = sobol_points(self.dim, self.seed, self._scanned, _SCAN_CHUNK)
            self._scanned += _SCAN_CHUNK
            self._found.extend(chunk[np.asarray(self.oracle(chunk), dtype=bool)])
        return np.array(self._found[start : start + n]).reshape(n, self.dim)


class Strategy(ABC):
    """Proposes the next designs.

    Subclasses take their study options as keyword arguments in ``__init__``
    (after ``space``, ``study`` and ``seed``), and must give the same proposals
    for the same history, pending points and seed (campaigns resume from the journal).
    """

    #: Wait until every initial-design call has finished before the first ``ask`` (model-based strategies).
    needs_initial_results: bool = False
    #: ``pydantic.Field`` bounds of ``__init__`` options, e.g. ``{"beta": {"ge": 0}}``.
    option_bounds: ClassVar[dict[str, dict[str, Any]]] = {}

    #: The study's quantity constraints (:meth:`set_feasibility`); every point is feasible until one is given.
    feasible: FeasibilityOracle = staticmethod(all_feasible)
    _sobol: FeasibleSobol | None = None
    #: The study's simulator, built once by the driver (:meth:`set_simulator`); ``None`` until given.
    simulator: Simulator | None = None
    #: whether :meth:`tell` should still run after each initial-design call. False where a fit is wasted
    #: until the strategy can propose (GP-BO refits from scratch); WU-GO's warm-started surrogate keeps
    #: the training those early fits give it.
    refit_during_initial_design: bool = True

    def __init__(self, space: SearchSpace, study: StudyConfig, seed: int) -> None:
        self.space, self.study, self.seed = space, study, seed

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Refuse a misspelt option or a value of the wrong type or range, before anything runs.

        The default checks ``options`` against the annotated keyword arguments of ``__init__``
        and :attr:`option_bounds`.

        Raises:
            OptionError: naming ``strategy.options.<key>``.
        """
        check_options(options_model(cls.__init__, ("space", "study", "seed"), cls.option_bounds), options,
                      "strategy.options")


    def set_feasibility(self, oracle: FeasibilityOracle) -> None:
        """Give the study's exact quantity constraints: from now on propose only points ``oracle`` accepts."""
        self.feasible = oracle
        self._sobol = None

    def set_simulator(self, sim: Simulator) -> None:
        """Give the study's simulator (the driver's one instance), for its output names and exact quantities."""
        self.simulator = sim

    def feasible_sobol(self, start: int, n: int) -> np.ndarray:
        """``[n, d]`` feasible Sobol points number ``start …`` (the space-filling fallback of every strategy)."""
        if self._sobol is None:
            self._sobol = FeasibleSobol(self.space.dim, self.seed, self.feasible)
        return self._sobol.points(start, n)

    def choice(self) -> tuple[str, str] | None:
        """``(strategy, reason)`` when this strategy delegates to one it chose from the study (``auto``)."""
        return None

    def tell(self, history: History) -> None:
        """New results were recorded; refit models here."""

    def state_dict(self) -> dict[str, Any] | None:
        """Fitted state worth saving with the campaign (``None``: nothing to save)."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the next :meth:`tell` sees the same history it was fitted on."""

    @abstractmethod
    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        """Propose up to ``n`` new points.

        Args:
            history: every completed call so far.
            pending: ``[P, d]`` unit-cube points in flight.
            n: how many workers are free.

        Returns:
            ``[n', d]`` unit-cube points, ``n' <= n``; ``n' == 0`` means the strategy has nothing more to propose.
        """


class InitialDesignFallbackWarning(UserWarning):
    """The initial design asked for could not be drawn for this size; a close substitute was used."""


def olhs_strength2_possible(n: int, dim: int) -> bool:
    """Whether an orthogonal-array LHS of strength 2 exists in scipy's construction: ``n = p²`` for a
    prime ``p`` and ``dim <= p + 1``."""
    p = int(round(np.sqrt(n)))
    return p >= 2 and p * p == n and all(p % q for q in range(2, int(np.sqrt(p)) + 1)) and dim <= p + 1


def initial_design(method: str, n: int, dim: int, seed: int) -> np.ndarray:
    """``[n, dim]`` space-filling unit-cube points.

    ``olhs`` is scipy's orthogonal Latin hypercube (strength 2), as in the WU-GO code, when it exists
    (``n = p²`` for a prime ``p``, ``dim <= p + 1``); for any other ``n`` and ``dim`` it is a Latin
    hypercube optimised for centred discrepancy, with an :class:`InitialDesignFallbackWarning`.
    Either way each coordinate has exactly one point in each of the ``n`` strata ``[i/n, (i+1)/n)``.
    """
    if n == 0:
        return np.zeros((0, dim))
    if method == "sobol":
        return sobol_points(dim, seed, start=0, n=n)
    if method == "lhs":
        return qmc.LatinHypercube(dim, rng=seed).random(n)
    if method == "olhs":
        if olhs_strength2_possible(n, dim):
            return qmc.LatinHypercube(dim, strength=2, rng=seed).random(n)
        warnings.warn(
            f"initial_design olhs: no strength-2 orthogonal LHS of {n} points in {dim}-D (it needs n = p² for a "
            f"prime p >= dim - 1); using a Latin hypercube optimised for centred discrepancy instead",
            InitialDesignFallbackWarning, stacklevel=2)
        return qmc.LatinHypercube(dim, optimization="random-cd", rng=seed).random(n)
    if method == "random":
        return np.random.default_rng(seed).random((n, dim))
    raise ValueError(f"unknown initial design '{method}'")


def sobol_points(dim: int, seed: int, start: int, n: int) -> np.ndarray:
    """Points ``start … start+n-1`` of the scrambled Sobol sequence seeded by ``seed``."""
    engine = qmc.Sobol(dim, scramble=True, rng=seed)
    if start:
        engine.fast_forward(start)
    with warnings.catch_warnings():
        # Balance warnings for n not a power of 2 do not apply to a sequence consumed incrementally.
        warnings.simplefilter("ignore", UserWarning)
        return engine.random(n)


class SobolStrategy(Strategy):
    """Continues the scrambled Sobol sequence of the initial design: a space-filling baseline."""

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        """The next ``n`` feasible points of the initial design's Sobol sequence (``pending`` is already in it)."""
        return self.feasible_sobol(history.n_issued, n)


class RandomStrategy(Strategy):
    """Independent uniform points (seeded by the call index, so resumes reproduce them)."""

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        """``n`` uniform feasible points, from a stream seeded by the study seed and the calls issued."""
        rng = np.random.default_rng([self.seed, history.n_issued])
        out = np.zeros((0, self.space.dim))
        for _ in range(MAX_FEASIBLE_SCAN // _SCAN_CHUNK):  # rejection: draw more until n are feasible
            x = rng.random((_SCAN_CHUNK if self.feasible is not all_feasible else n, self.space.dim))
            out = np.vstack([out, x[np.asarray(self.feasible(x), dtype=bool)]])
            if len(out) >= n:
                return out[:n]
        raise EmptyFeasibleRegion(f"no uniform point of {MAX_FEASIBLE_SCAN} satisfies the quantity constraints")


class ListedStrategy(Strategy):
    """Evaluates user-listed designs in order, then stops.

    Options:
        designs: list of ``{parameter: value}`` mappings.
    """

    def __init__(self, space: SearchSpace, study: StudyConfig, seed: int, designs: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(space, study, seed)
        if not designs:
            raise OptionError("strategy.options.designs", "give at least one design")
        rows = []
        for i, d in enumerate(designs):
            # an inactive conditional parameter may be left out or given as null
            if not isinstance(d, dict) or not set(space.names) >= set(d) >= {n for n in space.names if not space.parameters[n].when}:
                raise OptionError(f"strategy.options.designs[{i}]", f"must set exactly the parameters {space.names}")
            for name, v in d.items():
                problem = None if v is None and space.parameters[name].when else space.parameters[name].problem(v)
                if problem:
                    raise OptionError(f"strategy.options.designs[{i}].{name}", problem)
            rows.append(space.to_unit(space.from_params(d)))
        self.designs = np.array(rows)
        self.offset = study.budget.initial_design

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        """The next ``n`` listed designs after those already issued (fewer, then none, once the list runs out)."""
        start = history.n_issued - self.offset
        return self.designs[start : start + n]
