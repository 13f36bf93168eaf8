"""Structural labels by common neighbour analysis (CNA), computed with OVITO's Python module.

Per atom, OVITO's adaptive CNA gives ``fcc``, ``hcp``, ``ico`` or ``other`` (surface atoms are
``other``: CNA needs a full shell of 12 neighbours; so are rare bcc-like ones). Five-fold symmetry
axes, the signature of decahedra and icosahedra, show up as bonds with CNA signature (555); they
are counted with OVITO's bond-based CNA, the bond cutoff halfway between the first and second fcc
shells (1.207 times the median nearest-neighbour distance, so no lattice constant is needed).

Per cluster, the rules (applied in this order). "Inner" atoms have at least 12 neighbours within
the bond cutoff; "axis" atoms sit inside a five-fold axis: 12 neighbours, two (555) bonds along the
axis and ten (422) bonds, as in decahedra and icosahedra; "ordered" atoms are fcc, hcp, ico or axis.

1. ``amorphous``: fewer than 30% of the inner atoms are ordered (liquid-like quenches have under
   10%, faceted motifs 100%, surface-reconstructed ones 40-90%).
2. ``Ih``: at least one ico atom (12 (555) bonds: an icosahedral centre) and at least 6 axis atoms.
3. ``Dh``: no ico atom, at least one axis atom, and the inner atoms with two or more (555) bonds on
   one line (within 0.35 nearest-neighbour distances): a single five-fold axis.
4. ``mix``: any other five-fold order (axis atoms off one line: several axes; an ico atom with
   few axis atoms).
5. ``fcc``: no ico or axis atom (isolated (555) pairs, local defects, do not count) and hcp atoms
   fewer than 10% of the fcc + hcp atoms.
6. ``twin``: as fcc, but hcp atoms at least 10% of fcc + hcp and at most twice the fcc atoms (twin
   planes or stacking faults inside fcc).
7. ``mix`` otherwise (hcp-dominated: several faults).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from ase import Atoms

#: Per-atom labels by OVITO's structure type index (OTHER, FCC, HCP, BCC, ICO): bcc-like
#: environments are rare distortions in close-packed clusters and count as other.
ATOM_LABELS = ("other", "fcc", "hcp", "other", "ico")
CLUSTER_LABELS = ("Ih", "Dh", "fcc", "twin", "mix", "amorphous")
#: Bond cutoff over the nearest-neighbour distance: between the first shell (1) and the second
#: fcc shell (sqrt 2), at the conventional 0.854 lattice constants.
CUTOFF_OVER_NN = 0.854 * np.sqrt(2.0)
MIN_ORDERED_FRACTION = 0.3
MIN_IH_AXIS_ATOMS = 6
AXIS_LINE_TOLERANCE = 0.35
#: Five-fold axes: axis atoms share an axis when their (555) bonds are parallel within this angle;
#: axes meet at a point that lies within AXIS_MEET_TOLERANCE nearest-neighbour distances of each.
AXIS_ANGLE_DEGREES = 15.0
AXIS_MEET_TOLERANCE = 0.5
#: Planar hcp layers (twin planes): atoms within this many nearest-neighbour distances of a
#: close-packed plane (layers are 0.82 apart), at least MIN_HCP_LAYER_ATOMS of them.
HCP_LAYER_TOLERANCE = 0.25
MIN_HCP_LAYER_ATOMS = 3
TWIN_HCP_FRACTION = 0.1


@dataclass(frozen=True)
class CnaResult:
    """CNA of one cluster: per-atom labels, (555) bond counts, five-fold axis and inner atoms
    (boolean masks) and the cluster label; with the geometry they came from (positions, the
    bonded pairs, which of them are (555) bonds, the nearest-neighbour distance) for the
    descriptors built on them (``five_fold_axes``, ``hcp_layers``)."""

    atom_labels: np.ndarray
    n555: np.ndarray
    axis: np.ndarray
    inner: np.ndarray
    label: str
    positions: np.ndarray
    bonds: np.ndarray  # (B, 2) atom indices
    bond_555: np.ndarray  # (B,) bool
    nn: float

    def counts(self) -> dict[str, int]:
        return {name: int((self.atom_labels == name).sum()) for name in ("fcc", "hcp", "ico", "other")}


def _ovito():
    try:
        from ovito.io.ase import ase_to_ovito
        from ovito.modifiers import CommonNeighborAnalysisModifier, CreateBondsModifier
        from ovito.pipeline import Pipeline, StaticSource
    except ImportError as error:
        raise ImportError(
            "CNA labels need OVITO's Python module: pip install ovito (or pip install 'nanochart[data]')"
        ) from error
    return ase_to_ovito, CommonNeighborAnalysisModifier, CreateBondsModifier, Pipeline, StaticSource


def nearest_neighbour_distance(atoms: Atoms) -> float:
    """Median over atoms of the distance to the nearest other atom (angstrom)."""
    from scipy.spatial import cKDTree

    distances, _ = cKDTree(atoms.positions).query(atoms.positions, k=2)
    return float(np.median(distances[:, 1]))


def analyse(atoms: Atoms) -> CnaResult:
    """CNA of a cluster in vacuum (any periodic cell is ignored)."""
    ase_to_ovito, Cna, CreateBonds, Pipeline, StaticSource = _ovito()
    if len(atoms) < 13:
        raise ValueError(f"CNA needs a cluster of at least 13 atoms, got {len(atoms)}")
    if not np.isfinite(atoms.positions).all():
        raise ValueError("CNA: the structure has NaN or infinite coordinates")
    cluster = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions)
    cluster.center(vacuum=10.0)
    cutoff = CUTOFF_OVER_NN * nearest_neighbour_distance(cluster)

    data = ase_to_ovito(cluster)  # pipelines compute on copies: one conversion serves both
    adaptive = Pipeline(source=StaticSource(data=data))
    adaptive.modifiers.append(Cna(mode=Cna.Mode.AdaptiveCutoff))
    types = np.asarray(adaptive.compute().particles["Structure Type"])

    bonded = Pipeline(source=StaticSource(data=data))
    bonded.modifiers.append(CreateBonds(cutoff=cutoff))
    bonded.modifiers.append(Cna(mode=Cna.Mode.BondBased))
    bonds = bonded.compute().particles.bonds
    pairs = np.asarray(bonds.topology)
    signatures = np.asarray(bonds["CNA Indices"])
    n555, n422 = (_bonds_per_atom(pairs, signatures, s, len(cluster)) for s in ((5, 5, 5), (4, 2, 2)))
    coordination = np.bincount(pairs.ravel(), minlength=len(cluster))

    labels = np.array(ATOM_LABELS, dtype=object)[types].astype(str)
    inner = coordination >= 12
    axis = (coordination == 12) & (n555 == 2) & (n422 == 10)
    nn = cutoff / CUTOFF_OVER_NN
    label = _cluster_label(labels, n555, axis, inner, cluster.positions, nn)
    bond_555 = (signatures == (5, 5, 5)).all(axis=1)
    return CnaResult(labels, n555, axis, inner, label, cluster.positions, pairs, bond_555, nn)


def _bonds_per_atom(pairs: np.ndarray, signatures: np.ndarray, signature: tuple, n_atoms: int) -> np.ndarray:
    chosen = (signatures == signature).all(axis=1)
    return np.bincount(pairs[chosen].ravel(), minlength=n_atoms)


def _cluster_label(
    labels: np.ndarray,
    n555: np.ndarray,
    axis: np.ndarray,
    inner: np.ndarray,
    positions: np.ndarray,
    nn: float,
) -> str:
    n_fcc, n_hcp, n_ico = ((labels == name).sum() for name in ("fcc", "hcp", "ico"))
    ordered = (labels != "other") | axis
    if inner.sum() == 0 or (ordered & inner).sum() < MIN_ORDERED_FRACTION * inner.sum():
        return "amorphous"
    if n_ico >= 1 and axis.sum() >= MIN_IH_AXIS_ATOMS:
        return "Ih"
    if axis.any() or n_ico:
        five_fold = (n555 >= 2) & inner
        if n_ico == 0 and _collinear(positions[five_fold], AXIS_LINE_TOLERANCE * nn):
            return "Dh"
        return "mix"
    if n_hcp < TWIN_HCP_FRACTION * (n_fcc + n_hcp):
        return "fcc"
    if n_hcp <= 2 * n_fcc:
        return "twin"
    return "mix"


def _collinear(points: np.ndarray, tolerance: float) -> bool:
    if len(points) <= 2:
        return True
    centred = points - points.mean(axis=0)
    direction = np.linalg.svd(centred, full_matrices=False)[2][0]
    off_line = centred - np.outer(centred @ direction, direction)
    return bool(np.linalg.norm(off_line, axis=1).max() <= tolerance)


def five_fold_axes(result: CnaResult) -> list[np.ndarray]:
    """The cluster's five-fold axes, each as the indices of its axis atoms: an axis atom's two (555)
    bonds run along its axis, and two axis atoms share an axis when their bond directions agree
    (within AXIS_ANGLE_DEGREES) and each lies on the other's line (within AXIS_LINE_TOLERANCE
    nearest-neighbour distances). An Ino decahedron has one axis; an icosahedron six, each through
    the centre (the opposite rays of one line are one axis); no axis atom, no axis."""
    from scipy.sparse.csgraph import connected_components

    atoms = np.flatnonzero(result.axis)
    if len(atoms) == 0:
        return []
    directions = _axis_directions(result, atoms)
    points = result.positions[atoms]
    parallel = np.abs(directions @ directions.T) >= np.cos(np.radians(AXIS_ANGLE_DEGREES))
    offsets = points[None, :, :] - points[:, None, :]  # [a, b]: from atom a to atom b
    along = np.einsum("abk,ak->ab", offsets, directions)
    off_line = np.linalg.norm(offsets - along[..., None] * directions[:, None, :], axis=2)
    on_line = off_line <= AXIS_LINE_TOLERANCE * result.nn
    _, group = connected_components(parallel & on_line & on_line.T, directed=False)
    return [atoms[group == g] for g in range(group.max() + 1)]


def _axis_directions(result: CnaResult, atoms: np.ndarray) -> np.ndarray:
    """Unit vectors along the axis through each axis atom: from one (555) partner to the other."""
    pairs = result.bonds[result.bond_555]
    directions = np.empty((len(atoms), 3))
    for n, i in enumerate(atoms):
        partners = np.concatenate([pairs[pairs[:, 0] == i, 1], pairs[pairs[:, 1] == i, 0]])
        step = result.positions[partners[1]] - result.positions[partners[0]]
        directions[n] = step / np.linalg.norm(step)
    return directions


def axis_line(result: CnaResult, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A five-fold axis (its atoms' indices, as ``five_fold_axes`` gives them) as a line: a point on
    it and its unit direction (the atoms' principal axis; a lone atom's (555) bond direction)."""
    points = result.positions[members]
    if len(members) == 1:
        return points[0], _axis_directions(result, members)[0]
    return points.mean(axis=0), np.linalg.svd(points - points.mean(axis=0), full_matrices=False)[2][0]


def axes_meeting_point(result: CnaResult, axes: Sequence[np.ndarray]) -> tuple[np.ndarray, int] | None:
    """The point where the most five-fold axes meet, and how many meet there (two or more, each
    passing within AXIS_MEET_TOLERANCE nearest-neighbour distances of it); None when no two axes
    meet. Candidates are the points where two axes come closest; among those where as many meet,
    the one nearest the cluster's centroid. An icosahedron's six axes meet at its centre atom, or at
    the empty site of a central vacancy; a distorted one may have other axes besides."""
    lines = [axis_line(result, members) for members in axes]
    tolerance = AXIS_MEET_TOLERANCE * result.nn
    centroid = result.positions.mean(axis=0)
    best: tuple[int, float, np.ndarray] | None = None
    for a in range(len(lines)):
        for b in range(a + 1, len(lines)):
            point = _closest_point(lines[a], lines[b])
            if point is None:
                continue
            meeting = sum(_distance_to_line(point, line) <= tolerance for line in lines)
            rank = (meeting, -float(np.linalg.norm(point - centroid)))
            if meeting >= 2 and (best is None or rank > best[:2]):
                best = (*rank, point)
    return None if best is None else (best[2], best[0])


def _distance_to_line(point: np.ndarray, line: tuple[np.ndarray, np.ndarray]) -> float:
    offset = point - line[0]
    return float(np.linalg.norm(offset - (offset @ line[1]) * line[1]))


def _closest_point(
    first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]
) -> np.ndarray | None:
    """Midpoint of the shortest segment between two lines (point, unit direction); None when they
    are parallel."""
    (p, u), (q, v) = first, second
    w, uv = p - q, u @ v
    denominator = 1.0 - uv**2
    if denominator < 1e-6:
        return None
    s = (uv * (v @ w) - (u @ w)) / denominator
    t = ((v @ w) - uv * (u @ w)) / denominator
    return 0.5 * ((p + s * u) + (q + t * v))


@dataclass(frozen=True)
class HcpLayer:
    """A planar layer of hcp atoms: their indices and the close-packed plane (a point, the unit
    normal) they lie on."""

    atoms: np.ndarray
    point: np.ndarray
    normal: np.ndarray

    def holds_line(self, point: np.ndarray, direction: np.ndarray, nn: float) -> bool:
        """Whether the line lies in the layer's plane (parallel within AXIS_ANGLE_DEGREES, its point
        within HCP_LAYER_TOLERANCE nearest-neighbour distances ``nn``): a decahedron's twin
        boundaries hold its axis."""
        parallel = abs(direction @ self.normal) <= np.sin(np.radians(AXIS_ANGLE_DEGREES))
        return bool(parallel and abs((point - self.point) @ self.normal) <= HCP_LAYER_TOLERANCE * nn)


def hcp_layers(result: CnaResult) -> list[HcpLayer]:
    """Planar layers of hcp atoms: the estimate of twin planes. In an fcc cluster a twin plane is
    one (111) layer of hcp atoms (its surface atoms are ``other``), an intrinsic stacking fault two
    adjacent ones, an island of surface atoms on hcp sites one (the facet below it); a decahedron
    has five, one per twin boundary through its axis. Each hcp atom's basal plane is the
    close-packed plane (through it and two bonded neighbours bonded to each other) that holds the
    most of its neighbours (six in an hcp environment, where no other plane holds six); hcp atoms
    share a layer when their basal planes agree (normals within AXIS_ANGLE_DEGREES, each atom within
    HCP_LAYER_TOLERANCE nearest-neighbour distances of the other's plane); a layer has at least
    MIN_HCP_LAYER_ATOMS atoms. Layers come largest first."""
    from scipy.sparse.csgraph import connected_components

    hcp = np.flatnonzero(result.atom_labels == "hcp")
    if len(hcp) < MIN_HCP_LAYER_ATOMS:
        return []
    positions, tolerance = result.positions, HCP_LAYER_TOLERANCE * result.nn
    bonded = np.zeros((len(positions), len(positions)), dtype=bool)
    bonded[result.bonds[:, 0], result.bonds[:, 1]] = bonded[result.bonds[:, 1], result.bonds[:, 0]] = True
    normals = np.array([_basal_normal(positions, i, bonded, tolerance) for i in hcp.tolist()])
    points = positions[hcp]
    parallel = np.abs(normals @ normals.T) >= np.cos(np.radians(AXIS_ANGLE_DEGREES))
    heights = np.abs(np.einsum("ak,abk->ab", normals, points[None, :, :] - points[:, None, :]))
    coplanar = parallel & (heights <= tolerance) & (heights.T <= tolerance)
    _, group = connected_components(coplanar, directed=False)
    layers = [
        HcpLayer(hcp[group == g], points[group == g].mean(axis=0), normals[np.argmax(group == g)])
        for g in range(group.max() + 1)
        if (group == g).sum() >= MIN_HCP_LAYER_ATOMS
    ]
    return sorted(layers, key=lambda layer: -len(layer.atoms))


def _basal_normal(positions: np.ndarray, i: int, bonded: np.ndarray, tolerance: float) -> np.ndarray:
    """Unit normal of the close-packed plane through atom ``i`` that holds most of its neighbours
    (``bonded``: the cluster's bond matrix)."""
    neighbours = np.flatnonzero(bonded[i])
    offsets = positions[neighbours] - positions[i]
    best, normal = -1, np.array([0.0, 0.0, 1.0])
    for a, j in enumerate(neighbours):
        for b in range(a + 1, len(neighbours)):
            if not bonded[j, neighbours[b]]:
                continue  # no close-packed triangle
            trial = np.cross(offsets[a], offsets[b])
            trial /= np.linalg.norm(trial)
            held = int((np.abs(offsets @ trial) <= tolerance).sum())
            if held > best:
                best, normal = held, trial
    return normal


def _analyse_chunk(symbols: list[str], positions: np.ndarray) -> list[tuple[str, np.ndarray]]:
    results = [analyse(Atoms(symbols, positions=p)) for p in positions]
    return [(result.label, result.atom_labels) for result in results]


def label_pool(workers: int | None, jobs: int | None = None) -> ProcessPoolExecutor:
    """Worker processes for `label_frames` (default one per core, at most ``jobs``)."""
    import multiprocessing

    workers = max(1, min(workers or os.cpu_count() or 1, jobs or os.cpu_count() or 1))
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def label_frames(
    frames: Sequence[Atoms],
    *,
    workers: int | None = None,
    progress: bool = True,
    pool: ProcessPoolExecutor | None = None,
) -> None:
    """Set ``info["label"]`` (cluster label) and the per-atom ``cna`` array of every frame, in
    parallel over worker processes, ``pool`` or new ones (call from under
    ``if __name__ == "__main__":`` in scripts)."""
    from contextlib import nullcontext

    from nanochart.progress import progress_bar

    chunk = max(1, min(100, len(frames) // 8))  # at least 8 jobs to share out when there are few frames
    starts = range(0, len(frames), chunk)
    bar = progress_bar(total=len(frames), desc="CNA", unit="structure", enabled=progress)
    with bar, nullcontext(pool) if pool else label_pool(workers, len(starts)) as executor:
        jobs = [
            executor.submit(
                _analyse_chunk,
                frames[start].get_chemical_symbols(),
                np.stack([atoms.positions for atoms in frames[start : start + chunk]]),
            )
            for start in starts
        ]
        for start, job in zip(starts, jobs, strict=True):
            for atoms, (label, atom_labels) in zip(frames[start : start + chunk], job.result(), strict=True):
                atoms.info["label"] = label
                atoms.arrays.pop("cna", None)
                atoms.new_array("cna", atom_labels.astype("U5"))
            bar.update(min(chunk, len(frames) - start))


def label_file(
    data: str | os.PathLike[str], out: str | os.PathLike[str], *, workers: int | None = None
) -> list[Atoms]:
    """`nanochart label`: the structures of ``data`` with their CNA labels, written to ``out`` (extxyz)."""
    from ase.io import write

    from .structures import read_structures

    frames = read_structures(data)
    label_frames(frames, workers=workers)
    write(os.fspath(out), frames, format="extxyz")
    return frames
