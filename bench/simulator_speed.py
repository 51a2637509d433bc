"""Speed of the detector simulators: muon_shield per muon-step and per 10⁵ muons, calorimeter showers per second.

muon_shield: the SHiP-2018 new baseline (8 elements, 35.3 m of iron in 10 cm steps, detector 50 m
behind), beam-dump source, full physics (field, Highland scattering, stochastic energy loss). The time
per muon-step divides the transport time by the muon-steps actually taken (muons that stop leave the
working set). Also the single-magnet preset. sampling_calorimeter: the LHCb-like default (66 layers,
lateral leakage on), electrons log-uniform in 1–100 GeV.

Medians over ``--repeats`` runs, each after one warm-up call. On a GPU (``--device cuda``, or ``auto``
where one is present) the 10⁶-muon figure is added.

    python bench/simulator_speed.py [--repeats 5] [--threads 2] [--device auto] [--million]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch  # noqa: E402

from simulators.base import resolve_device  # noqa: E402
from simulators.calorimeter import SamplingCalorimeter  # noqa: E402
from simulators.muon_shield import MuonShield  # noqa: E402


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def time_transport(sim: MuonShield, n: int, repeats: int, dev: torch.device) -> tuple[list[float], int]:
    """Seconds per transport of ``n`` muons (source sampling excluded) and the muon-steps of one run."""
    gen = torch.Generator(device=dev).manual_seed(0)
    muons = sim.source.sample(n, gen, dev, sim.dtype)
    sim.transport_muons({}, muons)  # warm-up (allocator, kernels)
    times, steps = [], 0
    for r in range(repeats):
        _sync(dev)
        t0 = time.perf_counter()
        res = sim.transport_muons({}, muons, seed=r)
        _sync(dev)
        times.append(time.perf_counter() - t0)
        steps = int(res["muon_steps"])
    return times, steps


def time_call(sim: object, n: int, repeats: int) -> list[float]:
    sim.simulate(sim.default_params(), min(n, 1000), 0)  # type: ignore[attr-defined]
    out = []
    for r in range(repeats):
        t0 = time.perf_counter()
        sim.simulate(sim.default_params(), n, r + 1)  # type: ignore[attr-defined]
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--million", action="store_true", help="also time 10⁶ muons (always on a GPU)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = resolve_device(a.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    print(f"device {dev} ({name}), torch {torch.__version__}, threads {a.threads}, repeats {a.repeats}; medians")
    print()
    print("| simulator | particles | median time (s) | per particle-step (µs) | particles/s |")
    print("|---|---|---|---|---|")
    sizes = [10_000, 100_000] + ([1_000_000] if a.million or dev.type == "cuda" else [])
    for preset in ("ship2018", "single_magnet"):
        sim = MuonShield(preset=preset, device=dev.type)
        for n in sizes:
            times, steps = time_transport(sim, n, a.repeats, dev)
            med = statistics.median(times)
            print(f"| muon_shield {preset} | {n:.0e} muons ({steps / n:.0f} steps each) | {med:.3f} | "
                  f"{med / steps * 1e6:.4f} | {n / med:,.0f} |")
    for n in (10_000, 100_000):
        cal = SamplingCalorimeter(device=dev.type)
        times = time_call(cal, n, a.repeats)
        med = statistics.median(times)
        layers = int(cal.quantities_at({})["depth_x0"] / cal.layout({})[0].layer_x0 + 0.5)
        print(f"| sampling_calorimeter | {n:.0e} showers × {layers} layers | {med:.3f} | "
              f"{med / (n * layers) * 1e6:.4f} | {n / med:,.0f} |")


if __name__ == "__main__":
    main()
