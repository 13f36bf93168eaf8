"""Analytic derivatives of the core against finite differences and an independent autograd reference."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

import nanochart
from conftest import RDF_SETTINGS, SHIPPED_GRID, motif
from nanochart import _core
from nanochart.core.rdf import RdfSettings
from nanochart.testing.torch_rdf import torch_cv, torch_rdf

RDF_ARGS = (RdfSettings(**RDF_SETTINGS),)


def max_relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def central_difference(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, step: float) -> np.ndarray:
    """d f / d x for every entry of x: shape x.shape + f(x).shape."""
    out = []
    for index in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += step
        minus[index] -= step
        out.append((f(plus) - f(minus)) / (2 * step))
    return np.array(out).reshape(*x.shape, *np.shape(f(x)))


def deformed(
    x: np.ndarray, box: np.ndarray | None, strain: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Positions and box under the homogeneous deformation x -> x (1 + strain)."""
    m = np.eye(3) + strain
    return x @ m, (None if box is None else box @ m)


def strain_derivative(f: Callable, x: np.ndarray, box: np.ndarray | None, step: float = 1e-6) -> np.ndarray:
    return central_difference(lambda e: f(*deformed(x, box, e)), np.zeros((3, 3)), step)


@pytest.fixture
def distorted_cluster(rng: np.random.Generator) -> np.ndarray:
    return motif("ico147") + 0.15 * rng.normal(size=(147, 3))


@pytest.fixture
def periodic_crystal(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    crystal = bulk("Au", "fcc", a=4.08).repeat((4, 4, 4))  # triclinic cell, 64 atoms
    x = crystal.positions + 0.2 * rng.normal(size=(64, 3))
    return x, np.asarray(crystal.cell)


def away_from_cutoffs(
    x: np.ndarray, box: np.ndarray | None, grid: dict, rng: np.random.Generator, margin: float
) -> np.ndarray:
    """x moved by about 1e-3 angstrom until every pair distance is `margin` from every bin's cutoff."""
    bins = nanochart.rdf_grid(r_min=grid["r_min"], r_max=grid["r_max"], n_bins=grid["n_bins"])
    pairs = np.triu_indices(len(x), 1)
    for _ in range(50):
        distances = Atoms(positions=x, cell=box, pbc=box is not None).get_all_distances(mic=box is not None)
        if np.abs(np.abs(distances[pairs][:, None] - bins) - 6.0 * grid["sigma"]).min() > margin:
            return x
        x = x + 1e-3 * rng.normal(size=x.shape)
    raise AssertionError("no structure away from the kernels' cutoffs")


@pytest.mark.parametrize("grid", [RDF_SETTINGS, SHIPPED_GRID], ids=["nearest-bin", "bin-below"])
@pytest.mark.parametrize("periodic", [False, True])
def test_rdf_backward_matches_finite_differences(
    rng, distorted_cluster, periodic_crystal, periodic, grid
) -> None:
    x, box = periodic_crystal if periodic else (distorted_cluster[:40], None)
    args = (RdfSettings(**grid),)
    weights = rng.normal(size=grid["n_bins"])

    def loss(y: np.ndarray, cell: np.ndarray | None = box) -> float:
        return float(weights @ _core.rdf(y, *args, cell))

    # Steps that move no pair distance across a kernel's cutoff (6 sigma, where it drops by exp(-18)):
    # a difference across it measures that jump, not the derivative.
    x = away_from_cutoffs(x, box, grid, rng, margin=1e-6)
    dL_dx, dL_dstrain = _core.rdf_backward(x, weights, *args, box)
    assert max_relative(dL_dx, central_difference(loss, x, 1e-7)) < 1e-6
    assert max_relative(dL_dstrain, strain_derivative(loss, x, box, 1e-8)) < 1e-6
    if box is None:  # for a cluster in vacuum the strain derivative is sum_i x_i (x) dL/dx_i
        np.testing.assert_allclose(dL_dstrain, x.T @ dL_dx, atol=1e-12 * np.abs(dL_dstrain).max())


def test_rdf_box_derivative_at_fixed_fractional_coordinates(rng, periodic_crystal) -> None:
    x, box = periodic_crystal
    fractional = x @ np.linalg.inv(box)
    weights = rng.normal(size=RDF_SETTINGS["n_bins"])
    _, dL_dstrain = _core.rdf_backward(x, weights, *RDF_ARGS, box)
    # x = s h: dL/dh = h^-T dL/d(strain)
    analytic = np.linalg.inv(box).T @ dL_dstrain
    numeric = central_difference(lambda h: weights @ _core.rdf(fractional @ h, *RDF_ARGS, h), box, 1e-6)
    assert max_relative(analytic, numeric) < 1e-6


def reference_jacobian(
    model_path: Path, x: np.ndarray, box: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """CVs and ds/dx by torch autograd through the pure-torch RDF and the same TorchScript encoder."""
    encoder = torch.jit.load(str(model_path)).double().eval()
    settings = nanochart.read_metadata(model_path)["rdf"]
    cell = None if box is None else torch.tensor(box)
    positions = torch.tensor(x)
    values = torch_cv(encoder, positions, settings, cell).detach().numpy()
    jac = torch.autograd.functional.jacobian(lambda p: torch_cv(encoder, p, settings, cell), positions)
    return values, jac.numpy()


def test_cv_jacobian_matches_autograd_reference_and_finite_differences(
    model_path, cv, distorted_cluster
) -> None:
    x = distorted_cluster
    values, jacobian, _ = cv.compute(x)
    ref_values, ref_jacobian = reference_jacobian(model_path, x)
    assert max_relative(values, ref_values) < 1e-7
    assert max_relative(jacobian, ref_jacobian) < 1e-6
    # Finite differences on a subset of atoms (all 441 coordinates would be slow and no stronger).
    atoms = [0, 1, 12, 60, 146]
    numeric = central_difference(lambda y: cv.compute(_put(x, atoms, y))[0], x[atoms], 1e-5)
    assert max_relative(jacobian[:, atoms, :], np.moveaxis(numeric, -1, 0)) < 1e-6


def _put(x: np.ndarray, atoms: list[int], y: np.ndarray) -> np.ndarray:
    z = x.copy()
    z[atoms] = y
    return z


def test_periodic_cv_matches_autograd_reference(model_path, rng) -> None:
    crystal = bulk("Au", "fcc", a=4.08, cubic=True).repeat((3, 3, 3))
    box = np.asarray(crystal.cell) @ np.array([[1.0, 0.0, 0.0], [0.1, 1.0, 0.0], [0.0, -0.15, 1.0]])
    x = crystal.positions @ np.linalg.inv(np.asarray(crystal.cell)) @ box + 0.1 * rng.normal(size=(108, 3))
    with pytest.warns(nanochart.AtomCountWarning):
        values, jacobian, _ = nanochart.CV(model_path).compute(x, box)
    ref_values, ref_jacobian = reference_jacobian(model_path, x, box)
    assert max_relative(values, ref_values) < 1e-7
    assert max_relative(jacobian, ref_jacobian) < 1e-6


@pytest.mark.parametrize("periodic", [False, True])
def test_box_derivatives_are_minus_the_strain_derivative(cv, distorted_cluster, periodic) -> None:
    x = distorted_cluster
    box = np.eye(3) * 19.0 + np.array([[0, 0, 0], [3.0, 0, 0], [0, -2.0, 0]]) if periodic else None
    _, _, box_derivatives = cv.compute(x, box)
    numeric = strain_derivative(lambda y, cell: cv.compute(y, cell)[0], x, box)  # (3, 3, D)
    assert max_relative(box_derivatives, -np.moveaxis(numeric, -1, 0)) < 1e-6


def test_forces_are_minus_jacobian_transpose_times_dV_ds(cv, distorted_cluster) -> None:
    x = distorted_cluster
    dV_ds = np.array([0.7, -1.3, 0.25])
    _, jacobian, box_derivatives = cv.compute(x)
    forces, virial = cv.forces(x, dV_ds)
    np.testing.assert_allclose(
        forces, -np.einsum("d,dnk->nk", dV_ds, jacobian), rtol=0, atol=1e-12 * np.abs(forces).max()
    )
    np.testing.assert_allclose(
        virial, -np.einsum("d,dab->ab", dV_ds, box_derivatives), rtol=0, atol=1e-12 * np.abs(virial).max()
    )
    # PLUMED's bias virial equals -sum_i x_i (x) f_i for a cluster in vacuum.
    np.testing.assert_allclose(virial, -x.T @ forces, rtol=0, atol=1e-10 * np.abs(virial).max())
    # A bias with a translation-invariant CV exerts no net force.
    assert np.abs(forces.sum(axis=0)).max() < 1e-12 * np.abs(forces).max() * len(x)


def test_zero_bias_gives_zero_forces(cv, distorted_cluster) -> None:
    forces, virial = cv.forces(distorted_cluster, np.zeros(3))
    assert not forces.any() and not virial.any()


class CoreCV(torch.autograd.Function):
    """The C++ CV as a torch function, so that torch.autograd.gradcheck can probe its derivatives."""

    @staticmethod
    def forward(ctx, positions: torch.Tensor, cv: nanochart.CV) -> torch.Tensor:
        values, jacobian, _ = cv.compute(positions.detach().numpy())
        ctx.save_for_backward(torch.from_numpy(jacobian))
        return torch.from_numpy(values)

    @staticmethod
    def backward(ctx, grad_values: torch.Tensor):
        (jacobian,) = ctx.saved_tensors
        return torch.einsum("d,dnk->nk", grad_values, jacobian), None


def test_torch_gradcheck_on_float64(cv, distorted_cluster) -> None:
    positions = torch.tensor(distorted_cluster, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda p: CoreCV.apply(p, cv), (positions,), eps=1e-6, atol=1e-7, rtol=1e-5
    )


def test_pure_torch_reference_agrees_with_core_rdf(distorted_cluster) -> None:
    """The reference itself is checked, so a shared mistake cannot hide."""
    g = torch_rdf(torch.tensor(distorted_cluster), **RDF_SETTINGS).numpy()
    assert max_relative(nanochart.rdf(distorted_cluster, **RDF_SETTINGS), g) < 1e-7
