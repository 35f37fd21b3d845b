"""Which URLs we accept, checked before any browser sees them."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit, urlunsplit

from screenshots.core.errors import InvalidURL

#: Longest URL accepted, in characters (after IDN encoding).
MAX_URL_LENGTH = 2048
#: Schemes a capture may start from. Everything else (file:, data:, javascript:, chrome:,
#: view-source:, ftp:, ...) is refused.
ALLOWED_SCHEMES = frozenset({"http", "https"})


def normalize_url(raw: str) -> str:
    """Return the URL to capture, or raise :class:`InvalidURL` saying what is wrong with it.

    Surrounding white space is dropped, the scheme and host are lower-cased and an
    internationalised host name is encoded as IDNA (``bücher.example`` → ``xn--bcher-kva.example``).
    """
    text = raw.strip()
    if not text:
        raise InvalidURL("empty URL")
    if any(ch in text for ch in "\r\n\t\x00") or " " in text:
        raise InvalidURL("URL contains white space or control characters")
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
    url = urlunsplit(_rebuild(parts, scheme, _encode_host(host), port))
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL is longer than {MAX_URL_LENGTH} characters")
    return url


def _encode_host(host: str) -> str:
    if host.startswith("["):  # pragma: no cover - urlsplit strips brackets already
        return host
    if ":" in host:  # IPv6 literal
        return f"[{host}]"
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidURL(f"host name {host!r} is not a valid domain name") from None


def _rebuild(parts: SplitResult, scheme: str, host: str, port: int | None) -> SplitResult:
    netloc = host if port is None else f"{host}:{port}"
    path = parts.path or "/"
    return SplitResult(scheme, netloc, path, parts.query, parts.fragment)
