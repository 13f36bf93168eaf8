"""`nanochart generate --method pt`: a data set from parallel tempering (replica exchange) MD.

One replica per temperature of the ladder, all run by LAMMPS' own `temper` command over MPI
partitions (`simulation.tempering`), Langevin thermostat, EAM. Replicas start from seed motifs
(``start``: one motif for all, or ``mixed``, the motifs in turn), equilibrate for
``equilibration_ps``, then every replica takes a snapshot every ``interval_ps``; exchanges between
neighbouring temperatures are attempted every ``exchange_ps``. Each snapshot is quenched (conjugate
gradients, inside the LAMMPS run), attributed to the temperature its replica held at that step
(from `temper`'s log), CNA-labelled, and kept unless a kept structure has the same label and an
energy within 0.1 meV or atoms evaporated: the rules and the extxyz format of `data.sampling`
(``run`` is the replica, ``motif`` its start, ``time`` ps since the start of the run,
``thermal_1`` the snapshot at ``temperature``; one thermal snapshot per structure).

The run is cut into segments of ``segment_snapshots`` snapshots per replica (one MPI launch
each). After each, the data set, a table of every snapshot (``OUT.pt/snapshots.csv``: step,
replica, temperature, label, energy and whether it was kept) and `temper`'s status lines
(``OUT.pt/exchanges.txt``) are appended and ``OUT.progress.json`` records the segment, the
temperature each replica holds and where the LAMMPS restart files are. An interrupted run resumes
from the last finished segment's restart files (a half-done segment is redone from scratch); asking
for more structures with the same settings continues a finished run with more segments, giving the
same file as one long run.

Reported (``OUT.pt.json``, ``OUT.pt.md``): exchange acceptance per neighbouring pair, round trips
of each replica over the ladder, label shares per temperature over every quenched snapshot with
block-average errors, potential-energy fluctuations per temperature and the ladder they suggest.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from ..simulation.lammps_session import potential_file, read_dump, write_cluster_data
from ..simulation.tempering import (
    Segment,
    TemperLog,
    exchange_statistics,
    find_launcher,
    run_segment,
)
from .cna import CLUSTER_LABELS, label_frames, label_pool
from .motifs import FAMILIES, check_request, seed_motifs
from .sampling import (
    LADDER_FRACTIONS,
    MELTING_K,
    Deduplicator,
    GenerateResult,
    Progress,
    SamplingSettings,
    append_frames,
    check_writable,
    count_labels,
    finish,
    has_evaporated,
    labelled,
    open_data_set,
)

#: Boltzmann constant (eV/K), as LAMMPS metal units have it.
BOLTZMANN_EV = 8.617343e-5
#: Target exchange acceptance between neighbouring temperatures of the ladder helper.
TARGET_ACCEPTANCE = 0.3
#: Potential-energy heat capacity per vibrational degree of freedom (units of k_B) that the default
#: ladder assumes: 1/2 is harmonic; two 300 ps Au147 runs over the default ladder measured 0.59 to
#: 0.75 from the energy fluctuations between 250 and 570 K (README, "Parallel tempering").
HEAT_CAPACITY_PER_MODE = 0.6
#: Blocks (consecutive in time) for the errors of the label shares per temperature.
BLOCKS = 5
SNAPSHOT_COLUMNS = ("step", "time_ps", "replica", "temperature_K", "label", "energy_eV", "status")


@dataclass(frozen=True)
class PtSettings(SamplingSettings):
    """Parallel tempering (`generate_pt`): the ladder holds one replica per temperature."""

    equilibration_ps: float = 10.0
    exchange_ps: float = 0.5
    start: str = "mixed"
    segment_snapshots: int = 25

    def __post_init__(self) -> None:
        super().__post_init__()
        ladder = tuple(float(t) for t in self.temperatures)
        if len(ladder) < 2:
            raise ValueError(f"parallel tempering needs a ladder of at least 2 temperatures, got {ladder}")
        if any(b <= a for a, b in itertools.pairwise(ladder)):
            raise ValueError(f"the ladder must be increasing (K), got {ladder}")
        object.__setattr__(self, "temperatures", ladder)
        if self.segment_snapshots < 1 or self.exchange_ps <= 0:
            raise ValueError("segment_snapshots >= 1 and exchange_ps > 0 are required")
        if self.start != "mixed" and self.start not in FAMILIES:
            raise ValueError(f"start must be 'mixed' or one of {', '.join(FAMILIES)}, got {self.start!r}")

    @property
    def replicas(self) -> int:
        return len(self.temperatures)

    @property
    def exchange_every(self) -> int:
        """MD steps between exchange attempts."""
        return max(1, round(self.exchange_ps / self.timestep_ps))

    @property
    def snapshot_every(self) -> int:
        """MD steps between snapshots: a whole number of exchange intervals, so that every snapshot
        lies on one temperature."""
        return self.exchange_every * max(1, round(self.interval_ps / self.exchange_ps))

    @property
    def equilibration_steps(self) -> int:
        return self.snapshot_every * math.ceil(
            self.equilibration_ps / (self.snapshot_every * self.timestep_ps)
        )

    @property
    def segments(self) -> int:
        """Sampling segments (after the equilibration): whole ones, so that a longer run repeats a
        shorter one's first segments exactly."""
        return math.ceil(self.structures / (self.replicas * self.segment_snapshots))

    def describe(self) -> str:
        ladder = ", ".join(f"{t:g}" for t in self.temperatures)
        ps = self.segments * self.segment_snapshots * self.snapshot_every * self.timestep_ps
        return (
            f"{self.element}{self.n_atoms} by parallel tempering: {self.replicas} replicas at {ladder} K, "
            f"{ps:g} ps each after {self.equilibration_steps * self.timestep_ps:g} ps of equilibration, a "
            f"snapshot every {self.snapshot_every * self.timestep_ps:g} ps, exchanges every "
            f"{self.exchange_every * self.timestep_ps:g} ps (time step {1000 * self.timestep_ps:g} fs)"
        )

    def starts(self) -> list[str]:
        names = list(FAMILIES) if self.start == "mixed" else [self.start]
        return [names[k % len(names)] for k in range(self.replicas)]


def default_pt_temperatures(element: str, n_atoms: int) -> tuple[float, ...]:
    """The default ladder (K): the range of `generate`'s default ladder (Au: 250 to 570 K), spaced
    for TARGET_ACCEPTANCE with HEAT_CAPACITY_PER_MODE (geometric; Au147: 11 temperatures)."""
    check_request(element, n_atoms)
    low, high = (f * MELTING_K[element] for f in (LADDER_FRACTIONS[0], LADDER_FRACTIONS[-1]))
    ladder = pt_ladder(round(low, -1), round(high, -1), HEAT_CAPACITY_PER_MODE * (3 * n_atoms - 6))
    return tuple(float(round(t, 1)) for t in ladder)


def pt_ladder(
    t_min: float, t_max: float, heat_capacity: float, acceptance: float = TARGET_ACCEPTANCE
) -> list[float]:
    """Temperatures from ``t_min`` to ``t_max`` (K) with about ``acceptance`` exchange acceptance
    between neighbours for a potential-energy heat capacity ``heat_capacity`` (C / k_B). With
    Gaussian energy distributions of variance k_B T^2 C the acceptance between T and T' is
    erfc(sqrt(C) ln(T'/T) / 2): a geometric ladder, its ratio rounded down to whole steps."""
    from scipy.special import erfcinv

    if not 0 < acceptance < 1 or not 0 < t_min < t_max or heat_capacity <= 0:
        raise ValueError("0 < acceptance < 1, 0 < t_min < t_max and a positive heat capacity are required")
    steps = math.ceil(math.sqrt(heat_capacity) * math.log(t_max / t_min) / (2.0 * erfcinv(acceptance)))
    return [float(t) for t in np.geomspace(t_min, t_max, steps + 1)]


def predicted_acceptance(
    t: tuple[float, float], mean: tuple[float, float], var: tuple[float, float]
) -> float:
    """Mean Metropolis acceptance of swapping two temperatures (K) whose potential energies are
    Gaussian with these means (eV) and variances (eV^2)."""
    from scipy.stats import norm

    beta = [1.0 / (BOLTZMANN_EV * x) for x in t]
    m = (beta[0] - beta[1]) * (mean[0] - mean[1])  # log of the acceptance ratio: mean ...
    s = abs(beta[0] - beta[1]) * math.sqrt(var[0] + var[1])  # ... and spread
    if s == 0:
        return float(min(1.0, math.exp(m)))
    return float(norm.cdf(m / s) + math.exp(m + s * s / 2) * norm.cdf(-m / s - s))


def ladder_from_energies(
    temperatures: Sequence[float],
    means: Sequence[float],
    variances: Sequence[float],
    acceptance: float = TARGET_ACCEPTANCE,
) -> list[float]:
    """A ladder over the same range from measured potential-energy means (eV) and variances (eV^2)
    per temperature (K), interpolated linearly: each next temperature is where the Gaussian model
    (`predicted_acceptance`) gives ``acceptance``; the last step, to the top, gives at least that."""
    t_known = np.asarray(temperatures, dtype=np.float64)

    def model(t0: float, t1: float) -> float:
        mean = (float(np.interp(t0, t_known, means)), float(np.interp(t1, t_known, means)))
        var = (float(np.interp(t0, t_known, variances)), float(np.interp(t1, t_known, variances)))
        return predicted_acceptance((t0, t1), mean, var)

    ladder = [float(t_known[0])]
    top = float(t_known[-1])
    while model(ladder[-1], top) < acceptance and len(ladder) < 1000:
        low, high = ladder[-1], top
        for _ in range(60):  # bisection: the acceptance falls as the second temperature rises
            middle = 0.5 * (low + high)
            low, high = (middle, high) if model(ladder[-1], middle) > acceptance else (low, middle)
        ladder.append(0.5 * (low + high))
    return [*ladder, top]


@dataclass
class PtResult(GenerateResult):
    #: `pt_report`: exchanges, round trips, label shares per temperature, energies.
    report: dict = field(default_factory=dict)


class _Tables:
    """The run's append-only side files (snapshot table, exchange log), cut back on resume to the
    sizes the progress file recorded after the last finished segment."""

    def __init__(self, work: Path, sizes: dict[str, int]) -> None:
        self.paths = {"snapshots": work / "snapshots.csv", "exchanges": work / "exchanges.txt"}
        for name, path in self.paths.items():
            size = sizes.get(name)
            if size is None:  # a new run
                path.write_text(",".join(SNAPSHOT_COLUMNS) + "\n" if name == "snapshots" else "")
            elif not path.is_file() or path.stat().st_size < size:
                raise ValueError(f"{path} is shorter than the progress file records: pass --overwrite")
            else:
                with open(path, "r+b") as handle:
                    handle.truncate(size)

    def append(self, name: str, text: str) -> None:
        with open(self.paths[name], "a") as handle:
            handle.write(text)

    def sizes(self) -> dict[str, int]:
        return {name: path.stat().st_size for name, path in self.paths.items()}


def generate_pt(
    out: str | os.PathLike[str],
    settings: PtSettings,
    *,
    mpiexec: str | None = None,
    procs_per_replica: int = 1,
    workers: int | None = None,
    overwrite: bool = False,
    potential: str | None = None,
    progress: bool = True,
) -> PtResult:
    """Make (or resume, or extend) the data set ``out`` by parallel tempering; see the module
    docstring. ``mpiexec``: the MPI launcher command line (default: the mpich wheel's `mpiexec`),
    run with ``-n replicas * procs_per_replica``; ``workers``: processes for the CNA labels."""
    from nanochart.progress import progress_bar

    out = Path(out)
    launcher = find_launcher(mpiexec, procs_per_replica)
    potential_path = Path(potential) if potential else potential_file(settings.element)
    if not potential_path.is_file():
        raise FileNotFoundError(f"no EAM potential file at {potential_path}")
    check_writable(out)
    work = out.with_name(out.name + ".pt")
    if overwrite and work.exists():
        shutil.rmtree(work)
    state = Progress(out, settings)
    state.load(out, overwrite)
    if not state.done and work.exists():
        shutil.rmtree(work)  # left by a run that finished no segment
    work.mkdir(parents=True, exist_ok=True)
    tables = _Tables(work, state.extra.get("tables", {}))
    dedupe, labels = open_data_set(out, state)

    total = 1 + settings.segments
    per_segment = settings.segment_snapshots * settings.replicas
    bar = progress_bar(
        total=settings.segments * per_segment,
        initial=max(0, len(state.done) - 1) * per_segment,
        desc=f"{settings.element}{settings.n_atoms} PT, {settings.replicas} replicas",
        unit="snapshot",
        enabled=progress,
    )
    with bar, label_pool(workers) as pool:
        for index in range(len(state.done), total):
            segment = _plan_segment(settings, index, state, work)
            started = time.perf_counter()
            done_before = bar.n

            def on_step(step: int, segment: Segment = segment, done_before: int = done_before) -> None:
                # MD progress inside a segment, in snapshots (the quenches follow the MD).
                if segment.snapshot_every:
                    bar.n = (
                        done_before
                        + settings.replicas * max(0, step - segment.start_step) // segment.snapshot_every
                    )
                    bar.refresh()

            log = run_segment(segment, work / _segment_dir(index), launcher, potential_path, on_step)
            snapshots = _collect(settings, segment, log, work / _segment_dir(index), pool)
            kept = _keep(snapshots, dedupe, state)
            count_labels(kept, labels)
            append_frames(out, kept)
            tables.append("snapshots", "".join(",".join(map(str, row)) + "\n" for row, _ in snapshots))
            tables.append("exchanges", _exchange_text(index, log))
            if segment.snapshot_every:  # the equilibration's energies are not the ensemble's
                energy = state.extra.setdefault("energy", {})
                _add_energies(energy, settings, segment, log, work / _segment_dir(index))
            state.extra.update(
                indices=[int(i) for i in log.indices[-1]],
                step=segment.start_step + segment.steps,
                tables=tables.sizes(),
                wall_s=state.extra.get("wall_s", 0.0) + time.perf_counter() - started,
            )
            state.done.add(index)
            state.size = out.stat().st_size
            state.save()
            if index > 0:
                shutil.rmtree(work / _segment_dir(index - 1), ignore_errors=True)
            bar.n = done_before + len(segment.snapshot_steps) * settings.replicas
            bar.set_postfix(kept=sum(sum(c.values()) for c in labels.values()), refresh=False)

    result = PtResult(out, 0, 0, 0, 0, report=pt_report(out, settings))
    finish(result, state, labels, f"{settings.element}{settings.n_atoms} (parallel tempering)")
    result.outputs.update(_write_pt_report(out, result.report))
    return result


def _segment_dir(index: int) -> str:
    return f"segment_{index:04d}"


def _plan_segment(settings: PtSettings, index: int, state: Progress, work: Path) -> Segment:
    """Segment 0 equilibrates from the seed motifs; segment k > 0 takes ``segment_snapshots``
    snapshots per replica, from segment k-1's restart files. Seeds depend on (seed, segment) only."""
    n = settings.replicas
    seeds = np.random.default_rng([settings.seed, index]).integers(1, 900_000_000, size=n + 1)
    if index == 0:
        starts_dir = work / "starts"
        starts_dir.mkdir(exist_ok=True)
        motifs = seed_motifs(settings.element, settings.n_atoms)
        for replica, name in enumerate(settings.starts()):
            write_cluster_data(motifs[name], starts_dir / f"start.{replica}.data")
        starts = tuple(f"../starts/start.{r}.data" for r in range(n))
        return Segment(
            settings.temperatures, 0, settings.equilibration_steps, settings.exchange_every, 0,
            settings.timestep_ps, tuple(int(s) for s in seeds), tuple(range(n)), starts, restart=False,
        )  # fmt: skip
    previous = work / _segment_dir(index - 1)
    missing = [r for r in range(n) if not (previous / f"restart.{r}").is_file()]
    if missing:
        raise FileNotFoundError(
            f"the restart files of segment {index - 1} ({previous}) are missing, so the run cannot go on: "
            "pass --overwrite to start again"
        )
    return Segment(
        settings.temperatures,
        int(state.extra["step"]),
        settings.segment_snapshots * settings.snapshot_every,
        settings.exchange_every,
        settings.snapshot_every,
        settings.timestep_ps,
        tuple(int(s) for s in seeds),
        tuple(int(i) for i in state.extra["indices"]),
        tuple(f"../{_segment_dir(index - 1)}/restart.{r}" for r in range(n)),
        restart=True,
    )


def _collect(
    settings: PtSettings, segment: Segment, log: TemperLog, folder: Path, pool
) -> list[tuple[list, Atoms | None]]:
    """The segment's quenched snapshots in (step, replica) order: a snapshot table row each (its
    status filled in by `_keep`) and the labelled structure (None when atoms evaporated)."""
    steps = segment.snapshot_steps
    if not steps:  # the equilibration
        return []
    held = log.indices_at(steps)  # (snapshot, replica) -> temperature index
    starts = settings.starts()
    per_replica = []
    for replica in range(settings.replicas):
        snapshots_md = {step: x for step, _, x in read_dump(folder / f"thermal.{replica}.dump")}
        # In quench order (their timesteps are whatever the minimiser left, not the snapshots').
        minima = [positions for _, _, positions in read_dump(folder / f"quench.{replica}.dump")]
        table = np.loadtxt(folder / f"quench.{replica}.txt", ndmin=2)
        if len(minima) != len(steps) or [int(s) for s in table[:, 0]] != steps:
            raise RuntimeError(
                f"{folder}: replica {replica} quenched {len(minima)} of {len(steps)} snapshots"
            )
        per_replica.append((snapshots_md, minima, table[:, 1]))
    pending: list[
        tuple[list, Atoms | None, float, np.ndarray, dict]
    ] = []  # (row, structure, energy, thermal, info)
    for k, step in enumerate(steps):
        for replica, (thermal, quenched, energies) in enumerate(per_replica):
            temperature = settings.temperatures[held[k, replica]]
            time_ps = round(step * settings.timestep_ps, 6)
            row = [step, time_ps, replica, temperature, "-", f"{energies[k]:.6f}", "evaporated"]
            frame = Atoms(f"{settings.element}{settings.n_atoms}", positions=quenched[k])
            info = {"temperature": temperature, "motif": starts[replica], "run": replica, "time": time_ps}
            structure = None if has_evaporated(frame) else frame
            pending.append((row, structure, float(energies[k]), thermal[step], info))
    label_frames([p[1] for p in pending if p[1] is not None], pool=pool, progress=False)
    snapshots: list[tuple[list, Atoms | None]] = []
    for row, structure, energy, positions, info in pending:
        if structure is not None:
            row[4] = structure.info["label"]
            structure = labelled(structure, energy, [(positions, row[3])], **info)
        snapshots.append((row, structure))
    return snapshots


def _keep(snapshots: list[tuple[list, Atoms | None]], dedupe: Deduplicator, state: Progress) -> list[Atoms]:
    """The new structures among the snapshots (the rest: duplicates or evaporated), counted."""
    kept = []
    for row, frame in snapshots:
        if frame is None:
            state.counts["evaporated"] += 1
        elif dedupe.add(frame.info["label"], frame.get_potential_energy()):
            kept.append(frame)
            row[6] = "kept"
        else:
            state.counts["duplicates"] += 1
            row[6] = "duplicate"
    state.counts["sampled"] += len(snapshots)
    return kept


def _exchange_text(index: int, log: TemperLog) -> str:
    rows = [" ".join(map(str, [step, *row])) for step, row in zip(log.steps, log.indices, strict=True)]
    return f"# segment {index}\n" + "\n".join(rows) + "\n"


def read_exchanges(path: Path) -> list[TemperLog]:
    """The `temper` status lines of every segment, as `_exchange_text` wrote them."""
    logs: list[TemperLog] = []
    rows: list[list[int]] = []
    for line in [*path.read_text().splitlines(), "# end"]:
        if line.startswith("#"):
            if rows:
                table = np.array(rows, dtype=np.int64)
                logs.append(TemperLog(table[:, 0], table[:, 1:]))
            rows = []
        elif line.strip():
            rows.append([int(v) for v in line.split()])
    return logs


def _add_energies(stats: dict, settings: PtSettings, segment: Segment, log: TemperLog, folder: Path) -> None:
    """Fold the segment's samples, per temperature, into running [count, mean potential energy
    (eV), its M2 (sum of squared deviations, eV^2), mean kinetic temperature (K)]."""
    for replica in range(settings.replicas):
        samples = np.loadtxt(folder / f"energies.{replica}.txt", comments="#", ndmin=2)
        inside = (samples[:, 0] > segment.start_step) & (samples[:, 0] <= segment.start_step + segment.steps)
        samples = samples[inside]
        held = log.indices_at(samples[:, 0].astype(np.int64).tolist())[:, replica]
        for t_index in np.unique(held):
            energy, kinetic = samples[held == t_index, 1], samples[held == t_index, 2]
            key = f"{settings.temperatures[t_index]:g}"
            n_a, mean_a, m2_a, kinetic_a = stats.get(key, (0, 0.0, 0.0, 0.0))
            n_b, mean_b = len(energy), float(energy.mean())
            n = n_a + n_b
            delta = mean_b - mean_a
            stats[key] = [
                n,
                mean_a + delta * n_b / n,
                m2_a + float(((energy - mean_b) ** 2).sum()) + delta * delta * n_a * n_b / n,
                kinetic_a + (float(kinetic.mean()) - kinetic_a) * n_b / n,
            ]


def _read_snapshots(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def label_shares(rows: list[dict], temperatures: tuple[float, ...], blocks: int = BLOCKS) -> dict:
    """Share of each CNA label among all quenched snapshots (duplicates included, evaporated ones
    not) at each temperature, with the standard error from ``blocks`` consecutive blocks in time."""
    shares = {}
    for temperature in temperatures:
        sequence = [
            r["label"]
            for r in sorted(rows, key=lambda r: int(r["step"]))
            if float(r["temperature_K"]) == temperature and r["status"] != "evaporated"
        ]
        entry: dict = {"snapshots": len(sequence), "share": {}, "error": {}}
        for label in CLUSTER_LABELS:
            hits = np.array([s == label for s in sequence], dtype=np.float64)
            entry["share"][label] = float(hits.mean()) if len(hits) else 0.0
            parts = [p for p in np.array_split(hits, blocks) if len(p)] if len(hits) >= 2 * blocks else []
            means = np.array([p.mean() for p in parts])
            entry["error"][label] = (
                float(means.std(ddof=1) / math.sqrt(len(means))) if len(means) > 1 else None
            )
        shares[f"{temperature:g}"] = entry
    return shares


def pt_report(out: Path, settings: PtSettings) -> dict:
    """Exchange acceptance per pair, round trips, label shares per temperature, energy fluctuations
    and the ladder they suggest, from the side files of the data set ``out``."""
    work = out.with_name(out.name + ".pt")
    state = json.loads(out.with_name(out.name + ".progress.json").read_text())
    # Sampling segments only, as for the label shares and energies: the equilibration is left out.
    logs = read_exchanges(work / "exchanges.txt")[1:]
    stats = exchange_statistics(logs)
    ladder = settings.temperatures
    energy = state["extra"].get("energy", {})
    fluctuations = {}
    for t in ladder:
        n, mean, m2, kinetic = energy.get(f"{t:g}", (0, 0.0, 0.0, 0.0))
        var = m2 / max(1, n - 1)
        fluctuations[f"{t:g}"] = {
            "samples": n,
            "mean_eV": mean,
            "std_eV": math.sqrt(var),
            "heat_capacity_kB": var / (BOLTZMANN_EV * t) ** 2,
            "kinetic_temperature_K": kinetic,
        }
    pairs = []
    for i in range(len(ladder) - 1):
        a, b = fluctuations[f"{ladder[i]:g}"], fluctuations[f"{ladder[i + 1]:g}"]
        predicted = None
        if a["samples"] > 1 and b["samples"] > 1:
            predicted = predicted_acceptance(
                (ladder[i], ladder[i + 1]), (a["mean_eV"], b["mean_eV"]), (a["std_eV"] ** 2, b["std_eV"] ** 2)
            )
        pairs.append(
            {
                "pair_K": [ladder[i], ladder[i + 1]],
                "attempts": int(stats.attempts[i]),
                "accepted": int(stats.accepted[i]),
                "acceptance": float(stats.acceptance[i]),
                "predicted": predicted,
            }
        )
    suggested = None
    if all(f["samples"] > 1 and f["std_eV"] > 0 for f in fluctuations.values()):
        means = [fluctuations[f"{t:g}"]["mean_eV"] for t in ladder]
        variances = [fluctuations[f"{t:g}"]["std_eV"] ** 2 for t in ladder]
        suggested = [round(t, 1) for t in ladder_from_energies(ladder, means, variances)]
    md_ps = (state["extra"].get("step", 0) - settings.equilibration_steps) * settings.timestep_ps
    return {
        "settings": asdict(settings),
        "replicas": settings.replicas,
        "sampling_ps_per_replica": round(md_ps, 3),
        "equilibration_ps": round(settings.equilibration_steps * settings.timestep_ps, 3),
        "wall_s": round(state["extra"].get("wall_s", 0.0), 1),
        "snapshots": state["counts"],
        "exchange": {
            "every_ps": round(settings.exchange_every * settings.timestep_ps, 6),
            "pairs": pairs,
            "round_trips": [int(r) for r in stats.round_trips],
            "round_trips_total": int(stats.round_trips.sum()),
        },
        "label_shares": label_shares(_read_snapshots(work / "snapshots.csv"), ladder),
        "energy": fluctuations,
        "suggested_ladder_K": suggested,
        "target_acceptance": TARGET_ACCEPTANCE,
    }


def _write_pt_report(out: Path, report: dict) -> dict[str, Path]:
    json_path = out.with_name(out.stem + ".pt.json")
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    md_path = out.with_name(out.stem + ".pt.md")
    md_path.write_text(pt_report_text(report, markdown=True) + "\n")
    return {"PT report": json_path, "PT report (md)": md_path}


def pt_report_text(report: dict, markdown: bool = False) -> str:
    """The report as tables: exchanges per pair, round trips, label shares per temperature."""
    settings = report["settings"]
    lines = [
        f"{settings['element']}{settings['n_atoms']}, {report['replicas']} replicas, "
        f"{report['sampling_ps_per_replica']:g} ps each after {report['equilibration_ps']:g} ps of "
        f"equilibration; exchanges every {report['exchange']['every_ps']:g} ps; "
        f"wall time {report['wall_s']:g} s",
        "",
    ]
    rows = [["pair (K)", "attempts", "accepted", "acceptance", "predicted"]]
    for pair in report["exchange"]["pairs"]:
        predicted = "-" if pair["predicted"] is None else f"{100 * pair['predicted']:.0f}%"
        rows.append(
            [
                f"{pair['pair_K'][0]:g}-{pair['pair_K'][1]:g}",
                str(pair["attempts"]),
                str(pair["accepted"]),
                f"{100 * pair['acceptance']:.1f}%",
                predicted,
            ]
        )
    lines += _table(rows, markdown)
    trips = report["exchange"]["round_trips"]
    lines += [
        "",
        f"round trips (lowest to highest temperature and back): {sum(trips)} in all; per replica {trips}",
    ]
    header = ["T (K)", "snapshots", *CLUSTER_LABELS]
    rows = [header]
    for t, entry in report["label_shares"].items():
        cells = []
        for label in CLUSTER_LABELS:
            error = entry["error"][label]
            cells.append(
                f"{100 * entry['share'][label]:.1f}" + ("" if error is None else f" ± {100 * error:.1f}")
            )
        rows.append([t, str(entry["snapshots"]), *cells])
    lines += [
        "",
        f"label shares (%) of all quenched snapshots, ± standard error over {BLOCKS} blocks in time:",
    ]
    lines += _table(rows, markdown)
    if report["suggested_ladder_K"]:
        ladder = ",".join(f"{t:g}" for t in report["suggested_ladder_K"])
        lines += [
            "",
            f"ladder for {100 * report['target_acceptance']:.0f}% acceptance from these energy fluctuations: "
            f"--temperatures {ladder}",
        ]
    return "\n".join(lines)


def _table(rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        return lines + ["| " + " | ".join(row) + " |" for row in rows[1:]]
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]


def compare_label_shares(a: dict, b: dict) -> dict:
    """Two runs' label shares per temperature (their reports): for every temperature and label the
    difference in units of the combined standard error; ``within_2_sigma``: the share of those
    within two (about 95% expected when both runs sample the same ensemble)."""
    z = {}
    for t, entry in a["label_shares"].items():
        other = b["label_shares"].get(t)
        if other is None:
            continue
        for label in CLUSTER_LABELS:
            errors = [entry["error"][label], other["error"][label]]
            if None in errors:
                continue
            spread = math.hypot(*errors)
            difference = entry["share"][label] - other["share"][label]
            z[f"{t} {label}"] = difference / spread if spread > 0 else (0.0 if difference == 0 else math.inf)
    values = np.abs(np.array(list(z.values())))
    return {
        "z": z,
        "within_2_sigma": float((values <= 2).mean()) if len(values) else None,
        "max_abs_z": float(values.max()) if len(values) else None,
    }
