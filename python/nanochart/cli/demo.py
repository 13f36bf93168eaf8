"""`nanochart demo`: the whole pipeline on a small Au147 data set, end to end, in a few minutes.

Each step is the command a user would type (printed before it runs), so the demo doubles as a
tutorial: generate a data set and a held-out set, train, export, chart (with the held-out k-NN
accuracy of the CNA labels), run a short unbiased LAMMPS MD, project it on the chart, write a
plumed.dat for the model, run `plumed driver` with RDF_ENCODER on that trajectory and compare its
CVs with nanochart's, and run a short well-tempered metadynamics on the chart's first two CVs
through RDF_ENCODER inside LAMMPS. The PLUMED steps need PLUMED and the plugin, which the set-up
provides; without them they say why and are skipped.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo (defaults: about 5 minutes on 2 cores)."""

    structures: int = 4000
    held_out_structures: int = 800
    epochs: int = 120
    md_ps: float = 20.0
    md_temperature: float = 450.0
    metad_ps: float = 20.0
    seed: int = 0


#: Runs one `nanochart` command line (argv without the program name) and returns its exit status:
#: `nanochart.cli.main`, handed in by the command line, so that this module does not import it back.
CommandRunner = Callable[[list[str]], int]


class Demo:
    """Runs the steps, timing each and collecting the outputs to list at the end."""

    def __init__(self, out: Path, settings: DemoSettings, workers: int | None, runner: CommandRunner) -> None:
        self.out, self.settings, self.workers, self.runner = out, settings, workers, runner
        self.outputs: list[tuple[str, Path]] = []
        self.started = time.perf_counter()
        self.step = 0
        self.total = len(STEPS)

    def announce(self, title: str) -> None:
        self.step += 1
        elapsed = time.perf_counter() - self.started
        print(f"\n== [{self.step}/{self.total}] {title}  (demo time so far {elapsed:.0f} s)", flush=True)

    def command(self, *argv: str) -> None:
        """Run a `nanochart` verb as a user would, stopping the demo if it fails."""
        print("$ nanochart " + shlex.join(argv), flush=True)
        if self.runner(list(argv)) != 0:
            raise RuntimeError(f"the demo stopped: `nanochart {argv[0]}` failed (its error is above)")

    def keep(self, what: str, path: Path) -> Path:
        self.outputs.append((what, path))
        return path


def run_demo(
    runner: CommandRunner,
    out: str = "nanochart-demo",
    settings: DemoSettings | None = None,
    workers: int | None = None,
) -> list[tuple[str, Path]]:
    """Run the demo into ``out``, each step a command line run by ``runner`` (`nanochart.cli.main`);
    returns (description, path) of every output."""
    settings = settings or DemoSettings()
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    demo = Demo(out_dir, settings, workers, runner)
    for step in STEPS:
        step(demo)
    elapsed = time.perf_counter() - demo.started
    print(f"\n== done in {elapsed / 60:.1f} min; outputs:")
    width = max(len(what) for what, _ in demo.outputs)
    for what, path in demo.outputs:
        print(f"  {what:<{width}}  {path}")
    return demo.outputs


def _data(demo: Demo) -> None:
    demo.announce("data: LAMMPS MD of Au147 at 250-570 K, every snapshot quenched and CNA-labelled")
    s, out = demo.settings, demo.out
    workers = ["--workers", str(demo.workers)] if demo.workers else []
    for name, structures, seed in (
        ("train", s.structures, s.seed),
        ("held_out", s.held_out_structures, s.seed + 1),
    ):
        path = out / f"{name}.extxyz"
        demo.command(
            "generate", "--element", "Au", "--natoms", "147", "--structures", str(structures),
            "--seed", str(seed), "--out", str(path), *workers,
        )  # fmt: skip
        demo.keep(f"{name} data set (extxyz)", path)
    demo.keep("label shares per temperature", out / "train.labels.png")


def _train(demo: Demo) -> None:
    demo.announce("train the autoencoder on the RDFs, export the encoder")
    out, s = demo.out, demo.settings
    # SiLU: smooth bias forces, so the model is ready for biased MD.
    demo.command(
        "train", str(out / "train.extxyz"), "--out", str(out / "training"), "--activation", "silu",
        "--epochs", str(s.epochs), "--patience", "20", "--seed", str(s.seed),
    )  # fmt: skip
    demo.keep("loss curve", out / "training" / "loss.png")
    demo.command("export", str(out / "training" / "checkpoint.pt"), "--out", str(out / "model.pt"))
    demo.keep("model (TorchScript + nanochart.json)", out / "model.pt")


def _chart(demo: Demo) -> None:
    demo.announce("chart the data set; k-NN accuracy of the held-out CNA labels; off-chart calibration")
    out = demo.out
    demo.command(
        "chart", str(out / "model.pt"), str(out / "train.extxyz"), "--out", str(out / "chart"),
        "--held-out", str(out / "held_out.extxyz"),
    )  # fmt: skip
    demo.keep("chart by CNA label", out / "chart" / "chart_labels.png")
    demo.keep("chart by family", out / "chart" / "chart_families.png")
    demo.keep("held-out confusion matrix", out / "chart" / "held_out_confusion.png")
    # Off-chart warnings for the projection below: calibrated on the same held-out set (in
    # distribution, never trained on), stored in the model file.
    demo.command(
        "calibrate-novelty", str(out / "model.pt"), "--chart", str(out / "chart"),
        "--held-out", str(out / "held_out.extxyz"), "--report", str(out / "chart" / "novelty.json"),
    )  # fmt: skip
    demo.keep("off-chart calibration", out / "chart" / "novelty.json")


def _md(demo: Demo) -> None:
    from ase.io import read, write

    demo.announce("a short unbiased MD run (LAMMPS, EAM) from the lowest-energy structure")
    out, s = demo.out, demo.settings
    frames = read(out / "train.extxyz", ":")
    start = min(frames, key=lambda atoms: atoms.get_potential_energy())
    print(
        f"start      {start.info['label']} structure of {start.get_potential_energy():.3f} eV "
        f"(lowest of {len(frames)})"
    )
    write(out / "md_start.extxyz", start)
    timestep_fs = 3.5
    steps = round(s.md_ps * 1000 / timestep_fs)
    demo.command(
        "md", str(out / "md_start.extxyz"), "--out", str(out / "md"), "--steps", str(steps),
        "--temperature", f"{s.md_temperature:g}", "--timestep", str(timestep_fs),
        "--dump-every", str(max(1, steps // 200)), "--seed", str(s.seed + 7),
    )  # fmt: skip
    demo.keep("MD trajectory", out / "md" / "trajectory.extxyz")


def _project(demo: Demo) -> None:
    demo.announce("project the trajectory on the chart")
    out = demo.out
    demo.command(
        "project", str(out / "model.pt"), str(out / "md" / "trajectory.extxyz"), "--out",
        str(out / "projection"), "--chart", str(out / "chart"), "--window", "10",
    )  # fmt: skip
    demo.keep("CVs in time (COLVAR)", out / "projection" / "COLVAR")
    demo.keep("CVs in time (plot)", out / "projection" / "cvs_vs_time.png")


def _plumed_input(demo: Demo) -> None:
    demo.announce("a ready plumed.dat for the model")
    out = demo.out
    demo.command(
        "plumed-input", str(out / "model.pt"), "--chart", str(out / "chart"),
        "--out", str(out / "plumed.dat"), "--temperature", f"{demo.settings.md_temperature:g}",
    )  # fmt: skip
    demo.keep("PLUMED input", out / "plumed.dat")


def _driver(demo: Demo) -> None:
    from ..core.cv import CV
    from ..data.structures import read_structures
    from ..model.features import encode_structures
    from ..simulation.plumed_driver import run_driver, write_driver_xyz
    from ..simulation.plumed_install import find_plumed, plugin_path

    demo.announce("`plumed driver` with RDF_ENCODER on the MD trajectory")
    out = demo.out
    plumed, plugin = find_plumed(), plugin_path()
    if plumed is None or plugin is None:
        reason = "no PLUMED found (put `plumed` on PATH)" if plumed is None else "the plugin is not built"
        print(f"skipped    {reason}; see README, 'In PLUMED'")
        return
    frames = read_structures(out / "md" / "trajectory.extxyz")
    trajectory = write_driver_xyz(frames, out / "driver" / "trajectory.xyz")
    text = (out / "plumed.dat").read_text()
    print(f"$ cd {out / 'driver'}")
    print(f"$ plumed driver --plumed plumed.dat --ixyz {trajectory.name} --length-units A")
    run = run_driver(text, trajectory, out / "driver", plumed=plumed)
    if run.returncode != 0:
        raise RuntimeError(f"plumed driver failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    colvar = np.loadtxt(out / "driver" / "COLVAR", ndmin=2)[:, 1:]
    ours = encode_structures(CV(out / "model.pt"), frames, progress=False)
    difference = float(np.abs(colvar - ours).max())
    print(
        f"PLUMED     {plumed.version}: CVs of {len(frames)} frames from RDF_ENCODER match nanochart.CV "
        f"to {difference:.2e} (max abs; COLVAR holds 10 decimals)"
    )
    demo.keep("plumed driver COLVAR", out / "driver" / "COLVAR")


def _biased_md(demo: Demo) -> None:
    from ..simulation.plumed_install import find_plumed, plugin_path

    demo.announce("biased MD: well-tempered metadynamics on (cv1, cv2) through RDF_ENCODER in LAMMPS")
    out, s = demo.out, demo.settings
    if find_plumed() is None or plugin_path() is None:
        print("skipped    no PLUMED or no RDF_ENCODER plugin; see README, 'In PLUMED'")
        return
    biased = out / "metad"
    biased.mkdir(exist_ok=True)
    demo.command(
        "plumed-input", str(out / "model.pt"), "--chart", str(out / "chart"), "--metad",
        "--temperature", f"{s.md_temperature:g}", "--height", "2", "--pace", "50", "--stride", "10",
        "--out", str(biased / "plumed.dat"),
    )  # fmt: skip
    timestep_fs = 3.5
    steps = round(s.metad_ps * 1000 / timestep_fs)
    demo.command(
        "md", str(out / "md_start.extxyz"), "--plumed", str(biased / "plumed.dat"), "--out", str(biased),
        "--steps", str(steps), "--temperature", f"{s.md_temperature:g}", "--timestep", str(timestep_fs),
        "--dump-every", str(max(1, steps // 200)), "--seed", str(s.seed + 11),
    )  # fmt: skip
    demo.keep("metadynamics COLVAR (CVs, bias)", biased / "COLVAR_METAD")
    demo.keep("metadynamics HILLS", biased / "HILLS")
    demo.keep("metadynamics path and bias (plot)", biased / "biased_run.png")


STEPS: list[Callable[[Demo], None]] = [
    _data,
    _train,
    _chart,
    _md,
    _project,
    _plumed_input,
    _driver,
    _biased_md,
]
