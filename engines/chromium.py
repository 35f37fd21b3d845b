"""The Chromium process, whatever drives it: flags, profile directories, killing, orphan reaping.

Nothing here knows about Selenium, so a Playwright engine can reuse it.

Every browser we start gets a fresh profile directory under :func:`profile_root`, named
``<owner pid>-<owner start time>-<random>``. The profile path is in the browser's command line
(``--user-data-dir=...``) and in its crash handler's (``--database=...``, through
``BREAKPAD_DUMP_LOCATION``), and ChromeDriver carries it in its environment
(:data:`MARKER_ENV`). That is how :func:`our_browser_processes` finds our processes and how
:func:`reap_orphans` tells a browser whose owner died (killed with ``SIGKILL``, OOM-killed) from
one still in use: the owner's pid *and* start time are checked, so a reused pid is not mistaken
for the owner.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

import psutil

#: Name of the directory, under the system temporary directory, holding our browser profiles.
PROFILE_ROOT_NAME = "screenshots-chromium"
#: Environment variable naming the profile directory, set for ChromeDriver and the browser.
MARKER_ENV = "SCREENSHOTS_BROWSER_PROFILE"
#: Seconds :func:`kill_process_tree` waits for killed processes to disappear.
KILL_WAIT = 3.0

#: Chromium features that only cost CPU or talk to the network in a screenshot browser.
#: ``SpareRendererForSitePerProcess``: Chromium keeps a spare renderer process warm for the
#: browser context of the last navigation and kills it when another context navigates; with one
#: context per tab, tabs taking turns started (and killed) a renderer for almost every capture
#: (49 spare renderers for 60 captures over 3 tabs, none without this), ~25 ms of CPU each.
#: ``RenderDocument``: a new RenderFrameHost (and renderer-side frame) for every same-site
#: navigation, with the DevTools agents and every emulation attached to it again; a capture
#: navigates twice (to ``about:blank`` to leave the last page, then to its URL). Chromium then
#: reuses a frame across same-site documents as it did before that feature (site isolation is
#: untouched: cross-site navigations still change process). Selenium engine alone, 4 tabs, 240
#: corpus pages, interleaved: 185 CPU-ms per shot against 209, 10.3 shots/s against 9.2.
DISABLED_FEATURES = (
    "Translate",
    "MediaRouter",
    "OptimizationHints",
    "SpareRendererForSitePerProcess",
    "RenderDocument",
)

#: Megabytes of JavaScript heap a page may use (V8's own default is several gigabytes): a
#: memory bomb crashes its tab at this size instead of eating the machine first.
JS_HEAP_MB = 512

#: Installed in every document of the page: ``print()`` would stall a headless page for
#: seconds and ``alert``/``confirm``/``prompt`` would block it until answered, so they answer
#: at once (nothing, "cancel", no text). Engines also dismiss any dialog that still opens.
PAGE_GUARD_SCRIPT = (
    "window.print = () => {}; window.alert = () => {}; "
    "window.confirm = () => false; window.prompt = () => null;"
)

#: Preferences for every profile: no downloads at all (not even to the profile), PDFs are
#: downloads (so refused) rather than shown in Chromium's viewer.
PROFILE_PREFS: dict[str, object] = {
    "download_restrictions": 3,
    "plugins.always_open_pdf_externally": True,
}

#: WebRTC may not send UDP that bypasses the proxy (so, with an HTTP proxy, no UDP at all).
WEBRTC_POLICY = "disable_non_proxied_udp"

_PROCESS_NAMES = ("chrom", "headless")  # chromium, chromedriver, chrome_crashpad_handler, ...
_PATH_ARGS = ("--user-data-dir=", "--database=")
_PR_SET_PDEATHSIG = 1


def profile_root() -> Path:
    """The directory holding every profile we create: ``$TMPDIR/screenshots-chromium``."""
    return Path(tempfile.gettempdir()) / PROFILE_ROOT_NAME


def _start_stamp(process: psutil.Process) -> int:
    """A process's start time in hundredths of a second: with the pid, it names the process."""
    return round(process.create_time() * 100)


def new_profile_dir() -> Path:
    """Create a fresh, private profile directory owned by the current process."""
    root = profile_root()
    root.mkdir(parents=True, exist_ok=True)
    me = psutil.Process()
    path = root / f"{me.pid}-{_start_stamp(me)}-{uuid.uuid4().hex[:12]}"
    path.mkdir(mode=0o700)
    return path


def remove_profile_dir(path: str | Path) -> None:
    """Delete a profile directory; a missing one is fine."""
    shutil.rmtree(path, ignore_errors=True)


def is_headless_shell(path: str | Path) -> bool:
    """Whether ``path`` is Chromium's old headless mode, a browser without the full browser's
    layer (Debian's ``/usr/lib/chromium/chromium-headless-shell``, Chrome for Testing's
    ``chrome-headless-shell``). Measured on the benchmark's corpus, 4 tabs: about 40% less CPU
    per screenshot than ``/usr/bin/chromium``, the same images (docs/benchmarks.md)."""
    return "headless" in Path(path).name


def start_page_launcher(profile_dir: str | Path, binary: str | Path) -> str:
    """A launcher for ``binary`` that opens ``about:blank``, in the profile directory.

    ChromeDriver passes the browser no start URL (it turns every argument it is given into a
    ``--switch``), and the headless shell started with ``--remote-debugging-port`` opens no page
    without one: ChromeDriver then waits for a page that never comes ("unable to discover open
    pages"). The launcher adds the URL; ``exec`` keeps the pid ChromeDriver started. It lives in
    the private profile directory (mode 0700) and goes with it.
    """
    launcher = Path(profile_dir) / "launch-chromium"
    launcher.write_text(f'#!/bin/sh\nexec {shlex.quote(str(binary))} "$@" about:blank\n')
    launcher.chmod(0o700)
    return str(launcher)


def browser_environment(profile_dir: str | Path) -> dict[str, str]:
    """The environment for ChromeDriver (and so the browser): ours plus the profile marker.

    ``BREAKPAD_DUMP_LOCATION`` moves Chromium's crash handler database into the profile, so the
    handler (which detaches from the browser) can be recognised as ours and is deleted with it.
    """
    env = dict(os.environ)
    env[MARKER_ENV] = str(profile_dir)
    env["BREAKPAD_DUMP_LOCATION"] = str(Path(profile_dir) / "crashes")
    return env


def chromium_flags(
    user_data_dir: str | Path,
    width: int,
    height: int,
    proxy_server: str | None = None,
    binary: str | Path | None = None,
) -> list[str]:
    """Command-line flags for a headless screenshot browser with a fresh profile.

    ``--no-sandbox`` is added only when running as root, where Chromium refuses to start with
    its sandbox; elsewhere the sandbox stays on. The window size is the first viewport; engines
    set the exact viewport per capture through the DevTools protocol.

    With ``proxy_server`` (``http://127.0.0.1:<port>``, the egress proxy of
    :mod:`screenshots.egress`),
    :func:`egress_flags` are added so that every request goes through it.

    For the headless shell (``binary``, :func:`is_headless_shell`), ``--block-new-web-contents``:
    the shell has no pop-up blocker (the full browser's is a layer the shell does not have), so
    without it every ``window.open`` of a page opens a tab; with it, a page's ``window.open``
    returns ``null`` and the engines' own tabs (DevTools ``Target.createTarget``) are not
    affected.
    """
    flags = [
        "--headless=new",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-gpu",
        "--hide-scrollbars",
        "--mute-audio",
        "--disable-extensions",
        "--disable-default-apps",
        # A page left for the next capture must not stay alive in the back-forward cache
        # (history is wiped between captures anyway); Playwright passes it too.
        "--disable-back-forward-cache",
        f"--disable-features={','.join(DISABLED_FEATURES)}",
        "--password-store=basic",
        f"--window-size={width},{height}",
        f"--js-flags=--max-old-space-size={JS_HEAP_MB}",
        f"--user-data-dir={user_data_dir}",
    ]
    if os.geteuid() == 0:
        flags.insert(1, "--no-sandbox")
    if proxy_server is not None:
        flags += egress_flags(proxy_server)
    if binary is not None and is_headless_shell(binary):
        flags.append("--block-new-web-contents")
    return flags


def egress_flags(proxy_server: str) -> list[str]:
    """Flags that route *all* of a browser's traffic through the egress proxy.

    - ``--proxy-server``: every HTTP(S) and WebSocket request goes to the proxy (no fallback to
      a direct connection: if the proxy is down, nothing loads);
    - ``--proxy-bypass-list=<-loopback>``: removes Chromium's implicit bypass of ``localhost``,
      ``127/8``, ``[::1]``, ``169.254/16`` and ``fe80::/10``, which would otherwise be reached
      directly (the cloud metadata address among them);
    - ``--host-resolver-rules``: Chromium's own resolver answers "not found" for every name
      (the proxy resolves), except the proxy's address itself;
    - WebRTC may only use proxied (TCP) paths: its UDP does not go through an HTTP proxy
      (both spellings: headless and full Chromium read different switches);
    - QUIC off: it would not go through the proxy either.
    """
    host = urlsplit(proxy_server).hostname or "127.0.0.1"
    return [
        f"--proxy-server={proxy_server}",
        "--proxy-bypass-list=<-loopback>",
        f"--host-resolver-rules=MAP * ^NOTFOUND, EXCLUDE {host}",
        f"--webrtc-ip-handling-policy={WEBRTC_POLICY}",
        f"--force-webrtc-ip-handling-policy={WEBRTC_POLICY}",
        "--disable-quic",
    ]


# -- dying with the parent -----------------------------------------------------------------

_libc: ctypes.CDLL | None = None


def parent_death_signal_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child get ``SIGKILL`` when its parent dies (Linux only).

    Note Linux sends the signal when the *thread* that started the child ends, not only the
    process: start browsers from a thread that lives as long as the engine. Returns ``None``
    where ``prctl`` is not available.
    """
    global _libc
    if not sys.platform.startswith("linux"):
        return None
    if _libc is None:
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.prctl  # noqa: B018 - resolve the symbol now, not after fork
        except (OSError, AttributeError):
            return None
    libc = _libc
    parent = os.getpid()

    def preexec() -> None:  # runs in the child, between fork and exec
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


# -- finding and killing -------------------------------------------------------------------


def process_alive(process: psutil.Process) -> bool:
    """Running and not a zombie (a killed process nobody has reaped yet counts as dead)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def kill_processes(processes: Iterable[psutil.Process], wait: float = KILL_WAIT) -> int:
    """``SIGKILL`` each process, then wait up to ``wait`` seconds for them to die.

    Already-dead processes are fine. Returns how many were alive and signalled.
    """
    killed = []
    for process in processes:
        try:
            if process_alive(process):
                process.kill()
                killed.append(process)
        except psutil.Error:
            pass
    deadline = time.monotonic() + wait
    while any(process_alive(p) for p in killed) and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(killed)


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants, descendants first; empty if it is gone."""
    try:
        parent = psutil.Process(pid)
        children = parent.children(recursive=True)
    except psutil.Error:
        return []
    return [*reversed(children), parent]


def kill_process_tree(pid: int, wait: float = KILL_WAIT) -> int:
    """Kill a process and all its descendants (children first), tolerating dead ones.

    The tree is listed before anything is killed, so children re-parented by a dying parent
    are still killed. Waits up to ``wait`` seconds; returns how many processes were killed.
    """
    return kill_processes(process_tree(pid), wait)


def _profile_of(process: psutil.Process, root: str) -> str | None:
    """The profile directory under ``root`` that this process belongs to, if any."""
    try:
        for arg in process.cmdline():
            for prefix in _PATH_ARGS:
                if arg.startswith(prefix) and arg[len(prefix) :].startswith(root):
                    rest = arg[len(prefix) + len(root) :]
                    name = rest.split(os.sep)[0]
                    return os.path.join(root, name) if name else None
        if "chromedriver" in process.name():
            marker = process.environ().get(MARKER_ENV, "")
            if marker.startswith(root):
                return marker
    except psutil.Error:
        pass
    return None


def _scan() -> dict[str, list[psutil.Process]]:
    """Our live browser processes, grouped by profile directory."""
    root = str(profile_root()) + os.sep
    found: dict[str, list[psutil.Process]] = {}
    seen: set[int] = set()
    for process in psutil.process_iter(["name"]):
        name = process.info["name"] or ""
        if not any(part in name for part in _PROCESS_NAMES) or process.pid in seen:
            continue
        if not _in_our_pid_namespace(process.pid):
            continue  # a container's browser: its owner's pid means nothing here
        profile = _profile_of(process, root)
        if profile is None or not process_alive(process):
            continue
        group = found.setdefault(profile, [])
        members = [process]
        try:
            members += process.children(recursive=True)
            parent = process.parent()
            if parent is not None and "chromedriver" in parent.name():
                members.append(parent)
        except psutil.Error:
            pass
        for member in members:
            if member.pid not in seen and process_alive(member):
                seen.add(member.pid)
                group.append(member)
    return found


def _in_our_pid_namespace(pid: int) -> bool:
    """Whether process ``pid`` shares our PID namespace. A browser in a container (another
    namespace) names its owner by a pid of that namespace: seen from the host, the owner
    looks dead and the browser orphaned (multi-host test: a reaper on the host killed the
    containers' browsers). Unknown (no /proc access): assumed ours, as before."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid") == os.readlink("/proc/self/ns/pid")
    except OSError:
        return True


def our_browser_processes(
    profile_dir: str | Path | None = None, owner_pid: int | None = None
) -> list[psutil.Process]:
    """Live Chromium, ChromeDriver and crash-handler processes using our profile directories.

    With ``profile_dir``, only that browser's; with ``owner_pid``, only those started by that
    process; with neither, every one of ours on the machine.
    """
    groups = _scan()
    result = []
    for profile, processes in groups.items():
        if profile_dir is not None and os.path.normpath(profile) != os.path.normpath(profile_dir):
            continue
        if owner_pid is not None and _owner(profile)[0] != owner_pid:
            continue
        result.extend(processes)
    return result


def _owner(profile: str | Path) -> tuple[int, int]:
    """``(pid, start stamp)`` of the process that created a profile, or ``(0, 0)``."""
    parts = Path(profile).name.split("-")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return 0, 0


def _owner_alive(profile: str | Path) -> bool:
    pid, stamp = _owner(profile)
    if pid <= 0:
        return True  # not a name we gave: leave it alone
    try:
        process = psutil.Process(pid)
        return process_alive(process) and abs(_start_stamp(process) - stamp) <= 1
    except psutil.Error:
        return False


def reap_orphans() -> int:
    """Kill browsers whose owner process is gone and delete their profile directories.

    Leftover profile directories of dead owners are deleted too. Returns how many processes
    were killed.
    """
    killed = 0
    for profile, processes in _scan().items():
        if not _owner_alive(profile):
            killed += kill_processes(processes)
            remove_profile_dir(profile)
    root = profile_root()
    if root.is_dir():
        for path in root.iterdir():
            if path.is_dir() and not _owner_alive(path):
                remove_profile_dir(path)
    return killed
