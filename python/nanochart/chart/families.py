"""Named families: what the structures at the heart of each mean-shift family are made of.

A family's representatives are its members nearest its centroid (DEFAULT_REPRESENTATIVES, or all
of a smaller family). Each is described by ``data.descriptors`` (per-atom CNA counts, cluster CNA
label, five-fold axes, twin planes, and a short name by the rules in that module's docstring).
The family reports the means of the counts, twin planes and axes, the shares of the CNA labels and
of the names among its representatives, and its name: the most common name of its
representatives when at least half of them carry it, else the two most common joined by " / "
(a family that straddles two kinds of structure says so).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from ..data.descriptors import StructureDescriptors, describe

#: Representatives per family: enough for shares to the nearest 5%, few enough for CNA in seconds.
DEFAULT_REPRESENTATIVES = 20
ATOM_KINDS = ("fcc", "hcp", "ico", "other")
FAMILIES_JSON = "families.json"
FAMILIES_TABLE = "families.md"


@dataclass
class FamilyDescription:
    """One family: its size, centroid, representatives (indices into the charted data) and what
    they are made of (means over the representatives), with its name."""

    family: int
    size: int
    name: str
    centroid: list[float]
    representatives: list[int]
    atom_counts: dict[str, float]  # mean per-atom CNA counts
    twin_planes: float
    five_fold_axes: float
    label_shares: dict[str, float]  # cluster CNA labels of the representatives
    name_shares: dict[str, float]  # names of the representatives
    data_label_shares: dict[str, float] | None = None  # labels the data carry, over all members

    def as_dict(self) -> dict:
        return asdict(self)


def nearest_members(
    cvs: np.ndarray, families: np.ndarray, centroid: np.ndarray, family: int, n: int
) -> np.ndarray:
    """Indices of the ``n`` members of ``family`` nearest its centroid (all when it has fewer),
    nearest first."""
    members = np.flatnonzero(families == family)
    distance = np.linalg.norm(cvs[members] - centroid, axis=1)
    return members[np.argsort(distance, kind="stable")[:n]]


def family_name(names: Sequence[str]) -> str:
    """The family's name from its representatives' names (see the module docstring)."""
    ranked = Counter(names).most_common()
    if len(ranked) == 1 or ranked[0][1] >= 0.5 * len(names):
        return ranked[0][0]
    return f"{ranked[0][0]} / {ranked[1][0]}"


def _shares(values: Sequence[str]) -> dict[str, float]:
    """Share of each value, most common first."""
    return {name: count / len(values) for name, count in Counter(values).most_common()}


def describe_families(
    frames: Sequence[Atoms],
    cvs: np.ndarray,
    families: np.ndarray,
    centroids: np.ndarray,
    *,
    labels: Sequence[str] | None = None,
    n_representatives: int = DEFAULT_REPRESENTATIVES,
    progress: bool = True,
) -> list[FamilyDescription]:
    """Describe and name every family from its representatives (CNA with OVITO; ``labels``, the
    labels the data carry, add their shares over all members)."""
    from nanochart.progress import progress_bar

    picked = [
        nearest_members(cvs, families, centre, k, n_representatives) for k, centre in enumerate(centroids)
    ]
    bar = progress_bar(
        total=sum(len(p) for p in picked),
        desc="families",
        unit="structure",
        enabled=progress,
    )
    descriptions = []
    with bar:
        for k, members in enumerate(picked):
            described = []
            for i in members:
                described.append(describe(frames[i]))
                bar.update(1)
            everyone = np.flatnonzero(families == k)
            data_labels = [labels[i] for i in everyone.tolist()] if labels is not None else []
            descriptions.append(_summarise(k, centroids[k], members, described, len(everyone), data_labels))
    return descriptions


def _summarise(
    family: int,
    centroid: np.ndarray,
    members: np.ndarray,
    described: Sequence[StructureDescriptors],
    size: int,
    data_labels: Sequence[str],
) -> FamilyDescription:
    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else 0.0  # a family without members: none to average

    names = [d.name for d in described]
    return FamilyDescription(
        family=family,
        size=size,
        name=family_name(names) if names else "empty",
        centroid=[float(v) for v in centroid],
        representatives=[int(i) for i in members],
        atom_counts={kind: mean([d.counts[kind] for d in described]) for kind in ATOM_KINDS},
        twin_planes=mean([d.twin_planes for d in described]),
        five_fold_axes=mean([d.five_fold_axes for d in described]),
        label_shares=_shares([d.label for d in described]),
        name_shares=_shares(names),
        data_label_shares=_shares(data_labels) if data_labels else None,
    )


def _percentages(shares: dict[str, float], most: int = 3) -> str:
    shown = [f"{name} {100 * share:.0f}%" for name, share in list(shares.items())[:most]]
    return ", ".join(shown) + (", ..." if len(shares) > most else "")


def family_table(descriptions: Sequence[FamilyDescription]) -> str:
    """The families as a Markdown table: size, name, mean per-atom CNA counts, twin planes and
    five-fold axes of the representatives, the shares of their CNA labels, and, when the data
    carry labels, the shares of the labels of all members (the most common three of each)."""
    everyone = all(d.data_label_shares is not None for d in descriptions)
    lines = [
        "| family | size | name | fcc | hcp | ico | other | twin planes | 5-fold axes | CNA labels |"
        + (" labels of all members |" if everyone else ""),
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---|" + ("---|" if everyone else ""),
    ]
    for d in descriptions:
        counts = " | ".join(f"{d.atom_counts[kind]:.1f}" for kind in ATOM_KINDS)
        lines.append(
            f"| {d.family} | {d.size} | {d.name} | {counts} | {d.twin_planes:.1f} | "
            f"{d.five_fold_axes:.1f} | {_percentages(d.label_shares)} |"
            + (f" {_percentages(d.data_label_shares or {})} |" if everyone else "")
        )
    return "\n".join(lines) + "\n"


def write_families(
    descriptions: Sequence[FamilyDescription],
    out_dir: str | os.PathLike[str],
    *,
    bandwidth: float,
    rule: str,
    cv_names: Sequence[str],
) -> dict[str, Path]:
    """``families.json`` (everything, with the bandwidth and how it was chosen) and ``families.md``
    (the table) in the chart folder."""
    out = Path(out_dir)
    report = {
        "bandwidth": bandwidth,
        "bandwidth_rule": rule,
        "cv_names": list(cv_names),
        "naming_rules": "nanochart.data.descriptors (per structure), nanochart.chart.families (per family)",
        "families": [d.as_dict() for d in descriptions],
    }
    (out / FAMILIES_JSON).write_text(json.dumps(report, indent=1) + "\n")
    heading = (
        f"# Families: mean shift, bandwidth {bandwidth:.4g} ({rule})\n\n"
        "Means over each family's representatives (its members nearest its centroid): per-atom CNA "
        "counts, twin planes (planar layers of hcp atoms), five-fold axes; shares of their CNA labels "
        "(and of the labels the data give all members, when they have labels).\n\n"
    )
    (out / FAMILIES_TABLE).write_text(heading + family_table(descriptions))
    return {"families_json": out / FAMILIES_JSON, "families_table": out / FAMILIES_TABLE}
