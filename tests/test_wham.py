"""WHAM recovers a known free-energy profile from exactly sampled umbrella windows; exchanges
between windows keep each window's distribution."""

from __future__ import annotations

import numpy as np
import pytest

from nanochart.simulation.transitions import reweighted_population
from nanochart.simulation.wham import exchange_neighbours, mbar_log_weights, wham


def double_well(s: np.ndarray) -> np.ndarray:
    return 5.0 * (s**2 - 1.0) ** 2  # in kT: barrier of 5 kT at s = 0


def tilted_well(s: np.ndarray) -> np.ndarray:
    return double_well(s) + 1.5 * s  # in kT: the left well lower by about 3 kT


def sample_window(rng, centre: float, kappa: float, n: int, free=double_well) -> np.ndarray:
    """Exact samples of exp(-(F(s) + kappa/2 (s - centre)^2)) by inverse transform on a fine grid."""
    grid = np.linspace(-2.5, 2.5, 20001)
    weights = np.exp(-(free(grid) + 0.5 * kappa * (grid - centre) ** 2))
    cdf = np.cumsum(weights)
    return np.interp(rng.uniform(0, cdf[-1], n), cdf, grid)


def test_recovers_a_double_well() -> None:
    rng = np.random.default_rng(0)
    centres = np.linspace(-1.6, 1.6, 17)
    kappa = 40.0
    samples = [sample_window(rng, c, kappa, 20000) for c in centres]
    profile = wham(samples, centres, kappa, kT=1.0, bins=np.linspace(-1.5, 1.5, 61))
    assert np.isfinite(profile.free_energy).all()  # every bin well sampled here
    exact = double_well(profile.centres) - double_well(profile.centres).min()
    error = np.abs(profile.free_energy - exact)
    assert error.max() < 0.15  # kT: statistical error of 20 000 samples per window
    assert profile.free_energy[np.argmin(np.abs(profile.centres))] == pytest.approx(5.0, abs=0.15)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="one array of CV samples per window"):
        wham([np.zeros(3)], [0.0, 1.0], 1.0, kT=1.0)
    with pytest.raises(ValueError, match="positive"):
        wham([np.zeros(3)], [0.0], -1.0, kT=1.0)


def test_sparse_bins_are_reported_as_not_sampled() -> None:
    rng = np.random.default_rng(1)
    samples = [rng.normal(0.0, 0.1, 5000)]
    profile = wham(samples, [0.0], 100.0, kT=1.0, bins=np.linspace(-1.0, 1.0, 41), min_count=10)
    far = np.abs(profile.centres) > 0.6  # six standard deviations out: no samples
    assert np.isinf(profile.free_energy[far]).all()
    assert np.isfinite(profile.free_energy[np.abs(profile.centres) < 0.2]).all()


def test_error_bars_match_the_scatter_of_independent_repeats() -> None:
    """MBAR's analytical errors (uncorrelated samples here) against the spread of 8 repeats."""
    rng = np.random.default_rng(2)
    centres = np.linspace(-1.6, 1.6, 9)
    bins = np.linspace(-1.5, 1.5, 16)
    barrier, errors = [], []
    for _ in range(8):
        samples = [sample_window(rng, c, 40.0, 1500) for c in centres]
        profile = wham(samples, centres, 40.0, kT=1.0, bins=bins)
        middle = int(np.argmin(np.abs(profile.centres)))
        assert profile.standard_error[np.argmin(profile.free_energy)] == 0.0
        barrier.append(profile.free_energy[middle])
        errors.append(profile.standard_error[middle])
    scatter = float(np.std(barrier, ddof=1))
    assert 0.5 < float(np.mean(errors)) / scatter < 2.0, (np.mean(errors), scatter)


def test_mbar_weights_give_the_populations_of_two_states() -> None:
    """Labels of the samples (left or right of the barrier) reweighted by MBAR: the population of
    each well of a tilted double well, against the exact integral."""
    rng = np.random.default_rng(3)
    centres = np.linspace(-1.6, 1.6, 13)
    samples = [sample_window(rng, c, 40.0, 4000, tilted_well) for c in centres]
    log_weights = mbar_log_weights(samples, centres, 40.0, kT=1.0)
    pooled = np.concatenate(samples)
    assert log_weights.shape == pooled.shape and np.isfinite(log_weights).all()
    population = reweighted_population(np.where(pooled < 0, "left", "right"), log_weights)
    grid = np.linspace(-2.5, 2.5, 20001)
    density = np.exp(-tilted_well(grid))
    exact_left = density[grid < 0].sum() / density.sum()
    assert exact_left > 0.9  # the test means something: not a symmetric 1/2
    assert population["left"] == pytest.approx(exact_left, abs=0.01)
    # Each window alone is far from it: the weights, not the sampling, give the answer.
    assert np.mean(samples[-1] < 0) < 0.1


def test_mbar_weights_refuse_nan_samples() -> None:
    with pytest.raises(ValueError, match="NaN"):
        mbar_log_weights([np.array([0.0, np.nan])], [0.0], 10.0, kT=1.0)


def test_exchange_accepts_at_the_metropolis_rate() -> None:
    """Same kappa everywhere: the exponent is kappa (c_k - c_k+1)(s_k - s_k+1) / kT (worked by
    hand), here 1, so a pair swaps with probability exp(-1)."""
    kappa, centres = 10.0, [0.0, 0.5]
    s = [0.1, 0.3]  # 10 * (0 - 0.5) * (0.1 - 0.3) = 1
    rng = np.random.default_rng(3)
    swaps = [exchange_neighbours(s, centres, kappa, 1.0, rng, 0)[1][0][1] for _ in range(20000)]
    assert np.mean(swaps) == pytest.approx(np.exp(-1.0), abs=4 * np.sqrt(0.25 / 20000))
    order, tried = exchange_neighbours([0.5, 0.0], centres, kappa, 1.0, rng, 0)  # downhill: always
    assert order.tolist() == [1, 0] and tried == [(0, True)]
    order, tried = exchange_neighbours([0.0, 5.0, 10.0], [0.0, 5.0, 10.0], 100.0, 1.0, rng, 1)
    assert order.tolist() == [0, 1, 2] and tried == [(1, False)]  # only the pair (1, 2) tried


def test_exchange_keeps_each_window_at_equilibrium() -> None:
    """Structures drawn from each window's exact distribution stay so distributed after a round of
    exchanges (detailed balance); a swap of every pair would move each window's mean by ~0.4."""
    rng = np.random.default_rng(4)
    centres = np.linspace(-1.2, 0.4, 5)
    kappa, n = 40.0, 6000
    before = np.array([sample_window(rng, c, kappa, n, free=tilted_well) for c in centres]).T
    after = np.empty_like(before)
    for row, s in enumerate(before):
        order, _ = exchange_neighbours(s, centres, kappa, 1.0, rng, row % 2)
        after[row] = s[order]
    exact = np.array([sample_window(rng, c, kappa, 200000, free=tilted_well).mean() for c in centres])
    error = before.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(after.mean(axis=0) - exact) < 5 * error + 0.005)
    assert np.any(after != before)  # some swaps happened


def test_exchange_refuses_bad_input() -> None:
    rng = np.random.default_rng(5)
    with pytest.raises(ValueError, match="one CV value per window"):
        exchange_neighbours([0.0], [0.0, 1.0], 1.0, 1.0, rng, 0)
    with pytest.raises(ValueError, match="NaN"):
        exchange_neighbours([0.0, np.nan], [0.0, 1.0], 1.0, 1.0, rng, 0)
    with pytest.raises(ValueError, match="first must be 0 or 1"):
        exchange_neighbours([0.0, 1.0], [0.0, 1.0], 1.0, 1.0, rng, 2)
