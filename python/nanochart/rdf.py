"""The Gaussian-smeared radial distribution function, computed by the C++ core."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from . import _core


def rdf(
    positions: ArrayLike,
    *,
    r_min: float,
    r_max: float,
    n_bins: int,
    sigma: float,
    box: ArrayLike | None = None,
    cutoff_sigmas: float = 6.0,
) -> np.ndarray:
    """Gaussian-smeared RDF of one structure, shape ``(n_bins,)``, float64.

    ``g_k = (1/P) sum_{i<j} N(r_k; r_ij, sigma)`` on the inclusive grid
    ``r_k = numpy.linspace(r_min, r_max, n_bins)``, with ``P = N(N-1)/2`` pairs: the density of
    pair distances, in inverse length units. It equals scikit-learn's
    ``KernelDensity(kernel="gaussian", bandwidth=sigma)`` fitted on the pair distances.

    Parameters
    ----------
    positions
        ``(N, 3)`` coordinates, in the same length unit as ``r_min``, ``r_max`` and ``sigma``
        (angstrom for nanochart's models).
    box
        ``None`` for a cluster in vacuum, or a ``(3, 3)`` array whose rows are the cell vectors
        (ASE's ``atoms.cell``): distances then follow the minimum-image convention.
    cutoff_sigmas
        Kernels are truncated at this many standard deviations (6 keeps the result within
        1e-7 of the untruncated sum, relative to the largest value).
    """
    return _core.rdf(
        positions, float(r_min), float(r_max), _whole(n_bins), float(sigma), float(cutoff_sigmas), box
    )


def rdf_grid(*, r_min: float, r_max: float, n_bins: int) -> np.ndarray:
    """The distances ``r_k`` at which :func:`rdf` is evaluated."""
    return np.linspace(r_min, r_max, _whole(n_bins))


def _whole(n_bins: int) -> int:
    if isinstance(n_bins, bool) or int(n_bins) != n_bins:
        raise ValueError(f"n_bins must be a whole number, got {n_bins!r}")
    return int(n_bins)
