"""Write au147_motifs.extxyz: the three 147-atom gold motifs shipped with the examples.

Ideal geometries from ase.cluster at gold's lattice constant (4.08 angstrom): icosahedron,
Ino decahedron and cuboctahedron (fcc). Run: python examples/data/make_motifs.py
"""

from pathlib import Path

from ase.cluster import Decahedron, Icosahedron, Octahedron
from ase.io import write

MOTIFS = {
    "Ih": lambda: Icosahedron("Au", 4),
    "Dh": lambda: Decahedron("Au", 4, 4, 0),
    "fcc": lambda: Octahedron("Au", 7, 3),
}


def main() -> None:
    frames = []
    for label, build in MOTIFS.items():
        atoms = build()
        atoms.center()
        atoms.info["motif"] = label
        frames.append(atoms)
    out = Path(__file__).with_name("au147_motifs.extxyz")
    write(out, frames, format="extxyz")
    print(f"wrote {out} ({len(frames)} structures of {len(frames[0])} atoms)")


if __name__ == "__main__":
    main()
