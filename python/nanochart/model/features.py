"""RDF features of data sets, through the C++ core (never a second RDF), and the CVs of structures
through a model; both in batches over structures. RDFs are computed in parallel by
``nanochart._core`` and cached on disk, keyed by the file's content and the RDF settings."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from scipy.spatial.distance import pdist

from .. import _core
from ..core.rdf import DEFAULT_BINS, DEFAULT_CUTOFF_SIGMAS, DEFAULT_SIGMA, RdfSettings
from ..data.structures import (
    check_structures,
    positions_of,
    read_structures,
    structure_labels,
    thermal_frames,
)

#: Featurisation batch (structures per core call): large enough to keep both cores busy, small
#: enough for a responsive progress bar.
BATCH = 256


def choose_settings(
    frames: Sequence[Atoms],
    *,
    sigma: float = DEFAULT_SIGMA,
    n_bins: int = DEFAULT_BINS,
    cutoff_sigmas: float = DEFAULT_CUTOFF_SIGMAS,
) -> RdfSettings:
    """Settings covering the data: r_max is the largest pair distance plus the kernel reach, rounded
    up to 0.5 angstrom, so no pair of any structure falls off the grid."""
    largest = max(float(pdist(atoms.positions).max()) for atoms in frames)
    r_max = float(np.ceil((largest + cutoff_sigmas * sigma) * 2.0) / 2.0)
    return RdfSettings(
        r_min=0.0, r_max=r_max, n_bins=int(n_bins), sigma=float(sigma), cutoff_sigmas=cutoff_sigmas
    )


def featurize(
    frames: Sequence[Atoms],
    settings: RdfSettings,
    *,
    num_threads: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """RDFs ``(B, n_bins)`` of the structures, computed by the C++ core in parallel over structures.

    Periodic frames (``pbc`` set on all three axes) use their cell for the minimum image; frames
    are grouped by cell so that each core call shares one box.
    """
    threads = num_threads or os.cpu_count() or 1
    return _map_batches(
        frames, settings.n_bins, "RDFs", progress, lambda x, cell: _core.rdf_batch(x, settings, cell, threads)
    )


def _group_by_box(boxes: list[np.ndarray | None]) -> dict[bytes | None, np.ndarray]:
    groups: dict[bytes | None, list[int]] = {}
    for i, box in enumerate(boxes):
        groups.setdefault(None if box is None else box.tobytes(), []).append(i)
    return {key: np.array(value) for key, value in groups.items()}


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nanochart"


def featurize_file(
    path: str | os.PathLike[str],
    settings: RdfSettings | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    num_threads: int | None = None,
    progress: bool = True,
    sigma: float = DEFAULT_SIGMA,
    n_bins: int = DEFAULT_BINS,
    thermal: bool = False,
) -> tuple[np.ndarray, RdfSettings, list[Atoms]]:
    """Read a data set file and featurise it; returns ``(rdfs, settings, frames)``.

    Without ``settings`` they are chosen from the data (:func:`choose_settings` with ``sigma`` and
    ``n_bins``, over the structures and their thermal snapshots). With ``thermal``, the rows after
    the ``len(frames)`` structures' are the RDFs of their thermal snapshots, in the order of
    :func:`thermal_frames`. Results are cached in ``cache_dir`` (default
    ``$XDG_CACHE_HOME/nanochart``) under a key made of the file's content and the settings, so a
    second call with the same file and settings only reads.
    """
    from ..core.version import __version__

    frames = read_structures(path)
    snapshots = thermal_frames(frames)[0] if thermal else []
    settings = settings or choose_settings([*frames, *snapshots], sigma=sigma, n_bins=n_bins)
    digest = hashlib.sha256(Path(path).read_bytes())
    digest.update(json.dumps(settings.as_dict(), sort_keys=True).encode())
    digest.update(__version__.encode())
    digest.update(b"thermal" if thermal else b"")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = cache / f"{Path(path).stem}-{digest.hexdigest()[:20]}.npy"
    rows = len(frames) + len(snapshots)
    if use_cache and cached.is_file():
        rdfs = np.load(cached)
        if rdfs.shape == (rows, settings.n_bins):
            return rdfs, settings, frames
    rdfs = featurize([*frames, *snapshots], settings, num_threads=num_threads, progress=progress)
    if use_cache:
        cache.mkdir(parents=True, exist_ok=True)
        np.save(cached, rdfs)
    return rdfs, settings, frames


@dataclass
class TrainingData:
    """What the autoencoder learns from: it rebuilds ``targets[i]`` from ``inputs[i]``; rows of one
    ``groups`` value (a structure and its thermal snapshots) stay together in the validation split."""

    inputs: np.ndarray
    targets: np.ndarray
    groups: np.ndarray
    settings: RdfSettings
    frames: list[Atoms]
    n_thermal: int
    source: str = ""

    def model_metadata(self) -> dict[str, Any]:
        """What an exported model records of its data: RDF settings, elements, cluster size, file."""
        return {
            "rdf": self.settings.as_dict(),
            "elements": sorted(set(self.frames[0].get_chemical_symbols())),
            "n_atoms": len(self.frames[0]),
            "data": self.source,
            "thermal_snapshots": self.n_thermal,
        }

    @property
    def anchors(self) -> np.ndarray:
        """For each row, the row of its quench (itself for a quench): the code each row is pulled
        onto by the autoencoder's consistency term. Quenches come first, row i being structure i,
        so a row's group is its quench's row."""
        return self.groups

    def sample_labels(self) -> np.ndarray:
        """Each row's structure label (a thermal snapshot carries its quench's), for the
        autoencoder's supervision term."""
        labels = structure_labels(self.frames)
        if labels is None:
            raise ValueError(
                f"{self.source or 'the data'} has no structure labels (info 'label'): supervision needs "
                "a data set from `nanochart generate`, or train with --supervision 0"
            )
        return np.asarray(labels)[self.groups]


#: Training targets: "input" rebuilds each RDF from itself (the paper); "quench" rebuilds the RDF of
#: the quench from it and from each of its thermal snapshots (MD-ready CVs); "auto" is "quench" when
#: the data hold thermal snapshots, else "input".
TARGETS = ("auto", "quench", "input")


def training_data(
    path: str | os.PathLike[str],
    settings: RdfSettings | None = None,
    *,
    target: str = "auto",
    **featurize_options: Any,
) -> TrainingData:
    """The RDFs of a data set file arranged for training (see TARGETS); ``featurize_options`` go
    to :func:`featurize_file`."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    rdfs, settings, frames = featurize_file(path, settings, thermal=target != "input", **featurize_options)
    n = len(frames)
    owners = thermal_frames(frames)[1] if target != "input" else np.empty(0, dtype=np.int64)
    if target == "quench" and not len(owners):
        raise ValueError(
            f"{path} holds no thermal snapshots (per-atom thermal_1, ...): make the data with "
            "`nanochart generate`, or train with --target input"
        )
    quench = rdfs[:n]
    return TrainingData(
        inputs=rdfs,
        targets=np.concatenate([quench, quench[owners]]),
        groups=np.concatenate([np.arange(n), owners]),
        settings=settings,
        frames=frames,
        n_thermal=len(owners),
        source=str(path),
    )


def encode_structures(cv, frames: Sequence[Atoms], *, progress: bool = True) -> np.ndarray:
    """CV values ``(B, D)`` of the structures through ``cv`` (a :class:`nanochart.CV`), batched,
    grouped by periodic cell like :func:`featurize`."""
    return _map_batches(frames, cv.n_cvs, "CVs", progress, cv.values)


def _map_batches(
    frames: Sequence[Atoms],
    width: int,
    description: str,
    progress: bool,
    compute: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
) -> np.ndarray:
    """``compute(positions (b, N, 3), cell or None) -> (b, width)`` over all frames, in batches of
    frames that share one periodic cell (None for clusters in vacuum), with a progress bar."""
    from nanochart.progress import progress_bar

    check_structures(frames)
    positions = positions_of(frames)
    boxes = [np.asarray(atoms.cell, dtype=np.float64) if atoms.pbc.all() else None for atoms in frames]
    out = np.empty((len(frames), width))
    bar = progress_bar(total=len(frames), desc=description, unit="structure", enabled=progress, leave=False)
    with bar:
        for box, indices in _group_by_box(boxes).items():
            cell = None if box is None else np.frombuffer(box).reshape(3, 3)
            for start in range(0, len(indices), BATCH):
                chunk = indices[start : start + BATCH]
                out[chunk] = compute(positions[chunk], cell)
                bar.update(len(chunk))
    return out
