"""A one-line progress bar for terminals: done/total, rate, ETA, failures."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

#: Seconds between two redraws.
REDRAW_INTERVAL = 0.2
BAR_WIDTH = 24


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Progress:
    """Counts results and, on a terminal, redraws a bar; silent elsewhere."""

    def __init__(
        self,
        total: int,
        stream: TextIO = sys.stderr,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.skipped = 0
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.clock = clock
        self.started = clock()
        self._drawn = 0.0

    def skip(self, count: int = 1) -> None:
        """Lines already done by a previous run."""
        self.skipped += count
        self.done += count

    def update(self, ok: bool) -> None:
        self.done += 1
        if not ok:
            self.failed += 1
        now = self.clock()
        if self.enabled and (now - self._drawn >= REDRAW_INTERVAL or self.done == self.total):
            self._drawn = now
            self.stream.write("\r" + self.line() + "\x1b[K")
            self.stream.flush()

    @property
    def rate(self) -> float:
        elapsed = self.clock() - self.started
        fresh = self.done - self.skipped
        return fresh / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        total = max(self.total, self.done)
        fraction = self.done / total if total else 1.0
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        rate = self.rate
        eta = format_duration((total - self.done) / rate) if rate > 0 else "--:--"
        return (
            f"[{bar}] {self.done}/{total} {fraction:4.0%}  {rate:6.1f}/s  "
            f"ETA {eta}  failed {self.failed}"
        )

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\r" + self.line() + "\x1b[K\n")
            self.stream.flush()

    def summary(self, out_dir: str) -> str:
        elapsed = self.clock() - self.started
        ok = self.done - self.failed
        parts = [
            f"{self.done} URLs: {ok} ok, {self.failed} failed",
            f"in {format_duration(elapsed)} ({self.rate:.1f}/s)",
        ]
        if self.skipped:
            parts.append(f"{self.skipped} already done by an earlier run")
        return "; ".join(parts) + f"\nresults: {out_dir}"
