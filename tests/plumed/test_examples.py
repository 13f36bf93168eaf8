"""The MD examples run end to end (short settings) and write their tables and figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plumed_setup import needs_md

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pytestmark = [pytest.mark.slow, *needs_md]


def _run(script: str, *args: str) -> str:
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result.stdout


def test_metadynamics_example(tmp_path, model_path) -> None:
    out = _run("metad_au147.py", "--model", str(model_path), "--steps", "600", "--out", str(tmp_path))
    assert "hills" in out
    assert (tmp_path / "metad_fes.png").read_bytes()[:4] == b"\x89PNG"
    assert len(np.loadtxt(tmp_path / "HILLS", ndmin=2)) == 600 // 250
    assert np.isfinite(np.loadtxt(tmp_path / "fes.dat")[:, 2]).all()


def test_umbrella_example(tmp_path, model_path) -> None:
    out = _run(
        "umbrella_au147.py",
        "--model",
        str(model_path),
        "--windows",
        "3",
        "--steps",
        "300",
        "--out",
        str(tmp_path),
    )
    assert "WHAM" in out
    assert (tmp_path / "umbrella_fes.png").read_bytes()[:4] == b"\x89PNG"
    profile = np.loadtxt(tmp_path / "fes_cv1.dat")
    assert np.isfinite(profile[:, 1]).any() and np.nanmin(profile[:, 1]) == 0.0


@pytest.mark.parametrize("method", ["metad", "opes", "unbiased"])
def test_transitions_example(tmp_path, method) -> None:
    """A few ps of the transitions example with the shipped model: every ps quenched and labelled,
    the motif path and (biased) the reweighted free energy written."""
    import json

    out = _run("transitions_au147.py", "--method", method, "--ns", "0.006", "--out", str(tmp_path))
    assert "first change of motif" in out
    report = json.loads((tmp_path / method / "motifs.json").read_text())
    assert report["frames"] == 7 and report["start"] == "Ih", "7 quenches, one per ps from 0 to 6 ps"
    assert report["time_ps"] == pytest.approx([0.0, 6.0], abs=1e-6)
    assert sum(report["occupancy"].values()) == pytest.approx(1.0)
    assert (tmp_path / method / "motifs_vs_time.png").read_bytes()[:4] == b"\x89PNG"
    assert len(report["labels"]) == 7
    if method != "unbiased":
        summary = json.loads((tmp_path / method / "summary.json").read_text())
        fe = summary["free_energy"]
        assert fe["weights"] == ("metad.rbias" if method == "metad" else "opes.bias")
        assert fe["skip_ps"] == pytest.approx(1.2) and fe["frames"] == 5, "frames from 2 ps on"
        assert sum(fe["reweighted_population"].values()) == pytest.approx(1.0)
        # The running estimate: each label's ln summed weight up to the last time is the whole's.
        running = fe["running"]
        assert running["time_ps"][-1] == pytest.approx(6.0) and set(running["log_weight"]) == set(
            fe["reweighted_population"]
        )
        finals = {label: values[-1] for label, values in running["log_weight"].items()}
        total = np.logaddexp.reduce(list(finals.values()))
        for label, share in fe["reweighted_population"].items():
            assert np.exp(finals[label] - total) == pytest.approx(share, rel=1e-9)
        assert (tmp_path / method / "fes.png").read_bytes()[:4] == b"\x89PNG"
        assert fe["separation"]["biased_cvs"] == 2 and fe["separation"]["all_cvs"] == 3
        # Default widths: the CVs' standard deviations over unbiased MD from the start.
        widths = out.split("widths: ", 1)[1].split(" CV units", 1)[0]
        line = next(x for x in (tmp_path / method / "plumed.dat").read_text().splitlines() if "SIGMA=" in x)
        assert f"SIGMA={widths.replace(', ', ',')} " in line, (widths, line)
        assert (tmp_path / method / "fluctuations" / "COLVAR").is_file()
        # Re-analysis reads the labels kept in motifs.json instead of quenching again.
        again = _run(
            "transitions_au147.py",
            "--method",
            method,
            "--ns",
            "0.006",
            "--out",
            str(tmp_path),
            "--analyse-only",
            "--skip-ps",
            "0",
        )
        assert "first change of motif" in again
        assert json.loads((tmp_path / method / "summary.json").read_text())["free_energy"]["frames"] == 7


def test_transitions_example_with_walkers(tmp_path) -> None:
    import json

    out = _run(
        "transitions_au147.py", "--method", "metad", "--walkers", "2", "--ns", "0.004", "--out", str(tmp_path)
    )
    assert "2 walker(s)" in out
    folder = tmp_path / "metad_2_walkers"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["walkers"] == 2 and summary["changes_per_wall_hour"] >= 0
    for k in range(2):
        assert json.loads((folder / f"walker_{k}" / "motifs.json").read_text())["frames"] == 5
    # Free energies pool the walkers' frames after the first fifth (0.8 ps): 4 frames each.
    assert summary["free_energy"]["frames"] == 8
    assert (folder / "hills" / "HILLS.1").is_file()


def test_transitions_example_on_three_cvs_from_a_start_file(tmp_path) -> None:
    """OPES_METAD_EXPLORE on all three CVs with widths given, from the last frame of a user's file
    (the decahedron of examples/data, after an icosahedron)."""
    import json

    from ase.io import read, write

    start = tmp_path / "start.extxyz"
    write(start, read(EXAMPLES / "data" / "au147_motifs.extxyz", index=":2"))
    args = ["--method", "opes-explore", "--cvs", "3", "--sigma", "0.35,0.6,0.3", "--ns", "0.003"]
    _run("transitions_au147.py", *args, "--start", str(start), "--out", str(tmp_path))
    folder = tmp_path / "opes-explore"
    line = next(x for x in (folder / "plumed.dat").read_text().splitlines() if x.startswith("opes:"))
    assert line.startswith("opes: OPES_METAD_EXPLORE ARG=cv.cv1,cv.cv2,cv.cv3 SIGMA=0.35,0.6,0.3 ")
    report = json.loads((folder / "motifs.json").read_text())
    assert report["frames"] == 4 and report["start"] == "Dh", "started from the file's last frame"
    separation = json.loads((folder / "summary.json").read_text())["free_energy"]["separation"]
    assert separation["biased_cvs"] == 3 and separation["all_cvs"] == 3
    missing = subprocess.run(
        [sys.executable, str(EXAMPLES / "transitions_au147.py"), "--start", str(tmp_path / "none.extxyz")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "none.extxyz: no such file" in missing.stderr


def test_umbrella_motifs_example(tmp_path) -> None:
    """Three short windows along the path from Ih to mix: every kept ps quenched and labelled, the
    labelled frames unbiased by MBAR, windows already done read back instead of run again."""
    import json

    args = [
        "--windows",
        "3",
        "--ps",
        "3",
        "--equilibrate-ps",
        "1",
        "--s-range=-1.5,0",
        "--back",
        "--out",
        str(tmp_path),
    ]
    out = _run("umbrella_motifs_au147.py", *args)
    assert "F(Ih) - F(mix)" in out
    folder = tmp_path / "umbrella"
    windows = [json.loads((folder / f"window_{k:02d}" / "window.json").read_text()) for k in range(3)]
    back = [json.loads((folder / f"back_{k:02d}" / "window.json").read_text()) for k in range(3)]
    for window in windows + back:
        assert window["times"] == pytest.approx([1.0, 2.0, 3.0, 4.0]), "kept ps 1..4: 4 quenches"
        assert len(window["labels"]) == len(window["s"]) == 4
    # Each restraint holds its window near its centre: the windows' mean s are in their order.
    means = [np.mean(window["s"]) for window in windows]
    assert means[0] < means[2]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["method"] == "umbrella" and summary["pair"] == ["Ih", "mix"]
    assert summary["free_energy"]["frames"] == 24, "two passes of 3 windows, 4 frames each"
    assert set(summary["free_energy"]["passes"]) == {"out", "back"}
    assert sum(summary["free_energy"]["reweighted_population"].values()) == pytest.approx(1.0)
    assert (folder / "umbrella_motifs.png").read_bytes()[:4] == b"\x89PNG"
    again = _run("umbrella_motifs_au147.py", *args)
    assert again.count("read back") == 6


def test_umbrella_motifs_example_with_exchanges(tmp_path) -> None:
    """Three windows in two rounds of 2 ps with exchanges: each round starts from the structure the
    exchange gave its window, every ps after time 0 is labelled, and a second run reads every round
    back and makes the same exchanges."""
    import json

    from ase.io import read, write

    motifs = read(EXAMPLES / "data" / "au147_motifs.extxyz", index=":")
    start = tmp_path / "start.extxyz"  # a start from a file (the Ih motif here)
    write(start, [atoms for atoms in motifs if atoms.info.get("motif") == "Ih"][:1])
    args = ["--windows", "3", "--ps", "4", "--equilibrate-ps", "1", "--exchange-ps", "2"]
    args += ["--s-range=-1.5,0", "--start", str(start), "--out", str(tmp_path)]
    _run("umbrella_motifs_au147.py", *args)
    folder = tmp_path / "umbrella_exchange"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["method"] == "umbrella, windows exchanging" and summary["start"] == str(start)
    statistics = summary["exchange"]
    trace = statistics["replica_in_window_by_round"]
    assert len(trace) == 3 and all(sorted(row) == [0, 1, 2] for row in trace)
    assert len(statistics["acceptance_by_pair"]) == 2
    assert all(0.0 <= share <= 1.0 for share in statistics["acceptance_by_pair"])
    for k in range(3):
        # Round 1 of window k starts from the last frame of round 0 in the window that held the
        # same structure (replica) then.
        came_from = trace[0].index(trace[1][k])
        start = read(folder / "round_001" / f"window_{k:02d}" / "trajectory.extxyz", index=0)
        before = read(folder / "round_000" / f"window_{came_from:02d}" / "trajectory.extxyz", index=-1)
        centred = [atoms.positions - atoms.positions.mean(axis=0) for atoms in (start, before)]
        assert np.allclose(*centred, atol=1e-5), "each run re-centres the cluster in its box"
    assert summary["free_energy"]["frames"] == 12, "3 windows x 2 rounds x 2 ps"
    assert set(summary["free_energy"]["passes"]) == {"first half", "second half"}
    assert (folder / "umbrella_motifs.png").read_bytes()[:4] == b"\x89PNG"
    _run("umbrella_motifs_au147.py", *args)
    again = json.loads((folder / "summary.json").read_text())
    assert again["exchange"] == statistics
    assert again["free_energy"]["reweighted_population"] == summary["free_energy"]["reweighted_population"]


def test_umbrella_motifs_example_names_a_missing_start_file(tmp_path) -> None:
    missing = tmp_path / "nowhere.extxyz"
    script = str(EXAMPLES / "umbrella_motifs_au147.py")
    result = subprocess.run(
        [sys.executable, script, "--start", str(missing), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and f"{missing}: no such file" in result.stderr
