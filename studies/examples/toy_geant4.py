#!/usr/bin/env python3
"""Plays the role of a compiled Geant4 program for detopt's `command` simulator example.

Usage: toy_geant4.py --thickness T --field B --events N --seed S --out hits.csv
Writes one row per simulated muon: its exit position x [cm] and whether it hit the detector.
"""

import argparse
import csv
import math
import random

ap = argparse.ArgumentParser()
ap.add_argument("--thickness", type=float, required=True)  # iron, m
ap.add_argument("--field", type=float, required=True)  # tesla
ap.add_argument("--events", type=int, required=True)
ap.add_argument("--seed", type=int, required=True)
ap.add_argument("--out", required=True)
a = ap.parse_args()
rng = random.Random(a.seed)
with open(a.out, "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["x", "hit"])
    for _ in range(a.events):
        p = rng.expovariate(1 / 20.0) + 1.0  # GeV
        charge = rng.choice((-1, 1))
        bend = 0.3 * a.field * a.thickness / p  # rad, 0.2998 B L / p
        scatter = 0.0136 / p * math.sqrt(a.thickness / 0.0176) * rng.gauss(0, 1)
        x = 100 * a.thickness * (charge * bend + scatter) + rng.gauss(0, 2)
        w.writerow([f"{x:.4f}", int(abs(x) < 25)])
