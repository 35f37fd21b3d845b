"""Uploads signed here (AWS Signature Version 4 in headers), sent through botocore's HTTP session.

botocore's ``put_object`` spends about 1 ms of CPU per object in the worker before and after the
bytes go out (endpoint rules, event hooks, serialising the request, parsing the answer); every
shot stores three objects (:mod:`screenshots.pipeline.store`), so with the stub engine that is
most of a worker's CPU per URL. :class:`PutSigner` signs the same request in a few tens of
microseconds, and :meth:`screenshots.storage.s3.S3Storage.put` sends it through the client's own
HTTP session (its connection pool, TLS settings, proxies and timeouts). Measured by ``python -m
screenshots.dev.bench.s3put`` (README, Benchmarks; earlier runs in docs/benchmarks.md).

Like :mod:`screenshots.storage.presign`, it does not work out by itself what to send: it *learns*
it from requests botocore prepared for two probe objects (intercepted before they are sent:
nothing goes over the wire), and is used only if it then produces every one of those requests'
headers exactly, the signature included. Any endpoint, addressing style, checksum setting or
signing rule it does not reproduce leaves the storage with botocore. So does every object it
cannot sign as is (a key that needs URL encoding, metadata that is not plain ASCII), and every
upload that does not end in a 200: the storage sends it again through ``put_object``, whose
retries and errors are the ones the rest of the code knows.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from screenshots.storage.presign import SIGNABLE_KEY, Credentials, signing_key

#: What a probe request looks like: its URL and the headers botocore would send.
Prepared = tuple[str, Mapping[str, str]]
#: Makes botocore prepare (not send) a PUT: key, body, content type, metadata, tagging.
Prepare = Callable[[str, bytes, str, Mapping[str, str], str | None], Prepared]

#: The probes botocore prepares to teach a :class:`PutSigner`: one with metadata and tags (as a
#: version is stored), one with neither (as a thumbnail is).
PROBES: tuple[tuple[str, bytes, str, dict[str, str], str | None], ...] = (
    (
        "probe/0123456789abcdef.png",
        b"\x89PNG probe",
        "image/png",
        {"width": "1280", "version": "probe/0123456789abcdef/v.png"},
        "kind=version",
    ),
    ("probe/0123456789abcdef.thumb.webp", b"RIFF probe", "image/webp", {}, None),
)
#: Headers botocore sends without signing them, left out when learning: the fast path sends
#: botocore's ``User-Agent`` as learned, leaves out the invocation id and attempt count
#: (botocore's own bookkeeping) and ``Expect: 100-continue`` (a round trip per object), and lets
#: the HTTP layer add the length.
UNSIGNED = frozenset(
    {"user-agent", "amz-sdk-invocation-id", "amz-sdk-request", "content-length", "expect"}
)
#: Header values sent as is: printable ASCII without runs of spaces (SigV4 signs values with
#: spaces trimmed and squeezed; such values are left to botocore rather than reproduced).
PLAIN_VALUE = re.compile(r"[!-~]+( [!-~]+)*")
#: Metadata names sent as is (S3 keeps them lower-case; others are left to botocore).
METADATA_NAME = re.compile(r"[a-z0-9-]+")
_ALGORITHM = "AWS4-HMAC-SHA256"
_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
_UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}"
)


@dataclass(frozen=True)
class PutSigner:
    """Signs PUTs of objects to ``base`` + key, in the credential scope ``region``/``service``."""

    #: Everything before the key: ``scheme://host[:port]/bucket/`` (path-style addressing).
    base: str
    #: The ``host`` header value botocore signs (no default port).
    host: str
    #: Path of the URL before the key, as signed (``/bucket/``).
    path: str
    region: str
    service: str
    #: Whether the body's hash is left out of the signature (botocore: over HTTPS).
    unsigned_payload: bool
    #: botocore's ``User-Agent``, sent as it sends it.
    user_agent: str

    @staticmethod
    def accepts(
        key: str, content_type: str, metadata: Mapping[str, str], tagging: str | None
    ) -> bool:
        """Whether this object can be signed here (else botocore uploads it)."""
        if not SIGNABLE_KEY.fullmatch(key) or not PLAIN_VALUE.fullmatch(content_type):
            return False
        if tagging is not None and not PLAIN_VALUE.fullmatch(tagging):
            return False
        return all(
            METADATA_NAME.fullmatch(name) and PLAIN_VALUE.fullmatch(value)
            for name, value in metadata.items()
        )

    def url(self, key: str) -> str:
        return self.base + key

    def headers(
        self,
        key: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str],
        tagging: str | None,
        credentials: Credentials,
        now: datetime | None = None,
    ) -> dict[str, str]:
        """The headers of the PUT of ``data`` under ``key`` (signed, ``User-Agent`` included)."""
        stamp = (now or datetime.now(UTC)).strftime(_TIME_FORMAT)
        day = stamp[:8]
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        payload = _UNSIGNED_PAYLOAD if self.unsigned_payload else hashlib.sha256(data).hexdigest()
        signed = {"content-type": content_type, "host": self.host}
        for name, value in metadata.items():
            signed["x-amz-meta-" + name] = value
        if tagging is not None:
            signed["x-amz-tagging"] = tagging
        signed["x-amz-content-sha256"] = payload
        signed["x-amz-date"] = stamp
        if credentials.token:
            signed["x-amz-security-token"] = credentials.token
        names = sorted(signed)
        canonical = "\n".join(
            (
                "PUT",
                self.path + key,
                "",
                "".join(f"{name}:{signed[name]}\n" for name in names),
                ";".join(names),
                payload,
            )
        )
        to_sign = "\n".join(
            (_ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest())
        )
        key_of_day = signing_key(credentials.secret_key, day, self.region, self.service)
        signature = hmac.new(key_of_day, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        del signed["host"]  # the HTTP layer sends it
        signed["authorization"] = (
            f"{_ALGORITHM} Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        signed["user-agent"] = self.user_agent
        return signed


def learn_put_signer(prepare: Prepare, credentials: Credentials) -> PutSigner | None:
    """A :class:`PutSigner` that reproduces botocore's requests for :data:`PROBES`, or ``None``.

    ``prepare`` makes botocore sign a probe PUT and returns its URL and headers unsent.
    """
    prepared = [prepare(*probe) for probe in PROBES]
    signer = _signer_from(prepared[0], PROBES[0][0], PROBES[0][1], credentials)
    if signer is None:
        return None
    for (key, data, content_type, metadata, tagging), (url, sent) in zip(
        PROBES, prepared, strict=True
    ):
        theirs = {name.lower(): value for name, value in sent.items()}
        stamp = theirs.get("x-amz-date", "")
        try:
            when = datetime.strptime(stamp, _TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            return None
        ours = signer.headers(key, data, content_type, metadata, tagging, credentials, when)
        if url != signer.url(key) or _compared(ours) != _compared(theirs):
            return None
    return signer


def _compared(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name not in UNSIGNED}


def _signer_from(
    prepared: Prepared, key: str, data: bytes, credentials: Credentials
) -> PutSigner | None:
    """The signer the first probe's request describes (checked afterwards by the caller)."""
    url, sent = prepared
    headers = {name.lower(): value for name, value in sent.items()}
    found = _AUTHORIZATION.fullmatch(headers.get("authorization", ""))
    parts = urlsplit(url)
    if found is None or found["key"] != credentials.access_key:
        return None
    if not parts.path.endswith("/" + key) or parts.query or parts.fragment:
        return None
    payload = headers.get("x-amz-content-sha256")
    if payload not in (_UNSIGNED_PAYLOAD, hashlib.sha256(data).hexdigest()):
        return None
    host = parts.hostname or ""
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    path = parts.path[: -len(key)]
    return PutSigner(
        base=f"{parts.scheme}://{parts.netloc}{path}",
        host=host,
        path=path,
        region=found["region"],
        service=found["service"],
        unsigned_payload=payload == _UNSIGNED_PAYLOAD,
        user_agent=headers.get("user-agent", ""),
    )


class _Prepared(Exception):
    """Stops botocore just before it would send a probe PUT, carrying the request."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(url)
        self.url = url
        self.headers = headers


def botocore_preparer(client: Any, bucket: str) -> Prepare:
    """A :data:`Prepare` for a boto3 S3 ``client``: it signs a probe PUT to ``bucket`` and hands
    it over just before sending it (a ``before-send`` hook raises it out of ``put_object``)."""

    def prepare(
        key: str, data: bytes, content_type: str, metadata: Mapping[str, str], tagging: str | None
    ) -> Prepared:
        def intercept(request: Any, **_: Any) -> None:
            if str(request.url).endswith("/" + key):
                headers = {
                    str(name): value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    for name, value in request.headers.items()
                }
                raise _Prepared(str(request.url), headers)

        event = "before-send.s3.PutObject"
        client.meta.events.register_first(event, intercept, unique_id="screenshots-probe")
        extra = {"Tagging": tagging} if tagging is not None else {}
        try:
            client.put_object(
                Bucket=bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                Metadata=dict(metadata),
                **extra,
            )
        except _Prepared as prepared:
            return prepared.url, prepared.headers
        finally:
            client.meta.events.unregister(event, unique_id="screenshots-probe")
        raise ValueError("botocore sent a probe PUT instead of handing it over")

    return prepare
