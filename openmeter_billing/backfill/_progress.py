"""Progress on the command line: a live bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import time
from typing import Literal, TextIO

from ._report import BackfillProgress

__all__ = ["ProgressPrinter"]

Mode = Literal["bar", "lines", "none"]
WIDTH = 28


class ProgressPrinter:
    """An ``on_progress`` callback writing to ``stream`` (stderr, so stdout keeps the report).

    ``bar`` redraws one line (done/total, rate, ETA, failures); ``lines`` prints a full line
    every ``every`` seconds and the last one at the end, so logs stay readable.
    """

    def __init__(self, stream: TextIO, mode: Mode, *, every: float = 5.0) -> None:
        self.stream = stream
        self.mode = mode
        self.every = every
        self.last: BackfillProgress | None = None
        self._printed_at = float("-inf")
        self._printed: BackfillProgress | None = None
        self._drawn = False

    def __call__(self, progress: BackfillProgress) -> None:
        self.last = progress
        if self.mode == "bar":
            self.stream.write("\r" + render_bar(progress))
            self.stream.flush()
            self._drawn = True
        elif self.mode == "lines":
            now = time.monotonic()
            if now - self._printed_at >= self.every:
                self._printed_at, self._printed = now, progress
                print(render_line(progress), file=self.stream, flush=True)

    def close(self) -> None:
        """End the bar's line, or print the final plain line if it was not printed yet."""
        if self.mode == "bar" and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
        elif self.mode == "lines" and self.last is not None and self.last is not self._printed:
            self._printed = self.last
            print(render_line(self.last), file=self.stream, flush=True)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = int(seconds + 0.5)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _counts(p: BackfillProgress) -> str:
    return f"{p.settled}/{p.total}" if p.total is not None else f"{p.settled}"


def render_bar(p: BackfillProgress) -> str:
    """``customers [#######-------] 5000/10000  50% 812/s ETA 6s failed 0``."""
    fraction = p.fraction
    if fraction is None:
        bar = ""
        percent = ""
    else:
        filled = int(fraction * WIDTH)
        bar = " [" + "#" * filled + "-" * (WIDTH - filled) + "]"
        percent = f" {fraction * 100:3.0f}%"
    return (
        f"{p.kind}{bar} {_counts(p)}{percent} {p.rate:.0f}/s ETA {_duration(p.eta)} "
        f"failed {p.failed}"
    )


def render_line(p: BackfillProgress) -> str:
    """``backfill customers: 5000/10000 (50.0%), 812/s, eta 6s, skipped 0, failed 0``."""
    fraction = p.fraction
    percent = f" ({fraction * 100:.1f}%)" if fraction is not None else ""
    return (
        f"backfill {p.kind}: {_counts(p)}{percent}, {p.rate:.0f}/s, eta {_duration(p.eta)}, "
        f"skipped {p.skipped}, failed {p.failed}"
    )
