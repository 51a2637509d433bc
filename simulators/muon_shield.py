"""Magnetised-iron muon shield: muons transported through an iron hadron absorber and K magnets.

A vectorised torch transport (CPU or CUDA) after the SHiP active muon shield
(JINST 12 (2017) P05011; parametrisation of Baranov et al. / Lantwin 2017–18).

**Geometry.** A chain of elements along +z, each a magnetised-iron magnet spanning
``[z0, z0 + 2·dZ]`` with linear In→Out shapes: a core ``|x| ≤ dX``, ``|y| ≤ dY``
with ``B_y = s·B``; an air coil gap ``dX < |x| < dX + gap``; return yokes of width
``r·dX`` with ``B_y = −s·B/r``; top/bottom yokes of thickness ``r·dX`` with
``B_x = ±s·B/r`` (flux conservation). ``r = 0`` is a plain iron block. The first
elements form the hadron absorber. A detector plane lies ``detector_distance``
behind the last element.

**Transport per step Δz.** Field lookup at the half step, exact momentum kick of a
uniform transverse field (``Δp_x = −0.2998·q·B_y·Δz``, ``Δp_y = +0.2998·q·B_x·Δz``,
|p| kept), Highland multiple scattering with the PDG correlated angle/offset
recipe and a fixed logarithm plus single large-angle scatters (``scattering:
tails``), ionisation a(E) with δ-ray straggling plus radiative b(E)·E loss with
stochastic hard radiative losses (``dN/dv ∝ 1/v`` above ``v_cut``), trapezoidal
drift; each hard radiative loss also kicks the direction (Van Ginneken's angles). The field is the
design field (``field: ideal``) or what each section's iron and coil can carry (``saturating``: B–H
curve, flux conservation, ampere-turns). A muon that stops (``p ≤ p_kill``) within a step is frozen there at once;
muons that turn back or leave the world box are dropped. See docs/physics.md.

**Inputs.** ``source: beam_dump`` (default): an importance sample flat in
``(p, p_T)`` like SHiP's optimisation sample, each muon carrying the weight
``f_phys/f_draw`` of a toy physical spectrum (power law in p, exponential in
p_T; see :class:`BeamDumpSource`); ``ship_beam_dump``: the SHiP muon flux after the target
(:mod:`simulators.muon_source`: fitted p, p-dependent p_T, charge ratio, production depth); ``uniform``: p and
polar angle uniform (the single-magnet toy); or ``file``: a user's muons. ``cavern`` (optional,
:mod:`simulators.cavern`): concrete walls around the shield that muons traverse, and a ``cavern_clearance``
quantity for a constraint that the magnets fit.

**Outputs per muon** (``outputs``): position and momentum at the detector plane,
charge, importance weight, hit flag, the SHiP-2017 hit weight, the window radius
(< 1 inside the window) and the initial p, p_T. **Deterministic quantities:**
iron mass by closed-form frustum volumes, length, cost.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from simulators.base import InfeasibleDesign, SimulationResult, Simulator, chunk_generator, resolve_device, run_in_chunks
from simulators.base import SimulatorOptionError
from simulators.cavern import Cavern, ConcreteLoss, clearance, make_cavern, wall_step
from simulators.muon_source import Muons, ShipBeamDumpSource, _muons, source_error
from simulators.physics import C_LIGHT, ELECTRON_MASS, HIGHLAND, K_BETHE, MATERIALS, MUON_MASS, IronIonisation

IRON = MATERIALS["Fe"]
IRON_ZA = IRON.z / IRON.a
#: Largest mean number of sampled knock-on electrons per step: the cut T_c = ξ/LAMBDA_DELTA (at most
#: W_max) keeps "at most one hard event per step" accurate to O(λ²) whatever the step length.
LAMBDA_DELTA = 0.05
#: Single scatters are sampled above TAIL_CUT·θ0 of the nominal path; below it is the Highland core
#: (its fit covers the central 98 %, i.e. up to ≈ 2.3·θ0).
TAIL_CUT = 2.5
#: Mean squared charge radius of iron in GeV⁻² ((3.74 fm)², de Vries et al., ADNDT 36 (1987); ħc = 0.1973 GeV fm).
IRON_R2 = (3.74 / 0.1973) ** 2
#: Vacuum permeability (T·m/A).
MU0 = 4e-7 * math.pi
#: Fröhlich–Kennelly B–H curve of low-carbon steel, B = μ0·H + BH_SAT·H/(BH_A + H) (T, A/m). BH_SAT: the
#: saturation polarisation of low-carbon steel, ≈ 2.0–2.1 T (pure iron 2.15 T); BH_A set so that B(6 kA/m) =
#: 1.70 T, the usual operating point of AISI 1010 in warm magnets. The form is soft below the knee (≈ 0.9 T at
#: 1 kA/m where 1010 gives ≈ 1.3 T) and has not been compared point by point with a measured 1010 table;
#: the shield runs at 1.6–1.9 T, where it is meant to hold.
BH_SAT, BH_A = 2.03, 1200.0
#: Default coil current density (A/m²) and copper filling factor of the coil window (the coil-gap cross-section
#: gap·2dY on each side): 3 A/mm², typical of water-cooled warm magnets; filling factor 0.6 as in the SHiP
#: shield studies (lfpc/MuonsAndMatter, data/materials).
COIL_CURRENT_DENSITY, COIL_FILL = 3e6, 0.6
#: Iron outside the 6 free magnets in SHiP-2018's mass convention (kg → t).
SHIP2018_ABSORBER_MASS_T = 257.401
#: SHiP-2018 soft mass budget W* of the scalarised loss (t).
SHIP2018_MASS_BUDGET_T = 1915.820

# -- SHiP-2018 reference designs (56 numbers, cm): dZ of 2 absorber magnets + 6 magnets, then
#    (dXIn, dXOut, dYIn, dYOut, gapIn, gapOut) for each of the 8 ---------------------------------
DEFAULT_POINT = (70, 170, 205, 205, 280, 245, 305, 240, 40, 40, 150, 150, 2, 2, 80, 80, 150, 150, 2, 2,
                 87, 65, 35, 121, 11, 2, 65, 43, 121, 207, 11, 2, 6, 33, 32, 13, 70, 11, 5, 16, 112, 5, 4, 2,
                 15, 34, 235, 32, 5, 8, 31, 90, 186, 310, 2, 55)
NEW_BASELINE = (70, 170, 208, 207, 281, 248, 305, 242, 40, 40, 150, 150, 2, 2, 80, 80, 150, 150, 2, 2,
                72, 51, 29, 46, 10, 7, 54, 38, 46, 192, 14, 9, 10, 31, 35, 31, 51, 11, 3, 32, 54, 24, 8, 8,
                22, 32, 209, 35, 8, 13, 33, 77, 85, 241, 9, 26)
SHAPE = ("dXIn", "dXOut", "dYIn", "dYOut", "gapIn", "gapOut")
SHIP2018_ELEMENTS = ("a1", "a2", "m1", "m2", "m3", "m4", "m5", "m6")
#: Bounds of the 2018 search (cm): half-length, dX, dY, gap.
SHIP2018_BOUNDS = {"dZ": (175, 305), "dX": (10, 100), "dY": (20, 200), "gap": (2, 70)}


def ship2018_params(vector: Sequence[float] = NEW_BASELINE) -> dict[str, float]:
    """A 56-number SHiP-2018 design (cm) as named parameters ``a1_dZ … m6_gapOut``."""
    if len(vector) != 56:
        raise ValueError(f"a SHiP-2018 design has 56 numbers, got {len(vector)}")
    out = {f"{e}_dZ": float(vector[i]) for i, e in enumerate(SHIP2018_ELEMENTS)}
    for i, e in enumerate(SHIP2018_ELEMENTS):
        for j, name in enumerate(SHAPE):
            out[f"{e}_{name}"] = float(vector[8 + 6 * i + j])
    return out


def ship2018_free(vector: Sequence[float] = NEW_BASELINE) -> dict[str, float]:
    """The 42 free numbers (the 6 magnets ``m1 … m6``) of a SHiP-2018 design."""
    return {k: v for k, v in ship2018_params(vector).items() if k.startswith("m")}


# -- geometry -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Element:
    """One magnetised-iron element, lengths in m, field in T (sign = polarity).

    Attributes:
        z0: upstream face.
        dz: half-length.
        dx, dy, gap: (in, out) core half-width, core half-height, coil gap.
        field: core field B_y.
        yoke_ratio: return-yoke width / core width (0: a plain block without yokes).
        absorber: whether the element belongs to the hadron absorber.
    """

    z0: float
    dz: float
    dx: tuple[float, float]
    dy: tuple[float, float]
    gap: tuple[float, float]
    field: float
    yoke_ratio: float = 1.0
    absorber: bool = False

    @property
    def z1(self) -> float:
        return self.z0 + 2 * self.dz

    def shape_at(self, z: float) -> tuple[float, float, float]:
        """(dX, dY, gap) at ``z`` (linear between the faces)."""
        f = min(max((z - self.z0) / (2 * self.dz), 0.0), 1.0)
        lerp = lambda ab: ab[0] + (ab[1] - ab[0]) * f  # noqa: E731
        return lerp(self.dx), lerp(self.dy), lerp(self.gap)

    def face_area(self, side: int) -> tuple[float, float]:
        """(outer, coil-gap) cross-section areas (m²) at the entrance (0) or exit (1)."""
        f, h, g, r = self.dx[side], self.dy[side], self.gap[side], self.yoke_ratio
        if r == 0:
            return 4 * f * h, 0.0
        return 2 * (f + g + r * f) * 2 * (h + r * f), g * 2 * h

    def volume(self) -> float:
        """Iron volume (m³): outer frustum minus the two coil-gap frusta."""
        (a_in, g_in), (a_out, g_out) = self.face_area(0), self.face_area(1)
        return frustum(self.dz, a_in, a_out) - 2 * frustum(self.dz, g_in, g_out)


def frustum(half_length: float, area_in: float, area_out: float) -> float:
    """Volume of a frustum of length ``2·half_length`` between two similar-ish faces."""
    return 2 * half_length / 3 * (area_in + area_out + math.sqrt(area_in * area_out))


@dataclass(frozen=True)
class Geometry:
    """A built shield: its elements in z order and the z of the detector plane behind them (m)."""

    elements: tuple[Element, ...]
    detector_z: float

    @property
    def length(self) -> float:
        return self.elements[-1].z1 - self.elements[0].z0 if self.elements else 0.0

    def mass_t(self, which: str = "all") -> float:
        """Iron mass in tonnes of ``which`` elements: ``"all"``, ``"absorber"`` (the hadron absorber), else the magnets."""
        sel = [e for e in self.elements if which == "all" or (e.absorber == (which == "absorber"))]
        return sum(e.volume() for e in sel) * IRON.density  # m³ × g/cm³ = t

    def iron_length(self) -> float:
        """Total iron length along z (m): the sum of the elements' full lengths ``2·dz``."""
        return sum(2 * e.dz for e in self.elements)


# -- muon sources ---------------------------------------------------------------------------------
class BeamDumpSource:
    """Importance sample flat in (p, p_T), weighted to a toy beam-dump spectrum.

    Draw: ``p ~ U(p_min, p_max)``, ``p_T ~ U(0, min(pt_max, p))``, φ uniform, charge ±1, origin
    Gaussian of ``sigma_xy``. Physical toy: ``p`` a power law of index ``alpha`` on
    ``[p_min, p_max]``, ``p_T | p`` exponential of mean ``pt_mean`` truncated at
    ``min(pt_max, p)``. Weight = f_phys/f_draw, so weights average 1 over the draw and a weighted
    mean is a physical fraction.
    """

    def __init__(self, p_min: float = 1.0, p_max: float = 350.0, pt_max: float = 6.0, alpha: float = 2.5,
                 pt_mean: float = 0.8, sigma_xy: float = 0.03) -> None:
        for name, bad, need in (("p_min", not p_min > 0, "positive"), ("p_max", not p_max > p_min, "above p_min"),
                                ("pt_max", not pt_max > 0, "positive"), ("pt_mean", not pt_mean > 0, "positive"),
                                ("sigma_xy", not sigma_xy >= 0, "non-negative"), ("alpha", alpha == 1, "other than 1")):
            if bad:
                raise source_error(name, f"must be {need}, got {locals()[name]:g}")
        self.p_min, self.p_max, self.pt_max, self.alpha = p_min, p_max, pt_max, alpha
        self.pt_mean, self.sigma_xy = pt_mean, sigma_xy

    def sample(self, n: int, gen: torch.Generator, device: torch.device, dtype: torch.dtype) -> Muons:
        """``n`` muons drawn with ``gen`` (each field ``[n]``), weighted by f_phys/f_draw."""
        u = torch.rand(5, n, generator=gen, device=device, dtype=torch.float64)
        p = self.p_min + (self.p_max - self.p_min) * u[0]
        cap = p.clamp(max=self.pt_max)
        pt = cap * u[1]
        phi = 2 * math.pi * u[2]
        charge = torch.where(u[3] < 0.5, 1.0, -1.0)
        a = self.alpha
        f_p = (a - 1) * p ** (-a) / (self.p_min ** (1 - a) - self.p_max ** (1 - a))
        f_pt = torch.exp(-pt / self.pt_mean) / (self.pt_mean * (1 - torch.exp(-cap / self.pt_mean)))
        weight = f_p * f_pt * (self.p_max - self.p_min) * cap
        xy = self.sigma_xy * torch.randn(2, n, generator=gen, device=device, dtype=torch.float64)
        pz = torch.sqrt((p**2 - pt**2).clamp_min(1e-12))
        return _muons(xy[0], xy[1], pt * torch.cos(phi), pt * torch.sin(phi), pz, charge, weight, dtype)


class UniformSource:
    """``p ~ U(p_min, p_max)``, polar angle ``~ U(0, theta_max)``, φ uniform, charge ±1, from the origin."""

    def __init__(self, p_min: float = 1.0, p_max: float = 10.0, theta_max_deg: float = 10.0,
                 sigma_xy: float = 0.0) -> None:
        for name, bad, need in (("p_min", not p_min > 0, "positive"), ("p_max", not p_max >= p_min, "at least p_min"),
                                ("theta_max_deg", not 0 <= theta_max_deg < 90, "in [0, 90)"),
                                ("sigma_xy", not sigma_xy >= 0, "non-negative")):
            if bad:
                raise source_error(name, f"must be {need}, got {locals()[name]:g}")
        self.p_min, self.p_max, self.theta_max, self.sigma_xy = p_min, p_max, math.radians(theta_max_deg), sigma_xy

    def sample(self, n: int, gen: torch.Generator, device: torch.device, dtype: torch.dtype) -> Muons:
        """``n`` muons drawn with ``gen`` (each field ``[n]``), each of weight 1."""
        u = torch.rand(4, n, generator=gen, device=device, dtype=torch.float64)
        p = self.p_min + (self.p_max - self.p_min) * u[0]
        theta, phi = self.theta_max * u[1], 2 * math.pi * u[2]
        charge = torch.where(u[3] < 0.5, 1.0, -1.0)
        xy = self.sigma_xy * torch.randn(2, n, generator=gen, device=device, dtype=torch.float64)
        st = torch.sin(theta)
        return _muons(xy[0], xy[1], p * st * torch.cos(phi), p * st * torch.sin(phi), p * torch.cos(theta),
                      charge, torch.ones_like(p), dtype)


class FileSource:
    """Muons from a file (``.npy``/``.npz``/``.csv``) with columns px, py, pz, x, y, z, charge, weight (GeV, m).

    Each call draws ``n`` of them without replacement (with replacement if the file holds fewer)
    from the call's seed; ``z`` is ignored (muons start at the first element's face).
    """

    COLUMNS = ("px", "py", "pz", "x", "y", "z", "charge", "weight")

    def __init__(self, file: str) -> None:
        path = Path(file)
        if not path.is_file():
            raise source_error("file", f"no such file: {file}")
        if path.suffix == ".npz":
            with np.load(path) as data:
                missing = [c for c in self.COLUMNS if c not in data]
                if missing:
                    raise source_error("file", f"{file} lacks arrays {missing}")
                table = np.stack([np.asarray(data[c], dtype=float) for c in self.COLUMNS], axis=1)
        elif path.suffix == ".csv":
            table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        else:
            table = np.load(path)
        if table.ndim != 2 or table.shape[1] != len(self.COLUMNS) or len(table) == 0:
            raise source_error("file", f"{file} must hold rows of {list(self.COLUMNS)}, got shape {table.shape}")
        if np.any(table[:, 2] <= 0) or not np.all(np.isfinite(table)):
            raise source_error("file", f"{file} needs finite values and pz > 0 for every muon")
        self.table = torch.as_tensor(table, dtype=torch.float64)

    def sample(self, n: int, gen: torch.Generator, device: torch.device, dtype: torch.dtype) -> Muons:
        """``n`` of the file's muons picked with ``gen`` (without replacement while ``n`` ≤ rows), weights kept; fields ``[n]``."""
        m = len(self.table)
        if n <= m:
            idx = torch.randperm(m, generator=gen, device=device)[:n]
        else:
            idx = torch.randint(m, (n,), generator=gen, device=device)
        t = self.table.to(device)[idx]
        return _muons(t[:, 3], t[:, 4], t[:, 0], t[:, 1], t[:, 2], t[:, 6].sign(), t[:, 7], dtype)


SOURCES = {"beam_dump": BeamDumpSource, "ship_beam_dump": ShipBeamDumpSource, "uniform": UniformSource,
           "file": FileSource}


# -- saturating fields -----------------------------------------------------------------------------
def bh_curve(h: float) -> float:
    """B (T) of low-carbon steel at H (A/m): Fröhlich–Kennelly, B = μ0·H + B_s·H/(a + H)."""
    return MU0 * h + BH_SAT * h / (BH_A + h)


def bh_inverse(b: float) -> float:
    """H (A/m) at which the B–H curve reaches ``b`` ≥ 0 (T): the positive root of μ0H² + (μ0a + B_s − b)H − ab = 0."""
    c = MU0 * BH_A + BH_SAT - b
    return (-c + math.sqrt(c * c + 4 * MU0 * BH_A * b)) / (2 * MU0)


def coil_ampere_turns(element: Element, current_density: float = COIL_CURRENT_DENSITY,
                      fill: float = COIL_FILL) -> float:
    """Ampere-turns (A) a coil of ``current_density`` (A/m²) and filling ``fill`` fits in one coil gap, gap·2dY.

    The smaller of the two faces bounds it: the conductors run the full length of the magnet.
    """
    return current_density * fill * min(g * 2 * h for g, h in zip(element.gap, element.dy))


def saturated_field(b_ideal: float, dx: float, dy: float, gap: float, r: float, ampere_turns: float) -> float:
    """Core field (T, sign of ``b_ideal``) a magnet section can carry; lengths in m, ``ampere_turns`` in A.

    One side's magnetic circuit, per unit length in z: flux Φ = B_core·dX through the core, then r·dX-wide top,
    return and bottom yokes (B = Φ/(r·dX), flux conservation). Ampère along the mean path:
    H(B_core)·l_core + H(Φ/(r·dX))·(l_yoke + l_top) = NI, with l_core = l_yoke = 2dY + r·dX (legs to the top
    yoke's centre line) and l_top = dX + 2·gap + r·dX (top and bottom, centre line to centre line), H from the
    B–H curve. The coil is set for ``b_ideal``; the field is b_ideal where the circuit can carry it, else the B
    at which the circuit uses all the ampere-turns (bisection). Fringe and leakage fields are neglected.
    ``r = 0`` (a plain block, no return path modelled) keeps ``b_ideal``.
    """
    target = abs(b_ideal)
    if target == 0 or r <= 0:
        return b_ideal
    l_leg, l_top = 2 * dy + r * dx, dx + 2 * gap + r * dx

    def mmf(b: float) -> float:
        return bh_inverse(b) * l_leg + bh_inverse(b / r) * (l_leg + l_top)

    if mmf(target) <= ampere_turns:
        return b_ideal
    lo, hi = 0.0, target
    for _ in range(50):  # 50 halvings: 1e-15 T
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mmf(mid) <= ampere_turns else (lo, mid)
    return math.copysign(lo, b_ideal)


# -- transport ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Physics:
    """Transport settings (the fidelity knobs).

    Attributes:
        step: step length along z inside iron (m).
        field: ``ideal`` (default; ``true``): the design field wherever there is iron; ``saturating``: the
            field each magnet section's iron and coil can carry (:func:`saturated_field`: B–H curve of
            low-carbon steel, flux conservation through the yokes, ampere-turns of the coil), at most the
            design field; ``off`` (``false``): no field.
        ampere_turns: ampere-turns per coil side (A) for ``saturating``; ``None``: what the coil window
            gap·2dY holds at ``coil_current_density`` (A/m²) and a filling factor 0.6.
        scattering: multiple scattering: ``tails`` (default; Highland core plus single large-angle
            scatters), ``gaussian`` (Highland core only) or ``off``; ``true``/``false`` mean tails/off.
            ``tails`` adds, above θ_c = 2.5·θ0 of the nominal path (``scattering_log_length``), screened
            Rutherford scatters (rate ∝ Z(Z+1)) accepted with the nucleus's form factor (Z²·e^{−q²⟨r²⟩/3}),
            incoherent protons (Z·(1 − F²)·dipole²) and atomic electrons (Z, θ < m_e/m_μ).
        energy_loss: ``stochastic`` (ionisation straggling + hard radiative losses), ``continuous`` or ``off``.
        dedx_a: constant ionisation a (GeV cm²/g) instead of the a(E) table (a test oracle's knob).
        dedx_b: constant radiative coefficient b (cm²/g) instead of the b(E) table (``None``, the default:
            b(E) of iron after the PDG muon tables, ≈ 3.5e-6 at 10 GeV rising to 7e-6 at 1 TeV).
        straggling: ionisation straggling in ``stochastic`` mode: knock-on electrons above
            T_c = min(W_max, ξ/0.05) sampled one by one from the spin-½ δ-ray spectrum, the rest a Gaussian
            of the sub-cut variance ξ·T_c(1 − β²T_c/2W_max); both scale with the path, so the spread over
            a thick absorber does not depend on ``step``. The mean stays a(E).
        radiative_deflection: in ``stochastic`` mode, each hard radiative loss also kicks the muon's direction
            by Van Ginneken's angle for its process (:func:`radiative_deflection`; ≈ m_μ/E·f(v) for
            bremsstrahlung and pairs, ≈ 0.4 GeV/E for photonuclear events).
        ionisation_spread: an extra relative Gaussian width of the ionisation loss per step (0: off).
            Applied per step, its effect over a path shrinks as 1/√steps; prefer ``straggling``.
        v_cut: fractional energy above which radiative losses are sampled one by one.
        scattering_log_length: path (m) fixing Highland's logarithm; default the total iron length.
        p_kill: momentum (GeV) below which a muon stops.
        world: half-size (m) of the transverse world box.
    """

    step: float = 0.1
    field: bool | str = "ideal"
    ampere_turns: float | None = None
    coil_current_density: float = COIL_CURRENT_DENSITY
    scattering: bool | str = "tails"
    energy_loss: str = "stochastic"
    dedx_a: float | None = None
    dedx_b: float | None = None
    straggling: bool = True
    radiative_deflection: bool = True
    ionisation_spread: float = 0.0
    v_cut: float = 0.01
    scattering_log_length: float | None = None
    p_kill: float = 0.2
    world: float = 10.0

    def __post_init__(self) -> None:
        if isinstance(self.field, bool):
            object.__setattr__(self, "field", "ideal" if self.field else "off")
        if self.field not in ("ideal", "saturating", "off"):
            raise ValueError("physics.field must be ideal, saturating or off")
        if (self.ampere_turns is not None and self.ampere_turns < 0) or self.coil_current_density < 0:
            raise ValueError("physics: ampere_turns and coil_current_density must be non-negative")
        if isinstance(self.scattering, bool):
            object.__setattr__(self, "scattering", "tails" if self.scattering else "off")
        if self.scattering not in ("tails", "gaussian", "off"):
            raise ValueError("physics.scattering must be tails, gaussian or off")
        if self.step <= 0:
            raise ValueError("physics.step must be positive")
        if self.energy_loss not in ("stochastic", "continuous", "off"):
            raise ValueError("physics.energy_loss must be stochastic, continuous or off")
        if not 0 < self.v_cut < 1:
            raise ValueError("physics.v_cut must lie in (0, 1)")
        if (self.dedx_b is not None and self.dedx_b < 0) or (self.dedx_a is not None and self.dedx_a < 0) or self.p_kill < 0 or self.world <= 0:
            raise ValueError("physics: dedx_a, dedx_b and p_kill must be non-negative and world positive")

    @property
    def stop_energy(self) -> float:
        """Energy (GeV) at or below which a muon stops within its step: E(p_kill), at least the mass."""
        return math.hypot(self.p_kill, MUON_MASS)


@dataclass
class _State:
    x: Tensor
    y: Tensor
    px: Tensor
    py: Tensor
    pz: Tensor
    p: Tensor
    q: Tensor
    idx: Tensor  # position of each muon of the working set in the call's arrays
    #: 1 while the muon moves, 0 once it has stopped in a step: every later step leaves it where it stopped
    live: Tensor


#: Steps between kill checks (world box, turned back); a muon that stops in a step is frozen at once (``live``).
CHECK_EVERY = 8
#: Fraction of dead muons in the working set that triggers a compaction (indexing is costly).
COMPACT_FRACTION = 0.1
_STATE = ("x", "y", "px", "py", "pz", "p", "q", "live")


def transport(muons: Muons, geometry: Geometry, physics: Physics, gen: torch.Generator,
              ionisation: IronIonisation, cavern: Cavern | None = None) -> dict[str, Tensor]:
    """Track ``muons`` through ``geometry`` to the detector plane (inside ``cavern``'s concrete walls, if any).

    Returns:
        ``x, y, px, py, pz`` ``[n]`` at the plane (for stopped muons: where they stopped, p = 0),
        ``alive`` ``[n]`` (bool: reached the plane) and ``muon_steps`` (``[]``, steps taken in iron regions).
    """
    n = len(muons.x)
    dev, dt = muons.x.device, muons.x.dtype
    out = {k: torch.zeros(n, device=dev, dtype=dt) for k in ("x", "y", "px", "py", "pz")}
    alive_out = torch.zeros(n, device=dev, dtype=torch.bool)
    p0 = torch.sqrt(muons.px**2 + muons.py**2 + muons.pz**2)
    s = _State(muons.x.clone(), muons.y.clone(), muons.px.clone(), muons.py.clone(), muons.pz.clone(), p0,
               muons.charge.clone(), torch.arange(n, device=dev), torch.ones(n, device=dev, dtype=dt))
    dead = torch.zeros(n, device=dev, dtype=torch.bool)
    stop_x, stop_y = torch.zeros_like(s.x), torch.zeros_like(s.y)
    muon_steps = 0

    log_len = physics.scattering_log_length or geometry.iron_length() or 1.0
    kappa = 1 + 0.038 * math.log(log_len * 100 / IRON.x0_cm)
    tail_x0 = log_len * 100 / IRON.x0_cm  # nominal path (X0) whose Highland core the tail cut refers to
    rho = IRON.density

    def check() -> None:
        nonlocal dead, stop_x, stop_y
        lost = (s.live == 0) | (s.p <= physics.p_kill) | (s.pz <= 0) | (s.x.abs() >= physics.world) | (s.y.abs() >= physics.world)
        lost |= ~torch.isfinite(s.x + s.y)
        new = lost & ~dead
        stop_x, stop_y = torch.where(new, s.x, stop_x), torch.where(new, s.y, stop_y)
        dead = dead | lost

    def compact(force: bool = False) -> None:
        nonlocal dead, stop_x, stop_y
        n_dead = int(dead.sum())
        if n_dead == 0 or (not force and n_dead < COMPACT_FRACTION * len(dead)):
            return
        gone, lim = dead.nonzero().squeeze(1), physics.world
        ig = s.idx[gone]
        out["x"][ig] = torch.nan_to_num(stop_x[gone], nan=0.0).clamp(-lim, lim)
        out["y"][ig] = torch.nan_to_num(stop_y[gone], nan=0.0).clamp(-lim, lim)
        keep = (~dead).nonzero().squeeze(1)
        packed = torch.stack([getattr(s, k) for k in _STATE]).index_select(1, keep)
        for i, k in enumerate(_STATE):
            setattr(s, k, packed[i])
        s.idx = s.idx.index_select(0, keep)
        dead, stop_x, stop_y = dead[keep], stop_x[keep], stop_y[keep]

    z = z_first = geometry.elements[0].z0 if geometry.elements else 0.0
    walls = ConcreteLoss() if cavern is not None else None

    def air(length: float) -> None:
        """Straight through air; with a cavern, in steps that look for the walls."""
        if cavern is None or walls is None:
            _drift(s, length)
            return
        n_air = max(1, math.ceil(length / cavern.step - 1e-9))
        for k in range(n_air):
            if len(s.x) == 0:
                return
            _drift(s, length / n_air, s.live)
            wall_step(s, length / n_air, z - z_first + (k + 0.5) * length / n_air, cavern, walls, gen,
                      physics.stop_energy, physics.world, None, physics.scattering != "off",
                      physics.energy_loss != "off")
            if k % CHECK_EVERY == CHECK_EVERY - 1 or k == n_air - 1:
                check()
                compact()

    for el in geometry.elements:
        if el.z0 > z:  # air gap: a straight drift
            air(el.z0 - z)
            z = el.z0
        n_steps = max(1, math.ceil(2 * el.dz / physics.step - 1e-9))
        h = 2 * el.dz / n_steps
        B = el.field if physics.field != "off" else 0.0
        if physics.field == "saturating":
            ni = physics.ampere_turns if physics.ampere_turns is not None else coil_ampere_turns(
                el, physics.coil_current_density)
        for k in range(n_steps):
            if len(s.x) == 0:
                break
            dx, dy, gap = el.shape_at(el.z0 + (k + 0.5) * h)
            if physics.field == "saturating":
                B = saturated_field(el.field, dx, dy, gap, el.yoke_ratio, ni)
            _step(s, h, dx, dy, gap, el.yoke_ratio, B, physics, kappa, rho, gen, ionisation, tail_x0)
            if walls is not None and cavern is not None:
                r = el.yoke_ratio
                box = (dx + gap + r * dx, dy + r * dx) if r > 0 else (dx, dy)
                wall_step(s, h, el.z0 - z_first + (k + 0.5) * h, cavern, walls, gen, physics.stop_energy,
                          physics.world, box, physics.scattering != "off", physics.energy_loss != "off")
            muon_steps += len(s.x)
            if k % CHECK_EVERY == CHECK_EVERY - 1 or k == n_steps - 1:
                check()
                compact()
        z = el.z1
    check()
    compact(force=True)
    if geometry.detector_z > z:
        air(geometry.detector_z - z)
        if cavern is not None:
            check()
            compact(force=True)
    for name in ("x", "y", "px", "py", "pz"):
        out[name][s.idx] = getattr(s, name)
    alive_out[s.idx] = True
    return {**out, "alive": alive_out, "muon_steps": torch.tensor(muon_steps)}


def _drift(s: _State, length: float, live: Tensor | None = None) -> None:
    """Straight drift over ``length`` along z; ``live`` ``[n]`` (0/1) holds stopped muons where they stopped."""
    step: Tensor | float = length if live is None else live * length
    s.x = s.x + s.px / s.pz * step
    s.y = s.y + s.py / s.pz * step


def field_map(x: Tensor, y: Tensor, dx: float, dy: float, gap: float, r: float,
              B: float) -> tuple[Tensor | None, Tensor, Tensor]:
    """Field and material of one magnet section at positions ``x, y`` ``[n]``.

    Returns:
        ``(B_x or None, B_y, iron)``, each ``[n]``; ``B_x`` is ``None`` where the section has no
        top/bottom yokes (``r = 0``).
    """
    ax, ay = x.abs(), y.abs()
    in_y = ay <= dy
    core = (ax <= dx) & in_y
    if r == 0:
        return None, B * core.to(x.dtype), core
    iron = (ax <= dx + gap + r * dx) & (ay <= dy + r * dx) & (core | (ax >= dx + gap) | ~in_y)
    yoke = iron & in_y & ~core  # return yokes: the core's flux back through r times its width
    top = iron & ~in_y  # top/bottom yokes close the flux between core and return yokes
    by = B * core.to(x.dtype) - (B / r) * yoke.to(x.dtype)
    bx = (B / r) * top.to(x.dtype) * torch.sign(x) * torch.sign(y)
    return bx, by, iron


def _step(s: _State, h: float, dx: float, dy: float, gap: float, r: float, B: float, physics: Physics,
          kappa: float, rho: float, gen: torch.Generator, ionisation: IronIonisation, tail_x0: float = 1.0) -> None:
    """One step of length ``h`` along z through a magnet section of half-sizes ``dx, dy`` (m).

    A muon whose energy falls to ``E(p_kill)`` (at least its mass) in the step stops there: ``s.live``
    becomes 0 and masks its kick, scattering, loss and drift in every later step, so it cannot come back.
    """
    live = s.live
    tx0, ty0 = s.px / s.pz, s.py / s.pz
    xm, ym = s.x + tx0 * (h / 2), s.y + ty0 * (h / 2)
    bx, by, iron = field_map(xm, ym, dx, dy, gap, r, B)
    ironf = iron.to(s.x.dtype) * live
    if B != 0:
        k = (C_LIGHT * h) * s.q * live
        s.px = s.px - k * by
        if bx is not None:
            s.py = s.py + k * bx
    p2 = s.p * s.p
    pz2 = p2 - s.px * s.px - s.py * s.py
    s.pz = torch.copysign(torch.sqrt(pz2.abs().clamp_min(1e-12)), pz2)  # pz < 0: turned back, dropped at check

    ds = h * s.p / s.pz.abs().clamp_min(1e-6)  # path length of the step
    energy = torch.sqrt(p2 + MUON_MASS**2)
    scatter = physics.scattering != "off"
    if scatter:
        z4 = torch.randn(4, len(s.x), generator=gen, device=s.x.device, dtype=s.x.dtype)
        theta0 = (HIGHLAND * kappa) * energy / p2 * torch.sqrt(ds * (100 * rho / IRON.x0)) * ironf
        off = ds * theta0
        dthx, dthy = z4[1] * theta0, z4[3] * theta0
        offx = off * (z4[0] * (1 / math.sqrt(12)) + z4[1] * 0.5)
        offy = off * (z4[2] * (1 / math.sqrt(12)) + z4[3] * 0.5)
        if physics.scattering == "tails":
            idx, tx_, ty_ = _single_scatter(energy, p2, ds * (100 * rho) * ironf, kappa, tail_x0, gen)
            if len(idx):
                half = ds[idx] / 2  # the scatter at mid-step
                dthx, dthy = dthx.index_add(0, idx, tx_), dthy.index_add(0, idx, ty_)
                offx, offy = offx.index_add(0, idx, tx_ * half), offy.index_add(0, idx, ty_ * half)
    kick: tuple[Tensor, Tensor, Tensor] | None = None
    if physics.energy_loss != "off":
        grams = ds * (100 * rho) * ironf  # g/cm²
        a: Tensor | float  # ionisation and radiative coefficients: per muon, or a constant (a test oracle's)
        b: Tensor | float
        if physics.dedx_b is None:
            a, b = ionisation.both(energy)
            if physics.dedx_a is not None:
                a = physics.dedx_a
        else:
            a = physics.dedx_a if physics.dedx_a is not None else ionisation(energy)
            b = physics.dedx_b
        if physics.energy_loss == "stochastic":
            if physics.ionisation_spread > 0:
                spread = torch.randn(len(s.x), generator=gen, device=s.x.device, dtype=s.x.dtype)
                a = a * (1 + physics.ionisation_spread * spread).clamp_min(0)
            # one uniform picks at most one hard event per step from disjoint intervals: a radiative loss
            # (u < λ_r), a knock-on electron (λ_r ≤ u < λ_r + λ_δ); a second one accepts the knock-on
            lam = b * grams * math.log(1 / physics.v_cut)
            u = torch.rand(2 if physics.straggling else 1, len(s.x), generator=gen, device=s.x.device,
                           dtype=s.x.dtype)
            u0 = u[0]
            # v = v_cut**(u/λ) given u < λ; the clamp keeps exp's argument in [ln v_cut, 0] (no denormals)
            v = torch.exp(math.log(physics.v_cut) * (u0 / lam.clamp_min(1e-30)).clamp(max=1.0)) * (u0 < lam)
            # b·v_cut·X ≈ 1e-5 per step: the first-order solution is exact to ~1e-10
            ion = a * grams
            if physics.straggling:
                ion = ion - _knock_on(energy, p2, grams, lam, u0, u[1], gen)
            e_new = (energy - ion - (b * physics.v_cut) * energy * grams) * (1 - v)
            if physics.radiative_deflection:
                hard = (u0 < lam).nonzero().squeeze(1)  # λ ≈ 2e-3 per 10 cm: few muons
                if len(hard):
                    kick = (hard, *radiative_deflection(energy[hard], v[hard], gen))
        elif physics.dedx_b != 0:
            e_new = (energy + a / b) * torch.exp(-b * grams) - a / b
        else:
            e_new = energy - a * grams
        # a loss beyond E + m would give e_new < −m and a positive e_new² − m²: stop instead, for good
        s.live = live * (e_new > physics.stop_energy)
        e_new = e_new.clamp_min(MUON_MASS)
        p_new = torch.sqrt((e_new * e_new - MUON_MASS**2).clamp_min(1e-12))  # > 0: stopped muons stay finite
        scale = p_new / s.p
        s.px, s.py, s.pz, s.p = s.px * scale, s.py * scale, s.pz * scale, p_new

    tx1, ty1 = s.px / s.pz, s.py / s.pz
    hl = s.live * (h / 2)  # a muon that stopped in this step stays at the step's entrance
    s.x = s.x + (tx0 + tx1) * hl
    s.y = s.y + (ty0 + ty1) * hl
    if scatter:
        s.x = s.x + offx
        s.y = s.y + offy
    if scatter or kick is not None:
        tx, ty = (tx1 + dthx, ty1 + dthy) if scatter else (tx1, ty1)
        if kick is not None:  # the radiative event's p_T kick, at the end of the step
            tx, ty = tx.index_add(0, kick[0], kick[1]), ty.index_add(0, kick[0], kick[2])
        s.pz = torch.copysign(s.p * torch.rsqrt(1 + tx * tx + ty * ty), s.pz)
        s.px, s.py = tx * s.pz, ty * s.pz


#: Shares of hard radiative events by process (bremsstrahlung, e⁺e⁻ pair production, photonuclear), from the split
#: of b(E) in iron near 100 GeV–1 TeV (≈ 40 %, ½, 10 %; PDG muon tables, Groom et al. 2001). All three are drawn
#: from the same dN/dv ∝ 1/v, so the shares of events equal the shares of b.
RADIATIVE_SHARES = (0.4, 0.5, 0.1)


def radiative_rms_angle(energy: Tensor, v: Tensor, process: Tensor) -> Tensor:
    """RMS space angle (rad) of a muon of ``energy`` (GeV) that loses the fraction ``v`` in one radiative event.

    Van Ginneken's parametrisations (NIM A251 (1986) 21; E in GeV, ν = v), as used for the stochastic
    deflection of PROPOSAL ≥ 7.5; ``process`` 0 = bremsstrahlung, 1 = pair production, 2 = photonuclear:
    - bremsstrahlung, ν ≤ ½: max(min(0.092·E^(−1/3)·√ν, 0.052/E·Z^(−1/4)), 0.22·E^(−0.92)·ν); ν > ½:
      0.26·E^(−0.91)·ν^(1+n)·(1 − ν)^(−n), n = 0.81·√E/(√E + 1.8), capped at 0.2 rad;
    - pair production: (2.3 + ln E)/E·(1 − ν)^(−1)·(1 − 2m_e/(Eν))²·min(8.9e-4·ν^¼(1 + 1.5e-5·E) + 0.032·ν/(ν + 1), 0.1);
    - photonuclear: 0.39/(E(1 − ν))·(√E·ν(1 − ν))^0.17·(1 − 0.135/(Eν)), at least 0.
    Of order m_μ/E·f(ν) for the electromagnetic processes (the photon's angle ≈ m_μ/E, the muon's p_T ≈ its p_T);
    photonuclear kicks are ≈ 0.4 GeV/E, an order of magnitude larger.
    """
    e, nu = energy, v.clamp(1e-6, 1 - 1e-6)
    brems_low = torch.maximum(torch.minimum(0.092 * e ** (-1 / 3) * torch.sqrt(nu), 0.052 / e * IRON.z ** -0.25),
                              0.22 * e ** -0.92 * nu)
    n = 0.81 * torch.sqrt(e) / (torch.sqrt(e) + 1.8)
    brems_high = (0.26 * e ** -0.91 * nu ** (1 + n) * (1 - nu) ** (-n)).clamp(max=0.2)
    brems = torch.where(nu <= 0.5, brems_low, brems_high)
    pair = ((2.3 + torch.log(e)) / (e * (1 - nu)) * (1 - 2 * ELECTRON_MASS / (e * nu)).clamp_min(0) ** 2
            * torch.clamp(8.9e-4 * nu**0.25 * (1 + 1.5e-5 * e) + 0.032 * nu / (nu + 1), max=0.1))
    nucl = (0.39 / (e * (1 - nu)) * (torch.sqrt(e) * nu * (1 - nu)) ** 0.17 * (1 - 0.135 / (e * nu))).clamp_min(0)
    return torch.where(process == 0, brems, torch.where(process == 1, pair, nucl))


def radiative_deflection(energy: Tensor, v: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Angle kicks ``(θ_x, θ_y)`` ``[k]`` of ``k`` muons that each had one hard radiative loss ``v`` ``[k]``.

    Process by :data:`RADIATIVE_SHARES`; θ² exponential with mean ⟨θ²⟩ = rms² (:func:`radiative_rms_angle`),
    i.e. a 2-D Gaussian of projected width rms/√2; φ uniform.
    """
    u = torch.rand(3, len(energy), generator=gen, device=energy.device, dtype=energy.dtype)
    process = (u[0] >= RADIATIVE_SHARES[0]).to(torch.int64) + (u[0] >= RADIATIVE_SHARES[0] + RADIATIVE_SHARES[1])
    rms = radiative_rms_angle(energy, v, process)
    theta = rms * torch.sqrt(-torch.log1p(-u[1]))  # 1 − u in (0, 1]
    phi = (2 * math.pi) * u[2]
    return theta * torch.cos(phi), theta * torch.sin(phi)


def _single_scatter(energy: Tensor, p2: Tensor, grams: Tensor, kappa: float, nominal_x0: float,
                    gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Single large-angle scatters of one step: ``(idx [k], θ_x [k], θ_y [k])`` for the k muons hit.

    Screened Rutherford on the atom, dN/dΩ = χ_c²/(πθ⁴) per step with χ_c² = K·m_e·Z(Z+1)/A·X·E²/p⁴
    [Molière; PDG constants], above θ_c = TAIL_CUT·θ0(nominal path): the Highland core already holds the
    scatters below it. Its rate per g/cm² does not depend on p (θ_c ∝ E/p² too). Each candidate is
    accepted with [Z·F_N² + Z·(1 − F_N²)·G_p² + Z·1(θ < m_e/m_μ)]/(Z(Z+1)) ≤ 1: coherent nucleus with a
    Gaussian form factor F_N = exp(−q²⟨r²⟩/6), incoherent protons with the dipole G_p = (1 + q²/0.71)^−2,
    atomic electrons up to the kinematic limit (Butkevich et al., hep-ph/0108016, on what shapes the tail).
    """
    z = IRON.z
    theta_c2 = (TAIL_CUT * HIGHLAND * kappa) ** 2 * nominal_x0 * (energy / p2) ** 2
    rate = K_BETHE * ELECTRON_MASS * z * (z + 1) / IRON.a / (TAIL_CUT * HIGHLAND * kappa) ** 2 / nominal_x0
    lam = rate * grams * (1 - theta_c2).clamp_min(0)  # θ ≤ 1 rad
    u = torch.rand(len(energy), generator=gen, device=energy.device, dtype=energy.dtype)
    # λ ~ 1e-5–1e-3 per step: the candidates are few, so work on them alone
    idx = (u < lam).nonzero().squeeze(1)
    if len(idx) == 0:
        return idx, energy.new_zeros(0), energy.new_zeros(0)
    w = u[idx] / lam[idx]
    inv_c = 1 / theta_c2[idx]
    theta2 = 1 / (inv_c - w * (inv_c - 1))
    q2 = theta2 * p2[idx]  # GeV²
    f2 = torch.exp(q2 * (-IRON_R2 / 3))
    accept = (z * f2 + (1 - f2) / (1 + q2 / 0.71) ** 4 + (theta2 < (ELECTRON_MASS / MUON_MASS) ** 2)) / (z + 1)
    u1 = torch.rand(len(idx), generator=gen, device=energy.device, dtype=energy.dtype)
    theta = torch.where(u1 < accept, torch.sqrt(theta2), 0.0)
    phi = (2 * math.pi) * u1 / accept  # uniform given acceptance
    return idx, theta * torch.cos(phi), theta * torch.sin(phi)


def _knock_on(energy: Tensor, p2: Tensor, grams: Tensor, lam: Tensor, u0: Tensor, u1: Tensor,
              gen: torch.Generator) -> Tensor:
    """Ionisation straggling of one step: ``mean − loss`` ``[n]`` (GeV), zero on average.

    Knock-ons of T_c < T < W_max from (1/T²)(1 − β²T/W_max + T²/2E²) [PDG δ-ray spectrum, spin ½]: T by
    inverse CDF of 1/T² from the part of ``u0`` above ``lam``, accepted with the bracket (≤ 1) by ``u1``;
    below T_c a Gaussian of the sub-cut variance. The expected value of both is subtracted, so the
    mean loss stays a(E)·X, and the variance sums to ∫ξ(W_max(1 − β²/2) + W_max³/6E²) over any steps.
    """
    e2 = energy * energy
    beta2 = p2 / e2
    xi = (0.5 * K_BETHE * IRON_ZA) * grams / beta2  # GeV
    r = ELECTRON_MASS / MUON_MASS
    wmax = (2 * ELECTRON_MASS / MUON_MASS**2) * p2 / (1 + (2 * r / MUON_MASS) * energy + r * r)
    tcut = torch.minimum(xi * (1 / LAMBDA_DELTA), wmax).clamp_min(1e-9)
    inv_tc, inv_w = 1 / tcut, 1 / wmax
    lam_d = (xi * (inv_tc - inv_w)).clamp_min(0)
    w = ((u0 - lam) / lam_d.clamp_min(1e-30)).clamp(0, 1)
    t = 1 / (inv_tc - w * (inv_tc - inv_w))
    accept = (u0 >= lam) & (u0 < lam + lam_d) & (u1 < 1 - beta2 * t * inv_w + t * t / (2 * e2))
    mean_hard = xi * (torch.log(wmax * inv_tc) - beta2 * (1 - tcut * inv_w) + (wmax * wmax - tcut * tcut) / (4 * e2))
    var_soft = xi * tcut * (1 - beta2 * tcut * inv_w / 2)
    z = torch.randn(len(energy), generator=gen, device=energy.device, dtype=energy.dtype)
    # where, not a product: t is inf (float32) where λ_δ = 0 (air)
    return mean_hard - torch.where(accept, t, 0.0) - torch.sqrt(var_soft) * z


# -- the simulator --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """The detector window at the plane: ``x_lo < x_s < x_hi``, ``y_lo < y < y_hi``, ``p > p_min``.

    ``x_s = −q·x`` when ``signed`` (SHiP's charge-signed x: positive on the side the first magnets
    bend each charge to), else ``x``.
    """

    x: tuple[float, float] = (-3.0, 2.6)
    y: tuple[float, float] = (-5.0, 5.0)
    signed: bool = True
    p_min: float = 1.0


WINDOWS = {
    "ship2017": Window(),
    "modern": Window(x=(-2.1, 2.1), y=(-3.0, 3.0), signed=False, p_min=0.0),
    "single_magnet": Window(x=(-3.0, 3.0), y=(-3.0, 3.0), signed=False, p_min=0.0),
}

OUTPUTS = ("x", "y", "px", "py", "pz", "charge", "weight", "hit", "ship_w", "r_window", "p0", "pt0")
R_WINDOW_MAX = 10.0


class MuonShield(Simulator):
    """Muons through a magnetised-iron shield; see the module docstring.

    Args:
        preset: ``ship2018`` (2 absorber magnets + 6 magnets, 42 free numbers ``m1_dZ … m6_gapOut``
            in cm, plus the absorber's ``a1_*``, ``a2_*`` and the fields ``B_abs``, ``B_mag`` in T)
            or ``single_magnet`` (one iron frustum, ``X_begin, X_end, Y_begin, Y_end`` half-sizes and
            ``Z`` length in m, field ``B`` in T).
        design: the values of parameters a study does not vary (``ship2018``: ``new_baseline`` or
            ``default_point``, or a dict of parameter values).
        source: ``beam_dump``, ``ship_beam_dump`` (:mod:`simulators.muon_source`), ``uniform``, ``file`` or a
            dict ``{kind: …, options…}``.
        window: ``ship2017``, ``modern``, ``single_magnet`` or a dict of :class:`Window` fields.
        detector_distance: metres from the last element to the detector plane.
        physics: dict of :class:`Physics` fields.
        polarity: signs of the elements' core fields (``ship2018``: absorber and m1–m3 +, m4–m6 −).
        z_gap: air gap between elements (m).
        columns: the subset of ``OUTPUTS`` a call returns (default all).
        ship_loss: add an output ``ship_loss`` whose sum is SHiP-2018's scalarised loss
            ``(1 + exp(10·(W − W*)/W*))·(1 + Σ ship_w)``.
        iron_price: price per kg of iron for ``cost`` (default 8 = 2 material + 6 manufacturing), in millions.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        chunk: muons transported at once (bounds memory).
        dtype: ``float32`` or ``float64``.
        cavern: ``None`` (no walls, the default), ``ecn3`` or a dict of :func:`simulators.cavern.make_cavern`:
            concrete walls muons traverse, and the quantity ``cavern_clearance`` (m, < 0: a magnet sticks out).
    """

    parameters_are_subset = True
    parameters: tuple[str, ...]  # the preset's, set by __init__

    def __init__(self, preset: str = "ship2018", design: str | Mapping[str, float] = "new_baseline",
                 source: str | Mapping[str, Any] = "", window: str | Mapping[str, Any] = "",
                 detector_distance: float | None = None, physics: Mapping[str, Any] | None = None,
                 polarity: Sequence[int] | None = None, z_gap: float = 0.1, columns: Sequence[str] | None = None,
                 ship_loss: bool = False, iron_price: float = 8.0, device: str = "auto", chunk: int = 1 << 17,
                 dtype: str = "float32", cavern: str | Mapping[str, Any] | None = None) -> None:
        if preset not in ("ship2018", "single_magnet"):
            raise ValueError(f"preset must be ship2018 or single_magnet, got '{preset}'")
        self.preset = preset
        if preset == "ship2018":
            names = [f"{e}_{s}" for e in SHIP2018_ELEMENTS for s in ("dZ", *SHAPE)]
            self.parameters = (*names, "B_abs", "B_mag")
            if isinstance(design, str):
                designs = {"new_baseline": NEW_BASELINE, "default_point": DEFAULT_POINT}
                if design not in designs:
                    raise ValueError(f"design must be one of {sorted(designs)} or a dict, got '{design}'")
                base = {**ship2018_params(designs[design]), "B_abs": 1.6, "B_mag": 1.7}
            else:
                base = {**ship2018_params(NEW_BASELINE), "B_abs": 1.6, "B_mag": 1.7, **design}
            default_source, default_window, default_distance = "beam_dump", "ship2017", 50.0
            default_polarity: tuple[int, ...] = (1, 1, 1, 1, 1, -1, -1, -1)
        else:
            self.parameters = ("X_begin", "X_end", "Y_begin", "Y_end", "Z", "B")
            base = {"X_begin": 1.0, "X_end": 1.0, "Y_begin": 1.0, "Y_end": 1.0, "Z": 5.0, "B": 1.7}
            if not isinstance(design, str):
                base.update(design)
            default_source, default_window, default_distance = "uniform", "single_magnet", 1.0
            default_polarity = (1,)
        unknown = set(base) - set(self.parameters)
        if unknown:
            raise ValueError(f"design: unknown parameters {sorted(unknown)}")
        self.base = base
        self.source = _make_source(source or default_source)
        self.window = _make_window(window or default_window)
        self.detector_distance = float(default_distance if detector_distance is None else detector_distance)
        self.physics = Physics(**(physics or {}))
        self.polarity = tuple(int(s) for s in (polarity or default_polarity))
        if len(self.polarity) != len(default_polarity) or any(s not in (-1, 1) for s in self.polarity):
            raise ValueError(f"polarity must be {len(default_polarity)} signs (+1/-1)")
        self.z_gap = float(z_gap)
        cols = tuple(columns) if columns else OUTPUTS
        bad = [c for c in cols if c not in OUTPUTS]
        if bad:
            raise ValueError(f"columns: unknown {bad}; available: {list(OUTPUTS)}")
        self.columns = cols
        self.ship_loss = bool(ship_loss)
        self.outputs = (*cols, "ship_loss") if ship_loss else cols
        self.cavern = make_cavern(cavern)
        self.quantities = ("mass", "length", "cost") + (
            ("absorber_mass", "magnets_mass", "ship_mass") if preset == "ship2018" else ()) + (
            ("cavern_clearance",) if self.cavern is not None else ())
        self.iron_price = float(iron_price)
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError("device must be auto, cpu or cuda")
        self.device = device
        if chunk < 1:
            raise ValueError("chunk must be positive")
        self.chunk = int(chunk)
        if dtype not in ("float32", "float64"):
            raise ValueError("dtype must be float32 or float64")
        self.dtype = getattr(torch, dtype)
        self._ionisation = IronIonisation()

    def default_params(self) -> dict[str, float]:
        return dict(self.base)

    # -- geometry -------------------------------------------------------------------------------
    def geometry(self, params: Mapping[str, float | str]) -> Geometry:
        """The geometry at θ (``params`` override the design)."""
        unknown = set(params) - set(self.parameters)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}; this preset takes {list(self.parameters)}")
        v = {**self.base, **{k: float(x) for k, x in params.items()}}
        elements: list[Element] = []
        z = 0.0
        if self.preset == "ship2018":
            for i, e in enumerate(SHIP2018_ELEMENTS):
                c = 0.01  # cm → m
                dz = v[f"{e}_dZ"] * c
                dims = [v[f"{e}_{s}"] * c for s in SHAPE]
                field = (v["B_abs"] if e.startswith("a") else v["B_mag"]) * self.polarity[i]
                elements.append(Element(z, dz, (dims[0], dims[1]), (dims[2], dims[3]), (dims[4], dims[5]),
                                        field, 1.0, absorber=e.startswith("a")))
                z += 2 * dz + self.z_gap
        else:
            elements.append(Element(0.0, v["Z"] / 2, (v["X_begin"], v["X_end"]), (v["Y_begin"], v["Y_end"]),
                                    (0.0, 0.0), v["B"] * self.polarity[0], 0.0))
        for el in elements:
            sizes = (el.dz, *el.dx, *el.dy)
            if min(sizes) <= 0 or min(el.gap) < 0 or not all(map(math.isfinite, (*sizes, *el.gap, el.field))):
                raise InfeasibleDesign(f"element at z = {el.z0:.2f} m has non-positive or non-finite sizes")
        return Geometry(tuple(elements), elements[-1].z1 + self.detector_distance)

    def quantities_at(self, params: Mapping[str, float | str]) -> dict[str, float]:
        g = self.geometry(params)
        mass = g.mass_t()
        out = {"mass": mass, "length": g.length, "cost": mass * 1e3 * self.iron_price / 1e6}
        if self.preset == "ship2018":
            magnets = g.mass_t("magnets")
            out.update(absorber_mass=g.mass_t("absorber"), magnets_mass=magnets,
                       ship_mass=magnets + SHIP2018_ABSORBER_MASS_T)
        if self.cavern is not None:
            out["cavern_clearance"] = cavern_clearance(g, self.cavern)
        return out

    # -- simulation -----------------------------------------------------------------------------
    def simulate(self, params: Mapping[str, float | str], n: int, seed: int) -> SimulationResult:
        geometry = self.geometry(params)
        dev = resolve_device(self.device)
        cols = run_in_chunks(n, self.chunk, seed, dev, lambda _, m, gen: self._run_chunk(geometry, m, gen, dev))
        if self.ship_loss:
            w = self.quantities_at(params)["ship_mass" if self.preset == "ship2018" else "mass"]
            factor = 1 + math.exp(10 * (w - SHIP2018_MASS_BUDGET_T) / SHIP2018_MASS_BUDGET_T)
            cols["ship_loss"] = factor * (cols["ship_w"] + 1.0 / n)
        samples = torch.stack([cols[k] for k in self.outputs], dim=1).cpu().numpy()
        hit, weight = cols["hit"], cols["weight"]
        meta = {"hits": int(hit.sum()), "weighted_hits_per_1e6": float((hit * weight).sum() / weight.sum() * 1e6),
                "ship_sum_w": float(cols["ship_w"].sum()), "device": str(dev)}
        return SimulationResult(samples, meta)

    def _run_chunk(self, geometry: Geometry, n: int, gen: torch.Generator, dev: torch.device) -> dict[str, Tensor]:
        muons = self.source.sample(n, gen, dev, self.dtype)
        res = transport(muons, geometry, self.physics, gen, self._ionisation, self.cavern)
        q = muons.charge
        win = self.window
        xs = -q * res["x"] if win.signed else res["x"]
        p = torch.sqrt(res["px"] ** 2 + res["py"] ** 2 + res["pz"] ** 2)
        hx, cx = (win.x[1] - win.x[0]) / 2, (win.x[1] + win.x[0]) / 2
        hy, cy = (win.y[1] - win.y[0]) / 2, (win.y[1] + win.y[0]) / 2
        r = torch.maximum((xs - cx).abs() / hx, (res["y"] - cy).abs() / hy)
        r = torch.where(res["alive"], r, torch.full_like(r, R_WINDOW_MAX)).clamp(max=R_WINDOW_MAX)
        hit = res["alive"] & (r < 1) & (p > win.p_min)
        ship_w = torch.sqrt(((win.x[1] - xs) / (win.x[1] - win.x[0])).clamp(0, 1)) * hit
        p0 = torch.sqrt(muons.px**2 + muons.py**2 + muons.pz**2)
        pt0 = torch.sqrt(muons.px**2 + muons.py**2)
        return {"x": res["x"], "y": res["y"], "px": res["px"], "py": res["py"], "pz": res["pz"], "charge": q,
                "weight": muons.weight, "hit": hit.to(self.dtype), "ship_w": ship_w, "r_window": r,
                "p0": p0, "pt0": pt0}

    def transport_muons(self, params: Mapping[str, float | str], muons: Muons, seed: int = 0) -> dict[str, Tensor]:
        """Transport given muons (tests, studies of single trajectories): see :func:`transport`."""
        gen = chunk_generator(seed, 0, muons.x.device)
        return transport(muons, self.geometry(params), self.physics, gen, self._ionisation, self.cavern)


def cavern_clearance(geometry: Geometry, cavern: Cavern) -> float:
    """Smallest distance (m) from any element's outer faces (core + coil gap + return yoke across, core + top
    yoke up) to the cavern walls; negative where an element sticks out. The extents are linear in z and the
    envelope is constant on each side of its step, so faces and the step's z are the only places to look."""
    z_first = geometry.elements[0].z0 if geometry.elements else 0.0
    faces = []
    for el in geometry.elements:
        zs = [el.z0, el.z1] + ([z_first + cavern.z_step] if el.z0 < z_first + cavern.z_step < el.z1 else [])
        for z in zs:
            dx, dy, gap = el.shape_at(z)
            r = el.yoke_ratio
            w, h = (dx + gap + r * dx, dy + r * dx) if r > 0 else (dx, dy)
            faces.append((z - z_first, w, h))
    return clearance(cavern, faces)


def _make_source(spec: str | Mapping[str, Any]) -> BeamDumpSource | ShipBeamDumpSource | UniformSource | FileSource:
    if isinstance(spec, str):
        spec = {"kind": spec}
    spec = dict(spec)
    kind = spec.pop("kind", "file" if "file" in spec else "beam_dump")
    if kind not in SOURCES:
        raise SimulatorOptionError("simulator.options.source", f"must be one of {sorted(SOURCES)}, got '{kind}'")
    cls = SOURCES[kind]
    params = inspect.signature(cls).parameters
    for key, value in spec.items():
        if key not in params:
            raise SimulatorOptionError(f"simulator.options.source.{key}", f"source {kind} takes {list(params)}")
        kind_of = str(params[key].annotation)  # the annotation's text (postponed annotations)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind_of in ("float", "int") and not number or kind_of == "str" and not isinstance(value, str):
            raise source_error(key, f"must be {'a string' if kind_of == 'str' else 'a number'}, got {value!r:.40}")
    return cls(**spec)


def _make_window(spec: str | Mapping[str, Any]) -> Window:
    if isinstance(spec, str):
        if spec not in WINDOWS:
            raise ValueError(f"window must be one of {sorted(WINDOWS)} or a dict, got '{spec}'")
        return WINDOWS[spec]
    spec = dict(spec)
    for key in ("x", "y"):
        if key in spec:
            spec[key] = tuple(float(v) for v in spec[key])
            if len(spec[key]) != 2 or spec[key][0] >= spec[key][1]:
                raise ValueError(f"window.{key} must be [low, high] with low < high")
    return replace(Window(), **spec)
