"""Calibrating a model's off-chart warnings (its novelty reference, :mod:`nanochart.core.novelty`)
on held-out structures, checking it on others, and writing it into the model file."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ..core.cv import CV
from ..core.model_file import add_novelty
from ..core.novelty import DEFAULT_K, DEFAULT_PERCENTILE, NoveltyReference, calibrate, mean_knn_distance
from ..data.structures import read_structures, thermal_frames
from ..model.features import encode_structures
from .charting import label_centroid_spacing, read_chart_cvs, read_chart_labels


@dataclass
class NoveltyCalibration:
    """A calibrated novelty reference and what it flags: ``checks`` per set (fraction of its
    quenched structures, thermal snapshots and all structures off the chart); ``far_off``: the
    structures whose nearest training structure is farther than the median distance between the
    chart's CNA-label centroids, and the fraction of them flagged."""

    reference: NoveltyReference
    checks: dict[str, dict[str, Any]]
    far_off: dict[str, Any] | None
    outputs: dict[str, Path] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        reference = self.reference
        return {
            "k": reference.k,
            "scale": reference.scale,
            "threshold": reference.threshold,
            "threshold_cv_units": reference.threshold * reference.scale,
            "calibration": reference.calibration,
            "checks": self.checks,
            "far_off": self.far_off,
        }


def _structures_and_snapshots(path: str | os.PathLike[str]) -> tuple[list[Atoms], list[Atoms]]:
    frames = read_structures(path)
    snapshots, _ = thermal_frames(frames)
    return frames, snapshots


def _flagged(reference: NoveltyReference, cvs: np.ndarray) -> dict[str, Any]:
    scores = reference.scores(cvs)
    return {"n": len(cvs), "off_chart": int(scores.off_chart.sum()), "fraction": scores.fraction_off_chart}


def calibrate_model_novelty(
    model: str | os.PathLike[str],
    chart_dir: str | os.PathLike[str],
    held_out: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    check: str | os.PathLike[str] | None = None,
    far_off: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    k: int = DEFAULT_K,
    percentile: float = DEFAULT_PERCENTILE,
    progress: bool = True,
) -> NoveltyCalibration:
    """Calibrate the novelty of ``model`` and write it into the model file (``out``, default the
    model itself).

    Reference: the training structures' CVs in ``chart_dir`` (chart.csv or chart.csv.gz of
    ``nanochart chart``). Calibration: the structures of ``held_out`` (in distribution, never
    trained on) with the thermal snapshots they carry, pooled: MD feeds the CV thermal
    structures, and they must not raise warnings. ``check``: a second in-distribution held-out
    file, to measure the share flagged on data the calibration never saw. ``far_off``: any
    structures, to measure how many of those far from every training structure are flagged
    (grouped by their info key ``source`` when present). ``report``: a JSON file of the figures.
    """
    cv = CV(model, num_threads=os.cpu_count() or 1)
    training = read_chart_cvs(chart_dir)
    if training.shape[1] != cv.n_cvs:
        raise ValueError(
            f"the chart has {training.shape[1]} CVs, the model {cv.n_cvs}: chart with this model"
        )

    def encode(frames: Sequence[Atoms]) -> np.ndarray:
        if not frames:
            return np.zeros((0, cv.n_cvs))
        return encode_structures(cv, frames, progress=progress)

    quenched, snapshots = _structures_and_snapshots(held_out)
    held_cvs = {"quenched": encode(quenched), "thermal": encode(snapshots)}
    reference = calibrate(
        training,
        np.concatenate(list(held_cvs.values())),
        k=k,
        percentile=percentile,
        description={
            "held_out": Path(held_out).name,
            "n_held_out_quenched": len(quenched),
            "n_held_out_thermal": len(snapshots),
        },
    )
    checks: dict[str, dict[str, Any]] = {"calibration": _set_checks(reference, held_cvs)}
    scored = []  # every structure scored, for the far-off figure
    if check is not None:
        check_quenched, check_snapshots = _structures_and_snapshots(check)
        check_cvs = {"quenched": encode(check_quenched), "thermal": encode(check_snapshots)}
        checks["check"] = {"file": Path(check).name, **_set_checks(reference, check_cvs)}
        scored += [(cvs, ["check"] * len(cvs)) for cvs in check_cvs.values()]
    if far_off is not None:
        frames = read_structures(far_off)
        scored.append((encode(frames), [str(atoms.info.get("source", "far_off")) for atoms in frames]))
    far = _far_off(reference, training, read_chart_labels(chart_dir), scored) if scored else None
    reference.calibration.update({"check": checks.get("check"), "far_off": far})
    result = NoveltyCalibration(reference, checks, far)
    result.outputs["model"] = add_novelty(model, reference, out)
    if report is not None:
        Path(report).write_text(json.dumps(result.as_dict(), indent=1) + "\n")
        result.outputs["report"] = Path(report)
    return result


def _set_checks(reference: NoveltyReference, cvs: dict[str, np.ndarray]) -> dict[str, Any]:
    pooled = np.concatenate(list(cvs.values()))
    return {
        **{name: _flagged(reference, x) for name, x in cvs.items() if len(x)},
        "all": _flagged(reference, pooled),
    }


def _far_off(
    reference: NoveltyReference,
    training: np.ndarray,
    labels: list[str] | None,
    scored: list[tuple[np.ndarray, list[str]]],
) -> dict[str, Any] | None:
    """The issue's bar: of the structures whose nearest training structure is farther than the
    median distance between label centroids, the share flagged; per source as well."""
    if labels is None:
        return None
    spacing = label_centroid_spacing(training, labels)
    cvs = np.concatenate([x for x, _ in scored])
    sources = np.array([s for _, group in scored for s in group])
    nearest = mean_knn_distance(cvs, training, 1)
    flagged = reference.scores(cvs).off_chart
    far = nearest > spacing
    per_source = {}
    for source in dict.fromkeys(sources.tolist()):
        mine = sources == source
        per_source[source] = {
            "n": int(mine.sum()),
            "off_chart": int(flagged[mine].sum()),
            "n_far": int((far & mine).sum()),
            "far_off_chart": int((far & mine & flagged).sum()),
            "median_nearest_training_distance": float(np.median(nearest[mine])),
        }
    return {
        "label_centroid_spacing": spacing,
        "n_far": int(far.sum()),
        "far_off_chart": int((far & flagged).sum()),
        "fraction_far_flagged": float(flagged[far].mean()) if far.any() else None,
        "per_source": per_source,
    }
