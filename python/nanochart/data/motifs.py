"""Seed structures: the classic cluster motifs of ``ase.cluster``, trimmed or grown to a size.

For each motif family the magic-number cluster closest in size is built (the larger one on a tie),
then atoms are removed from, or added to, its surface one at a time: trimming takes away the least
coordinated atom (the farthest from the centre on a tie); growing puts an adatom on the hollow site
that bonds to the most atoms (the nearest to the centre on a tie). Positions are in angstrom.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterator

import numpy as np
from ase import Atoms
from ase.cluster import Decahedron, Icosahedron, Octahedron
from scipy.spatial import cKDTree

from .structures import read_structures

#: fcc lattice constants (angstrom) of the EAM potentials shipped with LAMMPS (Foiles et al. 1986).
LATTICE_CONSTANTS = {"Au": 4.08, "Ag": 4.09, "Cu": 3.615}
MIN_ATOMS, MAX_ATOMS = 30, 400
#: Bond cutoff over the nearest-neighbour distance (between the first and second fcc shells).
BOND_OVER_NN = 1.2


def nearest_neighbour(element: str) -> float:
    """Nearest-neighbour distance (angstrom) of the element's fcc lattice."""
    return LATTICE_CONSTANTS[element] / np.sqrt(2.0)


def _atoms_within_bond(tree: cKDTree, points: np.ndarray, nn: float) -> np.ndarray:
    """How many of the tree's atoms lie within the bond cutoff of each point (an atom of the tree
    counts itself: subtract one for its coordination)."""
    return np.array([len(n) for n in tree.query_ball_point(points, BOND_OVER_NN * nn)])


def check_request(element: str, n_atoms: int) -> None:
    if element not in LATTICE_CONSTANTS:
        known = ", ".join(LATTICE_CONSTANTS)
        raise ValueError(f"unknown element {element!r}: nanochart makes data sets for {known}")
    if not MIN_ATOMS <= n_atoms <= MAX_ATOMS:
        raise ValueError(f"natoms must be between {MIN_ATOMS} and {MAX_ATOMS}, got {n_atoms}")


def _icosahedra(element: str, a: float) -> Iterator[Atoms]:
    for shells in range(2, 7):
        yield Icosahedron(element, shells, latticeconstant=a)


def _decahedra(re_entrances: bool) -> Callable[[str, float], Iterator[Atoms]]:
    def build(element: str, a: float) -> Iterator[Atoms]:
        for p, q in itertools.product(range(2, 7), range(1, 7)):
            for r in range(1, 3) if re_entrances else (0,):
                yield Decahedron(element, p, q, r, latticeconstant=a)

    return build


def _octahedra(kind: str) -> Callable[[str, float], Iterator[Atoms]]:
    def build(element: str, a: float) -> Iterator[Atoms]:
        for cutoff in range(0, 8):
            if kind == "cubo" and cutoff >= 1:
                yield Octahedron(element, 2 * cutoff + 1, cutoff, latticeconstant=a)
            elif kind == "octahedron":
                yield Octahedron(element, cutoff + 2, 0, latticeconstant=a)
            elif kind == "truncated":
                # Truncated but not down to a cuboctahedron: 1 <= cutoff < (length - 1) / 2.
                for length in range(2 * cutoff + 2, 3 * cutoff + 2):
                    if cutoff >= 1:
                        yield Octahedron(element, length, cutoff, latticeconstant=a)

    return build


def _twinned(element: str, a: float) -> Iterator[Atoms]:
    # Twinned truncated octahedra (odd lengths, so that an atom sits at the centre); twinned
    # cuboctahedra are left out: they turn into icosahedra at once (the Mackay path).
    for cutoff in range(1, 6):
        for length in range(2 * cutoff + 3, 3 * cutoff + 2, 2):
            yield twinned_fcc(Octahedron(element, length, cutoff, latticeconstant=a))


def twinned_fcc(crystal: Atoms) -> Atoms:
    """A twinned copy of an fcc cluster centred on an atom: the half above the (111) plane through
    its centre, and that half's mirror image below the plane (stacking ...CBABC...)."""
    positions = crystal.positions - crystal.positions.mean(axis=0)
    centre = positions[np.argmin(np.linalg.norm(positions, axis=1))]
    positions -= centre
    height = positions @ (np.ones(3) / np.sqrt(3.0))
    tolerance = 1e-6 * np.abs(positions).max()
    upper = positions[height > tolerance]
    mirrored = upper - 2.0 * np.outer(height[height > tolerance], np.ones(3) / np.sqrt(3.0))
    twinned = np.vstack([positions[np.abs(height) <= tolerance], upper, mirrored])
    return Atoms(f"{crystal.get_chemical_symbols()[0]}{len(twinned)}", positions=twinned)


#: Motif families: name -> generator of ever larger clusters.
FAMILIES: dict[str, Callable[[str, float], Iterator[Atoms]]] = {
    "icosahedron": _icosahedra,
    "ino_decahedron": _decahedra(re_entrances=False),
    "marks_decahedron": _decahedra(re_entrances=True),
    "octahedron": _octahedra("octahedron"),
    "truncated_octahedron": _octahedra("truncated"),
    "cuboctahedron": _octahedra("cubo"),
    "twinned_fcc": _twinned,
}


def seed_motifs(element: str, n_atoms: int) -> dict[str, Atoms]:
    """One cluster of ``n_atoms`` atoms per motif family, keyed by family name."""
    check_request(element, n_atoms)
    a = LATTICE_CONSTANTS[element]
    seeds = {}
    for name, family in FAMILIES.items():
        candidates = list(family(element, a))
        best = min(candidates, key=lambda atoms: (abs(len(atoms) - n_atoms), -len(atoms)))
        seeds[name] = resize(best, n_atoms, nearest_neighbour(element))
    return seeds


#: Cut starts: parents up to this many times the wanted size, ellipsoids whose longest axis is
#: 1.1 to 1.6 times their shortest (never a sphere: that is `nearest_to_centre`'s rule), centred
#: up to half a nearest-neighbour distance off the parent's centre.
CUT_MAX_PARENT = 3.0
CUT_AXIS_RATIO = (1.1, 1.6)
CUT_MAX_OFFSET_NN = 0.5


def cut_start(family: str, element: str, n_atoms: int, rng: np.random.Generator) -> Atoms:
    """A compact random shape of a motif family: one of its clusters larger than ``n_atoms`` (at
    most CUT_MAX_PARENT times; the smallest larger one if none) cut to the ``n_atoms`` atoms
    inside the smallest ellipsoid of random axes and orientation around a point near its centre.
    Other facets, other truncations and other surface defects than `seed_motifs` makes."""
    parents = _cut_parents(family, element, n_atoms)
    positions = parents[rng.integers(len(parents))]
    ratio = rng.uniform(*CUT_AXIS_RATIO)
    axes = rng.permutation([1.0, ratio, rng.uniform(1.0, ratio)])
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    offset = rng.normal(size=3)
    offset *= rng.uniform(0.0, CUT_MAX_OFFSET_NN * nearest_neighbour(element)) / np.linalg.norm(offset)
    scaled = (positions - offset) @ rotation / axes
    kept = np.argsort(np.einsum("ij,ij->i", scaled, scaled), kind="stable")[:n_atoms]
    return Atoms(f"{element}{n_atoms}", positions=positions[kept] - positions[kept].mean(axis=0))


@functools.lru_cache(maxsize=64)
def _cut_parents(family: str, element: str, n_atoms: int) -> tuple[np.ndarray, ...]:
    """Centred positions of the family's clusters that `cut_start` may cut (built once: a plan
    cuts thousands)."""
    check_request(element, n_atoms)
    larger = [
        atoms for atoms in FAMILIES[family](element, LATTICE_CONSTANTS[element]) if len(atoms) > n_atoms
    ]
    if not larger:
        raise ValueError(f"no {family} cluster larger than {n_atoms} atoms to cut")
    parents = [atoms for atoms in larger if len(atoms) <= CUT_MAX_PARENT * n_atoms] or [min(larger, key=len)]
    return tuple(atoms.positions - atoms.positions.mean(axis=0) for atoms in parents)


def nearest_to_centre(atoms: Atoms, n_atoms: int) -> Atoms:
    """The ``n_atoms`` atoms of ``atoms`` nearest its centre (nearest first; ties in file order),
    centred at the origin: a rule of trimming other than `resize`'s, for structures the generator never
    makes (models/au147 uses them as out-of-distribution tests)."""
    if len(atoms) < n_atoms:
        raise ValueError(f"cannot trim {len(atoms)} atoms to {n_atoms}")
    positions = atoms.positions - atoms.positions.mean(axis=0)
    kept = np.argsort(np.linalg.norm(positions, axis=1), kind="stable")[:n_atoms]
    symbols = [atoms.get_chemical_symbols()[i] for i in kept]
    return Atoms(symbols, positions=positions[kept] - positions[kept].mean(axis=0))


def read_seed_structures(path: str | os.PathLike[str], element: str, n_atoms: int) -> dict[str, Atoms]:
    """Start structures from a file (any format ASE reads, checked as ``read_structures`` checks a
    data set), keyed by name: the info key ``name`` or ``motif`` of each, else ``structure_I`` (I
    its index in the file; repeated names get the index too). Each must hold ``n_atoms`` atoms of
    ``element``, in angstrom."""
    seeds: dict[str, Atoms] = {}
    for i, atoms in enumerate(read_structures(path)):
        symbols = set(atoms.get_chemical_symbols())
        if len(atoms) != n_atoms or symbols != {element}:
            raise ValueError(
                f"{path}: structure {i} has {len(atoms)} atoms of {', '.join(sorted(symbols))}; "
                f"the data set is {element}{n_atoms} (--element, --natoms)"
            )
        name = str(atoms.info.get("name", atoms.info.get("motif", f"structure_{i}")))
        if name in seeds:
            name = f"{name}_{i}"
        centred = atoms.positions - atoms.positions.mean(axis=0)
        seeds[name] = Atoms(atoms.get_chemical_symbols(), positions=centred)
    return seeds


def resize(atoms: Atoms, n_atoms: int, nn: float) -> Atoms:
    """Trim or grow ``atoms`` to ``n_atoms`` atoms; ``nn`` is the nearest-neighbour distance."""
    positions = atoms.positions - atoms.positions.mean(axis=0)
    while len(positions) > n_atoms:
        positions = np.delete(positions, _least_bonded(positions, nn), axis=0)
    while len(positions) < n_atoms:
        positions = np.vstack([positions, _best_hollow_site(positions, nn)])
    return Atoms(f"{atoms.get_chemical_symbols()[0]}{n_atoms}", positions=positions)


def _least_bonded(positions: np.ndarray, nn: float) -> int:
    tree = cKDTree(positions)
    coordination = _atoms_within_bond(tree, positions, nn) - 1
    distance = np.linalg.norm(positions - positions.mean(axis=0), axis=1)
    return int(np.lexsort((-distance, coordination))[0])


def _free_sites(positions: np.ndarray, nn: float) -> tuple[np.ndarray, np.ndarray]:
    """Free sites one bond length from a surface atom (on 400 directions around each), and how many
    atoms each would bond to; the best are hollow sites (positions refine in MD afterwards)."""
    tree = cKDTree(positions)
    coordination = _atoms_within_bond(tree, positions, nn) - 1
    sites = (positions[coordination < 12, None, :] + nn * _DIRECTIONS[None]).reshape(-1, 3)
    closest, _ = tree.query(sites)
    sites = sites[closest > 0.95 * nn]
    if len(sites) == 0:
        raise RuntimeError("no free site to grow the cluster on")
    bonds = _atoms_within_bond(tree, sites, nn)
    return sites, bonds


def _best_hollow_site(positions: np.ndarray, nn: float) -> np.ndarray:
    sites, bonds = _free_sites(positions, nn)
    distance = np.linalg.norm(sites - positions.mean(axis=0), axis=1)
    return sites[np.lexsort((distance, -bonds))[0]]


def shuffle_surface(atoms: Atoms, moves: int, rng: np.random.Generator, nn: float) -> Atoms:
    """Move ``moves`` random surface atoms to random hollow sites (three or more bonds): distinct
    surface isomers of one motif, so that runs at low temperature do not all find one minimum."""
    positions = atoms.positions.copy()
    for _ in range(moves):
        tree = cKDTree(positions)
        coordination = _atoms_within_bond(tree, positions, nn) - 1
        surface = np.flatnonzero(coordination < 12)
        moved = np.delete(positions, rng.choice(surface), axis=0)
        sites, bonds = _free_sites(moved, nn)
        hollow = sites[bonds >= 3] if (bonds >= 3).any() else sites
        positions = np.vstack([moved, hollow[rng.integers(len(hollow))]])
    return Atoms(atoms.get_chemical_symbols(), positions=positions)


def _fibonacci_sphere(n: int) -> np.ndarray:
    k = np.arange(n) + 0.5
    polar = np.arccos(1.0 - 2.0 * k / n)
    azimuth = np.pi * (1.0 + np.sqrt(5.0)) * k
    return np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], axis=1)


_DIRECTIONS = _fibonacci_sphere(400)
