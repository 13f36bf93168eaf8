"""Figures: loss curves, charts, the mean-shift plateau, CV time series, label shares. PNG files, no
display needed."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

#: Most categories named in a chart's legend.
LEGEND_ENTRIES = 12


def pyplot():
    """matplotlib.pyplot with the Agg backend: figures go to files, no display needed."""
    import matplotlib

    matplotlib.use("Agg")  # files only: works on machines without a display
    import matplotlib.pyplot as plt

    return plt


def loss_curve(history: dict[str, list[float]], best_epoch: int, path: str | os.PathLike[str]) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    epochs = np.arange(len(history["train"]))
    ax.semilogy(epochs, history["train"], label="train")
    ax.semilogy(epochs, history["validation"], label="validation")
    ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch {best_epoch}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("reconstruction MSE (standardised RDF units)")
    ax.set_title("autoencoder training")
    ax.legend()
    return _save(fig, path)


def chart_3d(
    cvs: np.ndarray,
    categories: Sequence[str],
    path: str | os.PathLike[str],
    *,
    title: str,
    cv_names: Sequence[str] = ("cv1", "cv2", "cv3"),
    centroids: np.ndarray | None = None,
) -> Path:
    """Scatter of the chart (first three CVs; 2D when there are two, 1D strip for one) by category."""
    plt = pyplot()
    names = sorted(set(categories), key=_natural)
    colours = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    dims = min(cvs.shape[1], 3)
    fig = plt.figure(figsize=(7, 6), layout="constrained")
    ax = fig.add_subplot(projection="3d") if dims == 3 else fig.add_subplot()
    category = np.asarray(categories)
    # A legend of dozens of entries would crowd out the axes: name the largest categories only.
    sizes = {name: int((category == name).sum()) for name in names}
    named = set(sorted(names, key=lambda n: -sizes[n])[:LEGEND_ENTRIES])
    for i, name in enumerate(names):
        chosen = cvs[category == name]
        label = f"{name} ({len(chosen)})" if name in named else None
        ax.scatter(
            *_axes_coordinates(chosen, dims), s=4, alpha=0.6, color=colours(i % colours.N), label=label
        )
    if len(names) > LEGEND_ENTRIES:
        title = f"{title} ({len(names)} in all, the {LEGEND_ENTRIES} largest named)"
    if centroids is not None:
        ax.scatter(*_axes_coordinates(centroids, dims), s=80, marker="x", color="black", label="centroids")
    ax.set_xlabel(cv_names[0])
    if dims > 1:
        ax.set_ylabel(cv_names[1])
    if dims == 3:
        ax.set_zlabel(cv_names[2])
    ax.set_title(title)
    legend = ax.legend(fontsize=8, loc="upper left")
    for handle in legend.legend_handles:  # readable markers in the legend, whatever their size in the plot
        handle.set_sizes([20])
    return _save(fig, path)


def _axes_coordinates(points: np.ndarray, dims: int) -> list[np.ndarray]:
    """Scatter coordinates: the first `dims` CVs, or CV 1 against zero for a one-CV model."""
    if dims == 1:
        return [points[:, 0], np.zeros(len(points))]
    return [points[:, d] for d in range(dims)]


def plateau(
    bandwidths: np.ndarray, n_clusters: np.ndarray, chosen: float, path: str | os.PathLike[str]
) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.semilogx(bandwidths, n_clusters, "o-")
    ax.axvline(chosen, color="grey", ls="--", lw=1, label=f"chosen bandwidth {chosen:.3g}")
    ax.set_xlabel("mean-shift bandwidth (CV units)")
    ax.set_ylabel("number of families")
    ax.set_title("bandwidth scan: the widest plateau is chosen")
    ax.legend()
    return _save(fig, path)


def time_series(
    time: np.ndarray,
    cvs: np.ndarray,
    cv_names: Sequence[str],
    window: int,
    path: str | os.PathLike[str],
    *,
    time_unit: str = "ps",
) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(
        cvs.shape[1], 1, figsize=(7, 2.2 * cvs.shape[1]), sharex=True, squeeze=False, layout="constrained"
    )
    for d, ax in enumerate(axes[:, 0]):
        ax.plot(time, cvs[:, d], lw=0.6, alpha=0.5, label=cv_names[d])
        ax.plot(time, running_average(cvs[:, d], window), lw=1.5, label=f"running average ({window} frames)")
        ax.set_ylabel(cv_names[d])
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel(f"time ({time_unit})")
    fig.suptitle("trajectory on the chart")
    return _save(fig, path)


def colvar_fields(columns: dict[str, np.ndarray]) -> tuple[list[str], list[str]]:
    """The names of a PLUMED COLVAR's CV columns and of its bias columns (``*.bias``, and
    ``*.rbias``: metadynamics' bias minus c(t)), time left out."""
    biases = [name for name in columns if name.rsplit(".", 1)[-1] in ("bias", "rbias")]
    return [name for name in columns if name != "time" and name not in biases], biases


def biased_run(columns: dict[str, np.ndarray], path: str | os.PathLike[str]) -> Path:
    """A biased run from its PLUMED COLVAR columns (``simulation.plumed_input.read_colvar``): the
    path in the plane of the first two CVs coloured by time, each CV against time, and the bias
    (kJ/mol) against time when a ``*.bias`` column is there (and ``*.rbias``, metadynamics' bias
    minus c(t))."""
    plt = pyplot()
    time = columns["time"]
    cvs, biases = colvar_fields(columns)
    rows = len(cvs) + len(biases)
    fig = plt.figure(figsize=(11, max(4.0, 1.8 * rows)), layout="constrained")
    grid = fig.add_gridspec(rows, 2)
    plane = fig.add_subplot(grid[:, 0])
    if len(cvs) >= 2:
        points = plane.scatter(columns[cvs[0]], columns[cvs[1]], c=time, s=4, cmap="viridis")
        plane.plot(columns[cvs[0]], columns[cvs[1]], lw=0.3, color="grey", alpha=0.5)
        fig.colorbar(points, ax=plane, label="time (ps)")
        plane.set_xlabel(cvs[0])
        plane.set_ylabel(cvs[1])
    plane.set_title("path on the chart")
    for row, name in enumerate(cvs + biases):
        ax = fig.add_subplot(grid[row, 1])
        ax.plot(time, columns[name], lw=0.7, color="C3" if name in biases else "C0")
        ax.set_ylabel(f"{name} (kJ/mol)" if name in biases else name)
        if row == rows - 1:
            ax.set_xlabel("time (ps)")
    fig.suptitle("biased MD")
    return _save(fig, path)


def label_distribution(
    counts: Mapping[float | None, Mapping[str, int]],
    names: Sequence[str],
    path: str | os.PathLike[str],
    title: str,
) -> Path:
    """Stacked bars: the share of each structural label at each MD temperature (K)."""
    plt = pyplot()
    temperatures = list(counts)
    totals = np.array([max(sum(counts[t].values()), 1) for t in temperatures], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    bottom = np.zeros(len(temperatures))
    positions = np.arange(len(temperatures))
    for name in names:
        share = 100.0 * np.array([counts[t].get(name, 0) for t in temperatures]) / totals
        ax.bar(positions, share, bottom=bottom, label=name, width=0.7)
        bottom += share
    ax.set_xticks(positions, [f"{t:g}" for t in temperatures])
    ax.set_xlabel("MD temperature (K)")
    ax.set_ylabel("share of kept structures (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), title="CNA label")
    ax.set_title(title)
    return _save(fig, path)


def label_shares_by_temperature(
    reports: Mapping[str, Mapping], labels: Sequence[str], path: str | os.PathLike[str]
) -> Path:
    """One panel per structural label: its share against temperature (K) for each run (a PT report's
    ``label_shares``: share and standard error per temperature), error bars of one standard error,
    so that two runs from different starts can be compared by eye."""
    plt = pyplot()
    columns = min(3, len(labels))
    rows = -(-len(labels) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.3 * columns, 2.6 * rows), layout="constrained", sharex=True, squeeze=False
    )
    for ax, label in zip(axes.flat, labels, strict=False):
        for offset, (name, report) in enumerate(reports.items()):
            shares = report["label_shares"]
            temperatures = np.array([float(t) for t in shares])
            share = np.array([100 * entry["share"][label] for entry in shares.values()])
            error = np.array([100 * (entry["error"][label] or 0.0) for entry in shares.values()])
            # Runs side by side at each temperature, so that their error bars do not hide each other.
            shift = (offset - (len(reports) - 1) / 2) * 0.006 * np.ptp(temperatures)
            ax.errorbar(temperatures + shift, share, yerr=error, fmt="o-", ms=3, capsize=2, label=name)
        ax.set_title(label, fontsize=10)
        ax.set_ylim(-5, 105)
    for ax in axes[-1]:
        ax.set_xlabel("temperature (K)")
    for ax in axes[:, 0]:
        ax.set_ylabel("share of quenches (%)")
    for ax in axes.flat[len(labels) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    return _save(fig, path)


def confusion(matrix: np.ndarray, classes: Sequence[str], path: str | os.PathLike[str], title: str) -> Path:
    """Confusion matrix, each row (true label) normalised to percent, counts written in the cells."""
    plt = pyplot()
    totals = np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    share = 100.0 * matrix / totals
    fig, ax = plt.subplots(figsize=(6, 5), layout="constrained")
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=100)
    for i in range(len(classes)):
        for j in range(len(classes)):
            colour = "white" if share[i, j] > 60 else "black"
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(len(classes)), classes, rotation=45)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true (CNA) label")
    fig.colorbar(image, ax=ax, label="share of the true label (%)")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def running_average(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running mean; shorter windows at the ends, so the output has the input's length."""
    window = max(1, min(int(window), len(values)))
    kernel = np.ones(window)
    sums = np.convolve(values, kernel, mode="same")
    counts = np.convolve(np.ones(len(values)), kernel, mode="same")
    return sums / counts


def _natural(name: str):
    return (0, int(name)) if name.lstrip("-").isdigit() else (1, name)


def _save(fig, path: str | os.PathLike[str]) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def free_energy_surface(
    x_edges: np.ndarray,
    y_edges: np.ndarray,
    free_energy: np.ndarray,
    path: str | os.PathLike[str],
    *,
    names: tuple[str, str] = ("cv1", "cv2"),
    points: np.ndarray | None = None,
    point_labels: Sequence[str] | None = None,
    title: str = "",
    cap: float | None = None,
) -> Path:
    """A free-energy surface (kJ/mol, ``free_energy[i, j]`` over x bin i and y bin j) with, on top,
    ``points`` (n, 2) coloured by ``point_labels``: for instance a biased run's quenched frames
    coloured by their CNA label."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 6), layout="constrained")
    shown = free_energy if cap is None else np.minimum(free_energy, cap)
    mesh = ax.pcolormesh(x_edges, y_edges, shown.T, cmap="viridis", shading="flat")
    fig.colorbar(mesh, ax=ax, label="free energy (kJ/mol)")
    if points is not None and point_labels is not None:
        labels = np.asarray(point_labels)
        for k, name in enumerate(sorted(set(point_labels), key=_natural)):
            chosen = points[labels == name]
            ax.scatter(
                chosen[:, 0],
                chosen[:, 1],
                s=3,
                color=f"C{k % 10}",
                alpha=0.7,
                label=f"{name} ({len(chosen)})",
            )
        ax.legend(loc="upper right", fontsize=8, markerscale=3, title="CNA label of the quench")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title)
    return _save(fig, path)


def free_energy_over_time(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray, int]],
    path: str | os.PathLike[str],
    *,
    ylabel: str,
    title: str = "",
) -> Path:
    """Running free-energy estimates against simulation time (ps), one line per
    ``(name, times, values in kJ/mol, colour index)``: lines of one colour index are runs of one
    method. A settled estimate is flat; runs of one method that settle apart disagree."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
    styles = ["-", "--", ":", "-."]
    per_colour: dict[int, int] = {}
    for name, times, values, colour in curves:
        k = per_colour.setdefault(colour, 0)
        per_colour[colour] = k + 1
        ax.plot(times, values, color=f"C{colour % 10}", ls=styles[k % len(styles)], lw=1.4, label=name)
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_xlabel("simulation time (ps)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title)
    return _save(fig, path)
