"""A parametrisation of the SHiP muon flux after the target: ``source: ship_beam_dump`` of the muon shield.

Muons from 400 GeV/c protons on the SHiP target (TZM + W; about 10¹¹ muons per spill of 4×10¹³ protons,
from π, K, ρ, ω and charm decays; EPJC 80 (2020) 284, arXiv:2001.04784). Closed forms fitted to the
Gaussian-mixture model of the SHiP muon sample after the target (FairShip Pythia8 + Geant4 with cascade
charm; 2.3×10⁹ muons) that the SHiP shield-optimisation challenge publishes (``lfpc/MuonShieldChallenge``
@ 15c5b3f, ``configs/gmm_model.json``, ``configs/z_beta_fit.json``, ``MuonsGenerator.py``). The fits were
made to 4×10⁶ muons drawn from that mixture; docs/physics.md tabulates how close they come to it.

- **p**: dN/d ln p ∝ exp(c₁L + c₂L²)·(1 − p/p_beam)^β, L = ln(p/20 GeV), p_beam = 400 GeV (the kinematic limit);
  c₁ = −1.296, c₂ = −0.0945, β = 2.77: within ±8 % of the mixture from 14 to 290 GeV. The sample holds next to
  no muons below ≈ 12 GeV (a cut of the sample), so the default range starts at 14 GeV; such muons stop in
  8 m of iron and no shield of that length lets them through.
- **p_T given p**: ln p_T is a mixture of two Gaussians whose centres and weight move with L: a narrow one,
  N(−0.915 + 0.122L, 0.560), and a broad one, N(−1.851 + 0.312L, 0.920), of weight
  w(p) = 1/(1 + e^{1.412 − 0.187L}) (0.20 at 20 GeV, 0.29 at 200 GeV). So p_T grows harder with p (mean
  0.44 GeV at 20–50 GeV, 0.55 GeV at 100–200 GeV) and its tail grows faster than its mean. Fitted by maximum
  likelihood to the muons above 30 GeV (those that can cross a shield): mean p_T within 1.5 % and P(p_T > 1,
  2, 3 GeV) within 20 % of the mixture at 50–200 GeV; below 50 GeV and above 200 GeV the tail beyond 2 GeV
  is up to 5× too heavy (conservative for a background).
- **charge**: μ⁺/μ⁻ = r₀ + r₁·p/p_beam. The published mixture has none (its generator draws ±1 with
  probability ½) and the sources here give no number, so r₀ = 1, r₁ = 0 by default. Leading π⁺ and K⁺
  from the beam protons make μ⁺ more frequent at high p: set r₀, r₁ to a measured ratio.
- **production point**: depth from the target's upstream face from the published Beta fit, z = −8.84 cm +
  443.2 cm·Beta(2.52, 29.29) (mean 26 cm, mode 14 cm: most muons come from the first interaction
  lengths, prompt decays and π/K decays in flight alike; a thin tail reaches the end of the target and
  beyond); transverse point on the ring of 5 cm radius the beam is swept around on the target, smeared by
  1.6 cm (the same generator). The muon flies straight from there to the shield's first face,
  ``target_length`` behind the target's upstream face (1.543 m: the SHiP-like target of the 2018 flux
  measurement); the target's own material is in the fitted momenta and is not transported again. Muons
  produced beyond the face start on it at their production (x, y).

Everything is sampled with detopt's generators (inverse CDFs tabulated once in float64, then torch ops on the
call's device). ``sampling: physical`` (default) gives weights 1; ``log_p`` draws p uniform in ln p (27× more
muons above 100 GeV) and weights each muon by f_phys/f_draw (weights average 1, so a weighted mean is a
physical fraction), for background estimates where only the hard tail counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import overload

import numpy as np
import torch
from torch import Tensor

from simulators.base import SimulatorOptionError


@dataclass
class Muons:
    """Initial muons, each tensor ``[n]`` (m, GeV)."""

    x: Tensor
    y: Tensor
    px: Tensor
    py: Tensor
    pz: Tensor
    charge: Tensor
    weight: Tensor


def _muons(x: Tensor, y: Tensor, px: Tensor, py: Tensor, pz: Tensor, charge: Tensor, weight: Tensor,
           dtype: torch.dtype) -> Muons:
    return Muons(*(t.to(dtype) for t in (x, y, px, py, pz, charge, weight)))


#: Beam momentum (GeV/c): the kinematic limit of the muon momenta.
P_BEAM = 400.0
#: dN/d ln p ∝ exp(C1·L + C2·L²)·(1 − p/P_BEAM)^BETA, L = ln(p/P_REF): least-squares fit to the mixture, 13–330 GeV.
P_REF, C1, C2, BETA = 20.0, -1.2962, -0.09453, 2.765
#: ln p_T (GeV) = mixture of N(a + g·L, s), (a, g, s) for the narrow and the broad component; the broad one's
#: weight is 1/(1 + exp(−(W0 + W1·L))). Maximum-likelihood fit to the mixture's muons above 30 GeV.
PT_NARROW = (-0.91532, 0.12232, 0.56006)
PT_BROAD = (-1.85122, 0.31159, 0.91979)
PT_W0, PT_W1 = -1.41245, 0.18654
#: Production depth (m) from the target's upstream face: LOC + SCALE·Beta(A, B) (the published fit, in cm there).
DEPTH_A, DEPTH_B, DEPTH_LOC, DEPTH_SCALE = 2.520298, 29.286606, -0.0884233, 4.4322266
#: Ring the beam is swept around on the target and its Gaussian smearing (m).
RING_RADIUS, RING_SIGMA = 0.05, 0.016
#: Target length (m) of the 2018 flux measurement's SHiP-like target (EPJC 80 (2020) 284): production depth → first face.
TARGET_LENGTH = 1.543
#: Points of the tabulated inverse CDFs, uniform in t = −ln(1 − u) up to T_MAX (a survival of e^-T_MAX ≈ 1e-12):
#: Δt = 0.007, i.e. the tabulated density is exact to < 1 % everywhere, tails included.
TABLE_POINTS, T_MAX = 4096, 27.6
#: Largest p_T/p kept (a 30° cone): a log-normal draw beyond it (≪ 1e-8 of the muons) is clipped to it.
MAX_PT_OVER_P = 0.5


def p_density(p: np.ndarray) -> np.ndarray:
    """Unnormalised dN/dp (per GeV) of the parametrisation at ``p`` (GeV), zero at and beyond P_BEAM."""
    p = np.asarray(p, dtype=float)
    lp = np.log(p / P_REF)
    x = np.clip(1 - p / P_BEAM, 0.0, None)
    return np.exp(C1 * lp + C2 * lp * lp) * x**BETA / p


def _p_density_torch(p: Tensor) -> Tensor:
    """:func:`p_density` in torch."""
    lp = torch.log(p / P_REF)
    return torch.exp(C1 * lp + C2 * lp * lp) * (1 - p / P_BEAM).clamp_min(0) ** BETA / p


def broad_weight(p: np.ndarray) -> np.ndarray:
    """Weight of the broad p_T component at ``p`` (GeV)."""
    return 1 / (1 + np.exp(-(PT_W0 + PT_W1 * np.log(np.asarray(p, dtype=float) / P_REF))))


def _broad_weight_torch(p: Tensor) -> Tensor:
    """:func:`broad_weight` in torch."""
    return torch.sigmoid(PT_W0 + PT_W1 * torch.log(p / P_REF))


def mean_pt(p: np.ndarray) -> np.ndarray:
    """Closed-form mean p_T (GeV) at ``p``: Σ weight·exp(a + gL + s²/2) over the two log-normal components."""
    lp = np.log(np.asarray(p, dtype=float) / P_REF)
    w = broad_weight(p)
    (a1, g1, s1), (a2, g2, s2) = PT_NARROW, PT_BROAD
    return (1 - w) * np.exp(a1 + g1 * lp + s1 * s1 / 2) + w * np.exp(a2 + g2 * lp + s2 * s2 / 2)


def pt_survival(t: float, p: np.ndarray) -> np.ndarray:
    """Closed-form P(p_T > t | p)."""
    from scipy import stats

    lp = np.log(np.asarray(p, dtype=float) / P_REF)
    w = broad_weight(p)
    (a1, g1, s1), (a2, g2, s2) = PT_NARROW, PT_BROAD
    return (1 - w) * stats.norm.sf(math.log(t), a1 + g1 * lp, s1) + w * stats.norm.sf(math.log(t), a2 + g2 * lp, s2)


class _InverseCdf:
    """x(u) of a tabulated CDF, for u ~ U(0, 1): linear between points uniform in t = −ln(1 − u), so the tail is
    as finely resolved as the bulk. ``x`` ``[TABLE_POINTS]`` are the quantiles at those t."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = np.asarray(x, dtype=float)
        self.dt = T_MAX / (len(self.x) - 1)
        self._cache: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    @classmethod
    def from_survival(cls, grid: np.ndarray, survival: np.ndarray) -> _InverseCdf:
        """From a survival function tabulated on an increasing ``grid`` (1 at the first point, decreasing)."""
        t = -np.log(np.clip(survival, 1e-300, 1.0))
        t_grid = np.linspace(0.0, T_MAX, TABLE_POINTS)
        keep = np.concatenate([[True], np.diff(t) > 0])  # strictly increasing for the interpolation
        return cls(np.interp(t_grid, t[keep], grid[keep]))

    def __call__(self, u: Tensor) -> Tensor:
        key = (u.device, u.dtype)
        if key not in self._cache:
            self._cache[key] = torch.as_tensor(self.x, device=u.device, dtype=u.dtype)
        table = self._cache[key]
        f = (-torch.log1p(-u) / self.dt).clamp(0, len(self.x) - 1.000001)
        i = f.long()
        return torch.lerp(table[i], table[i + 1], f - i)


#: Where a muon source's options sit in a study: a refused option is named ``simulator.options.source.<option>``.
SOURCE_FIELD = "simulator.options.source"


def source_error(option: str, message: str) -> SimulatorOptionError:
    """The one-line error of a refused source option, naming its study field."""
    return SimulatorOptionError(f"{SOURCE_FIELD}.{option}", message)


class ShipBeamDumpSource:
    """Muons after the SHiP target from a fitted parametrisation (see the module docstring).

    Args:
        p_min, p_max: momentum range (GeV); p_max ≤ 400 GeV.
        charge_ratio: μ⁺/μ⁻ at p → 0 (r₀); ``charge_ratio_slope``: its growth per unit p/400 GeV (r₁).
        target_length: distance (m) from the target's upstream face to the shield's first face.
        ring_radius, ring_sigma: beam-sweep ring on the target and its smearing (m).
        sampling: ``physical`` (weights 1) or ``log_p`` (p uniform in ln p, weights f_phys/f_draw).
    """

    def __init__(self, p_min: float = 14.0, p_max: float = P_BEAM, charge_ratio: float = 1.0,
                 charge_ratio_slope: float = 0.0, target_length: float = TARGET_LENGTH,
                 ring_radius: float = RING_RADIUS, ring_sigma: float = RING_SIGMA, sampling: str = "physical") -> None:
        if not 1.0 <= p_min < P_BEAM:
            raise source_error("p_min", f"must be at least 1 and below {P_BEAM:g} GeV, got {p_min:g}")
        if not p_min < p_max <= P_BEAM:
            raise source_error("p_max", f"must be above p_min ({p_min:g}) and at most {P_BEAM:g} GeV, got {p_max:g}")
        if charge_ratio <= 0:
            raise source_error("charge_ratio", f"must be positive, got {charge_ratio:g}")
        if charge_ratio + charge_ratio_slope * p_max / P_BEAM <= 0:
            raise source_error("charge_ratio_slope", f"makes the charge ratio negative below p_max: "
                               f"{charge_ratio:g} + {charge_ratio_slope:g}·p/{P_BEAM:g}")
        for name, value in (("target_length", target_length), ("ring_radius", ring_radius), ("ring_sigma", ring_sigma)):
            if value < 0:
                raise source_error(name, f"must be non-negative, got {value:g}")
        if sampling not in ("physical", "log_p"):
            raise source_error("sampling", f"must be physical or log_p, got {sampling!r:.40}")
        from scipy import integrate, stats

        self.sampling = sampling
        self.p_min, self.p_max = float(p_min), float(p_max)
        self.charge_ratio, self.charge_ratio_slope = float(charge_ratio), float(charge_ratio_slope)
        self.target_length, self.ring_radius, self.ring_sigma = float(target_length), float(ring_radius), float(ring_sigma)
        grid = np.geomspace(self.p_min, self.p_max, 20001)
        dens = p_density(grid)
        cdf = np.concatenate([[0.0], np.cumsum((dens[1:] + dens[:-1]) / 2 * np.diff(grid))])
        self._p = _InverseCdf.from_survival(grid, 1 - cdf / cdf[-1])
        t_grid = np.linspace(0.0, T_MAX, TABLE_POINTS)
        beta = stats.beta(DEPTH_A, DEPTH_B)
        self._depth = _InverseCdf(DEPTH_LOC + DEPTH_SCALE * beta.isf(np.exp(-t_grid)))
        self._norm = integrate.quad(p_density, self.p_min, self.p_max, limit=200)[0]

    def p_fraction_above(self, p: float) -> float:
        """Closed form (quadrature of :func:`p_density`) of the share of muons above ``p`` (GeV)."""
        from scipy import integrate

        num = integrate.quad(p_density, max(p, self.p_min), self.p_max, limit=200)[0] if p < self.p_max else 0.0
        return num / integrate.quad(p_density, self.p_min, self.p_max, limit=200)[0]

    def p_mean(self) -> float:
        """Closed form of the mean momentum (GeV)."""
        from scipy import integrate

        norm = integrate.quad(p_density, self.p_min, self.p_max, limit=200)[0]
        return integrate.quad(lambda p: p * p_density(p), self.p_min, self.p_max, limit=200)[0] / norm

    @overload
    def positive_fraction(self, p: np.ndarray) -> np.ndarray: ...
    @overload
    def positive_fraction(self, p: Tensor) -> Tensor: ...

    def positive_fraction(self, p: np.ndarray | Tensor) -> np.ndarray | Tensor:
        """P(μ⁺ | p) = R/(1 + R), R = r₀ + r₁·p/400."""
        r = self.charge_ratio + self.charge_ratio_slope * p / P_BEAM
        return r / (1 + r)

    def sample(self, n: int, gen: torch.Generator, device: torch.device, dtype: torch.dtype) -> Muons:
        """``n`` muons after the target from ``gen``: p, p_T given p, charge given p, production depth."""

        f64 = torch.float64
        u = torch.rand(6, n, generator=gen, device=device, dtype=f64)
        z = torch.randn(3, n, generator=gen, device=device, dtype=f64)
        if self.sampling == "physical":
            p, weight = self._p(u[0]), torch.ones(n, device=device, dtype=f64)
        else:
            log_range = math.log(self.p_max / self.p_min)
            p = self.p_min * torch.exp(log_range * u[0])
            weight = p * _p_density_torch(p) * (log_range / self._norm)
        lp = torch.log(p / P_REF)
        broad = u[1] < _broad_weight_torch(p)
        (a1, g1, s1), (a2, g2, s2) = PT_NARROW, PT_BROAD
        ln_pt = torch.where(broad, a2 + g2 * lp + s2 * z[0], a1 + g1 * lp + s1 * z[0])
        pt = torch.minimum(torch.exp(ln_pt), MAX_PT_OVER_P * p)
        phi = (2 * math.pi) * u[2]
        charge = torch.where(u[3] < self.positive_fraction(p), 1.0, -1.0)
        px, py = pt * torch.cos(phi), pt * torch.sin(phi)
        pz = torch.sqrt(p * p - pt * pt)
        ring = (2 * math.pi) * u[4]
        x = self.ring_radius * torch.cos(ring) + self.ring_sigma * z[1]
        y = self.ring_radius * torch.sin(ring) + self.ring_sigma * z[2]
        flight = (self.target_length - self._depth(u[5])).clamp_min(0)  # straight to the shield's first face
        x, y = x + px / pz * flight, y + py / pz * flight
        return _muons(x, y, px, py, pz, charge, weight, dtype)
