"""The RDF of the C++ core against scikit-learn, physics and symmetry."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from ase.build import bulk
from scipy.spatial.distance import pdist
from scipy.spatial.transform import Rotation
from sklearn.neighbors import KernelDensity

import nanochart
from conftest import RDF_SETTINGS, SHIPPED_GRID, motif
from nanochart import _core
from nanochart.core.rdf import RdfSettings

MOTIFS = ["ico55", "ico147", "ino_decahedron", "marks_decahedron", "octahedron", "truncated_octahedron"]


def sklearn_rdf(
    distances: np.ndarray, *, r_min: float, r_max: float, n_bins: int, sigma: float
) -> np.ndarray:
    kde = KernelDensity(kernel="gaussian", bandwidth=sigma).fit(distances[:, None])
    grid = np.linspace(r_min, r_max, n_bins)
    return np.exp(kde.score_samples(grid[:, None]))


def max_relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("name", MOTIFS)
def test_equals_sklearn_kde_on_motifs(name: str) -> None:
    x = motif(name)
    g = nanochart.rdf(x, **RDF_SETTINGS)
    assert max_relative(g, sklearn_rdf(pdist(x), **RDF_SETTINGS)) < 1e-7


@pytest.mark.parametrize("grid", [RDF_SETTINGS, SHIPPED_GRID], ids=["nearest-bin", "bin-below"])
def test_both_window_centrings_equal_sklearn_kde(rng: np.random.Generator, grid: dict) -> None:
    """Pairs within the grid, below r_min and beyond r_max (pinned off the grid) on both centrings."""
    x = motif("ico147") + 0.1 * rng.normal(size=(147, 3))
    settings = {**grid, "r_min": 2.0, "r_max": grid["r_max"] - 10.0}
    for s in (grid, settings):
        assert max_relative(nanochart.rdf(x, **s), sklearn_rdf(pdist(x), **s)) < 1e-7


# The last case has a window of 2 x 63 + 1 bins: beyond the compiled window sizes (radius <= 16),
# so it runs the kernel's run-time-radius path.
@pytest.mark.parametrize(
    ("n_atoms", "sigma", "n_bins"),
    [(2, 0.1, 200), (30, 0.05, 400), (100, 0.3, 64), (400, 0.1, 150), (50, 0.1, 1500)],
)
def test_equals_sklearn_kde_on_random_clouds(
    rng: np.random.Generator, n_atoms: int, sigma: float, n_bins: int
) -> None:
    x = rng.uniform(-5.0, 5.0, size=(n_atoms, 3))
    settings = {"r_min": 0.5, "r_max": 15.0, "n_bins": n_bins, "sigma": sigma}
    g = nanochart.rdf(x, **settings)
    assert g.shape == (n_bins,) and g.dtype == np.float64
    assert max_relative(g, sklearn_rdf(pdist(x), **settings)) < 1e-7


def test_truncation_bound_and_untruncated_limit(rng: np.random.Generator) -> None:
    x = motif("ico147") + 0.05 * rng.normal(size=(147, 3))
    exact = sklearn_rdf(pdist(x), **RDF_SETTINGS)
    truncated = nanochart.rdf(x, **RDF_SETTINGS, cutoff_sigmas=6.0)
    wide = nanochart.rdf(x, **RDF_SETTINGS, cutoff_sigmas=20.0)  # the largest allowed
    short = nanochart.rdf(x, **RDF_SETTINGS, cutoff_sigmas=3.0)
    assert max_relative(truncated, exact) < 1e-7
    assert max_relative(wide, exact) < 1e-12
    # The setting does something: 3 sigma visibly truncates.
    assert max_relative(short, exact) > 1e-4


def test_normalised_as_a_density_of_pair_distances() -> None:
    x = motif("ico55")  # diameter about 11.5 angstrom: all kernels fall inside the grid
    settings = {"r_min": 0.0, "r_max": 14.0, "n_bins": 1401, "sigma": 0.1}
    g = nanochart.rdf(x, **settings)
    # What is missing is the Gaussian mass beyond 6 sigma, erfc(6 / sqrt(2)) = 2e-9.
    assert np.trapezoid(g, nanochart.rdf_grid(r_min=0.0, r_max=14.0, n_bins=1401)) == pytest.approx(
        1.0, abs=3e-9
    )


def test_invariant_under_rotation_translation_permutation(rng: np.random.Generator) -> None:
    x = motif("ino_decahedron") + 0.1 * rng.normal(size=motif("ino_decahedron").shape)
    reference = nanochart.rdf(x, **RDF_SETTINGS)
    rotated = Rotation.random(random_state=3).apply(x)
    moved = x + np.array([13.0, -7.5, 101.0])
    permuted = x[rng.permutation(len(x))]
    for y in (rotated, moved, permuted):
        assert max_relative(nanochart.rdf(y, **RDF_SETTINGS), reference) < 1e-12


def test_cluster_in_a_large_periodic_box_equals_vacuum() -> None:
    x = motif("ico147")
    vacuum = nanochart.rdf(x, **RDF_SETTINGS)
    cubic = np.eye(3) * 60.0
    triclinic = np.array([[60.0, 0.0, 0.0], [20.0, 55.0, 0.0], [-10.0, 15.0, 58.0]])
    for box in (cubic, triclinic):
        # Shift the cluster across a cell boundary: minimum image must stitch it back.
        shifted = x + box[0] * 0.98
        assert max_relative(nanochart.rdf(shifted, **RDF_SETTINGS, box=box), vacuum) < 1e-12


def fcc_shells(a: float) -> list[tuple[float, int]]:
    """(distance, coordination) of the first fcc shells."""
    return [(a * np.sqrt(n / 2.0), z) for n, z in [(1, 12), (2, 6), (3, 24), (4, 12), (5, 24)]]


def test_periodic_fcc_crystal_has_the_right_shells() -> None:
    a = 4.08
    crystal = bulk("Au", "fcc", a=a, cubic=True).repeat((4, 4, 4))  # 256 atoms, 16.32 angstrom cube
    n = len(crystal)
    settings = {"r_min": 0.0, "r_max": 8.0, "n_bins": 801, "sigma": 0.05}
    grid = nanochart.rdf_grid(r_min=0.0, r_max=8.0, n_bins=801)
    g = nanochart.rdf(crystal.positions, **settings, box=np.asarray(crystal.cell))
    pairs = n * (n - 1) / 2
    for distance, coordination in fcc_shells(a):
        window = np.abs(grid - distance) < 6 * settings["sigma"]
        count = np.trapezoid(g[window], grid[window]) * pairs
        assert count == pytest.approx(n * coordination / 2, rel=1e-6)
        assert abs(grid[window][np.argmax(g[window])] - distance) <= 0.01
    # Between the 6-sigma reaches of the first two shells (3.185 and 3.78 angstrom) there is
    # nothing at all: no pair is counted at a wrong (non-minimum) image.
    gap = (grid > 3.2) & (grid < 3.77)
    assert g[gap].max() == 0.0


def test_triclinic_primitive_cell_gives_the_same_crystal() -> None:
    a = 4.08
    cubic = bulk("Au", "fcc", a=a, cubic=True).repeat((4, 4, 4))
    primitive = bulk("Au", "fcc", a=a).repeat((6, 6, 6))  # rhombohedral cell, 60 degree angles
    assert abs(np.asarray(primitive.cell)[1, 0]) > 0  # really triclinic
    settings = {"r_min": 0.0, "r_max": 8.0, "n_bins": 801, "sigma": 0.05}
    grid = nanochart.rdf_grid(r_min=0.0, r_max=8.0, n_bins=801)

    def per_atom(atoms) -> np.ndarray:  # pair density per atom does not depend on the cell
        n = len(atoms)
        return nanochart.rdf(atoms.positions, **settings, box=np.asarray(atoms.cell)) * (n - 1) / 2

    inside = grid < 6.4  # below half the smallest plane spacing of both cells
    assert max_relative(per_atom(primitive)[inside], per_atom(cubic)[inside]) < 1e-9


def brute_force_minimum_image_distances(x: np.ndarray, box: np.ndarray) -> np.ndarray:
    shifts = np.array(list(itertools.product(range(-2, 3), repeat=3))) @ box
    i, j = np.triu_indices(len(x), k=1)
    d = x[j] - x[i]
    return np.sqrt(((d[:, None, :] + shifts[None, :, :]) ** 2).sum(-1)).min(axis=1)


def test_skewed_triclinic_box_matches_brute_force_minimum_image(rng: np.random.Generator) -> None:
    box = np.array([[9.0, 0.0, 0.0], [4.1, 8.2, 0.0], [-3.7, 2.9, 8.8]])
    x = rng.uniform(0.0, 1.0, size=(60, 3)) @ box
    settings = {"r_min": 0.0, "r_max": 10.0, "n_bins": 300, "sigma": 0.08}
    g = nanochart.rdf(x, **settings, box=box)
    assert max_relative(g, sklearn_rdf(brute_force_minimum_image_distances(x, box), **settings)) < 1e-7


@pytest.mark.parametrize("size", [2, 3, 7])
def test_pair_loop_split_over_ranks_adds_up(rng: np.random.Generator, size: int) -> None:
    """The shares of the ranks (as under PLUMED's MPI) sum to the whole, value and derivatives."""
    x = motif("ico147") + 0.1 * rng.normal(size=(147, 3))
    box = np.diag([30.0, 31.0, 32.0])
    args = (RdfSettings(**RDF_SETTINGS), box)
    weights = rng.normal(size=RDF_SETTINGS["n_bins"])
    shares = [_core.rdf(x, *args, rank=r, size=size) for r in range(size)]
    assert all(share.max() > 0 for share in shares)  # every rank owns pairs
    assert max_relative(sum(shares), _core.rdf(x, *args)) < 1e-13
    whole_dx, whole_strain = _core.rdf_backward(x, weights, *args)
    for recorded in (False, True):  # recomputing the pairs, or reading the CV's pair record
        parts = [
            _core.rdf_backward(x, weights, *args, rank=r, size=size, recorded=recorded) for r in range(size)
        ]
        assert max_relative(sum(p[0] for p in parts), whole_dx) < 1e-12
        assert max_relative(sum(p[1] for p in parts), whole_strain) < 1e-12
    with pytest.raises(ValueError, match="invalid pair partition: rank 3 of 3"):
        _core.rdf(x, *args, rank=3, size=3)


def test_thread_count_does_not_change_the_rdf(rng: np.random.Generator) -> None:
    """The core's thread pool adds per-chunk sums in a fixed order: bit-identical results."""
    x = motif("ico147") + 0.05 * rng.normal(size=(147, 3))
    args = (RdfSettings(**RDF_SETTINGS), None)
    weights = rng.normal(size=RDF_SETTINGS["n_bins"])
    one = _core.rdf(x, *args, num_threads=1)
    one_dx, one_strain = _core.rdf_backward(x, weights, *args, num_threads=1)
    for threads in (2, 3):
        assert np.array_equal(_core.rdf(x, *args, num_threads=threads), one)
        for recorded in (False, True):
            dx, strain = _core.rdf_backward(x, weights, *args, num_threads=threads, recorded=recorded)
            assert np.array_equal(dx, one_dx) and np.array_equal(strain, one_strain)
    batch = np.stack([x, x[::-1], 1.01 * x])
    assert np.array_equal(_core.rdf_batch(batch, *args, 3)[0], one)
