"""What one cluster is made of, from its CNA (``data.cna``), and the short name that gives it.

Descriptors: the per-atom CNA counts (fcc, hcp, ico, other), the cluster CNA label, the five-fold
axes (``cna.five_fold_axes``), how many of them meet at one point (``cna.axes_meeting_point``) and
what is there (an ico atom, another atom, an empty site), and the twin planes, estimated as the
planar layers of hcp atoms
(``cna.hcp_layers``), with how many of those do not hold a five-fold axis (in a decahedron: layers
beyond its five twin boundaries, such as the facet under an island of surface atoms on hcp sites).

The name, by these rules in this order:

1. ``amorphous``: the CNA label is amorphous (under 30% of the inner atoms ordered).
2. MIN_IH_AXES or more five-fold axes meeting at one point (an icosahedron has six, all through
   its centre): ``Ih`` at an ico atom; else, when the point lies within CENTRAL_SITE_NN
   nearest-neighbour distances of the cluster's centroid, ``Ih, central vacancy`` when no atom
   is within OCCUPIED_NN nearest-neighbour distances of it, ``Ih, distorted centre`` when the atom
   there is not ico (its shell no longer icosahedral).
3. One five-fold axis and no ico atom: ``Dh``; ``Dh, hcp island`` when an hcp layer does not hold
   the axis.
4. No five-fold axis and no ico atom: ``mix`` when hcp atoms outnumber fcc atoms twice over (the
   CNA label's rule for hcp-dominated stacking); else ``fcc``, ``fcc, 1 twin plane`` or
   ``fcc, N twin planes`` by the number of hcp layers (an intrinsic stacking fault, two adjacent
   layers, counts two).
5. ``mix`` otherwise (several five-fold axes that do not make an icosahedron, an ico atom without).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms

from .cna import CnaResult, analyse, axes_meeting_point, axis_line, five_fold_axes, hcp_layers

#: Five-fold axes meeting at one point that make an icosahedron (of its six): fewer, as where a
#: decahedron's axis meets a second one at the surface, are a mix.
MIN_IH_AXES = 3
#: An empty meeting point of the axes is a central vacancy when it lies this many
#: nearest-neighbour distances or less from the centroid of the cluster.
CENTRAL_SITE_NN = 2.0
#: The axes meet at an atom when one lies within this many nearest-neighbour distances.
OCCUPIED_NN = 0.5


@dataclass(frozen=True)
class StructureDescriptors:
    """The descriptors of one cluster (see the module docstring) and its name."""

    counts: dict[str, int]
    label: str
    five_fold_axes: int
    axes_meeting: int  # the most axes that meet at one point (0: no two meet)
    axes_meet_at: str  # "ico", "atom" or "vacancy" (an empty site) near the centre, "" (else)
    twin_planes: int
    twin_planes_off_axis: int

    @property
    def name(self) -> str:
        return structure_name(self)

    def as_dict(self) -> dict:
        return {**asdict(self), "name": self.name}


def describe(atoms: Atoms) -> StructureDescriptors:
    """Descriptors and name of a cluster in vacuum (CNA with OVITO)."""
    return describe_cna(analyse(atoms))


def describe_cna(result: CnaResult) -> StructureDescriptors:
    """Descriptors and name from a cluster's CNA."""
    axes = five_fold_axes(result)
    layers = hcp_layers(result)
    lines = [axis_line(result, members) for members in axes]
    off_axis = sum(1 for layer in layers if not any(layer.holds_line(*line, result.nn) for line in lines))
    meeting = axes_meeting_point(result, axes)
    meet_at = _meeting_site(result, meeting[0]) if meeting else ""
    return StructureDescriptors(
        counts=result.counts(),
        label=result.label,
        five_fold_axes=len(axes),
        axes_meeting=meeting[1] if meeting else 0,
        axes_meet_at=meet_at,
        twin_planes=len(layers),
        twin_planes_off_axis=off_axis,
    )


def _meeting_site(result: CnaResult, point: np.ndarray) -> str:
    """What sits where the axes meet: an ico atom (anywhere), or near the centroid another atom or
    nothing; "" for a non-ico atom or an empty site away from the centre."""
    distance = np.linalg.norm(result.positions - point, axis=1)
    nearest = int(np.argmin(distance))
    occupied = distance[nearest] <= OCCUPIED_NN * result.nn
    if occupied and result.atom_labels[nearest] == "ico":
        return "ico"
    if np.linalg.norm(point - result.positions.mean(axis=0)) > CENTRAL_SITE_NN * result.nn:
        return ""
    return "atom" if occupied else "vacancy"


def structure_name(d: StructureDescriptors) -> str:
    """The short name the module docstring's rules give these descriptors."""
    if d.label == "amorphous":
        return "amorphous"
    icosahedral = {"ico": "Ih", "vacancy": "Ih, central vacancy", "atom": "Ih, distorted centre"}
    if d.axes_meeting >= MIN_IH_AXES and d.axes_meet_at in icosahedral:
        return icosahedral[d.axes_meet_at]
    if d.counts["ico"] or d.five_fold_axes > 1:
        return "mix"
    if d.five_fold_axes == 1:
        return "Dh, hcp island" if d.twin_planes_off_axis else "Dh"
    if d.counts["hcp"] > 2 * d.counts["fcc"]:
        return "mix"
    if d.twin_planes == 0:
        return "fcc"
    return f"fcc, {d.twin_planes} twin plane{'s' if d.twin_planes > 1 else ''}"
