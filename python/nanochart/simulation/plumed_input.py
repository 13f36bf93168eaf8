"""PLUMED input for a model: the RDF_ENCODER line, optional METAD or OPES_METAD with walls, and
reading PLUMED's output files (COLVAR, HILLS)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.model_file import read_metadata
from ..core.rdf import RdfSettings


@dataclass(frozen=True)
class MetadSettings:
    """Well-tempered metadynamics in a plumed.dat: HEIGHT in kJ/mol, PACE in MD steps; Gaussian
    widths ``width`` times the spread (standard deviation) of each CV on the chart, or ``sigma``:
    the widths in CV units, one per biased CV (for a CV whose chart spread is set by a far tail)."""

    height: float = 1.0
    pace: int = 500
    biasfactor: float = 20.0
    width: float = 0.1
    sigma: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.height <= 0 or self.pace < 1 or self.biasfactor <= 1 or self.width <= 0:
            raise ValueError(f"METAD needs HEIGHT > 0, PACE >= 1, BIASFACTOR > 1 and width > 0, got {self}")
        _check_sigma(self.sigma)


@dataclass(frozen=True)
class OpesSettings:
    """OPES_METAD (Invernizzi and Parrinello 2020) in a plumed.dat: BARRIER in kJ/mol (the free
    energy it should be able to climb), PACE in MD steps; initial kernel widths ``width`` times the
    spread of each CV on the chart. ``explore``: OPES_METAD_EXPLORE (Invernizzi, Piaggi and
    Parrinello 2022), whose target is the well-tempered distribution (bias factor BARRIER / kT):
    it explores faster and converges its estimate more slowly. ``sigma``: as for ``MetadSettings``."""

    barrier: float = 100.0
    pace: int = 500
    width: float = 0.1
    explore: bool = False
    sigma: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.barrier <= 0 or self.pace < 1 or self.width <= 0:
            raise ValueError(f"OPES_METAD needs BARRIER > 0, PACE >= 1 and width > 0, got {self}")
        _check_sigma(self.sigma)


def _check_sigma(sigma: tuple[float, ...] | None) -> None:
    if sigma is not None and (len(sigma) == 0 or not all(np.isfinite(sigma)) or min(sigma) <= 0):
        raise ValueError(f"sigma: one positive width per biased CV, in CV units, got {sigma}")


#: CVs a bias acts on unless told otherwise: cv1 and cv2.
DEFAULT_BIASED_CVS = 2

#: More points than this in METAD's grid (PLUMED's bins are a fifth of each width) are refused: at
#: 4 numbers of 8 bytes per point, 10 million take 320 MB per walker.
MAX_GRID_POINTS = 10_000_000


def plumed_input(
    model: str | os.PathLike[str],
    *,
    plugin: str | os.PathLike[str] | None = None,
    stride: int = 1,
    chart_cvs: np.ndarray | None = None,
    temperature: float = 300.0,
    metad: MetadSettings | OpesSettings | None = None,
    active: bool = False,
    walls: bool = False,
    novelty: bool = False,
    biased: int = DEFAULT_BIASED_CVS,
    box: tuple[Sequence[float], Sequence[float]] | None = None,
) -> str:
    """A ready plumed.dat for an exported model: LOAD the plugin, RDF_ENCODER on atoms 1..n_atoms
    of a cluster in vacuum, PRINT every CV to COLVAR; then a bias on the first ``biased`` CVs (two
    by default) at ``temperature`` (K), well-tempered METAD (``MetadSettings``, the default) or OPES_METAD
    (``OpesSettings``), commented out unless ``active``. Its PRINT writes COLVAR_METAD: the biased
    CVs, the bias and a column of log-weights for reweighting (``metad.rbias``, the bias minus
    c(t), or ``opes.bias``; in kJ/mol, divide by kT).

    With ``chart_cvs`` (the CVs of a charted data set, ``chart.read_chart_cvs``) the widths are the
    settings' fraction of the CVs' spread there (or the settings' ``sigma``) and METAD's bias lives
    on a grid (hills cost O(1) per step) reaching twice the chart's extent beyond it on each side
    (refused above ``MAX_GRID_POINTS``); otherwise widths are 0.05, no grid (and no reweighting
    column for METAD, which needs the grid). With ``walls`` and a chart,
    UPPER_WALLS and LOWER_WALLS (KAPPA 200 kJ/mol per CV unit squared) at the chart's 1st and 99th
    percentiles of each biased CV keep the bias from pushing the cluster off the chart, where the
    CVs no longer describe structure (without them, metadynamics at 450 K drove Au147 to CV values
    no training structure has, and it stayed amorphous there).

    ``box``: (lower, upper), one value per biased CV: the walls there instead of at the chart's
    percentiles, and METAD's grid around the box, so that the bias fills the region of the motifs
    of interest rather than the whole chart (on the shipped Au147 chart the percentiles span 44 x 63
    CV units, some 90 x 150 basin-wide kernels, and 10 ns of OPES_METAD from Ih were still
    spreading through it).

    With ``novelty`` (a model calibrated by ``nanochart calibrate-novelty``), RDF_ENCODER gets
    NOVELTY: COLVAR gains the column ``cv.novelty`` and PLUMED's log warns when the structure is
    off the chart (about 5 us per step more).
    """

    model = Path(model).resolve()
    metadata = read_metadata(model)
    names = metadata["cv_names"]
    if novelty and "novelty" not in metadata:
        raise ValueError(
            f"{model.name} has no novelty reference for NOVELTY: "
            "calibrate it first (nanochart calibrate-novelty)"
        )
    bias = metad or MetadSettings()
    load = (
        f"LOAD FILE={Path(plugin).resolve()}"
        if plugin
        else "# LOAD FILE=/path/to/libnanochart_plumed.so   # build it: nanochart plugin --build"
    )
    if not 1 <= biased <= len(names):
        raise ValueError(f"biased: between 1 and the model's {len(names)} CVs, got {biased}")
    if bias.sigma is not None and len(bias.sigma) != biased:
        raise ValueError(f"sigma has {len(bias.sigma)} widths for {biased} biased CVs")
    arguments = ",".join(f"cv.{name}" for name in names[:biased])
    edges = None if box is None else _box_edges(box, biased)
    if walls and chart_cvs is None and edges is None:
        raise ValueError("walls sit at the chart's edges: give chart_cvs (or a box)")
    cvs = None if chart_cvs is None else np.asarray(chart_cvs, dtype=np.float64)[:, :biased]
    widths = np.full(biased, 0.05) if cvs is None else bias.width * cvs.std(axis=0)
    widths = np.asarray(bias.sigma) if bias.sigma is not None else widths
    sigma, grid = ",".join(f"{s:.3g}" for s in widths), ""
    # The region METAD's grid is built around, and the walls' edges: the box's, else the chart's.
    region = edges
    if edges is None and cvs is not None:
        region = cvs.min(axis=0), cvs.max(axis=0)
        if walls:
            edges = np.percentile(cvs, 1, axis=0), np.percentile(cvs, 99, axis=0)
    if region is not None and isinstance(bias, MetadSettings):
        low, high = region
        extent = high - low
        points = float(np.prod(5 * extent / (widths / 5)))
        if points > MAX_GRID_POINTS:
            where = "box" if box is not None else "chart"
            raise ValueError(
                f"METAD's grid over {biased} CVs would hold {points:.2g} points (the {where}'s extent "
                f"{np.round(extent, 2).tolist()} and twice it on each side, bins a fifth of each width): "
                "bias fewer CVs, give wider sigma, or use OPES_METAD, which needs no grid (`OpesSettings`;"
                " `nanochart plumed-input --opes`)"
            )
        grid = " GRID_MIN=" + ",".join(f"{v:.3g}" for v in low - 2 * extent)
        grid += " GRID_MAX=" + ",".join(f"{v:.3g}" for v in high + 2 * extent)
    if isinstance(bias, OpesSettings):
        action = "OPES_METAD_EXPLORE" if bias.explore else "OPES_METAD"
        title = f"{action} on the first {biased} CVs (BARRIER in kJ/mol, PACE in steps, TEMP in K)"
        line = (
            f"opes: {action} ARG={arguments} SIGMA={sigma} BARRIER={bias.barrier:g} PACE={bias.pace}"
            f" TEMP={temperature:g} FILE=KERNELS STATE_WFILE=STATE"
        )
        weights = "opes.bias"
    else:
        title = (
            f"Well-tempered metadynamics on the first {biased} CVs"
            " (HEIGHT in kJ/mol, PACE in steps, TEMP in K)"
        )
        line = (
            f"metad: METAD ARG={arguments} SIGMA={sigma}{grid} HEIGHT={bias.height:g} PACE={bias.pace}"
            f" BIASFACTOR={bias.biasfactor:g} TEMP={temperature:g} FILE=HILLS"
        )
        line += " CALC_RCT" if grid else ""
        weights = "metad.bias,metad.rbias" if grid else "metad.bias"
    printed = f"PRINT ARG={arguments},{weights} STRIDE={stride} FILE=COLVAR_METAD FMT=%.10f"
    extra = []
    if edges is not None:
        kappa = ",".join(["200"] * biased)
        lower, upper = edges
        for name, values in (("UPPER_WALLS", upper), ("LOWER_WALLS", lower)):
            at = ",".join(f"{v:.3g}" for v in values)
            extra.append(f"{name.split('_')[0].lower()}: {name} ARG={arguments} AT={at} KAPPA={kappa}")
    rdf = RdfSettings.from_dict(metadata["rdf"])
    comment = "" if active else "# "
    lines = [
        f"# nanochart model {model.name}: {metadata['n_atoms']} {'/'.join(metadata['elements'])} atoms,",
        f"# RDF {rdf.describe()}.",
        f"# Units: PLUMED's (nm, kJ/mol, ps); RDF_ENCODER converts lengths to the model's {rdf.length_unit}.",
        load,
        f"cv: RDF_ENCODER MODEL={model} GROUP=1-{metadata['n_atoms']} NOPBC"
        + (" NOVELTY" if novelty else ""),
        f"PRINT ARG={','.join([*(f'cv.{name}' for name in names), *(['cv.novelty'] if novelty else [])])}"
        f" STRIDE={stride} FILE=COLVAR FMT=%.10f",
        "",
        f"# {title}" + ("." if active else ": uncomment."),
        comment + line,
        comment + printed,
        *(comment + wall for wall in extra),
    ]
    return "\n".join(lines) + "\n"


def _box_edges(box: tuple[Sequence[float], Sequence[float]], biased: int) -> tuple[np.ndarray, np.ndarray]:
    """The lower and upper edges of a box of walls, checked: one finite value per biased CV,
    lower below upper."""
    lower, upper = (np.asarray(edge, dtype=np.float64) for edge in box)
    if lower.shape != (biased,) or upper.shape != (biased,):
        raise ValueError(f"box: a lower and an upper value for each of the {biased} biased CVs, got {box}")
    if not (np.isfinite(lower).all() and np.isfinite(upper).all() and np.all(lower < upper)):
        raise ValueError(f"box: finite edges with lower below upper for every CV, got {box}")
    return lower, upper


def read_colvar(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """A PLUMED output file (COLVAR, HILLS) as columns named by its `#! FIELDS` line; PLUMED writes
    time in ps and energies in its energy unit (kJ/mol unless the input says UNITS)."""
    path = Path(path)
    with open(path) as handle:
        header = handle.readline().split()
    if header[:2] != ["#!", "FIELDS"]:
        raise ValueError(f"{path} is not a PLUMED output file (no '#! FIELDS' line)")
    values = np.loadtxt(path, comments="#", ndmin=2)
    names = header[2:]
    if values.shape[1] != len(names):
        raise ValueError(f"{path}: {values.shape[1]} columns but {len(names)} FIELDS")
    return {name: values[:, k] for k, name in enumerate(names)}


def rows_at_times(
    colvar: dict[str, np.ndarray], times: np.ndarray, source: str | os.PathLike[str]
) -> np.ndarray:
    """The index of the row of ``colvar`` (from :func:`read_colvar`) printed at each of ``times``
    (ps), so that frames dumped on the PRINT's stride meet their CVs and bias; a time with no row
    within 1e-3 ps is refused, naming ``source``."""
    times = np.asarray(times, dtype=np.float64)
    rows = np.searchsorted(colvar["time"], times - 1e-6)
    if np.any(rows >= len(colvar["time"])) or np.any(np.abs(colvar["time"][rows] - times) > 1e-3):
        raise RuntimeError(f"{source}: no row at every frame's time")
    return rows
