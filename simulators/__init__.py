"""Simulators a study can name, and the registry that maps names to them.

To add one: write a :class:`simulators.base.Simulator` subclass in a new file and
add one line to ``SIMULATORS`` below.
"""

from optimizer.registry import Registry
from simulators.base import FunctionSimulator, InfeasibleDesign, SimulationResult, Simulator, SimulatorOptionError

SIMULATORS: Registry[type[Simulator]] = Registry(
    "simulator",
    {
        # WU-GO paper benchmarks, exactly as its public code defines them
        "three_hump_camel_paper": "simulators.benchmarks:ThreeHumpCamelPaper",
        "ackley_paper": "simulators.benchmarks:AckleyPaper",
        "levi_paper": "simulators.benchmarks:LeviPaper",
        "himmelblau_paper": "simulators.benchmarks:HimmelblauPaper",
        "rosenbrock_paper": "simulators.benchmarks:RosenbrockPaper",
        "styblinski_tang_paper": "simulators.benchmarks:StyblinskiTangPaper",
        # two objectives with a known Pareto front
        "branin_currin": "simulators.benchmarks:BraninCurrin",
        # detector simulators
        "muon_shield": "simulators.muon_shield:MuonShield",
        "sampling_calorimeter": "simulators.calorimeter:SamplingCalorimeter",
        # external programs
        "command": "simulators.command:CommandSimulator",
        # output distributions that change shape with θ, exact true objectives (bench/distribution_family.py)
        "family_skewed": "simulators.family:SkewedHeteroscedastic",
        "family_bimodal": "simulators.family:Bimodal",
        "family_point_mass": "simulators.family:PointMass",
        "family_heavy_tail": "simulators.family:HeavyTail",
        "family_hetero": "simulators.family:Heteroscedastic",
        "family_correlated": "simulators.family:CorrelatedPair",
        # textbook variants
        "three_hump_camel": "simulators.benchmarks:ThreeHumpCamel",
        "ackley": "simulators.benchmarks:Ackley",
        "levi": "simulators.benchmarks:Levi",
        "himmelblau": "simulators.benchmarks:Himmelblau",
        "rosenbrock": "simulators.benchmarks:Rosenbrock",
        "styblinski_tang": "simulators.benchmarks:StyblinskiTang",
    },
)

__all__ = ["SIMULATORS", "FunctionSimulator", "InfeasibleDesign", "SimulationResult", "Simulator", "SimulatorOptionError"]
