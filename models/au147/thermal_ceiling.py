"""How well can any classifier name a thermal Au147 structure's quench label? Two measurements on
the data of make.sh (WORK_DIR, default build/au147-model), for the MD-ready CV bar (thermal 5-NN
accuracy on the chart):

1. Supervised ceiling: a multilayer perceptron (scikit-learn, two hidden layers) trained with the
   labels on the RDFs (the model's RDF settings) of every training quench and thermal snapshot,
   scored on the thermal snapshots of thermal_test.extxyz, per temperature, and on the structures
   made elsewhere (elsewhere.extxyz, quenched and thermal) when WORK_DIR holds them. The chart keeps
   3 numbers; this classifier sees all 200 bins. Beside it, the chart's own classifier, a 5-NN, on
   the same rows (every bin, thermal snapshots among the references). With --variants, the same
   for other descriptors: other RDF settings, a quarter of the training data, the RDF with a radial
   density profile and a coordination-number histogram appended, the RDF with angular descriptors
   appended (bond-angle distribution, histograms of Steinhardt q4, q6 and of Lechner and Dellago's
   averaged q4-bar, q6-bar), all of them together, and the angular descriptors alone.
2. Label reproducibility: from thermal snapshots of thermal_test.extxyz, 0.1 ps more Langevin MD at
   the snapshot's temperature with fresh velocities, then a quench and the CNA label: the share that
   keeps the stored label. (As a check, the snapshot quenched as it is must give the stored label.)

Usage: python models/au147/thermal_ceiling.py [WORK_DIR] [--snapshots 600]; prints a table and
writes WORK_DIR/thermal_ceiling.json. About 5 minutes on 2 cores (--variants: 20 more).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms
from numpy.polynomial import legendre
from scipy.spatial import cKDTree
from scipy.special import sph_harm_y
from sklearn.neighbors import KNeighborsClassifier
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


def _first_shell(
    x: np.ndarray, cutoff: float, width: float, k_max: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bond vectors to the k_max nearest atoms within the first shell, their lengths and Fermi
    weights (zero for padding)."""
    d, j = cKDTree(x).query(x, k=k_max + 1, distance_upper_bound=cutoff + 6 * width)
    d, j = d[:, 1:], j[:, 1:]
    ok = np.isfinite(d)
    neighbours = np.where(ok, j, 0)
    lengths = np.where(ok, d, 1.0)
    weights = np.where(ok, 1.0 / (1.0 + np.exp((lengths - cutoff) / width)), 0.0)
    return x[neighbours] - x[:, None, :], lengths, weights, neighbours


def _averaged_q(
    bonds: np.ndarray, lengths: np.ndarray, w: np.ndarray, neighbours: np.ndarray, degree: int
) -> np.ndarray:
    """Lechner and Dellago's q-bar of this degree per atom: q_lm averaged over the atom and its
    neighbours."""
    theta = np.arccos(np.clip(bonds[..., 2] / lengths, -1, 1))
    phi = np.arctan2(bonds[..., 1], bonds[..., 0])
    m = np.arange(-degree, degree + 1)
    y = sph_harm_y(degree, m[None, None, :], theta[..., None], phi[..., None])
    q = (w[..., None] * y).sum(1) / w.sum(1)[:, None]
    averaged = (q + (w[..., None] * q[neighbours]).sum(1)) / (1 + w.sum(1))[:, None]
    return np.sqrt(4 * np.pi / (2 * degree + 1) * (np.abs(averaged) ** 2).sum(1))


def angular_features(
    frames: list[Atoms], cutoff: float = 3.45, width: float = 0.08, k_max: int = 18, sigma: float = 0.05
) -> np.ndarray:
    """Per structure, from first-shell bonds (Fermi switch at `cutoff` angstrom): the bond-angle
    distribution (cos theta, 40 bins, Gaussian-smeared by sigma), histograms of the atoms'
    Steinhardt q4 and q6 (by the addition theorem) and a 2-D histogram of their averaged q4-bar and
    q6-bar: local order (fcc, hcp, icosahedral environments) that the RDF holds only summed."""
    grid = np.linspace(-1, 1, 40)
    upper = np.triu_indices(k_max, 1)
    rows = []
    for atoms in frames:
        bonds, lengths, w, neighbours = _first_shell(atoms.positions, cutoff, width, k_max)
        units = bonds / lengths[..., None]
        cos = np.clip(np.einsum("akx,alx->akl", units, units), -1, 1)
        ww = w[:, :, None] * w[:, None, :]
        c, cw = cos[:, upper[0], upper[1]].ravel(), ww[:, upper[0], upper[1]].ravel()
        c, cw = c[cw > 1e-4], cw[cw > 1e-4]
        angles = (cw[:, None] * np.exp(-0.5 * ((c[:, None] - grid) / sigma) ** 2)).sum(0) / len(atoms)
        coordination = np.maximum(w.sum(1), 1e-9)
        q4, q6 = (
            np.sqrt(np.maximum((ww * legendre.legval(cos, [0] * degree + [1])).sum((1, 2)), 0)) / coordination
            for degree in (4, 6)
        )
        q4_bar = np.clip(_averaged_q(bonds, lengths, w, neighbours, 4), 0, 0.1999)
        q6_bar = np.clip(_averaged_q(bonds, lengths, w, neighbours, 6), 0, 0.5999)
        rows.append(
            np.concatenate(
                [
                    angles,
                    np.histogram(q4, np.linspace(0, 0.3, 16))[0],
                    np.histogram(q6, np.linspace(0, 0.65, 27))[0],
                    np.histogram2d(q4_bar, q6_bar, [np.linspace(0, 0.2, 11), np.linspace(0, 0.6, 13)])[
                        0
                    ].ravel(),
                ]
            )
        )
    return np.array(rows, dtype=float)


def _descriptors(
    rdf_rows: np.ndarray, frames: list[Atoms], rdf: bool, shape: bool, angular: bool
) -> np.ndarray:
    """The classifier's input rows: the RDF rows of `frames` and/or the other descriptors."""
    parts = [rdf_rows] if rdf else []
    if shape:
        parts.append(shape_features(frames))
    if angular:
        parts.append(angular_features(frames))
    return np.hstack(parts)


def supervised_ceiling(
    work: Path,
    settings: RdfSettings | None = None,
    fraction: float = 1.0,
    shape: bool = False,
    angular: bool = False,
    rdf: bool = True,
) -> dict:
    """The classifier trained on the training set's quenches and thermal snapshots, scored on the
    thermal snapshots of thermal_test.extxyz and, when WORK holds it, on the quenches and thermal
    snapshots of elsewhere.extxyz (structures made elsewhere, models/elsewhere.py)."""
    train = training_data(work / "train.extxyz", settings, target="quench")
    n = len(train.frames)
    labels = np.array(structure_labels(train.frames))
    rdfs, _, frames = featurize_file(work / "thermal_test.extxyz", train.settings, thermal=True)
    snapshots, owners = thermal_frames(frames)
    truth = np.array(structure_labels(frames))[owners]
    options = {"rdf": rdf, "shape": shape, "angular": angular}
    inputs = _descriptors(train.inputs, [*train.frames, *thermal_frames(train.frames)[0]], **options)
    tests = _descriptors(rdfs[len(frames) :], snapshots, **options)
    kept = np.random.default_rng(0).permutation(n)[: round(fraction * n)]
    rows = np.isin(train.groups, kept)  # whole structures: a quench with its snapshots
    classifier = make_pipeline(
        StandardScaler(), MLPClassifier((128, 64), max_iter=300, early_stopping=True, random_state=0)
    )
    classifier.fit(inputs[rows], labels[train.groups[rows]])  # every row carries its quench's label
    right = classifier.predict(tests) == truth
    temperatures = np.array([float(s.info["temperature"]) for s in snapshots])
    # The chart's classifier, a 5-NN, on the same standardised rows: what a 5-NN can do with every
    # bin and thermal snapshots among its references, against the chart's 5-NN on three CVs.
    scaler = StandardScaler().fit(inputs[rows])
    knn = KNeighborsClassifier(5).fit(scaler.transform(inputs[rows]), labels[train.groups[rows]])
    knn_right = knn.predict(scaler.transform(tests)) == truth
    report = {
        "rdf": train.settings.as_dict(),
        "training_structures": len(kept),
        "rdf_features": rdf,
        "shape_features": shape,
        "angular_features": angular,
        "thermal": per_temperature(right, temperatures),
        "thermal_5nn": per_temperature(knn_right, temperatures),
    }
    if (work / "elsewhere.extxyz").is_file():
        rdfs, _, frames = featurize_file(work / "elsewhere.extxyz", train.settings, thermal=True)
        snapshots, owners = thermal_frames(frames)
        truth = np.array(structure_labels(frames))
        quenched = classifier.predict(_descriptors(rdfs[: len(frames)], frames, **options)) == truth
        thermal = classifier.predict(_descriptors(rdfs[len(frames) :], snapshots, **options)) == truth[owners]
        report["elsewhere"] = {
            "n": len(frames),
            "quenched": float(quenched.mean()),
            "thermal": float(thermal.mean()),
            "quenched_recall_per_label": {
                name: float(quenched[truth == name].mean()) for name in sorted(set(truth))
            },
        }
    return report


VARIANTS = {
    "sigma 0.05 angstrom, 400 bins": {"settings": RdfSettings(0.0, 21.5, 400, 0.05)},
    "sigma 0.2 angstrom": {"settings": RdfSettings(0.0, 21.5, 200, 0.2)},
    "a quarter of the training structures": {"fraction": 0.25},
    "RDF + radial profile + coordination histogram": {"shape": True},
    "RDF + bond angles + Steinhardt q4, q6, q4-bar, q6-bar histograms": {"angular": True},
    "all of the above together": {"shape": True, "angular": True},
    "bond angles + Steinhardt histograms alone, no RDF": {"angular": True, "rdf": False},
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
        "--variants", action="store_true", help="also the other descriptors (20 minutes more)"
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
    for name, variant in {"RDF": report["supervised_ceiling"], **report.get("variants", {})}.items():
        shares = ", ".join(f"{t} K {v['share']:.3f}" for t, v in variant["thermal"].items())
        shares += " (5-NN on the same rows: "
        shares += ", ".join(f"{t} K {v['share']:.3f}" for t, v in variant["thermal_5nn"].items()) + ")"
        if "elsewhere" in variant:
            shares += f"; made elsewhere: quenched {variant['elsewhere']['quenched']:.3f}"
            shares += f", thermal {variant['elsewhere']['thermal']:.3f}"
        print(f"supervised, {name}: {shares}")
    as_is = report["label_reproducibility"]["same_label_quenched_as_is"]
    print(f"quenched as they are, snapshots keep their label: {as_is:.3f}")
    print(f"wrote {args.work / 'thermal_ceiling.json'}")


if __name__ == "__main__":
    main()
