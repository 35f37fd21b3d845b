"""A small synchronous DevTools (CDP) client: one websocket, any thread may send on it.

The Selenium engine lets ChromeDriver start and own the browser, then drives its tabs over
DevTools directly (:mod:`engines.selenium.cdptab`), one websocket per tab, so that several
captures run at once without ChromeDriver's per-command cost. A :class:`Connection` has a
reader thread: answers go to the thread that sent the command (each command waits with its own
timeout), events go to a listener, called in the reader thread (it must be quick: the tabs
queue them). When the socket closes (the tab or the browser died, or :meth:`Connection.close`),
every waiting command fails with :class:`Closed` at once.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.request import urlopen

import websocket

logger = logging.getLogger(__name__)

#: Seconds to open a websocket or read the endpoint's JSON.
CONNECT_TIMEOUT = 5.0
#: Largest message accepted (a full-page screenshot is big).
_NO_LIMIT = 0

Listener = Callable[[str, dict[str, Any]], None]


class CdpError(Exception):
    """The browser answered a command with an error."""

    def __init__(self, method: str, message: str) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method
        self.message = message


class Closed(Exception):
    """The connection is gone (the target or the browser died, or it was closed)."""


class CommandTimeout(Exception):
    """No answer within the command's timeout."""


class _Pending:
    __slots__ = ("done", "error", "method", "result")

    def __init__(self, method: str) -> None:
        self.method = method
        self.done = threading.Event()
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None


class Connection:
    """One DevTools websocket (a page's or the browser's)."""

    def __init__(self, url: str, listener: Listener | None = None, name: str = "cdp") -> None:
        self.url = url
        self.listener = listener
        try:
            # skip_utf8_validation: websocket-client checks every text frame's UTF-8 in pure
            # Python, a byte at a time; for a screenshot's answer (hundreds of KB of base64)
            # that was a quarter of the engine process's CPU (py-spy, 3 tabs). The text is
            # parsed by json.loads, which fails on anything that is not valid text.
            self._socket = websocket.create_connection(
                url,
                timeout=CONNECT_TIMEOUT,
                suppress_origin=True,
                enable_multithread=True,
                skip_utf8_validation=True,
            )
        except (OSError, websocket.WebSocketException) as exc:
            # The target or the browser went away before we could attach: the same as a
            # connection lost later (a transient failure of the capture, not its page's).
            raise Closed(f"could not open the DevTools connection ({exc})") from None
        self._socket.settimeout(None)
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self.closed = False
        self._reader = threading.Thread(target=self._read, name=f"{name}-reader", daemon=True)
        self._reader.start()

    def send(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Send a command and wait at most ``timeout`` seconds for its result."""
        return self.wait(self.post(method, params), method, timeout)

    def post(self, method: str, params: dict[str, Any] | None = None) -> _Pending:
        """Send a command without waiting; :meth:`wait` for it later."""
        pending = _Pending(method)
        with self._lock:
            if self.closed:
                raise Closed(f"{method}: the DevTools connection is closed")
            number = next(self._ids)
            self._pending[number] = pending
        message = json.dumps({"id": number, "method": method, "params": params or {}})
        try:
            self._socket.send(message)
        except (OSError, websocket.WebSocketException) as exc:
            self._fail_all(Closed(f"{method}: {exc}"))
            raise Closed(f"{method}: {exc}") from None
        return pending

    def wait(self, pending: _Pending, method: str, timeout: float) -> dict[str, Any]:
        if not pending.done.wait(max(0.0, timeout)):
            raise CommandTimeout(f"{method}: no answer within {timeout:.1f} s")
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def close(self) -> None:
        """Close the socket (any thread, twice is fine); waiting commands fail at once."""
        self._fail_all(Closed("the DevTools connection was closed"))
        try:
            self._socket.close(timeout=0.2)
        except Exception:
            logger.debug("closing a DevTools socket failed", exc_info=True)
        if self._reader is not threading.current_thread():
            self._reader.join(2.0)

    def _read(self) -> None:
        while True:
            try:
                text = self._socket.recv()
            except Exception as exc:  # noqa: BLE001 - any failure ends the connection
                self._fail_all(Closed(f"the DevTools connection was lost ({exc or 'closed'})"))
                return
            if not text:
                self._fail_all(Closed("the DevTools connection was closed by the browser"))
                return
            try:
                message = json.loads(text)
            except ValueError:
                continue
            number = message.get("id")
            if number is not None:
                with self._lock:
                    pending = self._pending.pop(number, None)
                if pending is None:
                    continue
                if "error" in message:
                    error = message["error"] or {}
                    pending.error = CdpError(pending.method, str(error.get("message", error)))
                else:
                    pending.result = message.get("result") or {}
                pending.done.set()
            elif self.listener is not None and "method" in message:
                try:
                    self.listener(message["method"], message.get("params") or {})
                except Exception:
                    logger.exception("DevTools event listener failed")

    def _fail_all(self, error: BaseException) -> None:
        with self._lock:
            self.closed = True
            pending, self._pending = self._pending, {}
        for item in pending.values():
            item.error = error
            item.done.set()


def browser_url(address: str) -> str:
    """The browser-wide DevTools websocket URL of the browser at ``host:port``."""
    with urlopen(f"http://{address}/json/version", timeout=CONNECT_TIMEOUT) as answer:
        return str(json.load(answer)["webSocketDebuggerUrl"])


def page_url(address: str, target_id: str) -> str:
    """The DevTools websocket URL of one page target."""
    return f"ws://{address}/devtools/page/{target_id}"


def wait_closed(connection: Connection, seconds: float) -> bool:
    """Whether ``connection`` closed within ``seconds``."""
    deadline = time.monotonic() + seconds
    while not connection.closed:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True
