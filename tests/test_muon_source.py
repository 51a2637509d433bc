"""The SHiP beam-dump muon source and the concrete cavern: sampled against their own closed forms (each test names
its formula and tolerance; docs/physics.md, bench/physics_checks.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from simulators.base import SimulatorOptionError
from simulators.cavern import CONCRETE, CONCRETE_B_SCALE, WALL_LOG_LENGTH, ConcreteLoss, make_cavern
from simulators.muon_shield import Element, Geometry, MuonShield, Muons, Physics, transport
from simulators.muon_source import (
    DEPTH_A,
    DEPTH_B,
    DEPTH_LOC,
    DEPTH_SCALE,
    P_BEAM,
    ShipBeamDumpSource,
    mean_pt,
)
from simulators.physics import (
    BETHE_CONCRETE,
    BETHE_IRON,
    HIGHLAND,
    IRON_A_TABLE,
    IRON_A_TABLE_E,
    IRON_B_TABLE,
    IRON_B_TABLE_E,
    MUON_MASS,
    IronIonisation,
    bethe_dedx,
)

F64 = torch.float64
CPU = torch.device("cpu")
SEEDS = (0, 1, 2)
N = 200_000


def draw(src: ShipBeamDumpSource, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, Muons]:
    m = src.sample(n, torch.Generator().manual_seed(seed), CPU, F64)
    p = torch.sqrt(m.px**2 + m.py**2 + m.pz**2).numpy()
    return p, torch.sqrt(m.px**2 + m.py**2).numpy(), m


def test_ship_source_momentum_follows_its_closed_form() -> None:
    """Mean p and P(p > 50, 100, 200 GeV) against the quadrature of dN/dp, 3 seeds, within 4 standard errors."""
    src = ShipBeamDumpSource()
    for seed in SEEDS:
        p, _, m = draw(src, N, seed)
        assert p.min() >= src.p_min - 1e-9 and p.max() <= src.p_max
        assert abs(p.mean() - src.p_mean()) < 4 * p.std() / math.sqrt(N)
        for t in (50.0, 100.0, 200.0):
            f = src.p_fraction_above(t)
            assert abs(np.mean(p > t) - f) < 4 * math.sqrt(f * (1 - f) / N) + 1e-6, t
        assert torch.all(m.weight == 1)


def test_ship_source_pt_hardens_with_p_as_its_closed_form() -> None:
    """Mean p_T in bins of p against Σ w·exp(a + gL + s²/2) of the two log-normal components (4 s.e., 3 seeds
    pooled); and it rises: 20–50 GeV < 50–100 GeV < 100–200 GeV."""
    src = ShipBeamDumpSource(sampling="log_p")  # enough muons in every bin; the p_T law given p is the same
    pooled = [draw(src, N, s)[:2] for s in SEEDS]
    p, pt = np.concatenate([a for a, _ in pooled]), np.concatenate([b for _, b in pooled])
    means = []
    for lo, hi in ((20, 50), (50, 100), (100, 200)):
        sel = (p > lo) & (p < hi)
        expected = mean_pt(p[sel]).mean()
        assert abs(pt[sel].mean() - expected) < 4 * pt[sel].std() / math.sqrt(sel.sum()), (lo, hi)
        means.append(pt[sel].mean())
    assert means[0] < means[1] < means[2]


def test_ship_source_importance_weights_give_the_physical_fractions() -> None:
    """``sampling: log_p``: weights average 1 and Σw·1(p > 100)/n = P(p > 100) of the closed form (4 s.e.)."""
    src = ShipBeamDumpSource(sampling="log_p")
    for seed in SEEDS:
        p, _, m = draw(src, N, seed)
        w = m.weight.numpy()
        assert abs(w.mean() - 1) < 4 * w.std() / math.sqrt(N)
        wa = w * (p > 100)
        assert abs(wa.mean() - src.p_fraction_above(100.0)) < 4 * wa.std() / math.sqrt(N)


@pytest.mark.parametrize(("r0", "r1"), [(1.0, 0.0), (1.3, 2.0)])
def test_ship_source_charge_ratio(r0: float, r1: float) -> None:
    """P(μ⁺) = R/(1 + R), R = r₀ + r₁·p/400, averaged over the drawn p (4 binomial s.e., 3 seeds)."""
    src = ShipBeamDumpSource(charge_ratio=r0, charge_ratio_slope=r1, sampling="log_p")
    for seed in SEEDS:
        p, _, m = draw(src, N, seed)
        expected = src.positive_fraction(p)
        plus = (m.charge.numpy() > 0).astype(float)
        assert abs(plus.mean() - expected.mean()) < 4 * math.sqrt(0.25 / N)
        hard = p > 200  # the ratio grows with p when r₁ > 0
        assert abs(plus[hard].mean() - expected[hard].mean()) < 4 * math.sqrt(0.25 / hard.sum())


def test_ship_source_production_depth_and_ring() -> None:
    """With no ring, x = (px/pz)·(L − depth): the mean flight L − (loc + scale·a/(a + b)) of the Beta fit (4 s.e.);
    with no flight (target_length 0), r = |5 cm ring point + 2-D Gaussian of 1.6 cm|: a Rice distribution (4 s.e.)."""
    length = 2.0
    src = ShipBeamDumpSource(ring_radius=0.0, ring_sigma=0.0, target_length=length)
    beta = stats.beta(DEPTH_A, DEPTH_B)
    mean_depth = DEPTH_LOC + DEPTH_SCALE * beta.mean()
    sd_depth = DEPTH_SCALE * beta.std()
    for seed in SEEDS:
        _, _, m = draw(src, N, seed)
        flight = (m.x / (m.px / m.pz)).numpy()
        assert abs(flight.mean() - (length - mean_depth)) < 4 * sd_depth / math.sqrt(N)
        assert flight.std() == pytest.approx(sd_depth, rel=0.02)
    _, _, m = draw(ShipBeamDumpSource(target_length=0.0), N, 0)
    r = torch.hypot(m.x, m.y).numpy()
    rice = stats.rice(0.05 / 0.016, scale=0.016)  # |ring point + 2-D Gaussian|
    assert abs(r.mean() - rice.mean()) < 4 * rice.std() / math.sqrt(N)


def test_ship_source_is_seeded_by_detopt_generators() -> None:
    """The same generator seed gives the same muons, another seed others; a simulator call reproduces."""
    src = ShipBeamDumpSource()
    a, b, c = (src.sample(1000, torch.Generator().manual_seed(s), CPU, F64) for s in (5, 5, 6))
    assert torch.equal(a.px, b.px) and torch.equal(a.charge, b.charge) and not torch.equal(a.px, c.px)
    sim = MuonShield(source="ship_beam_dump", columns=["p0", "pt0", "charge"], device="cpu")
    assert np.array_equal(sim.simulate({}, 500, 3).samples, sim.simulate({}, 500, 3).samples)


def test_misspelt_source_and_cavern_are_one_line_study_errors(write_study, tmp_path: Path, capsys) -> None:
    """A wrong source kind, source option or cavern key names its study field; the CLI prints one line, exit 2."""
    from conftest import base_study
    from optimizer.cli import main

    for spec, field in (("ship_beamdump", "simulator.options.source"),
                        ({"kind": "ship_beam_dump", "p_mn": 3}, "simulator.options.source.p_mn")):
        with pytest.raises(SimulatorOptionError) as err:
            MuonShield(source=spec)
        assert err.value.field == field
    with pytest.raises(SimulatorOptionError) as err:
        MuonShield(cavern={"half_widht": 3, "half_height": 2})
    assert err.value.field == "simulator.options.cavern.half_widht"
    with pytest.raises(SimulatorOptionError, match="ecn3"):
        make_cavern("ecn4")
    study = base_study(simulator={"name": "muon_shield", "options": {"source": "ship_beamdump"}})
    rc = main(["run", str(write_study(study)), "--output", str(tmp_path / "out"), "-q"])
    out = capsys.readouterr().err
    assert rc == 2 and "simulator.options.source: must be one of" in out and len(out.strip().splitlines()) == 1


# -- the cavern -------------------------------------------------------------------------------------------------
def test_bethe_formula_reproduces_the_iron_table_and_concrete_minimum() -> None:
    """bethe_dedx with the PDG Fe parameters gives the a(E) table to 0.5 %; with concrete's, the minimum
    ionisation 1.711 MeV cm²/g [PDG] to 2 %."""
    for e, a in zip(IRON_A_TABLE_E, IRON_A_TABLE):
        assert bethe_dedx(e, BETHE_IRON) * 1e3 == pytest.approx(a, rel=5e-3), e
    es = np.geomspace(0.15, 2.0, 400)
    assert min(bethe_dedx(e, BETHE_CONCRETE) for e in es) * 1e3 == pytest.approx(CONCRETE.dedx_min, rel=0.02)


def wall_run(p: float, n: int, length: float, seed: int = 0, z_end: float | None = None,
             **physics: object) -> dict[str, torch.Tensor]:
    """Muons of ``p`` along z at x = 1 m, outside a 0.5 m cavern, for ``length`` m (a 0.2 mm iron wire on the axis)."""
    geometry = Geometry((Element(0.0, 1e-4, (1e-3, 1e-3), (1e-3, 1e-3), (0.0, 0.0), 0.0, 0.0),), length)
    z = torch.zeros(n, dtype=F64)
    muons = Muons(z + 1.0, z.clone(), z.clone(), z.clone(), torch.full((n,), p, dtype=F64), z + 1.0, z + 1.0)
    phys = Physics(**{"world": 1e3, "p_kill": 0.01, **physics})
    cavern = make_cavern({"half_width": 0.5, "half_height": 0.5, "step": 0.5, "z_end": z_end})
    return transport(muons, geometry, phys, torch.Generator().manual_seed(seed), IronIonisation(), cavern)


def concrete_energy_after(e0: float, metres: float) -> float:
    """E after ``metres`` of concrete: dE/dX = −(a(E) + b(E)E), a Bethe (PDG concrete), b = b_Fe(E)·X0(Fe)/X0(concrete)."""
    def rhs(_: float, e: np.ndarray) -> np.ndarray:
        b = np.interp(np.log(e[0]), np.log(IRON_B_TABLE_E), IRON_B_TABLE) * 1e-6 * CONCRETE_B_SCALE
        return np.array([-(bethe_dedx(e[0], BETHE_CONCRETE) + b * e[0])])

    sol = integrate.solve_ivp(rhs, (0.0, metres * 100 * CONCRETE.density), [e0], rtol=1e-10, atol=1e-10)
    return float(sol.y[0, -1])


def test_muons_through_concrete_lose_the_bethe_plus_radiative_expectation() -> None:
    """100 GeV/c through 10 m of concrete (continuous): E_exit = ∫ of Bethe + b(E)·E to 0.3 %."""
    r = wall_run(100.0, 1, 10.0, field=False, scattering=False, energy_loss="continuous")
    e_exit = math.hypot(r["pz"].item(), MUON_MASS)
    assert e_exit == pytest.approx(concrete_energy_after(math.hypot(100.0, MUON_MASS), 10.0 + 2e-4), rel=3e-3)
    assert r["alive"].item()


def test_concrete_scatters_by_highland_and_stops_soft_muons() -> None:
    """10 m of concrete, 50 GeV/c, no loss: projected θ RMS = Highland (fixed log of 10 m) to 2 % and offset
    RMS = xθ0/√3 to 3 %; 3 GeV/c muons (CSDA range ≈ 6 m of concrete) never get through 10 m."""
    n = 20_000
    r = wall_run(50.0, n, 10.0, seed=1, field=False, energy_loss="off", scattering="gaussian")
    x_x0 = 1000.0 / CONCRETE.x0_cm
    beta = 50.0 / math.hypot(50.0, MUON_MASS)
    theta0 = HIGHLAND / (beta * 50.0) * math.sqrt(x_x0) * (1 + 0.038 * math.log(WALL_LOG_LENGTH * 100 / CONCRETE.x0_cm))
    th = (r["py"] / r["pz"]).numpy()
    assert th.std() == pytest.approx(theta0, rel=0.02)
    assert r["y"].numpy().std() == pytest.approx(10.0 * theta0 / math.sqrt(3), rel=0.03)
    soft = wall_run(3.0, 2000, 10.0, seed=2, field=False, scattering=False, energy_loss="continuous")
    assert int(soft["alive"].sum()) == 0
    # walls that end after 2 m: 3 GeV/c muons lose ≈ 1 GeV there and fly on
    short = wall_run(3.0, 200, 10.0, seed=2, field=False, scattering=False, energy_loss="continuous", z_end=2.0)
    assert bool(short["alive"].all()) and float(short["pz"].max()) < 2.2


def test_concrete_loss_table_matches_its_formula() -> None:
    """The tabulated a(E), b(E) of concrete equal Bethe and the X0-scaled iron b(E) to 0.2 %."""
    loss = ConcreteLoss()
    es = torch.tensor([1.0, 10.0, 100.0, 1000.0], dtype=F64)
    a, b = loss.both(es)
    for e, ai, bi in zip(es.tolist(), a.tolist(), b.tolist()):
        assert ai == pytest.approx(bethe_dedx(e, BETHE_CONCRETE), rel=2e-3)
        b_fe = np.interp(math.log(e), np.log(IRON_B_TABLE_E), IRON_B_TABLE) * 1e-6
        assert bi == pytest.approx(b_fe * CONCRETE_B_SCALE, rel=2e-3)


def test_cavern_clearance_equals_the_hand_computed_value() -> None:
    """A frustum X 1 → 2 m, Y 1 → 1.5 m, 5 m long; walls (3, 1.5) m wide and 2 m high, step at 2.5 m:
    entrance min(3 − 1, 2 − 1) = 1; at the step (upstream walls) min(3 − 1.5, 2 − 1.25) = 0.75;
    exit (downstream) min(1.5 − 2, 2 − 1.5) = −0.5 → clearance −0.5 m."""
    cav = {"half_width": [3.0, 1.5], "half_height": 2.0, "z_step": 2.5}
    params = {"X_begin": 1.0, "X_end": 2.0, "Y_begin": 1.0, "Y_end": 1.5, "Z": 5.0}
    sim = MuonShield(preset="single_magnet", cavern=cav)
    assert sim.quantities_at(params)["cavern_clearance"] == pytest.approx(-0.5, abs=1e-12)
    assert sim.quantities_at({**params, "X_end": 1.2})["cavern_clearance"] == pytest.approx(0.3, abs=1e-12)
    assert "cavern_clearance" not in MuonShield(preset="single_magnet").quantities


def test_ship2018_clearance_counts_coil_gap_and_yokes() -> None:
    """SHiP-2018 magnets with r = 1: outer half-width 2dX + gap, half-height dY + dX. In walls 6 m wide and high
    everywhere the new baseline's clearance is 6 m − the largest of these over its faces."""
    from simulators.muon_shield import NEW_BASELINE, SHIP2018_ELEMENTS, ship2018_params

    v = ship2018_params(NEW_BASELINE)
    extents = [max(2 * v[f"{e}_dX{s}"] + v[f"{e}_gap{s}"], v[f"{e}_dY{s}"] + v[f"{e}_dX{s}"]) / 100
               for e in SHIP2018_ELEMENTS for s in ("In", "Out")]
    sim = MuonShield(cavern={"half_width": 6.0, "half_height": 6.0})
    assert sim.quantities_at({})["cavern_clearance"] == pytest.approx(6.0 - max(extents), abs=1e-9)


def test_no_cavern_is_the_default_and_leaves_the_transport_alone() -> None:
    """Walls far outside the world box change nothing: same seed, same hits and (to float rounding) exit
    positions and momenta as without a cavern."""
    free = MuonShield(columns=["x", "px", "hit"], device="cpu")
    far = MuonShield(columns=["x", "px", "hit"], device="cpu", cavern={"half_width": 50.0, "half_height": 50.0})
    assert free.cavern is None
    a, b = free.simulate({}, 3000, 8).samples, far.simulate({}, 3000, 8).samples
    assert np.array_equal(a[:, 2], b[:, 2])
    # the drift is cut in 1 m steps (rounding), and with walls a muon leaving the 10 m world box on the way is dropped
    inside = b[:, 1] != 0  # dropped muons have p = 0
    assert inside.mean() > 0.9 and np.allclose(a[inside], b[inside], atol=1e-4)


def test_cavern_study_constraint_admits_the_new_baseline_and_refuses_the_default_point() -> None:
    """studies/detectors/ship_shield_cavern.yaml: its quantity oracle (no simulation) keeps the new baseline
    (clearance +0.32 m) and refuses DEFAULT_POINT (m6: dYOut + dXOut = 4.0 m against 3.5 m walls)."""
    from conftest import ROOT
    from optimizer.constraints import QuantityConstraints
    from optimizer.executors import simulator_args
    from optimizer.space import SearchSpace
    from optimizer.study import load_study
    from simulators.muon_shield import DEFAULT_POINT, NEW_BASELINE, ship2018_free

    study, _ = load_study(ROOT / "studies/detectors/ship_shield_cavern.yaml")
    sim = simulator_args(study.simulator).build()
    space = SearchSpace(study.parameters)
    oracle = QuantityConstraints(space, sim, study.constraints)
    points = np.stack([space.to_unit(space.from_params(ship2018_free(v))) for v in (NEW_BASELINE, DEFAULT_POINT)])
    assert oracle(points).tolist() == [True, False]
    assert sim.quantities_at(ship2018_free(NEW_BASELINE))["cavern_clearance"] == pytest.approx(0.32, abs=1e-9)
    assert sim.quantities_at(ship2018_free(DEFAULT_POINT))["cavern_clearance"] == pytest.approx(-0.5, abs=1e-9)


@pytest.mark.parametrize(("spec", "field", "message"), [
    ({"kind": "ship_beam_dump", "p_min": 0.5}, "p_min", "at least 1"),
    ({"kind": "ship_beam_dump", "p_max": 500}, "p_max", "at most 400"),
    ({"kind": "ship_beam_dump", "charge_ratio": "1.3"}, "charge_ratio", "must be a number"),
    ({"kind": "ship_beam_dump", "charge_ratio": 0}, "charge_ratio", "must be positive"),
    ({"kind": "ship_beam_dump", "charge_ratio_slope": -2.0}, "charge_ratio_slope", "negative"),
    ({"kind": "ship_beam_dump", "ring_sigma": -0.1}, "ring_sigma", "non-negative"),
    ({"kind": "ship_beam_dump", "sampling": "logp"}, "sampling", "physical or log_p"),
    ({"kind": "ship_beam_dump", "p_min": True}, "p_min", "must be a number"),
    ({"kind": "beam_dump", "alpha": 1}, "alpha", "other than 1"),
    ({"kind": "uniform", "theta_max_deg": 95}, "theta_max_deg", r"in \[0, 90\)"),
    ({"file": 3}, "file", "must be a string"),
])
def test_a_bad_source_value_names_its_field(spec: dict, field: str, message: str) -> None:
    """Each source option that is refused is named (``simulator.options.source.<option>``), in one line."""
    with pytest.raises(SimulatorOptionError, match=message) as err:
        MuonShield(source=spec)
    assert err.value.field == f"simulator.options.source.{field}" and "\n" not in str(err.value)


def test_a_bad_source_value_is_a_one_line_cli_error(write_study, tmp_path: Path, capsys) -> None:
    from conftest import base_study
    from optimizer.cli import main

    study = base_study(simulator={"name": "muon_shield",
                                  "options": {"source": {"kind": "ship_beam_dump", "p_min": 0.5}}})
    rc = main(["run", str(write_study(study)), "--output", str(tmp_path / "out"), "-q"])
    out = capsys.readouterr().err
    assert rc == 2 and len(out.strip().splitlines()) == 1
    assert "simulator.options.source.p_min: must be at least 1" in out
    assert not (tmp_path / "out").exists()
