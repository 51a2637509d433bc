"""Sampling calorimeter for electron/photon showers: the calorimeter-absorber design problem.

A GFlash-style parametrised simulation (Grindhammer & Peters, hep-ex/0001020;
constants of Geant4's ``GFlashSamplingShowerParameterisation``), vectorised in
torch over showers and layers (CPU or CUDA):

1. **Effective medium** of one absorber + active layer: mass-weighted Z, X0,
   critical energy and Molière radius; sampling frequency F_S = X0,eff/(d_abs + d_act);
   e/mip ratio ê = 1/(1 + 0.007·(Z_abs − Z_act)); mip sampling fraction f_samp.
2. **Longitudinal profile** per shower: a Gamma distribution in depth (radiation
   lengths) with correlated log-normal fluctuations of T (the peak) and α of
   GFlash's sampling-calorimeter widths, around medians that meet the PDG rules:
   T = ln(E/E_c) − 0.5 and a 95 % depth t_max + 0.08·Z + 9.6 (:func:`profile_means`);
   the energy of layer i is the Gamma-CDF difference over its depth.
3. **Lateral containment** per layer from GFlash's two-component radial profile
   (core + tail, in Molière radii) within the transverse half-width.
4. **Sampling fluctuations**: each layer's visible energy is θ·Poisson(mean/θ) with
   θ chosen so that the total has σ/E = a_samp/√E, a_samp = 2.7 %·√(d_act[mm]/f_samp)
   (Wigmans' rule, PDG "Calorimetry"); optional photostatistics and electronic noise.

Parameters (any subset; the rest keep the design values): absorber thickness
``t_abs`` (mm), active thickness ``t_act`` (mm), number of layers ``n_layers`` or
total depth ``depth`` (radiation lengths), transverse ``half_width`` (cm), and the categorical
``absorber`` (``Pb``, ``W``, ``Fe``, ``Cu``) and ``active`` medium (``scintillator``, ``LAr``, ``Si``) with the
scintillator's light yield ``photostatistics`` (photo-electrons per GeV; a study makes it conditional on
``active: scintillator``). Materials and light yield a study does not vary are options.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import special
from torch import Tensor

from simulators.base import (
    InfeasibleDesign, SimulationResult, Simulator, SimulatorOptionError, chunk_generator, resolve_device, run_in_chunks,
)
from simulators.physics import MATERIALS, Material, gamma_cdf

E_SCALE = 21.2052  # MeV, Molière's scale energy
#: Price of one m² of active layer relative to scintillator's ``active_price``, placeholders like the other prices:
#: liquid argon needs a cryostat, silicon sensors cost tens of times plastic per area. Without them a study that
#: chooses the active medium would always pick the densest sampling at the same price.
ACTIVE_PRICE_FACTOR = {"scintillator": 1.0, "LAr": 2.0, "Si": 50.0}
WIGMANS = 0.027  # σ/E·√E per √(mm of active layer / f_samp)


@dataclass(frozen=True)
class Medium:
    """Effective medium of one sampling cell (lengths in mm, energies in MeV unless noted)."""

    z: float
    x0_mm: float
    critical_energy: float
    moliere_mm: float
    sampling_frequency: float  # layers per X0
    e_over_mip: float
    f_samp: float  # mip sampling fraction
    a_samp: float  # stochastic term (σ/E·√E, E in GeV)
    layer_x0: float  # one cell's thickness in X0


def effective_medium(absorber: Material, active: Material, t_abs: float, t_act: float) -> Medium:
    """GFlash's effective medium for absorber/active thicknesses ``t_abs``, ``t_act`` (mm)."""
    m1, m2 = t_abs * absorber.density, t_act * active.density
    w1, w2 = m1 / (m1 + m2), m2 / (m1 + m2)
    z = w1 * absorber.z + w2 * active.z
    x0 = 1 / (w1 / absorber.x0 + w2 / active.x0)  # g/cm²
    rho = (m1 + m2) / (t_abs + t_act)
    x0_mm = x0 / rho * 10
    ec_over_x0 = w1 * absorber.critical_energy / absorber.x0 + w2 * active.critical_energy / active.x0
    ec = x0 * ec_over_x0
    moliere_mm = E_SCALE / ec_over_x0 / rho * 10
    fs = x0_mm / (t_abs + t_act)
    e_hat = 1 / (1 + 0.007 * (absorber.z - active.z))
    vis = active.dedx_min * active.density * t_act
    f_samp = vis / (vis + absorber.dedx_min * absorber.density * t_abs)
    a_samp = WIGMANS * math.sqrt(t_act / f_samp)
    return Medium(z, x0_mm, ec, moliere_mm, fs, e_hat, f_samp, a_samp, (t_abs + t_act) / x0_mm)


#: Shower maximum of electron showers, t_max = ln(E/E_c) + C_E (X0) [PDG, "Passage of particles through
#: matter", EM cascades: C_e = −0.5 for electrons, +0.5 for photons].
C_E = -0.5
#: 95 % longitudinal containment t95 = t_max + T95_PER_Z·Z + T95_CONST (X0) [PDG, same section].
T95_PER_Z, T95_CONST = 0.08, 9.6
#: Geant4 GFlash clamps of the individual showers' T (X0) and α.
T_MIN, ALPHA_MIN = 1.0, 1.1
#: Depth (in units of the shower's T) beyond which the radial profile keeps its shape. GFlash's R_T grows as
#: e^{0.36τ} without bound, an extrapolation where its own Gamma profile has almost no energy; with the PDG-rule
#: tail, τ up to 4–5 carries a few % of the energy, and the unbounded R_T would hold only 87 % within 1 R_M and
#: 97 % within 3.5 R_M. Frozen at τ = 2 the PDG lateral rules (≈ 90 %, ≈ 99 %) hold (0.92, 0.99 at 20 GeV, Pb).
TAU_LATERAL_MAX = 2.0
#: g(α) = Q95(α)/(α − 1), Q95 the 0.95 quantile of a unit-rate Gamma(α): the ratio t95/t_max of a Gamma profile,
#: decreasing from ∞ (α → 1) to 1 (α → ∞); tabulated once and inverted by interpolation.
_ALPHA_GRID = np.geomspace(1.02, 400.0, 4000)
_G_GRID = special.gammaincinv(_ALPHA_GRID, 0.95) / (_ALPHA_GRID - 1)


def _interp(x: Tensor, xp: np.ndarray, fp: np.ndarray) -> Tensor:
    """Piecewise-linear interpolation of (xp ascending, fp) at ``x`` [...] in torch, clamped at the ends."""
    xt = torch.as_tensor(xp, dtype=x.dtype, device=x.device)
    ft = torch.as_tensor(fp, dtype=x.dtype, device=x.device)
    xc = x.clamp(xt[0], xt[-1])
    i = torch.searchsorted(xt, xc.contiguous()).clamp(1, len(xp) - 1)
    w = (xc - xt[i - 1]) / (xt[i] - xt[i - 1])
    return torch.lerp(ft[i - 1], ft[i], w)


def profile_means(ln_y: Tensor, z: float) -> tuple[Tensor, Tensor]:
    """Median (T, α) of the Gamma profile of electron showers of ``ln(E/E_c)`` ``ln_y`` [n] in a medium of ``z``.

    T = t_max = ln y + C_E; α such that the profile's 95 % depth is the PDG rule t_max + 0.08·Z + 9.6:
    Q95(α)/(α − 1) = t95/t_max, so β = (α − 1)/T. GFlash's own means (T = ln y − 0.812 − 0.55/F_S − …,
    α = 0.81 + (0.458 + 2.26/Z)·ln y − …) put the maximum 0.5–0.8 X0 earlier and the 95 % depth 13–32 % shallower.
    """
    t_max = (ln_y + C_E).clamp_min(T_MIN)
    ratio = (t_max + T95_PER_Z * z + T95_CONST) / t_max
    alpha = _interp(ratio, _G_GRID[::-1].copy(), _ALPHA_GRID[::-1].copy())
    return t_max, alpha.clamp_min(ALPHA_MIN)


def longitudinal_fractions(alpha: Tensor, beta: Tensor, edges: Tensor) -> Tensor:
    """Energy fractions between depth ``edges`` ``[L+1]`` (X0) of Gamma profiles ``alpha, beta`` ``[n]`` → ``[n, L]``."""
    cdf = gamma_cdf(alpha[:, None], beta[:, None], edges[None, :])
    return cdf[:, 1:] - cdf[:, :-1]


def lateral_containment(radius: Tensor | float, tau: Tensor, log_e: Tensor, med: Medium) -> Tensor:
    """Fraction of a layer's energy within ``radius`` Molière radii (GFlash radial profile).

    Args:
        tau: depth over the shower's T, ``[n, L]``.
        log_e: ln(E/GeV), ``[n, 1]``.
    """
    z, e_hat, fs = med.z, med.e_over_mip, med.sampling_frequency
    tau = tau.clamp(max=TAU_LATERAL_MAX)
    rc = 0.0251 + 0.00319 * log_e + (0.1162 - 0.000381 * z) * tau
    rt = (0.659 - 0.00309 * z) * (torch.exp(-2.59 * (tau - 0.645)) + torch.exp((0.3585 + 0.0412 * log_e) * (tau - 0.645)))
    p3 = 1.313 - 0.0686 * log_e
    arg = (0.401 + 0.00187 * z - tau) / p3
    p = (2.632 - 0.00094 * z) * torch.exp(arg - torch.exp(arg))
    # sampling-calorimeter corrections
    rc = rc - 0.0203 * (1 - e_hat) + 0.0397 / fs * torch.exp(-tau)
    rt = rt - 0.14 * (1 - e_hat) - 0.495 / fs * torch.exp(-tau)
    p = (p + (1 - e_hat) * (0.348 - 0.642 / fs * torch.exp(-((tau - 1) ** 2)))).clamp(0, 1)
    rc, rt = rc.clamp_min(1e-3), rt.clamp_min(1e-3)
    r2 = radius * radius
    return p * r2 / (r2 + rc * rc) + (1 - p) * r2 / (r2 + rt * rt)


class SamplingCalorimeter(Simulator):
    """Electron showers in a sampling calorimeter; see the module docstring.

    Args:
        absorber, active: material names (``Pb``, ``W``, ``Fe``, ``Cu``; ``scintillator``, ``LAr``, ``Si``).
        design: values of the parameters a study does not vary.
        energies: incident energies (GeV) cycled over the showers of a call, or
        energy_range: ``[low, high]`` GeV, log-uniform (used when ``energies`` is empty).
        lateral: model lateral leakage (off: infinitely wide).
        photostatistics: photo-electrons per GeV of reconstructed energy (0: off).
        noise: electronic noise per layer (GeV, reconstructed scale).
        segments: longitudinal segments whose energies are outputs ``seg1 …``.
        active_price: price per m² of one scintillator layer (other media: × ``ACTIVE_PRICE_FACTOR``);
            channel_price: per layer (readout);
            the absorber's price per kg comes from the material table. Placeholders in arbitrary units.
        device, chunk: as for every torch simulator here.
    """

    parameters = ("t_abs", "t_act", "n_layers", "depth", "half_width", "absorber", "active", "photostatistics")
    #: Parameters whose values are material names (categorical in a study); the rest are numbers.
    material_parameters = ("absorber", "active")
    parameters_are_subset = True
    quantities = ("cost", "mass", "depth_x0", "length", "sampling_fraction", "sampling_term", "moliere_radius")

    def __init__(self, absorber: str = "Pb", active: str = "scintillator",
                 design: Mapping[str, float] | None = None, energies: Sequence[float] = (),
                 energy_range: Sequence[float] = (1.0, 100.0), lateral: bool = True, photostatistics: float = 0.0,
                 noise: float = 0.0, segments: int = 4, active_price: float = 100.0, channel_price: float = 5.0,
                 device: str = "auto", chunk: int = 1 << 16) -> None:
        for role, name in (("absorber", absorber), ("active", active)):
            if name not in MATERIALS:
                raise ValueError(f"{role}: unknown material '{name}' (known: {', '.join(MATERIALS)})")
        self.absorber, self.active = MATERIALS[absorber], MATERIALS[active]  # unless a study varies them
        # LHCb-ECAL-like: 66 × (2 mm Pb + 4 mm scintillator), ≈ 25 X0
        self.design = {"t_abs": 2.0, "t_act": 4.0, "n_layers": 66, "half_width": 12.0, **(design or {})}
        unknown = set(self.design) - set(self.parameters)
        if unknown:
            raise ValueError(f"design: unknown parameters {sorted(unknown)}")
        self.energies = tuple(float(e) for e in energies)
        if any(e <= 0 for e in self.energies):
            raise ValueError("energies must be positive (GeV)")
        lo, hi = (float(v) for v in energy_range)
        if not 0 < lo <= hi:
            raise ValueError("energy_range must be [low, high] with 0 < low <= high (GeV)")
        self.energy_range = (lo, hi)
        if photostatistics < 0 or noise < 0 or segments < 1:
            raise ValueError("photostatistics and noise must be non-negative, segments at least 1")
        self.lateral, self.photostatistics, self.noise, self.segments = bool(lateral), float(photostatistics), float(noise), int(segments)
        self.active_price, self.channel_price = float(active_price), float(channel_price)
        self.outputs = ("e_true", "e_reco", "response", "resid_scaled", "leak_long", "leak_lat",
                        *(f"seg{i + 1}" for i in range(self.segments)))
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError("device must be auto, cpu or cuda")
        self.device, self.chunk = device, int(chunk)

    def default_params(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.design.items() if k != "depth"}

    def check_parameters(self, example: Mapping[str, float | str]) -> None:
        """Refuse a material name the table lacks (the campaign checks each choice of a categorical parameter)."""
        for role in self.material_parameters:
            if role in example and example[role] not in MATERIALS:
                raise SimulatorOptionError(f"parameters.{role}.choices", f"unknown material {str(example[role])!r:.40} "
                                           f"(known: {', '.join(MATERIALS)})")

    def materials(self, params: Mapping[str, float | str]) -> tuple[Material, Material]:
        """(absorber, active) materials at θ: the study's choices, else the options."""
        out = []
        for role, default in (("absorber", self.absorber), ("active", self.active)):
            name = params.get(role)
            if name is not None and name not in MATERIALS:
                raise ValueError(f"{role}: unknown material {str(name)!r:.40} (known: {', '.join(MATERIALS)})")
            out.append(default if name is None else MATERIALS[str(name)])
        return out[0], out[1]

    def light_yield(self, params: Mapping[str, float | str]) -> float:
        """Photo-electrons per GeV at θ (0: photostatistics off)."""
        value = float(params.get("photostatistics", self.photostatistics))
        if not value >= 0:
            raise InfeasibleDesign("photostatistics must be non-negative")
        return value

    # -- deterministic per-θ quantities ---------------------------------------------------------
    def layout(self, params: Mapping[str, float | str]) -> tuple[Medium, int, float]:
        """(effective medium, number of layers, half-width in cm) at θ."""
        unknown = set(params) - set(self.parameters)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}; this simulator takes {list(self.parameters)}")
        v = {**self.design, **params}
        if "depth" in params and "n_layers" in params:
            raise ValueError("give n_layers or depth, not both")
        t_abs, t_act, width = float(v["t_abs"]), float(v["t_act"]), float(v["half_width"])
        if min(t_abs, t_act, width) <= 0 or not all(map(math.isfinite, (t_abs, t_act, width))):
            raise InfeasibleDesign("t_abs, t_act and half_width must be positive")
        med = effective_medium(*self.materials(params), t_abs, t_act)
        n = round(float(v["depth"]) / med.layer_x0) if "depth" in params else round(float(v["n_layers"]))
        if n < 1:
            raise InfeasibleDesign(f"the design has {n} layers")
        return med, int(n), width

    def quantities_at(self, params: Mapping[str, float | str]) -> dict[str, float]:
        med, n, width = self.layout(params)
        v = {**self.design, **params}
        area = (2 * width / 100) ** 2  # m²
        absorber, active = self.materials(params)
        mass = n * area * float(v["t_abs"]) / 1000 * absorber.density * 1000  # kg
        active_price = self.active_price * ACTIVE_PRICE_FACTOR.get(active.name, 1.0)
        cost = mass * absorber.price + n * (area * active_price + self.channel_price)
        return {"cost": cost, "mass": mass, "depth_x0": n * med.layer_x0,
                "length": n * (float(v["t_abs"]) + float(v["t_act"])) / 10, "sampling_fraction": med.f_samp,
                "sampling_term": med.a_samp, "moliere_radius": med.moliere_mm / 10}

    # -- simulation -----------------------------------------------------------------------------
    def simulate(self, params: Mapping[str, float | str], n: int, seed: int) -> SimulationResult:
        med, layers, width = self.layout(params)
        dev, light = resolve_device(self.device), self.light_yield(params)
        cols = run_in_chunks(n, self.chunk, seed, dev, lambda start, m, gen: self._showers(
            self._energies(start, m, gen, dev), med, layers, width, gen, light=light))
        samples = torch.stack([cols[k] for k in self.outputs], dim=1).cpu().numpy().astype(np.float32)
        resp = cols["response"]
        return SimulationResult(samples, {"layers": layers, "resolution": float(resp.std() / resp.mean()),
                                          "device": str(dev)})

    def _energies(self, start: int, n: int, gen: torch.Generator, dev: torch.device) -> Tensor:
        if self.energies:
            table = torch.tensor(self.energies, device=dev, dtype=torch.float64)
            return table[(torch.arange(start, start + n, device=dev)) % len(table)]
        lo, hi = self.energy_range
        u = torch.rand(n, generator=gen, device=dev, dtype=torch.float64)
        return lo * (hi / lo) ** u

    def layer_energies(self, params: Mapping[str, float | str], energies: Tensor, seed: int = 0) -> dict[str, Tensor]:
        """Per-layer results for given incident energies ``[n]`` (GeV): ``visible`` and ``deposited`` ``[n, L]``."""
        med, layers, width = self.layout(params)
        gen = chunk_generator(seed, 0, energies.device)
        return self._showers(energies.to(torch.float64), med, layers, width, gen, per_layer=True,
                             light=self.light_yield(params))

    def _showers(self, e: Tensor, med: Medium, layers: int, width: float, gen: torch.Generator,
                 per_layer: bool = False, light: float | None = None) -> dict[str, Tensor]:
        n, dev = len(e), e.device
        f64 = torch.float64
        ln_y = torch.log(e * 1000 / med.critical_energy).clamp_min(1.0)
        t_mean, a_mean = profile_means(ln_y, med.z)
        # GFlash's sampling-calorimeter fluctuations: correlated log-normal T and α around those means
        s_t = _sigma(-2.5 + 1.25 * ln_y)
        s_a = _sigma(-0.82 + 0.79 * ln_y)
        rho = (0.784 - 0.023 * ln_y).clamp(-1, 1)
        r = torch.randn(2, n, generator=gen, device=dev, dtype=f64)
        c1, c2 = torch.sqrt((1 + rho) / 2), torch.sqrt((1 - rho) / 2)
        t_shower = torch.exp(torch.log(t_mean) + s_t * (c1 * r[0] + c2 * r[1])).clamp_min(T_MIN)
        alpha = torch.exp(torch.log(a_mean) + s_a * (c1 * r[0] - c2 * r[1])).clamp_min(ALPHA_MIN)
        beta = (alpha - 1) / t_shower

        edges = torch.arange(layers + 1, device=dev, dtype=f64) * med.layer_x0
        frac = longitudinal_fractions(alpha, beta, edges)  # [n, L]
        leak_long = 1 - frac.sum(1)
        if self.lateral:
            radius = width * 10 * 2 / math.sqrt(math.pi) / med.moliere_mm  # disk of the cell's area, in R_M
            tau = ((edges[:-1] + edges[1:]) / 2)[None, :] / t_shower[:, None]
            contained = lateral_containment(radius, tau, torch.log(e)[:, None], med)
        else:
            contained = torch.ones_like(frac)
        deposited = e[:, None] * frac * contained  # GeV per layer
        leak_lat = (frac * (1 - contained)).sum(1)

        # sampling fluctuations: visible = θ·Poisson(mean/θ), Var(reco) = a²·E_dep
        scale = med.f_samp * med.e_over_mip
        theta = med.a_samp**2 * scale
        visible = theta * torch.poisson(deposited * scale / theta, generator=gen)
        layer_reco = visible / scale
        if self.noise > 0:
            layer_reco = layer_reco + self.noise * torch.randn(layer_reco.shape, generator=gen, device=dev, dtype=f64)
        e_reco = layer_reco.sum(1)
        light = self.photostatistics if light is None else light
        if light > 0:
            npe = torch.poisson((e_reco.clamp_min(0) * light), generator=gen)
            e_reco = npe / light
        if per_layer:
            return {"visible": visible, "deposited": deposited, "e_reco": e_reco, "alpha": alpha, "beta": beta}
        bounds = np.linspace(0, layers, self.segments + 1).round().astype(int)
        segs = {f"seg{i + 1}": layer_reco[:, bounds[i]:bounds[i + 1]].sum(1) for i in range(self.segments)}
        response = e_reco / e
        return {"e_true": e, "e_reco": e_reco, "response": response, "resid_scaled": (response - 1) * torch.sqrt(e),
                "leak_long": leak_long, "leak_lat": leak_lat, **segs}


def _sigma(denominator: Tensor) -> Tensor:
    """GFlash's fluctuation widths 1/denominator, capped at 0.5 as Geant4 does."""
    return torch.where(denominator > 2.0, 1 / denominator.clamp_min(2.0), torch.full_like(denominator, 0.5))

