"""Write WORK/elsewhere_starts.extxyz: the start structures of the out-of-distribution test of every
model card ("Structures made elsewhere"), motifs made by a procedure the training data never used.
`nanochart generate --seed-structures` then runs MD from them at 300 and 450 K, quenches and labels
every snapshot, as for the in-distribution sets (models/make_model.sh).

The training data start from `nanochart.data.motifs.seed_motifs`: for each motif family the
cluster nearest N atoms in size, trimmed or grown one least-bonded atom at a time. These start
instead from larger ase.cluster motifs (Marks and Ino decahedra of other shapes, an octahedron,
truncated octahedra, a twinned truncated octahedron) cut to the N atoms nearest their centre
(`motifs.nearest_to_centre`): roundish clusters with other facets and other surface defects. The
two that this rule would make identical to a 147-atom training seed (the 309-atom icosahedron,
which it cuts to the 147-atom one, and the 209-atom Ino decahedron) are left out. Three of the
decahedra (Marks 3-3-2 and 4-2-2, Ino 5-3-0) share their central 147 (and 90) atoms, so they give
the same start; their MD runs still differ.

Run: python models/elsewhere.py WORK [--element Au] [--natoms 147] (deterministic).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ase import Atoms
from ase.cluster import Decahedron, Octahedron
from ase.io import write

from nanochart.data.motifs import LATTICE_CONSTANTS, nearest_to_centre, twinned_fcc


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


def starts(element: str = "Au", n_atoms: int = 147) -> list[Atoms]:
    """The parents cut to their n_atoms atoms nearest the centre, each named in info["name"]."""
    frames = []
    for name, parent in parents(element).items():
        atoms = nearest_to_centre(parent, n_atoms)
        atoms.info["name"] = name
        frames.append(atoms)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path, help="folder to write elsewhere_starts.extxyz into")
    parser.add_argument("--element", default="Au", choices=sorted(LATTICE_CONSTANTS))
    parser.add_argument("--natoms", type=int, default=147)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    path = args.work / "elsewhere_starts.extxyz"
    frames = starts(args.element, args.natoms)
    write(path, frames, format="extxyz")
    print(f"wrote {path}: {len(frames)} start structures of {args.natoms} {args.element} atoms")


if __name__ == "__main__":
    main()
