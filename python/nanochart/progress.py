"""Progress bars for long work, the one place that makes them.

On a terminal or in a notebook, a live tqdm bar. In a log (stderr redirected, as in a batch job or
under nohup) tqdm would stay silent, or fill the file with carriage-return updates; here it writes
one plain line at most every LOG_INTERVAL_S seconds instead, so that a 20-minute `nanochart
generate` in a Slurm job says how far it is.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

#: Seconds between progress lines in a log.
LOG_INTERVAL_S = 60.0


class _LineWriter:
    """A stream for tqdm that turns each carriage-return update into a line of its own."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _live(stream: IO[str]) -> bool:
    """Whether a live bar can be drawn: a terminal, or a Jupyter kernel (tqdm.auto's widget)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) or "ipykernel" in sys.modules


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    enabled: bool = True,
    stream: IO[str] | None = None,
    **options: Any,
) -> Any:
    """A tqdm bar over `iterable` (or one updated by hand with `total=`), with tqdm's `options`
    (desc, unit, total, initial, leave). `enabled=False` gives a silent one."""
    from tqdm.auto import tqdm

    if not enabled:
        return tqdm(iterable, disable=True, **options)
    stream = sys.stderr if stream is None else stream
    if _live(stream):
        return tqdm(iterable, file=stream, **options)
    # In a log the last line (100%) should stay, whatever a live bar would do.
    options["leave"] = True
    # miniters=1: every update checks the clock, and tqdm's monitor thread, which redraws bars whose
    # dynamic miniters grew without moving their last-print time, stays away (it doubled the lines).
    return tqdm(
        iterable,
        file=_LineWriter(stream),
        mininterval=LOG_INTERVAL_S,
        miniters=1,
        ascii=True,
        ncols=100,
        **options,
    )
