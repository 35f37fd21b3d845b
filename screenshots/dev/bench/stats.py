"""What one measured run did, and the sum of several (interleaved rounds)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from screenshots.dev.bench.machine import CpuWindow


@dataclass
class RunStats:
    """One measured run (or the sum of several): counts, wall time and CPU."""

    label: str
    urls: int
    ok: int
    errors: int
    wall: float
    busy: float
    bytes_mean: float | None = None
    #: Median time per URL as the service reports it (``duration_ms``), when it does.
    duration_ms_median: float | None = None
    kinds: dict[str, float] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    #: Busy cores just before the window (the highest of the rounds).
    pre_load: float = 0.0
    #: CPU-s of processes the bench did not start (other jobs on the machine).
    foreign: float = 0.0
    #: CPU-s of the processes the bench started, plus RabbitMQ and Redis.
    own: float = 0.0
    rounds: int = 1

    @property
    def rate(self) -> float:
        return self.ok / self.wall if self.wall > 0 else 0.0

    @property
    def cpu_per_item(self) -> float | None:
        return self.busy / self.ok if self.ok else None

    @property
    def own_per_item(self) -> float | None:
        return self.own / self.ok if self.ok else None

    @property
    def not_own(self) -> float:
        """Share of the machine's busy time not charged to the bench's processes (nor to
        RabbitMQ and Redis): other jobs, plus kernel time that no process is charged with
        (a few % on a quiet machine). Above ~10%, the row's figures are not reliable."""
        return max(0.0, 1.0 - self.own / self.busy) if self.busy > 0 else 0.0

    @property
    def cores_busy(self) -> float:
        return self.busy / self.wall if self.wall > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "settings": self.settings,
            "urls": self.urls,
            "ok": self.ok,
            "errors": self.errors,
            "wall": round(self.wall, 3),
            "busy": round(self.busy, 3),
            "own": round(self.own, 3),
            "foreign": round(self.foreign, 3),
            "rate": self.rate,
            "cpu_per_item": self.cpu_per_item,
            "own_per_item": self.own_per_item,
            "cores_busy": self.cores_busy,
            "not_own": self.not_own,
            "bytes_mean": self.bytes_mean,
            "duration_ms_median": self.duration_ms_median,
            "pre_load": round(self.pre_load, 3),
            "rounds": self.rounds,
            "kinds": {k: round(v, 3) for k, v in self.kinds.items()},
            "error_samples": self.error_samples,
        }


def from_window(label: str, window: CpuWindow, **fields: Any) -> RunStats:
    """A :class:`RunStats` with the wall time and CPU of a finished :class:`CpuWindow`."""
    return RunStats(
        label=label,
        wall=window.wall,
        busy=window.busy,
        kinds=dict(window.kinds),
        foreign=window.foreign,
        own=window.own,
        **fields,
    )


def combine(runs: Sequence[RunStats]) -> RunStats:
    """The sum of several runs of the same system (rounds): times, CPU and counts add up."""
    if not runs:
        raise ValueError("nothing to combine")
    first = runs[0]
    kinds: dict[str, float] = {}
    for run in runs:
        for kind, seconds in run.kinds.items():
            kinds[kind] = kinds.get(kind, 0.0) + seconds
    ok = sum(run.ok for run in runs)
    sized = [(run.bytes_mean, run.ok) for run in runs if run.bytes_mean is not None and run.ok]
    medians = [run.duration_ms_median for run in runs if run.duration_ms_median is not None]
    return RunStats(
        label=first.label,
        urls=sum(run.urls for run in runs),
        ok=ok,
        errors=sum(run.errors for run in runs),
        wall=sum(run.wall for run in runs),
        busy=sum(run.busy for run in runs),
        bytes_mean=(
            sum(size * count for size, count in sized) / sum(count for _, count in sized)
            if sized else None
        ),
        duration_ms_median=statistics.median(medians) if medians else None,
        kinds=dict(sorted(kinds.items(), key=lambda item: -item[1])),
        error_samples=[s for run in runs for s in run.error_samples][:5],
        settings=dict(first.settings),
        pre_load=max(run.pre_load for run in runs),
        foreign=sum(run.foreign for run in runs),
        own=sum(run.own for run in runs),
        rounds=sum(run.rounds for run in runs),
    )


def chunks(items: Sequence[str], count: int) -> list[list[str]]:
    """``items`` cut into ``count`` interleaved parts of near-equal size (part i takes every
    ``count``-th item from i), so every part samples the whole corpus alike."""
    count = max(1, min(count, len(items))) if items else 1
    return [list(items[i::count]) for i in range(count)]
