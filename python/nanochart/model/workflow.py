"""Training and exporting as `nanochart train` and `nanochart export` do: a data set file in, a
checkpoint with its loss curve out; a checkpoint in, a model file out."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import plots
from .features import TrainingData
from .training import ChartAutoencoder

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class TrainingRun:
    model: ChartAutoencoder
    summary: dict[str, Any]
    outputs: dict[str, Path] = field(default_factory=dict)


def train(
    data: TrainingData, out: str | os.PathLike[str], *, resume: bool = False, **params: Any
) -> TrainingRun:
    """Fit a :class:`ChartAutoencoder` (``params`` are its settings; unset ones keep its defaults)
    on ``data``, checkpointing to ``out/checkpoint.pt``; write ``training.json`` and ``loss.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / CHECKPOINT_FILE
    if resume and not checkpoint.is_file():
        raise FileNotFoundError(f"resume: no checkpoint at {checkpoint}")
    model = ChartAutoencoder(**params, checkpoint=checkpoint, metadata=data.model_metadata())
    labels = data.sample_labels() if params.get("supervision") or params.get("compactness") else None
    model.fit(
        data.inputs, data.targets, groups=data.groups, anchors=data.anchors, labels=labels, resume=resume
    )
    summary = model.summary()
    (out / "training.json").write_text(json.dumps(summary, indent=1))
    outputs = {
        "checkpoint": checkpoint,
        "loss curve": plots.loss_curve(model.history_, model.best_epoch_, out / "loss.png"),
        "summary": out / "training.json",
    }
    return TrainingRun(model, summary, outputs)


def export_checkpoint(
    checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], *, cv_names: list[str] | None = None
) -> tuple[Path, ChartAutoencoder]:
    """The model file of a checkpoint written by :func:`train` (its metadata says RDF, elements, size)."""
    model = ChartAutoencoder.from_checkpoint(checkpoint)
    metadata = model.metadata or {}
    missing = {"rdf", "elements", "n_atoms"} - metadata.keys()
    if missing:
        raise ValueError(f"{checkpoint} lacks {sorted(missing)}: train it with `nanochart train`")
    path = model.export(
        out,
        rdf=metadata["rdf"],
        elements=metadata["elements"],
        n_atoms=metadata["n_atoms"],
        cv_names=cv_names,
        data=metadata.get("data"),
    )
    return path, model
