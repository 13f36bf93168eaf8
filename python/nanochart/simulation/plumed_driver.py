"""`plumed driver` on a list of structures: the xyz it reads, and running it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from .plumed_install import PlumedInstall, find_plumed


def write_driver_xyz(frames: Sequence[Atoms], path: str | os.PathLike[str]) -> Path:
    """Trajectory in the xyz flavour `plumed driver --ixyz` reads: the comment line holds the 9
    cell components (rows, zero for a cluster in vacuum). Lengths as in the frames (angstrom for
    ASE), so run the driver with `--length-units A`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        for atoms in frames:
            cell = np.asarray(atoms.cell).ravel() if atoms.pbc.all() else np.zeros(9)
            handle.write(f"{len(atoms)}\n" + " ".join(f"{v:.12f}" for v in cell) + "\n")
            for symbol, (x, y, z) in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True):
                handle.write(f"{symbol} {x:.12f} {y:.12f} {z:.12f}\n")
    return path


def run_driver(
    plumed_input: str,
    trajectory: str | os.PathLike[str],
    workdir: str | os.PathLike[str],
    *,
    extra: Sequence[str] = (),
    plumed: PlumedInstall | None = None,
    mpi_ranks: int = 0,
) -> subprocess.CompletedProcess:
    """Run `plumed driver --ixyz TRAJ --length-units A` on an input text in workdir; with
    ``mpi_ranks`` > 0 under `mpiexec -n mpi_ranks` (which needs an MPI build of PLUMED)."""
    plumed = plumed or find_plumed()
    if plumed is None:
        raise FileNotFoundError("no PLUMED found: put `plumed` on PATH or set PLUMED_KERNEL")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "plumed.dat").write_text(plumed_input)
    driver = [
        "driver",
        "--plumed",
        "plumed.dat",
        "--ixyz",
        str(Path(trajectory).resolve()),
        "--length-units",
        "A",
    ]
    if mpi_ranks > 0:
        mpiexec = shutil.which("mpiexec") or str(Path(sys.prefix) / "bin" / "mpiexec")
        command = [mpiexec, "-n", str(mpi_ranks), str(plumed.executable), *driver, *extra]
    else:
        command = [str(plumed.executable), "--no-mpi", *driver, *extra]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True)
