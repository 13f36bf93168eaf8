"""How well can any classifier name a thermal Au147 structure's quench label? Two measurements on
the data of make.sh (WORK_DIR, default build/au147-model), for the MD-ready CV bar (thermal 5-NN
accuracy on the chart):

1. Supervised ceiling: a multilayer perceptron (scikit-learn, two hidden layers) trained with the
   labels on the RDFs (the model's RDF settings) of every training quench and thermal snapshot,
   scored on the thermal snapshots of thermal_test.extxyz, per temperature. The chart is trained
   without labels and keeps 3 numbers; this classifier sees all 200 bins and the labels. With
   --variants, the same for other descriptors: other RDF settings, a quarter of the training data,
   and the RDF with a radial density profile and a coordination-number histogram appended.
2. Label reproducibility: from thermal snapshots of thermal_test.extxyz, 0.1 ps more Langevin MD at
   the snapshot's temperature with fresh velocities, then a quench and the CNA label: the share that
   keeps the stored label. (As a check, the snapshot quenched as it is must give the stored label.)

Usage: python models/au147/thermal_ceiling.py [WORK_DIR] [--snapshots 600]; prints a table and
writes WORK_DIR/thermal_ceiling.json. About 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from nanochart.core.rdf import RdfSettings
from nanochart.data.cna import analyse
from nanochart.data.structures import positions_of, read_structures, structure_labels, thermal_frames
from nanochart.model.features import featurize_file, training_data
from nanochart.simulation.lammps_session import gather, quench, scatter, start_lammps

CONTINUE_PS = 0.1
TIMESTEP_PS = 0.0035  # nanochart generate's time step for Au


def per_temperature(right: np.ndarray, temperatures: np.ndarray) -> dict[str, dict[str, float]]:
    """Share right and its standard error, per temperature."""
    out = {}
    for t in np.unique(temperatures):
        mine = right[temperatures == t]
        p = float(mine.mean())
        out[f"{t:g}"] = {
            "share": p,
            "standard_error": float(np.sqrt(p * (1 - p) / len(mine))),
            "n": len(mine),
        }
    return out


def shape_features(frames: list[Atoms]) -> np.ndarray:
    """Per structure: atoms' distances from the centre of mass as a Gaussian-smeared profile
    (0-11 angstrom, 110 bins, sigma 0.15) and a histogram of smooth coordination numbers (Fermi
    switch at 3.4 angstrom, width 0.2): descriptors the RDF does not hold directly."""
    positions = positions_of(frames)
    radius = np.linalg.norm(positions - positions.mean(axis=1, keepdims=True), axis=2)
    grid = np.linspace(0.0, 11.0, 110)
    profile = np.exp(-0.5 * ((radius[:, :, None] - grid) / 0.15) ** 2).sum(axis=1)
    counts = []
    for p in positions:
        distance = np.linalg.norm(p[:, None] - p[None], axis=2)
        coordination = (1.0 / (1.0 + np.exp((distance - 3.4) / 0.2))).sum(axis=1) - 0.5
        counts.append(np.histogram(coordination, bins=np.arange(2.5, 14.0, 0.5))[0])
    return np.hstack([profile, np.array(counts, dtype=float)])


def supervised_ceiling(
    work: Path, settings: RdfSettings | None = None, fraction: float = 1.0, shape: bool = False
) -> dict:
    train = training_data(work / "train.extxyz", settings, target="quench")
    n = len(train.frames)
    labels = np.array(structure_labels(train.frames))
    rdfs, _, frames = featurize_file(work / "thermal_test.extxyz", train.settings, thermal=True)
    snapshots, owners = thermal_frames(frames)
    truth = np.array(structure_labels(frames))[owners]
    inputs, tests = train.inputs, rdfs[len(frames) :]
    if shape:
        inputs = np.hstack([inputs, shape_features([*train.frames, *thermal_frames(train.frames)[0]])])
        tests = np.hstack([tests, shape_features(snapshots)])
    kept = np.random.default_rng(0).permutation(n)[: round(fraction * n)]
    rows = np.isin(train.groups, kept)  # whole structures: a quench with its snapshots
    classifier = make_pipeline(
        StandardScaler(), MLPClassifier((128, 64), max_iter=300, early_stopping=True, random_state=0)
    )
    classifier.fit(inputs[rows], labels[train.groups[rows]])  # every row carries its quench's label
    right = classifier.predict(tests) == truth
    temperatures = np.array([float(s.info["temperature"]) for s in snapshots])
    return {
        "rdf": train.settings.as_dict(),
        "training_structures": len(kept),
        "shape_features": shape,
        "thermal": per_temperature(right, temperatures),
    }


VARIANTS = {
    "sigma 0.05 angstrom, 400 bins": {"settings": RdfSettings(0.0, 21.5, 400, 0.05)},
    "sigma 0.2 angstrom": {"settings": RdfSettings(0.0, 21.5, 200, 0.2)},
    "a quarter of the training structures": {"fraction": 0.25},
    "RDF + radial profile + coordination histogram": {"shape": True},
}


def label_reproducibility(work: Path, n_snapshots: int, seed: int) -> dict:
    frames = read_structures(work / "thermal_test.extxyz")
    snapshots, owners = thermal_frames(frames)
    labels = structure_labels(frames)
    pick = np.random.default_rng(seed).permutation(len(snapshots))[:n_snapshots]
    rows = []
    with tempfile.TemporaryDirectory(prefix="nanochart-ceiling-") as work_dir:
        _, lmp = start_lammps(snapshots[0], Path(work_dir))
        for line in (f"timestep {TIMESTEP_PS}", "fix integrate all nve", "min_style cg"):
            lmp.command(line)
        origin = gather(lmp, "x").mean(axis=0)  # the centre of LAMMPS' box
        for k, index in enumerate(tqdm(pick, desc="re-quenching", unit="snapshot")):
            snapshot = snapshots[index]
            temperature = float(snapshot.info["temperature"])
            start = snapshot.positions - snapshot.positions.mean(axis=0) + origin
            scatter(lmp, "x", start)
            as_is = analyse(Atoms(snapshot.symbols, positions=quench(lmp)[0])).label
            scatter(lmp, "x", start)
            lmp.command(f"velocity all create {temperature} {seed + k + 1} mom yes rot yes dist gaussian")
            lmp.command(
                f"fix thermostat all langevin {temperature} {temperature} 0.1 {seed + k + 1} zero yes"
            )
            lmp.command(f"run {round(CONTINUE_PS / TIMESTEP_PS)}")
            lmp.command("unfix thermostat")
            later = analyse(Atoms(snapshot.symbols, positions=quench(lmp)[0])).label
            rows.append((temperature, labels[owners[index]], as_is, later))
        lmp.close()
    temperatures = np.array([r[0] for r in rows])
    stored = np.array([r[1] for r in rows])
    return {
        "continue_ps": CONTINUE_PS,
        "same_label_quenched_as_is": float(np.mean(stored == np.array([r[2] for r in rows]))),
        "same_label_after_continuing": per_temperature(
            stored == np.array([r[3] for r in rows]), temperatures
        ),
        "same_label_after_continuing_per_label": {
            name: float(np.mean(np.array([r[3] for r in rows])[stored == name] == name))
            for name in sorted(set(stored))
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", nargs="?", default="build/au147-model", type=Path)
    parser.add_argument("--snapshots", type=int, default=600, help="snapshots re-quenched (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--variants", action="store_true", help="also the other descriptors (10 minutes more)"
    )
    args = parser.parse_args()
    report = {
        "supervised_ceiling": supervised_ceiling(args.work),
        "label_reproducibility": label_reproducibility(args.work, args.snapshots, args.seed),
    }
    if args.variants:
        report["variants"] = {name: supervised_ceiling(args.work, **v) for name, v in VARIANTS.items()}
    (args.work / "thermal_ceiling.json").write_text(json.dumps(report, indent=1))
    ceiling = report["supervised_ceiling"]["thermal"]
    again = report["label_reproducibility"]["same_label_after_continuing"]
    print(
        "temperature (K) | supervised RDF classifier on thermal snapshots | label kept after 0.1 ps more MD"
    )
    for t in ceiling:
        c, a = ceiling[t], again.get(t, {"share": float("nan"), "standard_error": float("nan")})
        print(
            f"{t:>15} | {c['share']:.3f} +- {c['standard_error']:.3f} (n {c['n']})"
            f" | {a['share']:.3f} +- {a['standard_error']:.3f}"
        )
    for name, variant in report.get("variants", {}).items():
        shares = ", ".join(f"{t} K {v['share']:.3f}" for t, v in variant["thermal"].items())
        print(f"supervised, {name}: {shares}")
    as_is = report["label_reproducibility"]["same_label_quenched_as_is"]
    print(f"quenched as they are, snapshots keep their label: {as_is:.3f}")
    print(f"wrote {args.work / 'thermal_ceiling.json'}")


if __name__ == "__main__":
    main()
