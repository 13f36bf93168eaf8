"""RDF_ENCODER inside a real PLUMED: `plumed driver` against the C++ core through Python.

These tests need a PLUMED install (`plumed` on PATH, or PLUMED_KERNEL) and a nanochart built
while it was found (so that the plugin exists); without either they skip and say why.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

import nanochart
from conftest import motif
from nanochart.core.model_file import METADATA_FILE, add_novelty
from nanochart.core.novelty import NoveltyReference, mean_knn_distance
from nanochart.model.encoder import ConvEncoder
from nanochart.simulation.plumed_driver import run_driver, write_driver_xyz
from nanochart.simulation.plumed_input import plumed_input, read_colvar
from plumed_setup import PLUGIN, PLUMED, UNKNOWN_KEYWORD, needs_plugin

pytestmark = needs_plugin


def max_relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def trajectory(tmp_path_factory) -> tuple[Path, list[Atoms]]:
    """Four distorted Au147 icosahedra in the driver's xyz format, and the frames as it reads them."""
    rng = np.random.default_rng(4)
    frames = [
        Atoms("Au147", positions=motif("ico147") + 0.08 * (i + 1) * rng.normal(size=(147, 3)))
        for i in range(4)
    ]
    path = write_driver_xyz(frames, tmp_path_factory.mktemp("traj") / "traj.xyz")
    return path, [Atoms("Au147", positions=x) for x in _read_driver_xyz(path, 147)]


def _read_driver_xyz(path: Path, n_atoms: int) -> list[np.ndarray]:
    """Positions as written (12 decimals): what the driver reads."""
    lines = path.read_text().splitlines()
    return [
        np.array([line.split()[1:4] for line in lines[start + 2 : start + 2 + n_atoms]], dtype=float)
        for start in range(0, len(lines), n_atoms + 2)
    ]


def _driver(tmp_path: Path, body: str, trajectory: Path, extra: list[str] = ()) -> str:
    text = f"LOAD FILE={PLUGIN}\n{body}\n"
    result = run_driver(text, trajectory, tmp_path, extra=list(extra), plumed=PLUMED)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return output


@pytest.mark.parametrize("units", ["", "UNITS LENGTH=A"])
def test_driver_gives_the_same_cvs_as_the_core(tmp_path, model_path, trajectory, units) -> None:
    path, frames = trajectory
    body = (
        f"{units}\ncv: RDF_ENCODER MODEL={model_path} GROUP=1-147 NOPBC\nPRINT ARG=cv.* FILE=COLVAR FMT=%.17g"
    )
    log = _driver(tmp_path, body, path)
    assert "RDF_ENCODER" in log or (tmp_path / "COLVAR").is_file()
    colvar = np.loadtxt(tmp_path / "COLVAR", ndmin=2)
    expected = nanochart.CV(model_path).values(np.stack([a.positions for a in frames]))
    assert colvar.shape == (len(frames), 1 + expected.shape[1])
    assert max_relative(colvar[:, 1:], expected) < 1e-8


def _restraint(model_path: Path, at: np.ndarray, kappa: float, extra: str = "NOPBC") -> str:
    return (
        "UNITS LENGTH=A\n"
        f"cv: RDF_ENCODER MODEL={model_path} GROUP=1-{{n}} {extra}\n"
        f"RESTRAINT ARG=cv.cv1,cv.cv2,cv.cv3 AT={','.join(f'{v:.12g}' for v in at)} "
        f"KAPPA={','.join([str(kappa)] * 3)}\n"
    )


def test_debug_forces_agree_with_analytic_forces(tmp_path, model_path, trajectory) -> None:
    path, frames = trajectory
    values = nanochart.CV(model_path).values(frames[0].positions[None])[0]
    body = _restraint(model_path, values + 0.05, 500.0).format(n=147)
    _driver(tmp_path, body, path, ["--debug-forces", "debug.dat", "--dump-forces-fmt", "%.15g"])
    table = np.loadtxt(tmp_path / "debug.dat")
    per_frame = 3 * 147 + 9
    forces = table[:per_frame][: 3 * 147]  # first frame, atom rows only (no box: no virial check)
    analytic, numeric = forces[:, 1], forces[:, 2]  # columns: parameter, analytical, numerical
    error = np.abs(analytic - numeric).max() / np.abs(analytic).max()
    print(f"debug-forces: max |analytic - numerical| / max |analytic| = {error:.2e}")
    assert np.abs(analytic).max() > 1e-3  # a real force, far above the forward-difference noise (~1e-8)
    assert error < 1e-4  # PLUMED's check is a forward difference with a step of 1.5e-8


def test_restraint_forces_equal_core_forces(tmp_path, model_path, trajectory) -> None:
    path, frames = trajectory
    cv = nanochart.CV(model_path)
    at, kappa = cv.values(frames[0].positions[None])[0] + 0.05, 500.0
    body = _restraint(model_path, at, kappa).format(n=147)
    _driver(
        tmp_path,
        body,
        path,
        ["--dump-forces", "forces.xyz", "--dump-forces-fmt", "%.17g", "--dump-full-virial"],
    )
    dumped = _read_dumped_forces(tmp_path / "forces.xyz", 147)
    for (forces, virial), atoms in zip(dumped, frames, strict=True):
        s = cv.values(atoms.positions[None])[0]
        expected_forces, expected_virial = cv.forces(atoms.positions, kappa * (s - at))
        assert max_relative(forces, expected_forces) < 1e-8
        assert max_relative(virial, expected_virial) < 1e-8


def test_both_engines_give_the_same_forces(tmp_path, model_path, trajectory) -> None:
    path, frames = trajectory
    at = nanochart.CV(model_path).values(frames[0].positions[None])[0] + 0.05
    runs = {}
    for engine in ("auto", "libtorch"):
        body = _restraint(model_path, at, 500.0, extra=f"NOPBC ENGINE={engine}").format(n=147)
        dump = ["--dump-forces", "f.xyz", "--dump-forces-fmt", "%.17g", "--dump-full-virial"]
        log = _driver(tmp_path / engine, body, path, dump)
        runs[engine] = (log, _read_dumped_forces(tmp_path / engine / "f.xyz", 147))
    assert "encoder engine: native (nanochart.model.encoder.ConvEncoder" in runs["auto"][0]
    assert "encoder engine: libtorch (requested)" in runs["libtorch"][0]
    for (forces, virial), (ref_forces, ref_virial) in zip(runs["auto"][1], runs["libtorch"][1], strict=True):
        assert max_relative(forces, ref_forces) < 1e-12
        assert max_relative(virial, ref_virial) < 1e-12


def _read_dumped_forces(path: Path, n_atoms: int) -> list[tuple[np.ndarray, np.ndarray]]:
    lines = path.read_text().splitlines()
    frames = []
    for start in range(0, len(lines), n_atoms + 2):
        virial = np.array(lines[start + 1].split(), dtype=float).reshape(3, 3)
        forces = np.array([line.split()[1:] for line in lines[start + 2 : start + 2 + n_atoms]], dtype=float)
        frames.append((forces, virial))
    return frames


def test_periodic_virial_and_forces(tmp_path, model_path) -> None:
    crystal = bulk("Au", "fcc", a=4.08).repeat((4, 4, 4))  # triclinic cell, 64 atoms
    crystal.positions += np.random.default_rng(2).normal(scale=0.1, size=crystal.positions.shape)
    path = write_driver_xyz([crystal], tmp_path / "crystal.xyz")
    with pytest.warns(nanochart.AtomCountWarning):
        cv = nanochart.CV(model_path)
        s = cv.values(crystal.positions[None], np.asarray(crystal.cell))[0]
    at, kappa = s + 0.05, 500.0
    body = _restraint(model_path, at, kappa, extra="").format(n=64)
    log = _driver(
        tmp_path,
        body,
        path,
        [
            "--dump-forces",
            "forces.xyz",
            "--dump-forces-fmt",
            "%.17g",
            "--dump-full-virial",
            "--debug-forces",
            "debug.dat",
        ],
    )
    assert "trained on clusters of 147 atoms; this group has 64" in log
    ((forces, virial),) = _read_dumped_forces(tmp_path / "forces.xyz", 64)
    with pytest.warns(nanochart.AtomCountWarning):
        expected_forces, expected_virial = cv.forces(
            crystal.positions, kappa * (s - at), np.asarray(crystal.cell)
        )
    assert max_relative(forces, expected_forces) < 1e-8
    assert max_relative(virial, expected_virial) < 1e-8
    table = np.loadtxt(tmp_path / "debug.dat")
    virial_rows = table[3 * 64 : 3 * 64 + 9]
    error = np.abs(virial_rows[:, 1] - virial_rows[:, 2]).max() / np.abs(virial_rows[:, 1]).max()
    print(f"debug-forces virial: max relative difference {error:.2e}")
    assert error < 1e-4


@pytest.fixture(scope="module")
def plumed_error_status(tmp_path_factory, trajectory) -> int:
    """How `plumed driver` ends on an input error of one of PLUMED's own actions."""
    result = run_driver(
        "d: DISTANCE ATOMS=1,2 FOO=1\n", trajectory[0], tmp_path_factory.mktemp("builtin"), plumed=PLUMED
    )
    assert "ERROR in input to action DISTANCE" in result.stdout + result.stderr
    return result.returncode


def _run_expecting_error(tmp_path: Path, body: str, trajectory: Path, status: int) -> str:
    """Run an input that must fail, and check it fails the way PLUMED's own actions do: an
    `ERROR in input to action RDF_ENCODER` report and the same exit status, never a crash."""
    result = run_driver(f"LOAD FILE={PLUGIN}\n{body}\n", trajectory, tmp_path, plumed=PLUMED)
    output = result.stdout + result.stderr
    assert result.returncode != 0, "PLUMED accepted a broken input"
    assert result.returncode == status, output[-2000:]
    assert "ERROR in input to action RDF_ENCODER with label cv" in output
    return output


def test_errors_go_through_plumed(tmp_path, model_path, trajectory, plumed_error_status) -> None:
    path, _ = trajectory
    status = plumed_error_status
    out = _run_expecting_error(
        tmp_path / "a", f"cv: RDF_ENCODER MODEL={model_path} GROUP=1-147 NOPBC FOO=1", path, status
    )
    assert re.search(UNKNOWN_KEYWORD, out), out[-2000:]
    out = _run_expecting_error(
        tmp_path / "b", "cv: RDF_ENCODER MODEL=/nonexistent.pt GROUP=1-147", path, status
    )
    assert "cannot open model file '/nonexistent.pt'" in out
    plain = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.script(ConvEncoder().double().eval()), str(plain))
    out = _run_expecting_error(tmp_path / "c", f"cv: RDF_ENCODER MODEL={plain} GROUP=1-147", path, status)
    assert "without nanochart.json metadata" in out
    out = _run_expecting_error(tmp_path / "d", f"cv: RDF_ENCODER MODEL={model_path} NOPBC", path, status)
    assert "at least 2 atoms" in out
    out = _run_expecting_error(
        tmp_path / "e", f"cv: RDF_ENCODER MODEL={model_path} GROUP=1-147 ENGINE=cuda", path, status
    )
    assert "ENGINE must be auto or libtorch, got cuda" in out


def test_other_group_size_warns_but_runs(tmp_path, model_path, trajectory) -> None:
    path, _ = trajectory
    log = _driver(
        tmp_path, f"cv: RDF_ENCODER MODEL={model_path} GROUP=1-55 NOPBC\nPRINT ARG=cv.* FILE=COLVAR", path
    )
    assert "trained on clusters of 147 atoms; this group has 55" in log
    assert np.isfinite(np.loadtxt(tmp_path / "COLVAR")).all()


def test_model_metadata_is_checked_like_in_python(tmp_path, trajectory, plumed_error_status) -> None:
    path, _ = trajectory
    bad = tmp_path / "bad.pt"
    meta = {
        "format_version": 1,
        "rdf": {"r_min": 0.0, "r_max": 16.0, "n_bins": 150, "sigma": 0.1},
        "cv_names": ["cv1", "cv2", "cv3"],
        "elements": ["Au"],
        "n_atoms": 147,
    }
    torch.jit.save(
        torch.jit.script(ConvEncoder().double().eval()),
        str(bad),
        _extra_files={METADATA_FILE: json.dumps(meta)},
    )
    out = _run_expecting_error(
        tmp_path / "e", f"cv: RDF_ENCODER MODEL={bad} GROUP=1-147 NOPBC", path, plumed_error_status
    )
    assert "rdf.n_bins = 150" in out


def test_plugin_command_prints_the_plugin_path_and_its_plumed(capsys, monkeypatch, tmp_path) -> None:
    from nanochart.cli import main
    from nanochart.simulation.plumed_install import lammps_plugin_path, plugin_build_info

    assert main(["plugin"]) == 0
    printed = capsys.readouterr()
    assert printed.out.strip() == str(PLUGIN)  # alone on stdout, for LOAD FILE=$(nanochart plugin)
    built = plugin_build_info(PLUGIN)
    assert built is not None and built["version"] == PLUMED.version
    assert f"built against PLUMED {PLUMED.version} at {built['root']}" in printed.err
    assert ("bundled: the kernel of the PyPI wheel hillclimber" in printed.err) == PLUMED.bundled
    if lammps_plugin_path() is not None:
        assert main(["plugin", "--lammps"]) == 0
        printed = capsys.readouterr()
        assert printed.out.strip() == str(lammps_plugin_path())
        assert f"  plugin load {lammps_plugin_path()}" in printed.err.splitlines()
        assert f"PLUMED_KERNEL={PLUMED.kernel}" in printed.err
    # A plugin built against another PLUMED than the one found now is reported as such.
    other = tmp_path / "libnanochart_plumed.so"
    other.write_bytes(PLUGIN.read_bytes())
    other.with_suffix(".json").write_text(
        '{"executable": "/opt/p/bin/plumed", "root": "/opt/p/lib/plumed", "version": "2.9"}'
    )
    monkeypatch.setenv("NANOCHART_PLUMED_PLUGIN", str(other))
    assert main(["plugin"]) == 0
    err = capsys.readouterr().err
    assert "built against PLUMED 2.9 at /opt/p/lib/plumed (the user's own)" in err
    assert "warning: the PLUMED found now is another one" in err


@pytest.fixture(scope="module")
def novelty_models(model_path, trajectory, tmp_path_factory) -> tuple[Path, Path]:
    """The test model with a novelty reference (ten icosahedra like the trajectory's first frame):
    with a threshold under every frame's novelty (all off the chart), and over it (none off)."""
    _, frames = trajectory
    cv = nanochart.CV(model_path)
    rng = np.random.default_rng(5)
    reference = cv.values(np.stack([motif("ico147") + 0.08 * rng.normal(size=(147, 3)) for _ in range(10)]))
    scores = mean_knn_distance(cv.values(np.stack([a.positions for a in frames])), reference, 3) / 0.1
    folder = tmp_path_factory.mktemp("novelty")
    low = NoveltyReference(reference, 3, 0.1, 0.5 * scores.min())
    high = NoveltyReference(reference, 3, 0.1, 2.0 * scores.max())
    return add_novelty(model_path, low, folder / "low.pt"), add_novelty(model_path, high, folder / "high.pt")


def test_novelty_component_and_rate_limited_warning(tmp_path, novelty_models, trajectory) -> None:
    path, frames = trajectory
    low, high = novelty_models
    body = (
        f"cv: RDF_ENCODER MODEL={low} GROUP=1-147 NOPBC NOVELTY NOVELTY_WARN_STRIDE=2\n"
        "PRINT ARG=cv.cv1,cv.cv2,cv.cv3,cv.novelty FILE=COLVAR FMT=%.17g"
    )
    log = _driver(tmp_path / "low", body, path)
    colvar = np.loadtxt(tmp_path / "low" / "COLVAR", ndmin=2)
    cv = nanochart.CV(low)
    expected = cv.novelty(np.stack([a.positions for a in frames]))
    assert expected.off_chart.all()
    assert max_relative(colvar[:, 4], expected.score) < 1e-8
    assert "novelty: mean distance to the 3 nearest of 10 training structures' CVs" in log
    # Four frames off the chart, steps 0-3: a warning at step 0, the next at step 2, no more.
    warnings = re.findall(r"step (\d+): the structure is off the chart \(novelty [^;]*; (\d+) off-chart", log)
    assert warnings == [("0", "1"), ("2", "2")], log[-3000:]
    # Under the threshold: the same numbers, no warning; without NOVELTY: no component, no warning.
    log = _driver(tmp_path / "high", body.replace(str(low), str(high)), path)
    assert max_relative(np.loadtxt(tmp_path / "high" / "COLVAR", ndmin=2)[:, 4], expected.score) < 1e-8
    assert "the structure is off the chart" not in log
    log = _driver(
        tmp_path / "off", f"cv: RDF_ENCODER MODEL={low} GROUP=1-147 NOPBC\nPRINT ARG=cv.* FILE=COLVAR", path
    )
    assert np.loadtxt(tmp_path / "off" / "COLVAR", ndmin=2).shape[1] == 4
    assert "novelty:" not in log and "the structure is off the chart" not in log


def test_plumed_input_with_novelty_runs_in_plumed(tmp_path, novelty_models, trajectory) -> None:
    """`nanochart plumed-input --novelty` writes an input whose cv.novelty column is the model's."""
    path, frames = trajectory
    low, _ = novelty_models
    _driver(tmp_path, plumed_input(low, novelty=True), path)
    colvar = read_colvar(tmp_path / "COLVAR")
    expected = nanochart.CV(low).novelty(np.stack([a.positions for a in frames]))
    assert max_relative(colvar["cv.novelty"], expected.score) < 1e-8


def test_novelty_errors(tmp_path, model_path, novelty_models, trajectory, plumed_error_status) -> None:
    path, _ = trajectory
    low, _ = novelty_models
    out = _run_expecting_error(
        tmp_path / "a",
        f"cv: RDF_ENCODER MODEL={model_path} GROUP=1-147 NOPBC NOVELTY",
        path,
        plumed_error_status,
    )
    assert "NOVELTY: the model has no novelty reference" in out and "nanochart calibrate-novelty" in out
    body = f"cv: RDF_ENCODER MODEL={low} GROUP=1-147 NOPBC NOVELTY\nRESTRAINT ARG=cv.novelty AT=0 KAPPA=1"
    out = _run_expecting_error(tmp_path / "b", body, path, plumed_error_status)
    assert "the novelty component has no derivatives and cannot be biased" in out
