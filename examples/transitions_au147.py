"""Does biasing along the chart move Au147 between motifs? MD from the ideal icosahedron (or
--start), unbiased, with well-tempered METAD, OPES_METAD or OPES_METAD_EXPLORE on (cv1, cv2) of the
shipped MD-ready model (all three CVs with --cvs 3); every ps a frame is quenched (EAM, conjugate
gradients) and labelled by CNA. Reports the time to the first change of motif, the motifs
visited, the returns to the start motif and, for the biased runs, the free-energy difference
between the two most populated motifs by reweighting (block-averaged error).

    python examples/transitions_au147.py --method metad [--ns 3] [--temperature 450] [--out out/transitions]

Writes OUT/METHOD/: the MD and PLUMED files, motifs.json (the analysis), motifs_vs_time.png (the
CNA label of each quench, the CVs and the bias against time), summary.json (changes of motif per
hour of wall time). With --walkers N (METAD), N walkers share one bias, each its own process, in
OUT/metad_N_walkers/walker_ID/. Needs PLUMED with the nanochart
plugin, LAMMPS and OVITO (the md and data extras). Energies in kJ/mol, time in ps, T in K.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from ase.io import read

from nanochart import plots
from nanochart.chart.charting import read_chart_cvs
from nanochart.data.cna import CLUSTER_LABELS, analyse
from nanochart.plots import colvar_fields, pyplot
from nanochart.simulation.lammps_session import quench_frames
from nanochart.simulation.md import cv_fluctuations, run_md, run_walkers
from nanochart.simulation.plumed_input import (
    MetadSettings,
    OpesSettings,
    plumed_input,
    read_colvar,
    rows_at_times,
)
from nanochart.simulation.plumed_install import plugin_path
from nanochart.simulation.transitions import (
    BOLTZMANN_KJ_PER_MOL_K,
    MotifPath,
    class_separation,
    cumulative_log_weights,
    free_energy_difference,
    free_energy_surface,
    reweighted_population,
    running_free_energy_difference,
)

HERE = Path(__file__).parent
MODEL = HERE.parent / "models" / "au147" / "au147.pt"
MOTIFS = HERE / "data" / "au147_motifs.extxyz"
#: Points of the running free-energy estimates kept in summary.json (fes_vs_time.png).
RUNNING_POINTS = 50
#: Free energies above this many kJ/mol share the top colour of fes.png (the rarely visited edges
#: would otherwise stretch the scale over the basins).
FES_CAP_KJ_MOL = 80.0
TIMESTEP_PS = 0.0025  # 400 steps per ps, so that frames fall on whole ps
#: The biases of this example, found by trying (README, "Enhanced sampling"); widths: the start
#: basin's thermal spread (--sigma to set them), walls at the chart's edges.
BIASES = {
    "metad": MetadSettings(height=5.0, pace=250, biasfactor=50.0),
    "opes": OpesSettings(barrier=300.0, pace=250),
    "opes-explore": OpesSettings(barrier=60.0, pace=250, explore=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=["unbiased", *BIASES], default="metad")
    parser.add_argument("--ns", type=float, default=3.0, help="length of the run in ns (default 3)")
    parser.add_argument("--temperature", type=float, default=450.0, help="K (default 450)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--walkers",
        type=int,
        default=1,
        help="METAD walkers sharing one bias, each its own process (default 1)",
    )
    parser.add_argument(
        "--barrier",
        type=float,
        help=f"OPES BARRIER in kJ/mol (default {BIASES['opes'].barrier:g}; opes-explore "
        f"{BIASES['opes-explore'].barrier:g})",
    )
    parser.add_argument(
        "--biasfactor",
        type=float,
        help=f"METAD BIASFACTOR (default {BIASES['metad'].biasfactor:g})",
    )
    parser.add_argument(
        "--cvs",
        type=int,
        default=2,
        help="bias the first CVS CVs (default 2: cv1, cv2; 3 adds cv3, along which thermal Ih"
        " and mix differ)",
    )
    parser.add_argument(
        "--sigma",
        type=lambda text: tuple(float(v) for v in text.split(",")),
        help="widths of the Gaussians or kernels in CV units, one per biased CV, comma-separated"
        " (default: each CV's standard deviation in --fluctuation-ps of unbiased MD from the start)",
    )
    parser.add_argument(
        "--fluctuation-ps",
        type=float,
        default=20.0,
        help="ps of unbiased MD from the start that measure the default widths (default 20)",
    )
    parser.add_argument(
        "--start",
        type=Path,
        help="an extxyz file whose last frame is the start (default: the ideal icosahedron)",
    )
    parser.add_argument(
        "--box",
        help="walls at LO,HI for each biased CV instead of at the chart's 1st and 99th percentiles,"
        " for example --box=-11,3,1,12 (cv1 from -11 to 3, cv2 from 1 to 12): the region of the"
        " motifs whose free energies you want, for the bias to fill",
    )
    parser.add_argument(
        "--skip-ps",
        type=float,
        help="ps of each run left out of the free energies while the bias builds up (default: a fifth)",
    )
    parser.add_argument(
        "--analyse-only", action="store_true", help="analyse the runs already in OUT/METHOD (no MD)"
    )
    parser.add_argument("--out", type=Path, default=Path("out/transitions"))
    args = parser.parse_args()
    if args.walkers > 1 and args.method != "metad":
        parser.error("--walkers needs --method metad (walkers share METAD's hills files)")
    if args.start is not None and not args.start.is_file():
        parser.error(f"--start {args.start}: no such file")
    out = args.out / (args.method if args.walkers == 1 else f"{args.method}_{args.walkers}_walkers")
    bias = BIASES.get(args.method)
    if args.barrier is not None and isinstance(bias, OpesSettings):
        bias = dataclasses.replace(bias, barrier=args.barrier)
    if args.biasfactor is not None and isinstance(bias, MetadSettings):
        bias = dataclasses.replace(bias, biasfactor=args.biasfactor)
    if args.sigma is not None and bias is not None:
        bias = dataclasses.replace(bias, sigma=args.sigma)
    if args.analyse_only:
        folders = sorted(out.glob("walker_*")) or [out]
        md_seconds = _md_seconds(out, folders)
    else:
        folders, md_seconds = _run(args, bias, out)
    paths = [report_run(folder, args.method, args.temperature) for folder in folders]
    changes = sum(len(path.sequence) - 1 for path in paths)
    summary = {
        "method": args.method,
        "temperature_K": args.temperature,
        "walkers": len(paths),
        "md_wall_s": md_seconds,
        "changes_of_motif": changes,
        "changes_per_wall_hour": changes / (md_seconds / 3600.0),
    }
    if args.method != "unbiased":
        skip = args.skip_ps if args.skip_ps is not None else 0.2 * float(paths[0].times[-1])
        summary["free_energy"] = free_energies(folders, paths, args.temperature, skip, out / "fes.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(
        f"{len(paths)} walker(s), MD {md_seconds:.0f} s: {changes} changes of motif,"
        f" {summary['changes_per_wall_hour']:.0f} per hour of wall time; wrote {out / 'summary.json'}"
    )


def _run(
    args: argparse.Namespace, bias: MetadSettings | OpesSettings | None, out: Path
) -> tuple[list[Path], float]:
    """The MD of the example: widths measured from the start unless given, then the biased (or
    unbiased) run of every walker. Returns the run folders and the MD wall time in s."""
    steps_per_ps = round(1.0 / TIMESTEP_PS)
    start = (
        read(args.start, index=-1)
        if args.start is not None
        else next(atoms for atoms in read(MOTIFS, index=":") if atoms.info.get("motif") == "Ih")
    )
    if args.sigma is None and bias is not None:
        # The start basin's thermal spread: widths from the chart's spread follow its far tails.
        widths = cv_fluctuations(
            start,
            MODEL,
            out / "fluctuations",
            temperature=args.temperature,
            picoseconds=args.fluctuation_ps,
            timestep=TIMESTEP_PS,
            seed=args.seed,
            plugin=plugin_path(),
        )[: args.cvs]
        bias = dataclasses.replace(bias, sigma=tuple(float(w) for w in widths))
        print(
            f"widths: {', '.join(f'{w:.3g}' for w in widths)} CV units (standard deviations over"
            f" {args.fluctuation_ps:g} ps of unbiased MD from the start)"
        )
    text = plumed_input(
        MODEL,
        plugin=plugin_path(),
        stride=steps_per_ps,  # one COLVAR row per quenched frame
        chart_cvs=read_chart_cvs(MODEL.parent / "chart"),
        temperature=args.temperature,
        metad=bias,
        active=args.method != "unbiased",
        walls=True,
        biased=args.cvs,
        box=_box(args.box, args.cvs),
    )
    options = {
        "steps": round(args.ns * 1000 * steps_per_ps),
        "temperature": args.temperature,
        "timestep": TIMESTEP_PS,
        "dump_every": steps_per_ps,
        "thermo_every": steps_per_ps,
    }
    began = time.perf_counter()
    if args.walkers > 1:
        runs = run_walkers(start, text, out, walkers=args.walkers, seed=args.seed, **options)
    else:
        runs = [run_md(start, text, out, seed=args.seed, **options)]
    return [run.outputs["thermo"].parent for run in runs], time.perf_counter() - began


def _box(text: str | None, biased: int) -> tuple[list[float], list[float]] | None:
    """--box LO,HI,LO,HI,... as (lower edges, upper edges)."""
    if text is None:
        return None
    values = [float(v) for v in text.split(",")]
    if len(values) != 2 * biased:
        raise SystemExit(f"--box takes LO,HI for each of the {biased} biased CVs, got {text!r}")
    return values[0::2], values[1::2]


def _md_seconds(out: Path, folders: list[Path]) -> float:
    """The MD wall time of runs already made: from their summary, else from their files' times."""
    if (out / "summary.json").is_file():
        return float(json.loads((out / "summary.json").read_text())["md_wall_s"])
    began = min((folder / "plumed.dat").stat().st_mtime for folder in folders)
    return max((folder / "trajectory.extxyz").stat().st_mtime for folder in folders) - began


def report_run(folder: Path, method: str, temperature: float) -> MotifPath:
    """Quench and label every frame of the run in ``folder`` (once: the labels are kept in its
    motifs.json), write motifs.json and motifs_vs_time.png."""
    report_file = folder / "motifs.json"
    frames = read(folder / "trajectory.extxyz", index=":")
    times = np.array([atoms.info["time"] for atoms in frames])
    known = json.loads(report_file.read_text()) if report_file.is_file() else {}
    if len(known.get("labels", [])) == len(frames):
        labels = known["labels"]
    else:
        labels = [analyse(atoms).label for atoms in quench_frames(frames)]
    path = MotifPath(times, tuple(labels))
    report = {"method": method, "temperature_K": temperature, **path.as_dict(), "labels": labels}
    report_file.write_text(json.dumps(report, indent=1))
    colvar = read_colvar(_colvar_file(folder))
    png = plot(path, colvar, folder / "motifs_vs_time.png")
    print(f"{method} at {temperature:g} K, {times[-1]:.0f} ps ({folder}):")
    print(
        f"  first change of motif: {path.first_change_ps} ps; visited {path.visited};"
        f" returns to {path.start}: {path.returns}"
    )
    print(f"  sequence {' > '.join(path.sequence[:40])}{' ...' if len(path.sequence) > 40 else ''}")
    print(f"wrote {report_file}, {png}")
    return path


def _colvar_file(folder: Path) -> Path:
    return folder / "COLVAR_METAD" if (folder / "COLVAR_METAD").is_file() else folder / "COLVAR"


def free_energies(
    folders: list[Path], paths: list[MotifPath], temperature: float, skip_ps: float, png: Path
) -> dict:
    """F(a) - F(b) for the two motifs of highest reweighted population, over the frames of all
    walkers after ``skip_ps`` (the bias is still building before), with errors from 5 blocks of
    time; its running estimate from the frames up to each time (fes_vs_time.png; each label's
    cumulative log weight kept for other pairs); and the reweighted free-energy surface on (cv1,
    cv2) with the quenched frames on top."""
    kt = BOLTZMANN_KJ_PER_MOL_K * temperature
    times, labels, log_weights, planes, every_cv = [], [], [], [], []
    for folder, path in zip(folders, paths, strict=True):
        colvar = read_colvar(_colvar_file(folder))
        all_cvs = read_colvar(folder / "COLVAR")  # every CV of the model, biased or not
        cv_names = [name for name in colvar_fields(all_cvs)[0] if not name.endswith(".novelty")]
        every_cv.append(
            np.column_stack([all_cvs[name] for name in cv_names])[
                rows_at_times(all_cvs, path.times, folder / "COLVAR")
            ]
        )
        biased = len(colvar_fields(colvar)[0])
        column = "metad.rbias" if "metad.rbias" in colvar else "opes.bias"
        rows = rows_at_times(colvar, path.times, _colvar_file(folder))  # the bias at each frame
        kept = path.times >= skip_ps
        times.append(path.times[kept])
        labels.append(np.asarray(path.labels)[kept])
        log_weights.append(colvar[column][rows][kept] / kt)
        first, second = colvar_fields(colvar)[0][:2]
        planes.append(np.column_stack([colvar[first][rows], colvar[second][rows]])[kept])
    # Pooled over walkers in order of time, so that each block is a stretch of time of all walkers.
    all_times = np.concatenate(times)
    order = np.argsort(all_times, kind="stable")
    all_labels = np.concatenate(labels)[order]
    all_log_weights = np.concatenate(log_weights)[order]
    plane = np.concatenate(planes)[order]
    population = reweighted_population(all_labels, all_log_weights)
    ranked = sorted(population, key=population.__getitem__, reverse=True)
    a, b = ranked[0], (ranked[1] if len(ranked) > 1 else None)
    # One motif after the skipped stretch has no difference to give (not a difference of zero).
    delta, error = (
        free_energy_difference(all_labels, all_log_weights, a, b, temperature)
        if b is not None
        else (float("nan"), float("nan"))
    )
    # Every frame (the skipped stretch too): how well the CVs tell the pair apart on thermal frames.
    frame_order = np.argsort(np.concatenate([path.times for path in paths]), kind="stable")
    frame_cvs = np.concatenate(every_cv)[frame_order]
    frame_labels = np.concatenate([np.asarray(path.labels) for path in paths])[frame_order]
    separation = {
        "biased_cvs": biased,
        "biased": float("nan"),
        "all_cvs": frame_cvs.shape[1],
        "all": float("nan"),
    }
    if b is not None:
        separation["biased"] = class_separation(frame_cvs[:, :biased], frame_labels, a, b)
        separation["all"] = class_separation(frame_cvs, frame_labels, a, b)
    at_times = np.linspace(all_times.min(), all_times.max(), RUNNING_POINTS)
    cumulative = cumulative_log_weights(all_times[order], all_labels, all_log_weights, at_times)
    if b is not None:
        plots.free_energy_over_time(
            [
                (
                    f"{len(folders)} walker(s)",
                    at_times,
                    running_free_energy_difference(cumulative, a, b, temperature),
                    0,
                )
            ],
            png.with_name("fes_vs_time.png"),
            ylabel=f"F({a}) - F({b}) (kJ/mol)",
            title=f"from the quenched frames from {skip_ps:g} ps to each time, {temperature:g} K",
        )
    x_edges, y_edges, fes = free_energy_surface(
        plane[:, 0], plane[:, 1], all_log_weights, temperature, bins=40
    )
    plots.free_energy_surface(
        x_edges,
        y_edges,
        fes,
        png,
        points=plane,
        point_labels=list(all_labels),
        cap=FES_CAP_KJ_MOL,
        title=f"reweighted F at {temperature:g} K: {len(all_labels)} quenched frames after {skip_ps:g} ps",
    )
    if b is None:
        print(f"  only {a} after {skip_ps:g} ps ({len(all_labels)} frames): no free-energy difference")
    else:
        print(
            f"  F({a}) - F({b}) = {delta:.1f} +- {error:.1f} kJ/mol"
            f" ({len(all_labels)} frames after {skip_ps:g} ps)"
        )
        print(
            f"  {a} against {b} from the thermal frames' CVs (balanced 5-NN accuracy, 0.5 is chance):"
            f" {separation['biased']:.3f} on the {biased} biased,"
            f" {separation['all']:.3f} on all {frame_cvs.shape[1]}"
        )
    print(f"wrote {png}")
    return {
        "weights": column,
        "skip_ps": skip_ps,
        "frames": len(all_labels),
        "reweighted_population": population,
        "a": a,
        "b": b,
        "delta_kj_mol": delta,
        "standard_error": error,
        # Balanced accuracy of telling a from b by the thermal frames' CVs (class_separation).
        "separation": separation,
        # ln of each label's summed weight up to each time (-inf: none yet; JSON has no infinity).
        "running": {
            "time_ps": at_times.tolist(),
            "log_weight": {
                name: [v if np.isfinite(v) else None for v in values.tolist()]
                for name, values in cumulative.items()
            },
        },
    }


def plot(path: MotifPath, colvar: dict[str, np.ndarray], png: Path) -> Path:
    plt = pyplot()
    cvs, biases = colvar_fields(colvar)
    fig, axes = plt.subplots(2 + bool(biases), 1, figsize=(8, 6.5), sharex=True, layout="constrained")
    order = list(CLUSTER_LABELS)
    axes[0].plot(path.times, [order.index(label) for label in path.labels], ".", ms=2.5, color="C0")
    axes[0].set_yticks(range(len(order)), order)
    axes[0].set_ylabel("CNA label of the quench")
    for k, name in enumerate(cvs[:3]):
        axes[1].plot(colvar["time"], colvar[name], lw=0.6, color=f"C{k}", label=name)
    axes[1].set_ylabel("CV")
    axes[1].legend(loc="upper left", fontsize=8)
    if biases:
        axes[2].plot(colvar["time"], colvar[biases[0]], lw=0.7, color="C3")
        axes[2].set_ylabel(f"{biases[0]} (kJ/mol)")
    axes[-1].set_xlabel("time (ps)")
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


if __name__ == "__main__":
    main()
