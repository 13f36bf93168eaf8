"""The core's own encoder evaluator against libtorch, the cases where it steps aside, and the
pair record that spares the RDF backward pass its recomputation."""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import nanochart
from conftest import RDF_SETTINGS, SHIPPED_GRID, motif
from nanochart.core.rdf import RdfSettings
from nanochart.model.encoder import ConvEncoder


def _cpu_has_avx2_and_fma() -> bool:
    """What the core's own evaluator needs (x86-64 with AVX2 and FMA); elsewhere libtorch runs."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        flags = next(
            line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
        )
    except (OSError, StopIteration):
        return False
    return {"avx2", "fma"} <= set(flags.split(":", 1)[1].split())


needs_native = pytest.mark.skipif(
    not _cpu_has_avx2_and_fma(),
    reason="the core's own encoder evaluator needs an x86-64 CPU with AVX2 and FMA; this one runs libtorch",
)


def max_relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def export(encoder: nn.Module, path: Path, settings: dict) -> Path:
    return nanochart.export_model(encoder.double().eval(), path, rdf=settings, elements=["Au"], n_atoms=147)


def fitted_encoder(settings: dict, rng: np.random.Generator, **options) -> ConvEncoder:
    """A ConvEncoder with input scaling fitted on noisy motifs and batch-norm statistics and
    affine parameters far from their defaults, so that every stored number matters."""
    torch.manual_seed(1)
    encoder = ConvEncoder(n_bins=settings["n_bins"], **options)
    rdfs = [
        nanochart.rdf(motif(name) + 0.1 * rng.normal(size=motif(name).shape), **settings)
        for name in ("ico147", "ino_decahedron", "octahedron", "truncated_octahedron")
        for _ in range(2)
    ]
    encoder.set_input_scaling(torch.tensor(np.stack(rdfs), dtype=torch.float32))
    with torch.no_grad():
        for module in encoder.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
    return encoder


@needs_native
@pytest.mark.parametrize(
    ("activation", "kernel_size", "stride", "n_bins"),
    [("relu", 5, 2, 200), ("silu", 3, 1, 64), ("softplus", 7, 3, 157), ("silu", 5, 2, 201)],
)
def test_native_engine_matches_libtorch(tmp_path, rng, activation, kernel_size, stride, n_bins) -> None:
    settings = {**RDF_SETTINGS, "n_bins": n_bins}
    shape = {"n_cvs": 2, "channels": (4, 8, 8, 16, 16), "kernel_size": kernel_size, "stride": stride}
    encoder = fitted_encoder(settings, rng, activation=activation, **shape)
    path = export(encoder, tmp_path / "model.pt", settings)
    native, reference = nanochart.CV(path), nanochart.CV(path, engine="libtorch")
    assert native.engine.startswith("native (nanochart.model.encoder.ConvEncoder")
    assert reference.engine == "libtorch (requested)"

    x = motif("ico147") + 0.05 * rng.normal(size=(147, 3))
    for ours, theirs in zip(native.compute(x), reference.compute(x), strict=True):
        assert max_relative(ours, theirs) < 1e-12
    dV_ds = np.array([0.7, -1.3])
    for ours, theirs in zip(native.forces(x, dV_ds), reference.forces(x, dV_ds), strict=True):
        assert max_relative(ours, theirs) < 1e-12
    batch = np.stack([motif("ico147") + 0.1 * rng.normal(size=(147, 3)) for _ in range(5)])
    assert max_relative(native.values(batch), reference.values(batch)) < 1e-12


@needs_native
def test_shipped_model_runs_natively_and_agrees_with_libtorch(rng) -> None:
    path = Path(__file__).parents[1] / "models" / "au147" / "au147.pt"
    native, reference = nanochart.CV(path), nanochart.CV(path, engine="libtorch")
    assert native.engine.startswith("native")
    x = motif("ico147") + 0.05 * rng.normal(size=(147, 3))
    dV_ds = np.array([1.0, -0.5, 0.25])
    for ours, theirs in zip(native.forces(x, dV_ds), reference.forces(x, dV_ds), strict=True):
        assert max_relative(ours, theirs) < 1e-12


class Mlp(nn.Module):
    def __init__(self, n_bins: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_bins, 8), nn.Tanh(), nn.Linear(8, 3))

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return self.net(g)


def test_other_architectures_run_in_libtorch(tmp_path) -> None:
    torch.manual_seed(0)
    cv = nanochart.CV(export(Mlp(RDF_SETTINGS["n_bins"]), tmp_path / "mlp.pt", RDF_SETTINGS))
    assert cv.engine.startswith("libtorch (the module is a __torch__.")
    assert "not nanochart.model.encoder.ConvEncoder" in cv.engine
    values, jacobian, _ = cv.compute(motif("ico147"))
    assert values.shape == (3,) and np.isfinite(jacobian).all()


IMPOSTOR = """
import torch
from nanochart.model.encoder import ConvEncoder as Base


class ConvEncoder(Base):
    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return self.linear(self.blocks(self.standardize(g).unsqueeze(1)).flatten(1)) + 1e-3 * g[:, :1]
"""


@needs_native
def test_a_module_the_evaluator_gets_wrong_stays_in_libtorch(tmp_path, rng, monkeypatch) -> None:
    # Named like nanochart's encoder (module path ending in nanochart.encoder), with the same layers,
    # but another forward: only the numerical check on load can tell.
    package = tmp_path / "impostor" / "nanochart"
    package.mkdir(parents=True)
    for folder in (package.parent, package):
        (folder / "__init__.py").write_text("")
    (package / "encoder.py").write_text(IMPOSTOR)
    monkeypatch.syspath_prepend(str(tmp_path))
    impostor = importlib.import_module("impostor.nanochart.encoder").ConvEncoder
    path = export(impostor(n_bins=RDF_SETTINGS["n_bins"], n_cvs=3), tmp_path / "impostor.pt", RDF_SETTINGS)
    cv = nanochart.CV(path)
    assert cv.engine.startswith("libtorch (the core's evaluator differs from the module by")
    # ... and the results are the module's own.
    x = motif("ico147") + 0.05 * rng.normal(size=(147, 3))
    g = torch.tensor(nanochart.rdf(x, **RDF_SETTINGS))[None]
    expected = torch.jit.load(str(path))(g)[0].detach().numpy()
    assert max_relative(cv.compute(x)[0], expected) < 1e-12


def test_unknown_engine_is_refused(model_path) -> None:
    with pytest.raises(ValueError, match="engine must be 'auto' or 'libtorch', got 'cuda'"):
        nanochart.CV(model_path, engine="cuda")


@pytest.mark.parametrize("n_atoms", [147, 730])  # 730 atoms: more pairs than the record keeps
def test_forces_equal_rdf_backward_of_the_libtorch_vjp(model_path, rng, n_atoms) -> None:
    x = rng.uniform(0.0, 2.5 * n_atoms ** (1 / 3), size=(n_atoms, 3))
    dV_ds = np.array([1.0, -0.5, 0.25])
    cv = nanochart.CV(model_path)
    with pytest.warns(nanochart.AtomCountWarning) if n_atoms != 147 else contextlib.nullcontext():
        forces, virial = cv.forces(x, dV_ds)
    g = torch.tensor(nanochart.rdf(x, **RDF_SETTINGS))[None].requires_grad_(True)
    s = torch.jit.load(str(model_path))(g)
    (dV_dg,) = torch.autograd.grad(s, g, torch.tensor(dV_ds)[None])
    dV_dx, dV_dstrain = nanochart._core.rdf_backward(x, dV_dg[0].numpy(), RdfSettings(**RDF_SETTINGS), None)
    assert max_relative(forces, -dV_dx) < 1e-12
    assert max_relative(virial, dV_dstrain) < 1e-12


OTHER_PATH_RUN = """
import sys, numpy as np, nanochart
data = np.load(sys.argv[1])
cv = nanochart.CV(sys.argv[2])
rdf = nanochart.read_metadata(sys.argv[2])["rdf"]
g = nanochart.rdf(data["x"], **{key: rdf[key] for key in ("r_min", "r_max", "n_bins", "sigma")})
forces, virial = cv.forces(data["x"], data["dV_ds"])
np.savez(sys.argv[3], g=g, forces=forces, virial=virial, engine=cv.engine)
"""


@pytest.mark.parametrize(
    ("variable", "engine"),
    [
        # CPUs without AVX2 (and ARM) run the RDF windows on 2-double vectors and the encoder in libtorch.
        ("NANOCHART_NARROW_VECTORS", "libtorch (the core's evaluator needs an x86-64 CPU with AVX2"),
        # Without AVX-512 the core's evaluator runs its convolutions on 4-double vectors, not 8.
        ("NANOCHART_NO_AVX512", "native"),
    ],
)
# The ReLU model on the nearest-bin grid, the SiLU one on the shipped model's (bin-below) grid.
@pytest.mark.parametrize(("activation", "grid"), [("relu", RDF_SETTINGS), ("silu", SHIPPED_GRID)])
def test_other_vector_paths_give_the_same_results(tmp_path, rng, variable, engine, activation, grid) -> None:
    """The paths that other CPUs take, taken here by setting `variable` to 1, agree with this
    CPU's to rounding: among them the division-free reciprocals (logistic function, 1/r) that
    CPUs with AVX-512 use. Two atoms share a position (r = 0, which must give no force)."""
    encoder = fitted_encoder(grid, rng, activation=activation)
    model_path = export(encoder, tmp_path / "m.pt", grid)
    x = motif("ico147") + 0.05 * rng.normal(size=(147, 3))
    x[1] = x[0]
    dV_ds = np.array([1.0, -0.5, 0.25])
    np.savez(tmp_path / "in.npz", x=x, dV_ds=dV_ds)
    files = [str(tmp_path / "in.npz"), str(model_path), str(tmp_path / "out.npz")]
    subprocess.run(
        [sys.executable, "-c", OTHER_PATH_RUN, *files], env={**os.environ, variable: "1"}, check=True
    )
    other = np.load(tmp_path / "out.npz")
    assert str(other["engine"]).startswith(engine)
    cv = nanochart.CV(model_path)
    forces, virial = cv.forces(x, dV_ds)
    assert max_relative(other["g"], nanochart.rdf(x, **grid)) < 1e-13
    assert max_relative(other["forces"], forces) < 1e-12
    assert max_relative(other["virial"], virial) < 1e-12
    assert np.all(np.isfinite(forces))


@needs_native
@pytest.mark.parametrize(
    "channels",
    [
        # Layers of the paper's shape are too small to share; these of 1-2 million multiply-adds are
        # shared: the forward pass by halves of the output channels ...
        (64, 128, 128, 128, 128),
        # ... or, when those are no whole pairs of vectors, by halves of the positions.
        (64, 120, 120, 120, 120),
    ],
)
def test_thread_counts_give_identical_results(tmp_path, rng, channels) -> None:
    """The core's evaluator shares its large convolutions between threads (the forward pass by
    output channels or positions, the backward pass in chunks cut whatever the thread count):
    values, forces and virial are the same, bit for bit, for 1, 2 and 3 threads."""
    settings = {**RDF_SETTINGS, "n_bins": 200}
    encoder = fitted_encoder(settings, rng, activation="silu", channels=channels)
    path = export(encoder, tmp_path / "model.pt", settings)
    x = motif("ico147") + 0.05 * rng.normal(size=(147, 3))
    dV_ds = np.array([0.7, -1.3, 0.4])
    results = []
    for threads in (1, 2, 3):
        cv = nanochart.CV(path, num_threads=threads)
        assert cv.engine.startswith("native")
        results.append((cv.values(x[None]), *cv.forces(x, dV_ds)))
    for other in results[1:]:
        for ours, theirs in zip(other, results[0], strict=True):
            np.testing.assert_array_equal(ours, theirs)
