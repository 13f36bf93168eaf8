"""Umbrella sampling along one CV, unbiased by MBAR (pymbar): the binless generalisation of WHAM,
with its analytical uncertainties.

Windows k sample the CV under harmonic biases U_k(s) = kappa_k / 2 (s - centre_k)^2. MBAR finds
the window free energies f_k self-consistently from every sample in every window's bias; the
free-energy profile F(s) is then the reweighted histogram of all samples, zero at its minimum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Profile:
    """Free-energy profile on bin centres, its standard error (both relative to the lowest bin, in
    the units of kT; inf and nan where a bin is not sampled), and the window free energies."""

    centres: np.ndarray
    free_energy: np.ndarray
    standard_error: np.ndarray
    window_free_energies: np.ndarray


def wham(
    samples: Sequence[np.ndarray],
    centres: Sequence[float],
    kappas: Sequence[float] | float,
    kT: float,
    bins: int | np.ndarray = 100,
    min_count: int = 10,
) -> Profile:
    """Unbias umbrella windows. ``kappas`` and ``kT`` in the same energy units (kJ/mol, say).

    Bins with fewer than ``min_count`` samples over all windows get an infinite free energy
    (not sampled): a bin of one or two samples would give a value that is only noise. Errors are
    MBAR's analytical estimates, which assume uncorrelated samples: subsample correlated series
    (keep every g-th frame, g their statistical inefficiency) for honest error bars."""
    from pymbar import FES

    if len(samples) != len(centres) or len(samples) == 0:
        raise ValueError("give one array of CV samples per window centre")
    kappa = np.broadcast_to(np.asarray(kappas, dtype=float), (len(centres),))
    if kT <= 0 or np.any(kappa <= 0):
        raise ValueError("kT and every kappa must be positive")
    series = [np.asarray(s, dtype=float).ravel() for s in samples]
    if any(len(s) == 0 for s in series):
        raise ValueError("every window needs samples")
    everything = np.concatenate(series)
    edges = np.histogram_bin_edges(everything, bins=bins)
    mids = 0.5 * (edges[1:] + edges[:-1])
    sampled = np.histogram(everything, bins=edges)[0] >= min_count
    if not sampled.any():
        raise ValueError(f"no bin has {min_count} samples: use fewer bins or longer windows")
    # Reduced bias energy of every sample in every window (the unbiased energy cancels).
    u_kn = 0.5 * kappa[:, None] * (everything[None, :] - np.asarray(centres, dtype=float)[:, None]) ** 2 / kT
    fes = FES(u_kn, np.array([len(s) for s in series]), verbose=False)
    fes.generate_fes(
        np.zeros(len(everything)),
        everything,
        fes_type="histogram",
        histogram_parameters={"bin_edges": edges},
    )
    result = fes.get_fes(mids[sampled], reference_point="from-lowest", uncertainty_method="analytical")
    free = np.full(len(mids), np.inf)
    error = np.full(len(mids), np.nan)
    free[sampled] = result["f_i"] * kT
    error[sampled] = result["df_i"] * kT
    lowest = int(np.argmin(free))
    free -= free[lowest]
    return Profile(mids, free, error, fes.get_mbar().f_k * kT)
