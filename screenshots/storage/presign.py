"""Presigned GET links signed here (AWS Signature Version 4, query string), not by botocore.

botocore's ``generate_presigned_url`` spends about 0.4 ms of CPU per link (endpoint rules,
event hooks, request objects); with the stub engine that is a tenth of a worker's CPU per URL.
:class:`LinkSigner` signs the same link in a few tens of microseconds.

It does not work out by itself where links point: it *learns* that from one link botocore made
(the URL before the key, the credential scope), and is used only if it then reproduces that
link exactly, character for character. Any endpoint, addressing style or signing rule it does
not reproduce leaves the storage with botocore (see :meth:`screenshots.storage.s3.S3Storage.link`).
Keys
with characters that would need URL encoding are left to botocore too.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import parse_qsl, quote, urlsplit

#: Keys signed here: no character that URL encoding would change.
SIGNABLE_KEY = re.compile(r"[A-Za-z0-9/._~-]+")
#: The key botocore signs to teach a :class:`LinkSigner` (any signable key would do).
PROBE_KEY = "probe/0123456789abcdef.png"
_ALGORITHM = "AWS4-HMAC-SHA256"
_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Credentials(NamedTuple):
    """What signs a link: botocore's frozen credentials have this shape."""

    access_key: str
    secret_key: str
    token: str | None


@lru_cache(maxsize=8)
def signing_key(secret_key: str, day: str, region: str, service: str) -> bytes:
    """The SigV4 signing key of a day (the four chained HMACs, once per day)."""
    key = ("AWS4" + secret_key).encode("utf-8")
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


@dataclass(frozen=True)
class LinkSigner:
    """Signs GET links to ``base`` + key, in the credential scope ``region``/``service``."""

    #: Everything before the key: ``scheme://host[:port]/bucket/`` (path-style addressing).
    base: str
    #: The ``host`` header value botocore signs (no default port).
    host: str
    #: Path of the URL before the key, as signed (``/bucket/``).
    path: str
    region: str
    service: str

    @classmethod
    def learn(cls, probe_url: str, probe_key: str, credentials: Credentials) -> LinkSigner | None:
        """A signer that reproduces ``probe_url`` (botocore's link to ``probe_key``, made with
        ``credentials``) exactly, or ``None``."""
        parts = urlsplit(probe_url)
        if not parts.path.endswith("/" + probe_key) or parts.fragment:
            return None
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        scope = query.get("X-Amz-Credential", "").split("/")
        if (
            query.get("X-Amz-Algorithm") != _ALGORITHM
            or query.get("X-Amz-SignedHeaders") != "host"
            or len(scope) != 5
            or scope[0] != credentials.access_key
            or scope[4] != "aws4_request"
        ):
            return None
        try:
            when = datetime.strptime(query["X-Amz-Date"], _TIME_FORMAT).replace(tzinfo=UTC)
            expires = int(query["X-Amz-Expires"])
        except (KeyError, ValueError):
            return None
        host = parts.hostname or ""
        if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
            host = f"{host}:{parts.port}"
        path = parts.path[: -len(probe_key)]
        signer = cls(
            base=f"{parts.scheme}://{parts.netloc}{path}",
            host=host,
            path=path,
            region=scope[2],
            service=scope[3],
        )
        if signer.sign(probe_key, credentials, expires, when) != probe_url:
            return None
        return signer

    def sign(
        self,
        key: str,
        credentials: Credentials,
        expires: int,
        now: datetime | None = None,
    ) -> str:
        """The presigned GET link of ``key``, valid ``expires`` seconds from ``now``."""
        moment = now or datetime.now(UTC)
        stamp = moment.strftime(_TIME_FORMAT)
        day = stamp[:8]
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        params = [
            ("X-Amz-Algorithm", _ALGORITHM),
            ("X-Amz-Credential", f"{credentials.access_key}/{scope}"),
            ("X-Amz-Date", stamp),
            ("X-Amz-Expires", str(expires)),
            ("X-Amz-SignedHeaders", "host"),
        ]
        if credentials.token:
            params.append(("X-Amz-Security-Token", credentials.token))
        # Signed sorted; written in botocore's order (the token after SignedHeaders).
        query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in params)
        canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(params))
        canonical = "\n".join(
            (
                "GET",
                self.path + key,
                canonical_query,
                f"host:{self.host}",
                "",
                "host",
                "UNSIGNED-PAYLOAD",
            )
        )
        to_sign = "\n".join(
            (_ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest())
        )
        key_of_day = signing_key(credentials.secret_key, day, self.region, self.service)
        signature = hmac.new(key_of_day, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{self.base}{key}?{query}&X-Amz-Signature={signature}"


def learn_signer(
    presign: Callable[[str], str], credentials: Callable[[], Credentials | None]
) -> LinkSigner | None:
    """Teach a :class:`LinkSigner` with botocore's link to :data:`PROBE_KEY` (``presign``).

    ``None`` when there are no credentials or the signer does not reproduce the link.
    """
    frozen = credentials()
    if frozen is None:
        return None
    return LinkSigner.learn(presign(PROBE_KEY), PROBE_KEY, frozen)
