"""Off-chart warnings: how far a structure lies from the training structures on the chart.

Novelty = (mean CV-space distance from a structure's CVs to its ``k`` nearest reference points)
/ ``scale``. The reference points are the training structures' CVs (at most
:data:`MAX_REFERENCE` of them, an even subsample of a larger chart); ``scale`` is the median of
that distance over in-distribution held-out structures, so a typical held-out structure scores
1; a structure is off the chart when its novelty exceeds ``threshold``, a high percentile of the
held-out scores. Why this and not the autoencoder's reconstruction error: it lives where the
bias acts (on the CVs), needs no decoder in the exported model, and the core computes it from
the CVs alone in a few microseconds (cpp/include/nanochart/novelty.h; docs/design.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

#: Reference points kept in a model file: a larger chart is subsampled evenly to this many.
MAX_REFERENCE = 4000
DEFAULT_K = 5
#: Percentile of the held-out novelty taken as the threshold.
DEFAULT_PERCENTILE = 99.0


@dataclass(frozen=True)
class NoveltyScores:
    """Novelty of a batch of structures: ``score`` (B,), ``off_chart`` (B,) = score > threshold."""

    score: np.ndarray
    off_chart: np.ndarray
    threshold: float

    @property
    def fraction_off_chart(self) -> float:
        return float(self.off_chart.mean()) if len(self.off_chart) else 0.0

    def summary(self) -> str:
        """One line for the command line: how many structures are off the chart."""
        n, off = len(self.off_chart), int(self.off_chart.sum())
        return (
            f"{off} of {n} structures off the chart ({100 * self.fraction_off_chart:.1f}%; novelty above "
            f"{self.threshold:.3g}; median {np.median(self.score) if n else float('nan'):.3g})"
        )


@dataclass(frozen=True)
class NoveltyReference:
    """What a model file stores under ``nanochart.json["novelty"]``."""

    reference_cvs: np.ndarray  # (n, D)
    k: int
    scale: float
    threshold: float
    calibration: dict[str, Any] = field(default_factory=dict)

    def scores(self, cvs: ArrayLike) -> NoveltyScores:
        """Novelty of CVs ``(B, D)``, computed in Python (numpy); the core's ``CV.novelty_of``
        gives the same numbers."""
        score = mean_knn_distance(cvs, self.reference_cvs, self.k) / self.scale
        return NoveltyScores(score, score > self.threshold, self.threshold)

    def as_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "scale": self.scale,
            "threshold": self.threshold,
            "calibration": self.calibration,
            "reference_cvs": self.reference_cvs.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoveltyReference:
        return cls(
            np.asarray(data["reference_cvs"], dtype=np.float64),
            int(data["k"]),
            float(data["scale"]),
            float(data["threshold"]),
            dict(data.get("calibration", {})),
        )


def mean_knn_distance(cvs: ArrayLike, reference: ArrayLike, k: int = DEFAULT_K) -> np.ndarray:
    """Mean Euclidean distance from each row of ``cvs`` (B, D) to its ``k`` nearest rows of
    ``reference`` (n, D) -> (B,)."""
    points = np.atleast_2d(np.asarray(cvs, dtype=np.float64))
    ref = np.asarray(reference, dtype=np.float64)
    if ref.ndim != 2 or points.shape[1] != ref.shape[1]:
        raise ValueError(f"cvs {points.shape} and reference {ref.shape} must be (B, D) and (n, D), same D")
    if not 1 <= k <= len(ref):
        raise ValueError(f"k must be between 1 and the {len(ref)} reference points, got {k}")
    out = np.empty(len(points))
    for start in range(0, len(points), 256):  # rows at a time: memory stays 256 x n distances
        chunk = points[start : start + 256]
        squared = ((chunk[:, None, :] - ref[None, :, :]) ** 2).sum(axis=-1)
        nearest = np.partition(squared, k - 1, axis=1)[:, :k]
        out[start : start + 256] = np.sqrt(nearest).mean(axis=1)
    return out


def subsample_reference(cvs: np.ndarray, max_points: int = MAX_REFERENCE) -> np.ndarray:
    """At most ``max_points`` rows, evenly spaced through ``cvs`` (deterministic, and data sets are
    written run after run, so every part of the sampling keeps its share), rounded to 8
    significant digits (far below any distance that matters; the model file stays small)."""
    points = np.asarray(cvs, dtype=np.float64)
    if len(points) > max_points:
        points = points[np.linspace(0, len(points) - 1, max_points).round().astype(int)]
    return np.array([[float(f"{v:.8g}") for v in row] for row in points]).reshape(points.shape)


def calibrate(
    reference_cvs: ArrayLike,
    held_out_cvs: ArrayLike,
    *,
    k: int = DEFAULT_K,
    percentile: float = DEFAULT_PERCENTILE,
    max_reference: int = MAX_REFERENCE,
    description: Mapping[str, Any] | None = None,
) -> NoveltyReference:
    """A novelty reference from the training structures' CVs (``reference_cvs``) and in-distribution
    held-out structures' CVs: scale = median held-out distance, threshold = its ``percentile``."""
    training = np.asarray(reference_cvs, dtype=np.float64)
    held_out = np.asarray(held_out_cvs, dtype=np.float64)
    if len(held_out) < 20:
        raise ValueError(f"calibrating needs at least 20 held-out structures, got {len(held_out)}")
    if not 50.0 < percentile < 100.0:
        raise ValueError(f"percentile must be between 50 and 100, got {percentile}")
    reference = subsample_reference(training, max_reference)
    distance = mean_knn_distance(held_out, reference, k)
    scale = float(np.median(distance))
    threshold = float(np.percentile(distance / scale, percentile))
    calibration = {
        "method": f"scale: median held-out mean {k}-NN distance; threshold: its {percentile:g}th percentile",
        "percentile": percentile,
        "n_training": len(training),
        "n_reference": len(reference),
        "subsampled": len(reference) < len(training),
        "n_held_out": len(held_out),
        **(description or {}),
    }
    return NoveltyReference(reference, k, scale, threshold, calibration)
