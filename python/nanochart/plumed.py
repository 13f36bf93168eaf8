"""PLUMED side: find a PLUMED install and the RDF_ENCODER plugin, write a plumed.dat for a model,
write driver trajectories, run `plumed driver`. PLUMED itself is never bundled: nanochart uses the
one the user has."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

PLUGIN_NAME = "libnanochart_plumed.so"


@dataclass(frozen=True)
class PlumedInstall:
    executable: Path
    root: Path
    version: str

    @property
    def kernel(self) -> Path:
        """libplumedKernel.so of this install (what PLUMED_KERNEL points to)."""
        return self.root.parent / "libplumedKernel.so"


def find_plumed() -> PlumedInstall | None:
    """The PLUMED found as `plumed` on PATH, or next to PLUMED_KERNEL; None when there is none."""
    candidates = [shutil.which("plumed")]
    kernel = os.environ.get("PLUMED_KERNEL")
    if kernel:
        candidates.append(str(Path(kernel).resolve().parent.parent / "bin" / "plumed"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            try:
                root = _info(candidate, "--root")
                version = _info(candidate, "--version")
            except (OSError, subprocess.CalledProcessError):
                continue
            return PlumedInstall(Path(candidate), Path(root), version)
    return None


def has_mpi(plumed: PlumedInstall) -> bool:
    """Whether this PLUMED was built with MPI (`plumed config has mpi`)."""
    result = subprocess.run([str(plumed.executable), "--no-mpi", "config", "has", "mpi"], capture_output=True)
    return result.returncode == 0


def _info(executable: str, what: str) -> str:
    out = subprocess.run([executable, "--no-mpi", "info", what], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def plugin_path() -> Path | None:
    """The RDF_ENCODER plugin: the file NANOCHART_PLUMED_PLUGIN names (for a plugin built against
    another PLUMED), else the one installed with this package (built when PLUMED was found)."""
    chosen = os.environ.get("NANOCHART_PLUMED_PLUGIN")
    path = Path(chosen) if chosen else Path(__file__).parent / "lib" / PLUGIN_NAME
    return path if path.is_file() else None


def build_plugin(plumed: PlumedInstall, *, jobs: int = 2, verbose: bool = False) -> Path:
    """Build the RDF_ENCODER plugin against ``plumed`` and install it next to this package.

    Uses the source tree this nanochart was built from (recorded at install time) and CMake, as
    the original build did; the plugin links the core and the installed torch's libtorch.
    """
    import json

    info_path = Path(__file__).parent / "_build_info.json"
    if not info_path.is_file():
        raise FileNotFoundError(
            "this nanochart install does not record its source tree; reinstall from a clone"
        )
    info = json.loads(info_path.read_text())
    source = Path(info["source_dir"])
    if not (source / "plumed_cv" / "RdfEncoder.cpp").is_file():
        raise FileNotFoundError(
            f"the source tree {source} is gone: clone nanochart again and rerun its set-up"
        )
    cmake = shutil.which("cmake")
    if cmake is None:
        raise FileNotFoundError("cmake not found: `pip install cmake`")
    build = source / "build" / "plumed-plugin"
    configure = [
        cmake,
        "-S",
        str(source),
        "-B",
        str(build),
        "-DCMAKE_BUILD_TYPE=Release",
        "-DNANOCHART_BUILD_PYTHON=OFF",
        f"-DTorch_DIR={info['torch_dir']}",
        f"-DPython_EXECUTABLE={info['python']}",
        f"-DNANOCHART_PLUMED_EXECUTABLE={plumed.executable}",
    ]
    steps = [configure, [cmake, "--build", str(build), "--target", "nanochart_plumed", "-j", str(jobs)]]
    for step in steps:
        result = subprocess.run(step, capture_output=not verbose, text=True)
        if result.returncode != 0:
            tail = "" if verbose else (result.stdout + result.stderr)[-3000:]
            raise RuntimeError(f"building the plugin failed at: {' '.join(step)}\n{tail}")
    built = build / "plumed_cv" / PLUGIN_NAME
    if not built.is_file():
        raise RuntimeError(
            f"the build finished without {built}: was PLUMED {plumed.version} found? see {build}"
        )
    target = Path(__file__).parent / "lib" / PLUGIN_NAME
    target.parent.mkdir(exist_ok=True)
    shutil.copy2(built, target)  # its build rpath names torch's lib folder, so it loads from here
    return target


def plumed_input(
    model: str | os.PathLike[str],
    *,
    plugin: str | os.PathLike[str] | None = None,
    stride: int = 1,
    sigmas: Sequence[float] | None = None,
    temperature: float = 300.0,
) -> str:
    """A ready plumed.dat for an exported model: LOAD the plugin, RDF_ENCODER on atoms 1..n_atoms
    of a cluster in vacuum, PRINT every CV to COLVAR; then a commented-out well-tempered METAD on
    the first two CVs, its Gaussian widths ``sigmas`` (CV units; a tenth of the CVs' spread on the
    chart is a good start) and ``temperature`` (K) filled in."""
    from .export import read_metadata

    model = Path(model).resolve()
    metadata = read_metadata(model)
    names = metadata["cv_names"]
    load = (
        f"LOAD FILE={Path(plugin).resolve()}"
        if plugin
        else "# LOAD FILE=/path/to/libnanochart_plumed.so   # build it: nanochart plugin --build"
    )
    widths = ",".join(f"{s:.3g}" for s in (sigmas or [0.05] * len(names))[:2])
    biased = ",".join(f"cv.{name}" for name in names[:2])
    rdf = metadata["rdf"]
    grid = f"r = {rdf['r_min']}..{rdf['r_max']} angstrom, {rdf['n_bins']} bins, sigma {rdf['sigma']} angstrom"
    lines = [
        f"# nanochart model {model.name}: {metadata['n_atoms']} {'/'.join(metadata['elements'])} atoms,",
        f"# RDF {grid}.",
        "# Units: PLUMED's (nm, kJ/mol, ps); RDF_ENCODER converts lengths to the model's angstrom.",
        load,
        f"cv: RDF_ENCODER MODEL={model} GROUP=1-{metadata['n_atoms']} NOPBC",
        f"PRINT ARG={','.join(f'cv.{name}' for name in names)} STRIDE={stride} FILE=COLVAR FMT=%.10f",
        "",
        "# Well-tempered metadynamics on the first two CVs (HEIGHT in kJ/mol, TEMP in K): uncomment.",
        f"# METAD ARG={biased} SIGMA={widths} HEIGHT=1.0 PACE=500 BIASFACTOR=20 TEMP={temperature:g} "
        "FILE=HILLS LABEL=metad",
        f"# PRINT ARG={biased},metad.bias STRIDE={stride} FILE=COLVAR_METAD",
    ]
    return "\n".join(lines) + "\n"


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
