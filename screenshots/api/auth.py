"""Bearer keys: ``Authorization: Bearer <key>``, checked against SHA-256 digests in constant time.

The server never keeps a key in clear in its configuration: :class:`KeyRing` holds digests
(see :func:`screenshots.api.config.hash_key`). A presented key is hashed and compared with *every*
stored
digest using :func:`hmac.compare_digest`, so the time taken does not depend on which key (or
how much of one) matched. A key sent in the query string is refused with a message saying
where it belongs: URLs end up in logs.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from screenshots.api.config import ApiKey, hash_key
from screenshots.api.errors import ApiError
from screenshots.core.settings import Secret

#: Query parameters that look like an attempt to pass a key in the URL.
KEY_QUERY_PARAMS = ("api_key", "apikey", "key", "token", "access_token")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name, and the key itself (to sign that caller's callbacks)."""

    name: str
    key: Secret = field(repr=False)


class KeyRing:
    """The accepted keys, by digest."""

    def __init__(self, keys: tuple[ApiKey, ...]) -> None:
        self._keys = keys

    def __repr__(self) -> str:
        return f"KeyRing({[key.name for key in self._keys]!r})"

    def identify(self, presented: str) -> str | None:
        """The name of the key ``presented`` is, or ``None``; constant time over all keys."""
        digest = hash_key(presented)
        found: str | None = None
        for key in self._keys:
            if hmac.compare_digest(digest, key.digest):
                found = key.name
        return found

    def authenticate(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Principal:
        """The caller of a request, or an :class:`ApiError` 401 saying what is missing."""
        if any(name in query for name in KEY_QUERY_PARAMS):
            raise unauthorized(
                "send the API key in the Authorization header (Authorization: Bearer <key>), "
                "never in the URL"
            )
        header = headers.get("authorization")
        if not header:
            raise unauthorized("missing Authorization header: send `Authorization: Bearer <key>`")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("the Authorization header must be `Bearer <key>`")
        name = self.identify(token)
        if name is None:
            raise unauthorized("invalid API key")
        return Principal(name, Secret(token))


def unauthorized(detail: str) -> ApiError:
    """A 401 with the ``WWW-Authenticate`` challenge RFC 6750 asks for."""
    return ApiError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="screenshots"'})
