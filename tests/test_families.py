"""Named families: structure descriptors and names on real motifs (ase.cluster, twins built layer
by layer, a relaxed central vacancy, an hcp island), the bandwidth for N families, and `nanochart
chart` end to end with the shipped Au147 model: family table and the chemiscope file, read back
with chemiscope's own loader."""

from __future__ import annotations

import csv
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.emt import EMT
from ase.cluster import Decahedron, Icosahedron, Octahedron
from ase.io import write
from ase.optimize import FIRE
from scipy.spatial import ConvexHull

from conftest import needs_ovito
from nanochart.chart.charting import (
    bandwidth_for_families,
    find_families,
    read_centroids,
    read_chart_cvs,
    scan_bandwidths,
)
from nanochart.chart.families import family_name
from nanochart.cli import main
from nanochart.data.cna import analyse, five_fold_axes, hcp_layers
from nanochart.data.descriptors import describe
from nanochart.data.motifs import LATTICE_CONSTANTS, seed_motifs, twinned_fcc

needs_chemiscope = pytest.mark.skipif(
    importlib.util.find_spec("chemiscope") is None,
    reason="the interactive chart needs chemiscope: pip install 'nanochart[chemiscope]'",
)
A_AU = LATTICE_CONSTANTS["Au"]
NN_AU = A_AU / np.sqrt(2.0)
LAYER = np.sqrt(2.0 / 3.0) * NN_AU  # spacing of close-packed layers
MODEL = Path(__file__).resolve().parents[1] / "models" / "au147" / "au147.pt"


def stacked(sequence: str, radius_nn: float) -> Atoms:
    """A sphere cut from close-packed gold layers stacked as ``sequence`` (A, B, C), centred on an
    atom of the middle layer: "ABCABC..." is fcc; a layer between two of the same letter is a twin
    plane (hcp)."""
    shifts = {"A": (0.0, 0.0), "B": (0.5, np.sqrt(3) / 6), "C": (1.0, np.sqrt(3) / 3)}
    n = int(radius_nn) + 3
    lattice = np.array(
        [(i + 0.5 * j, np.sqrt(3) / 2 * j) for i in range(-n, n + 1) for j in range(-n, n + 1)]
    )
    layers = [
        np.column_stack([(lattice + shifts[letter]) * NN_AU, np.full(len(lattice), k * LAYER)])
        for k, letter in enumerate(sequence)
    ]
    points = np.vstack(layers)
    points -= points[np.argmin(np.linalg.norm(points - points.mean(axis=0), axis=1))]
    kept = points[np.linalg.norm(points, axis=1) <= radius_nn * NN_AU]
    return Atoms(f"Au{len(kept)}", positions=kept)


def with_island(atoms: Atoms, size: int, site: str) -> Atoms:
    """``atoms`` with an island of ``size`` atoms on the largest (111) facet: on hcp sites (the
    layer under the facet mirrored through it: stacking ...XYX, a stacking fault at the surface)
    or on fcc sites (the next layer of the crystal, ...XYZ)."""
    positions = atoms.positions - atoms.positions.mean(axis=0)
    best = None
    for *normal, offset in ConvexHull(positions).equations:
        height = positions @ normal + offset  # 0 on the facet, negative inside
        below = np.flatnonzero(np.abs(height + LAYER) < 0.3)
        second = np.flatnonzero(np.abs(height + 2 * LAYER) < 0.3)
        facet = np.abs(height) < 0.3
        if len(below) >= size and (best is None or facet.sum() > best[0]):  # (111): layers LAYER apart
            best = (facet.sum(), np.array(normal), height, below, second, positions[facet].mean(axis=0))
    assert best is not None, "no (111) facet"
    _, normal, height, below, second, centre = best
    source = below if site == "hcp" else second
    flat = positions[source] - np.outer(positions[source] @ normal, normal)
    nearest = source[np.argsort(np.linalg.norm(flat - (centre - (centre @ normal) * normal), axis=1))[:size]]
    # Mirror through the facet (hcp sites), or lift by three layers (the fcc continuation).
    lift = -2 * height[nearest] if site == "hcp" else np.full(size, 3 * LAYER)
    island = positions[nearest] + np.outer(lift, normal)
    return Atoms(f"Au{len(positions) + size}", positions=np.vstack([positions, island]))


def relaxed(atoms: Atoms) -> Atoms:
    """Locally relaxed with ASE's EMT (a stand-in for the EAM of the data sets)."""
    atoms = atoms.copy()
    atoms.calc = EMT()
    FIRE(atoms, logfile=None).run(fmax=0.02, steps=500)
    atoms.calc = None
    return atoms


def central_vacancy(atoms: Atoms) -> Atoms:
    centre = int(np.argmin(np.linalg.norm(atoms.positions - atoms.positions.mean(axis=0), axis=1)))
    emptied = atoms.copy()
    del emptied[centre]
    return emptied


def random_packing(rng: np.random.Generator, n_atoms: int = 147) -> Atoms:
    """Points at least 0.85 nn apart in a sphere: no crystalline order."""
    points: list[np.ndarray] = []
    while len(points) < n_atoms:
        trial = rng.uniform(-9.0, 9.0, 3)
        if np.linalg.norm(trial) < 9.0 and all(np.linalg.norm(trial - p) > 0.85 * NN_AU for p in points):
            points.append(trial)
    return Atoms(f"Au{n_atoms}", positions=np.array(points))


# --- descriptors and names of one structure ------------------------------------------------------


def dh207() -> Atoms:
    return Decahedron("Au", 5, 3, 0, A_AU)


def to201() -> Atoms:
    return Octahedron("Au", 7, 2, A_AU)


#: Real structures and the names the rules must give them.
NAMED: dict[str, tuple[Callable[[], Atoms], str]] = {
    "icosahedron 147": (lambda: Icosahedron("Au", 4, A_AU), "Ih"),
    "icosahedron 147, centre removed, relaxed": (
        lambda: relaxed(central_vacancy(Icosahedron("Au", 4, A_AU))),
        "Ih, central vacancy",
    ),
    "Ino decahedron 147": (lambda: Decahedron("Au", 4, 4, 0, A_AU), "Dh"),
    "Marks decahedron 146": (lambda: Decahedron("Au", 3, 2, 2, A_AU), "Dh"),
    "decahedron 207, island on hcp sites": (lambda: with_island(dh207(), 12, "hcp"), "Dh, hcp island"),
    "decahedron 207, island on fcc sites": (lambda: with_island(dh207(), 12, "fcc"), "Dh"),
    "truncated octahedron 201": (to201, "fcc"),
    "truncated octahedron 201, relaxed": (lambda: relaxed(to201()), "fcc"),
    "fcc sphere ABCABCABCAB": (lambda: stacked("ABCABCABCAB", 4.2), "fcc"),
    "twinned truncated octahedron": (lambda: twinned_fcc(to201()), "fcc, 1 twin plane"),
    "sphere ABCABCBACBA: one twin": (lambda: stacked("ABCABCBACBA", 4.2), "fcc, 1 twin plane"),
    "sphere ABCABCBACBABC: two twins": (lambda: stacked("ABCABCBACBABC", 4.5), "fcc, 2 twin planes"),
    "truncated octahedron, island on hcp sites": (
        lambda: with_island(to201(), 12, "hcp"),
        "fcc, 1 twin plane",
    ),
    "random packing": (lambda: random_packing(np.random.default_rng(1)), "amorphous"),
}


@needs_ovito
@pytest.mark.parametrize("name", NAMED)
def test_structure_names(name: str) -> None:
    build, expected = NAMED[name]
    assert describe(build()).name == expected


@needs_ovito
def test_descriptors_count_axes_and_twin_planes() -> None:
    ih = describe(Icosahedron("Au", 4, A_AU))
    assert (ih.five_fold_axes, ih.axes_meeting, ih.axes_meet_at) == (6, 6, "ico")
    assert ih.counts == {"fcc": 0, "hcp": 30, "ico": 1, "other": 116} and ih.label == "Ih"
    # Without its centre atom, CNA finds no ico atom (the cluster label is mix), but the six axes
    # still meet at the empty centre.
    vacancy = describe(relaxed(central_vacancy(Icosahedron("Au", 4, A_AU))))
    assert (vacancy.counts["ico"], vacancy.label, vacancy.axes_meeting, vacancy.axes_meet_at) == (
        0,
        "mix",
        6,
        "vacancy",
    )
    dh = describe(Decahedron("Au", 4, 4, 0, A_AU))
    assert (dh.five_fold_axes, dh.twin_planes, dh.twin_planes_off_axis) == (1, 5, 0), "five twin boundaries"
    island = describe(with_island(dh207(), 12, "hcp"))
    assert (island.five_fold_axes, island.twin_planes, island.twin_planes_off_axis) == (1, 6, 1)
    # An intrinsic stacking fault (ABCAB|ABC: two adjacent hcp layers) counts two twin planes.
    fault = describe(stacked("ABCABABCABC", 4.2))
    assert fault.twin_planes == 2 and fault.counts["ico"] == 0 and fault.five_fold_axes == 0
    assert describe(stacked("ABCABCABCAB", 4.2)).twin_planes == 0


@needs_ovito
def test_axes_and_layers_are_where_the_geometry_puts_them() -> None:
    ico = Icosahedron("Au", 4, A_AU)
    result = analyse(ico)
    axes = five_fold_axes(result)
    centre = result.positions[result.atom_labels == "ico"][0]
    assert sorted(len(a) for a in axes) == [4] * 6, "each axis: two atoms on either side of the centre"
    for members in axes:
        offsets = result.positions[members] - centre
        direction = offsets[np.argmax(np.linalg.norm(offsets, axis=1))]
        direction /= np.linalg.norm(direction)
        off_line = offsets - np.outer(offsets @ direction, direction)
        assert np.abs(off_line).max() < 1e-6, "an axis is a straight line through the centre"

    twin = twinned_fcc(to201())
    result = analyse(twin)
    (layer,) = hcp_layers(result)
    mirror = np.ones(3) / np.sqrt(3.0)
    assert abs(abs(layer.normal @ mirror) - 1.0) < 1e-6, "the twin plane is the (111) mirror plane"
    assert set(layer.atoms) == set(np.flatnonzero(result.atom_labels == "hcp"))
    heights = (result.positions[layer.atoms] - result.positions.mean(axis=0)) @ mirror
    assert np.abs(heights - heights.mean()).max() < 1e-6


@needs_ovito
def test_names_do_not_depend_on_orientation() -> None:
    for atoms in (with_island(dh207(), 12, "hcp"), stacked("ABCABCBACBABC", 4.5)):
        turned = atoms.copy()
        turned.rotate(37, (1, 2, 3))
        assert describe(turned) == describe(atoms)


# --- families --------------------------------------------------------------------------------------


def test_family_name_is_the_majority_or_the_two_leading_names() -> None:
    assert family_name(["Ih"] * 6 + ["mix"] * 4) == "Ih"
    assert family_name(["Dh"] * 5 + ["fcc, 1 twin plane"] * 5) == "Dh"
    assert family_name(["Ih"] * 4 + ["Dh"] * 3 + ["fcc"] * 3) == "Ih / Dh"


def test_bandwidth_for_families_finds_the_finer_split() -> None:
    # Two groups of three tight blobs: the plateau rule finds the two groups; asked for six, the
    # bandwidth splits every blob off, and asked for four it gives the nearest count it can.
    rng = np.random.default_rng(0)
    centres = [(x + g * 20.0, y, 0.0) for g in (0, 1) for x, y in ((0, 0), (3, 0), (1.5, 2.6))]
    cvs = np.vstack([c + 0.15 * rng.normal(size=(60, 3)) for c in centres])
    scan = scan_bandwidths(cvs)
    assert len(find_families(cvs, scan.chosen)[1]) == 2
    six = bandwidth_for_families(cvs, scan, 6)
    families, centroids = find_families(cvs, six)
    assert len(centroids) == 6 and sorted(np.bincount(families)) == [60] * 6
    four = bandwidth_for_families(cvs, scan, 4)
    assert len(find_families(cvs, four)[1]) == 4
    assert four > six and 4 not in scan.n_clusters, "bisection between the scan's bandwidths found it"
    with pytest.raises(ValueError, match="at least 1"):
        bandwidth_for_families(cvs, scan, 0)


# --- nanochart chart end to end ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def motif_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Atoms]]:
    """Au147 motifs, eight slightly perturbed copies of each, with EMT energies, a temperature
    and their CNA label (as `nanochart generate` writes them): icosahedra, icosahedra with a
    central vacancy (the centre atom moved on top of a vertex), Marks decahedra, truncated
    octahedra and twinned truncated octahedra."""
    seeds = seed_motifs("Au", 147)
    ico = seeds["icosahedron"]
    vacancy = central_vacancy(ico)
    # The removed atom as an adatom on top of the outermost atom: 147 atoms again.
    top = vacancy.positions[np.argmax(np.linalg.norm(vacancy.positions, axis=1))]
    vacancy += Atoms("Au", positions=[top * (1 + NN_AU / np.linalg.norm(top))])
    motifs = {
        "icosahedron": ico,
        "vacancy": vacancy,
        "marks_decahedron": seeds["marks_decahedron"],
        "truncated_octahedron": seeds["truncated_octahedron"],
        "twinned_fcc": seeds["twinned_fcc"],
    }
    rng = np.random.default_rng(3)
    frames = []
    for motif, atoms in motifs.items():
        for _ in range(8):
            frame = Atoms(atoms.symbols, positions=atoms.positions + 0.03 * rng.normal(size=(147, 3)))
            frame.calc = EMT()
            frame.get_potential_energy()
            frame.info.update(motif=motif, temperature=300.0, label=analyse(frame).label)
            frames.append(frame)
    path = tmp_path_factory.mktemp("families") / "motifs.extxyz"
    write(path, frames)
    return path, frames


def _chart_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "chart.csv") as handle:
        return list(csv.DictReader(handle))


@needs_ovito
@needs_chemiscope
def test_chart_names_families_and_writes_the_interactive_chart(
    motif_data: tuple[Path, list[Atoms]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import chemiscope

    data, frames = motif_data
    out = tmp_path / "chart"
    assert main(["chart", str(MODEL), str(data), "--out", str(out), "--chemiscope"]) == 0
    printed = capsys.readouterr().out

    report = json.loads((out / "families.json").read_text())
    assert report["bandwidth_rule"] == "middle of the widest plateau"
    rows = _chart_rows(out)
    families = np.array([int(row["family"]) for row in rows])
    motifs = [a.info["motif"] for a in frames]
    by_motif = {m: {int(f) for f, n in zip(families, motifs, strict=True) if n == m} for m in set(motifs)}
    # The shipped chart puts each motif in a family of its own.
    assert sorted(len(found) for found in by_motif.values()) == [1] * 5 and len(report["families"]) == 5
    described = {motif: report["families"][found.pop()] for motif, found in by_motif.items()}
    expected = {
        "icosahedron": "Ih",
        "vacancy": "Ih, central vacancy",
        "marks_decahedron": "Dh",
        "truncated_octahedron": "fcc",
        "twinned_fcc": "fcc, 1 twin plane",
    }
    assert {motif: d["name"] for motif, d in described.items()} == expected
    assert all(d["size"] == len(d["representatives"]) == 8 for d in report["families"])
    ih, vacancy = described["icosahedron"], described["vacancy"]
    assert ih["atom_counts"] == {"fcc": 0.0, "hcp": 30.0, "ico": 1.0, "other": 116.0}
    assert (ih["five_fold_axes"], ih["label_shares"], ih["data_label_shares"]) == (
        6.0,
        {"Ih": 1.0},
        {"Ih": 1.0},
    )
    # CNA calls the icosahedron without its centre atom mix; its name says what it is.
    assert (vacancy["atom_counts"]["ico"], vacancy["five_fold_axes"], vacancy["label_shares"]) == (
        0.0,
        6.0,
        {"mix": 1.0},
    )
    dh = described["marks_decahedron"]
    assert (dh["five_fold_axes"], dh["twin_planes"], dh["atom_counts"]["ico"]) == (1.0, 5.0, 0.0)
    twin = described["twinned_fcc"]
    assert (twin["twin_planes"], twin["five_fold_axes"], twin["label_shares"]) == (1.0, 0.0, {"twin": 1.0})
    fcc = described["truncated_octahedron"]
    assert (fcc["twin_planes"], fcc["atom_counts"]["hcp"]) == (0.0, 0.0) and fcc["atom_counts"]["fcc"] > 30
    # The table, in the folder and in the summary.
    table = (out / "families.md").read_text()
    for d in report["families"]:
        line = f"| {d['family']} | {d['size']} | {d['name']} |"
        assert line in table and line in printed
    # Formats other commands read are unchanged.
    np.testing.assert_allclose(read_chart_cvs(out), [[float(r[f"cv{j}"]) for j in (1, 2, 3)] for r in rows])
    assert len(read_centroids(out)) == len(report["families"])

    # The chemiscope file, read back with chemiscope's own loader.
    path = out / "chart.chemiscope.json.gz"
    assert f"chemiscope {len(frames)} of {len(frames)} structures" in printed and str(path) in printed
    dataset = json.loads(chemiscope.show_input(path, cache_structures=False).value)
    assert len(dataset["structures"]) == len(frames)
    properties = {name: value["values"] for name, value in dataset["properties"].items()}
    expected = {"cv1", "cv2", "cv3", "family", "family name", "CNA label", "energy", "temperature", "index"}
    assert set(properties) == expected
    for j in (1, 2, 3):
        np.testing.assert_allclose(properties[f"cv{j}"], [float(r[f"cv{j}"]) for r in rows], rtol=1e-9)
    np.testing.assert_array_equal(properties["family"], families)
    names = [d["name"] for d in report["families"]]
    assert properties["family name"] == [f"{f}: {names[f]}" for f in families]
    assert properties["CNA label"] == [a.info["label"] for a in frames]
    np.testing.assert_allclose(properties["energy"], [a.get_potential_energy() for a in frames])
    assert set(properties["temperature"]) == {300.0}
    structure = dataset["structures"][5]
    assert structure["names"] == ["Au"] * 147
    np.testing.assert_allclose(np.column_stack([structure[k] for k in "xyz"]), frames[5].positions, atol=6e-4)
    assert dataset["settings"]["map"]["x"] == {"property": "cv1"}
    assert dataset["settings"]["map"]["color"] == {"property": "family"}


@needs_ovito
@needs_chemiscope
def test_chart_with_finer_families_and_a_subset_for_chemiscope(
    motif_data: tuple[Path, list[Atoms]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import chemiscope

    data, frames = motif_data
    out = tmp_path / "finer"
    argv = ["chart", str(MODEL), str(data), "--out", str(out), "--families", "7", "--representatives", "3"]
    assert main([*argv, "--chemiscope", "--chemiscope-max", "10"]) == 0
    assert "asked for 7 families" in capsys.readouterr().out
    report = json.loads((out / "families.json").read_text())
    assert len(report["families"]) == 7 and report["bandwidth_rule"] == "asked for 7 families"
    assert all(len(d["representatives"]) == min(3, d["size"]) for d in report["families"])
    assert sum(d["size"] for d in report["families"]) == len(frames)
    with open(out / "centroids.csv") as handle:
        bandwidths = [float(row["bandwidth"]) for row in csv.DictReader(handle)]
    assert bandwidths == pytest.approx([report["bandwidth"]] * 7, rel=1e-5)
    dataset = json.loads(
        chemiscope.show_input(out / "chart.chemiscope.json.gz", cache_structures=False).value
    )
    index = np.array(dataset["properties"]["index"]["values"], dtype=int)
    assert len(dataset["structures"]) == 10 and list(index) == sorted(set(index))
    families = [int(row["family"]) for row in _chart_rows(out)]
    assert dataset["properties"]["family"]["values"] == [families[i] for i in index]
    for structure, i in zip(dataset["structures"], index, strict=True):
        np.testing.assert_allclose(
            np.column_stack([structure[k] for k in "xyz"]), frames[i].positions, atol=6e-4
        )

    given = tmp_path / "given"
    assert main(["chart", str(MODEL), str(data), "--out", str(given), "--bandwidth", "0.5"]) == 0
    report = json.loads((given / "families.json").read_text())
    assert (report["bandwidth"], report["bandwidth_rule"]) == (0.5, "given")
    assert not (given / "chart.chemiscope.json.gz").exists()


def test_chart_refuses_bad_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "chart",
                str(MODEL),
                "data.extxyz",
                "--out",
                str(tmp_path),
                "--bandwidth",
                "1",
                "--families",
                "4",
            ]
        )
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    missing = str(tmp_path / "none.extxyz")
    for option, message in (
        (["--bandwidth", "-1"], "bandwidth must be positive"),
        (["--representatives", "0"], "at least 1 representative"),
        (["--chemiscope", "--chemiscope-max", "0"], "at least 1 structure"),
    ):
        assert main(["chart", str(MODEL), missing, "--out", str(tmp_path), *option]) == 2
        assert message in capsys.readouterr().err
