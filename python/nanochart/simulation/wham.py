"""Umbrella sampling along one CV, unbiased by MBAR (pymbar): the binless generalisation of WHAM,
with its analytical uncertainties.

Windows k sample the CV under harmonic biases U_k(s) = kappa_k / 2 (s - centre_k)^2. MBAR finds
the window free energies f_k self-consistently from every sample in every window's bias; the
free-energy profile F(s) is then the reweighted histogram of all samples, zero at its minimum
(:func:`wham`), and any other property of the samples (the CNA label of a quenched frame, say)
has its unbiased average from the samples' weights (:func:`mbar_log_weights`).
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

    series, u_kn = _reduced_bias(samples, centres, kappas, kT)
    everything = np.concatenate(series)
    edges = np.histogram_bin_edges(everything, bins=bins)
    mids = 0.5 * (edges[1:] + edges[:-1])
    sampled = np.histogram(everything, bins=edges)[0] >= min_count
    if not sampled.any():
        raise ValueError(f"no bin has {min_count} samples: use fewer bins or longer windows")
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


def mbar_log_weights(
    samples: Sequence[np.ndarray], centres: Sequence[float], kappas: Sequence[float] | float, kT: float
) -> np.ndarray:
    """Log of the unbiased statistical weight of every sample (windows in order, samples pooled),
    up to a common constant: w_n = 1 / sum_k N_k exp(f_k - u_k(s_n)) with MBAR's window free
    energies f_k. Any observable of the samples (a CNA label, say) then has the unbiased average
    sum_n w_n A_n / sum_n w_n, as in :func:`nanochart.simulation.transitions.reweighted_population`."""
    from pymbar import MBAR
    from scipy.special import logsumexp

    series, u_kn = _reduced_bias(samples, centres, kappas, kT)
    counts = np.array([len(s) for s in series])
    f_k = MBAR(u_kn, counts, verbose=False).f_k
    return -logsumexp(f_k[:, None] - u_kn, b=counts[:, None], axis=0)


def _reduced_bias(
    samples: Sequence[np.ndarray], centres: Sequence[float], kappas: Sequence[float] | float, kT: float
) -> tuple[list[np.ndarray], np.ndarray]:
    """The windows' samples as flat arrays, and the reduced bias energy u_kn = U_k(s_n) / kT of
    every sample n in every window k (the unbiased energy cancels in MBAR)."""
    if len(samples) != len(centres) or len(samples) == 0:
        raise ValueError("give one array of CV samples per window centre")
    centre, kappa = _windows(centres, kappas, kT)
    series = [np.asarray(s, dtype=float).ravel() for s in samples]
    if any(len(s) == 0 for s in series):
        raise ValueError("every window needs samples")
    everything = np.concatenate(series)
    if not np.isfinite(everything).all():
        raise ValueError("a window's CV samples are NaN or infinite")
    return series, _bias(kappa[:, None], centre[:, None], everything[None, :]) / kT


def _windows(
    centres: Sequence[float], kappas: Sequence[float] | float, kT: float
) -> tuple[np.ndarray, np.ndarray]:
    """The window centres and one kappa per window, as arrays, checked."""
    centre = np.asarray(centres, dtype=float)
    kappa = np.broadcast_to(np.asarray(kappas, dtype=float), centre.shape)
    if kT <= 0 or np.any(kappa <= 0):
        raise ValueError("kT and every kappa must be positive")
    return centre, kappa


def _bias(kappa: np.ndarray | float, centre: np.ndarray | float, s: np.ndarray | float) -> np.ndarray:
    """The harmonic restraint U(s) = kappa / 2 (s - centre)^2 (PLUMED's RESTRAINT), broadcast."""
    return 0.5 * np.asarray(kappa) * (np.asarray(s) - centre) ** 2


def exchange_neighbours(
    s: Sequence[float],
    centres: Sequence[float],
    kappas: Sequence[float] | float,
    kT: float,
    rng: np.random.Generator,
    first: int,
) -> tuple[np.ndarray, list[tuple[int, bool]]]:
    """One round of replica exchange between umbrella windows: the structure in window k (its CV
    ``s[k]``) and the one in window k + 1 swap with the Metropolis probability
    min(1, exp(-[U_k(s_k+1) + U_k+1(s_k) - U_k(s_k) - U_k+1(s_k+1)] / kT)), for the pairs
    k = first, first + 2, ... (alternate ``first`` between 0 and 1 from round to round, so that
    every pair is tried and no structure moves twice in a round). The swap lets a structure that
    is slow to change across the windows' CV travel along it instead (hysteresis between passes).

    Returns ``order`` (window k's new structure is the old one of window ``order[k]``) and the
    (k, accepted) of every pair tried."""
    s_now = np.asarray(s, dtype=float)
    if s_now.shape != np.shape(centres) or s_now.ndim != 1:
        raise ValueError("give one CV value per window centre")
    if not np.isfinite(s_now).all():
        raise ValueError("a window's CV is NaN or infinite")
    centre, kappa = _windows(centres, kappas, kT)
    if first not in (0, 1):
        raise ValueError("first must be 0 or 1")

    def bias(k: int, value: float) -> float:
        return float(_bias(kappa[k], centre[k], value))

    order = np.arange(len(centre))
    tried = []
    for k in range(first, len(centre) - 1, 2):
        delta = bias(k, s_now[k + 1]) + bias(k + 1, s_now[k]) - bias(k, s_now[k]) - bias(k + 1, s_now[k + 1])
        accepted = bool(delta <= 0 or rng.random() < np.exp(-delta / kT))
        if accepted:
            order[k], order[k + 1] = order[k + 1], order[k]
        tried.append((k, accepted))
    return order, tried
