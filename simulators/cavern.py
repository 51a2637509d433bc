"""An optional concrete cavern around the muon shield: walls muons traverse, and whether the magnets fit.

The cavern's inner envelope is a rectangle |x| ≤ half_width(z), |y| ≤ half_height(z) around the beam
line, with one step in z (a narrower upstream hall, a wider downstream one), z measured from the shield's
first face. Outside it, up to the world box, is concrete (PDG shielding concrete, ``MATERIALS["concrete"]``):
a muon there loses the mean a(E) + b(E)·E of concrete over its path and scatters with concrete's X0
(Highland core, PDG correlated angle/offset recipe). a(E) is Bethe with the PDG concrete parameters
(:data:`simulators.physics.BETHE_CONCRETE`); b(E) is iron's b(E) scaled by X0(Fe)/X0(concrete), as
bremsstrahlung and pair production go as 1/X0 to leading order (b(693 GeV) = 3.5e-6 cm²/g, which is a/E_μc
of PDG standard rock, E_μc = 693 GeV, Z/A 0.5 like concrete). No straggling, hard losses or scattering
tails in concrete: a wall muon is already far outside any detector window.

``preset: ecn3`` takes the walls the SHiP shield-optimisation challenge checks designs against
(``lfpc/MuonShieldChallenge`` @ 15c5b3f, ``utils.py``: half-width 3.56 m and half-height 1.69 m up to
z = 18.378 m, 4.56 m and 3.35 m beyond).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from simulators.base import SimulatorOptionError
from simulators.physics import BETHE_CONCRETE, HIGHLAND, IRON_B_TABLE, IRON_B_TABLE_E, MATERIALS, MUON_MASS, bethe_dedx

CONCRETE = MATERIALS["concrete"]
#: b(E) of concrete relative to iron: radiative losses scale as 1/X0 to leading order (see the module docstring).
CONCRETE_B_SCALE = MATERIALS["Fe"].x0 / CONCRETE.x0
#: Nominal concrete path (m) fixing Highland's logarithm in the walls (κ = 1 + 0.038·ln(x/X0)).
WALL_LOG_LENGTH = 10.0
#: The ECN3 walls of the SHiP shield-optimisation challenge (m): half-widths, half-heights (upstream, downstream), step z.
ECN3 = {"half_width": (3.56, 4.56), "half_height": (1.69, 3.35), "z_step": 18.378}


@dataclass(frozen=True)
class Cavern:
    """Inner envelope of the cavern (m): ``|x| ≤ half_width[i]``, ``|y| ≤ half_height[i]``, i = 0 for
    ``z < z_step`` (from the shield's first face), 1 beyond. ``step``: step length (m) of the transport
    through air (gaps and the drift to the detector), where the walls are looked for; ``z_end``: where the
    walls end (default: they reach the detector plane)."""

    half_width: tuple[float, float]
    half_height: tuple[float, float]
    z_step: float = 0.0
    step: float = 1.0
    z_end: float = math.inf

    def envelope(self, z: float) -> tuple[float, float]:
        """(half-width, half-height) at ``z`` (the narrower hall at z = z_step itself; no walls beyond z_end)."""
        if z > self.z_end:
            return math.inf, math.inf
        i = 0 if z <= self.z_step else 1
        return self.half_width[i], self.half_height[i]


def make_cavern(spec: str | Mapping[str, Any] | None) -> Cavern | None:
    """``None`` (no cavern), ``ecn3``, or a dict with ``half_width``, ``half_height`` (a number or [up, down]),
    optional ``z_step``, ``z_end`` and ``step``, and optional ``preset`` whose values the others override.

    Raises:
        SimulatorOptionError: naming ``simulator.options.cavern[.key]``.
    """
    if spec is None:
        return None
    field = "simulator.options.cavern"
    if isinstance(spec, str):
        spec = {"preset": spec}
    spec = dict(spec)
    preset = spec.pop("preset", None)
    if preset is not None:
        if preset != "ecn3":
            raise SimulatorOptionError(f"{field}.preset", f"must be ecn3, got '{preset}'")
        spec = {**ECN3, **spec}
    known = ("half_width", "half_height", "z_step", "z_end", "step")
    for key in spec:
        if key not in known:
            raise SimulatorOptionError(f"{field}.{key}", f"unknown; a cavern takes preset, {', '.join(known)}")
    for key in ("half_width", "half_height"):
        if key not in spec:
            raise SimulatorOptionError(f"{field}.{key}", "missing (a number, or [upstream, downstream], in m)")
        v = spec[key]
        pair = tuple(float(x) for x in v) if isinstance(v, Sequence) and not isinstance(v, str) else (float(v),) * 2
        if len(pair) != 2 or min(pair) <= 0 or not all(map(math.isfinite, pair)):
            raise SimulatorOptionError(f"{field}.{key}", "must be a positive number or two of them, in m")
        spec[key] = pair
    if float(spec.get("step", 1.0)) <= 0:
        raise SimulatorOptionError(f"{field}.step", "must be positive (m)")
    z_end = spec.get("z_end")
    return Cavern(spec["half_width"], spec["half_height"], float(spec.get("z_step", 0.0)), float(spec.get("step", 1.0)),
                  math.inf if z_end is None else float(z_end))


def clearance(cavern: Cavern, faces: Sequence[tuple[float, float, float]]) -> float:
    """Smallest distance (m) between the magnets' outer faces and the walls, negative where a magnet sticks out.

    Args:
        faces: ``(z, outer_half_width, outer_half_height)`` (m, z from the shield's first face) at both faces of
            every element and, for one that spans ``z_step``, at ``z_step`` too: the outer extent is linear in
            z and the envelope constant on each side of the step, so the extremes lie there.
    """
    out = math.inf
    for z, w, h in faces:
        hw, hh = cavern.envelope(z)
        out = min(out, hw - w, hh - h)
    return out


class ConcreteLoss:
    """a(E) (Bethe, PDG concrete) and b(E) (iron's × X0 ratio) of muons in concrete on a ln E grid, as for iron."""

    def __init__(self, points: int = 256) -> None:
        self.lo, self.hi = math.log(0.2), math.log(IRON_B_TABLE_E[-1])
        grid = np.linspace(self.lo, self.hi, points)
        self.step = (self.hi - self.lo) / (points - 1)
        a = [bethe_dedx(max(math.exp(g), 1.0001 * MUON_MASS), BETHE_CONCRETE) for g in grid]
        b = np.interp(grid, np.log(IRON_B_TABLE_E), IRON_B_TABLE) * 1e-6 * CONCRETE_B_SCALE
        self.values = np.stack([np.asarray(a), b])
        self._cache: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def both(self, energy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``energy`` [k] (GeV) → (a in GeV cm²/g, b in cm²/g), each [k]."""
        key = (energy.device, energy.dtype)
        if key not in self._cache:
            self._cache[key] = torch.as_tensor(self.values, device=energy.device, dtype=energy.dtype)
        table = self._cache[key]
        u = ((torch.log(energy) - self.lo) / self.step).clamp(0, table.shape[1] - 1.000001)
        i = u.long()
        ab = torch.lerp(table[:, i], table[:, i + 1], u - i)
        return ab[0], ab[1]


def wall_step(s: Any, h: float, z: float, cavern: Cavern, loss: ConcreteLoss, gen: torch.Generator,
              stop_energy: float, world: float, magnet: tuple[float, float] | None = None, scatter: bool = True,
              energy_loss: bool = True) -> None:
    """Concrete for the muons of state ``s`` outside the cavern's envelope over a step of ``h`` along z at ``z``.

    ``s`` is the transport state (x, y, px, py, pz, p, live ``[n]``); the step's drift has been done. Only the
    moving muons inside the ``world`` box (m) and outside (and outside the magnet's outer box ``magnet`` = (half-width, half-height), whose iron takes
    precedence) are touched: a mean loss with the coefficients at the entrance energy, exact for constant a, b
    ((E + a/b)·e^{−bX} − a/b), and Highland scattering with the PDG correlated angle/offset recipe. A muon whose
    energy falls to ``stop_energy`` stops (``live`` = 0), as in iron.
    """
    hw, hh = cavern.envelope(z)
    tx, ty = s.px / s.pz, s.py / s.pz
    xm, ym = (s.x - tx * (h / 2)).abs(), (s.y - ty * (h / 2)).abs()  # mid-step
    # concrete up to the world box; muons beyond it or turned back are dropped at the next check
    out = ((xm > hw) | (ym > hh)) & (xm < world) & (ym < world) & (s.pz > 0)
    if magnet is not None:
        out &= (xm > magnet[0]) | (ym > magnet[1])
    idx = (out & (s.live > 0)).nonzero().squeeze(1)
    if len(idx) == 0:
        return
    p, pz = s.p[idx], s.pz[idx]
    energy = torch.sqrt(p * p + MUON_MASS**2)
    theta0 = (HIGHLAND * math.sqrt(100 / CONCRETE.x0_cm)) * energy / (p * p)  # per √m of path, at the entrance
    ds = h * p / pz.abs().clamp_min(1e-6)
    px, py = s.px[idx], s.py[idx]
    if energy_loss:
        a, b = loss.both(energy)
        grams = ds * (100 * CONCRETE.density)
        e_new = (energy + a / b) * torch.exp(-b * grams) - a / b
        s.live = s.live.index_put((idx,), s.live[idx] * (e_new > stop_energy))
        e_new = e_new.clamp_min(MUON_MASS)
        p_new = torch.sqrt((e_new * e_new - MUON_MASS**2).clamp_min(1e-12))
        scale = p_new / p
        px, py, pz, p = px * scale, py * scale, pz * scale, p_new
    if scatter:
        kappa = 1 + 0.038 * math.log(WALL_LOG_LENGTH * 100 / CONCRETE.x0_cm)
        z4 = torch.randn(4, len(idx), generator=gen, device=p.device, dtype=p.dtype)
        theta0 = theta0 * kappa * torch.sqrt(ds)
        off = ds * theta0
        s.x = s.x.index_add(0, idx, off * (z4[0] / math.sqrt(12) + z4[1] / 2))
        s.y = s.y.index_add(0, idx, off * (z4[2] / math.sqrt(12) + z4[3] / 2))
        tx_, ty_ = px / pz + z4[1] * theta0, py / pz + z4[3] * theta0
        pz = torch.copysign(p * torch.rsqrt(1 + tx_ * tx_ + ty_ * ty_), pz)
        px, py = tx_ * pz, ty_ * pz
    s.px, s.py, s.pz, s.p = (t.index_copy(0, idx, v) for t, v in ((s.px, px), (s.py, py), (s.pz, pz), (s.p, p)))
