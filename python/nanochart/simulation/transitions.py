"""What a (biased) MD run did between motifs: the CNA label of each frame's quench against time,
the first change of motif, the sequence of motifs visited, returns to the start, and free-energy
differences between motifs from reweighted frames with block-averaged errors.

Times in ps, energies in kJ/mol (PLUMED's), temperatures in K.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Boltzmann's constant in kJ/mol/K (PLUMED's energy unit).
BOLTZMANN_KJ_PER_MOL_K = 0.0083144626


@dataclass(frozen=True)
class MotifPath:
    """The motifs one run visited: a CNA label per quenched frame at ``times`` (ps)."""

    times: np.ndarray
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.times) != len(self.labels) or not len(self.labels):
            raise ValueError(f"need one label per time: {len(self.times)} times, {len(self.labels)} labels")
        if np.any(np.diff(self.times) <= 0):
            raise ValueError("times must increase")

    @property
    def start(self) -> str:
        return self.labels[0]

    @property
    def stays(self) -> list[tuple[str, float, float]]:
        """Consecutive frames of one label as (label, first time, last time)."""
        out: list[tuple[str, float, float]] = []
        for t, label in zip(self.times, self.labels, strict=True):
            if out and out[-1][0] == label:
                out[-1] = (label, out[-1][1], float(t))
            else:
                out.append((label, float(t), float(t)))
        return out

    @property
    def sequence(self) -> list[str]:
        """The labels in the order visited, repeats of consecutive frames merged."""
        return [label for label, _, _ in self.stays]

    @property
    def first_change_ps(self) -> float | None:
        """Time of the first frame whose label is not the start's; None if there is none."""
        changed = np.flatnonzero(np.asarray(self.labels) != self.start)
        return float(self.times[changed[0]]) if len(changed) else None

    @property
    def returns(self) -> int:
        """How many times the run came back to its start motif after leaving it."""
        return sum(1 for label, _, _ in self.stays[1:] if label == self.start)

    @property
    def occupancy(self) -> dict[str, float]:
        """Share of frames per label (unweighted)."""
        names, counts = np.unique(np.asarray(self.labels), return_counts=True)
        return {str(n): float(c / len(self.labels)) for n, c in zip(names, counts, strict=True)}

    @property
    def visited(self) -> list[str]:
        """Distinct labels other than the start, in order of first visit."""
        seen: list[str] = []
        for label in self.sequence:
            if label != self.start and label not in seen:
                seen.append(label)
        return seen

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "frames": len(self.labels),
            "time_ps": [float(self.times[0]), float(self.times[-1])],
            "first_change_ps": self.first_change_ps,
            "visited": self.visited,
            "sequence": self.sequence,
            "returns": self.returns,
            "occupancy": self.occupancy,
        }


def _relative_weights(log_weights: np.ndarray) -> np.ndarray:
    """exp(``log_weights``) scaled by a common factor (the largest weight is 1), so that no weight
    overflows; refuses non-finite log weights."""
    log_weights = np.asarray(log_weights, dtype=np.float64)
    if not np.isfinite(log_weights).all():
        raise ValueError("log_weights must be finite")
    return np.exp(log_weights - log_weights.max())


def reweighted_population(labels: np.ndarray | list[str], log_weights: np.ndarray) -> dict[str, float]:
    """Share of the total statistical weight exp(``log_weights``) (as for
    :func:`free_energy_difference`) carried by the frames of each label."""
    labels = np.asarray(labels)
    weights = _relative_weights(log_weights)
    if labels.shape != weights.shape:
        raise ValueError(f"one weight per label: {labels.shape} vs {weights.shape}")
    return {str(name): float(weights[labels == name].sum() / weights.sum()) for name in np.unique(labels)}


def free_energy_difference(
    labels: np.ndarray | list[str],
    log_weights: np.ndarray,
    a: str,
    b: str,
    temperature: float,
    n_blocks: int = 5,
) -> tuple[float, float]:
    """F(a) - F(b) in kJ/mol from frames with statistical weights exp(``log_weights``) (beta times
    the bias for a quasi-static bias: OPES, or metadynamics' bias minus c(t); zeros unbiased), and
    its standard error from ``n_blocks`` contiguous blocks (nan where a block lacks either motif, or
    with fewer frames than blocks). F(c) = -kT ln sum_{i in c} w_i."""
    labels = np.asarray(labels)
    log_weights = np.asarray(log_weights, dtype=np.float64)
    reweighted_population(labels, log_weights)  # checks the shapes and the weights
    kt = BOLTZMANN_KJ_PER_MOL_K * temperature

    def difference(rows: np.ndarray) -> float:
        population = reweighted_population(labels[rows], log_weights[rows])
        if a not in population or b not in population:
            return float("nan")
        return -kt * (np.log(population[a]) - np.log(population[b]))

    whole = difference(np.arange(len(labels)))
    if n_blocks < 2 or len(labels) < n_blocks:
        return whole, float("nan")
    per_block = np.array([difference(rows) for rows in np.array_split(np.arange(len(labels)), n_blocks)])
    error = float(per_block.std(ddof=1) / np.sqrt(n_blocks)) if np.isfinite(per_block).all() else float("nan")
    return whole, error


def cumulative_log_weights(
    times: np.ndarray, labels: np.ndarray | list[str], log_weights: np.ndarray, at_times: np.ndarray
) -> dict[str, np.ndarray]:
    """For each label, ln of the summed weight exp(``log_weights``) of its frames with time <= each of
    ``at_times`` (-inf before its first frame): F(a) - F(b) from the frames up to time t is
    -kT (L_a(t) - L_b(t)) (:func:`running_free_energy_difference`), the curve that shows whether a
    reweighted estimate has settled. ``times`` need not be sorted (pooled walkers)."""
    times = np.asarray(times, dtype=np.float64)
    labels = np.asarray(labels)
    log_weights = np.asarray(log_weights, dtype=np.float64)
    if not (times.shape == labels.shape == log_weights.shape) or times.ndim != 1:
        raise ValueError(
            f"one time, label and log weight per frame: {times.shape}, {labels.shape}, {log_weights.shape}"
        )
    if not np.isfinite(log_weights).all():
        raise ValueError("log_weights must be finite")
    order = np.argsort(times, kind="stable")
    times, labels, log_weights = times[order], labels[order], log_weights[order]
    # Frames up to each requested time: the count of times <= t.
    counts = np.searchsorted(times, np.asarray(at_times, dtype=np.float64), side="right")
    out = {}
    for name in np.unique(labels):
        running = np.logaddexp.accumulate(np.where(labels == name, log_weights, -np.inf))
        out[str(name)] = np.where(counts > 0, running[np.maximum(counts - 1, 0)], -np.inf)
    return out


def running_free_energy_difference(
    cumulative: dict[str, np.ndarray], a: str, b: str, temperature: float
) -> np.ndarray:
    """F(a) - F(b) in kJ/mol at each time of :func:`cumulative_log_weights` (nan until both a and b
    have a frame, and wherever either label is absent)."""
    if a not in cumulative or b not in cumulative:
        length = len(next(iter(cumulative.values()))) if cumulative else 0
        return np.full(length, np.nan)
    la, lb = np.asarray(cumulative[a], dtype=np.float64), np.asarray(cumulative[b], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        delta = -BOLTZMANN_KJ_PER_MOL_K * temperature * (la - lb)
    delta[~(np.isfinite(la) & np.isfinite(lb))] = np.nan
    return delta


def free_energy_surface(
    x: np.ndarray,
    y: np.ndarray,
    log_weights: np.ndarray,
    temperature: float,
    bins: int = 50,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reweighted free-energy surface on two CVs: ``(x_edges, y_edges, F)``, ``F[i, j]`` in kJ/mol
    over bin (i, j), ``F = -kT ln sum_{frames in bin} w``, zero at its minimum, nan where no frame
    falls; ``log_weights`` as for :func:`free_energy_difference`."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    log_weights = np.asarray(log_weights, dtype=np.float64)
    if not (x.shape == y.shape == log_weights.shape) or x.ndim != 1 or not len(x):
        raise ValueError(f"one x, y and log weight per frame: {x.shape}, {y.shape}, {log_weights.shape}")
    weights = _relative_weights(log_weights)
    histogram, x_edges, y_edges = np.histogram2d(x, y, bins=bins, weights=weights)
    with np.errstate(divide="ignore"):
        free_energy = -BOLTZMANN_KJ_PER_MOL_K * temperature * np.log(histogram)
    free_energy[~np.isfinite(free_energy)] = np.nan
    return x_edges, y_edges, free_energy - np.nanmin(free_energy)


@dataclass
class IndependentRuns:
    """F(a) - F(b) (kJ/mol) from independent runs of one method: each run's estimate, their mean and
    its standard error from the spread between runs (std / sqrt(n), ddof 1), which, unlike block
    errors within one run, holds when a run's blocks share its unconverged bias. Runs that never
    visited a or b give no estimate and are listed apart."""

    a: str
    b: str
    estimates: dict[str, float]
    missing: list[str]

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.estimates.values()))) if self.estimates else float("nan")

    @property
    def standard_error(self) -> float:
        values = list(self.estimates.values())
        return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")


def independent_runs(
    populations: dict[str, dict[str, float]], a: str, b: str, temperature: float
) -> IndependentRuns:
    """Combine runs, each given by its reweighted population per label (``reweighted_population``),
    into F(a) - F(b) at ``temperature`` (K) with an error from the spread between runs."""
    kt = BOLTZMANN_KJ_PER_MOL_K * temperature
    estimates, missing = {}, []
    for run, population in populations.items():
        if population.get(a, 0.0) > 0.0 and population.get(b, 0.0) > 0.0:
            estimates[run] = float(-kt * (np.log(population[a]) - np.log(population[b])))
        else:
            missing.append(run)
    return IndependentRuns(a, b, estimates, missing)


def agreement(first: IndependentRuns, second: IndependentRuns) -> float:
    """|difference of the two means| in combined standard errors (nan without both errors)."""
    combined = np.hypot(first.standard_error, second.standard_error)
    return float(abs(first.mean - second.mean) / combined) if combined > 0 else float("nan")


def class_separation(
    cvs: np.ndarray,
    labels: np.ndarray | list[str],
    a: str,
    b: str,
    *,
    blocks: int = 5,
    neighbours: int = 5,
) -> float:
    """How well the CVs of a run's thermal frames tell motif ``a`` from motif ``b``: the balanced
    accuracy (mean recall of the two) of a ``neighbours``-nearest-neighbour classifier on ``cvs``
    (frames x CVs, in time order), each of ``blocks`` consecutive stretches of time predicted from
    the others, since neighbouring frames are alike. 0.5 is chance, 1 clean separation. A bias on
    CVs that do not separate the pair pushes on something else, and F(a) - F(b) converges only as
    fast as unbiased crossings come. nan when a or b lies in fewer than two blocks (nothing to
    predict it from)."""
    cvs = np.asarray(cvs, dtype=np.float64)
    labels = np.asarray(labels)
    if cvs.ndim != 2 or len(cvs) != len(labels):
        raise ValueError(
            f"cvs must be (frames, CVs) with one label per frame, got {cvs.shape} and {labels.shape}"
        )
    from sklearn.neighbors import KNeighborsClassifier

    block = np.arange(len(labels)) * blocks // max(len(labels), 1)
    pair = (labels == a) | (labels == b)
    for label in (a, b):
        if len(np.unique(block[labels == label])) < 2:
            return float("nan")
    predicted = np.empty(len(labels), dtype=labels.dtype)
    for k in range(blocks):
        test, train = pair & (block == k), pair & (block != k)
        if not test.any():
            continue
        knn = KNeighborsClassifier(n_neighbors=min(neighbours, int(train.sum()))).fit(
            cvs[train], labels[train]
        )
        predicted[test] = knn.predict(cvs[test])
    recall = [float(np.mean(predicted[labels == label] == label)) for label in (a, b)]
    return float(np.mean(recall))
