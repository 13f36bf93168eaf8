"""RDF_ENCODER under MPI: the pair loops split over PLUMED's ranks give the serial result.

Needs a PLUMED built with MPI (found as the other PLUMED tests find it), `mpiexec`, and the
plugin built against that PLUMED; skips and says why otherwise.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from conftest import motif
from nanochart.simulation.plumed_driver import run_driver, write_driver_xyz
from nanochart.simulation.plumed_install import has_mpi
from plumed_setup import PLUGIN, PLUMED, needs_plugin

MPIEXEC = shutil.which("mpiexec") or (Path(sys.prefix) / "bin" / "mpiexec").is_file()
pytestmark = [
    *needs_plugin,
    pytest.mark.skipif(
        PLUMED is not None and not has_mpi(PLUMED), reason="the PLUMED found was built without MPI"
    ),
    pytest.mark.skipif(not MPIEXEC, reason="no mpiexec (pip install mpich)"),
]


def test_two_ranks_give_the_serial_cvs_forces_and_virial(tmp_path, model_path) -> None:
    rng = np.random.default_rng(9)
    frames = [Atoms("Au147", positions=motif("ico147") + 0.1 * rng.normal(size=(147, 3))) for _ in range(3)]
    trajectory = write_driver_xyz(frames, tmp_path / "traj.xyz")
    text = (
        f"LOAD FILE={PLUGIN}\nUNITS LENGTH=A\ncv: RDF_ENCODER MODEL={model_path} GROUP=1-147 NOPBC\n"
        "RESTRAINT ARG=cv.cv1,cv.cv2,cv.cv3 AT=0.1,0.2,0.3 KAPPA=500,500,500\n"
        "PRINT ARG=cv.* FILE=COLVAR FMT=%.17g\n"
    )
    dump = ["--dump-forces", "forces.xyz", "--dump-forces-fmt", "%.17g", "--dump-full-virial"]
    logs = {}
    for ranks in (0, 2):
        run = run_driver(
            text, trajectory, tmp_path / f"ranks{ranks}", extra=dump, plumed=PLUMED, mpi_ranks=ranks
        )
        assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
        logs[ranks] = run.stdout  # the driver writes PLUMED's log to standard output
    assert "pairs split over 2 MPI ranks" in logs[2]
    assert "pairs split" not in logs[0]
    serial = np.loadtxt(tmp_path / "ranks0" / "COLVAR")
    parallel = np.loadtxt(tmp_path / "ranks2" / "COLVAR")
    np.testing.assert_allclose(parallel, serial, rtol=1e-12, atol=0)
    # Forces and the virial, every number of both dumps.
    forces_serial = _numbers(tmp_path / "ranks0" / "forces.xyz")
    # Under MPI the driver writes one dump per rank (forces.xyz.0, .1), each with all forces.
    forces_parallel = _numbers(tmp_path / "ranks2" / "forces.xyz.0")
    np.testing.assert_array_equal(_numbers(tmp_path / "ranks2" / "forces.xyz.1"), forces_parallel)
    assert np.abs(forces_serial).max() > 0
    np.testing.assert_allclose(
        forces_parallel, forces_serial, rtol=0, atol=1e-12 * np.abs(forces_serial).max()
    )


def _numbers(path: Path) -> np.ndarray:
    """Every number of a --dump-forces file (virial lines and force lines), in order."""
    values = []
    for line in path.read_text().splitlines():
        fields = line.split()
        values += [float(f) for f in fields if f not in ("X",)]
    return np.array(values)
