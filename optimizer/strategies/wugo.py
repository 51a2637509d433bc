"""WU-GO: global optimisation with a conditional generative surrogate and Wasserstein uncertainty.

Each proposal minimises the acquisition

    a(θ) = s · f̂(θ) − κ · σ_W(θ),    σ_W(θ) = min over stored calls μ of D(G(θ), μ)

where G is the surrogate, f̂ the study objective's statistic of G(θ)'s samples, s = ±1 its
direction and D a distance between output distributions (W1, W2 or energy; see
:mod:`optimizer.distances`). Ramazyan, Hushchyn, Derkach, ECAI 2024 (arXiv 2407.11917).

Beyond the published method:

* **Continuous refinement** (``acquisition: refine``, default): fresh Sobol candidates, then a
  shrinking local random search around the best candidates and the best observed designs, so
  that 8-D and 20-D problems can get near the optimum, which a fixed grid cannot.
* **Batch proposals and pending points**: a chosen (or in-flight) point's generated samples are
  added as a pseudo-observation, so σ_W collapses around it, and the next point is chosen again.
* **Common random numbers**: every candidate of one acquisition uses the same latent draws.
* **Epistemic uncertainty** (``uncertainty: ensemble | spread | both``; default ``nearest``, the published σ_W):
  the disagreement of a small ensemble of surrogates fitted on bootstrap resamples of the calls, which predicts
  the error of f̂ at new designs better than σ_W (``bench/wugo_calibration.py``).
* **Stopping** on a target value or a plateau of the observed best (never on the true optimum).

``preset: wugo-paper`` follows the public code: energy distance, κ = 2, a fixed 100 × 100
lattice in 2-D (10,201 Latin-hypercube points above), the paper's WGAN-GP training, 1000
generated samples per candidate. Known deviation: proposals never repeat an evaluated or
pending point (the original re-evaluates a re-proposed grid point).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

import numpy as np
import pydantic
import torch
from scipy.stats import qmc
from torch import Tensor

from optimizer.distances import DISTANCES, DistributionBank
from optimizer.fallbacks import SurrogateFitWarning
from optimizer.metrics import metric_on_samples, read_columns
from optimizer.space import SearchSpace, active_params
from optimizer.strategies.base import History, OptionError, Strategy, check_options, options_model, sobol_points
from optimizer.strategies.mixture import weighted_distance
from optimizer.study import StudyConfig, minimisation_sign

if TYPE_CHECKING:
    from simulators.base import Simulator
    from surrogates.base import Surrogate
    from surrogates.mdn import MDN

PRESETS: dict[str, dict[str, Any]] = {
    "default": dict(
        surrogate="mdn", surrogate_options={"refit_steps": 250}, distance="energy", kappa=2.0, acquisition="refine",
        candidates=2048, generated=256, top_k=8, radii=[0.1, 0.03, 0.01, 0.003], perturbations=64,
        common_random_numbers=True, kappa_scale="raw", uncertainty="nearest", polish=0, encoding="one_hot",
        outputs="used", correction="none", criterion="lcb",
    ),
    "wugo-paper": dict(
        surrogate="wgan", surrogate_options={"preset": "paper"}, distance="energy", kappa=2.0, acquisition="grid",
        candidates=10201, generated=1000, top_k=0, radii=[], perturbations=0, common_random_numbers=False,
        kappa_scale="raw", uncertainty="nearest", polish=0, encoding="bins", outputs="used", correction="none",
        criterion="lcb",
    ),
}
# Added to an infeasible candidate's acquisition, in units of the observed objective spread: far beyond any
# feasible (standardised) score, so feasibility always ranks first whatever the objective's scale.
INFEASIBLE_OFFSET = 1e6
#: Weight of the sum term of the augmented Chebyshev scalarisation ``max(w·z) + ρ·Σ w·z`` (several objectives): the
#: small sum term breaks ties between points of equal max, so the pick is Pareto-optimal, not only weakly.
CHEBYSHEV_RHO = 0.05
#: Floor of an objective's observed range when normalising it: equal values on every call divide by this, not 0.
SPREAD_FLOOR = 1e-12
#: Seed offset between the points of one ask: each point generates from its own stream (any stride would do;
#: this one keeps the seeded benchmark tables in docs/ reproducible).
POINT_SEED_STRIDE = 7
#: Bank keys of the points chosen earlier in the same ask are ``CHOSEN_KEY_BASE - j``; pending points use
#: ``-1 - j``, so the two never collide for fewer than 999 points in flight. Both are removed after the ask.
CHOSEN_KEY_BASE = -1000
#: Generator seeds are kept below 2³¹: a non-negative 32-bit int, which every seeding API accepts.
SEED_MODULUS = 2**31
#: Default ``min_distance``: a candidate this close (unit cube) to a taken point counts as re-evaluating it;
#: far above the round-off of a θ round trip through physical units, far below any useful step.
DEFAULT_MIN_DISTANCE = 1e-6
#: Default ``chunk``: candidates per surrogate batch, bounding memory to chunk × generated × k floats.
DEFAULT_CHUNK = 2048
#: Default ``members`` of ``uncertainty: ensemble``/``spread``/``both``, the primary surrogate included: 3 is the fewest whose
#: mean pairwise distance is not a single pair's noise, and costs two extra (warm) fits per call.
DEFAULT_MEMBERS = 3
#: Most ``members``: each one is a fit per call and a generation per scored candidate.
MAX_MEMBERS = 16
#: Seed offset between ensemble members (a prime, so member seeds never meet the point-seed stride's).
MEMBER_SEED_STRIDE = 7919
#: Default ``polish_starts``: the pool's best distinct points that the gradient polish starts from. The refine
#: pool's best points often sit in one basin; four starts cover the best and the runners-up at a few ms each.
DEFAULT_POLISH_STARTS = 4
#: Default ``polish_lr``: Adam's step in the unit cube. 25 steps can then travel ≈ 0.25 per coordinate, past the
#: local search's largest radius (0.1), and the step shrinks as Adam's moments settle near a minimum.
DEFAULT_POLISH_LR = 0.01
#: Fewest calls the residual GP of ``correction: gp`` is fitted on: below this a GP's length scales are not
#: identified, and the initial design's f̂ is left as the surrogate gives it.
MIN_CORRECTION_CALLS = 4
#: Candidates per batch of the residual GP's posterior mean (its memory is batch × N floats).
CORRECTION_CHUNK = 4096
#: ``criterion: ei``: the largest −log EI a feasible candidate scores, far below :data:`INFEASIBLE_OFFSET` so any
#: feasible point still ranks before every infeasible one (−log EI ≈ u²/2 passes it ≈ 450 posterior sds short of
#: improving, where all candidates are equally hopeless).
EI_SCORE_CAP = 1e5
#: Posterior sd under which EI treats a point as known (a pending or evaluated design's believer-collapsed sd).
EI_MIN_SD = 1e-12
#: Beyond this |u| the tail factor 1 − |u|·M(|u|) of log EI is its asymptote 1/u² (relative error < 3/u² < 1e-6),
#: before round-off in the difference dominates.
EI_ASYMPTOTIC_T = 1e3


class WUGOOptions(pydantic.BaseModel):
    """Types and ranges of the study's ``strategy.options`` for WU-GO (absent: the preset's value)."""

    model_config = pydantic.ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)

    preset: Literal[tuple(PRESETS)] = "default"  # type: ignore[valid-type]
    surrogate: str | None = None
    surrogate_options: dict[str, Any] | None = None
    distance: Literal[DISTANCES] | None = None  # type: ignore[valid-type]
    kappa: Annotated[float, pydantic.Field(ge=0)] | None = None
    kappa_scale: Literal["raw", "standardised"] | None = None
    acquisition: Literal["grid", "refine"] | None = None
    candidates: Annotated[int, pydantic.Field(ge=1)] | None = None
    generated: Annotated[int, pydantic.Field(ge=1)] | None = None
    top_k: Annotated[int, pydantic.Field(ge=0)] | None = None
    radii: list[Annotated[float, pydantic.Field(gt=0)]] | None = None
    perturbations: Annotated[int, pydantic.Field(ge=0)] | None = None
    common_random_numbers: bool | None = None
    objective: str | None = None
    objectives: Annotated[list[str], pydantic.Field(min_length=1)] | None = None
    target: float | None = None
    plateau: Annotated[int, pydantic.Field(ge=1)] | None = None
    plateau_tol: Annotated[float, pydantic.Field(ge=0)] | None = None
    min_distance: Annotated[float, pydantic.Field(ge=0)] | None = None
    chunk: Annotated[int, pydantic.Field(ge=1)] | None = None
    projections: Annotated[int, pydantic.Field(ge=1)] | None = None
    uncertainty: Literal["nearest", "ensemble", "spread", "both", "residual"] | None = None
    members: Annotated[int, pydantic.Field(ge=2, le=MAX_MEMBERS)] | None = None
    ensemble_resample: Literal["bootstrap", "seeds"] | None = None
    polish: Annotated[int, pydantic.Field(ge=0)] | None = None
    polish_starts: Annotated[int, pydantic.Field(ge=1)] | None = None
    polish_lr: Annotated[float, pydantic.Field(gt=0)] | None = None
    encoding: Literal["bins", "one_hot"] | None = None
    outputs: Literal["used", "all"] | None = None
    correction: Literal["none", "gp"] | None = None
    criterion: Literal["lcb", "ei"] | None = None


OPTIONS = set(WUGOOptions.model_fields) - {"preset"}


class WUGOStrategy(Strategy):
    """Options (study ``strategy.options``): ``preset`` and any key of :data:`PRESETS` to override it,
    plus ``objective`` (default: the first), ``target``, ``plateau`` (calls), ``plateau_tol``,
    ``min_distance`` (unit-cube distance under which a point counts as already evaluated), ``projections``
    (random directions of the sliced distance for k > 1 outputs; default 4·k, at most 32).

    ``kappa_scale``: ``raw`` (published) weighs σ_W in the objective's units, so κ's meaning depends on the
    distance and the simulator's units; ``standardised`` divides f̂ by the observed objective spread (std over
    calls) and σ_W by its median over the ask's Sobol candidates, so κ = 1 trades one observed standard deviation
    of the objective for one typical distance to the nearest stored call.

    ``uncertainty``: ``nearest`` (published) takes σ_W, the distance to the nearest stored call's outputs. It is
    small wherever the model reproduces a call, and large wherever the response changes quickly, whether or not the
    model is unsure there. ``ensemble`` takes the epistemic term σ_E(θ) instead: the mean pairwise distance (the
    same distance D) between the outputs at θ of ``members`` surrogates (default 3, the primary included), the others
    fitted with their own seeds on bootstrap resamples of the calls (``ensemble_resample: bootstrap``, default) or on
    all calls (``seeds``), warm-started from call to call like the primary. ``both`` takes ½(σ_W + r·σ_E), r the ratio
    of their medians over the ask's Sobol candidates, so the two count equally and κ keeps σ_W's units. ``spread``
    takes the standard deviation of the members' f̂ (the primary objective's statistic, in its units: raw κ counts
    member standard deviations, as in an ensemble's LCB). ``residual`` (needs ``correction: gp``) takes the
    residual GP's posterior standard deviation of the corrected statistic, in the objective's units (raw κ counts
    its standard deviations, as in GP-LCB; σ_W until the GP is fitted); it collapses at pending and chosen points
    as σ_W does. With ``ensemble`` or ``spread`` a batch is kept apart by ``min_distance`` alone.

    ``polish`` (steps; 0, off, by default): after the candidates and the local search, the pool's
    ``polish_starts`` best distinct points (default 4) descend the acquisition by projected Adam (step
    ``polish_lr``, reflected at the cube's faces) on a differentiable twin of it: f̂ and σ_W of the MDN's mixture
    over common particles (:mod:`optimizer.strategies.mixture`: the gradient flows through the mixture's weights,
    means and scales, and through the exact distance of the weighted particle set to every stored call, pending and
    chosen points included; outcome constraints rank as in the sampled score). Each start keeps the best point of
    its path, and the pick is the polished point with the lowest twin value that the quantity constraints accept
    and that is not taken. The twin, not the sampled score, decides: the sampled score's minimum over thousands
    of points under one set of latent draws is biased towards points whose draws happen to be lucky (on a 0.99
    quantile from 256 generated samples, markedly), which the twin's exact statistic is not. Off by default: on the
    distribution family it found the right mode of a bimodal 0.9 quantile far more often, but was worse on three
    cells of four (``docs/benchmarks.md``). Needs the ``mdn`` surrogate, ``distance`` ``energy`` or ``w1``, ``uncertainty: nearest`` and
    ``acquisition: refine``; one objective (with several, the pick is not polished).

    ``encoding``: how the surrogate sees a categorical parameter: ``one_hot`` (the default preset's) one indicator
    input per choice (:class:`surrogates.encoding.OneHot`), so the choices are unordered and equally far apart;
    ``bins`` (``wugo-paper``'s) its unit-cube coordinate, as every strategy proposes it. Range parameters are fed as
    they are either way. On ``bench/mixed_wugo.py``'s problem (5 seeds) one-hot inputs put 90 % of the proposals on
    the best absorber against 30 % with bins, and the best design's true value is 11× closer to the optimum.

    ``outputs``: the output columns the surrogate models and σ_W compares: ``used`` (both presets) those the study's
    sample-based objectives and constraints read (their ``output`` and ``weight`` columns), ``all`` every column the
    simulator returns. A shield simulator returns eight columns of which one objective reads one or two; modelling
    all of them costs a fit several times as long (a full-covariance mixture over eight columns) and spends the
    surrogate's capacity and the distance on columns nothing reads.

    ``correction``: ``none`` (both presets) scores f̂ as the surrogate gives it; ``gp`` adds the posterior mean of
    a GP fitted, at each pick, on the residuals y_i − f̂(θ_i) of the primary objective at the evaluated designs
    (known noise: the statistic's standard error). A generative surrogate smooths the statistic it was not
    trained on; the corrected f̂ reproduces the observed values at the data, keeps the surrogate's shape of the
    response between and beyond them, and σ_W is unchanged. One objective only (with several, off); the
    report's landscape shows the surrogate's own f̂.

    ``criterion``: ``lcb`` (both presets) minimises s·f̂ − κ·(uncertainty term); ``ei`` (needs ``uncertainty:
    residual``) maximises the log expected improvement of the corrected statistic, Gaussian with the residual GP's
    posterior sd, over the lowest corrected statistic at the evaluated designs (the model's incumbent, not the
    luckiest call), as GP-BO's LogEI does; κ is not used. Before the residual GP is fitted, ``lcb`` on σ_W."""

    needs_initial_results = True
    #: Output names known without building the simulator (a report never imports a user's module).
    offline_outputs: list[str] | None = None

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Types and ranges of every option, the surrogate's name and its options' types.

        Raises:
            OptionError: naming ``strategy.options.<key>``.
        """
        from surrogates import SURROGATES

        check_options(WUGOOptions, options, "strategy.options")
        preset = options.get("preset", "default")
        name = options.get("surrogate") or PRESETS[preset]["surrogate"]
        if name not in SURROGATES:
            raise OptionError("strategy.options.surrogate",
                              f"unknown surrogate {name!r:.40}; known: {', '.join(SURROGATES.names())}")
        model = options_model(SURROGATES.get(name).__init__, ("dim", "k", "seed"))
        check_options(model, options.get("surrogate_options") or {}, "strategy.options.surrogate_options")
        uncertainty = options.get("uncertainty") or PRESETS[preset]["uncertainty"]
        if uncertainty in ("nearest", "residual"):
            for key in ("members", "ensemble_resample"):
                if options.get(key) is not None:
                    raise OptionError(f"strategy.options.{key}", "needs uncertainty: ensemble, spread or both")
        if uncertainty == "residual" and (options.get("correction") or PRESETS[preset]["correction"]) != "gp":
            raise OptionError("strategy.options.uncertainty", "residual needs correction: gp (its GP's posterior std)")
        if (options.get("criterion") or PRESETS[preset]["criterion"]) == "ei" and uncertainty != "residual":
            raise OptionError("strategy.options.criterion", "ei needs uncertainty: residual (a Gaussian posterior)")
        if options.get("polish", PRESETS[preset]["polish"]):
            def value(key: str) -> Any:
                return options.get(key) or PRESETS[preset][key]
            if not hasattr(SURROGATES.get(name), "mixture"):
                raise OptionError("strategy.options.polish", f"needs a surrogate with a mixture (mdn), not {name!r:.40}")
            for key, allowed in (("distance", ("energy", "w1")), ("uncertainty", ("nearest",)),
                                 ("acquisition", ("refine",))):
                if value(key) not in allowed:
                    raise OptionError("strategy.options.polish",
                                      f"needs {key}: {' or '.join(allowed)}, not {value(key)!r:.40}")
        else:
            for key in ("polish_starts", "polish_lr"):
                if options.get(key) is not None:
                    raise OptionError(f"strategy.options.{key}", "needs polish: a number of steps > 0")

    def __init__(self, space: SearchSpace, study: StudyConfig, seed: int, preset: str = "default", **options: Any) -> None:
        super().__init__(space, study, seed)
        self.check_options({"preset": preset, **options})
        options = {k: v for k, v in options.items() if v is not None}  # None: the preset's value
        cfg = {**PRESETS[preset], "objective": None, "objectives": None, "target": None, "plateau": None,
               "plateau_tol": 0.0, "min_distance": DEFAULT_MIN_DISTANCE, "chunk": DEFAULT_CHUNK, "projections": None,
               "members": DEFAULT_MEMBERS, "ensemble_resample": "bootstrap",
               "polish_starts": DEFAULT_POLISH_STARTS, "polish_lr": DEFAULT_POLISH_LR, **options}
        if cfg["acquisition"] == "refine" and cfg["top_k"] and cfg["radii"] and not cfg["perturbations"]:
            raise OptionError("strategy.options.perturbations", "the local search (top_k > 0, radii) needs at least 1")
        # Several objectives → random Chebyshev scalarisations; `objective` picks a single one.
        names = cfg["objectives"] or ([cfg["objective"]] if cfg["objective"] else list(study.objectives))
        for name in names:
            if name not in study.objectives:
                raise OptionError("strategy.options.objectives" if cfg["objectives"] else "strategy.options.objective",
                                  f"{name!r:.40} is not an objective of the study")
        sample_based = [n for n in names if study.objectives[n].statistic != "quantity"]
        if not sample_based:
            raise OptionError("strategy.options.objective",
                              "WU-GO needs an objective computed from samples, not a quantity")
        if cfg["uncertainty"] == "residual" and len(names) > 1:
            raise OptionError("strategy.options.uncertainty", f"residual needs one objective (the residual GP models "
                              f"one statistic), not {len(names)}; set strategy.options.objective")
        self.names = names
        self.objective = sample_based[0]
        self.metric = study.objectives[sample_based[0]]  # drives target/plateau and the σ_W scale
        self.sign = minimisation_sign(self.metric.direction)
        self._objective_index = list(study.objectives).index(sample_based[0])
        self._signs = np.array([minimisation_sign(study.objectives[n].direction) for n in names])
        self._weights: np.ndarray | None = None
        self._norm: tuple[np.ndarray, np.ndarray, float] | None = None
        self._centre = 0.0  # observed mean of the primary objective, and observed spreads (std) by metric name
        self._spread: dict[str, float] = {}
        self._sigma_scale: float | None = None  # typical σ_W of this ask (kappa_scale: standardised)
        self.cfg = cfg
        self.preset = preset
        self.surrogate: Surrogate | None = None
        self.bank: DistributionBank | None = None
        self.outputs: list[str] | None = None  # names of the modelled columns
        self._columns: list[int] | None = None  # their indices among a call's stored columns
        self._n_columns = 0  # how many columns a call stores
        self._sim: Simulator | None = None  # for exact quantities; none for an offline model
        self._samples: dict[int, torch.Tensor] = {}
        self._fitted_on: tuple[int, ...] = ()
        self._model_ok = False  # whether the surrogate has been fitted at least once
        self._grid: np.ndarray | None = None
        # uncertainty other than nearest: the surrogates besides the primary, and the calls they were fitted on
        self.members: list[Surrogate] = []
        self._members_fitted_on: tuple[int, ...] = ()
        self._ensemble_ratio: float | None = None  # r of `both`: median σ_W / median σ_E of this ask's candidates
        self._polish_eps: Tensor | None = None  # the polish's common particles [J, k]
        self._correction: Any = None  # correction: gp — the residual GP of the current pick (a BoTorch model)
        self._incumbent = 0.0  # criterion: ei — the lowest s·(f̂ + residual mean) at the evaluated designs

    # -- model ----------------------------------------------------------------------------
    @property
    def uses_ensemble(self) -> bool:
        """Whether the acquisition needs the ensemble members (``uncertainty`` other than ``nearest``)."""
        return self.cfg["uncertainty"] not in ("nearest", "residual")

    def new_surrogate(self, k: int, seed: int | None = None) -> Surrogate:
        """An unfitted surrogate of this strategy's kind and options for ``k`` output columns (``seed``: the
        model's, default the strategy's)."""
        from surrogates import SURROGATES
        from surrogates.encoding import OneHot, encoded_dim

        opts = dict(self.cfg["surrogate_options"])
        choices = [int(c) for c in self.space.n_choices]
        one_hot = self.cfg["encoding"] == "one_hot" and any(choices)
        if self.cfg["surrogate"] == "wgan" and opts.get("preset") == "paper":
            # the paper conditions on θ in the problem's own units (a categorical input has none: its unit-cube
            # bin, as every strategy sees it, or its 0/1 indicators)
            bounds = [b for p, c in zip(self.space.parameters.values(), choices)
                      for b in ([(0.0, 1.0)] * (c if one_hot else 1) if p.categorical else [p.bounds()])]
            opts.setdefault("theta_low", [lo for lo, _ in bounds])
            opts.setdefault("theta_high", [hi for _, hi in bounds])
        dim = encoded_dim(choices) if one_hot else self.space.dim
        model = SURROGATES.get(self.cfg["surrogate"])(dim, k, seed=self.seed if seed is None else seed, **opts)
        return OneHot(model, choices) if one_hot else model

    def _output_names(self, n_columns: int) -> list[str]:
        """The names of a call's ``n_columns`` stored output columns (offline names, the simulator's, or by
        position); keeps the simulator for exact quantities."""
        if self.offline_outputs is not None:
            self._sim = None
            return list(self.offline_outputs)
        if self.simulator is None:  # used outside a campaign: build the study's simulator here
            from optimizer.executors import simulator_args

            try:
                self.set_simulator(simulator_args(self.study.simulator).build())
            except Exception:  # noqa: BLE001 - a study-less test history: outputs by position
                pass
        if self.simulator is not None:
            self._sim = self.simulator
            return list(self.simulator.outputs)
        self._sim = None
        return [f"y{i}" for i in range(n_columns)]

    def modelled_columns(self, n_columns: int, names: list[str] | None = None) -> list[int]:
        """Indices of the stored output columns the surrogate models (``outputs``: ``used`` or ``all``); ``names``:
        the columns' names when the caller has them already."""
        if self.cfg["outputs"] == "all":
            return list(range(n_columns))
        names = self._output_names(n_columns) if names is None else names
        return read_columns([*self.study.objectives.values(), *self.study.constraints.values()], names)

    def select(self, samples: Any) -> torch.Tensor:
        """A call's stored samples ``[n, K]`` → the modelled columns ``[n, k]`` (float64)."""
        assert self._columns is not None, "tell() the history first"
        return torch.as_tensor(np.asarray(samples), dtype=torch.float64)[:, self._columns]

    def _build(self, n_columns: int) -> Surrogate:
        """A fresh surrogate and distance bank for the modelled columns of ``n_columns`` stored outputs, and the
        simulator for exact quantities."""
        names = self._output_names(n_columns)
        self._columns, self._n_columns = self.modelled_columns(n_columns, names), n_columns
        self.outputs = [names[i] for i in self._columns]
        k = len(self._columns)
        self.surrogate = surrogate = self.new_surrogate(k)
        self.members = [self._new_member(k, j) for j in range(self.cfg["members"] - 1)] if self.uses_ensemble else []
        self._members_fitted_on = ()
        # sliced distances for k > 1 outputs: 4 directions per output, at most 32
        L = self.cfg["projections"] or min(32, 4 * k)
        self.bank = DistributionBank(self.cfg["distance"], k=k, seed=self.seed, projections=L)
        return surrogate

    def tell(self, history: History) -> None:
        """Add the new calls' samples to the distance bank and refit the surrogate on all calls (warm-started).

        A no-op when the calls are those of the last fit (or of a restored state).
        """
        ids = tuple(int(c) for c in history.call_ids)
        if not ids or (ids == self._fitted_on and self.bank is not None and len(self.bank) == len(ids)):
            return
        surrogate = self._build(np.shape(history.samples(0))[1]) if self.surrogate is None else self.surrogate
        for i, cid in enumerate(ids):
            if cid not in self._samples:
                self._samples[cid] = self.select(history.samples(i))
        assert self.bank is not None
        for cid in ids:
            if cid not in self.bank.keys:
                self.bank.add(cid, self._samples[cid])
        if ids == self._fitted_on:  # restored from a saved state: the model is already fitted on these calls
            self._fit_members(history, ids)
            return
        data = stack_common(
            [self._samples[c] for c in ids], torch.Generator().manual_seed(self.seed + len(ids)))
        before = copy.deepcopy(surrogate.state_dict()) if self._model_ok else None
        try:
            surrogate.fit(torch.as_tensor(history.theta, dtype=torch.float32), data)
            bad = _nan_state(surrogate.state_dict())
            if bad:
                raise FloatingPointError(f"NaN in {bad} after the fit")
        except Exception as err:  # noqa: BLE001 - a surrogate that cannot fit must not end the campaign
            fallback = "keeping the previous model" if before is not None else "proposing a space-filling design"
            warnings.warn(f"WU-GO: the {self.cfg['surrogate']} surrogate could not be fitted on {len(ids)} calls "
                          f"({type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}); "
                          f"{fallback} for this step", SurrogateFitWarning, stacklevel=2)
            if before is not None:
                surrogate.load_state_dict(before)
            else:  # an unfitted (or half-fitted) network: start again from fresh weights next time
                self.surrogate = self.new_surrogate(self.bank.k)
            self._fitted_on = ids  # the same history is not refitted on every ask; the next call retries
            return
        self._fitted_on = ids
        self._model_ok = True
        self._fit_members(history, ids)

    def _new_member(self, k: int, j: int) -> Surrogate:
        """An unfitted ensemble member ``j`` (0-based, the primary not counted), with its own seed."""
        return self.new_surrogate(k, seed=(self.seed + MEMBER_SEED_STRIDE * (j + 1)) % SEED_MODULUS)

    def _fit_members(self, history: History, ids: tuple[int, ...]) -> None:
        """Refit the ensemble members (warm) on the calls ``ids``, each on its own bootstrap resample of them
        (``ensemble_resample: bootstrap``) or on all of them (``seeds``).

        A member that cannot fit keeps its previous weights (or is dropped from this ask's ensemble until it
        fits, if it never has), with a :class:`SurrogateFitWarning`; the primary surrogate is never touched.
        """
        if not self.members or ids == self._members_fitted_on:
            return
        theta = torch.as_tensor(history.theta, dtype=torch.float32)
        N = len(ids)
        for j, member in enumerate(self.members):
            rows = np.arange(N)
            if self.cfg["ensemble_resample"] == "bootstrap":
                rows = np.random.default_rng([self.seed, j, N]).integers(0, N, N)
            gen = torch.Generator().manual_seed(self.seed + MEMBER_SEED_STRIDE * (j + 1) + N)
            data = stack_common([self._samples[ids[i]] for i in rows], gen)
            before = copy.deepcopy(member.state_dict()) if member.fits else None
            try:
                member.fit(theta[torch.as_tensor(rows)], data)
                bad = _nan_state(member.state_dict())
                if bad:
                    raise FloatingPointError(f"NaN in {bad} after the fit")
            except Exception as err:  # noqa: BLE001 - an ensemble member that cannot fit must not end the campaign
                warnings.warn(f"WU-GO: ensemble member {j + 1} ({self.cfg['surrogate']}) could not be fitted on {N} "
                              f"calls ({type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}); "
                              f"{'keeping its previous model' if before is not None else 'left out'} for this step",
                              SurrogateFitWarning, stacklevel=3)
                if before is not None:
                    member.load_state_dict(before)
                else:
                    assert self.bank is not None
                    self.members[j] = self._new_member(self.bank.k, j)
        self._members_fitted_on = ids

    def state_dict(self) -> dict[str, Any] | None:
        """The fitted surrogate's weights and the calls it was fitted on (``None`` before the first fit)."""
        if self.surrogate is None:
            return None
        return {"preset": self.preset, "k": self.bank.k if self.bank else 1, "fitted_on": list(self._fitted_on),
                "n_columns": self._n_columns, "outputs": list(self.outputs or []),
                "surrogate": self.surrogate.state_dict(), "model_ok": self._model_ok,
                "members": [m.state_dict() for m in self.members], "members_fitted_on": list(self._members_fitted_on)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a fit saved by :meth:`state_dict`, so a resume skips refitting on the same calls.

        Raises:
            ValueError: the state is from another preset, or its model covers other output columns (a state
                saved before ``outputs`` existed modelled every column).
        """
        if state.get("preset") != self.preset:
            raise ValueError("saved WU-GO state is from another preset")
        surrogate = self._build(int(state.get("n_columns", state["k"])))
        saved = state["outputs"] if "outputs" in state else self._output_names(int(state["k"]))  # older: all
        if list(saved) != self.outputs:
            raise ValueError(f"saved WU-GO state models the outputs {list(saved)}, this study's model {self.outputs}")
        surrogate.load_state_dict(state["surrogate"])
        self._fitted_on = tuple(state["fitted_on"])
        self._model_ok = bool(state.get("model_ok", True))
        saved = state.get("members", [])
        if self.members and len(saved) == len(self.members):  # else (another `members`, or none saved): refit them
            for member, member_state in zip(self.members, saved):
                member.load_state_dict(member_state)
            self._members_fitted_on = tuple(state.get("members_fitted_on", ()))

    # -- acquisition ----------------------------------------------------------------------
    def _generate(self, x: np.ndarray, gen_seed: int, model: Surrogate | None = None) -> torch.Tensor:
        """``[C, d]`` → generated samples ``[C, n, k]`` of ``model`` (default: the primary surrogate), chunked;
        common random numbers if configured."""
        surrogate = self.surrogate if model is None else model
        assert surrogate is not None, "tell() the history first"
        out = []
        for start in range(0, len(x), self.cfg["chunk"]):
            g = torch.Generator().manual_seed(gen_seed)  # the same draws in every chunk under CRN
            if not self.cfg["common_random_numbers"]:
                g.manual_seed(gen_seed + start)
            t = torch.as_tensor(x[start : start + self.cfg["chunk"]], dtype=torch.float32)
            out.append(surrogate.sample(t, self.cfg["generated"], generator=g, common=self.cfg["common_random_numbers"]))
        return torch.cat(out)

    def member_samples(self, x: np.ndarray, gen_seed: int, primary: torch.Tensor | None = None) -> torch.Tensor:
        """Generated samples ``[M, C, n, k]`` of the primary surrogate (first; ``primary`` if given) and of every
        fitted ensemble member at unit-cube points ``x [C, d]``.

        Every model draws from the same latent stream (``gen_seed``), so the members differ by their fits, not by
        sampling noise. ``M`` is 1 while no member is fitted.
        """
        ys = [self._generate(x, gen_seed) if primary is None else primary]
        ys += [self._generate(x, gen_seed, m) for m in self.members if m.fits > 0]
        return torch.stack(ys)

    def ensemble_sigma(self, x: np.ndarray, gen_seed: int, primary: torch.Tensor | None = None,
                       measure: Literal["distance", "spread"] = "distance") -> np.ndarray:
        """The ensemble's disagreement ``[C]`` at ``x [C, d]`` (see :meth:`member_samples`): σ_E, the mean pairwise
        distance between the models' outputs (``distance``), or the standard deviation of their primary objective
        statistic (``spread``). σ_W where fewer than 2 models are fitted, with a :class:`SurrogateFitWarning`."""
        assert self.bank is not None
        ys = self.member_samples(x, gen_seed, primary)
        if ys.shape[0] < 2:
            warnings.warn("WU-GO: no ensemble member is fitted; the uncertainty is σ_W for this step",
                          SurrogateFitWarning, stacklevel=2)
            return self.bank.min_distance(ys[0], chunk=self.cfg["chunk"]).numpy()
        if measure == "spread":
            return np.std(np.stack([self._value(self.metric, y, {}) for y in ys]), axis=0)
        return self.bank.disagreement(ys, chunk=self.cfg["chunk"]).numpy()

    def _uncertainty(self, x: np.ndarray, ys: torch.Tensor, gen_seed: int,
                     sigma_w: np.ndarray | None = None) -> np.ndarray:
        """The acquisition's uncertainty term ``[C]`` at ``x [C, d]`` with primary samples ``ys [C, n, k]``.

        σ_W (the distance of every candidate to every stored call, the costly part of a score) is computed only by
        the modes that use it, or taken from ``sigma_w [C]`` where the caller has it. With ``both``, the ratio r of
        the medians is fixed by the first scoring of a pick (its Sobol candidates), as ``kappa_scale:
        standardised`` fixes its scale, so the local search scores on one footing.
        """
        assert self.bank is not None
        mode = self.cfg["uncertainty"]
        if mode == "residual" and self._correction is not None:
            return self.correction_at(x, "std")
        if mode in ("spread", "ensemble"):
            return self.ensemble_sigma(x, gen_seed, ys, "spread" if mode == "spread" else "distance")
        sigma = self.bank.min_distance(ys, chunk=self.cfg["chunk"]).numpy() if sigma_w is None else sigma_w
        if mode in ("nearest", "residual"):  # residual: σ_W until the residual GP is fitted (fewer calls than it needs)
            return sigma
        ens = self.ensemble_sigma(x, gen_seed, ys)
        if self._ensemble_ratio is None:
            self._ensemble_ratio = typical_sigma(sigma) / typical_sigma(ens)
        return 0.5 * (sigma + self._ensemble_ratio * ens)

    def _quantities(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Deterministic simulator quantities (cost, mass) at ``x [C, d]``: exact, not modelled."""
        if self._sim is None:
            raise RuntimeError("exact quantities need the study's simulator; this model was built without one")
        rows = [self._sim.quantities_at(active_params(self.space.to_params(self.space.from_unit(u)))) for u in x]
        return {q: np.array([r[q] for r in rows], dtype=float) for q in (rows[0] if rows else {})}

    def _value(self, metric: Any, ys: torch.Tensor, q: dict[str, np.ndarray]) -> np.ndarray:
        if metric.statistic == "quantity":
            return q[metric.quantity]
        assert self.outputs is not None, "tell() the history first"
        v = metric_on_samples(metric, ys, self.outputs).numpy()
        if metric.statistic == "sum":  # G draws `generated` samples; a call has samples_per_call
            v = v * (self.study.simulator.samples_per_call / ys.shape[1])
        return v

    def landscape(self, x: np.ndarray, gen_seed: int = 0) -> dict[str, np.ndarray]:
        """The model's view of the primary objective at unit-cube points ``x [C, d]``, for reports.

        Returns ``[C]`` arrays: ``mean`` (the objective statistic of G(θ)'s samples), ``sigma``
        (σ_W(θ) against the stored calls), ``uncertainty`` (the acquisition's term: σ_W, σ_E or their
        combination, by ``uncertainty``) and ``acquisition`` (s·mean − κ·uncertainty, lower is better;
        with several objectives this is the primary objective's single-objective acquisition).
        Call :meth:`tell` first.
        """
        assert self.bank is not None and self.outputs is not None, "tell() the history first"
        ys = self._generate(x, gen_seed)
        ratio, self._ensemble_ratio = self._ensemble_ratio, None  # `both`: r from these points
        sigma = self.bank.min_distance(ys, chunk=self.cfg["chunk"]).numpy()
        try:
            term = self._uncertainty(x, ys, gen_seed, sigma)
        finally:
            self._ensemble_ratio = ratio
        mean = self._value(self.metric, ys, {})
        if self.cfg["kappa_scale"] == "standardised":  # in objective units: κ·σ/σ_typ observed spreads
            bonus = self.cfg["kappa"] * term / typical_sigma(term) * (self._spread.get(self.objective) or _spread(mean))
        else:
            bonus = self.cfg["kappa"] * term
        return {"mean": mean, "sigma": sigma, "uncertainty": term, "acquisition": self.sign * mean - bonus}

    def _score(self, x: np.ndarray, gen_seed: int) -> tuple[np.ndarray, torch.Tensor]:
        """Acquisition ``[C]`` (lower is better) and the generated samples ``[C, n, k]``."""
        assert self.bank is not None and self.outputs is not None
        ys = self._generate(x, gen_seed)
        sigma = self._uncertainty(x, ys, gen_seed)
        standardised = self.cfg["kappa_scale"] == "standardised"
        if standardised and self._sigma_scale is None:  # the first scoring of a pick: its Sobol candidates
            self._sigma_scale = typical_sigma(sigma)
        needs_q = any(m.statistic == "quantity" for m in [*(self.study.objectives[n] for n in self.names),
                                                          *self.study.constraints.values()])
        q = self._quantities(x) if needs_q else {}
        if len(self.names) == 1:
            # standardised by the observed objective (a positive affine map: the ranking is unchanged), so
            # INFEASIBLE_OFFSET lies beyond every feasible score whatever the objective's units
            centre, spread = self._centre, self._spread.get(self.objective, 1.0)
            f = self._value(self.metric, ys, q)
            if self._correction is not None:
                f = f + self.correction_at(x)
            if self.cfg["criterion"] == "ei" and self._correction is not None:
                # −log EI of the corrected statistic under N(f, σ_r²), against the model's best evaluated design
                score = np.minimum(-log_expected_improvement(self._incumbent - self.sign * f, sigma), EI_SCORE_CAP)
            elif standardised:
                assert self._sigma_scale is not None
                score = self.sign * (f - centre) / spread - self.cfg["kappa"] * sigma / self._sigma_scale
            else:
                score = (self.sign * (f - centre) - self.cfg["kappa"] * sigma) / spread
        else:
            assert self._weights is not None and self._norm is not None
            lo, span, sigma_scale = self._norm
            z = np.stack([s * self._value(self.study.objectives[n], ys, q) for n, s in zip(self.names, self._signs)])
            z = (z - lo[:, None]) / span[:, None]
            w = self._weights[:, None]
            cheb = (w * z).max(0) + CHEBYSHEV_RHO * (w * z).sum(0)
            score = cheb - self.cfg["kappa"] * sigma / (self._sigma_scale if standardised else sigma_scale)
        score = np.where(np.isnan(score), np.inf, score)  # an undefined statistic ranks last
        viol = np.zeros(len(x))
        for name, c in self.study.constraints.items():
            v = self._value(c, ys, q)
            excess = np.maximum(0, v - c.upper if c.upper is not None else -np.inf) + \
                np.maximum(0, c.lower - v if c.lower is not None else -np.inf)
            viol = viol + excess / self._spread.get(name, 1.0)
        # any feasible candidate beats every infeasible one; infeasible ones rank by standardised violation
        return np.where(viol > 0, INFEASIBLE_OFFSET + viol, score), ys

    def _fit_correction(self, history: History, gen_seed: int, in_flight: np.ndarray | None = None,
                        fhat: np.ndarray | None = None) -> Any:
        """``correction: gp``: a GP fitted on the residuals ``y_i − f̂(θ_i)`` of the primary objective at the
        evaluated designs (f̂ under this pick's latent draws ``gen_seed``, so its Monte Carlo error cancels there),
        with the statistic's standard error² as known noise (learned where a call has none). ``None`` when off,
        with several objectives, below :data:`MIN_CORRECTION_CALLS` calls, or when the fit fails
        (:class:`SurrogateFitWarning`: the pick then scores the surrogate's own f̂).

        f̂ + the residual's posterior mean reproduces the observed statistic at the data (to within its noise),
        where a generative surrogate smooths it, and reverts to f̂ plus the mean residual away from the data, where
        the surrogate's shape of the response is all there is.

        ``in_flight [P, d]`` (pending and already chosen points of the ask) are conditioned on at their own
        posterior mean (a kriging believer): the mean is unchanged, and the GP's posterior std — the acquisition's
        term under ``uncertainty: residual`` — collapses there, as σ_W does, so a batch spreads out. ``fhat [N]``:
        f̂ at the evaluated designs under ``gen_seed``, where the caller has it.
        """
        if self.cfg["correction"] != "gp" or len(self.names) != 1 or len(history) < MIN_CORRECTION_CALLS:
            return None
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.models.transforms import Standardize
        from gpytorch.mlls import ExactMarginalLogLikelihood

        from optimizer.strategies.gp import MIN_OUTCOME_VARIANCE, NOISE_FLOOR_FRACTION, _quiet_known_warnings

        if fhat is None:
            fhat = self._value(self.metric, self._generate(history.theta, gen_seed), {})
        r = history.objectives[:, self._objective_index] - fhat
        sems = history.objective_sems[:, self._objective_index]
        ok = np.isfinite(r)
        if ok.sum() < MIN_CORRECTION_CALLS:
            return None
        X = torch.as_tensor(history.theta[ok], dtype=torch.float64)
        Y = torch.as_tensor(r[ok, None], dtype=torch.float64)
        Yvar = None
        if np.all(np.isfinite(sems[ok])):  # else a learned noise (a statistic without a standard error)
            floor = NOISE_FLOOR_FRACTION * max(float(Y.var()), MIN_OUTCOME_VARIANCE)
            Yvar = torch.as_tensor(np.maximum(sems[ok, None] ** 2, floor), dtype=torch.float64)
        try:
            with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
                _quiet_known_warnings()
                torch.manual_seed(gen_seed)
                gp = SingleTaskGP(X, Y, train_Yvar=Yvar, outcome_transform=Standardize(1))
                fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
            gp.eval()
            if in_flight is not None and len(in_flight):
                Xf = torch.as_tensor(in_flight, dtype=torch.float64)
                with torch.no_grad():
                    Yf = gp.posterior(Xf).mean
                # the smallest known noise of the data: a believer's fantasy is as sure as the surest call
                noise = None if Yvar is None else torch.full_like(Yf, float(Yvar.min()))
                believer = gp.condition_on_observations(Xf, Yf, noise=noise)
                believer.eval()
                return believer
            return gp
        except Exception as err:  # noqa: BLE001 - a correction that cannot fit must not end the campaign
            warnings.warn(f"WU-GO: the residual GP (correction: gp) could not be fitted on {int(ok.sum())} calls "
                          f"({type(err).__name__}); scoring the surrogate's own statistic for this pick",
                          SurrogateFitWarning, stacklevel=3)
            return None

    def correction_at(self, x: np.ndarray, moment: Literal["mean", "std"] = "mean") -> np.ndarray:
        """The residual GP's posterior mean (or standard deviation, ``std``) ``[C]`` at unit-cube points
        ``x [C, d]`` (0 where it is off)."""
        if self._correction is None:
            return np.zeros(len(x))
        out = []
        with torch.no_grad():
            for start in range(0, len(x), CORRECTION_CHUNK):
                t = torch.as_tensor(x[start : start + CORRECTION_CHUNK], dtype=torch.float64)
                post = self._correction.posterior(t)
                v = post.mean if moment == "mean" else post.variance.clamp_min(0).sqrt()
                out.append(v.squeeze(-1).numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def _set_scales(self, history: History) -> None:
        """Observed centre and spreads that make the acquisition and the violations unit-free."""
        prim = history.objectives[:, self._objective_index]
        self._centre = float(np.mean(prim))
        cols = {self.objective: prim} | {n: history.constraints[:, j] for j, n in enumerate(self.study.constraints)}
        self._spread = {n: _spread(v) for n, v in cols.items()}

    def _candidates(self, n_issued: int) -> np.ndarray:
        d, N = self.space.dim, self.cfg["candidates"]
        if self.cfg["acquisition"] == "grid":
            if self._grid is None:
                if d == 2:
                    side = int(round(np.sqrt(N)))
                    g = np.linspace(0, 1, side)
                    self._grid = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
                else:
                    self._grid = qmc.LatinHypercube(d, strength=2, rng=self.seed).random(N) if _is_prime_square(N, d) \
                        else qmc.LatinHypercube(d, rng=self.seed).random(N)
            return self._grid
        return sobol_points(d, self.seed + 1 + n_issued, 0, N)

    def _pick(self, history: History, taken: np.ndarray, gen_seed: int,
              in_flight: np.ndarray | None = None) -> np.ndarray | None:
        """The next point ``[d]`` (``None``: every candidate is taken); ``taken [T, d]`` every evaluated, failed,
        pending and chosen point, ``in_flight [P, d]`` the pending and chosen ones among them."""
        cands = self._candidates(history.n_issued)
        self._sigma_scale = None  # set from the candidates' σ_W (pseudo-observations change it between picks)
        self._ensemble_ratio = None
        at_data = self._value(self.metric, self._generate(history.theta, gen_seed), {}) \
            if self.cfg["criterion"] == "ei" else None  # shared by the residual fit and the incumbent
        self._correction = self._fit_correction(history, gen_seed, in_flight, at_data)
        if self._correction is not None and at_data is not None:
            self._incumbent = float(np.nanmin(self.sign * (at_data + self.correction_at(history.theta))))
        score, _ = self._score(cands, gen_seed)
        pool_x, pool_s = [cands], [score]
        if self.cfg["acquisition"] == "refine" and self.cfg["top_k"] > 0:
            centers = cands[np.argsort(score)[: self.cfg["top_k"]]]
            if len(history):
                best = np.argsort(history.minimization_targets()[:, self._objective_index])[:3]
                centers = np.vstack([centers, history.theta[best]])
            cs, _ = self._score(centers, gen_seed)
            rng = np.random.default_rng([self.seed, history.n_issued, gen_seed])
            for r in self.cfg["radii"]:
                P = self.cfg["perturbations"]
                trial = reflect(centers[:, None, :] + r * rng.standard_normal((len(centers), P, self.space.dim)))
                ts, _ = self._score(trial.reshape(-1, self.space.dim), gen_seed)
                ts = ts.reshape(len(centers), P)
                j = ts.argmin(1)
                better = ts[np.arange(len(centers)), j] < cs
                centers[better] = trial[np.arange(len(centers)), j][better]
                cs[better] = ts[np.arange(len(centers)), j][better]
                pool_x.append(trial.reshape(-1, self.space.dim))
                pool_s.append(ts.reshape(-1))
            pool_x.append(centers)
            pool_s.append(cs)
        xs, ss = np.vstack(pool_x), np.concatenate(pool_s)
        if self.cfg["polish"] and len(self.names) == 1:
            starts = self._polish_starts(xs, ss, taken)
            if len(starts):
                polished, values = self._polish(starts)
                ok = np.asarray(self.feasible(polished), dtype=bool)
                for i in np.argsort(np.where(ok, values, np.inf), kind="stable"):
                    if ok[i] and np.isfinite(values[i]) and self._is_new(polished[i], taken):
                        return polished[i]
        ok = np.asarray(self.feasible(xs), dtype=bool)  # quantity constraints are exact: never propose a violation
        xs, ss = xs[ok], ss[ok]
        for i in np.argsort(ss, kind="stable"):
            if self._is_new(xs[i], taken):
                return xs[i]
        return None

    def _is_new(self, x: np.ndarray, taken: np.ndarray) -> bool:
        """Whether ``x [d]`` is farther than ``min_distance`` from every point of ``taken [T, d]`` (any T ≥ 0)."""
        return bool(np.min(np.linalg.norm(taken - x, axis=1), initial=np.inf) > self.cfg["min_distance"])

    def _polish_starts(self, xs: np.ndarray, ss: np.ndarray, taken: np.ndarray) -> np.ndarray:
        """The pool's ``polish_starts`` best feasible-ranked points ``[S, d]`` that are distinct and not taken."""
        starts: list[np.ndarray] = []
        for i in np.argsort(ss, kind="stable"):
            if len(starts) == self.cfg["polish_starts"] or not ss[i] < INFEASIBLE_OFFSET:
                break
            if self._is_new(xs[i], taken) and self._is_new(xs[i], np.array(starts).reshape(-1, self.space.dim)):
                starts.append(xs[i])
        return np.array(starts).reshape(-1, self.space.dim)

    def _polish_acquisition(self, theta: Tensor) -> Tensor:
        """The single-objective acquisition at ``theta [S, d]`` → ``[S]`` on the mixture's common particles,
        differentiable in θ (see ``polish``); on the footing :meth:`_score` uses (centre, spread, σ scale)."""
        from optimizer.strategies.mixture import mixture_atoms, mixture_statistic

        # check_options admits the polish only with a mixture surrogate
        mdn = cast("MDN", self.surrogate)
        assert mdn is not None and self.bank is not None and self.outputs is not None
        if self._polish_eps is None or self._polish_eps.shape[1] != mdn.k:
            J = max(1, -(-self.cfg["generated"] // mdn.C))  # as many atoms as generated samples
            self._polish_eps = torch.randn(J, mdn.k, generator=torch.Generator().manual_seed(self.seed),
                                           dtype=torch.float64)
        mix = mdn.mixture(theta)  # one forward pass for the objective, σ_W and the constraints
        f = mixture_statistic(mdn, self.metric, theta, self.outputs, self._polish_eps,
                              self.study.simulator.samples_per_call, mix)
        if self._correction is not None:  # the residual GP's mean is differentiable in θ too
            f = f + self._correction.posterior(theta).mean.squeeze(-1)
        atoms, weights = mixture_atoms(mdn, theta, self._polish_eps, mix)
        stored = self.bank.summaries()
        sigma = torch.stack([weighted_distance(atoms[i : i + 1], weights[i : i + 1], stored, self.bank.directions,
                                               self.cfg["distance"])[0].min() for i in range(len(theta))])
        spread = self._spread.get(self.objective, 1.0)
        if self.cfg["kappa_scale"] == "standardised":
            assert self._sigma_scale is not None
            score = self.sign * (f - self._centre) / spread - self.cfg["kappa"] * sigma / self._sigma_scale
        else:
            score = (self.sign * (f - self._centre) - self.cfg["kappa"] * sigma) / spread
        viol = torch.zeros_like(score)
        for name, c in self.study.constraints.items():
            if c.statistic == "quantity":  # exact: the feasibility oracle filters the polished points
                continue
            v = mixture_statistic(mdn, c, theta, self.outputs, self._polish_eps,
                                  self.study.simulator.samples_per_call, mix)
            if c.upper is not None:
                viol = viol + (v - c.upper).clamp_min(0) / self._spread.get(name, 1.0)
            if c.lower is not None:
                viol = viol + (c.lower - v).clamp_min(0) / self._spread.get(name, 1.0)
        return torch.where(viol > 0, INFEASIBLE_OFFSET + viol, score)

    def _polish(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Projected Adam on :meth:`_polish_acquisition` from ``starts [S, d]``: the best point of each path ``[S, d]``
        (reflected into the cube after every step, as the local search's perturbations are) and its value ``[S]``."""
        theta = torch.as_tensor(starts, dtype=torch.float64).clone().requires_grad_(True)
        opt = torch.optim.Adam([theta], lr=self.cfg["polish_lr"])
        best, best_val = starts.copy(), np.full(len(starts), np.inf)  # the first step records the starts
        for _ in range(self.cfg["polish"]):
            opt.zero_grad(set_to_none=True)
            val = self._polish_acquisition(theta)
            now = val.detach().numpy()
            better = np.isfinite(now) & (now < best_val)
            best[better], best_val[better] = theta.detach().numpy()[better], now[better]
            val.sum().backward()
            if theta.grad is None or not bool(torch.isfinite(theta.grad).all()):
                break  # a flat or undefined acquisition: keep the best point so far
            opt.step()
            with torch.no_grad():
                theta.copy_(torch.as_tensor(reflect(theta.detach().numpy())))
        with torch.no_grad():
            now = self._polish_acquisition(theta).numpy()
        better = np.isfinite(now) & (now < best_val)
        best[better], best_val[better] = theta.detach().numpy()[better], now[better]
        return best, best_val

    def _should_stop(self, history: History) -> bool:
        if not len(history):
            return False
        y = self.sign * history.objectives[:, self._objective_index]
        y = np.where(history.feasible, y, np.inf)
        target = self.cfg["target"]
        if target is not None and np.min(y) <= self.sign * target:
            return True
        P = self.cfg["plateau"]
        if P and len(y) > P:
            best_before = np.min(y[:-P])
            if not np.isfinite(best_before):  # no feasible incumbent to have plateaued at
                return False
            return bool(np.min(y[-P:]) >= best_before - self.cfg["plateau_tol"])
        return False

    def ask(self, history: History, pending: np.ndarray, n: int) -> np.ndarray:
        """``[n, d]`` points, one at a time, minimising the surrogate's predicted objective minus κ·σ_W (σ_W: the
        generated outputs' distance to the nearest stored call's, a novelty bonus).

        Pending points count as observed with their generated outputs; several objectives are scalarised
        (Chebyshev) with random Dirichlet weights per point. Returns no points once the stopping rule holds, Sobol points while no
        surrogate could be fitted.
        """
        if self._should_stop(history):
            return np.zeros((0, self.space.dim))
        if len(history) == 0:  # every call so far failed: keep exploring space-filling until one completes
            return self.feasible_sobol(history.n_issued, n)
        self.tell(history)
        assert self.bank is not None
        if not self._model_ok:  # no surrogate could be fitted yet (a SurrogateFitWarning said so)
            return sobol_points(self.space.dim, self.seed, history.n_issued, n)
        base = len(self.bank)
        taken = np.vstack([history.theta, history.failed_theta, pending]).reshape(-1, self.space.dim)
        gen_seed = int(np.random.SeedSequence([self.seed, history.n_issued]).generate_state(1)[0] % SEED_MODULUS)
        try:
            if len(pending):  # in-flight points: their predicted outputs count as observed
                ys = self._generate(pending, gen_seed)
                for j in range(len(pending)):
                    self.bank.add(-1 - j, ys[j])
            self._set_scales(history)
            if len(self.names) > 1:
                Y = np.stack([self._signs[i] * history.objectives[:, list(self.study.objectives).index(nm)]
                              for i, nm in enumerate(self.names)])
                lo, span = Y.min(1), np.maximum(np.ptp(Y, 1), SPREAD_FLOOR)
                prim = history.objectives[:, self._objective_index]
                self._norm = (lo, span, max(float(np.ptp(prim)), SPREAD_FLOOR))
            chosen: list[np.ndarray] = []
            for j in range(n):
                rng = np.random.default_rng([self.seed, history.n_issued, j])
                self._weights = rng.dirichlet(np.ones(len(self.names)))
                x = self._pick(history, np.vstack([taken, *chosen]) if chosen else taken, gen_seed + POINT_SEED_STRIDE * j,
                               np.vstack([pending, *chosen]).reshape(-1, self.space.dim))
                if x is None:
                    break
                chosen.append(x)
                if j + 1 < n:
                    self.bank.add(CHOSEN_KEY_BASE - j, self._generate(x[None], gen_seed)[0])
        finally:
            self.bank.remove_after(base)
        return np.array(chosen).reshape(-1, self.space.dim)


# Most rows a call contributes to a surrogate fit: the fit's memory is N·m·k floats, and it draws a fixed number
# of minibatch rows per step, so rows beyond a few thousand per call add memory, not information.
MAX_ROWS_PER_CALL = 8192


def stack_common(samples: list[torch.Tensor], generator: torch.Generator) -> torch.Tensor:
    """Calls' samples ``[n_i, k]`` → ``[N, m, k]`` (simulators may return a varying number of rows, a surrogate
    fits a rectangular batch).

    ``m = min(MAX_ROWS_PER_CALL, median n_i)``: larger calls are subsampled without replacement, smaller ones
    resampled with replacement (a bootstrap of their own rows). Every call keeps its weight of one θ in the
    fit, and one small call no longer cuts every other call down to its size.
    """
    sizes = sorted(int(x.shape[0]) for x in samples)
    m = max(1, min(MAX_ROWS_PER_CALL, sizes[len(sizes) // 2]))
    out = []
    for x in samples:
        n = x.shape[0]
        if n == m:
            out.append(x)
        elif n > m:
            out.append(x[torch.randperm(n, generator=generator)[:m]])
        else:  # every row once, the rest drawn with replacement
            extra = torch.randint(0, n, (m - n,), generator=generator)
            out.append(torch.cat([x, x[extra]]))
    return torch.stack(out)


def log_expected_improvement(gain: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """log E[max(0, gain − sd·Z)] for Z ~ N(0, 1), elementwise over ``gain [C]`` and ``sd [C]`` (sd > 0), accurate far
    into the tail: log sd + log h(u), u = gain/sd, h(u) = φ(u) + u·Φ(u) = φ(u)·(1 − |u|·M(|u|)) for u < 0 with
    M Mills' ratio (``erfcx``), so no difference of nearly equal numbers is formed until 1 − |u|M(|u|) ≈ 1/u²."""
    from scipy.special import erfcx, log_ndtr

    sd = np.maximum(sd, EI_MIN_SD)
    u = gain / sd
    log_phi = -0.5 * u**2 - 0.5 * np.log(2 * np.pi)
    t = np.abs(np.minimum(u, 0.0))
    with np.errstate(over="ignore", invalid="ignore"):
        tail = 1.0 - t * erfcx(t / np.sqrt(2)) * np.sqrt(np.pi / 2)  # h(u)/φ(u) for u ≤ 0
        tail = np.where(t > EI_ASYMPTOTIC_T, 1.0 / np.maximum(t, 1.0) ** 2, np.maximum(tail, 1e-300))
        pos = np.logaddexp(log_phi, np.log(np.maximum(u, 1e-300)) + log_ndtr(u))  # u > 0: no cancellation
    return np.log(sd) + np.where(u > 0, pos, log_phi + np.log(tail))


def typical_sigma(sigma: np.ndarray) -> float:
    """A typical σ_W of one ask: the median over its candidates ``[C]`` (the mean of the positive ones, or 1,
    where most candidates reproduce a stored call exactly), so a standardised κ is unit-free."""
    s = sigma[np.isfinite(sigma)]
    med = float(np.median(s)) if len(s) else 0.0
    if med > 0:
        return med
    pos = s[s > 0]
    return float(np.mean(pos)) if len(pos) else 1.0


def reflect(x: np.ndarray) -> np.ndarray:
    """Fold points back into the unit cube, coordinate-wise (``1.02 → 0.98``, ``-0.03 → 0.03``), any shape.

    Local-search perturbations are reflected, not clipped: clipping puts every step that leaves the cube exactly
    on its face, so a search near a bound piles its proposals up on it; a reflected step stays a step of the same
    length, and lands on a face only with probability zero.
    """
    y = np.mod(x, 2.0)
    return np.where(y > 1.0, 2.0 - y, y)


def _spread(v: np.ndarray) -> float:
    """Standard deviation of observed values ``[N]``; their magnitude (or 1) where they do not vary."""
    v = v[np.isfinite(v)]
    sd = float(np.std(v)) if len(v) > 1 else 0.0
    if sd > 0:
        return sd
    mag = float(np.max(np.abs(v))) if len(v) else 0.0
    return mag if mag > 0 else 1.0


def _nan_state(state: Any, path: str = "") -> str:
    """The first tensor of a (nested) state dict holding a NaN, or ``""`` (infinite bounds are legitimate)."""
    if isinstance(state, torch.Tensor):
        return path if state.is_floating_point() and bool(torch.isnan(state).any()) else ""
    if isinstance(state, dict):
        items: list[tuple[Any, Any]] = list(state.items())
    elif isinstance(state, (list, tuple)):
        items = list(enumerate(state))
    else:
        return ""
    for key, value in items:
        bad = _nan_state(value, f"{path}.{key}" if path else str(key))
        if bad:
            return bad
    return ""


def _is_prime_square(n: int, d: int) -> bool:
    p = int(round(np.sqrt(n)))
    return p * p == n and p > 1 and all(p % q for q in range(2, int(np.sqrt(p)) + 1)) and n > (d - 1) ** 2
