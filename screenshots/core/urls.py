"""Which URLs we accept, checked before any browser sees them.

A URL comes from untrusted input (an API request, a line of a URL file), so every way it can be
malformed is an :class:`~screenshots.core.errors.InvalidURL` with a message, never another
exception further on: text that is not valid Unicode (a lone surrogate from JSON's ``\\ud800``),
control characters, a port out of range, a host that is neither a domain name (IDNA), an IPv4
address nor a bracketed IPv6 address.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import SplitResult, urlsplit, urlunsplit

from screenshots.core.errors import InvalidURL

#: Longest URL accepted, in characters (after IDN encoding).
MAX_URL_LENGTH = 2048
#: Schemes a capture may start from. Everything else (file:, data:, javascript:, chrome:,
#: view-source:, ftp:, ...) is refused.
ALLOWED_SCHEMES = frozenset({"http", "https"})
#: A host name once IDNA-encoded: letters, digits, ``-`` and ``_`` (some real hosts have one),
#: in dot-separated labels.
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


def normalize_url(raw: str) -> str:
    """Return the URL to capture, or raise :class:`InvalidURL` saying what is wrong with it.

    Surrounding white space is dropped, the scheme and host are lower-cased and an
    internationalised host name is encoded as IDNA (``bücher.example`` → ``xn--bcher-kva.example``).
    """
    text = raw.strip()
    if not text:
        raise InvalidURL("empty URL")
    if len(text) > 4 * MAX_URL_LENGTH:  # before any parsing work; checked exactly below
        raise InvalidURL(f"URL is longer than {MAX_URL_LENGTH} characters")
    _check_characters(text)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise InvalidURL("not a URL: no scheme (expected http:// or https://)")
    if scheme not in ALLOWED_SCHEMES:
        raise InvalidURL(f"unsupported scheme {scheme!r}: only http and https are captured")
    if parts.username is not None or parts.password is not None:
        raise InvalidURL("URLs with credentials (user:password@host) are refused")
    host = parts.hostname
    if not host:
        raise InvalidURL("URL has no host")
    bracketed = "[" in parts.netloc
    url = urlunsplit(_rebuild(parts, scheme, _encode_host(host, bracketed), port))
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL is longer than {MAX_URL_LENGTH} characters")
    return url


def _check_characters(text: str) -> None:
    """Refuse text a browser would not take as one URL: white space, control characters
    (C0, DEL, C1), and lone surrogates (not Unicode text at all, unencodable as UTF-8)."""
    for char in text:
        category = unicodedata.category(char)
        if category == "Cs":
            raise InvalidURL(
                f"URL contains {char!r}, a lone surrogate: not valid Unicode text"
            )
        if category == "Cc" or char.isspace():
            raise InvalidURL("URL contains white space or control characters")


def _encode_host(host: str, bracketed: bool) -> str:
    if bracketed:  # [IPv6] (urlsplit strips the brackets); IPvFuture and zones are refused
        try:
            if "%" in host:
                raise ValueError(host)
            return f"[{ipaddress.IPv6Address(host)}]"
        except ValueError:
            raise InvalidURL(f"host [{host}] is not an IPv6 address") from None
    if ":" in host:  # pragma: no cover - urlsplit reads a colon outside brackets as the port
        raise InvalidURL(f"host name {host!r} is not a valid domain name")
    try:
        encoded = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidURL(f"host name {host!r} is not a valid domain name") from None
    if not _HOST_NAME.fullmatch(encoded):
        raise InvalidURL(f"host name {host!r} is not a valid domain name")
    return encoded


def _rebuild(parts: SplitResult, scheme: str, host: str, port: int | None) -> SplitResult:
    netloc = host if port is None else f"{host}:{port}"
    path = parts.path or "/"
    return SplitResult(scheme, netloc, path, parts.query, parts.fragment)
