"""Time biased MD per step: Au147 at 400 K, 2 fs, Langevin, one core (`nanochart.simulation.md.run_md`).

Rows: LAMMPS alone (EAM); LAMMPS + PLUMED through nanochart's LAMMPS plugin (`fix plumed/nanochart`,
no Python in the MD loop) with RDF_ENCODER (the shipped Au147 model) and a well-tempered METAD on
(cv1, cv2) on a GRID, so hills cost O(1); the same through the Python `fix external` callback; the
plugin with the bias applied every second step (PLUMED's multiple time step, METAD STRIDE=2).

Each row times runs of two lengths (the fastest of a few each) and takes the difference, so start-up
(LAMMPS, PLUMED, loading the model) cancels; PLUMED's own time per step comes from the timers in its
log. Prints a markdown table.

    scripts/dev bench            (or: python benchmarks/bench_md.py [--steps 2000])
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from ase.cluster import Icosahedron
from bench_cv import cpu_name, per_call_us

import nanochart
from nanochart.simulation.md import run_md
from nanochart.simulation.plumed_install import find_plumed, lammps_plugin_path, plugin_path

MODEL = Path(__file__).resolve().parents[1] / "models" / "au147" / "au147.pt"
TEMPERATURE = 400.0
TIMESTEP_PS = 0.002
#: PLUMED's timers, summed: what PLUMED itself spends per step (its first row adds start-up).
PLUMED_TIMERS = re.compile(r"^PLUMED: \d [A-Za-z ()]+?\s+(\d+)\s+([0-9.]+)", re.MULTILINE)


def plumed_input(stride: int) -> str:
    return (
        f"LOAD FILE={plugin_path()}\nUNITS LENGTH=A\n"
        f"cv: RDF_ENCODER MODEL={MODEL} GROUP=1-147 NOPBC\n"
        "METAD ARG=cv.cv1,cv.cv2 SIGMA=0.05,0.05 HEIGHT=1 PACE=100 BIASFACTOR=20 TEMP=400 "
        f"GRID_MIN=-30,-30 GRID_MAX=30,30 STRIDE={stride} FILE=HILLS LABEL=metad\n"
    )


def plumed_seconds(log: Path) -> float:
    """PLUMED's own time in a run (s): the sum of its per-step timers in plumed.log."""
    return sum(float(total) for _, total in PLUMED_TIMERS.findall(log.read_text()))


def time_run(work: Path, text: str | None, coupling: str, steps: int) -> tuple[float, float]:
    """Wall time of one run_md call (s) and PLUMED's own time in it (s)."""
    start = time.perf_counter()
    run_md(
        Icosahedron("Au", 4),
        text,
        work,
        steps=steps,
        temperature=TEMPERATURE,
        timestep=TIMESTEP_PS,
        seed=1,
        thermo_every=100,
        dump_every=0,
        progress=False,
        coupling=coupling,
    )
    wall = time.perf_counter() - start
    return wall, plumed_seconds(work / "plumed.log") if text else 0.0


def per_step(tmp: Path, name: str, text: str | None, coupling: str, steps: int, repeats: int):
    """(wall us/step, PLUMED us/step) from the difference of a run of ``steps`` and one of
    ``steps // 5``, each the fastest of ``repeats`` runs: on a shared virtual machine the spread
    is one-sided (other tenants only ever slow a run down)."""
    short = steps // 5
    runs = {
        length: [time_run(tmp / f"{name}-{k}-{length}", text, coupling, length) for k in range(repeats)]
        for length in (steps, short)
    }
    wall = {length: min(run[0] for run in timings) for length, timings in runs.items()}
    plumed = {length: min(run[1] for run in timings) for length, timings in runs.items()}
    return tuple((value[steps] - value[short]) / (steps - short) * 1e6 for value in (wall, plumed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2500, help="MD steps of the long run (default 2500)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per length, fastest taken (default 5)")
    args, _ = parser.parse_known_args()  # scripts/dev bench passes every benchmark the same arguments
    if find_plumed() is None or plugin_path() is None or lammps_plugin_path() is None:
        raise SystemExit(
            "bench_md needs PLUMED, the RDF_ENCODER plugin and the LAMMPS plugin: run scripts/dev"
        )
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"

    cv = nanochart.CV(MODEL, num_threads=1)
    x = Icosahedron("Au", 4).positions
    cv_us = per_call_us(lambda: cv.forces(x, np.array([1.0, -0.5, 0.0])), 0.2)

    rows = [
        ("LAMMPS alone", None, "plugin"),
        ("plugin: RDF_ENCODER + METAD", plumed_input(1), "plugin"),
        ("Python callback: RDF_ENCODER + METAD", plumed_input(1), "python"),
        ("plugin, bias every 2nd step (STRIDE=2)", plumed_input(2), "plugin"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        timings = {
            name: per_step(Path(tmp), str(k), text, coupling, args.steps, args.repeats)
            for k, (name, text, coupling) in enumerate(rows)
        }

    plumed = find_plumed()
    print(f"Biased MD per step: Au147, {TEMPERATURE:g} K, {TIMESTEP_PS * 1000:g} fs, Langevin, one core")
    print(f"machine: {cpu_name()}, {platform.machine()}, {os.cpu_count()} cores; {plumed.describe()}")
    print(f"model: {MODEL.name} ({cv.engine}); its values+forces alone: {cv_us:.0f} us per call")
    print()
    print("| run | us per step | ns/day | PLUMED's own us per step | plugin or callback overhead (us) |")
    print("|---|---:|---:|---:|---:|")
    lammps_alone = timings["LAMMPS alone"][0]
    for name, (wall, plumed_us) in timings.items():
        overhead = f"{wall - lammps_alone - plumed_us:.0f}" if plumed_us else ""
        ns_per_day = 86400e6 / wall * TIMESTEP_PS * 1e-3
        print(f"| {name} | {wall:.0f} | {ns_per_day:.0f} | {plumed_us:.0f} | {overhead} |")
    biased = timings["plugin: RDF_ENCODER + METAD"][0]
    budget = lammps_alone + cv_us + 40
    print()
    print(
        f"overhead: the biased step minus the unbiased step minus PLUMED's time (target <= 10 us).\n"
        f"biased step through the plugin {biased:.0f} us against LAMMPS + CV + 40 us = {budget:.0f} us "
        f"(target: at most that)."
    )


if __name__ == "__main__":
    main()
