"""Write WORK/elsewhere_starts.extxyz: the start structures of the out-of-distribution test of the
card (models/au147/README.md, "Structures made elsewhere"), Au147 motifs made by a procedure the
training data never used. `nanochart generate --seed-structures` then runs MD from them at 300 and
450 K, quenches and labels every snapshot, as for the in-distribution sets.

The training data start from `nanochart.data.motifs.seed_motifs`: for each motif family the
cluster nearest 147 atoms in size, trimmed or grown one least-bonded atom at a time. These start
instead from larger ase.cluster motifs (Marks and Ino decahedra of other shapes, an octahedron,
truncated octahedra, a twinned truncated octahedron) cut to the 147 atoms nearest their centre
(`motifs.nearest_to_centre`): roundish clusters with other facets and other surface defects. The
two that this rule would make identical to a training seed (the 309-atom icosahedron, which it
cuts to the 147-atom one, and the 209-atom Ino decahedron) are left out.

Run: python models/au147/elsewhere.py WORK (deterministic).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ase import Atoms
from ase.cluster import Decahedron, Octahedron
from ase.io import write

from nanochart.data.motifs import LATTICE_CONSTANTS, nearest_to_centre, twinned_fcc

N = 147


def parents(element: str = "Au") -> dict[str, Atoms]:
    """The larger motifs, by name (ase.cluster's parameters in the name)."""
    a = LATTICE_CONSTANTS[element]
    return {
        "marks_3_3_2": Decahedron(element, 3, 3, 2, latticeconstant=a),
        "marks_4_2_2": Decahedron(element, 4, 2, 2, latticeconstant=a),
        "marks_5_2_1": Decahedron(element, 5, 2, 1, latticeconstant=a),
        "ino_5_3_0": Decahedron(element, 5, 3, 0, latticeconstant=a),
        "octahedron_7": Octahedron(element, 7, 0, latticeconstant=a),
        "truncated_octahedron_7_2": Octahedron(element, 7, 2, latticeconstant=a),
        "truncated_octahedron_8_3": Octahedron(element, 8, 3, latticeconstant=a),
        "twinned_truncated_octahedron_9_3": twinned_fcc(Octahedron(element, 9, 3, latticeconstant=a)),
    }


def starts() -> list[Atoms]:
    frames = []
    for name, parent in parents().items():
        atoms = nearest_to_centre(parent, N)
        atoms.info["name"] = name
        frames.append(atoms)
    return frames


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    work = Path(sys.argv[1])
    work.mkdir(parents=True, exist_ok=True)
    path = work / "elsewhere_starts.extxyz"
    write(path, starts(), format="extxyz")
    print(f"wrote {path}: {len(starts())} start structures of {N} atoms")
