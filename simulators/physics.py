"""Physics constants and closed forms shared by the detector simulators.

Values from the PDG Review of Particle Physics ("Passage of particles through
matter", "Atomic and nuclear properties of materials"); GFlash constants from
Grindhammer & Peters (hep-ex/0001020). SI-like units: m, T, GeV, unless a name
says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

#: GeV/c per (T·m) for a unit charge: p_T = 0.299792458·B·R.
C_LIGHT = 0.299792458
MUON_MASS = 0.1056583755  # GeV
ELECTRON_MASS = 0.51099895e-3  # GeV
#: Highland's constant (GeV).
HIGHLAND = 0.0136
#: K = 4π N_A r_e² m_e c² (GeV cm²/mol) of the Bethe formula [PDG, "Passage of particles through matter"].
K_BETHE = 0.307075e-3


@dataclass(frozen=True)
class Material:
    """A material's bulk properties.

    Attributes:
        density: g/cm³.
        x0: radiation length in g/cm².
        z, a: atomic number and mass (effective for compounds).
        critical_energy: electron critical energy E_c in MeV.
        dedx_min: minimum ionisation in MeV cm²/g.
        price: illustrative price per kg (placeholder units, not a quotation).
    """

    name: str
    density: float
    x0: float
    z: float
    a: float
    critical_energy: float
    dedx_min: float
    price: float = 0.0

    @property
    def x0_cm(self) -> float:
        return self.x0 / self.density

    @property
    def moliere_radius_cm(self) -> float:
        return self.x0_cm * 21.2052 / self.critical_energy


MATERIALS: dict[str, Material] = {
    "Fe": Material("Fe", 7.874, 13.84, 26, 55.845, 21.68, 1.451, price=2.0),
    "Cu": Material("Cu", 8.96, 12.86, 29, 63.546, 19.42, 1.403, price=10.0),
    "W": Material("W", 19.3, 6.76, 74, 183.84, 7.97, 1.145, price=50.0),
    "Pb": Material("Pb", 11.35, 6.37, 82, 207.2, 7.43, 1.122, price=3.0),
    # active media (price per kg is not used for them; see the calorimeter's area price)
    "scintillator": Material("scintillator", 1.032, 43.90, 5.6, 11.2, 94.0, 1.956),
    "LAr": Material("LAr", 1.396, 19.55, 18, 39.948, 32.8, 1.508),
    "Si": Material("Si", 2.329, 21.82, 14, 28.0855, 40.2, 1.664),
    # cavern walls: PDG "shielding concrete" (ρ 2.30 g/cm³, X0 26.57 g/cm², Z/A 0.50274, dE/dx_min 1.711 MeV cm²/g);
    # Z, A effective (A = Z/0.50274); E_c ≈ 610 MeV/(Z + 1.24) (PDG approximation for solids, derived)
    "concrete": Material("concrete", 2.30, 26.57, 11.0, 11.0 / 0.50274, 49.4, 1.711),
}

#: Muon ionisation loss a(E) in iron, MeV cm²/g (Bethe with the PDG Fe Sternheimer parameters).
IRON_A_TABLE_E = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 347.0, 1000.0)
IRON_A_TABLE = (1.47, 1.56, 1.75, 1.93, 2.05, 2.16, 2.26, 2.34)
#: Radiative loss coefficient b of muons in iron at E_μc (g⁻¹ cm²): a(347 GeV)/347 GeV [PDG E_μc = 347 GeV].
IRON_B = 6.5e-6
#: b(E) = b_brems + b_pair + b_nucl of muons in iron (10⁻⁶ g⁻¹ cm²) at IRON_B_TABLE_E (GeV), linear in ln E
#: between the points. Shape after the PDG muon tables (Groom, Mokhov, Striganov, ADNDT 78 (2001) 183;
#: pdg.lbl.gov AtomicNuclearProperties MUE/muE_iron_Fe) and the PDG figure of b(E) in iron: ≈ 3.5 at
#: 10 GeV rising to ≈ 7 at 1 TeV (pair ≈ ½, bremsstrahlung ≈ 40 %, photonuclear ≈ 10 %), anchored at
#: b(347 GeV) = a/E_μc. Read off to ≈ 5 %: re-check the digits against muE_iron_Fe.txt before tightening.
IRON_B_TABLE_E = (1.0, 3.0, 10.0, 30.0, 100.0, 347.0, 1000.0, 10000.0)
IRON_B_TABLE = (1.4, 2.5, 3.5, 4.5, 5.6, 6.5, 7.2, 8.0)


@dataclass(frozen=True)
class BetheMedium:
    """What the Bethe formula needs of a medium [PDG, "Atomic and nuclear properties of materials"].

    Attributes:
        za: Z/A (mol/g).
        i_ev: mean excitation energy I (eV).
        c_bar, x0, x1, a, k, delta0: Sternheimer's density-effect parameters (−C, x0, x1, a, k, δ0).
    """

    za: float
    i_ev: float
    c_bar: float
    x0: float
    x1: float
    a: float
    k: float
    delta0: float = 0.0


#: Iron: the PDG muon-table header for Fe (I = 286 eV, −C 4.2911, x0 −0.0012, x1 3.1531, a 0.1468, k 2.9632, δ0 0.12).
BETHE_IRON = BetheMedium(26 / 55.845, 286.0, 4.2911, -0.0012, 3.1531, 0.1468, 2.9632, 0.12)
#: Shielding (Portland) concrete: I = 135.2 eV, −C 3.9464, x0 0.1301, x1 3.0466, a 0.07515, k 3.5467, δ0 0
#: (Sternheimer, Berger & Seltzer 1984, as tabulated by the PDG; the same digits as the G4_CONCRETE row of Geant4's
#: ``G4DensityEffectData.cc``, whose G4_Fe row also matches BETHE_IRON, but for a = 0.146 there against PDG's 0.1468).
BETHE_CONCRETE = BetheMedium(0.50274, 135.2, 3.9464, 0.1301, 3.0466, 0.07515, 3.5467, 0.0)


def bethe_dedx(energy: float, medium: BetheMedium, mass: float = MUON_MASS) -> float:
    """Mean ionisation loss a(E) (GeV cm²/g) of a unit-charge spin-½ particle of total ``energy`` (GeV) [PDG Bethe]:
    K(Z/A)/β²·[½ln(2m_e β²γ² W_max/I²) − β² − δ(βγ)/2 + W_max²/(8E²)], δ after Sternheimer."""
    gamma = energy / mass
    beta2 = 1 - 1 / gamma**2
    bg2 = beta2 * gamma**2
    r = ELECTRON_MASS / mass
    wmax = 2 * ELECTRON_MASS * bg2 / (1 + 2 * gamma * r + r * r)
    x = 0.5 * math.log10(bg2)
    m = medium
    if x >= m.x1:
        delta = 2 * math.log(10) * x - m.c_bar
    elif x >= m.x0:
        delta = 2 * math.log(10) * x - m.c_bar + m.a * (m.x1 - x) ** m.k
    else:
        delta = m.delta0 * 10 ** (2 * (x - m.x0))
    i_gev = m.i_ev * 1e-9
    bracket = 0.5 * math.log(2 * ELECTRON_MASS * bg2 * wmax / i_gev**2) - beta2 - delta / 2 + wmax**2 / (8 * energy**2)
    return K_BETHE * m.za / beta2 * bracket


def highland_theta0(p: Tensor | float, beta: Tensor | float, x_over_x0: Tensor | float,
                    log_x_over_x0: float | None = None) -> Tensor | float:
    """Projected RMS scattering angle (rad) for a unit charge after ``x/X0`` radiation lengths.

    ``log_x_over_x0`` fixes the logarithm's argument (the stepping convention: one nominal total path).
    """
    lx = x_over_x0 if log_x_over_x0 is None else log_x_over_x0
    log_term = 1 + 0.038 * (torch.log(lx) if isinstance(lx, Tensor) else math.log(lx))
    return HIGHLAND / (beta * p) * (x_over_x0 ** 0.5) * log_term


def energy_after(e0: float, a: float, b: float, grams: float) -> float:
    """Muon energy after ``grams`` (g/cm²) with constant ``-dE/dX = a + b·E`` (a in GeV cm²/g, b in cm²/g)."""
    return (e0 + a / b) * math.exp(-b * grams) - a / b


def csda_range(e0: float, a: float, b: float) -> float:
    """Continuous-slowing-down range in g/cm² for constant a, b."""
    return math.log1p(b * e0 / a) / b


class IronIonisation:
    """a(E) and b(E) of muons in iron, linear in ln E between the table points (clamped outside).

    Evaluated by a lookup on a uniform ln E grid (0.3 GeV–10 TeV) so that it costs a few elementwise ops;
    ``both`` shares the index between a and b.
    """

    def __init__(self, points: int = 512) -> None:
        self.lo, self.hi = math.log(IRON_A_TABLE_E[0]), math.log(IRON_B_TABLE_E[-1])
        grid = np.linspace(self.lo, self.hi, points)
        self.step = (self.hi - self.lo) / (points - 1)
        self.values = np.stack([np.interp(grid, np.log(IRON_A_TABLE_E), IRON_A_TABLE) * 1e-3,  # GeV cm²/g
                                np.interp(grid, np.log(IRON_B_TABLE_E), IRON_B_TABLE) * 1e-6])  # cm²/g
        self._cache: dict[tuple[torch.device, torch.dtype], Tensor] = {}

    def _lookup(self, energy: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        key = (energy.device, energy.dtype)
        if key not in self._cache:
            self._cache[key] = torch.as_tensor(self.values, device=energy.device, dtype=energy.dtype)
        table = self._cache[key]
        u = torch.nan_to_num((torch.log(energy) - self.lo) / self.step).clamp(0, table.shape[1] - 1.000001)
        i = u.long()
        return table, i, u - i

    def __call__(self, energy: Tensor) -> Tensor:
        """``energy`` [...] in GeV → a(E) [...] in GeV cm²/g."""
        table, i, f = self._lookup(energy)
        return torch.lerp(table[0][i], table[0][i + 1], f)

    def both(self, energy: Tensor) -> tuple[Tensor, Tensor]:
        """``energy`` [...] in GeV → (a(E) in GeV cm²/g, b(E) in cm²/g), each [...]."""
        table, i, f = self._lookup(energy)
        ab = torch.lerp(table[:, i], table[:, i + 1], f)
        return ab[0], ab[1]

    def radiative(self, energy: Tensor) -> Tensor:
        """``energy`` [...] in GeV → b(E) [...] in cm²/g."""
        return self.both(energy)[1]


def gamma_cdf(alpha: Tensor, beta: Tensor, t: Tensor) -> Tensor:
    """Fraction of a Gamma(α, β) longitudinal profile deposited before depth ``t`` (radiation lengths)."""
    return torch.special.gammainc(alpha, beta * t.clamp_min(0))


def delta_ray_variance(energy: float, za: float = 26 / 55.845, mass: float = MUON_MASS) -> float:
    """Variance per g/cm² (GeV² cm²/g) of the ionisation loss of a spin-½ particle of ``energy`` (GeV).

    The second moment of the knock-on spectrum [PDG, "Passage of particles through matter", δ rays]
    d²N/dT dX = (K/2)(Z/A)(1/β²)(1/T²)·(1 − β²T/W_max + T²/2E²) over 0 < T < W_max:
    (K/2)(Z/A)/β² · [W_max(1 − β²/2) + W_max³/(6E²)]. For GeV muons it is dominated by rare knock-ons near
    W_max (the Landau tail); Bohr's 0.157·(Z/A)·X MeV² is its non-relativistic limit.
    """
    p2 = energy**2 - mass**2
    beta2 = p2 / energy**2
    gamma = energy / mass
    r = ELECTRON_MASS / mass
    wmax = 2 * ELECTRON_MASS * p2 / mass**2 / (1 + 2 * gamma * r + r * r)
    return 0.5 * K_BETHE * za / beta2 * (wmax * (1 - beta2 / 2) + wmax**3 / (6 * energy**2))
