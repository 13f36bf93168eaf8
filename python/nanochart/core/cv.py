"""The collective variable: positions -> RDF -> exported encoder -> CVs, through the C++ core."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .. import _core
from .novelty import NoveltyReference, NoveltyScores
from .rdf import RdfSettings


class AtomCountWarning(UserWarning):
    """The structure has a different number of atoms than the model was trained on."""


class CV:
    """An exported nanochart model, evaluated by the C++ core (the same code PLUMED runs).

    Positions are in the model's length unit (``cv.length_unit``, angstrom by default); the box,
    when given, is a ``(3, 3)`` array whose rows are the cell vectors.

    A ``CV`` keeps the last structure's autograd graph between the forward and backward passes,
    so one object must not be used from several threads at once: give each thread its own.

    Parameters
    ----------
    path
        TorchScript file with ``nanochart.json`` metadata (see :func:`nanochart.export_model`).
    num_threads
        threads for the RDF pair loops (the core's own pool; results do not depend on the count)
        and libtorch's for the encoder (default 1: inside MD the engine owns the cores).
    engine
        ``"auto"`` (default): a model of nanochart's own encoder architecture runs in the core's
        own float64 evaluator, after it is checked against libtorch on load (several times faster
        per structure); any other model runs in libtorch. ``"libtorch"``: always libtorch.
        :attr:`engine` says which one runs, and why.
    """

    def __init__(self, path: str | os.PathLike[str], *, num_threads: int = 1, engine: str = "auto") -> None:
        self.path = Path(path)
        self._core = _core.CollectiveVariable(os.fspath(path), int(num_threads), str(engine))
        self.metadata: dict[str, Any] = json.loads(self._core.metadata_json)

    def __repr__(self) -> str:
        return f"CV({str(self.path)!r}, cv_names={self.cv_names}, n_atoms={self.n_atoms})"

    @property
    def engine(self) -> str:
        """Who evaluates the encoder, and why: ``"native (...)"`` or ``"libtorch (...)"``."""
        return str(self._core.engine)

    @property
    def cv_names(self) -> list[str]:
        return list(self._core.cv_names)

    @property
    def n_cvs(self) -> int:
        return len(self._core.cv_names)

    @property
    def n_atoms(self) -> int:
        """Cluster size the model was trained on."""
        return int(self._core.n_atoms)

    @property
    def rdf_settings(self) -> RdfSettings:
        """The RDF settings of the model (r_min, r_max, n_bins, sigma, cutoff_sigmas, length_unit)."""
        return RdfSettings.from_dict(self.metadata["rdf"])

    @property
    def length_unit(self) -> str:
        return self.rdf_settings.length_unit

    def compute(
        self, positions: ArrayLike, box: ArrayLike | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(values (D,), jacobian (D, N, 3), virial (D, 3, 3))``.

        ``jacobian[d] = ds_d/dx``; ``virial[d]`` is PLUMED's box derivative of CV ``d``,
        ``-sum_i x_i (x) ds_d/dx_i`` (minus the derivative with respect to strain).
        """
        positions = self._positions(positions)
        return self._core.compute(positions, box)

    def values(self, positions_batch: ArrayLike, box: ArrayLike | None = None) -> np.ndarray:
        """CVs of a batch of structures ``(B, N, 3)`` -> ``(B, D)``, without derivatives."""
        batch = np.ascontiguousarray(positions_batch, dtype=np.float64)
        if batch.ndim == 3:
            self._check_size(batch.shape[1])
        return self._core.values(batch, box)

    @property
    def has_novelty(self) -> bool:
        """Whether the model file carries a novelty reference (see :meth:`novelty`)."""
        return bool(self._core.has_novelty)

    @property
    def novelty_reference(self) -> NoveltyReference:
        """The model's novelty reference: reference CVs, k, scale, threshold and its calibration.
        Raises :class:`nanochart.ModelError`, saying how to add one, when the file has none."""
        if not self.has_novelty:
            self._core.novelty_scores(np.zeros((0, self.n_cvs)))  # raises the core's ModelError
        return NoveltyReference.from_dict(self.metadata["novelty"])

    def novelty(self, positions_batch: ArrayLike, box: ArrayLike | None = None) -> NoveltyScores:
        """How far structures ``(B, N, 3)`` (or one, ``(N, 3)``) lie from the training structures on
        the chart: novelty scores ``(B,)`` and ``off_chart`` flags (score above the model's
        calibrated threshold). Raises :class:`nanochart.ModelError` for a model without a novelty
        reference (:attr:`has_novelty`)."""
        batch = np.asarray(positions_batch, dtype=np.float64)
        return self.novelty_of(self.values(batch[None] if batch.ndim == 2 else batch, box))

    def novelty_of(self, cvs: ArrayLike) -> NoveltyScores:
        """Novelty of CVs already computed, ``(B, D)``, by the core (the code RDF_ENCODER runs)."""
        score = self._core.novelty_scores(np.atleast_2d(np.asarray(cvs, dtype=np.float64)))
        threshold = float(self.metadata["novelty"]["threshold"])
        return NoveltyScores(score, score > threshold, threshold)

    def forces(
        self, positions: ArrayLike, dV_ds: ArrayLike, box: ArrayLike | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Bias forces for a bias V(s) with gradient ``dV_ds`` (D,) at these positions.

        Returns ``(forces (N, 3), virial (3, 3))``: ``forces = -dV/dx = -J^T dV/ds`` and the
        virial as PLUMED defines it, ``-sum_d dV/ds_d virial[d]`` of :meth:`compute`. Only one
        backward pass through the encoder is made, none when ``dV_ds`` is zero.
        """
        positions = self._positions(positions)
        return self._core.forces(positions, dV_ds, box)

    def _positions(self, positions: ArrayLike) -> np.ndarray:
        array = np.ascontiguousarray(positions, dtype=np.float64)
        if array.ndim == 2:
            self._check_size(array.shape[0])
        return array

    def _check_size(self, n_atoms: int) -> None:
        if n_atoms != self.n_atoms:
            warnings.warn(
                f"the model {self.path.name} was trained on clusters of {self.n_atoms} atoms; "
                f"this structure has {n_atoms}: its CVs are extrapolated",
                AtomCountWarning,
                stacklevel=3,
            )
