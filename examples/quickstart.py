"""The smallest real end-to-end run of the core: CVs and bias forces of shipped Au147 structures.

1. exports an encoder of the paper's shape (five Conv1d+ReLU+BatchNorm blocks, then a linear
   layer) as a TorchScript file with its nanochart.json metadata; its weights are random (seeded)
   and its input scaling is fitted on the shipped motifs: it shows the machinery, it is not a
   trained chart (training is `nanochart train`);
2. loads it through the C++ core (`nanochart.CV`), the same code the PLUMED action runs;
3. computes the CVs of the three shipped motifs, and the forces of a harmonic restraint on the
   CVs, and checks those forces against finite differences of the bias energy.

Run: scripts/dev main   (or: python examples/quickstart.py [--out DIR])
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from ase.io import read

import nanochart
from nanochart.model.encoder import ConvEncoder

HERE = Path(__file__).parent
RDF = {"r_min": 0.0, "r_max": 16.0, "n_bins": 200, "sigma": 0.1}  # angstrom


def export_example_model(structures: list[np.ndarray], path: Path) -> Path:
    torch.manual_seed(2023)
    rng = np.random.default_rng(2023)
    # Thermal-like noise (0.1 angstrom) around each motif to fit the input scaling and batch norm.
    noisy = [x + 0.1 * rng.normal(size=x.shape) for x in structures for _ in range(20)]
    rdfs = torch.tensor(np.array([nanochart.rdf(x, **RDF) for x in noisy]))
    encoder = ConvEncoder(n_bins=RDF["n_bins"], n_cvs=3).double()
    encoder.set_input_scaling(rdfs)
    encoder.train()
    with torch.no_grad():
        encoder(rdfs)
    return nanochart.export_model(
        encoder,
        path,
        rdf=RDF,
        elements=["Au"],
        n_atoms=len(structures[0]),
        training={"note": "untrained example: random weights, seed 2023"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/quickstart"), help="output folder")
    args = parser.parse_args()

    frames = read(HERE / "data" / "au147_motifs.extxyz", index=":")
    structures = [atoms.positions for atoms in frames]
    model = export_example_model(structures, args.out / "au147_example.pt")
    cv = nanochart.CV(model)
    print(f"model      {model}")
    print(f"           {cv.n_cvs} CVs {cv.cv_names}, for Au{cv.n_atoms}, lengths in {cv.length_unit}")

    values = cv.values(np.array(structures))
    print("\nCVs of the shipped motifs (dimensionless):")
    print(f"  {'motif':6s} " + " ".join(f"{name:>10s}" for name in cv.cv_names))
    for atoms, s in zip(frames, values, strict=True):
        print(f"  {atoms.info['motif']:6s} " + " ".join(f"{v:10.5f}" for v in s))

    # Harmonic restraint V = k/2 |s - s0|^2 pulling the icosahedron towards the decahedron's CVs.
    k = 100.0  # eV per CV unit squared
    x, target = structures[0], values[1]
    s, _, _ = cv.compute(x)
    dV_ds = k * (s - target)
    forces, virial = cv.forces(x, dV_ds)

    def bias(y: np.ndarray) -> float:
        return 0.5 * k * float(np.sum((cv.compute(y)[0] - target) ** 2))

    step, atom = 1e-5, int(np.argmax(np.linalg.norm(forces, axis=1)))
    numeric = []
    for a in range(3):
        plus, minus = x.copy(), x.copy()
        plus[atom, a] += step
        minus[atom, a] -= step
        numeric.append(-(bias(plus) - bias(minus)) / (2 * step))
    error = np.abs(forces[atom] - numeric).max() / np.abs(forces[atom]).max()
    print(f"\nrestraint  V = {bias(x):.4f} eV, k = {k} eV, Ih pulled towards the Dh CVs")
    print(
        f"forces     max |F| = {np.abs(forces).max():.4f} eV/angstrom on atom {atom}; net force "
        f"{np.abs(forces.sum(axis=0)).max():.1e} eV/angstrom"
    )
    print(f"virial     trace = {np.trace(virial):.4f} eV (PLUMED convention)")
    print(f"check      analytic vs finite-difference force on atom {atom}: relative error {error:.1e}")
    if not error < 1e-6:
        raise SystemExit("force check failed")
    print("\nok: the exported model ran through the C++ core with consistent forces")


if __name__ == "__main__":
    main()
