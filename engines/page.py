"""What every Chromium engine does inside the page, whatever drives it: the same scripts, the
same blocking rules, the same screenshot parameters, so two engines give the same image;
and the same words for a main document that failed (:func:`navigation_error`).

Nothing here talks to a browser; :mod:`engines.selenium` and :mod:`engines.playwright` send
these scripts and parameters through their own channel (ChromeDriver's CDP bridge, Playwright).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from screenshots.core.errors import NavigationError
from screenshots.core.options import BLOCK_ADS, MAX_FULL_PAGE_HEIGHT, RESOURCE_TYPES, CaptureOptions
from screenshots.core.result import MAX_CONSOLE_MESSAGES

#: The shipped list of advertising and tracking hosts (``block: ["ads"]``).
AD_HOSTS_FILE = Path(__file__).resolve().parent / "adhosts.txt"
#: Milliseconds without any request that count as "network idle" (Playwright's definition).
NETWORK_IDLE_MS = 500
#: Milliseconds between two scroll steps of ``scroll``.
SCROLL_STEP_MS = 100
#: Longest wait for lazy images after scrolling back to the top, in milliseconds.
SCROLL_IMAGES_MS = 2000
#: Longest console message kept, in characters.
MAX_MESSAGE = 300

#: File name endings standing for a resource type where an engine can only match URLs.
TYPE_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "font": ("woff", "woff2", "ttf", "otf", "eot"),
    "image": ("png", "jpg", "jpeg", "gif", "webp", "avif", "svg", "ico", "bmp"),
    "media": ("mp4", "webm", "ogg", "ogv", "mp3", "m4a", "wav", "mov", "m3u8", "mpd"),
    "stylesheet": ("css",),
    "script": ("js", "mjs"),
}
#: Resource types that cannot be told by URL.
URL_BLIND_TYPES = frozenset(RESOURCE_TYPES) - frozenset(TYPE_EXTENSIONS)

#: Installed in every new document: records ``console.error`` calls and uncaught errors in a
#: hidden array, read back by :data:`READ_CONSOLE` (for engines that get no console events).
CONSOLE_HOOK = """(() => {
  if (window.__shotsConsole) return;
  const seen = [];
  Object.defineProperty(window, '__shotsConsole', {value: seen, enumerable: false});
  const text = (value) => {
    try {
      if (value instanceof Error) return String(value);
      return typeof value === 'string' ? value : JSON.stringify(value);
    } catch (e) { return String(value); }
  };
  const original = console.error;
  console.error = function (...args) {
    try { seen.push(args.map(text).join(' ')); } catch (e) {}
    return original.apply(this, args);
  };
  addEventListener('error', (event) => {
    seen.push(event.error ? String(event.error) : String(event.message));
  });
  addEventListener('unhandledrejection', (event) => {
    seen.push('Uncaught (in promise) ' + text(event.reason));
  });
})()"""
#: Reads what :data:`CONSOLE_HOOK` recorded: ``[count, first messages]``.
READ_CONSOLE = (
    f"(() => {{ const s = window.__shotsConsole || []; "
    f"return [s.length, s.slice(0, {MAX_CONSOLE_MESSAGES})]; }})()"
)

#: On ``about:blank``, clears ``window.name`` (it outlives navigations) and says ``true``;
#: ``"error page"`` on Chromium's error page. ``location`` cannot be redefined by a page.
BLANK_AND_NAMELESS = (
    "(() => { try { const here = location.href;"
    " if (here === 'about:blank') { window.name = ''; return true; }"
    " return here.startsWith('chrome-error:') ? 'error page' : false;"
    " } catch (e) { return false; } })()"
)
#: The document's title as a string (``null`` if the page's own ``document.title`` throws).
READ_TITLE = (
    "(() => { try { const t = document.title; return t == null ? null : String(t); }"
    " catch (e) { return null; } })()"
)

#: Scrolls down a viewport at a time (at most to the full-page limit and for ``budget``
#: milliseconds), back to the top, then waits for images still loading (bounded).
SCROLL = """(async (budget) => {
  const started = Date.now();
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const step = Math.max(100, innerHeight);
  for (let y = step; Date.now() - started < budget; y += step) {
    const height = Math.min(document.documentElement.scrollHeight, %(limit)d);
    if (y >= height) break;
    scrollTo(0, y);
    await sleep(%(step_ms)d);
  }
  scrollTo(0, 0);
  const left = Math.max(0, Math.min(%(images_ms)d, budget - (Date.now() - started)));
  const pending = Array.from(document.images).filter((img) => !img.complete);
  await Promise.race([
    Promise.all(pending.map((img) => new Promise((r) => {
      img.addEventListener('load', r, {once: true});
      img.addEventListener('error', r, {once: true});
    }))),
    sleep(left),
  ]);
  await new Promise((r) => requestAnimationFrame(() => r()));
  return true;
})(%(budget)d)"""
#: The page rectangle of the first element matching a selector, or ``null``.
ELEMENT_RECT = """((selector) => {
  const el = document.querySelector(selector);
  if (!el) return null;
  const r = el.getBoundingClientRect();
  return [r.left + scrollX, r.top + scrollY, r.width, r.height];
})(%s)"""
#: The rectangles (page CSS pixels: x, y, width, height) of the elements each selector of a list
#: matches, at most ``limit`` per selector, elements with no size left out; a selector the
#: browser cannot parse gives ``{"bad": selector}`` instead of a list.
REGIONS = """((selectors, limit) => selectors.map((selector) => {
  let found;
  try { found = document.querySelectorAll(selector); } catch (e) { return {bad: selector}; }
  const rects = [];
  for (const el of found) {
    if (rects.length >= limit) break;
    const r = el.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    rects.push([r.left + scrollX, r.top + scrollY, r.width, r.height]);
  }
  return rects;
}))(%s, %d)"""
#: Whether an element matching a selector is there and visible.
VISIBLE = """((selector) => {
  const el = document.querySelector(selector);
  if (!el) return false;
  const style = getComputedStyle(el);
  return style.visibility !== 'hidden' && el.getClientRects().length > 0;
})(%s)"""
#: Height of the document's content in CSS pixels.
CONTENT_HEIGHT = (
    "Math.max(document.documentElement.scrollHeight, document.body ? "
    "document.body.scrollHeight : 0)"
)


#: Navigations of the main frame in one capture (the one asked for included) from which a
#: page that fails to settle is reported as a redirect loop rather than a timeout.
LOOP_NAVIGATIONS = 5


def js_string(value: str) -> str:
    """``value`` as a JavaScript string literal."""
    return json.dumps(value)


def scroll_script(budget_ms: int) -> str:
    values = {
        "limit": MAX_FULL_PAGE_HEIGHT,
        "step_ms": SCROLL_STEP_MS,
        "images_ms": SCROLL_IMAGES_MS,
        "budget": max(0, budget_ms),
    }
    return SCROLL % values


def element_rect_script(selector: str) -> str:
    return ELEMENT_RECT % js_string(selector)


def regions_script(selectors: tuple[str, ...], limit: int) -> str:
    return REGIONS % (json.dumps(list(selectors)), limit)


def visible_script(selector: str) -> str:
    return VISIBLE % js_string(selector)


def acts_in_page(options: CaptureOptions) -> bool:
    """Whether anything happens between load and capture (styles, script, waits, delay)."""
    return bool(
        style_sheet(options) is not None
        or options.js is not None
        or options.wait_for is not None
        or options.wait_for_js is not None
        or options.scroll
        or options.delay_ms
    )


def style_sheet(options: CaptureOptions) -> str | None:
    """The CSS to add to the page: ``hide_selectors`` rules, then ``css``; ``None`` if none."""
    parts = [
        f"{selector} {{ visibility: hidden !important; }}" for selector in options.hide_selectors
    ]
    if options.css:
        parts.append(options.css)
    return "\n".join(parts) if parts else None


def add_style_script(css: str) -> str:
    """A script adding ``css`` as the last style sheet of the document."""
    return (
        "(() => { const s = document.createElement('style'); s.dataset.screenshots = '';"
        f" s.textContent = {js_string(css)};"
        " (document.head || document.documentElement).appendChild(s); return true; })()"
    )


def needs_csp_bypass(options: CaptureOptions) -> bool:
    """Whether the page's Content-Security-Policy must not stop what we inject."""
    return bool(options.css or options.js or options.hide_selectors)


# -- screenshots ---------------------------------------------------------------------------


def full_page_height(content_height: float, scale: float) -> int:
    """CSS height of a full-page capture: the content, cut so the image stays in the limit."""
    limit = int(MAX_FULL_PAGE_HEIGHT / scale)
    return max(1, min(math.ceil(content_height), limit))


def screenshot_params(
    options: CaptureOptions,
    content_height: float | None = None,
    element: tuple[float, float, float, float] | None = None,
) -> dict[str, Any]:
    """Parameters of DevTools ``Page.captureScreenshot`` for these options.

    ``content_height`` is needed for ``full_page``, ``element`` (x, y, width, height in page
    CSS pixels) for ``selector``. The image is ``scale`` times the CSS size.
    """
    params: dict[str, Any] = {"format": options.format, "fromSurface": True}
    if options.format == "png":
        # Faster zlib settings: ~20% more shots per second on 2 cores, PNGs ~24% larger.
        params["optimizeForSpeed"] = True
    if options.effective_quality is not None:
        params["quality"] = options.effective_quality
    clip: tuple[float, float, float, float] | None = None
    if options.clip is not None:
        clip = tuple(float(v) for v in options.clip)  # type: ignore[assignment]
    elif element is not None:
        clip = element
    elif options.full_page:
        assert content_height is not None
        clip = (0, 0, options.width, full_page_height(content_height, options.scale))
    if clip is not None:
        x, y, width, height = clip
        params["clip"] = {"x": x, "y": y, "width": width, "height": height, "scale": 1}
        params["captureBeyondViewport"] = True
    return params


# -- blocking ------------------------------------------------------------------------------


@functools.cache
def ad_hosts() -> frozenset[str]:
    """The hosts of :data:`AD_HOSTS_FILE`, lower case."""
    hosts = set()
    for line in AD_HOSTS_FILE.read_text(encoding="utf-8").splitlines():
        text = line.strip().lower()
        if text and not text.startswith("#"):
            hosts.add(text)
    return frozenset(hosts)


@dataclass(frozen=True)
class BlockRules:
    """``block`` split into resource types, hosts (with subdomains) and URL patterns."""

    types: frozenset[str]
    hosts: frozenset[str]
    patterns: tuple[str, ...]

    @classmethod
    def of(cls, options: CaptureOptions) -> BlockRules:
        types: set[str] = set()
        hosts: set[str] = set()
        patterns: list[str] = []
        for entry in options.block:
            if entry in RESOURCE_TYPES:
                types.add(entry)
            elif entry == BLOCK_ADS:
                hosts.update(ad_hosts())
            elif "*" in entry or "/" in entry:
                patterns.append(entry)
            else:
                hosts.add(entry)
        return cls(frozenset(types), frozenset(hosts), tuple(patterns))

    def __bool__(self) -> bool:
        return bool(self.types or self.hosts or self.patterns)

    @functools.cached_property
    def _regexes(self) -> tuple[re.Pattern[str], ...]:
        return tuple(glob_regex(p) for p in self.patterns)

    def blocks(self, url: str, resource_type: str) -> bool:
        """Whether a request for ``url`` of this (Chromium, lower-case) type is blocked."""
        if resource_type in self.types:
            return True
        if self.hosts:
            host = (urlsplit(url).hostname or "").rstrip(".").lower()
            while host:
                if host in self.hosts:
                    return True
                host = host.partition(".")[2]
        return any(regex.fullmatch(url) for regex in self._regexes)

    def url_patterns(self) -> list[str]:
        """The rules as DevTools ``Network.setBlockedURLs`` wildcard patterns.

        Resource types become file-name endings (:data:`TYPE_EXTENSIONS`); the types in
        :data:`URL_BLIND_TYPES` cannot be expressed.
        """
        result = list(self.patterns)
        for host in sorted(self.hosts):
            result += [f"*://{host}/*", f"*://*.{host}/*", f"*://{host}:*", f"*://*.{host}:*"]
        for kind in sorted(self.types):
            for ending in TYPE_EXTENSIONS.get(kind, ()):
                result += [f"*.{ending}", f"*.{ending}?*", f"*.{ending}#*"]
        return result


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A URL pattern where ``*`` matches anything, as a regular expression on the whole URL."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def clip_message(text: str) -> str:
    """A console message cut to :data:`MAX_MESSAGE` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def run_script(js: str, timeout_ms: int) -> str:
    """An expression running ``js`` as a classic script and awaiting what it returns (a
    promise included), rejected after ``timeout_ms``."""
    return (
        f"Promise.race([Promise.resolve((0, eval)({js_string(js)})).then(() => true), "
        "new Promise((_, reject) => setTimeout(() => reject(new Error("
        f"'it did not finish in time')), {max(1, timeout_ms)}))])"
    )


def truthy_script(expression: str) -> str:
    """An expression that is ``true`` when ``expression`` is truthy (``false`` if it throws)."""
    source = js_string(expression)
    return f"(() => {{ try {{ return !!(0, eval)({source}); }} catch (e) {{ return false; }} }})()"


@dataclass
class Document:
    """What the network said about one main-frame document request."""

    url: str
    status: int | None = None
    mime_type: str | None = None
    error: str | None = None
    #: An HTTP authentication challenge (401 with ``WWW-Authenticate``). The full browser fails
    #: such a navigation (``ERR_INVALID_AUTH_CREDENTIALS``); the headless shell shows the 401
    #: body instead: :meth:`engines.chromium_engine.ChromiumEngine._check_document` makes it
    #: the same error on both.
    challenge: bool = False


#: The HTTP authentication schemes Chromium answers itself (it asks for a password, which a
#: capture never has); a 401 with another scheme (``Bearer``) is a page the full browser shows.
_BROWSER_AUTH_SCHEMES = re.compile(r"(?:^|[\s,])(?:basic|digest|ntlm|negotiate)\b", re.IGNORECASE)


def is_challenge(status: int | None, headers: Mapping[str, Any] | None) -> bool:
    """Whether a response asks the browser for a password: a 401 whose ``WWW-Authenticate``
    (header names in any case; several challenges on several lines or after commas) names a
    scheme Chromium handles itself."""
    if status != 401:
        return False
    return any(
        str(name).lower() == "www-authenticate" and _BROWSER_AUTH_SCHEMES.search(str(value))
        for name, value in (headers or {}).items()
    )


def navigation_error(code: str, url: str, document: Document | None) -> NavigationError:
    """A :class:`NavigationError` whose message says what happened to *this* URL."""
    parts = urlsplit(url)
    host = parts.hostname or url
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    status = document.status if document else None
    name = code.removeprefix("net::")
    if name in ("ERR_NAME_NOT_RESOLVED", "ERR_NAME_RESOLUTION_FAILED"):
        text = f"unknown host {host}"
    elif name == "ERR_CONNECTION_REFUSED":
        text = f"connection refused by {host}:{port}"
    elif name in ("ERR_CONNECTION_TIMED_OUT", "ERR_TIMED_OUT"):
        text = f"connection to {host}:{port} timed out"
    elif name in ("ERR_CONNECTION_RESET", "ERR_CONNECTION_CLOSED", "ERR_EMPTY_RESPONSE"):
        text = f"{host}:{port} closed the connection without an answer"
    elif name in ("ERR_ADDRESS_UNREACHABLE", "ERR_NETWORK_UNREACHABLE"):
        text = f"{host} is unreachable"
    elif name == "ERR_UNSAFE_PORT":
        text = f"port {port} is blocked by the browser as unsafe"
    elif name.startswith("ERR_CERT_"):
        text = "TLS certificate error"
    elif name.startswith("ERR_SSL_"):
        text = "TLS error"
    elif name == "ERR_TOO_MANY_REDIRECTS":
        text = "too many redirects"
    elif name == "ERR_HTTP_RESPONSE_CODE_FAILURE":
        text = f"the server answered HTTP {status or 'error'} with an empty page"
    elif name == "ERR_ABORTED" and status in (204, 205):
        text = f"the server answered HTTP {status}: there is no page to capture"
    elif name == "ERR_ABORTED" and status is not None:
        mime = document.mime_type if document else None
        text = f"the URL is a file to download ({mime or 'unknown type'}), not a page"
    elif name.startswith("ERR_BLOCKED"):
        text = "the page was blocked"
    elif name in ("ERR_INVALID_AUTH_CREDENTIALS", "ERR_UNEXPECTED_PROXY_AUTH"):
        text = "the site asks for a user name and password (HTTP authentication); none is sent"
    elif name in ("ERR_INVALID_RESPONSE", "ERR_INVALID_HTTP_RESPONSE"):
        text = "the server sent an invalid HTTP response"
    else:
        text = "the page could not be loaded"
    return NavigationError(f"{text} ({code})", code=code)
