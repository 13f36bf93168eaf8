"""Parallel tempering: `temper`'s log, exchange statistics, the ladder helper, and
`nanochart generate --method pt` under real MPI (the mpich wheel's mpiexec) with real LAMMPS."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import read

from conftest import interrupt_after, needs_lammps, needs_ovito
from nanochart.cli import main
from nanochart.data.cna import CLUSTER_LABELS
from nanochart.data.sampling import DUPLICATE_ENERGY_EV
from nanochart.data.tempering import (
    PtSettings,
    compare_label_shares,
    default_pt_temperatures,
    generate_pt,
    ladder_from_energies,
    predicted_acceptance,
    pt_ladder,
    read_exchanges,
)
from nanochart.simulation.lammps_session import quench_frames
from nanochart.simulation.tempering import exchange_statistics, find_launcher, read_temper_log, round_trips

K_B = 8.617343e-5

# The universe log of a real 3-replica `temper 2860 143 ...` run (LAMMPS 22 Jul 2025). Each line
# gives, per replica (world), the temperature index it holds after the attempt at that step.
KNOWN_LOG = """LAMMPS (22 Jul 2025 - Update 4)
Running on 3 partitions of processors
Step T0 T1 T2
0 0 1 2
143 0 1 2
286 0 1 2
429 0 1 2
572 0 1 2
715 1 0 2
858 1 0 2
1001 1 0 2
1144 1 0 2
1287 1 0 2
1430 1 0 2
1573 1 0 2
1716 2 0 1
1859 2 0 1
2002 2 0 1
2145 2 0 1
2288 2 0 1
2431 2 1 0
2574 1 2 0
2717 1 2 0
2860 1 2 0
"""


def test_temper_log_gives_acceptance_and_attribution(tmp_path: Path) -> None:
    path = tmp_path / "log.lammps"
    path.write_text(KNOWN_LOG)
    log = read_temper_log(path)
    assert log.steps[0] == 0 and log.steps[-1] == 2860 and log.indices.shape == (21, 3)
    stats = exchange_statistics([log])
    # 20 attempts alternate pairs (0,1), (1,2): accepted at steps 715 and 2431 (pair 0-1), 1716 and
    # 2574 (pair 1-2; at 1716 replica 0 goes from T1 to T2 and replica 2 from T2 to T1).
    assert stats.attempts.tolist() == [10, 10]
    assert stats.accepted.tolist() == [2, 2]
    assert np.allclose(stats.acceptance, [0.2, 0.2])
    assert stats.round_trips.tolist() == [0, 0, 0]
    # A snapshot at step s belongs to the state before the attempt at s.
    assert log.indices_at([715, 716, 1716, 1717, 2860]).tolist() == [
        [0, 1, 2], [1, 0, 2], [1, 0, 2], [2, 0, 1], [1, 2, 0],
    ]  # fmt: skip
    with pytest.raises(ValueError, match="outside"):
        log.indices_at([0])
    path.write_text(KNOWN_LOG.replace("2145 2 0 1", "2145 2 0 0"))
    with pytest.raises(ValueError, match="permutation"):
        read_temper_log(path)


def test_round_trips_count_bottom_top_bottom() -> None:
    swapping = np.array([[0, 1], [1, 0], [0, 1], [1, 0], [0, 1]])
    assert round_trips(swapping).tolist() == [2, 1]
    ladder = np.array([[0, 2, 1], [1, 2, 0], [2, 1, 0], [2, 0, 1], [1, 0, 2], [0, 1, 2]])
    # Replica 0: 0 -> 2 -> 0, one trip; replica 1 starts at the top: 2 -> 0 -> 1, none yet;
    # replica 2: 1 -> 0 -> 1 -> 2, up but not back.
    assert round_trips(ladder).tolist() == [1, 0, 0]


def test_ladder_helper_spaces_for_the_target_acceptance() -> None:
    ladder = default_pt_temperatures("Au", 147)
    assert ladder[0] == 250 and ladder[-1] == 570 and len(ladder) == 11
    ratios = np.array(ladder[1:]) / np.array(ladder[:-1])
    assert np.allclose(ratios, ratios[0], atol=1e-3), "geometric"
    # For a constant heat capacity C (units of k_B) the energies at T are Gaussian with mean
    # C k T and variance C (k T)^2: the model's acceptance between neighbours is at least 30%.
    capacity = 250.0
    steps = pt_ladder(250, 570, capacity)
    mean = [capacity * K_B * t for t in steps]
    var = [capacity * (K_B * t) ** 2 for t in steps]
    acceptance = [
        predicted_acceptance((steps[k], steps[k + 1]), (mean[k], mean[k + 1]), (var[k], var[k + 1]))
        for k in range(len(steps) - 1)
    ]
    assert min(acceptance) >= 0.3 and max(acceptance) < 0.4
    # The same ensemble measured at a few temperatures gives about the same ladder.
    measured = np.array([250.0, 400.0, 570.0])
    from_energies = ladder_from_energies(
        measured, capacity * K_B * measured, capacity * (K_B * measured) ** 2
    )
    assert abs(len(from_energies) - len(steps)) <= 1 and from_energies[-1] == 570
    with pytest.raises(ValueError, match="at least 2 temperatures"):
        PtSettings("Au", 38, 10, temperatures=(300.0,))
    with pytest.raises(ValueError, match="increasing"):
        PtSettings("Au", 38, 10, temperatures=(300.0, 300.0))
    with pytest.raises(ValueError, match="mixed"):
        PtSettings("Au", 38, 10, temperatures=(300.0, 330.0), start="cube")


def test_missing_launcher_is_reported() -> None:
    with pytest.raises(FileNotFoundError, match="no-such-mpiexec"):
        find_launcher("no-such-mpiexec -f hosts")


# --- real runs: Au38, three replicas (mpiexec -n 3 on two cores) ------------------------------------

SMALL_PT = {
    "element": "Au",
    "n_atoms": 38,
    "temperatures": (300.0, 345.0, 400.0),
    "interval_ps": 0.5,
    "exchange_ps": 0.25,
    "equilibration_ps": 1.0,
    "segment_snapshots": 5,
    "start": "icosahedron",  # one motif: structural energy gaps between replicas would block swaps
}
LADDER = SMALL_PT["temperatures"]


def frames_key(path: Path) -> list[tuple[float, str, float, int]]:
    return [
        (round(a.get_potential_energy(), 8), a.info["label"], a.info["temperature"], a.info["run"])
        for a in read(path, ":")
    ]


def small_pt(folder: Path, segments: int) -> Path:
    """Equilibration and ``segments`` segments of five snapshots per replica."""
    out = folder / "au38.extxyz"
    generate_pt(out, PtSettings(structures=15 * segments, **SMALL_PT), workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def two_segments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_pt(tmp_path_factory.mktemp("pt"), 2)


@pytest.fixture(scope="module")
def three_segments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_pt(tmp_path_factory.mktemp("pt"), 3)


@needs_lammps
@needs_ovito
@pytest.mark.slow
def test_pt_records_swaps_and_attributes_snapshots(two_segments: Path) -> None:
    work = two_segments.with_name(two_segments.name + ".pt")
    logs = read_exchanges(work / "exchanges.txt")
    assert len(logs) == 3, "equilibration and two segments"
    assert exchange_statistics(logs).accepted.min() > 0, "swaps happen on both pairs"
    stats = exchange_statistics(logs[1:])  # the report leaves out the equilibration
    report = json.loads(two_segments.with_name("au38.pt.json").read_text())
    assert [p["attempts"] for p in report["exchange"]["pairs"]] == stats.attempts.tolist()
    assert sum(stats.attempts) == 2 * 5 * 2, "two segments of five snapshots, two attempts each"

    # Every snapshot row: the temperature the replica held at that step in temper's log.
    rows = [line.split(",") for line in (work / "snapshots.csv").read_text().splitlines()[1:]]
    assert len(rows) == 30
    steps = sorted({int(r[0]) for r in rows})
    for step in steps:
        at_step = {int(r[2]): float(r[3]) for r in rows if int(r[0]) == step}
        assert sorted(at_step.values()) == list(LADDER), "one replica per temperature"
        log = next(log for log in logs[1:] if log.steps[0] < step <= log.steps[-1])
        held = log.indices[np.searchsorted(log.steps, step) - 1]
        assert at_step == {replica: LADDER[held[replica]] for replica in range(3)}
    moved = {r[2] for r in rows if float(r[3]) != LADDER[int(r[2])]}
    assert moved, "some replica sampled another temperature than its starting one"
    # The physical check of the attribution: the kinetic temperature of the MD samples given to
    # each temperature of the ladder is that temperature (they are 15% apart).
    for t in LADDER:
        kinetic = report["energy"][f"{t:g}"]["kinetic_temperature_K"]
        assert abs(kinetic - t) < 0.05 * t, (t, kinetic)
    for entry in report["label_shares"].values():
        assert entry["snapshots"] == 10 and abs(sum(entry["share"].values()) - 1) < 1e-9
    assert "acceptance" in two_segments.with_name("au38.pt.md").read_text()


@needs_lammps
@needs_ovito
@pytest.mark.slow
def test_pt_data_set_holds_quenched_labelled_unique_structures(two_segments: Path) -> None:
    frames = read(two_segments, ":")
    assert frames
    for atoms in frames:
        assert atoms.info["temperature"] in LADDER and atoms.info["label"] in CLUSTER_LABELS
        assert atoms.info["run"] in (0, 1, 2) and atoms.info["motif"] == "icosahedron"
        assert atoms.info["thermal_snapshots"] == 1
        assert float(atoms.info["thermal_temperatures"]) == atoms.info["temperature"]
        assert set(atoms.arrays["cna"]) <= {"fcc", "hcp", "ico", "other"}
        assert np.linalg.norm(atoms.arrays["thermal_1"] - atoms.positions, axis=1).min() > 0
    # The structures are minima, and each thermal_1 quenches to its structure: quenched again in a
    # fresh LAMMPS session, both give the structure's energy.
    structures = quench_frames(frames, progress=False)
    thermal = quench_frames(
        [Atoms(a.symbols, positions=a.arrays["thermal_1"]) for a in frames], progress=False
    )
    for atoms, minimum, from_thermal in zip(frames, structures, thermal, strict=True):
        assert abs(minimum.info["energy"] - atoms.get_potential_energy()) < 1e-5
        assert abs(from_thermal.info["energy"] - atoms.get_potential_energy()) < 1e-5
    for label in {a.info["label"] for a in frames}:
        gaps = np.diff(sorted(a.get_potential_energy() for a in frames if a.info["label"] == label))
        assert np.all(gaps > DUPLICATE_ENERGY_EV), f"duplicate {label} structures kept"
    rows = (two_segments.with_name(two_segments.name + ".pt") / "snapshots.csv").read_text().splitlines()
    assert sum(row.endswith(",kept") for row in rows) == len(frames)


@needs_lammps
@needs_ovito
@pytest.mark.slow
def test_pt_extends_like_one_long_run(two_segments: Path, three_segments: Path, tmp_path: Path) -> None:
    out = tmp_path / "au38.extxyz"
    for suffix in ("", ".progress.json"):
        out.with_name(out.name + suffix).write_bytes(
            two_segments.with_name(two_segments.name + suffix).read_bytes()
        )
    shutil.copytree(two_segments.with_name(two_segments.name + ".pt"), out.with_name(out.name + ".pt"))
    result = generate_pt(out, PtSettings(structures=45, **SMALL_PT), workers=1, progress=False)
    assert result.sampled == 45
    assert frames_key(out) == frames_key(three_segments)
    assert (out.with_name(out.name + ".pt") / "exchanges.txt").read_text() == (
        three_segments.with_name(three_segments.name + ".pt") / "exchanges.txt"
    ).read_text()
    with pytest.raises(ValueError, match="other settings"):
        generate_pt(out, PtSettings(structures=45, **{**SMALL_PT, "exchange_ps": 0.5}), progress=False)


@needs_lammps
@needs_ovito
@pytest.mark.slow
def test_two_runs_compared(two_segments: Path, three_segments: Path, tmp_path: Path) -> None:
    """examples/pt_agreement.py on two real runs of one ladder: the shares of both, their difference
    in combined standard errors (those of compare_label_shares) and the figure."""
    a, b = (json.loads(path.with_name("au38.pt.json").read_text()) for path in (two_segments, three_segments))
    comparison = compare_label_shares(a, b)
    assert len(comparison["z"]) == len(LADDER) * len(CLUSTER_LABELS)
    figure = tmp_path / "agreement.png"
    script = Path(__file__).resolve().parents[1] / "examples" / "pt_agreement.py"
    finished = subprocess.run(
        [sys.executable, script, two_segments, three_segments.with_name("au38.pt.json"), "--out", figure],
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 0, finished.stderr
    assert f"of {len(comparison['z'])} shares" in finished.stdout
    assert f"largest |difference| {comparison['max_abs_z']:.1f}" in finished.stdout
    assert figure.stat().st_size > 10_000
    missing = subprocess.run(
        [sys.executable, script, tmp_path / "none.pt.json", figure], capture_output=True, text=True
    )
    assert missing.returncode != 0 and "no PT report" in missing.stderr


@needs_lammps
@needs_ovito
@pytest.mark.slow
def test_cli_pt_interrupted_and_resumed(three_segments: Path, tmp_path: Path) -> None:
    """SIGTERM to `nanochart generate --method pt` once a segment is saved, then the same command:
    the run goes on from the restart files and ends as an uninterrupted one."""
    out = tmp_path / "au38.extxyz"
    command = [
        sys.executable, "-m", "nanochart", "generate", "--method", "pt", "--element", "Au",
        "--natoms", "38", "--structures", "45", "--temperatures", "300,345,400", "--interval", "0.5",
        "--exchange", "0.25", "--equilibration", "1", "--segment", "5", "--start", "icosahedron",
        "--workers", "1",
        "--out", str(out),
    ]  # fmt: skip
    progress = out.with_name(out.name + ".progress.json")
    interrupt_after(command, progress, done=2)  # the equilibration and one segment
    assert 2 <= len(json.loads(progress.read_text())["done"]) < 4

    finished = subprocess.run(command, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert "acceptance" in finished.stdout and "round trips" in finished.stdout
    assert frames_key(out) == frames_key(three_segments)
    own = json.loads(out.with_name("au38.pt.json").read_text())
    reference = json.loads(three_segments.with_name("au38.pt.json").read_text())
    assert compare_label_shares(own, reference)["max_abs_z"] in (0.0, None)


def test_cli_pt_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = str(tmp_path / "x.extxyz")
    base = ["generate", "--method", "pt", "--element", "Au", "--natoms", "38", "--out", target]
    assert main([*base, "--temperatures", "300"]) == 2
    assert "at least 2 temperatures" in capsys.readouterr().err
    assert main([*base, "--temperatures", "300,330", "--thermal-snapshots", "3"]) == 2
    assert "one thermal snapshot" in capsys.readouterr().err
    assert main([*base, "--temperatures", "300,330", "--mpiexec", "no-such-mpiexec"]) == 2
    assert "no-such-mpiexec" in capsys.readouterr().err
    assert main(["generate", "--element", "Au", "--natoms", "38", "--out", target, "--exchange", "1"]) == 2
    assert "belong to --method pt" in capsys.readouterr().err


@pytest.mark.skipif(not (Path(sys.executable).parent / "mpiexec").is_file(), reason="needs the mpich wheel")
def test_pt_refuses_to_run_under_mpiexec(tmp_path: Path) -> None:
    """`mpiexec -n 2 nanochart generate --method pt` would run the whole job twice into one file."""
    command = [
        str(Path(sys.executable).parent / "mpiexec"), "-n", "2", sys.executable, "-m", "nanochart",
        "generate", "--method", "pt", "--element", "Au", "--natoms", "38", "--temperatures", "300,330",
        "--out", str(tmp_path / "x.extxyz"),
    ]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert finished.returncode != 0
    assert finished.stderr.count("launches its own MPI job") == 2
    assert not (tmp_path / "x.extxyz").exists()
