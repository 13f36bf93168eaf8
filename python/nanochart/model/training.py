"""Training the autoencoder: a scikit-learn style estimator over RDF arrays.

``ChartAutoencoder(...).fit(rdfs)`` learns the chart; ``transform(rdfs)`` gives the latent CVs;
``export(path, ...)`` writes the TorchScript encoder with its metadata.

Denoising (MD-ready CVs, after Telari et al.'s inherent-structure descriptors, arXiv 2407.17924):
``fit(inputs, targets, groups=...)`` trains the autoencoder to rebuild each target RDF from its
input RDF; with thermal snapshots as inputs and the RDFs of their quenches as targets (plus each
quench rebuilding itself), a thermal structure is encoded where its quench is.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from ..core.rdf import RdfSettings
from .autoencoder import ConvAutoencoder
from .encoder import DEFAULT_CHANNELS, ConvEncoder

CHECKPOINT_VERSION = 1


class ChartAutoencoder(TransformerMixin, BaseEstimator):
    """Convolutional autoencoder that charts RDFs in ``n_cvs`` latent coordinates.

    Defaults, chosen on our generated Au147 data: five blocks of 16-32-32-64-64 channels, kernel 5,
    stride 2 (200 bins -> 7 x 64 features before the linear layer); enough capacity to rebuild the
    RDFs of all motifs, and small enough to train on a CPU in minutes. Adam with learning rate 1e-3
    and batches of 64; training stops when the validation loss has not improved for ``patience``
    epochs, and the best epoch's weights are kept. ``weight_decay`` > 0 trains with AdamW instead
    (decoupled weight decay, the weights shrunk by learning_rate * weight_decay of themselves each
    step), a regulariser against the validation loss rising after a few epochs.

    ``consistency`` weighs a term that pulls the code of each sample onto the code of its anchor
    (``fit``'s ``anchors``: a thermal snapshot's quench): the mean of |z - z_anchor|^2 over the
    batch divided by the total variance of the batch's anchor codes. Gradients flow through all
    three, so the term is blind to the chart's scale: it can only be lowered by bringing snapshots
    and quenches together relative to the spread of the chart, not by shrinking or growing it (with
    the spread held fixed in the gradient, the term kept pushing the codes smaller and the decoder
    kept undoing it, and snapshot-to-quench distances ended larger than without the term). The
    loss that ``history_`` records and early stopping watches (without the supervision term) is the
    reconstruction error alone, so runs with and without the term compare.

    ``supervision`` weighs a cross-entropy term of a small classifier head on the codes (n_cvs ->
    32 -> one logit per label, SiLU), fitted to each sample's label (``fit``'s ``labels``: a thermal
    snapshot carries its quench's): it asks the chart to keep apart structures of different labels
    that the reconstruction alone lets overlap. Early stopping then watches the validation
    reconstruction error plus ``supervision`` times the head's validation cross-entropy (the
    reconstruction alone can keep an epoch before the head has learned the labels);
    ``history_["validation"]`` stays the reconstruction error, and
    ``history_["validation_cross_entropy"]`` holds the other. The head is not exported; the encoder
    alone is the model. 0 (the default) trains without labels, as the paper did.

    ``compactness`` weighs a second label term: the batch's within-label variance of the codes
    divided by their total variance (one minus the share of the spread that lies between the
    labels' means). Like the consistency term it is blind to the chart's scale; it gathers each
    label's structures, thermal snapshots with their quenches' label included, around that label's
    mean relative to the distances between the means. It needs ``fit``'s ``labels`` and does not
    enter early stopping. 0 (the default): off.

    Parameters are stored as given (scikit-learn convention); fitted state ends in ``_``:
    ``autoencoder_``, ``history_`` (train/validation loss per epoch), ``best_epoch_``,
    ``n_bins_``, ``train_indices_``, ``validation_indices_``, ``classes_`` (the labels of the
    supervision term, empty without it). ``metadata`` is stored in checkpoints
    as given (the command line keeps the RDF settings, elements and cluster size there, so that a
    checkpoint alone can be exported).
    """

    # Fitted state (set by fit or from_checkpoint).
    autoencoder_: ConvAutoencoder
    history_: dict[str, list[float]]
    best_loss_: float
    best_epoch_: int
    classes_: np.ndarray
    head_: torch.nn.Module | None

    def __init__(
        self,
        n_cvs: int = 3,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        kernel_size: int = 5,
        stride: int = 2,
        activation: str = "silu",
        epochs: int = 300,
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        patience: int = 30,
        consistency: float = 1.0,
        supervision: float = 0.0,
        compactness: float = 0.0,
        validation_fraction: float = 0.2,
        seed: int = 0,
        device: str = "cpu",
        checkpoint: str | os.PathLike[str] | None = None,
        progress: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.n_cvs = n_cvs
        self.channels = channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.activation = activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.consistency = consistency
        self.supervision = supervision
        self.compactness = compactness
        self.validation_fraction = validation_fraction
        self.seed = seed
        self.device = device
        self.checkpoint = checkpoint
        self.progress = progress
        self.metadata = metadata

    # -- fitting ---------------------------------------------------------------------------------

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray | None = None,
        *,
        groups: np.ndarray | None = None,
        anchors: np.ndarray | None = None,
        labels: Sequence[str] | np.ndarray | None = None,
        resume: bool = False,
    ) -> ChartAutoencoder:
        """Train on RDFs ``X`` of shape (n_samples, n_bins) to rebuild ``y`` (same shape; default
        ``X``, a plain autoencoder). ``groups`` (n_samples,): samples of one group (a quench and its
        thermal snapshots) go to the same side of the train/validation split. ``anchors``
        (n_samples,): the row of ``X`` whose code each sample's code is pulled onto when
        ``consistency`` > 0 (default: itself); it must lie in the sample's group. ``labels``
        (n_samples,): each sample's structure label, needed when ``supervision`` > 0. With
        ``resume`` and an existing ``checkpoint`` file, training continues where that checkpoint
        stopped."""
        from nanochart.progress import progress_bar

        X = self._check_rdfs(X, fitting=True)
        y = X if y is None else self._check_rdfs(y, fitting=True)
        if y.shape != X.shape:
            raise ValueError(f"targets must have the inputs' shape {X.shape}, got {y.shape}")
        groups = np.arange(len(X)) if groups is None else np.asarray(groups)
        if groups.shape != (len(X),):
            raise ValueError(f"groups must have one entry per sample ({len(X)}), got shape {groups.shape}")
        anchors = np.arange(len(X)) if anchors is None else np.asarray(anchors)
        if anchors.shape != (len(X),) or not np.issubdtype(anchors.dtype, np.integer):
            raise ValueError(
                f"anchors must be one row index per sample ({len(X)}), got {anchors.dtype} {anchors.shape}"
            )
        if anchors.min() < 0 or anchors.max() >= len(X) or np.any(groups[anchors] != groups):
            raise ValueError("every anchor must be a row of X in the same group as its sample")
        if float(self.consistency) < 0:
            raise ValueError(f"consistency must be >= 0, got {self.consistency}")
        if float(self.supervision) < 0:
            raise ValueError(f"supervision must be >= 0, got {self.supervision}")
        if float(self.compactness) < 0:
            raise ValueError(f"compactness must be >= 0, got {self.compactness}")
        if float(self.weight_decay) < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        classes, label_codes = self._check_labels(labels, len(X))
        if int(self.n_cvs) < 1:
            raise ValueError(f"n_cvs (the latent size) must be at least 1, got {self.n_cvs}")
        device = torch.device(self.device)
        state = (
            load_checkpoint(self.checkpoint)
            if resume and self.checkpoint is not None and self._checkpoint_exists()
            else None
        )
        if state is None:
            self._start(X, groups, classes)
        else:
            self._check_resumable(state, X)
            self._restore(state)
            if not np.array_equal(self.classes_, classes):
                raise ValueError(
                    f"the checkpoint was trained on the labels {list(self.classes_)}, the data have "
                    f"{list(classes)}: resume with the same data set and supervision"
                )
        inputs = torch.tensor(X, dtype=torch.float32, device=device)
        targets = inputs if y is X else torch.tensor(y, dtype=torch.float32, device=device)
        split = {
            name: torch.as_tensor(indices, device=device)
            for name, indices in (("train", self.train_indices_), ("validation", self.validation_indices_))
        }
        train = (inputs[split["train"]], targets[split["train"]])
        validation = (inputs[split["validation"]], targets[split["validation"]])
        # Anchors of training samples are training samples too (same group, same side of the split).
        anchor_inputs = inputs[torch.as_tensor(anchors, device=device)[split["train"]]]
        # Without anchors elsewhere than on the samples themselves there is nothing to pull.
        pull = float(self.consistency) if np.any(anchors != np.arange(len(X))) else 0.0
        codes = torch.as_tensor(label_codes, device=device) if label_codes is not None else None
        train_labels = codes[split["train"]] if codes is not None else None
        validation_labels = codes[split["validation"]] if codes is not None else None
        model = self.autoencoder_.to(device)
        head = self.head_.to(device) if self.head_ is not None else None
        parameters = [*model.parameters(), *(head.parameters() if head is not None else [])]
        optimizer = (
            torch.optim.AdamW(parameters, lr=self.learning_rate, weight_decay=float(self.weight_decay))
            if self.weight_decay
            else torch.optim.Adam(parameters, lr=self.learning_rate)
        )
        if state is not None:
            optimizer.load_state_dict(state["optimizer"])

        start = len(self.history_["train"])
        bar = progress_bar(
            range(start, self.epochs),
            desc="training",
            unit="epoch",
            enabled=self.progress,
            leave=False,
        )
        for epoch in bar:
            # The shuffle depends on (seed, epoch) only, so a resumed run repeats an uninterrupted one.
            generator = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + epoch)
            train_loss = self._epoch(
                model,
                optimizer,
                train,
                (anchor_inputs, pull),
                (head, train_labels, float(self.supervision), float(self.compactness)),
                generator,
                device,
            )
            validation_loss, cross_entropy = self._validation(model, validation, head, validation_labels)
            self.history_["train"].append(train_loss)
            self.history_["validation"].append(validation_loss)
            watched = validation_loss
            if cross_entropy is not None:
                self.history_.setdefault("validation_cross_entropy", []).append(cross_entropy)
                watched += float(self.supervision) * cross_entropy
            if watched < self.best_loss_:
                self.best_loss_, self.best_epoch_ = watched, epoch
                self._best_state = copy.deepcopy(model.state_dict())
            bar.set_postfix(
                train=f"{train_loss:.4g}",
                validation=f"{validation_loss:.4g}",
                best=self.best_epoch_,
                refresh=False,
            )
            if self.checkpoint is not None:
                self._save_checkpoint(optimizer)
            if epoch - self.best_epoch_ >= self.patience:
                break
        bar.close()
        model.load_state_dict(self._best_state)
        self.autoencoder_ = model.cpu().double().eval()
        self.head_ = head.cpu() if head is not None else None
        return self

    def _check_labels(
        self, labels: Sequence[str] | np.ndarray | None, n_samples: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The sorted label names and each sample's index among them; empty and None when the
        label terms are off (labels are then not needed, and ignored)."""
        if not float(self.supervision) and not float(self.compactness):
            return np.array([], dtype=str), None
        if labels is None:
            raise ValueError(
                "supervision or compactness > 0 needs each sample's label (fit's labels=): data sets "
                "from `nanochart generate` carry them"
            )
        labels = np.asarray(labels).astype(str)
        if labels.shape != (n_samples,):
            raise ValueError(f"labels must have one entry per sample ({n_samples}), got shape {labels.shape}")
        classes, codes = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"the label terms need at least two labels, the data have {list(classes)}")
        return classes, codes

    def _new_head(self, n_classes: int) -> torch.nn.Module | None:
        """The supervision term's classifier head; None without the term (or without labels)."""
        if not n_classes or not float(self.supervision):
            return None
        return torch.nn.Sequential(
            torch.nn.Linear(int(self.n_cvs), 32), torch.nn.SiLU(), torch.nn.Linear(32, n_classes)
        )

    def _start(self, X: np.ndarray, groups: np.ndarray, classes: np.ndarray) -> None:
        torch.manual_seed(int(self.seed))
        rng = np.random.default_rng(int(self.seed))
        names, members = np.unique(groups, return_inverse=True)
        order = rng.permutation(len(names))
        n_validation = max(1, round(self.validation_fraction * len(names)))
        if n_validation >= len(names):
            raise ValueError(f"{len(names)} structures are too few to keep {n_validation} for validation")
        held = np.isin(members, order[:n_validation])
        self.validation_indices_ = np.flatnonzero(held)
        self.train_indices_ = np.flatnonzero(~held)
        self.n_bins_ = X.shape[1]
        model = self._new_autoencoder()
        model.encoder.set_input_scaling(torch.tensor(X[self.train_indices_], dtype=torch.float32))
        self.autoencoder_ = model
        self.classes_ = classes
        self.head_ = self._new_head(len(classes))
        self.history_ = {"train": [], "validation": []}
        self.best_loss_, self.best_epoch_ = math.inf, -1
        self._best_state = copy.deepcopy(model.state_dict())

    def _new_autoencoder(self) -> ConvAutoencoder:
        return ConvAutoencoder(
            self.n_bins_,
            int(self.n_cvs),
            tuple(self.channels),
            self.kernel_size,
            self.stride,
            self.activation,
        )

    def _epoch(
        self,
        model,
        optimizer,
        train: tuple[torch.Tensor, torch.Tensor],
        anchoring: tuple[torch.Tensor, float],
        supervising: tuple[torch.nn.Module | None, torch.Tensor | None, float, float],
        generator,
        device,
    ) -> float:
        """One pass over the training samples; ``anchoring`` is (each sample's anchor input, weight
        of the consistency term), ``supervising`` (classifier head, each sample's label index,
        weights of the supervision and compactness terms)."""
        model.train()
        head, labels, supervision, compactness = supervising
        if head is not None:
            head.train()
        inputs, targets = train
        anchor_inputs, weight = anchoring
        order = torch.randperm(len(inputs), generator=generator).to(device)
        total = 0.0
        # Drop a last batch of one: batch norm cannot train on a single sample.
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        batches = [b for b in batches if len(b) > 1] or batches
        for batch in batches:
            if weight:
                # Samples and anchors in one pass, so batch norm treats both alike.
                both = torch.cat([inputs[batch], anchor_inputs[batch]])
                z, z_anchor = model.encoder(both).split(len(batch))
                rebuilt = model.decoder(z)
            else:
                z, rebuilt = model(inputs[batch])
            loss = torch.nn.functional.mse_loss(rebuilt, model.encoder.standardize(targets[batch]))
            total_loss = loss
            if weight:
                spread = z_anchor.var(dim=0).sum().clamp_min(1e-12)
                pull = ((z - z_anchor) ** 2).sum(dim=1).mean() / spread
                total_loss = total_loss + weight * pull
            if head is not None and labels is not None:
                total_loss = total_loss + supervision * torch.nn.functional.cross_entropy(
                    head(z), labels[batch]
                )
            if compactness and labels is not None:
                total_loss = total_loss + compactness * within_label_share(z, labels[batch])
            optimizer.zero_grad()
            total_loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        return total / sum(len(b) for b in batches)

    @staticmethod
    def _validation(
        model, data: tuple[torch.Tensor, torch.Tensor], head, labels: torch.Tensor | None
    ) -> tuple[float, float | None]:
        """Reconstruction error on ``data`` and, with a head, its cross-entropy on the same codes
        (one encoder pass for both)."""
        model.eval()
        inputs, targets = data
        with torch.no_grad():
            z, rebuilt = model(inputs)
            loss = float(torch.nn.functional.mse_loss(rebuilt, model.encoder.standardize(targets)))
            if head is None or labels is None:
                return loss, None
            head.eval()
            return loss, float(torch.nn.functional.cross_entropy(head(z), labels))

    # -- using the fitted model ------------------------------------------------------------------

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Latent CVs (n_structures, n_cvs) of RDFs ``X``, in float64."""
        X = self._check_rdfs(X)
        with torch.no_grad():
            return self.encoder_(torch.tensor(X, dtype=torch.float64)).numpy()

    @property
    def encoder_(self) -> ConvEncoder:
        return self.autoencoder_.encoder

    def summary(self) -> dict[str, Any]:
        """Training settings and results, as stored in the exported model's metadata."""
        summary: dict[str, Any] = {
            "n_structures": int(len(self.train_indices_) + len(self.validation_indices_)),
            "n_train": len(self.train_indices_),
            "n_validation": len(self.validation_indices_),
            "best_epoch": int(self.best_epoch_),
            "epochs_run": len(self.history_["train"]),
            "train_loss": float(self.history_["train"][self.best_epoch_]),
            "validation_loss": float(self.history_["validation"][self.best_epoch_]),
        }
        if "validation_cross_entropy" in self.history_:
            summary["validation_cross_entropy"] = float(
                self.history_["validation_cross_entropy"][self.best_epoch_]
            )
        summary["settings"] = {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in self.get_params().items()
            if k not in ("checkpoint", "progress", "metadata")
        }
        return summary

    def export(
        self,
        path: str | os.PathLike[str],
        *,
        rdf: RdfSettings | Mapping[str, Any],
        elements: Sequence[str],
        n_atoms: int,
        cv_names: Sequence[str] | None = None,
        data: str | None = None,
    ) -> Path:
        """Write the encoder as TorchScript with its nanochart.json metadata (see export_model)."""
        from ..core.model_file import export_model

        training = self.summary()
        if data is not None:
            training["data"] = data
        return export_model(
            copy.deepcopy(self.encoder_),
            path,
            rdf=rdf,
            elements=elements,
            n_atoms=n_atoms,
            cv_names=cv_names,
            training=training,
        )

    # -- checkpoints -----------------------------------------------------------------------------

    def _checkpoint_exists(self) -> bool:
        return self.checkpoint is not None and Path(self.checkpoint).is_file()

    def _save_checkpoint(self, optimizer: torch.optim.Optimizer) -> None:
        if self.checkpoint is None:
            return
        path = Path(self.checkpoint)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "version": CHECKPOINT_VERSION,
            "params": self.get_params(),
            "model": self.autoencoder_.state_dict(),
            "best_model": self._best_state,
            "optimizer": optimizer.state_dict(),
            "history": self.history_,
            "best_loss": self.best_loss_,
            "best_epoch": self.best_epoch_,
            "n_bins": self.n_bins_,
            "train_indices": self.train_indices_,
            "validation_indices": self.validation_indices_,
            "classes": list(self.classes_),
            "head": self.head_.state_dict() if self.head_ is not None else None,
        }
        partial = path.with_suffix(path.suffix + ".partial")
        torch.save(state, partial)
        partial.replace(path)  # an interrupted save never leaves a truncated checkpoint

    @staticmethod
    def _check_resumable(state: dict[str, Any], X: np.ndarray) -> None:
        if state["n_bins"] != X.shape[1]:
            raise ValueError(
                f"the checkpoint was trained on {state['n_bins']} bins, the data have {X.shape[1]}"
            )
        n_structures = len(state["train_indices"]) + len(state["validation_indices"])
        if n_structures != len(X):
            raise ValueError(
                f"the checkpoint was trained on {n_structures} structures, the data have {len(X)}: "
                "resume with the same data set"
            )

    def _restore(self, state: dict[str, Any]) -> None:
        self.n_bins_ = state["n_bins"]
        self.train_indices_ = np.asarray(state["train_indices"])
        self.validation_indices_ = np.asarray(state["validation_indices"])
        self.autoencoder_ = self._new_autoencoder()
        self.autoencoder_.load_state_dict(state["model"])
        self._best_state = state["best_model"]
        self.history_ = state["history"]
        self.best_loss_, self.best_epoch_ = state["best_loss"], state["best_epoch"]
        # Checkpoints written before the supervision term have neither key.
        self.classes_ = np.array(state.get("classes", []), dtype=str)
        self.head_ = self._new_head(len(self.classes_))
        if self.head_ is not None and state.get("head") is not None:
            self.head_.load_state_dict(state["head"])

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str]) -> ChartAutoencoder:
        """The fitted estimator (best weights) saved in a training checkpoint."""
        state = load_checkpoint(path)
        model = cls(**{**state["params"], "checkpoint": path})
        model._restore(state)
        model.autoencoder_.load_state_dict(state["best_model"])
        model.autoencoder_ = model.autoencoder_.double().eval()
        return model

    def _check_rdfs(self, X: np.ndarray, fitting: bool = False) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"RDFs must be an array of shape (n_structures, n_bins), got {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("the RDFs contain NaN or infinite values")
        if not fitting and X.shape[1] != self.n_bins_:
            raise ValueError(f"the model was trained on {self.n_bins_} bins, got {X.shape[1]}")
        if fitting and X.shape[0] < 4:
            raise ValueError(f"training needs at least 4 structures, got {X.shape[0]}")
        return X


def within_label_share(codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Within-label variance of ``codes`` (n, d) over their total variance: 0 when every label sits
    on one point, 1 when the labels' means coincide."""
    counts = torch.bincount(labels).clamp_min(1).to(codes.dtype)
    sums = torch.zeros(len(counts), codes.shape[1], dtype=codes.dtype, device=codes.device)
    means = sums.index_add(0, labels, codes) / counts[:, None]
    within = ((codes - means[labels]) ** 2).sum()
    total = ((codes - codes.mean(dim=0)) ** 2).sum().clamp_min(1e-12)
    return within / total


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no training checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise ValueError(f"{path} is not a nanochart training checkpoint ({error})") from error
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path} is not a nanochart training checkpoint (version {CHECKPOINT_VERSION})")
    return state
