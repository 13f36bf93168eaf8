"""Weighted histogram analysis (WHAM) for umbrella sampling along one CV.

Windows k sample the CV under harmonic biases U_k(s) = kappa_k / 2 (s - centre_k)^2. WHAM finds
the unbiased distribution P(s) and window free energies f_k self-consistently:

    P(s_b) = sum_k n_kb / sum_k N_k exp((f_k - U_k(s_b)) / kT),
    exp(-f_k / kT) = sum_b P(s_b) exp(-U_k(s_b) / kT)

and the free-energy profile is F(s) = -kT ln P(s), zero at its minimum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Profile:
    """Free-energy profile on bin centres (energies in the units of kT), and window free energies."""

    centres: np.ndarray
    free_energy: np.ndarray
    window_free_energies: np.ndarray
    iterations: int


def wham(
    samples: Sequence[np.ndarray],
    centres: Sequence[float],
    kappas: Sequence[float] | float,
    kT: float,
    bins: int | np.ndarray = 100,
    tolerance: float = 1e-10,
    max_iterations: int = 100_000,
    min_count: int = 10,
) -> Profile:
    """Unbias umbrella windows. ``kappas`` and ``kT`` in the same energy units (kJ/mol, say).

    Bins with fewer than ``min_count`` samples over all windows get an infinite free energy
    (not sampled): a bin of one or two samples would give a value that is only noise."""
    if len(samples) != len(centres) or len(samples) == 0:
        raise ValueError("give one array of CV samples per window centre")
    kappa = np.broadcast_to(np.asarray(kappas, dtype=float), (len(centres),))
    if kT <= 0 or np.any(kappa <= 0):
        raise ValueError("kT and every kappa must be positive")
    everything = np.concatenate([np.asarray(s, dtype=float).ravel() for s in samples])
    edges = np.histogram_bin_edges(everything, bins=bins)
    mids = 0.5 * (edges[1:] + edges[:-1])
    counts = np.array([np.histogram(s, bins=edges)[0] for s in samples], dtype=float)  # (K, B)
    totals = counts.sum(axis=1)
    bias = 0.5 * kappa[:, None] * (mids[None, :] - np.asarray(centres, dtype=float)[:, None]) ** 2 / kT
    f = np.zeros(len(samples))
    numerator = counts.sum(axis=0)
    iterations, change = 0, np.inf
    while change >= tolerance:
        if iterations == max_iterations:
            raise RuntimeError(
                f"WHAM did not converge in {max_iterations} iterations (last change {change:.2e} kT)"
            )
        # In logarithms, so that strong biases do not overflow.
        log_denominator = np.logaddexp.reduce(np.log(totals)[:, None] + f[:, None] - bias, axis=0)
        with np.errstate(divide="ignore"):
            log_p = np.log(numerator) - log_denominator
        new_f = -np.logaddexp.reduce(log_p[None, :] - bias, axis=1)
        new_f -= new_f[0]
        change = float(np.abs(new_f - f).max())
        f = new_f
        iterations += 1
    free = np.where(numerator >= min_count, -log_p * kT, np.inf)
    if not np.isfinite(free).any():
        raise ValueError(f"no bin has {min_count} samples: use fewer bins or longer windows")
    free -= free[np.isfinite(free)].min()
    return Profile(mids, free, f * kT, iterations)
