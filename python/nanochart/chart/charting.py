"""Charting a data set: encode every structure, find structural families by mean shift, name them.

The paper's rule for the mean-shift bandwidth: scan it, and take the middle of the widest
plateau in the number of clusters (the count that is stable over the largest range of
bandwidths). A bandwidth may be given instead, or a number of families (the bandwidth of the scan
that gives it, refined by bisection; ``bandwidth_for_families``), for finer families than the
plateau's. Families are numbered by size, largest first, and named from their representatives
(``chart.families``).
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

import numpy as np
from ase import Atoms
from ase.io import write
from scipy.spatial.distance import pdist
from sklearn.cluster import MeanShift

from .. import plots
from ..core.cv import CV
from ..core.novelty import NoveltyScores
from ..data.structures import read_structures, structure_labels, thermal_frames
from ..model.features import encode_structures
from .families import DEFAULT_REPRESENTATIVES, FamilyDescription, describe_families, write_families
from .interactive import CHEMISCOPE_FILE, ChemiscopeFile, write_chemiscope

#: Mean shift costs O(n^2) per iteration; the scan and the fit use at most this many points, and
#: every structure is then assigned to the nearest family centroid.
MAX_CLUSTERING_POINTS = 4000


@dataclass
class BandwidthScan:
    """Number of mean-shift clusters per bandwidth, the bandwidth used and how it was chosen."""

    bandwidths: np.ndarray
    n_clusters: np.ndarray
    chosen: float
    rule: str = "middle of the widest plateau"


@dataclass
class Separation:
    """How well the chart separates labelled classes: a k-NN classifier fitted on the charted
    structures' CVs predicts the labels of held-out structures."""

    k: int
    accuracy: float
    classes: list[str]
    confusion: np.ndarray  # rows: true label, columns: predicted, in the order of `classes`
    n_fit: int
    n_held_out: int
    predicted: list[str] = field(default_factory=list)  # each held-out structure's predicted label

    def recall(self) -> dict[str, float]:
        """Share of each label's held-out structures predicted right (labels with none left out)."""
        totals = self.confusion.sum(axis=1)
        return {c: float(self.confusion[i, i] / totals[i]) for i, c in enumerate(self.classes) if totals[i]}

    def as_dict(self) -> dict:
        return {
            "k": self.k,
            "accuracy": self.accuracy,
            "recall_per_label": self.recall(),
            "classes": self.classes,
            "confusion_true_by_predicted": self.confusion.tolist(),
            "n_fit": self.n_fit,
            "n_held_out": self.n_held_out,
        }


@dataclass
class ThermalSeparation:
    """Whether the chart holds for the structures MD makes: held-out thermal snapshots against the
    structures they quench to. Per temperature (K): the k-NN accuracy of the thermal snapshots
    (true label: their quench's), and of the quenches themselves; the shift ratio is the median
    distance between a thermal snapshot's CVs and its quench's over the median distance between
    the label centroids of the charted data."""

    k: int
    thermal_accuracy: dict[float, float]
    quenched_accuracy: dict[float, float]
    n_thermal: dict[float, int]
    median_shift: float
    centroid_spacing: float

    @property
    def shift_ratio(self) -> float:
        return self.median_shift / self.centroid_spacing

    def as_dict(self) -> dict:
        return {
            "k": self.k,
            "thermal_accuracy_per_temperature_K": self.thermal_accuracy,
            "quenched_accuracy_per_temperature_K": self.quenched_accuracy,
            "thermal_snapshots_per_temperature_K": self.n_thermal,
            "median_thermal_to_quench_distance": self.median_shift,
            "median_label_centroid_distance": self.centroid_spacing,
            "shift_ratio": self.shift_ratio,
        }


@dataclass
class Chart:
    """A charted data set: CVs, families and where everything was written."""

    cvs: np.ndarray
    families: np.ndarray
    centroids: np.ndarray
    scan: BandwidthScan
    labels: list[str] | None
    separation: Separation | None = None
    thermal: ThermalSeparation | None = None
    descriptions: list[FamilyDescription] | None = None
    chemiscope: ChemiscopeFile | None = None
    notes: list[str] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)
    novelty: NoveltyScores | None = None  # of the charted structures, when the model has a reference


def _sample(cvs: np.ndarray, seed: int) -> np.ndarray:
    if len(cvs) <= MAX_CLUSTERING_POINTS:
        return cvs
    return cvs[np.random.default_rng(seed).choice(len(cvs), MAX_CLUSTERING_POINTS, replace=False)]


def _mean_shift(points: np.ndarray, bandwidth: float) -> MeanShift:
    with warnings.catch_warnings():
        # Small bandwidths make scikit-learn fall back from binned seeds to every point: expected.
        warnings.filterwarnings("ignore", message="Binning data failed", category=UserWarning)
        return MeanShift(bandwidth=bandwidth, bin_seeding=True).fit(points)


def scan_bandwidths(cvs: np.ndarray, bandwidths: np.ndarray | None = None, seed: int = 0) -> BandwidthScan:
    """Number of mean-shift clusters for each bandwidth, and the bandwidth the plateau rule picks."""
    sample = _sample(cvs, seed)
    if bandwidths is None:
        spread = float(np.sqrt(sample.var(axis=0).sum())) or 1.0
        bandwidths = np.geomspace(0.02, 1.5, 24) * spread
    counts = np.array([len(_mean_shift(sample, b).cluster_centers_) for b in bandwidths])
    return BandwidthScan(np.asarray(bandwidths), counts, _plateau_middle(np.asarray(bandwidths), counts))


def _plateau_middle(bandwidths: np.ndarray, counts: np.ndarray) -> float:
    """Geometric middle of the longest run of equal counts (runs of one cluster only if no other);
    among runs as long, the one with fewer clusters: where the count falls at every step (no
    plateau), that is the coarsest split, not one family per point."""
    runs, start = [], 0
    for i in range(1, len(counts) + 1):
        if i == len(counts) or counts[i] != counts[start]:
            runs.append((start, i - 1))
            start = i
    several = [r for r in runs if counts[r[0]] > 1] or runs
    first, last = max(several, key=lambda r: (r[1] - r[0], -counts[r[0]]))
    return float(np.sqrt(bandwidths[first] * bandwidths[last]))


def _count_families(cvs: np.ndarray, bandwidth: float, seed: int) -> int:
    return len(_mean_shift(_sample(cvs, seed), bandwidth).cluster_centers_)


def bandwidth_for_families(
    cvs: np.ndarray, scan: BandwidthScan, n_families: int, seed: int = 0, refinements: int = 8
) -> float:
    """The bandwidth that gives ``n_families`` families: the geometric middle of the longest run of
    the scan's bandwidths that give it; when none does, bisection (geometric, ``refinements`` steps) between
    the scan's neighbours that give more and fewer; else the bandwidth whose count is nearest."""
    if n_families < 1:
        raise ValueError(f"the number of families must be at least 1, got {n_families}")
    bandwidths, counts = scan.bandwidths, scan.n_clusters
    exact = np.flatnonzero(counts == n_families)
    if len(exact):  # the middle of the longest run that gives n, if it does (counts can wobble)
        run = max(np.split(exact, np.flatnonzero(np.diff(exact) > 1) + 1), key=len)
        middle = float(np.sqrt(bandwidths[run[0]] * bandwidths[run[-1]]))
        return (
            middle
            if _count_families(cvs, middle, seed) == n_families
            else float(bandwidths[run[len(run) // 2]])
        )
    tried = dict(zip(bandwidths.tolist(), counts.tolist(), strict=True))
    # Counts fall as the bandwidth grows: bisect the first step of the scan that jumps over n.
    crossing = next((i for i in range(len(counts) - 1) if counts[i] > n_families > counts[i + 1]), None)
    if crossing is not None:
        low, high = float(bandwidths[crossing]), float(bandwidths[crossing + 1])
        for _ in range(refinements):
            middle = float(np.sqrt(low * high))
            tried[middle] = _count_families(cvs, middle, seed)
            if tried[middle] == n_families:
                return middle
            low, high = (middle, high) if tried[middle] > n_families else (low, middle)
    return min(tried, key=lambda b: (abs(tried[b] - n_families), b))


def nearest_family(cvs: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the centroid nearest each point (Euclidean, in CV units)."""
    return np.argmin(((cvs[:, None, :] - centroids[None, :, :]) ** 2).sum(-1), axis=1)


def find_families(cvs: np.ndarray, bandwidth: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(family of each structure, centroids), families numbered by size, largest first."""
    model = _mean_shift(_sample(cvs, seed), bandwidth)
    centroids = model.cluster_centers_
    nearest = nearest_family(cvs, centroids)
    order = np.argsort(-np.bincount(nearest, minlength=len(centroids)), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[nearest], centroids[order]


def knn_separation(
    cvs: np.ndarray,
    labels: Sequence[str],
    held_out_cvs: np.ndarray,
    held_out_labels: Sequence[str],
    k: int = 5,
) -> Separation:
    """Accuracy of a k-NN classifier (Euclidean, in CV units) fitted on ``cvs`` and ``labels``, on
    the held-out structures."""
    from sklearn.metrics import confusion_matrix
    from sklearn.neighbors import KNeighborsClassifier

    classes = sorted(set(labels) | set(held_out_labels))
    knn = KNeighborsClassifier(n_neighbors=min(k, len(cvs))).fit(cvs, labels)
    predicted = knn.predict(held_out_cvs)
    confusion = confusion_matrix(held_out_labels, predicted, labels=classes)
    accuracy = float(np.mean(predicted == np.asarray(held_out_labels)))
    predicted_labels = [str(p) for p in predicted]
    return Separation(k, accuracy, classes, confusion, len(cvs), len(held_out_cvs), predicted_labels)


def thermal_separation(
    cvs: np.ndarray,
    labels: Sequence[str],
    held_out_frames: Sequence[Atoms],
    held_out_cvs: np.ndarray,
    cv: CV,
    k: int = 5,
    progress: bool = False,
) -> ThermalSeparation | None:
    """k-NN (fitted on the charted ``cvs`` and ``labels``) on the thermal snapshots that held-out
    quenched structures carry (see ``data.structures.thermal_frames``); None when they carry none."""
    from sklearn.neighbors import KNeighborsClassifier

    snapshots, owners = thermal_frames(held_out_frames)
    if not snapshots:
        return None
    truth = np.array(structure_labels(held_out_frames))
    knn = KNeighborsClassifier(n_neighbors=min(k, len(cvs))).fit(cvs, labels)
    thermal_cvs = encode_structures(cv, snapshots, progress=progress)
    thermal_right = knn.predict(thermal_cvs) == truth[owners]
    quench_right = knn.predict(held_out_cvs) == truth
    temperature = np.array([float(atoms.info.get("temperature", np.nan)) for atoms in held_out_frames])
    snapshot_temperature = np.array([float(atoms.info.get("temperature", np.nan)) for atoms in snapshots])
    per_t: dict[str, dict[float, float]] = {"thermal": {}, "quenched": {}}
    counts: dict[float, int] = {}
    for t in np.unique(snapshot_temperature):
        mine = snapshot_temperature == t
        per_t["thermal"][float(t)] = float(thermal_right[mine].mean())
        # The quenches of the structures sampled at that temperature.
        same = temperature == t
        per_t["quenched"][float(t)] = float(quench_right[same].mean()) if same.any() else float("nan")
        counts[float(t)] = int(mine.sum())
    shift = float(np.median(np.linalg.norm(thermal_cvs - held_out_cvs[owners], axis=1)))
    return ThermalSeparation(
        k, per_t["thermal"], per_t["quenched"], counts, shift, label_centroid_spacing(cvs, labels)
    )


@dataclass
class HeldOut:
    """A labelled data set scored on a chart: quenched and thermal k-NN accuracy, the report and
    figure written."""

    separation: Separation
    thermal: ThermalSeparation | None
    report: dict
    outputs: dict[str, Path] = field(default_factory=dict)


def score_held_out(
    cv: CV,
    cvs: np.ndarray,
    labels: Sequence[str],
    held_out: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    name: str = "held_out",
    label_keys: Sequence[str] = ("label", "cna_label", "motif"),
    progress: bool = False,
) -> HeldOut:
    """k-NN (fitted on the charted ``cvs`` and ``labels``) on the labelled structures of the file
    ``held_out``: accuracy, recall per label, confusion, accuracy per start motif (info key
    ``motif``), the thermal snapshots' accuracy per temperature (``thermal_separation``) and, for
    a calibrated model, how many are off the chart. The labels are the first of ``label_keys``
    that every structure has in its info. Writes OUT/NAME.json and NAME_confusion.png."""
    test_frames = read_structures(held_out)
    test_labels = structure_labels(test_frames, label_keys)
    if test_labels is None:
        raise ValueError(
            f"{held_out} has no labels (info key `label`): label it with `nanochart label`, or use a data "
            "set from `nanochart generate`"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    test_cvs = encode_structures(cv, test_frames, progress=progress)
    separation = knn_separation(cvs, labels, test_cvs, test_labels)
    thermal = thermal_separation(cvs, labels, test_frames, test_cvs, cv, progress=progress)
    report = separation.as_dict()
    right = np.asarray(separation.predicted) == np.asarray(test_labels)
    runs = [atoms.info["run"] for atoms in test_frames if "run" in atoms.info]
    if len(runs) == len(test_frames) and len(set(runs)) > 1:
        report["accuracy_standard_error_by_run"] = clustered_standard_error(right, np.asarray(runs))
    motifs = [str(atoms.info["motif"]) for atoms in test_frames if "motif" in atoms.info]
    if len(motifs) == len(test_frames):
        report["accuracy_per_motif"] = {
            motif: {"accuracy": float(right[np.asarray(motifs) == motif].mean()), "n": motifs.count(motif)}
            for motif in sorted(set(motifs))
        }
    if cv.has_novelty:
        novelty = cv.novelty_of(test_cvs)
        report["off_chart"] = {
            "n": len(test_cvs),
            "off_chart": int(novelty.off_chart.sum()),
            "threshold": novelty.threshold,
        }
    if thermal is not None:
        report["thermal"] = thermal.as_dict()
    (out / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    outputs = {
        f"{name}_json": out / f"{name}.json",
        f"{name}_png": plots.confusion(
            separation.confusion,
            separation.classes,
            out / f"{name}_confusion.png",
            title=f"{separation.k}-NN on the chart: {Path(held_out).name} accuracy "
            f"{100 * separation.accuracy:.1f}%",
        ),
    }
    return HeldOut(separation, thermal, report, outputs)


def clustered_standard_error(right: np.ndarray, groups: np.ndarray) -> float:
    """Standard error of the mean of ``right`` (0/1) when its entries come in correlated groups
    (the snapshots of one MD run): the cluster-robust estimate, sqrt(R / (R - 1)) times the root
    of the sum over groups of (their count times their mean's deviation) squared, over the total.
    With one entry per group it is the binomial error sqrt(p (1 - p) / (n - 1))."""
    right = np.asarray(right, dtype=float)
    mean = right.mean()
    names, group = np.unique(groups, return_inverse=True)
    residuals = np.bincount(group, weights=right - mean)
    return float(np.sqrt(len(names) / (len(names) - 1) * np.sum(residuals**2)) / len(right))


def evaluate(
    model: str | os.PathLike[str] | CV,
    data: str | os.PathLike[str],
    chart_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    progress: bool = True,
) -> HeldOut:
    """``score_held_out`` on a chart written before (a ``nanochart chart`` folder or a shipped
    model's chart/, with labels): how well a model's chart names the labelled structures of
    ``data`` without the training data at hand. Writes OUT/evaluation.json and its confusion PNG."""
    labels = read_chart_labels(chart_dir)
    if labels is None:
        raise ValueError(f"the chart in {chart_dir} has no label column: chart a labelled data set")
    cv = model if isinstance(model, CV) else CV(model, num_threads=os.cpu_count() or 1)
    cvs = read_chart_cvs(chart_dir)
    if cvs.shape[1] != cv.n_cvs:
        raise ValueError(
            f"the chart in {chart_dir} has {cvs.shape[1]} CVs, the model {cv.path} {cv.n_cvs}: "
            "use the chart made with this model"
        )
    # CNA labels only: a start motif's name is no label the chart knows.
    return score_held_out(
        cv,
        cvs,
        labels,
        data,
        out_dir,
        name="evaluation",
        label_keys=("label", "cna_label"),
        progress=progress,
    )


def label_centroid_spacing(cvs: np.ndarray, labels: Sequence[str]) -> float:
    """The median distance (CV units) between the centroids of the CNA labels on the chart: the
    chart's typical spacing between motifs; NaN with fewer than two labels."""
    label_array = np.asarray(labels)
    centroids = np.array([cvs[label_array == name].mean(axis=0) for name in sorted(set(labels))])
    return float(np.median(pdist(centroids))) if len(centroids) > 1 else float("nan")


def chart(
    model: str | os.PathLike[str] | CV,
    data: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    n_nearest: int = 50,
    bandwidths: np.ndarray | None = None,
    bandwidth: float | None = None,
    n_families: int | None = None,
    n_representatives: int = DEFAULT_REPRESENTATIVES,
    held_out: str | os.PathLike[str] | None = None,
    chemiscope: bool = False,
    chemiscope_max: int | None = None,
    progress: bool = True,
) -> Chart:
    """Encode a data set with an exported model, find and name families, write CSVs, extxyz files
    and PNGs.

    The bandwidth: ``bandwidth`` when given, else the one that gives ``n_families`` families, else
    the plateau rule (the module docstring). Families are named from their ``n_representatives``
    members nearest their centroid (families.json, families.md; needs OVITO, else a note says
    they were skipped). With ``held_out`` (a labelled data file not used in training), also
    measure how well the chart separates the labels: k-NN fitted on the charted data, scored on
    the held-out structures (held_out.json, held_out_confusion.png). With ``chemiscope``, the
    interactive chart (chart.chemiscope.json.gz; ``chemiscope_max`` structures at most, a seeded
    random subset; None: all).
    """
    if bandwidth is not None and n_families is not None:
        raise ValueError("give a bandwidth or a number of families, not both")
    if bandwidth is not None and bandwidth <= 0:
        raise ValueError(f"the bandwidth must be positive, got {bandwidth}")
    if n_representatives < 1:
        raise ValueError(f"a family needs at least 1 representative, got {n_representatives}")
    if chemiscope_max is not None and chemiscope_max < 1:
        raise ValueError(f"the chemiscope file needs at least 1 structure, got {chemiscope_max}")
    cv = model if isinstance(model, CV) else CV(model, num_threads=os.cpu_count() or 1)
    frames = read_structures(data)
    cvs = encode_structures(cv, frames, progress=progress)
    scan = scan_bandwidths(cvs, bandwidths)
    if bandwidth is not None:
        scan = replace(scan, chosen=float(bandwidth), rule="given")
    elif n_families is not None:
        scan = replace(
            scan,
            chosen=bandwidth_for_families(cvs, scan, n_families),
            rule=f"asked for {n_families} families",
        )
    families, centroids = find_families(cvs, scan.chosen)
    labels = structure_labels(frames)
    result = Chart(cvs, families, centroids, scan, labels)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cv.has_novelty:  # a file of its own: chart.csv's columns are what other commands read
        result.novelty = cv.novelty_of(cvs)
        with open(out / "novelty.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["index", "novelty", "off_chart"])
            for i, (score, off) in enumerate(
                zip(result.novelty.score, result.novelty.off_chart, strict=True)
            ):
                writer.writerow([i, f"{score:.4g}", int(off)])
        result.outputs["novelty_csv"] = out / "novelty.csv"
    if held_out is not None:
        if labels is None:
            raise ValueError(
                f"--held-out needs labels (info key `label`) in {data}: "
                "data sets from `nanochart generate` have them"
            )
        held = score_held_out(cv, cvs, labels, held_out, out, progress=progress)
        result.separation, result.thermal = held.separation, held.thermal
        result.outputs.update(held.outputs)

    with open(out / "chart.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", *cv.cv_names, "family", *(["label"] if labels else [])])
        for i in range(len(frames)):
            writer.writerow(
                [i, *(f"{v:.10g}" for v in cvs[i]), int(families[i]), *([labels[i]] if labels else [])]
            )
    result.outputs["chart_csv"] = out / "chart.csv"
    with open(out / "centroids.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["family", *cv.cv_names, "size", "bandwidth"])
        for k, centre in enumerate(centroids):
            writer.writerow(
                [k, *(f"{v:.10g}" for v in centre), int((families == k).sum()), f"{scan.chosen:.6g}"]
            )
    result.outputs["centroids_csv"] = out / "centroids.csv"

    for k, centre in enumerate(centroids):
        distance = np.linalg.norm(cvs - centre, axis=1)
        picked = np.argsort(distance)[:n_nearest]
        nearest = []
        for i in picked:
            atoms = frames[i].copy()
            atoms.info.update(
                {"index": int(i), "family": int(families[i]), "distance_to_centroid": float(distance[i])}
            )
            nearest.append(atoms)
        write(out / f"family_{k}_nearest.extxyz", nearest, format="extxyz")
    result.outputs["nearest"] = out

    try:
        result.descriptions = describe_families(
            frames,
            cvs,
            families,
            centroids,
            labels=labels,
            n_representatives=n_representatives,
            progress=progress,
        )
    except ImportError as error:  # OVITO is the `data` extra: the chart itself does not need it
        result.notes.append(f"families not named: {error}")
    if result.descriptions is not None:
        result.outputs.update(
            write_families(
                result.descriptions, out, bandwidth=scan.chosen, rule=scan.rule, cv_names=cv.cv_names
            )
        )
    family_names = [d.name for d in result.descriptions] if result.descriptions is not None else None

    legend = [f"{f}: {family_names[f]}" if family_names else str(f) for f in families]
    result.outputs["families_png"] = plots.chart_3d(
        cvs,
        legend,
        out / "chart_families.png",
        title=f"{len(centroids)} families (mean shift)",
        cv_names=cv.cv_names,
        centroids=centroids,
    )
    if labels:
        result.outputs["labels_png"] = plots.chart_3d(
            cvs, labels, out / "chart_labels.png", title="structural labels of the data", cv_names=cv.cv_names
        )
    result.outputs["plateau_png"] = plots.plateau(
        scan.bandwidths, scan.n_clusters, scan.chosen, out / "plateau.png"
    )
    if chemiscope:
        result.chemiscope = write_chemiscope(
            out / CHEMISCOPE_FILE,
            frames,
            cvs,
            cv.cv_names,
            families,
            family_names=family_names,
            labels=labels,
            max_structures=chemiscope_max,
            description=f"{data} charted with {cv.path}: "
            f"{len(centroids)} mean-shift families (bandwidth {scan.chosen:.4g}, {scan.rule})",
        )
        result.outputs["chemiscope"] = result.chemiscope.path
    return result


def read_centroids(path: str | os.PathLike[str]) -> np.ndarray:
    """Family centroids from a chart's centroids.csv (a chart folder may be given)."""
    path = Path(path)
    if path.is_dir():
        path = path / "centroids.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no centroids file at {path}: run `nanochart chart` first")
    with open(path) as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    width = header.index("size") - 1
    return np.array([[float(v) for v in row[1 : 1 + width]] for row in body])


def _open_chart(path: str | os.PathLike[str]) -> TextIO:
    """A chart's chart.csv or chart.csv.gz (a chart folder may be given), open for reading text."""
    path = Path(path)
    if path.is_dir():
        path = next((path / name for name in ("chart.csv", "chart.csv.gz") if (path / name).is_file()), path)
    if not path.is_file():
        raise FileNotFoundError(f"no chart.csv in {path}: run `nanochart chart` first")
    return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else open(path, newline="")


def read_chart_cvs(path: str | os.PathLike[str]) -> np.ndarray:
    """The charted structures' CVs, (n, D), from a chart's chart.csv or chart.csv.gz (a chart folder
    may be given)."""
    with _open_chart(path) as handle:
        width = next(handle).split(",").index("family") - 1
        return np.loadtxt(handle, delimiter=",", usecols=range(1, 1 + width), ndmin=2)


def read_chart_labels(path: str | os.PathLike[str]) -> list[str] | None:
    """The charted structures' CNA labels from a chart's chart.csv(.gz), None when it has none."""
    with _open_chart(path) as handle:
        rows = csv.reader(handle)
        header = next(rows)
        if "label" not in header:
            return None
        column = header.index("label")
        return [row[column] for row in rows]
