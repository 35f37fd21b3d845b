"""CPU accounting: machine-wide CPU time from ``/proc/stat`` and a per-process breakdown.

The benchmark's "CPU-seconds per screenshot" is the machine's busy time during the measured
window divided by the screenshots taken. Busy time is the sum of the ``user``, ``nice``,
``system``, ``irq`` and ``softirq`` columns of the ``cpu`` line of ``/proc/stat`` (``guest``
time is already inside ``user``; ``idle``, ``iowait`` and ``steal`` are not busy). Nothing is
subtracted: RabbitMQ, Redis, SeaweedFS, the static server, the benchmark process itself and
anything else running on the machine are all in it. The idle background before a run is
measured and reported separately so a busy neighbour can be spotted.

The per-process breakdown (which process kind used the CPU) samples every process's
``utime + stime`` at the start and at the end of the window: processes that start *and* exit
inside the window are missed, so the breakdown has an "unattributed" remainder.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import psutil

#: Columns of the ``cpu`` line of /proc/stat, in order (see proc(5)).
STAT_FIELDS = (
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice",
)
#: Columns counted as busy CPU time.
BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq")


def clock_ticks() -> int:
    """Ticks per second of /proc/stat (USER_HZ, 100 on Linux)."""
    return int(os.sysconf("SC_CLK_TCK"))


@dataclass(frozen=True)
class CpuTimes:
    """The ``cpu`` line of /proc/stat, in ticks."""

    ticks: Mapping[str, int]

    @property
    def busy(self) -> int:
        return sum(self.ticks.get(name, 0) for name in BUSY_FIELDS)

    @property
    def total(self) -> int:
        # guest and guest_nice are already counted in user and nice.
        return sum(v for k, v in self.ticks.items() if k not in ("guest", "guest_nice"))


def parse_proc_stat(text: str) -> CpuTimes:
    """The aggregate ``cpu`` line of a /proc/stat text."""
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            values = [int(v) for v in parts[1:]]
            return CpuTimes(dict(zip(STAT_FIELDS, values, strict=False)))
    raise ValueError("no aggregate 'cpu' line in /proc/stat")


def read_cpu_times(path: str = "/proc/stat") -> CpuTimes:
    with open(path, encoding="ascii") as handle:
        return parse_proc_stat(handle.read())


@dataclass(frozen=True)
class CpuDelta:
    """CPU used between two samples, in seconds."""

    wall: float
    busy: float
    idle: float
    iowait: float
    steal: float
    by_field: dict[str, float] = field(default_factory=dict)

    @property
    def cores_busy(self) -> float:
        """Average number of busy cores over the window."""
        return self.busy / self.wall if self.wall > 0 else 0.0


def cpu_delta(before: CpuTimes, after: CpuTimes, wall: float, hz: int = 100) -> CpuDelta:
    """Seconds of busy/idle/iowait/steal time between two /proc/stat samples."""

    def seconds(name: str) -> float:
        return max(0, after.ticks.get(name, 0) - before.ticks.get(name, 0)) / hz

    return CpuDelta(
        wall=wall,
        busy=sum(seconds(name) for name in BUSY_FIELDS),
        idle=seconds("idle"),
        iowait=seconds("iowait"),
        steal=seconds("steal"),
        by_field={name: seconds(name) for name in STAT_FIELDS},
    )


def per_item(total: float, count: int) -> float | None:
    """``total / count``, or ``None`` when nothing was done."""
    return total / count if count > 0 else None


# -- per-process breakdown -----------------------------------------------------------------

#: (kind, test on the lower-cased command line) in order of precedence.
_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("chromedriver", ("chromedriver",)),
    ("chromium renderer", ("--type=renderer",)),
    ("chromium zygote", ("--type=zygote",)),
    ("chromium gpu/utility", ("--type=gpu-process", "--type=utility")),
    ("chromium other", ("crashpad", "--type=")),
    # Before the browser and Playwright's driver: a dispatcher's arguments may name either
    # (``--engine playwright``, a URL file called ``playwright-c4.txt``).
    ("dispatcher", ("dispatcher.py",)),
    ("chromium browser", ("chromium", "chrome-linux", "headless_shell")),
    ("playwright driver (node)", ("playwright", "node ")),
    ("celery worker", ("celery",)),
    ("static server", ("screenshots.dev.bench.corpus",)),
    ("bench (this process)", ("-m screenshots.dev.bench",)),
    ("rabbitmq", ("beam.smp", "rabbitmq", "erl_child_setup", "epmd", "inet_gethost")),
    ("redis", ("redis-server",)),
    ("seaweedfs", ("weed",)),
)


def classify(cmdline: str) -> str:
    """The kind of process a command line belongs to (``other`` if none)."""
    text = cmdline.lower()
    for kind, needles in _KINDS:
        if any(needle in text for needle in needles):
            return kind
    return "other"


@dataclass(frozen=True)
class ProcSample:
    kind: str
    cpu: float  # seconds of user+system so far
    created: float
    children: float = 0.0  # seconds of user+system of its exited (and reaped) children
    ours: bool = True  # started (directly or not) by the benchmark process


#: Kinds of processes every run shares with the rest of the machine (counted, not "foreign").
SHARED_KINDS = frozenset({"rabbitmq", "redis"})
#: Breakdown entry for processes the benchmark did not start (another test run, a build...).
FOREIGN = "not started by the bench (other jobs on the machine)"


def descendants_of(root: int, parents: Mapping[int, int]) -> set[int]:
    """Pids whose chain of parents reaches ``root`` (``root`` included)."""
    ours = {root}
    for pid in parents:
        chain = []
        current: int | None = pid
        while current is not None and current not in ours and current > 1:
            chain.append(current)
            current = parents.get(current)
        if current in ours:
            ours.update(chain)
    return ours


def process_snapshot() -> dict[int, ProcSample]:
    """CPU seconds used so far by every live process, with its kind."""
    infos = [
        p.info for p in psutil.process_iter(["pid", "ppid", "cmdline", "name", "cpu_times",
                                             "create_time"])
    ]
    ours = descendants_of(os.getpid(), {i["pid"]: i.get("ppid") or 0 for i in infos})
    snapshot: dict[int, ProcSample] = {}
    for info in infos:
        times = info.get("cpu_times")
        if times is None:
            continue
        cmdline = " ".join(info.get("cmdline") or []) or (info.get("name") or "")
        snapshot[info["pid"]] = ProcSample(
            kind=classify(cmdline),
            cpu=float(times.user + times.system),
            created=float(info.get("create_time") or 0.0),
            children=float(times.children_user + times.children_system),
            ours=info["pid"] in ours,
        )
    return snapshot


def breakdown(
    before: Mapping[int, ProcSample], after: Mapping[int, ProcSample]
) -> dict[str, float]:
    """CPU seconds per process kind between two snapshots (processes live at the end).

    A process new since ``before`` (or a reused pid: another start time) counts from zero.
    The CPU of children that exited and were reaped in between (Chromium's short-lived
    renderers, the dispatcher) is counted under ``"<parent kind> ← exited children"``; a
    child that started before the window brings its earlier CPU along (small here).
    Processes the benchmark did not start (``ours`` false), except the shared RabbitMQ and
    Redis, are summed under :data:`FOREIGN`, without their reaped children.
    """
    kinds: dict[str, float] = {}
    for pid, end in after.items():
        start = before.get(pid)
        used, reaped = end.cpu, end.children
        if start is not None and abs(start.created - end.created) < 0.5:
            used -= start.cpu
            reaped -= start.children
        foreign = not end.ours and end.kind not in SHARED_KINDS
        if used > 0:
            name = FOREIGN if foreign else end.kind
            kinds[name] = kinds.get(name, 0.0) + used
        # A foreign parent may reap a child that ran for minutes before the window: its
        # children are left out (the machine total still has whatever they used in it).
        if reaped > 0.005 and not foreign:
            name = f"{end.kind} ← exited children"
            kinds[name] = kinds.get(name, 0.0) + reaped
    return kinds


def with_remainder(kinds: Mapping[str, float], busy: float) -> dict[str, float]:
    """The breakdown sorted by CPU, plus ``unattributed`` = machine busy - attributed (≥ 0)."""
    ordered = dict(sorted(kinds.items(), key=lambda item: -item[1]))
    ordered["unattributed (kernel, unreaped exits)"] = max(0.0, busy - sum(kinds.values()))
    return ordered


class CpuWindow:
    """Measures wall time, machine CPU and the per-process breakdown of a ``with`` block."""

    def __init__(self, per_process: bool = True) -> None:
        self.per_process = per_process
        self.hz = clock_ticks()
        self.delta: CpuDelta | None = None
        self.kinds: dict[str, float] = {}
        self._start_procs: dict[int, ProcSample] = {}

    def __enter__(self) -> CpuWindow:
        if self.per_process:
            self._start_procs = process_snapshot()
        self._t0 = time.monotonic()
        self._c0 = read_cpu_times()
        return self

    def __exit__(self, *exc: object) -> None:
        c1 = read_cpu_times()
        wall = time.monotonic() - self._t0
        self.delta = cpu_delta(self._c0, c1, wall, self.hz)
        if self.per_process:
            self.kinds = with_remainder(
                breakdown(self._start_procs, process_snapshot()), self.delta.busy
            )

    @property
    def wall(self) -> float:
        assert self.delta is not None
        return self.delta.wall

    @property
    def busy(self) -> float:
        assert self.delta is not None
        return self.delta.busy

    @property
    def own(self) -> float:
        """CPU seconds of the processes the benchmark started plus RabbitMQ and Redis:
        robust to other jobs on the machine (unlike :attr:`busy`), but blind to processes
        that exited unreaped and to kernel time not charged to a process."""
        return sum(
            seconds for kind, seconds in self.kinds.items()
            if kind != FOREIGN and not kind.startswith("unattributed")
        )

    @property
    def foreign(self) -> float:
        """CPU seconds of processes the benchmark did not start (another job's)."""
        assert self.delta is not None
        return min(self.kinds.get(FOREIGN, 0.0), self.delta.busy)


#: Seconds to wait for a quiet machine before each measured run (``--quiet-wait``).
QUIET_WAIT = 10.0
#: Busy cores under which the machine counts as quiet.
QUIET_THRESHOLD = 0.3


def wait_for_quiet(
    threshold: float | None = None, max_wait: float | None = None, step: float = 1.5
) -> tuple[bool, float]:
    """Wait until the machine's busy cores stay under ``threshold`` for one ``step``.

    Returns (quiet, last load). Gives up after ``max_wait`` seconds: the caller warns.
    """
    threshold = QUIET_THRESHOLD if threshold is None else threshold
    deadline = time.monotonic() + (QUIET_WAIT if max_wait is None else max_wait)
    load = background_load(step)
    while load >= threshold and time.monotonic() < deadline:
        load = background_load(step)
    return load < threshold, load


def background_load(seconds: float = 2.0) -> float:
    """Average busy cores while this process sleeps ``seconds``: the machine's background."""
    before = read_cpu_times()
    started = time.monotonic()
    time.sleep(seconds)
    delta = cpu_delta(before, read_cpu_times(), time.monotonic() - started, clock_ticks())
    return delta.cores_busy


def top_kinds(kinds: Mapping[str, float], count: int, per: int) -> Iterable[tuple[str, float]]:
    """The ``count`` largest kinds as (kind, CPU-ms per item)."""
    for kind, seconds in list(kinds.items())[:count]:
        yield kind, 1000 * seconds / per if per else 0.0


# -- sampled process trees -----------------------------------------------------------------

#: Seconds between two samples of :class:`TreeSampler`.
SAMPLE_INTERVAL = 0.25


class TreeSampler:
    """CPU seconds by process kind of this process's descendants while a ``with`` block runs,
    sampled on a thread every ``interval`` seconds.

    For runs whose processes all start and exit inside the window (a dispatcher and its
    browser), which :func:`breakdown`'s two snapshots cannot see. Each process counts with
    its last sample, so up to ``interval`` of its CPU before it exits is missed (a few % of a
    run of tens of seconds: the breakdown shows where the CPU goes, the totals come from
    :func:`children_cpu`). A process already running when the block starts counts from its
    CPU then. The samples cost this process, not the tree: 0.02 cores with 20 processes
    in the tree (measured, every 0.25 s). Pids in ``exclude`` (the bench's own servers) and
    their descendants are left out.
    """

    def __init__(self, interval: float = SAMPLE_INTERVAL, exclude: Iterable[int] = ()) -> None:
        self.interval = interval
        self.exclude = set(exclude)
        self._last: dict[tuple[int, float], tuple[str, float]] = {}
        self._start: dict[tuple[int, float], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)

    def __enter__(self) -> TreeSampler:
        self.sample()
        self._start = {key: seconds for key, (_, seconds) in self._last.items()}
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def sample(self) -> None:
        skip: set[int] = set()
        for pid in self.exclude:
            with contextlib.suppress(psutil.Error):
                skip.update(p.pid for p in psutil.Process(pid).children(recursive=True))
        skip |= self.exclude
        for process in psutil.Process().children(recursive=True):
            if process.pid in skip:
                continue
            try:
                with process.oneshot():
                    key = (process.pid, process.create_time())
                    times = process.cpu_times()
                    known = self._last.get(key)
                    kind = known[0] if known else classify(" ".join(process.cmdline()))
            except psutil.Error:
                continue  # gone between the listing and the look
            self._last[key] = (kind, times.user + times.system)

    @property
    def kinds(self) -> dict[str, float]:
        """CPU seconds by kind, largest first."""
        found: dict[str, float] = {}
        for key, (kind, seconds) in self._last.items():
            used = seconds - self._start.get(key, 0.0)
            if used > 0:
                found[kind] = found.get(kind, 0.0) + used
        return dict(sorted(found.items(), key=lambda item: -item[1]))


# -- whole process trees -------------------------------------------------------------------

#: ``prctl`` option making a process adopt its orphaned descendants (``linux/prctl.h``).
PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> bool:
    """Make this process the "child subreaper" of its descendants (Linux only).

    Chromium's processes are often killed after their parent (a killed tree, a crash handler
    that double-forks): such orphans go to init, and their CPU time never reaches this
    process's :func:`children_cpu`. Once adopted, they are this process's children, and
    :func:`reap_children` collects their CPU. Returns False where ``prctl`` is missing.
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's children that exited and were reaped,
    theirs included (``RUSAGE_CHILDREN``): a whole process tree once it is reaped."""
    times = os.times()
    return times.children_user + times.children_system


def reap_children(keep: Iterable[int] = (), wait: float = 5.0) -> list[int]:
    """Reap every child of this process except the pids in ``keep`` (live services),
    waiting up to ``wait`` seconds for live ones to exit. Returns the pids still alive."""
    kept = set(keep)
    deadline = time.monotonic() + wait
    while True:
        alive = []
        for child in psutil.Process().children():
            if child.pid in kept:
                continue
            try:
                pid, _ = os.waitpid(child.pid, os.WNOHANG)
            except ChildProcessError:
                continue  # reaped by someone else meanwhile (a subprocess object)
            if pid == 0:
                alive.append(child.pid)
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)
