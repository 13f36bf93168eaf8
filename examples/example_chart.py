"""The chart the MD examples bias: Au147 structures sampled by unbiased LAMMPS MD at 400 K from
the three shipped motifs (Ih, Ino decahedron, cuboctahedron), and a SiLU autoencoder trained on
them (smooth bias forces; see the README). Cached in OUT/chart/ so both examples share it.

Once the data-set issue ships models/au147.pt, pass --model to the examples instead.
"""

from __future__ import annotations

from pathlib import Path

from ase.io import read, write

from nanochart.featurize import featurize_file
from nanochart.md import run_md
from nanochart.training import ChartAutoencoder

HERE = Path(__file__).parent


def example_chart(out: Path, *, steps_per_motif: int = 4000, temperature: float = 400.0) -> tuple[Path, Path]:
    """(model file, data file): sample, train and export once, then reuse."""
    folder = out / "chart"
    model, data = folder / "au147_silu.pt", folder / "au147_400K.extxyz"
    if model.is_file() and data.is_file():
        return model, data
    frames = []
    for i, motif in enumerate(read(HERE / "data" / "au147_motifs.extxyz", index=":")):
        run = run_md(
            motif,
            None,
            folder / f"md_{motif.info['motif']}",
            steps=steps_per_motif,
            temperature=temperature,
            timestep=0.002,
            seed=100 + i,
            dump_every=20,
        )
        for frame in read(run.outputs["trajectory"], index=":"):
            frame.info["motif"] = motif.info["motif"]
            frames.append(frame)
    write(data, frames, format="extxyz")
    rdfs, settings, _ = featurize_file(data)
    chart = ChartAutoencoder(activation="silu", epochs=150, patience=25, seed=0).fit(rdfs)
    chart.export(model, rdf=settings.as_dict(), elements=["Au"], n_atoms=147, data=str(data))
    print(
        f"chart      trained on {len(frames)} MD structures: validation loss {chart.best_loss_:.4g}, {model}"
    )
    return model, data
