"""Data sets of cluster structures: any ASE-readable file (extxyz, xyz, LAMMPS dump, ASE
trajectory) holding structures of one cluster size, checked, with their labels and thermal
coordinates."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms


def read_structures(path: str | os.PathLike[str], index: str = ":") -> list[Atoms]:
    """Every structure of an ASE-readable file, checked to form a data set (one cluster size, finite)."""
    from ase.io import read

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no data set file at {path}")
    try:
        frames = read(path, index=index)
    except Exception as error:  # ASE raises many types for unreadable input
        raise ValueError(
            f"cannot read {path} as a structure file ({type(error).__name__}: {error})"
        ) from error
    if isinstance(frames, Atoms):
        frames = [frames]
    if not frames:
        raise ValueError(f"{path} holds no structures")
    check_structures(frames, source=str(path))
    return list(frames)


def check_structures(frames: Sequence[Atoms], source: str = "the data set") -> None:
    """Raise ValueError for mixed atom counts, too few atoms or non-finite coordinates."""
    sizes = {len(atoms) for atoms in frames}
    if len(sizes) > 1:
        first = len(frames[0])
        odd = next(i for i, atoms in enumerate(frames) if len(atoms) != first)
        raise ValueError(
            f"{source} mixes cluster sizes: frame 0 has {first} atoms, frame {odd} has {len(frames[odd])}; "
            "a data set holds one cluster size (split the file by size)"
        )
    if len(frames[0]) < 2:
        raise ValueError(f"{source}: structures need at least 2 atoms")
    for i, atoms in enumerate(frames):
        bad = ~np.isfinite(atoms.positions)
        if bad.any():
            raise ValueError(
                f"{source}: frame {i}, atom {int(np.argwhere(bad)[0][0])} has a NaN or infinite coordinate"
            )


def positions_of(frames: Sequence[Atoms]) -> np.ndarray:
    return np.ascontiguousarray(np.stack([atoms.positions for atoms in frames]), dtype=np.float64)


def thermal_frames(frames: Sequence[Atoms]) -> tuple[list[Atoms], np.ndarray]:
    """The thermal snapshots stored with quenched structures (per-atom arrays ``thermal_1`` ...,
    angstrom, as `nanochart generate` writes them) as frames, and for each the index of the frame
    it quenches to; ``([], empty)`` for data sets without them."""
    snapshots, owners = [], []
    for index, atoms in enumerate(frames):
        k = 1
        while f"thermal_{k}" in atoms.arrays:
            snapshot = Atoms(atoms.symbols, positions=atoms.arrays[f"thermal_{k}"])
            snapshot.info.update(
                {key: atoms.info[key] for key in ("temperature", "label") if key in atoms.info}
            )
            snapshots.append(snapshot)
            owners.append(index)
            k += 1
    return snapshots, np.asarray(owners, dtype=np.int64)


def structure_labels(
    frames: Sequence[Atoms], keys: Sequence[str] = ("label", "cna_label", "motif")
) -> list[str] | None:
    """Per-structure labels from the frames' info (the first of ``keys`` that every frame has)."""
    for key in keys:
        if all(key in atoms.info for atoms in frames):
            return [str(atoms.info[key]) for atoms in frames]
    return None
