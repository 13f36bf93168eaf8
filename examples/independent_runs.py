"""F(a) - F(b) from independent runs of two methods, with errors from the spread between runs, and
whether the two methods agree: the check of issue 12's bar, "two independent estimates agree
within two combined standard errors". Each run is an output folder of transitions_au147.py (its
summary.json: the reweighted population of each CNA label after the skipped ps).

    python examples/independent_runs.py --first out/bf10_s7 out/bf10_s20 out/bf10_s30 \
        --second out/opes60_6ns_s7 out/opes60_6ns_s20 out/opes60_6ns_s30 [--pair Ih,mix]

Prints a table (kJ/mol) and writes --out (JSON) and, beside it, the running estimate of every
run against time (--out with .png; runs made before transitions_au147.py kept the running
weights have no line). A run that never visited one of the pair gives no estimate; it is listed,
not dropped silently.

Runs analysed before, whose folders are gone, join a side as REPORT.json:first or
REPORT.json:second (a report this script wrote, with its method and temperature): their
estimates count as the folders' do, without a running line.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nanochart import plots
from nanochart.simulation.transitions import (
    IndependentRuns,
    agreement,
    independent_runs,
    running_free_energy_difference,
)


def summary_of(folder: Path) -> dict:
    """The summary.json of a run folder (transitions_au147.py writes OUT/METHOD[_N_walkers]/)."""
    found = sorted(folder.glob("summary.json")) or sorted(folder.glob("*/summary.json"))
    if len(found) != 1:
        raise SystemExit(f"{folder}: expected one summary.json of transitions_au147.py, found {len(found)}")
    summary = json.loads(found[0].read_text())
    if "free_energy" not in summary:
        raise SystemExit(f"{found[0]}: an unbiased run has no free energy")
    return summary


def running_curve(summary: dict, a: str, b: str) -> tuple[np.ndarray, np.ndarray] | None:
    """A run's running F(a) - F(b) (times in ps, kJ/mol), or None for summaries without it."""
    running = summary["free_energy"].get("running")
    if running is None:
        return None
    cumulative = {
        name: np.array([-np.inf if v is None else v for v in values], dtype=np.float64)
        for name, values in running["log_weight"].items()
    }
    delta = running_free_energy_difference(cumulative, a, b, summary["temperature_K"])
    return np.asarray(running["time_ps"], dtype=np.float64), delta


REPORT_SIDES = (".json:first", ".json:second")


def is_report_side(argument: Path) -> bool:
    return str(argument).endswith(REPORT_SIDES)


def earlier_runs(spec: Path, a: str, b: str) -> tuple[IndependentRuns, str, float]:
    """The runs of one side of a report this script wrote before (REPORT.json:first|second)."""
    path, side = str(spec).rsplit(":", 1)
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"{spec}: cannot read the report: {error}") from None
    part = report.get(side, {})
    if report.get("pair") != [a, b]:
        pair = " - ".join(f"F({label})" for label in report.get("pair", ["?"]))
        raise SystemExit(f"{spec}: the report is of {pair}, not of F({a}) - F({b})")
    if "method" not in part or "temperature_K" not in part:
        raise SystemExit(f"{spec}: the report names no method and temperature_K for its {side} runs")
    runs = IndependentRuns(a, b, dict(part["estimates"]), list(part["missing"]))
    return runs, part["method"], float(part["temperature_K"])


def combine(
    summaries: dict[str, dict], a: str, b: str, earlier: Sequence[tuple[IndependentRuns, str, float]] = ()
) -> tuple[IndependentRuns, str, float]:
    """The runs' F(a) - F(b), their method and temperature, from their summaries (by folder) and
    from runs analysed before (``earlier_runs``)."""
    temperatures = {s["temperature_K"] for s in summaries.values()} | {t for _, _, t in earlier}
    methods = {s["method"] for s in summaries.values()} | {m for _, m, _ in earlier}
    if len(temperatures) != 1 or len(methods) != 1:
        raise SystemExit(f"runs to combine must share method and temperature: {methods}, {temperatures} K")
    populations = {run: s["free_energy"]["reweighted_population"] for run, s in summaries.items()}
    temperature = temperatures.pop()
    runs = independent_runs(populations, a, b, temperature)
    for before, _, _ in earlier:
        runs.estimates.update(before.estimates)
        runs.missing.extend(before.missing)
    return runs, methods.pop(), temperature


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    runs_help = "run folders of {} (or REPORT.json:first|second for runs analysed before)"
    parser.add_argument("--first", type=Path, nargs="+", required=True, help=runs_help.format("one method"))
    parser.add_argument("--second", type=Path, nargs="+", required=True, help=runs_help.format("the other"))
    parser.add_argument("--pair", default="Ih,mix", help="the two CNA labels, a,b: F(a) - F(b) (Ih,mix)")
    parser.add_argument("--out", type=Path, default=Path("out/independent_runs.json"))
    args = parser.parse_args()
    a, b = args.pair.split(",")
    results, curves, described = {}, [], {}
    for colour, (name, arguments) in enumerate((("first", args.first), ("second", args.second))):
        folders = [argument for argument in arguments if not is_report_side(argument)]
        earlier = [earlier_runs(argument, a, b) for argument in arguments if is_report_side(argument)]
        summaries = {str(folder): summary_of(folder) for folder in folders}
        runs, method, temperature = combine(summaries, a, b, earlier)
        described[name] = {"method": method, "temperature_K": temperature}
        for folder in folders:
            curve = running_curve(summaries[str(folder)], a, b)
            if curve is not None:
                curves.append((f"{method}: {folder.name}", *curve, colour))
        results[name] = runs
        print(f"{method} at {temperature:g} K, F({a}) - F({b}) in kJ/mol:")
        for run, value in runs.estimates.items():
            print(f"  {run}: {value:+.1f}")
        for run in runs.missing:
            print(f"  {run}: no estimate (never visited {a} or {b} after the skipped ps)")
        print(
            f"  mean {runs.mean:+.1f} +- {runs.standard_error:.1f}"
            f" (standard error from {len(runs.estimates)} runs)"
        )
    apart = agreement(results["first"], results["second"])
    verdict = "agree" if apart <= 2.0 else "do not agree"
    print(f"the two means are {apart:.2f} combined standard errors apart: they {verdict} (bar: 2)")
    report = {
        name: {
            "estimates": r.estimates,
            "missing": r.missing,
            "mean": r.mean,
            "standard_error": r.standard_error,
            **described[name],
        }
        for name, r in results.items()
    }
    report["pair"], report["combined_standard_errors_apart"] = [a, b], apart
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    if curves:
        png = plots.free_energy_over_time(
            curves,
            args.out.with_suffix(".png"),
            ylabel=f"F({a}) - F({b}) (kJ/mol)",
            title=f"running reweighted estimates, each run from its skipped ps on, {temperature:g} K",
        )
        print(f"wrote {png}")


if __name__ == "__main__":
    main()
