"""Data sets: seed motifs, CNA labels, `nanochart generate` (LAMMPS MD, quench, dedupe, resume)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.cluster import Decahedron, Icosahedron, Octahedron
from ase.io import read, write
from scipy.spatial import cKDTree

from conftest import interrupt_after, needs_lammps, needs_ovito
from nanochart.cli import main
from nanochart.data.cna import CLUSTER_LABELS, analyse
from nanochart.data.motifs import (
    FAMILIES,
    LATTICE_CONSTANTS,
    cut_start,
    nearest_to_centre,
    read_seed_structures,
    resize,
    seed_motifs,
    twinned_fcc,
)
from nanochart.data.sampling import (
    DUPLICATE_ENERGY_EV,
    GenerateSettings,
    append_frames,
    generate,
    has_evaporated,
    plan_runs,
)

A_AU = LATTICE_CONSTANTS["Au"]
NN_AU = A_AU / np.sqrt(2.0)


# --- CNA labels on ideal motifs -------------------------------------------------------------------


@needs_ovito
@pytest.mark.parametrize(
    ("name", "atoms", "label"),
    [
        ("icosahedron 55", Icosahedron("Au", 3, A_AU), "Ih"),
        ("icosahedron 147", Icosahedron("Au", 4, A_AU), "Ih"),
        ("Ino decahedron 147", Decahedron("Au", 4, 4, 0, A_AU), "Dh"),
        ("Marks decahedron 146", Decahedron("Au", 3, 2, 2, A_AU), "Dh"),
        ("truncated octahedron 201", Octahedron("Au", 7, 2, A_AU), "fcc"),
        ("cuboctahedron 147", Octahedron("Au", 7, 3, A_AU), "fcc"),
        ("twinned truncated octahedron", twinned_fcc(Octahedron("Au", 7, 2, A_AU)), "twin"),
        ("twinned truncated octahedron (Ag)", twinned_fcc(Octahedron("Ag", 9, 3, 4.09)), "twin"),
    ],
)
def test_cna_labels_ideal_motifs(name: str, atoms: Atoms, label: str) -> None:
    assert analyse(atoms).label == label, name


@needs_ovito
def test_cna_per_atom_labels() -> None:
    ico = analyse(Icosahedron("Au", 4, A_AU))
    centre = np.argmin(np.linalg.norm(Icosahedron("Au", 4, A_AU).positions - [0, 0, 0], axis=1))
    assert ico.atom_labels[centre] == "ico" and (ico.atom_labels == "ico").sum() == 1
    # The 20 twinned tetrahedra of the icosahedron meet on planes of hcp atoms.
    assert ico.counts()["hcp"] == 30 and ico.axis.sum() == 24

    crystal = Octahedron("Au", 7, 2, A_AU)  # truncated octahedron: inner atoms are fcc, surface other
    tree = cKDTree(crystal.positions)
    coordination = np.array([len(n) - 1 for n in tree.query_ball_point(crystal.positions, 1.2 * NN_AU)])
    result = analyse(crystal)
    assert set(result.atom_labels[coordination == 12]) == {"fcc"}
    assert set(result.atom_labels[coordination < 12]) == {"other"}

    twin = twinned_fcc(crystal)
    heights = twin.positions @ (np.ones(3) / np.sqrt(3.0))
    plane = (np.abs(heights) < 1e-6) & (analyse(twin).atom_labels != "other")
    assert set(analyse(twin).atom_labels[plane]) == {"hcp"}, "the twin plane is hcp"


@needs_ovito
def test_cna_amorphous_and_rotation_invariance(rng: np.random.Generator) -> None:
    # Dense random packing: points at least 0.85 nn apart in a sphere; no crystalline order.
    points: list[np.ndarray] = []
    radius = 9.0
    while len(points) < 147:
        trial = rng.uniform(-radius, radius, 3)
        if np.linalg.norm(trial) < radius and all(np.linalg.norm(trial - p) > 0.85 * NN_AU for p in points):
            points.append(trial)
    assert analyse(Atoms("Au147", positions=np.array(points))).label == "amorphous"

    atoms = Decahedron("Au", 4, 4, 0, A_AU)
    rotated = atoms.copy()
    rotated.rotate(37, (1, 2, 3))
    assert analyse(rotated).label == "Dh"
    np.testing.assert_array_equal(analyse(rotated).atom_labels, analyse(atoms).atom_labels)


@needs_ovito
def test_cna_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 13 atoms"):
        analyse(Atoms("Au5", positions=np.eye(5, 3) * 3))
    atoms = Icosahedron("Au", 3, A_AU)
    atoms.positions[4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        analyse(atoms)


# --- seed motifs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n_atoms", [38, 100, 147, 309])
def test_seed_motifs_have_the_size_and_no_overlaps(n_atoms: int) -> None:
    seeds = seed_motifs("Au", n_atoms)
    assert set(seeds) == set(FAMILIES)
    for name, atoms in seeds.items():
        assert len(atoms) == n_atoms, name
        distances, _ = cKDTree(atoms.positions).query(atoms.positions, k=2)
        assert distances[:, 1].min() > 0.9 * NN_AU, f"{name}: atoms overlap"
        assert distances[:, 1].max() < 1.25 * NN_AU, f"{name}: an atom is not bonded"


@needs_ovito
def test_seed_motifs_keep_their_motif_at_147() -> None:
    labels = {name: analyse(atoms).label for name, atoms in seed_motifs("Au", 147).items()}
    assert labels == {
        "icosahedron": "Ih",
        "ino_decahedron": "Dh",
        "marks_decahedron": "Dh",
        "octahedron": "fcc",
        "truncated_octahedron": "fcc",
        "cuboctahedron": "fcc",
        "twinned_fcc": "twin",
    }


def test_resize_trims_and_grows() -> None:
    ico = Icosahedron("Au", 3, A_AU)  # 55 atoms
    trimmed = resize(ico, 50, NN_AU)
    grown = resize(ico, 62, NN_AU)
    assert len(trimmed) == 50 and len(grown) == 62
    # Trimming removes the least bonded (vertex) atoms; growing puts adatoms in hollow sites.
    tree = cKDTree(grown.positions)
    distances, _ = tree.query(grown.positions[55:], k=2)
    assert np.all(distances[:, 1] > 0.9 * NN_AU)
    bonds = [len(n) - 1 for n in tree.query_ball_point(grown.positions[55:], 1.2 * NN_AU)]
    assert min(bonds) >= 3, "every adatom sits in a hollow site"
    assert resize(ico, 55, NN_AU).positions.shape == (55, 3)


@pytest.mark.parametrize(
    ("element", "n_atoms", "message"),
    [
        ("Pt", 147, "unknown element 'Pt'"),
        ("Au", 12, "between 30 and 400"),
        ("Au", 1000, "between 30 and 400"),
    ],
)
def test_bad_requests(element: str, n_atoms: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GenerateSettings(element, n_atoms, structures=10, temperatures=(300.0,))


def test_evaporation_is_detected() -> None:
    cluster = Icosahedron("Au", 4, A_AU)
    assert not has_evaporated(cluster)
    for lost in (1, 2):  # a single atom, or a dimer still bonded to itself, far from the cluster
        broken = cluster.copy()
        broken.positions[-lost:] += [40.0, 0.0, 0.0]
        assert has_evaporated(broken)


def test_plan_is_prefix_stable_and_covers_the_ladder() -> None:
    seeds = seed_motifs("Au", 55)
    small = plan_runs(GenerateSettings("Au", 55, structures=100, temperatures=(300.0, 400.0)), seeds)
    large = plan_runs(GenerateSettings("Au", 55, structures=400, temperatures=(300.0, 400.0)), seeds)
    assert [(r.start, r.temperature, r.seed) for r in small] == [
        (r.start, r.temperature, r.seed) for r in large[: len(small)]
    ]
    pairs = {(r.temperature, r.start) for r in large}
    assert len(pairs) == 2 * (len(FAMILIES) + 1)
    # Any size spans the ladder: the first runs already take every temperature and many starts.
    ladder = (250.0, 330.0, 410.0, 490.0)
    first = plan_runs(GenerateSettings("Au", 55, structures=80, temperatures=ladder), seeds)
    assert {r.temperature for r in first[:4]} == set(ladder) and len({r.start for r in first}) == 8
    cycle = plan_runs(GenerateSettings("Au", 55, structures=320, temperatures=ladder), seeds)
    assert len({(r.temperature, r.start) for r in cycle}) == 32, "one cycle holds every pair once"


# --- generate ---------------------------------------------------------------------------------------

SMALL = {"element": "Au", "n_atoms": 55, "temperatures": (300.0, 500.0), "snapshots_per_run": 4}


def energies(path: Path) -> list[tuple[float, str]]:
    return [(round(a.get_potential_energy(), 8), a.info["label"]) for a in read(path, ":")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 8-run data set of Au55, made with two worker processes."""
    path = tmp_path_factory.mktemp("data") / "au55.extxyz"
    generate(path, GenerateSettings(structures=32, **SMALL), workers=2, progress=False)
    return path


@needs_lammps
@needs_ovito
def test_generate_writes_labelled_quenched_unique_structures(reference: Path) -> None:
    frames = read(reference, ":")
    assert 8 <= len(frames) <= 32
    for atoms in frames:
        assert len(atoms) == 55 and atoms.info["label"] in CLUSTER_LABELS
        assert atoms.info["temperature"] in SMALL["temperatures"]
        assert atoms.info["motif"] in (*FAMILIES, "melt")
        assert set(atoms.arrays["cna"]) <= {"fcc", "hcp", "ico", "other"}
        # Quenched: an EAM Au55 minimum lies near -3.6 eV per atom; thermal snapshots are higher.
        assert -3.75 < atoms.get_potential_energy() / 55 < -3.4
        # The stored label is the CNA of the stored structure.
        assert analyse(atoms).label == atoms.info["label"]
    by_label: dict[str, list[float]] = {}
    for energy, label in energies(reference):
        by_label.setdefault(label, []).append(energy)
    for label, values in by_label.items():
        gaps = np.diff(np.sort(values))
        assert np.all(gaps > DUPLICATE_ENERGY_EV), f"duplicate {label} structures kept"
    state = json.loads(reference.with_name(reference.name + ".progress.json").read_text())
    assert sorted(state["done"]) == list(range(8))
    assert state["counts"]["sampled"] == 32
    assert state["counts"]["sampled"] - state["counts"]["duplicates"] - state["counts"]["evaporated"] == len(
        frames
    )


@needs_lammps
@needs_ovito
def test_generate_is_seeded_resumes_and_extends(reference: Path, tmp_path: Path) -> None:
    path = tmp_path / "au55.extxyz"
    # Half the runs, then the rest by asking for more: the same structures as in one go (1 worker).
    generate(path, GenerateSettings(structures=16, **SMALL), workers=1, progress=False)
    # An interrupted append (a partial frame after the last finished run) is cut off on resume.
    with open(path, "a") as handle:
        handle.write("55\nProperties=species:S:1:pos:R:3 label=Ih\nAu 0.0 0.0")
    result = generate(path, GenerateSettings(structures=32, **SMALL), workers=1, progress=False)
    assert energies(path) == energies(reference)
    assert result.kept == len(energies(reference))
    # A finished data set asked again does nothing.
    again = generate(path, GenerateSettings(structures=32, **SMALL), workers=1, progress=False)
    assert energies(path) == energies(reference) and again.kept == result.kept


@needs_lammps
@needs_ovito
def test_generate_refuses_to_mix_settings_or_clobber(reference: Path, tmp_path: Path) -> None:
    other = dict(SMALL, temperatures=(350.0,))
    with pytest.raises(ValueError, match="other settings"):
        generate(reference, GenerateSettings(structures=32, **other), progress=False)
    foreign = tmp_path / "mine.extxyz"
    foreign.write_text("not ours")
    with pytest.raises(FileExistsError, match="--overwrite"):
        generate(foreign, GenerateSettings(structures=4, **SMALL), progress=False)
    assert foreign.read_text() == "not ours"


@needs_lammps
@needs_ovito
def test_generate_keeps_thermal_snapshots_that_quench_to_each_structure(
    reference: Path, tmp_path: Path
) -> None:
    from nanochart.simulation.lammps_session import quench, start_lammps

    path = tmp_path / "thermal.extxyz"
    generate(path, GenerateSettings(structures=8, thermal_snapshots=3, **SMALL), workers=2, progress=False)
    frames = read(path, ":")
    extra = 0
    for atoms in frames:
        count = atoms.info["thermal_snapshots"]
        assert 1 <= count <= 3
        assert [f"thermal_{k}" in atoms.arrays for k in range(1, 5)] == [k <= count for k in range(1, 5)]
        # The first at the run's temperature, the others across the ladder.
        temperatures = np.atleast_1d(atoms.info["thermal_temperatures"])
        assert len(temperatures) == count and temperatures[0] == atoms.info["temperature"]
        assert set(temperatures) <= set(SMALL["temperatures"])
        for k in range(1, count + 1):
            # A thermal structure, not the quench itself.
            rms = np.sqrt(np.mean(np.sum((atoms.arrays[f"thermal_{k}"] - atoms.positions) ** 2, axis=1)))
            assert rms > 0.02, (k, rms)
        extra += count - 1
    assert extra > 0, "no re-thermalised snapshot came back to its quench"
    # Every thermal snapshot, quenched again in a LAMMPS session of its own, finds its structure's
    # minimum (the first is the snapshot the structure was quenched from).
    for atoms in frames:
        for k in range(1, atoms.info["thermal_snapshots"] + 1):
            hot = Atoms(atoms.symbols, positions=atoms.arrays[f"thermal_{k}"])
            _, lmp = start_lammps(hot, tmp_path)
            energy = quench(lmp)[1]
            lmp.close()
            assert abs(energy - atoms.get_potential_energy()) < 1e-3
    # A data set started before these settings existed still resumes: its progress file lacks them.
    progress = reference.with_name(reference.name + ".progress.json")
    old = tmp_path / "old.extxyz"
    old.write_bytes(reference.read_bytes())
    state = json.loads(progress.read_text())
    for key in ("thermal_snapshots", "rethermalise_ps"):
        del state["settings"][key]
    old.with_name(old.name + ".progress.json").write_text(json.dumps(state))
    assert generate(old, GenerateSettings(structures=32, **SMALL), progress=False).kept == len(
        read(reference, ":")
    )


@needs_lammps
def test_generate_unwritable_output(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OSError, match="cannot write the data set"):
        generate(blocker / "sub" / "out.extxyz", GenerateSettings(structures=4, **SMALL), progress=False)


@needs_lammps
def test_generate_lammps_failure_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.eam"
    broken.write_text("an EAM file\n1 1.0 4.08 FCC\nnot numbers\n")
    # LAMMPS either reports the error or crashes in its reader; the caller gets a message either way.
    with pytest.raises(RuntimeError, match=r"LAMMPS (failed|crashed) in run 0 \(icosahedron, 300 K\)"):
        generate(
            tmp_path / "out.extxyz",
            GenerateSettings(structures=4, **SMALL),
            workers=1,
            potential=str(broken),
            progress=False,
        )


def test_interrupted_append_leaves_whole_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interruption in the middle of appending a run's frames (Ctrl-C, or SIGTERM, which the CLI
    turns into KeyboardInterrupt) cuts the file back to the frames it held: it still reads."""
    import ase.io

    out = tmp_path / "data.extxyz"
    first = [Atoms("Au2", positions=[[0, 0, 0], [0, 0, 2.9]])]
    append_frames(out, first)
    size = out.stat().st_size

    def half_then_interrupt(handle, frames, format):
        handle.write("55\nProperties=species:S:1:pos:R:3\nAu 0.0 0.0 0.0\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(ase.io, "write", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        append_frames(out, first * 3)
    assert out.stat().st_size == size and len(read(out, index=":")) == 1


@needs_lammps
@needs_ovito
@pytest.mark.slow
def test_cli_generate_interrupted_and_resumed(reference: Path, tmp_path: Path) -> None:
    """A real interruption: SIGTERM to `nanochart generate` once some runs are saved, then the same
    command again: nothing kept is lost and the result equals an uninterrupted run."""
    out = tmp_path / "au55.extxyz"
    command = [
        sys.executable, "-m", "nanochart", "generate", "--element", "Au", "--natoms", "55",
        "--structures", "64", "--temperatures", "300,500", "--snapshots-per-run", "4",
        "--workers", "2", "--out", str(out),
    ]  # fmt: skip
    progress = out.with_name(out.name + ".progress.json")
    interrupt_after(command, progress, done=2)
    assert 2 <= len(json.loads(progress.read_text())["done"]) < 16
    kept_before = energies(out)

    assert subprocess.run(command, capture_output=True, text=True).returncode == 0
    after = energies(out)
    assert after[: len(kept_before)] == kept_before
    # The uninterrupted run of 16: the 8-run reference extended by 8 more runs.
    uninterrupted = tmp_path / "reference.extxyz"
    for suffix in ("", ".progress.json"):
        uninterrupted.with_name(uninterrupted.name + suffix).write_bytes(
            reference.with_name(reference.name + suffix).read_bytes()
        )
    generate(uninterrupted, GenerateSettings(structures=64, **SMALL), workers=2, progress=False)
    assert after == energies(uninterrupted)
    assert out.with_name("au55.labels.png").stat().st_size > 0
    assert "T (K)" in out.with_name("au55.labels.txt").read_text()


def test_cli_generate_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = str(tmp_path / "x.extxyz")
    assert main(["generate", "--element", "Xx", "--natoms", "147", "--out", target]) == 2
    assert "unknown element 'Xx'" in capsys.readouterr().err
    assert main(["generate", "--element", "Au", "--natoms", "5", "--out", target]) == 2
    assert "natoms must be between 30 and 400" in capsys.readouterr().err
    assert not (tmp_path / "x.extxyz").exists()
    (tmp_path / "a_file").write_text("")
    blocked = str(tmp_path / "a_file" / "x.extxyz")
    assert main(["generate", "--element", "Au", "--natoms", "55", "--structures", "4", "--out", blocked]) == 2
    assert "cannot write the data set" in capsys.readouterr().err


@needs_ovito
def test_cli_label_any_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`nanochart label` on frames without a temperature: labels written, one table row for them."""
    source, labelled = tmp_path / "motifs.xyz", tmp_path / "labelled.extxyz"
    write(source, [Icosahedron("Au", 4, A_AU), Octahedron("Au", 7, 3, A_AU), Icosahedron("Au", 4, A_AU)])
    assert main(["label", str(source), "--out", str(labelled), "--workers", "1"]) == 0
    assert [atoms.info["label"] for atoms in read(labelled, ":")] == ["Ih", "fcc", "Ih"]
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [row[:2] for row in rows if row and row[0] in ("-", "all")] == [["-", "3"], ["all", "3"]]


# --- start structures of one's own (--seed-structures) -------------------------------------------


def test_nearest_to_centre_keeps_the_inner_atoms() -> None:
    parent = Icosahedron("Au", 5, A_AU)  # 309 atoms: its 147 inner ones are the 147-atom icosahedron
    trimmed = nearest_to_centre(parent, 147)
    inner = Icosahedron("Au", 4, A_AU)
    assert type(trimmed) is Atoms and len(trimmed) == 147
    assert np.allclose(
        np.sort(np.linalg.norm(trimmed.positions, axis=1)),
        np.sort(np.linalg.norm(inner.positions - inner.positions.mean(axis=0), axis=1)),
    )
    with pytest.raises(ValueError, match="cannot trim 55 atoms to 147"):
        nearest_to_centre(Icosahedron("Au", 3, A_AU), 147)


def test_read_seed_structures_names_and_checks(tmp_path: Path) -> None:
    ico, octa = Icosahedron("Au", 3, A_AU), nearest_to_centre(Octahedron("Au", 5, 0, A_AU), 55)
    ico.info["name"] = "my_ico"
    path = tmp_path / "starts.extxyz"
    write(path, [ico, octa, octa])
    seeds = read_seed_structures(path, "Au", 55)
    assert list(seeds) == ["my_ico", "structure_1", "structure_2"]
    assert np.allclose(seeds["my_ico"].positions.mean(axis=0), 0.0)
    with pytest.raises(ValueError, match="structure 0 has 55 atoms of Au; the data set is Ag55"):
        read_seed_structures(path, "Ag", 55)
    with pytest.raises(ValueError, match="the data set is Au147"):
        read_seed_structures(path, "Au", 147)
    with pytest.raises(FileNotFoundError, match="no data set file at"):
        read_seed_structures(tmp_path / "missing.xyz", "Au", 55)
    bad = ico.copy()
    bad.positions[3, 1] = np.nan
    write(tmp_path / "nan.extxyz", bad)
    with pytest.raises(ValueError, match="frame 0, atom 3 has a NaN"):
        read_seed_structures(tmp_path / "nan.extxyz", "Au", 55)


@needs_lammps
@needs_ovito
def test_generate_from_seed_structures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Runs start from the given structures, unchanged (no melt, no surface moves), and a resumed
    data set refuses a changed file."""
    starts = tmp_path / "starts.extxyz"
    octa = nearest_to_centre(Octahedron("Au", 5, 0, A_AU), 55)
    octa.info["name"] = "trimmed_octahedron"
    ico = Icosahedron("Au", 3, A_AU)
    ico.info["name"] = "ico"
    write(starts, [octa, ico])
    settings = GenerateSettings(structures=8, **SMALL, seed_structures=str(starts))
    runs = plan_runs(settings, read_seed_structures(starts, "Au", 55), melt=False)
    assert {r.start for r in runs} == {"trimmed_octahedron", "ico"}
    # Started from as given: no surface moves, the given positions (centred).
    assert all(r.surface_moves == 0 for r in runs)
    given = {"trimmed_octahedron": octa.positions - octa.positions.mean(axis=0)}
    assert all(np.allclose(r.positions, given[r.start]) for r in runs if r.start in given)
    out = tmp_path / "mine.extxyz"
    generate(out, settings, workers=1, progress=False)
    frames = read(out, ":")
    assert frames and {a.info["motif"] for a in frames} <= {"trimmed_octahedron", "ico"}
    assert all(-3.75 < a.get_potential_energy() / 55 < -3.4 for a in frames)  # quenched Au55
    write(starts, [ico, octa])
    with pytest.raises(ValueError, match="changed since this data set was started"):
        generate(out, GenerateSettings(structures=16, **SMALL, seed_structures=str(starts)), progress=False)
    # The command line: md only, and the path is kept absolute.
    target = str(tmp_path / "pt.extxyz")
    args = [
        "generate",
        "--element",
        "Au",
        "--natoms",
        "55",
        "--out",
        target,
        "--seed-structures",
        str(starts),
    ]
    assert main([*args, "--method", "pt"]) == 2
    assert "--seed-structures and --cut-starts belong to --method md" in capsys.readouterr().err
    assert main([*args[:-2], "--cut-starts", "--method", "pt"]) == 2
    assert "belong to --method md" in capsys.readouterr().err


# --- cut starts (--cut-starts) -------------------------------------------------------------------


@needs_ovito
@pytest.mark.parametrize(
    ("family", "label"),
    [
        ("icosahedron", "Ih"),
        ("marks_decahedron", "Dh"),
        ("truncated_octahedron", "fcc"),
        ("twinned_fcc", "twin"),
    ],
)
def test_cut_starts_are_compact_pieces_of_their_family(family: str, label: str) -> None:
    """A cut keeps the motif (its CNA label), has the size asked for, no overlapping atoms, and
    is not the sphere cut of `nearest_to_centre` nor a seed motif: another shape each time."""
    rng = np.random.default_rng(5)
    cuts = [cut_start(family, "Au", 147, rng) for _ in range(3)]
    seeds = [np.sort(np.linalg.norm(a.positions, axis=1)) for a in seed_motifs("Au", 147).values()]
    for atoms in cuts:
        assert len(atoms) == 147 and np.allclose(atoms.positions.mean(axis=0), 0.0)
        assert cKDTree(atoms.positions).query(atoms.positions, k=2)[0][:, 1].min() > 0.9 * NN_AU
        assert analyse(atoms).label == label
        radii = np.sort(np.linalg.norm(atoms.positions, axis=1))
        assert all(np.abs(radii - seed).max() > 0.1 for seed in seeds)
    assert not np.allclose(cuts[0].positions, cuts[1].positions)


def test_plan_with_cut_starts() -> None:
    seeds = seed_motifs("Au", 55)
    ladder = (300.0, 400.0)
    plain = plan_runs(GenerateSettings("Au", 55, structures=400, temperatures=ladder), seeds)
    cut = plan_runs(GenerateSettings("Au", 55, structures=400, temperatures=ladder, cut_starts=True), seeds)
    assert {r.start for r in cut} == {r.start for r in plain} | {f"{family}_cut" for family in FAMILIES}
    assert all(r.surface_moves == 0 for r in cut if r.start.endswith("_cut"))
    assert any(r.surface_moves > 0 for r in cut if not r.start.endswith("_cut"))
    # Prefix-stable, as without cuts: extending a set repeats the same cuts.
    longer = plan_runs(
        GenerateSettings("Au", 55, structures=800, temperatures=ladder, cut_starts=True), seeds
    )
    assert all(
        np.array_equal(a.positions, b.positions) and a.seed == b.seed
        for a, b in zip(cut, longer[: len(cut)], strict=True)
    )
    cuts = [r.positions for r in cut if r.start == "icosahedron_cut"]
    assert len(cuts) > 1 and not np.allclose(cuts[0], cuts[1])
