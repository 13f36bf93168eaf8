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
TWIN_HCP_FRACTION = 0.1


@dataclass(frozen=True)
class CnaResult:
    """CNA of one cluster: per-atom labels, (555) bond counts, five-fold axis and inner atoms
    (boolean masks) and the cluster label."""

    atom_labels: np.ndarray
    n555: np.ndarray
    axis: np.ndarray
    inner: np.ndarray
    label: str

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
    label = _cluster_label(labels, n555, axis, inner, cluster.positions, cutoff / CUTOFF_OVER_NN)
    return CnaResult(labels, n555, axis, inner, label)


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


def _analyse_chunk(symbols: list[str], positions: np.ndarray) -> list[tuple[str, np.ndarray]]:
    results = [analyse(Atoms(symbols, positions=p)) for p in positions]
    return [(result.label, result.atom_labels) for result in results]


def label_frames(frames: Sequence[Atoms], *, workers: int | None = None, progress: bool = True) -> None:
    """Set ``info["label"]`` (cluster label) and the per-atom ``cna`` array of every frame, in
    parallel over worker processes (call from under ``if __name__ == "__main__":`` in scripts)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    chunk = 100
    starts = range(0, len(frames), chunk)
    workers = max(1, min(workers or os.cpu_count() or 1, len(starts)))
    context = multiprocessing.get_context("spawn")
    bar = tqdm(total=len(frames), desc="CNA", unit="structure", disable=None if progress else True)
    with bar, ProcessPoolExecutor(workers, mp_context=context) as pool:
        jobs = [
            pool.submit(
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
