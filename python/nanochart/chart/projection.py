"""Projecting a trajectory on the chart: CV time series in PLUMED's COLVAR format."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from .. import plots
from ..core.cv import CV
from ..core.novelty import NoveltyScores
from ..data.structures import read_structures
from ..model.features import encode_structures
from .charting import nearest_family, read_centroids


@dataclass
class Projection:
    time: np.ndarray
    cvs: np.ndarray
    families: np.ndarray | None
    novelty: NoveltyScores | None = None  # when the model has a novelty reference
    outputs: dict[str, Path] = field(default_factory=dict)


def quench(
    frames: Sequence[Atoms], *, fmax: float = 0.01, steps: int = 2000, progress: bool = True
) -> list[Atoms]:
    """Local minimisation of each frame (FIRE, forces below fmax eV/angstrom), as the paper did
    before projecting. The potential is ASE's EMT (Au, Ag, Cu, Ni, Pd, Pt, Al): a stand-in for
    the EAM used to make the data, good enough to remove thermal noise."""
    from ase.calculators.emt import EMT
    from ase.optimize import FIRE

    from nanochart.progress import progress_bar

    quenched = []
    for atoms in progress_bar(frames, desc="quench", unit="frame", enabled=progress, leave=False):
        atoms = atoms.copy()
        atoms.calc = EMT()
        FIRE(atoms, logfile=None).run(fmax=fmax, steps=steps)
        atoms.calc = None
        quenched.append(atoms)
    return quenched


def frame_times(frames: Sequence[Atoms], timestep: float) -> np.ndarray:
    """Times in ps: from each frame's info['time'] when all frames carry one, else index * timestep."""
    if all("time" in atoms.info for atoms in frames):
        return np.array([float(atoms.info["time"]) for atoms in frames])
    return np.arange(len(frames)) * float(timestep)


def write_colvar(
    path: str | os.PathLike[str],
    time: np.ndarray,
    cvs: np.ndarray,
    names: Sequence[str],
    families: np.ndarray | None = None,
    novelty: np.ndarray | None = None,
) -> Path:
    """PLUMED COLVAR text: a `#! FIELDS` header, then one line per frame; the novelty column is
    named as RDF_ENCODER's NOVELTY component."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = [
        "time",
        *names,
        *(["family"] if families is not None else []),
        *(["novelty"] if novelty is not None else []),
    ]
    with open(path, "w") as handle:
        handle.write("#! FIELDS " + " ".join(fields) + "\n")
        for i, t in enumerate(time):
            values = " ".join(f"{v: .10f}" for v in cvs[i])
            family = f" {int(families[i])}" if families is not None else ""
            score = f" {novelty[i]:.6f}" if novelty is not None else ""
            handle.write(f" {t:.6f} {values}{family}{score}\n")
    return path


def project(
    model: str | os.PathLike[str] | CV,
    trajectory: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    quench_frames: bool = False,
    chart_dir: str | os.PathLike[str] | None = None,
    timestep: float = 1.0,
    window: int = 50,
    progress: bool = True,
) -> Projection:
    """Write COLVAR (time in ps, CVs, family when a chart is given, novelty when the model has a
    novelty reference) and a PNG of the CVs in time."""
    cv = model if isinstance(model, CV) else CV(model, num_threads=os.cpu_count() or 1)
    frames = read_structures(trajectory)
    time = frame_times(frames, timestep)
    if quench_frames:
        frames = quench(frames, progress=progress)
    cvs = encode_structures(cv, frames, progress=progress)
    families = None
    if chart_dir is not None:
        centroids = read_centroids(chart_dir)
        if centroids.shape[1] != cvs.shape[1]:
            raise ValueError(
                f"the chart has {centroids.shape[1]} CVs, the model {cvs.shape[1]}: chart with this model"
            )
        families = nearest_family(cvs, centroids)
    out = Path(out_dir)
    result = Projection(time, cvs, families, cv.novelty_of(cvs) if cv.has_novelty else None)
    score = result.novelty.score if result.novelty is not None else None
    result.outputs["colvar"] = write_colvar(out / "COLVAR", time, cvs, cv.cv_names, families, score)
    result.outputs["png"] = plots.time_series(time, cvs, cv.cv_names, window, out / "cvs_vs_time.png")
    return result
