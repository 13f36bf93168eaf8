"""Off-chart warnings: the novelty reference in the model file, the core's scores against the
Python (scipy) computation, the calibration, and project / chart / calibrate-novelty."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

import nanochart
from conftest import motif
from nanochart.chart.projection import project
from nanochart.cli.main import main
from nanochart.core.model_file import add_novelty
from nanochart.core.novelty import (
    MAX_REFERENCE,
    NoveltyReference,
    calibrate,
    mean_knn_distance,
    subsample_reference,
)


def _structures(rng: np.random.Generator, n: int, noise: float) -> np.ndarray:
    return np.stack([motif("ico147") + noise * rng.normal(size=(147, 3)) for _ in range(n)])


@pytest.fixture(scope="module")
def calibrated(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, NoveltyReference]:
    """The test model with a novelty reference: "training" structures are icosahedra with 0.05-0.15
    angstrom of noise; held-out ones more of the same."""
    rng = np.random.default_rng(3)
    cv = nanochart.CV(model_path)
    training = cv.values(np.concatenate([_structures(rng, 40, s) for s in (0.05, 0.1, 0.15)]))
    held_out = cv.values(np.concatenate([_structures(rng, 20, s) for s in (0.05, 0.1, 0.15)]))
    reference = calibrate(training, held_out, k=5, percentile=95.0)
    path = add_novelty(model_path, reference, tmp_path_factory.mktemp("novelty") / "calibrated.pt")
    return path, reference


def test_core_scores_equal_the_python_computation(calibrated, rng) -> None:
    path, reference = calibrated
    cv = nanochart.CV(path)
    assert cv.has_novelty
    batch = np.concatenate([_structures(rng, 4, 0.1), _structures(rng, 4, 0.6)])
    core = cv.novelty(batch)
    python = reference.scores(cv.values(batch))
    np.testing.assert_allclose(core.score, python.score, rtol=1e-12)
    np.testing.assert_array_equal(core.off_chart, python.off_chart)
    # One structure (N, 3) is a batch of one; the stored reference is what the Python one holds.
    assert cv.novelty(batch[0]).score[0] == pytest.approx(core.score[0], rel=1e-14)
    stored = cv.novelty_reference
    np.testing.assert_array_equal(stored.reference_cvs, reference.reference_cvs)
    assert (stored.k, stored.scale, stored.threshold) == (reference.k, reference.scale, reference.threshold)
    # Heavily disordered structures are far from every training structure; near-ideal ones are not.
    assert core.off_chart[4:].all() and not core.off_chart[:4].any()


def test_mean_knn_distance_by_hand() -> None:
    reference = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
    got = mean_knn_distance([[0.0, 1.0], [1.0, 0.0]], reference, k=2)
    np.testing.assert_allclose(got, [1.0, 0.5])
    with pytest.raises(ValueError, match="k must be between 1 and the 4"):
        mean_knn_distance([[0.0, 1.0]], reference, k=5)
    with pytest.raises(ValueError, match="same D"):
        mean_knn_distance([[0.0, 1.0, 2.0]], reference)


def test_calibration_threshold_is_the_held_out_percentile(rng) -> None:
    training = rng.normal(size=(9000, 3))
    held_out = rng.normal(size=(5000, 3))
    reference = calibrate(training, held_out, k=5, percentile=95.0)
    # Subsampled evenly and deterministically to MAX_REFERENCE points.
    assert len(reference.reference_cvs) == MAX_REFERENCE
    assert reference.calibration["subsampled"] and reference.calibration["n_training"] == 9000
    np.testing.assert_array_equal(reference.reference_cvs, subsample_reference(training))
    held_scores = reference.scores(held_out)
    assert np.median(held_scores.score) == pytest.approx(1.0, rel=1e-6)
    assert held_scores.fraction_off_chart == pytest.approx(0.05, abs=0.002)
    # A second sample of the same distribution: about 5% flagged too (one binomial spread of the
    # two samples' percentiles together is 0.5 points); a shifted one: nearly all.
    assert abs(reference.scores(rng.normal(size=(4000, 3))).fraction_off_chart - 0.05) < 0.015
    assert reference.scores(rng.normal(size=(500, 3)) + 6.0).fraction_off_chart > 0.99
    with pytest.raises(ValueError, match="at least 20 held-out"):
        calibrate(training, held_out[:5])


def test_model_without_novelty_says_how_to_add_one(model_path: Path, cv, tmp_path: Path, capsys) -> None:
    assert not cv.has_novelty
    positions = motif("ico147")[None]
    with pytest.raises(nanochart.ModelError, match=r"no novelty reference.*nanochart calibrate-novelty"):
        cv.novelty(positions)
    with pytest.raises(nanochart.ModelError, match="calibrate-novelty"):
        _ = cv.novelty_reference
    # project keeps working, without the column, and says why.
    trajectory = tmp_path / "traj.extxyz"
    write(trajectory, [Atoms("Au147", positions=motif("ico147"))] * 3)
    assert main([str(a) for a in ("project", model_path, trajectory, "--out", tmp_path / "p")]) == 0
    assert "novelty    not available" in capsys.readouterr().out
    assert "novelty" not in (tmp_path / "p" / "COLVAR").read_text()


def test_add_novelty_keeps_the_module_and_metadata(model_path: Path, calibrated, rng) -> None:
    path, _ = calibrated
    before, after = nanochart.read_metadata(model_path), nanochart.read_metadata(path)
    assert {k: v for k, v in after.items() if k != "novelty"} == before
    batch = _structures(rng, 3, 0.1)
    np.testing.assert_array_equal(nanochart.CV(path).values(batch), nanochart.CV(model_path).values(batch))
    wrong = NoveltyReference(np.zeros((10, 2)), 5, 1.0, 2.0)
    with pytest.raises(ValueError, match="reference has 2 CVs, the model 3"):
        add_novelty(model_path, wrong, path.with_name("wrong.pt"))


def test_export_model_can_carry_novelty(calibrated, tmp_path: Path) -> None:
    from conftest import RDF_SETTINGS
    from nanochart.model.encoder import ConvEncoder

    _, reference = calibrated
    path = nanochart.export_model(
        ConvEncoder(n_bins=200, n_cvs=3),
        tmp_path / "m.pt",
        rdf=RDF_SETTINGS,
        elements=["Au"],
        n_atoms=147,
        novelty=reference,
    )
    assert nanochart.CV(path).novelty_reference.threshold == reference.threshold


def test_project_reports_off_chart_frames(calibrated, tmp_path: Path, rng, capsys) -> None:
    path, _ = calibrated
    frames = [
        Atoms("Au147", positions=x)
        for x in np.concatenate([_structures(rng, 3, 0.1), _structures(rng, 2, 0.6)])
    ]
    write(tmp_path / "traj.extxyz", frames)
    result = project(path, tmp_path / "traj.extxyz", tmp_path / "p", progress=False)
    assert result.novelty is not None
    assert result.novelty.off_chart.tolist() == [False, False, False, True, True]
    colvar = (tmp_path / "p" / "COLVAR").read_text().splitlines()
    assert colvar[0] == "#! FIELDS time cv1 cv2 cv3 novelty"
    np.testing.assert_allclose(np.loadtxt(colvar[1:])[:, -1], result.novelty.score, rtol=1e-6)
    assert main([str(a) for a in ("project", path, tmp_path / "traj.extxyz", "--out", tmp_path / "q")]) == 0
    out, err = capsys.readouterr()
    assert "novelty    2 of 5 structures off the chart (40.0%" in out
    assert "warning: 2 frames are off the chart" in err


def test_chart_writes_novelty_per_structure(calibrated, tmp_path: Path, rng, capsys) -> None:
    path, _ = calibrated
    positions = np.concatenate([_structures(rng, 12, 0.1), _structures(rng, 3, 0.6)])
    write(tmp_path / "data.extxyz", [Atoms("Au147", positions=x) for x in positions])
    assert main([str(a) for a in ("chart", path, tmp_path / "data.extxyz", "--out", tmp_path / "c")]) == 0
    out, err = capsys.readouterr()
    assert "novelty    3 of 15 structures off the chart (20.0%" in out
    assert "warning: 3 charted structures are off the chart" in err
    rows = (tmp_path / "c" / "novelty.csv").read_text().splitlines()
    assert rows[0] == "index,novelty,off_chart" and len(rows) == 16
    assert [row.split(",")[2] for row in rows[1:]] == ["0"] * 12 + ["1"] * 3
    expected = nanochart.CV(path).novelty(positions).score
    np.testing.assert_allclose([float(row.split(",")[1]) for row in rows[1:]], expected, rtol=1e-3)


def test_calibrate_novelty_command(model_path: Path, tmp_path: Path, capsys) -> None:
    """The verb end to end: a chart folder, held-out and check files with thermal snapshots, far-off
    structures; the model file gets the reference, the report the figures."""
    rng = np.random.default_rng(8)
    cv = nanochart.CV(model_path)
    labels = ["Ih", "mix"]

    def frames(n: int, with_thermal: bool) -> list[Atoms]:
        out = []
        for i in range(n):
            atoms = Atoms("Au147", positions=_structures(rng, 1, 0.05 + 0.1 * (i % 2))[0])
            atoms.info["label"] = labels[i % 2]
            if with_thermal:
                atoms.arrays["thermal_1"] = atoms.positions + 0.05 * rng.normal(size=(147, 3))
            out.append(atoms)
        return out

    training = frames(120, False)
    chart = tmp_path / "chart"
    chart.mkdir()
    rows = ["index,cv1,cv2,cv3,family,label"] + [
        f"{i},{','.join(f'{v:.10g}' for v in x)},0,{atoms.info['label']}"
        for i, (x, atoms) in enumerate(
            zip(cv.values(np.stack([a.positions for a in training])), training, strict=True)
        )
    ]
    (chart / "chart.csv").write_text("\n".join(rows) + "\n")
    write(tmp_path / "held_out.extxyz", frames(40, True))
    write(tmp_path / "check.extxyz", frames(40, True))
    far = [Atoms("Au147", positions=x, info={"source": "disordered"}) for x in _structures(rng, 6, 0.8)]
    write(tmp_path / "far.extxyz", far)
    out = tmp_path / "calibrated.pt"
    args = ["calibrate-novelty", model_path, "--chart", chart, "--held-out", tmp_path / "held_out.extxyz"]
    args += ["--check", tmp_path / "check.extxyz", "--far-off", tmp_path / "far.extxyz", "--out", out]
    args += ["--report", tmp_path / "novelty.json", "--percentile", "95"]
    assert main([str(a) for a in args]) == 0
    printed = capsys.readouterr().out
    assert "off the chart above" in printed and "far off" in printed
    report = json.loads((tmp_path / "novelty.json").read_text())
    assert (
        report["calibration"]["n_held_out_quenched"] == 40
        and report["calibration"]["n_held_out_thermal"] == 40
    )
    assert report["checks"]["calibration"]["all"]["n"] == 80
    assert report["checks"]["check"]["all"]["fraction"] <= 0.2
    assert report["far_off"]["per_source"]["disordered"]["off_chart"] == 6
    stored = nanochart.CV(out).novelty_reference
    assert (
        stored.threshold == pytest.approx(report["threshold"]) and stored.calibration["far_off"] is not None
    )
    assert nanochart.read_metadata(model_path).get("novelty") is None, "--out leaves the model as it was"
