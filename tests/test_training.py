"""Training, export, chart and projection (issue: train the autoencoder, chart, project)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from ase.cluster import Decahedron, Icosahedron, Octahedron
from ase.io import write
from sklearn.neighbors import KNeighborsClassifier

import nanochart
from conftest import RDF_SETTINGS
from nanochart.chart.charting import chart, find_families, scan_bandwidths
from nanochart.chart.projection import frame_times, project, quench
from nanochart.core.rdf import RdfSettings
from nanochart.data.structures import read_structures
from nanochart.model.features import choose_settings, featurize, featurize_file
from nanochart.model.training import ChartAutoencoder, within_label_share

MOTIFS = {
    "Ih": lambda: Icosahedron("Au", 4),
    "Dh": lambda: Decahedron("Au", 4, 4, 0),
    "fcc": lambda: Octahedron("Au", 7, 3),
}


def noisy_motifs(per_motif: int, seed: int = 0) -> list:
    """147-atom gold motifs with thermal-like Gaussian displacements of 0.05-0.2 angstrom."""
    rng = np.random.default_rng(seed)
    frames = []
    for label, build in MOTIFS.items():
        for _ in range(per_motif):
            atoms = build()
            atoms.positions += rng.normal(scale=rng.uniform(0.05, 0.2), size=atoms.positions.shape)
            atoms.info["label"] = label
            frames.append(atoms)
    return frames


@pytest.fixture(scope="session")
def motif_data() -> tuple[list, np.ndarray, RdfSettings]:
    frames = noisy_motifs(80)
    settings = choose_settings(frames)
    return frames, featurize(frames, settings, progress=False), settings


@pytest.fixture(scope="session")
def trained(motif_data) -> ChartAutoencoder:
    _, rdfs, _ = motif_data
    return ChartAutoencoder(epochs=60, patience=60, seed=1, progress=False).fit(rdfs)


def test_latent_space_separates_motifs(motif_data, trained) -> None:
    frames, rdfs, _ = motif_data
    labels = np.array([atoms.info["label"] for atoms in frames])
    cvs = trained.transform(rdfs)
    assert cvs.shape == (240, 3)
    train, held_out = trained.train_indices_, trained.validation_indices_
    knn = KNeighborsClassifier(n_neighbors=5).fit(cvs[train], labels[train])
    accuracy = knn.score(cvs[held_out], labels[held_out])
    assert accuracy >= 0.95, f"k-NN accuracy on held-out structures {accuracy:.3f}"
    # It learned something: validation loss well below the loss of predicting the mean (1.0).
    assert trained.best_loss_ < 0.5
    assert trained.history_["validation"][trained.best_epoch_] == trained.best_loss_


def test_fitted_state_and_sklearn_conventions(trained) -> None:
    params = trained.get_params()
    assert params["n_cvs"] == 3 and params["epochs"] == 60
    fresh = ChartAutoencoder(**params)
    assert not hasattr(fresh, "autoencoder_")  # the constructor only stores settings
    assert len(set(trained.train_indices_) & set(trained.validation_indices_)) == 0
    assert len(trained.train_indices_) + len(trained.validation_indices_) == 240


def test_export_round_trip(tmp_path, motif_data, trained) -> None:
    frames, rdfs, settings = motif_data
    path = trained.export(tmp_path / "m.pt", rdf=settings.as_dict(), elements=["Au"], n_atoms=147)
    with torch.no_grad():
        eager = trained.encoder_(torch.tensor(rdfs)).numpy()
        reloaded = torch.jit.load(str(path))(torch.tensor(rdfs)).numpy()
    core = nanochart.CV(path).values(np.stack([a.positions for a in frames]))
    np.testing.assert_allclose(reloaded, eager, rtol=0, atol=1e-10)
    np.testing.assert_allclose(core, eager, rtol=0, atol=1e-10)
    meta = nanochart.read_metadata(path)
    assert meta["training"]["validation_loss"] == pytest.approx(trained.best_loss_)
    assert meta["rdf"]["r_max"] == settings.r_max


def test_reloaded_model_reproduces_the_chart(tmp_path, motif_data, trained) -> None:
    frames, _, settings = motif_data
    data = tmp_path / "data.extxyz"
    write(data, frames)
    path = trained.export(tmp_path / "m.pt", rdf=settings.as_dict(), elements=["Au"], n_atoms=147)
    result = chart(path, data, tmp_path / "chart", n_nearest=5, progress=False)
    # Compare on the frames as read back (extxyz keeps 1e-8 angstrom).
    expected = trained.transform(featurize(read_structures(data), settings, progress=False))
    np.testing.assert_allclose(result.cvs, expected, rtol=0, atol=1e-10)
    families, _ = find_families(expected, result.scan.chosen)
    np.testing.assert_array_equal(result.families, families)
    with open(result.outputs["chart_csv"]) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 240 and set(rows[0]) == {"index", "cv1", "cv2", "cv3", "family", "label"}
    assert result.scan.n_clusters.max() > result.scan.n_clusters.min() >= 1
    for k in range(len(result.centroids)):
        nearest = read_structures(tmp_path / "chart" / f"family_{k}_nearest.extxyz")
        assert 1 <= len(nearest) <= 5 and all(a.info["family"] == k for a in nearest)
    for png in ("chart_families.png", "chart_labels.png", "plateau.png"):
        assert (tmp_path / "chart" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_repeats_an_uninterrupted_run(tmp_path, motif_data) -> None:
    _, rdfs, _ = motif_data
    settings = {"epochs": 6, "patience": 100, "seed": 3, "progress": False, "channels": (4, 8, 8, 8, 8)}
    whole = ChartAutoencoder(**settings).fit(rdfs)
    checkpoint = tmp_path / "ck.pt"
    ChartAutoencoder(**{**settings, "epochs": 4}, checkpoint=checkpoint).fit(rdfs)
    resumed = ChartAutoencoder(**settings, checkpoint=checkpoint).fit(rdfs, resume=True)
    np.testing.assert_allclose(resumed.history_["train"], whole.history_["train"], rtol=1e-10)
    np.testing.assert_allclose(resumed.history_["validation"], whole.history_["validation"], rtol=1e-10)
    np.testing.assert_allclose(resumed.transform(rdfs), whole.transform(rdfs), rtol=0, atol=1e-8)
    loaded = ChartAutoencoder.from_checkpoint(checkpoint)
    np.testing.assert_allclose(loaded.transform(rdfs), resumed.transform(rdfs), rtol=0, atol=1e-12)


def test_weight_decay_shrinks_the_weights_and_resumes(tmp_path, motif_data) -> None:
    """weight_decay > 0 trains with AdamW: the same run's convolution and linear weights end
    smaller than with plain Adam, the setting is in the summary (so in the model card), and a
    resumed run repeats an uninterrupted one (the optimizer's state comes back with it)."""
    _, rdfs, _ = motif_data
    settings = {"epochs": 6, "patience": 100, "seed": 3, "progress": False, "channels": (4, 8, 8, 8, 8)}

    def squared_weights(model: ChartAutoencoder) -> float:
        return sum(
            float((p.detach() ** 2).sum()) for p in model.autoencoder_.encoder.parameters() if p.dim() > 1
        )

    plain = ChartAutoencoder(**settings).fit(rdfs)
    decayed = ChartAutoencoder(**settings, weight_decay=20.0).fit(rdfs)
    assert squared_weights(decayed) < 0.7 * squared_weights(plain)
    assert decayed.summary()["settings"]["weight_decay"] == 20.0
    assert plain.summary()["settings"]["weight_decay"] == 0.0

    checkpoint = tmp_path / "ck.pt"
    ChartAutoencoder(**{**settings, "epochs": 4}, weight_decay=20.0, checkpoint=checkpoint).fit(rdfs)
    resumed = ChartAutoencoder(**settings, weight_decay=20.0, checkpoint=checkpoint).fit(rdfs, resume=True)
    np.testing.assert_allclose(resumed.history_["train"], decayed.history_["train"], rtol=1e-10)
    np.testing.assert_allclose(resumed.transform(rdfs), decayed.transform(rdfs), rtol=0, atol=1e-8)
    with pytest.raises(ValueError, match="weight_decay must be >= 0, got -1"):
        ChartAutoencoder(epochs=1, progress=False, weight_decay=-1.0).fit(rdfs)


def test_featurisation_is_the_core_rdf_and_is_cached(tmp_path, motif_data) -> None:
    frames, rdfs, settings = motif_data
    one = nanochart.rdf(
        frames[7].positions, **{k: getattr(settings, k) for k in ("r_min", "r_max", "n_bins", "sigma")}
    )
    np.testing.assert_allclose(rdfs[7], one, rtol=0, atol=1e-14 * one.max())
    largest = max(np.ptp(a.positions, axis=0).max() for a in frames)
    assert settings.r_max >= largest  # no pair falls off the grid
    data = tmp_path / "d.extxyz"
    write(data, frames[:20])
    first, chosen, _ = featurize_file(data, cache_dir=tmp_path / "cache", progress=False)
    cached = list((tmp_path / "cache").glob("d-*.npy"))
    assert len(cached) == 1
    again, _, _ = featurize_file(data, chosen, cache_dir=tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(again, first)
    other = RdfSettings(0.0, chosen.r_max, 100, 0.15)
    featurize_file(data, other, cache_dir=tmp_path / "cache", progress=False)
    assert len(list((tmp_path / "cache").glob("d-*.npy"))) == 2  # keyed by settings


def test_bad_data_sets(tmp_path) -> None:
    empty = tmp_path / "empty.extxyz"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"cannot read .*empty\.extxyz as a structure file .*Empty file"):
        read_structures(empty)
    garbage = tmp_path / "garbage.xyz"
    garbage.write_text("this is\nnot a structure\n")
    with pytest.raises(ValueError, match=r"cannot read .* as a structure file"):
        read_structures(garbage)
    with pytest.raises(FileNotFoundError, match="no data set file"):
        read_structures(tmp_path / "missing.extxyz")
    mixed = tmp_path / "mixed.extxyz"
    write(mixed, [Icosahedron("Au", 4), Icosahedron("Au", 3)])
    with pytest.raises(ValueError, match="mixes cluster sizes: frame 0 has 147 atoms, frame 1 has 55"):
        read_structures(mixed)
    nan = Icosahedron("Au", 3)
    nan.positions[4, 2] = np.nan
    with pytest.raises(ValueError, match="frame 0, atom 4 has a NaN"):
        featurize([nan], RdfSettings(**RDF_SETTINGS), progress=False)


def test_bad_training_input(motif_data) -> None:
    _, rdfs, _ = motif_data
    with pytest.raises(ValueError, match=r"n_cvs \(the latent size\) must be at least 1, got 0"):
        ChartAutoencoder(n_cvs=0, epochs=1, progress=False).fit(rdfs)
    with pytest.raises(ValueError, match="NaN"):
        ChartAutoencoder(epochs=1, progress=False).fit(np.full((10, 200), np.nan))
    with pytest.raises(ValueError, match="shape"):
        ChartAutoencoder(epochs=1, progress=False).fit(rdfs[0])


def test_projection_writes_colvar_with_families(tmp_path, motif_data, trained) -> None:
    frames, _, settings = motif_data
    traj = [atoms.copy() for atoms in frames[::12]]
    for i, atoms in enumerate(traj):
        atoms.info["time"] = 0.25 * i
    write(tmp_path / "traj.extxyz", traj)
    write(tmp_path / "data.extxyz", frames)
    model = trained.export(tmp_path / "m.pt", rdf=settings.as_dict(), elements=["Au"], n_atoms=147)
    charted = chart(model, tmp_path / "data.extxyz", tmp_path / "chart", progress=False)
    result = project(
        model,
        tmp_path / "traj.extxyz",
        tmp_path / "proj",
        chart_dir=tmp_path / "chart",
        window=3,
        progress=False,
    )
    lines = (tmp_path / "proj" / "COLVAR").read_text().splitlines()
    assert lines[0] == "#! FIELDS time cv1 cv2 cv3 family"
    table = np.loadtxt(tmp_path / "proj" / "COLVAR")
    np.testing.assert_allclose(table[:, 0], 0.25 * np.arange(len(traj)))
    np.testing.assert_allclose(table[:, 1:4], result.cvs, atol=1e-9)
    expected_families = charted.families[::12]
    np.testing.assert_array_equal(table[:, 4].astype(int), expected_families)
    assert frame_times([*traj[:2], frames[0]], 2.0).tolist() == [0.0, 2.0, 4.0]  # no time on all frames


def test_quench_relaxes_a_distorted_cluster() -> None:
    from ase.calculators.emt import EMT

    atoms = Icosahedron("Cu", 3)
    atoms.positions += np.random.default_rng(0).normal(scale=0.1, size=atoms.positions.shape)
    (relaxed,) = quench([atoms], fmax=0.05, progress=False)
    relaxed.calc = EMT()
    assert np.abs(relaxed.get_forces()).max() < 0.05
    atoms.calc = EMT()
    assert relaxed.get_potential_energy() < atoms.get_potential_energy()


def test_bandwidth_scan_finds_separated_groups() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0], [5, 0, 0], [0, 5, 0], [0, 0, 5]], dtype=float)
    points = np.concatenate([c + 0.3 * rng.normal(size=(100, 3)) for c in centres])
    scan = scan_bandwidths(points)
    families, centroids = find_families(points, scan.chosen)
    assert len(centroids) == 4
    assert sorted(np.bincount(families)) == [100, 100, 100, 100]


@pytest.mark.slow
def test_command_line_end_to_end(tmp_path, motif_data, capsys, monkeypatch) -> None:
    from nanochart.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    frames, _, _ = motif_data
    write(tmp_path / "data.extxyz", frames[::4])
    write(tmp_path / "traj.extxyz", frames[::20])
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "data.extxyz"), "--out", str(run), "--epochs", "8"]) == 0
    assert (
        (run / "checkpoint.pt").is_file()
        and (run / "loss.png").is_file()
        and (run / "training.json").is_file()
    )
    assert (
        main(["train", str(tmp_path / "data.extxyz"), "--out", str(run), "--epochs", "10", "--resume"]) == 0
    )
    assert (
        main(["export", str(run / "checkpoint.pt"), "--out", str(tmp_path / "m.pt"), "--cv-names", "a,b,c"])
        == 0
    )
    assert nanochart.CV(tmp_path / "m.pt").cv_names == ["a", "b", "c"]
    supervised = tmp_path / "supervised"
    assert (
        main(
            [
                "train",
                str(tmp_path / "data.extxyz"),
                "--out",
                str(supervised),
                "--epochs",
                "3",
                "--supervision",
                "1",
            ]
        )
        == 0
    )
    assert json.loads((supervised / "training.json").read_text())["settings"]["supervision"] == 1.0
    assert "validation_cross_entropy" in json.loads((supervised / "training.json").read_text())
    assert (
        main(["chart", str(tmp_path / "m.pt"), str(tmp_path / "data.extxyz"), "--out", str(tmp_path / "c")])
        == 0
    )
    assert (
        main(
            [
                "project",
                str(tmp_path / "m.pt"),
                str(tmp_path / "traj.extxyz"),
                "--out",
                str(tmp_path / "p"),
                "--chart",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "validation loss" in out and "families" in out and "COLVAR" in out
    assert list((tmp_path / "cache" / "nanochart").glob("data-*.npy"))  # RDFs cached where told
    # Errors are one line on stderr and exit status 2, not a traceback.
    assert (
        main(
            ["chart", str(tmp_path / "nope.pt"), str(tmp_path / "data.extxyz"), "--out", str(tmp_path / "x")]
        )
        == 2
    )
    assert "nanochart chart: error: cannot open model file" in capsys.readouterr().err
    assert (
        main(
            [
                "project",
                str(tmp_path / "m.pt"),
                str(tmp_path / "missing.extxyz"),
                "--out",
                str(tmp_path / "y"),
            ]
        )
        == 2
    )
    assert "no data set file" in capsys.readouterr().err


def quench_and_thermal(per_motif: int, seed: int) -> tuple[list, list]:
    """Stand-ins for quenched structures (motifs, each with its own strain and small distortions)
    and for thermal snapshots of them (0.1-0.2 angstrom Gaussian displacements on top)."""
    rng = np.random.default_rng(seed)
    quenched, thermal = [], []
    for label, build in MOTIFS.items():
        for _ in range(per_motif):
            atoms = build()
            atoms.positions *= rng.uniform(0.98, 1.02)
            atoms.positions += rng.normal(scale=0.03, size=atoms.positions.shape)
            atoms.info["label"] = label
            hot = atoms.copy()
            hot.positions += rng.normal(scale=rng.uniform(0.1, 0.2), size=atoms.positions.shape)
            quenched.append(atoms)
            thermal.append(hot)
    return quenched, thermal


def test_denoising_puts_thermal_structures_where_their_quench_is() -> None:
    quenched, thermal = quench_and_thermal(60, seed=3)
    test_quenched, test_thermal = quench_and_thermal(15, seed=4)
    settings = choose_settings(quenched + thermal)
    q, t = featurize(quenched, settings, progress=False), featurize(thermal, settings, progress=False)
    n = len(quenched)
    inputs, targets = np.concatenate([q, t]), np.concatenate([q, q])
    groups = np.concatenate([np.arange(n), np.arange(n)])
    options = {"epochs": 40, "patience": 40, "seed": 0, "progress": False}
    denoising = ChartAutoencoder(**options).fit(inputs, targets, groups=groups)
    plain = ChartAutoencoder(**options).fit(q)
    # A structure and its thermal snapshot never sit on both sides of the validation split.
    assert not set(groups[denoising.train_indices_]) & set(groups[denoising.validation_indices_])

    labels = np.array([atoms.info["label"] for atoms in quenched])
    test_labels = np.array([atoms.info["label"] for atoms in test_quenched])
    tq = featurize(test_quenched, settings, progress=False)
    tt = featurize(test_thermal, settings, progress=False)
    ratios = {}
    for name, model in (("denoising", denoising), ("plain", plain)):
        chart_cvs = model.transform(q)
        centroids = np.array([chart_cvs[labels == name].mean(axis=0) for name in MOTIFS])
        spacing = np.median(
            [np.linalg.norm(a - b) for i, a in enumerate(centroids) for b in centroids[i + 1 :]]
        )
        shift = np.median(np.linalg.norm(model.transform(tt) - model.transform(tq), axis=1))
        ratios[name] = shift / spacing
        knn = KNeighborsClassifier(n_neighbors=5).fit(chart_cvs, labels)
        if name == "denoising":
            assert knn.score(model.transform(tt), test_labels) >= 0.95, "thermal snapshots labelled"
            assert knn.score(model.transform(tq), test_labels) >= 0.95, "quenched structures labelled"
    print(f"thermal-to-quench distance over centroid spacing: {ratios}")
    assert ratios["denoising"] < 0.25
    assert ratios["denoising"] < 0.5 * ratios["plain"]


def _shift_and_spacing(model, q, labels, tq, tt) -> tuple[float, float]:
    chart_cvs = model.transform(q)
    centroids = np.array([chart_cvs[labels == name].mean(axis=0) for name in MOTIFS])
    spacing = float(
        np.median([np.linalg.norm(a - b) for i, a in enumerate(centroids) for b in centroids[i + 1 :]])
    )
    return float(np.median(np.linalg.norm(model.transform(tt) - model.transform(tq), axis=1))), spacing


def test_consistency_pulls_thermal_codes_onto_their_quench_without_shrinking_the_chart() -> None:
    quenched, thermal = quench_and_thermal(40, seed=7)
    test_quenched, test_thermal = quench_and_thermal(10, seed=8)
    settings = choose_settings(quenched + thermal)
    q, t = featurize(quenched, settings, progress=False), featurize(thermal, settings, progress=False)
    tq = featurize(test_quenched, settings, progress=False)
    tt = featurize(test_thermal, settings, progress=False)
    n = len(quenched)
    inputs, targets = np.concatenate([q, t]), np.concatenate([q, q])
    groups = np.concatenate([np.arange(n), np.arange(n)])
    labels = np.array([atoms.info["label"] for atoms in quenched])
    options = {"epochs": 30, "patience": 30, "progress": False}
    held_out, pulled, spacings = {}, {}, {}
    for weight in (0.0, 1.0):
        for seed in (0, 1):
            model = ChartAutoencoder(consistency=weight, seed=seed, **options)
            model.fit(inputs, targets, groups=groups, anchors=groups)
            shift, spacing = _shift_and_spacing(model, q, labels, tq, tt)
            held_out[weight, seed], spacings[weight, seed] = shift / spacing, spacing
            # The term itself on the training pairs: snapshot-to-quench distance over code spread.
            mine = model.train_indices_[model.train_indices_ < n]
            zq, zt = model.transform(q[mine]), model.transform(t[mine])
            pulled[weight, seed] = ((zt - zq) ** 2).sum(axis=1).mean() / zq.var(axis=0).sum()
    print(f"held-out shift ratio {held_out}\npull term on training pairs {pulled}\nspacing {spacings}")
    for seed in (0, 1):
        assert pulled[1.0, seed] < 0.8 * pulled[0.0, seed], "the term lowers what it measures"
        assert spacings[1.0, seed] > 0.5 * spacings[0.0, seed], "the chart keeps its scale"
    mean_ratio = {w: np.mean([held_out[w, seed] for seed in (0, 1)]) for w in (0.0, 1.0)}
    assert mean_ratio[1.0] < 0.9 * mean_ratio[0.0], "held-out snapshots land closer to their quench"
    options["seed"] = 0
    # With the term off, anchors change nothing; without anchors, the default weight changes nothing.
    plain = ChartAutoencoder(consistency=0.0, **options).fit(inputs, targets, groups=groups)
    off = ChartAutoencoder(consistency=0.0, **options).fit(inputs, targets, groups=groups, anchors=groups)
    unanchored = ChartAutoencoder(**options).fit(inputs, targets, groups=groups)
    np.testing.assert_allclose(plain.transform(tq), off.transform(tq))
    np.testing.assert_allclose(plain.transform(tq), unanchored.transform(tq))
    with pytest.raises(ValueError, match="same group"):
        ChartAutoencoder(consistency=1.0, **options).fit(
            inputs, targets, groups=groups, anchors=groups[::-1].copy()
        )
    with pytest.raises(ValueError, match="one row index per sample"):
        ChartAutoencoder(consistency=1.0, **options).fit(inputs, targets, groups=groups, anchors=groups[:5])
    with pytest.raises(ValueError, match="consistency must be"):
        ChartAutoencoder(consistency=-1.0, **options).fit(inputs, targets, groups=groups)


def test_training_data_pairs_thermal_snapshots_with_their_quench(tmp_path) -> None:
    from nanochart.data.structures import thermal_frames
    from nanochart.model.features import training_data

    quenched, thermal = quench_and_thermal(3, seed=5)
    for k, (atoms, hot) in enumerate(zip(quenched, thermal, strict=True)):
        atoms.new_array("thermal_1", hot.positions)
        if k % 2:  # a second snapshot on every other structure
            atoms.new_array("thermal_2", hot.positions + 0.05)
    path = tmp_path / "pairs.extxyz"
    write(path, quenched, format="extxyz")
    snapshots, owners = thermal_frames(read_structures(path))
    assert len(snapshots) == 9 + 4 and owners.tolist() == sorted([*range(9), 1, 3, 5, 7])
    data = training_data(path, cache_dir=tmp_path / "cache")
    assert data.n_thermal == 13 and data.inputs.shape == data.targets.shape == (22, data.settings.n_bins)
    np.testing.assert_array_equal(data.targets[9:], data.inputs[owners])  # each snapshot -> its quench
    np.testing.assert_array_equal(data.targets[:9], data.inputs[:9])
    assert data.groups.tolist() == [*range(9), *owners.tolist()]
    np.testing.assert_array_equal(data.inputs[data.anchors], data.targets)  # anchors are the quenches
    np.testing.assert_allclose(data.inputs[9], featurize(snapshots[:1], data.settings, progress=False)[0])
    np.testing.assert_allclose(snapshots[0].positions, thermal[0].positions, atol=1e-7)
    plain = training_data(path, target="input", cache_dir=tmp_path / "cache")
    assert plain.n_thermal == 0 and plain.inputs.shape == (9, data.settings.n_bins)
    write(tmp_path / "none.extxyz", quench_and_thermal(2, seed=6)[0], format="extxyz")
    assert training_data(tmp_path / "none.extxyz", cache_dir=tmp_path / "cache").n_thermal == 0
    with pytest.raises(ValueError, match="no thermal snapshots"):
        training_data(tmp_path / "none.extxyz", target="quench", cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="targets must have"):
        ChartAutoencoder(progress=False).fit(data.inputs, data.targets[:5])


def test_chart_reports_thermal_accuracy_per_temperature(tmp_path, motif_data, trained, capsys) -> None:
    import json

    from nanochart.cli import main

    frames, _, settings = motif_data
    model = trained.export(tmp_path / "m.pt", rdf=settings.as_dict(), elements=["Au"], n_atoms=147)
    write(tmp_path / "data.extxyz", frames)
    quenched, thermal = quench_and_thermal(4, seed=7)
    for k, (atoms, hot) in enumerate(zip(quenched, thermal, strict=True)):
        atoms.info["temperature"] = 300.0 if k % 2 else 450.0
        atoms.new_array("thermal_1", hot.positions)
    write(tmp_path / "held.extxyz", quenched)
    args = ["chart", str(model), str(tmp_path / "data.extxyz"), "--out", str(tmp_path / "c")]
    assert main([*args, "--held-out", str(tmp_path / "held.extxyz")]) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "c" / "held_out.json").read_text())["thermal"]
    assert report["thermal_snapshots_per_temperature_K"] == {"300.0": 6, "450.0": 6}
    # The distances, recomputed here from the model's CVs.
    cv = nanochart.CV(model)
    held = read_structures(tmp_path / "held.extxyz")
    shift = np.linalg.norm(
        cv.values(np.stack([a.arrays["thermal_1"] for a in held]))
        - cv.values(np.stack([a.positions for a in held])),
        axis=1,
    )
    assert report["median_thermal_to_quench_distance"] == pytest.approx(np.median(shift))
    chart_cvs = cv.values(np.stack([a.positions for a in frames]))
    labels = np.array([a.info["label"] for a in frames])
    centroids = [chart_cvs[labels == name].mean(axis=0) for name in sorted(MOTIFS)]
    spacing = np.median([np.linalg.norm(a - b) for i, a in enumerate(centroids) for b in centroids[i + 1 :]])
    assert report["shift_ratio"] == pytest.approx(np.median(shift) / spacing)
    for accuracy in report["thermal_accuracy_per_temperature_K"].values():
        assert 0.0 <= accuracy <= 1.0
    assert "thermal    300 K: 6 thermal snapshots" in printed and "shift      thermal snapshot" in printed


def test_evaluate_on_a_chart_folder_matches_chart_held_out(tmp_path, motif_data, trained, capsys) -> None:
    """`nanochart evaluate` scores a labelled set on a chart written before (no training data at
    hand): the same figures as `chart --held-out`, plus the accuracy per start motif, recomputed
    here with scikit-learn from the chart's CSV."""
    import json

    from nanochart.chart.charting import read_chart_cvs, read_chart_labels
    from nanochart.cli import main

    frames, _, settings = motif_data
    model = trained.export(tmp_path / "m.pt", rdf=settings.as_dict(), elements=["Au"], n_atoms=147)
    write(tmp_path / "data.extxyz", frames)
    quenched, thermal = quench_and_thermal(4, seed=11)
    for k, (atoms, hot) in enumerate(zip(quenched, thermal, strict=True)):
        atoms.info["temperature"] = 300.0
        atoms.info["motif"] = "even" if k % 2 == 0 else "odd"
        atoms.new_array("thermal_1", hot.positions)
    write(tmp_path / "held.extxyz", quenched)
    chart_args = ["chart", str(model), str(tmp_path / "data.extxyz"), "--out", str(tmp_path / "c")]
    assert main([*chart_args, "--held-out", str(tmp_path / "held.extxyz")]) == 0
    args = ["evaluate", str(model), str(tmp_path / "held.extxyz"), "--chart", str(tmp_path / "c")]
    assert main([*args, "--out", str(tmp_path / "e")]) == 0
    printed = capsys.readouterr().out
    assert "motif      even:" in printed and "thermal    300 K" in printed
    charted = json.loads((tmp_path / "c" / "held_out.json").read_text())
    evaluated = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    assert evaluated["accuracy"] == pytest.approx(charted["accuracy"])
    assert evaluated["thermal"]["shift_ratio"] == pytest.approx(charted["thermal"]["shift_ratio"], rel=1e-6)
    cv = nanochart.CV(model)
    knn = KNeighborsClassifier(n_neighbors=5).fit(
        read_chart_cvs(tmp_path / "c"), read_chart_labels(tmp_path / "c")
    )
    right = knn.predict(cv.values(np.stack([a.positions for a in quenched]))) == [
        a.info["label"] for a in quenched
    ]
    for name, parity in (("even", 0), ("odd", 1)):
        assert evaluated["accuracy_per_motif"][name] == {
            "accuracy": pytest.approx(right[parity::2].mean()),
            "n": 6,
        }
    assert (tmp_path / "e" / "evaluation_confusion.png").stat().st_size > 0
    # Structures without labels, a missing file, a missing chart: refused with what to do.
    unlabelled = [a.copy() for a in quenched]
    for atoms in unlabelled:
        del atoms.info["label"]
    write(tmp_path / "unlabelled.extxyz", unlabelled)
    assert (
        main([*args[:2], str(tmp_path / "unlabelled.extxyz"), *args[3:], "--out", str(tmp_path / "x")]) == 2
    )
    assert "has no labels" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                str(model),
                str(tmp_path / "missing.extxyz"),
                "--chart",
                str(tmp_path / "c"),
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "no data set file" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                str(model),
                str(tmp_path / "held.extxyz"),
                "--chart",
                str(tmp_path / "none"),
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "no chart.csv" in capsys.readouterr().err


def test_clustered_standard_error() -> None:
    """Independent entries: the binomial error; whole groups alike: the error of the group means."""
    from nanochart.chart.charting import clustered_standard_error

    rng = np.random.default_rng(3)
    right = rng.random(200) < 0.7
    p = right.mean()
    assert clustered_standard_error(right, np.arange(200)) == pytest.approx(np.sqrt(p * (1 - p) / 199))
    per_group = rng.random(20) < 0.5
    alike = np.repeat(per_group, 10)
    expected = np.std(per_group.astype(float), ddof=1) / np.sqrt(20)
    assert clustered_standard_error(alike, np.repeat(np.arange(20), 10)) == pytest.approx(expected)


def test_supervision_trains_a_head_on_the_codes_and_resumes(tmp_path, motif_data) -> None:
    frames, rdfs, _ = motif_data
    labels = np.array([atoms.info["label"] for atoms in frames])
    settings = {
        "epochs": 20,
        "patience": 100,
        "batch_size": 16,
        "seed": 3,
        "progress": False,
        "channels": (4, 8, 8, 8, 8),
    }
    model = ChartAutoencoder(**settings, supervision=1.0).fit(rdfs, labels=labels)
    assert list(model.classes_) == ["Dh", "Ih", "fcc"]
    # The head learns the labels from the 3 codes: cross-entropy well below chance (ln 3 = 1.10)
    # on the validation structures, which it never trained on.
    entropy = model.history_["validation_cross_entropy"]
    assert len(entropy) == len(model.history_["validation"]) == 20
    assert entropy[model.best_epoch_] < 0.5 * np.log(3), entropy
    with torch.no_grad():
        logits = model.head_(torch.tensor(model.transform(rdfs), dtype=torch.float32))
    held = model.validation_indices_
    assert (model.classes_[logits.argmax(1).numpy()][held] == labels[held]).mean() >= 0.9
    # Early stopping watches reconstruction + weight x cross-entropy; the summary reports both.
    best = model.best_epoch_
    assert model.best_loss_ == pytest.approx(model.history_["validation"][best] + entropy[best])
    summary = model.summary()
    assert summary["validation_loss"] == model.history_["validation"][best]
    assert summary["validation_cross_entropy"] == entropy[best]
    assert summary["settings"]["supervision"] == 1.0
    # A resumed run (head and label names from the checkpoint) repeats an uninterrupted one.
    checkpoint = tmp_path / "ck.pt"
    ChartAutoencoder(**{**settings, "epochs": 12}, supervision=1.0, checkpoint=checkpoint).fit(
        rdfs, labels=labels
    )
    resumed = ChartAutoencoder(**settings, supervision=1.0, checkpoint=checkpoint).fit(
        rdfs, labels=labels, resume=True
    )
    np.testing.assert_allclose(resumed.history_["train"], model.history_["train"], rtol=1e-10)
    np.testing.assert_allclose(
        resumed.history_["validation_cross_entropy"], model.history_["validation_cross_entropy"], rtol=1e-10
    )
    np.testing.assert_allclose(resumed.transform(rdfs), model.transform(rdfs), rtol=0, atol=1e-8)
    with pytest.raises(ValueError, match="labels"):
        ChartAutoencoder(**settings, supervision=1.0, checkpoint=checkpoint).fit(
            rdfs, labels=np.where(labels == "fcc", "twin", labels), resume=True
        )


def test_supervision_off_ignores_labels_and_bad_labels_are_refused(motif_data) -> None:
    frames, rdfs, _ = motif_data
    labels = np.array([atoms.info["label"] for atoms in frames])
    settings = {"epochs": 3, "patience": 100, "seed": 2, "progress": False, "channels": (4, 8, 8, 8, 8)}
    plain = ChartAutoencoder(**settings).fit(rdfs)
    ignored = ChartAutoencoder(**settings).fit(rdfs, labels=labels)
    np.testing.assert_array_equal(plain.transform(rdfs), ignored.transform(rdfs))
    assert plain.head_ is None and "validation_cross_entropy" not in plain.summary()
    supervised = {**settings, "supervision": 0.5}
    with pytest.raises(ValueError, match="needs each sample's label"):
        ChartAutoencoder(**supervised).fit(rdfs)
    with pytest.raises(ValueError, match="one entry per sample"):
        ChartAutoencoder(**supervised).fit(rdfs, labels=labels[:-1])
    with pytest.raises(ValueError, match="at least two labels"):
        ChartAutoencoder(**supervised).fit(rdfs, labels=np.full(len(rdfs), "Ih"))
    with pytest.raises(ValueError, match="supervision must be"):
        ChartAutoencoder(**{**settings, "supervision": -1.0}).fit(rdfs, labels=labels)


def test_within_label_share_is_the_variance_ratio() -> None:
    """The compactness term: within-label over total variance, as numpy computes it; blind to the
    chart's scale and position; 0 for labels on points, about 1 for labels that do not matter."""
    rng = np.random.default_rng(5)
    codes = rng.normal(size=(300, 3)) + np.repeat(np.eye(3) * 4.0, 100, axis=0)
    labels = np.repeat(np.arange(3), 100)
    means = np.stack([codes[labels == k].mean(axis=0) for k in range(3)])
    expected = ((codes - means[labels]) ** 2).sum() / ((codes - codes.mean(axis=0)) ** 2).sum()
    share = float(within_label_share(torch.tensor(codes), torch.tensor(labels)))
    assert share == pytest.approx(expected, rel=1e-12)
    assert 0.1 < share < 0.3  # three unit clouds 4 * sqrt(2) apart
    moved = float(within_label_share(torch.tensor(7.0 * codes - 3.0), torch.tensor(labels)))
    assert moved == pytest.approx(share, rel=1e-12)
    assert float(within_label_share(torch.tensor(means[labels]), torch.tensor(labels))) == pytest.approx(
        0.0, abs=1e-15
    )
    shuffled = float(within_label_share(torch.tensor(codes), torch.tensor(rng.permutation(labels))))
    assert shuffled > 0.95


def test_compactness_gathers_labels_without_a_head(motif_data) -> None:
    """compactness > 0 lowers the within-label share of the codes of validation structures it never
    trained on, against the same run without it; it needs labels, trains no classifier head, and
    its weight is in the summary."""
    frames, rdfs, _ = motif_data
    labels = np.array([atoms.info["label"] for atoms in frames])
    settings = {"epochs": 15, "patience": 100, "batch_size": 16, "seed": 4, "progress": False}
    plain = ChartAutoencoder(**settings).fit(rdfs, labels=labels)
    compact = ChartAutoencoder(**settings, compactness=3.0).fit(rdfs, labels=labels)
    held = compact.validation_indices_
    codes = np.unique(labels, return_inverse=True)[1]

    def share(model: ChartAutoencoder) -> float:
        return float(within_label_share(torch.tensor(model.transform(rdfs[held])), torch.tensor(codes[held])))

    assert share(compact) < 0.5 * share(plain), (share(compact), share(plain))
    assert compact.head_ is None and "validation_cross_entropy" not in compact.summary()
    assert compact.summary()["settings"]["compactness"] == 3.0
    with pytest.raises(ValueError, match="needs each sample's label"):
        ChartAutoencoder(**settings, compactness=1.0).fit(rdfs)
    with pytest.raises(ValueError, match="compactness must be >= 0, got -1"):
        ChartAutoencoder(**settings, compactness=-1.0).fit(rdfs, labels=labels)
