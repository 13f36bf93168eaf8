"""F(a) - F(b) between two CNA classes of Au147 by umbrella sampling along the chart and MBAR: an
estimate independent of metadynamics and OPES for issue 12's comparison.

    python examples/umbrella_motifs_au147.py [--pair Ih,mix] [--temperature 450] [--windows 18] \
        [--ps 100] [--seed 1] [--out out/umbrella_motifs]

The path is the straight line on (cv1, cv2) from the median CVs of class a on the shipped chart to
those of class b; s is the position along it (CV units). The window centres span it extended by
--margin at both ends, or --s-range. Windows hold s with harmonic restraints (RESTRAINT on a
COMBINE of cv1 and cv2; the direction across the path is free), chained outward from the window
nearest the start motif: each window starts from the last frame of its neighbour. --back adds a
pass back over every window from the far end, to show hysteresis. After --equilibrate-ps, a frame
every ps is quenched (EAM, conjugate gradients) and CNA-labelled; MBAR (pymbar) unbiases these
frames (all windows of all passes together, and each pass alone), and the reweighted share of
each label gives F(label) = -kT ln(share). Writes OUT/umbrella/summary.json in the layout of
transitions_au147.py (so that independent_runs.py combines runs of both), window_KK/ and back_KK/
folders (MD, PLUMED, window.json with the labels), and umbrella_motifs.png. A window already done
is read back. Needs PLUMED with the nanochart plugin, LAMMPS and OVITO (the md and data extras).
Energies in kJ/mol, time in ps, T in K, s in CV units.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase.io import read

from nanochart.chart.charting import read_chart_cvs, read_chart_labels
from nanochart.data.cna import CLUSTER_LABELS, analyse
from nanochart.plots import pyplot
from nanochart.simulation.lammps_session import quench_frames
from nanochart.simulation.md import run_md
from nanochart.simulation.plumed_input import read_colvar
from nanochart.simulation.plumed_install import find_plumed, plugin_path
from nanochart.simulation.transitions import BOLTZMANN_KJ_PER_MOL_K, reweighted_population
from nanochart.simulation.wham import mbar_log_weights, wham

HERE = Path(__file__).parent
MODEL = HERE.parent / "models" / "au147" / "au147.pt"
MOTIFS = HERE / "data" / "au147_motifs.extxyz"
TIMESTEP_PS = 0.0025  # 400 steps per ps, as in transitions_au147.py: frames fall on whole ps
STEPS_PER_PS = round(1.0 / TIMESTEP_PS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", default="Ih,mix", help="the two CNA labels a,b: F(a) - F(b) (Ih,mix)")
    parser.add_argument("--temperature", type=float, default=450.0, help="K (default 450)")
    parser.add_argument("--windows", type=int, default=18, help="umbrella windows (default 18)")
    parser.add_argument("--ps", type=float, default=100.0, help="labelled ps per window (default 100)")
    parser.add_argument(
        "--equilibrate-ps", type=float, default=20.0, help="ps at the start of each window left out (20)"
    )
    parser.add_argument(
        "--margin", type=float, default=0.8, help="path length beyond each class's median CVs (0.8)"
    )
    parser.add_argument(
        "--s-range",
        help="first and last window centre, smin,smax in CV units along the path (default: the margin)",
    )
    parser.add_argument("--start", default="Ih", help="motif of examples/data to start from (Ih)")
    parser.add_argument(
        "--back",
        action="store_true",
        help="a second pass over every window, back from the far end (a check for hysteresis)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", type=Path, default=MODEL, help="exported model with its chart/ folder")
    parser.add_argument("--out", type=Path, default=Path("out/umbrella_motifs"))
    args = parser.parse_args()
    if find_plumed() is None or plugin_path() is None:
        raise SystemExit("needs PLUMED on PATH and the plugin: see README, 'In PLUMED'")
    if args.windows < 2 or args.ps < 1 or args.equilibrate_ps < 0:
        parser.error("need --windows >= 2, --ps >= 1 and --equilibrate-ps >= 0")
    a, b = args.pair.split(",")
    kt = BOLTZMANN_KJ_PER_MOL_K * args.temperature
    origin, direction, length = path_between(args.model.parent / "chart", a, b)
    s_min, s_max = (-args.margin, length + args.margin)
    if args.s_range:
        s_min, s_max = (float(value) for value in args.s_range.split(","))
    centres = np.linspace(s_min, s_max, args.windows)
    spacing = centres[1] - centres[0]
    kappa = 4.0 * kt / spacing**2  # each window's spread (kT/kappa)^(1/2) is half the spacing
    out = args.out / "umbrella"
    starts = [atoms for atoms in read(MOTIFS, index=":") if atoms.info.get("motif") == args.start]
    if not starts:
        raise SystemExit(f"{MOTIFS} has no motif {args.start!r}")
    start_s = float((first_cvs(starts[0], args.model)[:2] - origin) @ direction)
    first = int(np.argmin(np.abs(centres - start_s)))
    print(
        f"path {a} -> {b}: {length:.2f} CV units, {args.windows} windows from s = {centres[0]:.2f} to"
        f" {centres[-1]:.2f}, kappa {kappa:.1f} kJ/mol per CV unit^2, {args.temperature:g} K;"
        f" {args.start} starts at s = {start_s:.2f}"
    )
    began = time.perf_counter()
    windows: dict[tuple[str, int], dict] = {}
    # Two chains out of the first window, each window from the last frame of the one before.
    for chain in (range(first, args.windows), range(first - 1, -1, -1)):
        previous = starts[0]
        for k in chain:
            windows["out", k], previous = run_window(
                k, centres[k], kappa, origin, direction, previous, args, out / f"window_{k:02d}"
            )
    if args.back:
        # Back from the far end over every window: a structure that changed class on the way out
        # must change back, so the two passes differ where a slow change hides across the path.
        previous = read(out / f"window_{args.windows - 1:02d}" / "trajectory.extxyz", index=-1)
        for k in range(args.windows - 1, -1, -1):
            windows["back", k], previous = run_window(
                k, centres[k], kappa, origin, direction, previous, args, out / f"back_{k:02d}"
            )
    md_seconds = time.perf_counter() - began
    keys = sorted(windows)
    samples = [np.asarray(windows[key]["s"]) for key in keys]
    window_centres = [centres[k] for _, k in keys]
    labels = np.concatenate([windows[key]["labels"] for key in keys])
    log_weights = mbar_log_weights(samples, window_centres, kappa, kt)
    population = reweighted_population(labels, log_weights)
    delta = _difference(population, a, b, kt)
    by_pass = {}
    for name in sorted({name for name, _ in keys}):
        mine = [key for key in keys if key[0] == name]
        shares = reweighted_population(
            np.concatenate([windows[key]["labels"] for key in mine]),
            mbar_log_weights([windows[key]["s"] for key in mine], [centres[k] for _, k in mine], kappa, kt),
        )
        by_pass[name] = {"reweighted_population": shares, "delta_kj_mol": _difference(shares, a, b, kt)}
        print(f"{name} pass alone: F({a}) - F({b}) = {by_pass[name]['delta_kj_mol']:+.1f} kJ/mol")
    try:
        profile = wham(samples, window_centres, kappa, kt, bins=2 * args.windows, min_count=5)
    except ValueError as error:  # a short trial run: too few frames per bin for a profile
        print(f"no F(s) profile: {error}")
        profile = None
    png = plot(windows, centres, profile, a, b, args.temperature, out / "umbrella_motifs.png")
    summary = {
        "method": "umbrella",
        "temperature_K": args.temperature,
        "pair": [a, b],
        "path": {"origin_cv1_cv2": origin.tolist(), "direction": direction.tolist(), "length": length},
        "centres": centres.tolist(),
        "kappa_kj_mol": kappa,
        "ps_per_window": args.ps,
        "equilibrate_ps": args.equilibrate_ps,
        "seed": args.seed,
        "md_and_quench_wall_s": md_seconds,
        "free_energy": {"weights": "mbar", "frames": len(labels), "reweighted_population": population},
    }
    summary["free_energy"].update({"a": a, "b": b, "delta_kj_mol": delta, "passes": by_pass})
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    shares = ", ".join(f"{label} {share:.3f}" for label, share in sorted(population.items()))
    print(f"reweighted shares of {len(labels)} quenched frames: {shares}")
    print(f"F({a}) - F({b}) = {delta:+.1f} kJ/mol at {args.temperature:g} K")
    print(f"wrote {out / 'summary.json'}, {png}")


def _difference(population: dict[str, float], a: str, b: str, kt: float) -> float:
    """F(a) - F(b) in kJ/mol from reweighted shares; nan when either was never seen."""
    if a not in population or b not in population:
        return float("nan")
    return float(-kt * (np.log(population[a]) - np.log(population[b])))


def path_between(chart: Path, a: str, b: str) -> tuple[np.ndarray, np.ndarray, float]:
    """The median (cv1, cv2) of class a on the chart, the unit vector towards class b's, and the
    distance between them."""
    cvs = read_chart_cvs(chart)[:, :2]
    labels = read_chart_labels(chart)
    if labels is None:
        raise SystemExit(f"{chart}: the chart has no CNA labels to place {a} and {b}")
    labels = np.asarray(labels)
    for name in (a, b):
        if not np.any(labels == name):
            raise SystemExit(f"{chart}: no charted structure is labelled {name!r} ({sorted(set(labels))})")
    origin, end = (np.median(cvs[labels == name], axis=0) for name in (a, b))
    length = float(np.linalg.norm(end - origin))
    return origin, (end - origin) / length, length


def first_cvs(atoms, model: Path) -> np.ndarray:
    import nanochart

    return nanochart.CV(model).compute(atoms.positions)[0]


def run_window(k, centre, kappa, origin, direction, start, args, folder: Path):
    """MD of one window (or its results read back), its labelled frames and its last frame."""
    record = folder / "window.json"
    if record.is_file():
        window = json.loads(record.read_text())
        print(f"{folder.name}  s = {centre:+.2f}: read back from {record}")
        return window, read(folder / "trajectory.extxyz", index=-1)
    combine = (
        f"s: COMBINE ARG=cv.cv1,cv.cv2 COEFFICIENTS={direction[0]:.8f},{direction[1]:.8f}"
        f" PARAMETERS={origin[0]:.8f},{origin[1]:.8f} PERIODIC=NO"
    )
    text = f"""LOAD FILE={plugin_path()}
UNITS LENGTH=A
cv: RDF_ENCODER MODEL={args.model.resolve()} GROUP=1-{len(start)} NOPBC
{combine}
umbrella: RESTRAINT ARG=s AT={centre:.8f} KAPPA={kappa:.6g}
PRINT ARG=cv.cv1,cv.cv2,s,umbrella.bias STRIDE={STEPS_PER_PS} FILE=COLVAR
"""
    total_ps = args.equilibrate_ps + args.ps
    run_md(
        start,
        text,
        folder,
        steps=round(total_ps * STEPS_PER_PS),
        temperature=args.temperature,
        timestep=TIMESTEP_PS,
        seed=args.seed * 1000 + k,
        dump_every=STEPS_PER_PS,
        thermo_every=STEPS_PER_PS,
        progress=False,
    )
    frames = read(folder / "trajectory.extxyz", index=":")
    times = np.array([atoms.info["time"] for atoms in frames])
    kept = times >= args.equilibrate_ps - 1e-6
    colvar = read_colvar(folder / "COLVAR")
    rows = np.searchsorted(colvar["time"], times[kept] - 1e-6)
    if np.any(rows >= len(colvar["time"])) or np.any(np.abs(colvar["time"][rows] - times[kept]) > 1e-3):
        raise RuntimeError(f"{folder / 'COLVAR'}: no row at every frame's time")
    kept_frames = [atoms for atoms, keep in zip(frames, kept, strict=True) if keep]
    labels = [analyse(atoms).label for atoms in quench_frames(kept_frames, progress=False)]
    window = {"centre": centre, "times": times[kept].tolist(), "s": colvar["s"][rows].tolist()}
    window["labels"] = labels
    record.write_text(json.dumps(window))
    counts = {label: labels.count(label) for label in sorted(set(labels))}
    print(f"{folder.name}  s = {centre:+.2f}: mean s {np.mean(window['s']):+.2f}, labels {counts}")
    return window, frames[-1]


def plot(windows, centres, profile, a, b, temperature, png: Path) -> Path:
    """The share of each CNA label per window (the back pass, if any, as hatched bars to the right
    of the outward pass), and F(s) from MBAR."""
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True, layout="constrained")
    passes = sorted({name for name, _ in windows}, reverse=True)  # "out" first
    width = 0.8 * (centres[1] - centres[0]) / len(passes)
    for offset, name in enumerate(passes):
        ks = sorted(k for other, k in windows if other == name)
        x = np.asarray(centres)[ks] + (offset - 0.5 * (len(passes) - 1)) * width
        bottoms = np.zeros(len(ks))
        for index, label in enumerate(CLUSTER_LABELS):
            shares = np.array([np.mean(np.asarray(windows[name, k]["labels"]) == label) for k in ks])
            if shares.any():
                top.bar(
                    x,
                    shares,
                    width,
                    bottom=bottoms,
                    color=f"C{index}",
                    hatch="//" if name == "back" else None,
                    label=label if offset == 0 else None,
                )
                bottoms += shares
    top.set_ylabel("share of quenched frames")
    top.legend(fontsize=8, ncols=3)
    top.set_title(f"Au147 at {temperature:g} K: umbrella windows along the chart from {a} to {b}")
    if profile is not None:
        finite = np.isfinite(profile.free_energy)
        bottom.errorbar(
            profile.centres[finite],
            profile.free_energy[finite],
            yerr=profile.standard_error[finite],
            fmt="o-",
            ms=3,
        )
    bottom.set_xlabel(f"s, position along the path from the median CVs of {a} (CV units)")
    bottom.set_ylabel("F(s) (kJ/mol), MBAR")
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


if __name__ == "__main__":
    main()
