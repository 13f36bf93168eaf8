"""Write WORK/far_off.extxyz: Au structures made by procedures the training data never used, for
the far-off figure of `nanochart calibrate-novelty --far-off` (models/au147/README.md). All have
147 atoms: another size is caught before the novelty, by the atom-count warning.

Each structure's info key `source` names its group:
- trimmed: ase.cluster motifs larger than 147 atoms (icosahedron, Ino and Marks decahedra,
  octahedron, truncated octahedra) cut to the 147 atoms nearest their centre (not the generator's
  rule), each ideal and with random displacements of 0.05, 0.1 and 0.2 angstrom;
- strained: the 147-atom icosahedron, Ino decahedron and cuboctahedron scaled by 0.8 to 1.2 (the
  lattice of another metal: Cu's is 0.89 of gold's, Pt's 0.96), ideal and with 0.05 and 0.1 angstrom
  displacements;
- random: 147 atoms placed at random in a sphere of bulk gold's density, at least 2.3 angstrom apart
  (a gas frozen without relaxing);
- shape: flat (111) monolayers and bilayers, and rods 3 and 7 atoms wide.

Run: python models/au147/far_off.py WORK (deterministic: seeded).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import fcc111
from ase.cluster import Decahedron, Icosahedron, Octahedron
from ase.io import write

from nanochart.data.motifs import nearest_to_centre

N = 147
LATTICE = 4.08


def random_sphere(rng: np.random.Generator, n: int = N, min_distance: float = 2.3) -> Atoms:
    radius = (3 * n * LATTICE**3 / 4 / (4 * np.pi)) ** (1 / 3)  # 4 atoms per cubic cell
    points: list[np.ndarray] = []
    while len(points) < n:
        x = rng.uniform(-radius, radius, 3)
        if np.linalg.norm(x) <= radius and all(np.linalg.norm(x - p) >= min_distance for p in points):
            points.append(x)
    return Atoms(f"Au{n}", positions=np.array(points))


def structures(rng: np.random.Generator) -> list[Atoms]:
    out: list[tuple[str, Atoms]] = []
    parents = [
        Icosahedron("Au", 5),
        Decahedron("Au", 3, 3, 2),
        Decahedron("Au", 4, 2, 2),
        Octahedron("Au", 7, 0),
        Octahedron("Au", 7, 2),
        Octahedron("Au", 8, 3),
    ]
    for parent in parents:
        for amplitude in (0.0, 0.05, 0.1, 0.2):
            atoms = nearest_to_centre(parent, N)
            atoms.positions += amplitude * rng.normal(size=atoms.positions.shape)
            out.append(("trimmed", atoms))
    for motif in (Icosahedron("Au", 4), Decahedron("Au", 4, 4, 0), Octahedron("Au", 7, 3)):
        for factor in (0.8, 0.85, 0.9, 0.95, 1.05, 1.1, 1.15, 1.2):
            for amplitude in (0.0, 0.05, 0.1):
                atoms = motif.copy()
                atoms.positions = factor * atoms.positions + amplitude * rng.normal(
                    size=atoms.positions.shape
                )
                out.append(("strained", atoms))
    for _ in range(8):
        out.append(("random", random_sphere(rng)))
    for size in ((21, 7, 1), (49, 3, 1), (12, 7, 2), (11, 7, 2), (37, 2, 2)):
        out.append(("shape", fcc111("Au", size=size, a=LATTICE)[:N]))
    frames = []
    for source, atoms in out:
        atoms = Atoms(atoms.get_chemical_symbols(), positions=atoms.positions - atoms.positions.mean(axis=0))
        atoms.info["source"] = source
        frames.append(atoms)
    return frames


def main() -> None:
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "build/au147-model")
    work.mkdir(parents=True, exist_ok=True)
    frames = structures(np.random.default_rng(15))
    write(work / "far_off.extxyz", frames, format="extxyz")
    print(f"wrote {work / 'far_off.extxyz'} ({len(frames)} structures)")


if __name__ == "__main__":
    main()
