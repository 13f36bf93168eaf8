"""Time the CV per call: C++ core vs a pure-torch RDF + the same encoder + autograd.

For icosahedra of N = 55, 147, 309, 561 gold atoms, 200 bins, a 3-CV encoder of the paper's shape
(five Conv1d+activation+BatchNorm blocks, then a linear layer) with random weights on a 0-16 A
grid, or a model file of yours (--model, on its own grid: the shipped models/au147/au147.pt
reaches 21.5 A), one thread (and the core's values+forces with two). Prints a markdown table.

    scripts/dev bench            (or: python benchmarks/bench_cv.py [--seconds 0.2] [--model M.pt])
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from ase.cluster import Icosahedron

import nanochart
from nanochart.core.rdf import RdfSettings
from nanochart.model.encoder import ConvEncoder
from nanochart.testing.torch_rdf import torch_rdf

RDF = {"r_min": 0.0, "r_max": 16.0, "n_bins": 200, "sigma": 0.1}
SIZES = {55: 3, 147: 4, 309: 5, 561: 6}  # atoms -> icosahedron shells


def per_call_us(fn: Callable[[], object], seconds: float) -> float:
    """Median over 5 rounds of the mean time per call, in microseconds; each round lasts about
    `seconds` (at least 2 calls), so slow baselines do not make the benchmark crawl."""
    start = time.perf_counter()
    fn()
    fn()
    calls = max(2, int(seconds / max((time.perf_counter() - start) / 2, 1e-9)))
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        rounds.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(rounds)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def time_one_size(
    model: Path, scripted: torch.jit.ScriptModule, n_atoms: int, seconds: float, rdf: dict
) -> dict[str, float]:
    """Per-call times (us) of the core and of the pure-torch path on an icosahedron of n_atoms."""
    x = Icosahedron("Au", SIZES[n_atoms]).positions
    core = nanochart.CV(model, num_threads=1)._core  # the core itself, without the size warning
    core_2_threads = nanochart.CV(model, num_threads=2)._core
    core_libtorch = nanochart.CV(model, num_threads=1, engine="libtorch")._core
    dV_ds = (-0.5) ** np.arange(len(core.cv_names))  # 1, -1/2, 1/4, ... one per CV
    positions, weights = torch.tensor(x), torch.tensor(dV_ds)
    weights_g = np.linspace(-1.0, 1.0, rdf["n_bins"])
    rdf_args = (RdfSettings(**rdf),)

    def torch_values() -> object:
        with torch.no_grad():
            return scripted(torch_rdf(positions, **rdf)[None])

    def torch_forces() -> object:
        p = positions.clone().requires_grad_(True)
        s = scripted(torch_rdf(p, **rdf)[None])[0]
        return torch.autograd.grad(s, p, weights)[0]

    calls = {
        "core values": lambda: core.values(x[None], None),
        "core values+forces": lambda: core.forces(x, dV_ds, None),
        "core values+forces, 2 threads": lambda: core_2_threads.forces(x, dV_ds, None),
        "core libtorch values+forces": lambda: core_libtorch.forces(x, dV_ds, None),
        "torch values": torch_values,
        "torch values+forces": torch_forces,
        "core rdf only": lambda: nanochart.rdf(x, **rdf),
        "core rdf backward": lambda: nanochart._core.rdf_backward(x, weights_g, *rdf_args, None),
    }
    return {name: per_call_us(fn, seconds) for name, fn in calls.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.2, help="duration of one timing round")
    parser.add_argument("--model", type=Path, help="time this model file instead of a random paper-shape one")
    args = parser.parse_args()
    if args.model is not None and not args.model.is_file():
        parser.error(f"--model {args.model}: no such file")
    torch.set_num_threads(1)
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as tmp:
        if args.model is None:
            rdf = RDF
            encoder = ConvEncoder(n_bins=RDF["n_bins"], n_cvs=3).double().eval()
            model = nanochart.export_model(
                encoder, Path(tmp) / "bench.pt", rdf=RDF, elements=["Au"], n_atoms=147
            )
            described = "3-CV paper-shape encoder with random weights (float64)"
        else:
            model = args.model
            settings = nanochart.read_metadata(model)["rdf"]
            rdf = {key: settings[key] for key in RDF}
            described = f"{model} (r = {rdf['r_min']:g}-{rdf['r_max']:g} angstrom, sigma {rdf['sigma']:g})"
        scripted = torch.jit.load(str(model))
        for p in scripted.parameters():
            p.requires_grad_(False)  # the fair baseline: no weight gradients, as in the core
        engine = nanochart.CV(model).engine
        rows = [(n, time_one_size(model, scripted, n, args.seconds, rdf)) for n in SIZES]

    print(f"CV per call, 1 thread unless stated, {rdf['n_bins']} bins, {described}")
    versions = f"torch {torch.__version__}; nanochart {nanochart.__version__}"
    print(f"machine: {cpu_name()}, {platform.machine()}, {os.cpu_count()} cores; {versions}")
    print(f"core encoder engine: {engine}")
    print()
    print(
        "| N | core values (us) | core values+forces (us) | core values+forces, 2 threads (us) "
        "| 2-thread speed-up | core values+forces, libtorch engine (us) "
        "| torch values (us) | torch values+forces (us) | speed-up values+forces | RDF forward alone (us) "
        "| RDF backward alone (us) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n_atoms, t in rows:
        speed_up = t["torch values+forces"] / t["core values+forces"]
        threads_speed_up = t["core values+forces"] / t["core values+forces, 2 threads"]
        print(
            f"| {n_atoms} | {t['core values']:.0f} | {t['core values+forces']:.0f} "
            f"| {t['core values+forces, 2 threads']:.0f} | {threads_speed_up:.2f}x "
            f"| {t['core libtorch values+forces']:.0f} | {t['torch values']:.0f} "
            f"| {t['torch values+forces']:.0f} | {speed_up:.1f}x | {t['core rdf only']:.0f} "
            f"| {t['core rdf backward']:.0f} |"
        )
    print("\nRDF forward/backward alone: the standalone functions (nanochart.rdf, _core.rdf_backward).")
    print("Inside values+forces the backward pass reuses the forward's pair distances and kernel parameters.")


if __name__ == "__main__":
    main()
