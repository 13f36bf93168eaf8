"""Compare encoder configurations on noisy Au147 motifs: validation loss, k-NN separation, fit time.

600 structures (Ih, Ino decahedron, cuboctahedron; Gaussian displacements of 0.05-0.3 angstrom),
at most 150 epochs with patience 25, seed 0, one thread. Prints the markdown table in README.

    python benchmarks/encoder_configs.py
"""

from __future__ import annotations

import time

import numpy as np
import torch
from ase.cluster import Decahedron, Icosahedron, Octahedron
from sklearn.neighbors import KNeighborsClassifier

from nanochart.model.features import choose_settings, featurize
from nanochart.model.training import ChartAutoencoder

CONFIGS = [
    ((16, 32, 32, 64, 64), 5),
    ((8, 16, 16, 32, 32), 5),
    ((16, 32, 32, 64, 64), 3),
    ((32, 64, 64, 128, 128), 5),
]


def noisy_motifs(per_motif: int, seed: int) -> tuple[list, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames, labels = [], []
    builders = {
        "Ih": lambda: Icosahedron("Au", 4),
        "Dh": lambda: Decahedron("Au", 4, 4, 0),
        "fcc": lambda: Octahedron("Au", 7, 3),
    }
    for label, build in builders.items():
        for _ in range(per_motif):
            atoms = build()
            atoms.positions += rng.normal(scale=rng.uniform(0.05, 0.3), size=atoms.positions.shape)
            frames.append(atoms)
            labels.append(label)
    return frames, np.array(labels)


def main() -> None:
    torch.set_num_threads(1)
    frames, labels = noisy_motifs(200, seed=5)
    rdfs = featurize(frames, choose_settings(frames), progress=False)
    print("| channels | kernel | parameters | best val. loss | k-NN held-out accuracy | fit time (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for channels, kernel in CONFIGS:
        start = time.time()
        model = ChartAutoencoder(
            channels=channels, kernel_size=kernel, epochs=150, patience=25, progress=False, seed=0
        )
        model.fit(rdfs)
        seconds = time.time() - start
        cvs = model.transform(rdfs)
        train, held_out = model.train_indices_, model.validation_indices_
        accuracy = (
            KNeighborsClassifier(5).fit(cvs[train], labels[train]).score(cvs[held_out], labels[held_out])
        )
        parameters = sum(p.numel() for p in model.encoder_.parameters())
        loss = model.best_loss_
        print(f"| {channels} | {kernel} | {parameters} | {loss:.4f} | {accuracy:.3f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
