"""The chart as a chemiscope input file: every charted structure linked to its point on the map.

Written with chemiscope's own Python API (``chemiscope.write_input``, chemiscope 1.1.0, the
``chemiscope`` extra), gzip-compressed; open it at https://chemiscope.org, in a notebook
(``chemiscope.show_input(path)``) or with chemiscope's other viewers. The map's axes are the CVs
(the first three; all are properties), coloured by family; per structure: family (number and
``k: name``), CNA label, energy (eV) and temperature (K) where the data carry them, and its index
in the data file. Positions are rounded to POSITION_DECIMALS decimals (angstrom), which halves
the file and is far below thermal motion.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

CHEMISCOPE_FILE = "chart.chemiscope.json.gz"
POSITION_DECIMALS = 3


@dataclass(frozen=True)
class ChemiscopeFile:
    path: Path
    n_structures: int
    n_charted: int

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


def _chemiscope():
    try:
        import chemiscope
    except ImportError as error:
        raise ImportError(
            "--chemiscope needs chemiscope's Python package: pip install 'nanochart[chemiscope]' "
            "(chemiscope==1.1.0)"
        ) from error
    return chemiscope


def _energy(atoms: Atoms) -> float | None:
    if atoms.calc is not None and "energy" in atoms.calc.results:
        return float(atoms.calc.results["energy"])
    return float(atoms.info["energy"]) if "energy" in atoms.info else None


def write_chemiscope(
    path: str | os.PathLike[str],
    frames: Sequence[Atoms],
    cvs: np.ndarray,
    cv_names: Sequence[str],
    families: np.ndarray,
    *,
    family_names: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    max_structures: int | None = None,
    seed: int = 0,
    description: str = "",
) -> ChemiscopeFile:
    """Write the chart to ``path`` (.json.gz or .json); ``max_structures`` keeps a random subset
    (seeded, in data order) of a larger data set; None keeps every structure."""
    chemiscope = _chemiscope()
    picked = np.arange(len(frames))
    if max_structures is not None and len(frames) > max_structures:
        picked = np.sort(np.random.default_rng(seed).choice(len(frames), max_structures, replace=False))
    chosen: list[int] = picked.tolist()
    structures = [
        Atoms(frames[i].get_chemical_symbols(), positions=np.round(frames[i].positions, POSITION_DECIMALS))
        for i in chosen
    ]
    properties: dict[str, dict] = {
        name: {"target": "structure", "values": cvs[chosen, j], "description": f"chart CV {j + 1}"}
        for j, name in enumerate(cv_names)
    }
    properties["family"] = {
        "target": "structure",
        "values": families[chosen],
        "description": "mean-shift family, numbered by size",
    }
    if family_names is not None:
        properties["family name"] = {
            "target": "structure",
            "values": [f"{families[i]}: {family_names[families[i]]}" for i in chosen],
            "description": "family and the name its representatives give it",
        }
    if labels is not None:
        properties["CNA label"] = {
            "target": "structure",
            "values": [labels[i] for i in chosen],
            "description": "cluster CNA label",
        }
    energies = [_energy(frames[i]) for i in chosen]
    if all(e is not None for e in energies):
        properties["energy"] = {"target": "structure", "values": np.array(energies), "units": "eV"}
    if all("temperature" in frames[i].info for i in chosen):
        temperatures = np.array([float(frames[i].info["temperature"]) for i in chosen])
        properties["temperature"] = {
            "target": "structure",
            "values": temperatures,
            "units": "K",
            "description": "MD temperature the structure was sampled at",
        }
    properties["index"] = {
        "target": "structure",
        "values": picked,
        "description": "index in the data file",
    }
    axes = dict(zip(("x", "y", "z"), cv_names, strict=False))
    settings = chemiscope.quick_settings(**axes, map_color="family")
    path = Path(path)
    chemiscope.write_input(
        os.fspath(path),  # chemiscope 1.1.0 checks the suffix with str methods
        structures=structures,
        properties=properties,
        metadata={"name": "nanochart chart", "description": description},
        settings=settings,
    )
    return ChemiscopeFile(path, len(chosen), len(frames))
