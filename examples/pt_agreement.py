"""Do two parallel-tempering runs sample the same ensemble? Their label shares per temperature, side
by side, with the difference in combined standard errors, and a figure of every label's share
against temperature for both runs.

    python examples/pt_agreement.py ih.pt.json to.pt.json --out agreement.png

Each argument is the report `nanochart generate --method pt --out NAME.extxyz` writes as
NAME.pt.json (NAME.extxyz is accepted too). The shares' errors come from 5 blocks in time; they
understate the true error when a block is shorter than the time a replica takes to change motif
(round trips through the melt), so read the round trips in the reports beside them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nanochart.data.cna import CLUSTER_LABELS
from nanochart.data.tempering import compare_label_shares
from nanochart.plots import label_shares_by_temperature


def report_path(path: Path) -> Path:
    if path.suffix == ".extxyz":
        path = path.with_suffix(".pt.json")
    if not path.is_file():
        raise SystemExit(f"pt_agreement: no PT report {path}: give the NAME.pt.json of a --method pt run")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs=2, type=Path, help="two NAME.pt.json (or NAME.extxyz) files")
    parser.add_argument("--out", type=Path, default=Path("pt_agreement.png"), help="figure to write")
    args = parser.parse_args()
    paths = [report_path(path) for path in args.reports]
    a, b = (json.loads(path.read_text()) for path in paths)
    names = [path.name.removesuffix(".pt.json") for path in paths]
    if names[0] == names[1]:  # same file name in two folders: tell them apart in the figure
        names = [f"{k}: {name}" for k, name in enumerate(names, 1)]
    if a["settings"]["temperatures"] != b["settings"]["temperatures"]:
        raise SystemExit("pt_agreement: the two runs have different ladders; compare runs of one ladder")
    comparison = compare_label_shares(a, b)
    for name, report in zip(names, (a, b), strict=True):
        trips = report["exchange"]["round_trips"]
        print(
            f"{name}: start {report['settings']['start']}, seed {report['settings']['seed']}, "
            f"{report['sampling_ps_per_replica']:g} ps per replica, {sum(trips)} round trips"
        )
    print(f"\nlabel shares (%), {names[0]} | {names[1]} | difference in combined standard errors")
    print(f"{'T (K)':>6}  " + "  ".join(f"{label:>22}" for label in CLUSTER_LABELS))
    for t, entry in a["label_shares"].items():
        other = b["label_shares"][t]
        cells = []
        for label in CLUSTER_LABELS:
            z = comparison["z"].get(f"{t} {label}")
            cells.append(
                f"{100 * entry['share'][label]:5.1f}|{100 * other['share'][label]:5.1f}|"
                + ("    -" if z is None else f"{z:+5.1f}").rjust(6)
            )
        print(f"{t:>6}  " + "  ".join(f"{cell:>22}" for cell in cells))
    print(
        f"\nwithin 2 combined standard errors: {100 * comparison['within_2_sigma']:.0f}% of "
        f"{len(comparison['z'])} shares (about 95% expected when both sample one ensemble); "
        f"largest |difference| {comparison['max_abs_z']:.1f}"
    )
    figure = label_shares_by_temperature(dict(zip(names, (a, b), strict=True)), CLUSTER_LABELS, args.out)
    print(f"wrote      {figure}")


if __name__ == "__main__":
    main()
