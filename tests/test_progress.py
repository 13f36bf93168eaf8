"""Progress bars (nanochart.progress): live on a terminal, plain timed lines in a log."""

from __future__ import annotations

import io

import pytest

from nanochart import progress
from nanochart.progress import progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_plain_lines_first_and_last() -> None:
    log = io.StringIO()
    for _ in progress_bar(range(5), desc="quenching", unit="frame", stream=log, leave=False):
        pass
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and log.getvalue().endswith("\n")
    # Within one LOG_INTERVAL_S: the start and the end only, and the end stays even with leave=False.
    assert len(lines) == 2, lines
    assert all(line.startswith("quenching:") for line in lines)
    assert "0/5" in lines[0] and "100%" in lines[-1] and "5/5" in lines[-1]


def test_a_log_gets_a_line_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.0)
    log = io.StringIO()
    with progress_bar(total=4, desc="CNA", unit="structure", stream=log) as bar:
        for _ in range(4):
            bar.update(1)
            # A postfix without refresh waits for the next line instead of writing one of its own.
            bar.set_postfix(kept=3, refresh=False)
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 + 4 + 1 and "4/4" in lines[-1] and "kept=3" in lines[-1]


def test_a_terminal_gets_a_live_bar_and_disabled_bars_say_nothing() -> None:
    terminal = Terminal()
    for _ in progress_bar(range(3), desc="MD", stream=terminal):
        pass
    assert "\r" in terminal.getvalue() and "3/3" in terminal.getvalue()
    log = io.StringIO()
    for _ in progress_bar(range(3), desc="MD", stream=log, enabled=False):
        pass
    assert log.getvalue() == ""


def test_slow_steps_in_a_log_repeat_no_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """tqdm's monitor thread redraws a bar whose steps are slow without moving its clock; in a log
    every step then came out twice (seen with 20 s training epochs)."""
    import itertools
    import re
    import time

    from tqdm.auto import tqdm

    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.2)
    monkeypatch.setattr(tqdm, "monitor_interval", 0.01)
    # A monitor left by earlier bars keeps its 10 s beat: stop it, so that a new one starts at 0.01 s.
    if tqdm.monitor is not None:
        tqdm.monitor.exit()
        tqdm.monitor = None
    log = io.StringIO()
    for _ in progress_bar(range(12), desc="training", stream=log):
        time.sleep(0.07)
    counts = [int(re.search(r"(\d+)/12", line).group(1)) for line in log.getvalue().splitlines()]
    # The last line is the bar's close, which repeats the final count.
    assert len(counts) >= 4 and counts[-1] == 12
    assert all(a < b for a, b in itertools.pairwise(counts[:-1])), counts
