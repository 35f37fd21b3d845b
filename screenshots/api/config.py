"""The HTTP API's settings, read from the environment by :func:`load_api_config` and nowhere else.

The service-wide settings (broker, bucket, engine...) stay in :mod:`screenshots.core.settings`;
these are the
API's own: keys, limits and pool sizes. (Where the limits are counted, memory or Redis, follows
from the service's mode: see :mod:`screenshots.api.ratelimit`.) A bad value is a
:class:`~screenshots.core.errors.ConfigurationError`
naming the variable and saying what is expected. API keys are hashed as soon as they are read:
requests are checked against their SHA-256 digests only; the key itself is kept (as a
:class:`~screenshots.core.settings.Secret`, never shown) only to sign its jobs' callbacks, which
in broker mode any replica may send. The ``repr`` shows key names only.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from screenshots.core.errors import ConfigurationError
from screenshots.core.settings import DEFAULT_TABS, EnvReader, Secret

#: Shortest API key accepted, in characters: a key must be hard to guess.
MIN_KEY_LENGTH = 16
#: Sustained requests per second allowed to one key.
DEFAULT_RATE = 10.0
#: Requests one key may make at once above the sustained rate (token bucket size).
DEFAULT_BURST = 50
#: Failed authentications one client address may make at once before it gets 429.
DEFAULT_AUTH_FAILURE_BURST = 20
#: Failed authentications per second allowed to one address after that (one per 5 s).
DEFAULT_AUTH_FAILURE_RATE = 0.2
#: Largest JSON body of ``POST /v1/screenshots``, in bytes.
DEFAULT_MAX_BODY = 16 * 1024
#: Largest body of ``POST /v1/jobs`` (JSON or an uploaded file), in bytes.
DEFAULT_MAX_UPLOAD = 2 * 1024 * 1024
#: Most URLs in one job.
DEFAULT_MAX_JOB_URLS = 10_000
#: Unfinished jobs one key may have at a time.
DEFAULT_MAX_ACTIVE_JOBS = 4
#: Longest ``wait`` a request may ask for, in seconds.
DEFAULT_MAX_WAIT = 60.0
#: Seconds results and job records are kept for ``GET`` (7 days; in broker mode every Redis
#: key of a job expires then).
DEFAULT_RESULT_TTL = 7 * 24 * 3600
#: Broker mode: messages in the work queue above which new requests get 429.
DEFAULT_HIGH_WATER = 500
#: Broker-less mode: uploads to storage running at once.
DEFAULT_UPLOADS = 4
#: Attempts to deliver a job's callback (0: no limit but the expiry).
DEFAULT_CALLBACK_ATTEMPTS = 0
#: Seconds after a job ends during which its callback is retried (1 day).
DEFAULT_CALLBACK_EXPIRY = 24 * 3600
#: Broker mode: seconds a replica's lease on a job it feeds lasts unless renewed.
DEFAULT_JOB_LEASE = 10.0
#: Seconds before the second callback attempt; doubles with every attempt (at most 60 s).
DEFAULT_CALLBACK_BACKOFF = 1.0
#: Broker-less mode without a bucket: where screenshots are written.
DEFAULT_STORAGE_DIR = "api-data"

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class ApiKey:
    """One accepted key: its name (for logs, metrics and ownership) and its SHA-256 digest."""

    name: str
    digest: bytes = field(repr=False)
    #: The key itself, only to sign the callbacks of its jobs (broker mode: a replica that
    #: takes a job over signs with it). Never shown, never compared.
    secret: Secret = field(default=Secret(""), repr=False, compare=False)


def hash_key(key: str) -> bytes:
    """SHA-256 of a key, as stored and compared."""
    return hashlib.sha256(key.encode("utf-8")).digest()


@dataclass(frozen=True)
class ApiConfig:
    """The API's configuration. Build it with :func:`load_api_config`."""

    #: ``SCREENSHOT_API_KEYS`` (required): ``key`` or ``name:key``, comma-separated.
    keys: tuple[ApiKey, ...]
    #: ``SCREENSHOT_API_RATE``: sustained requests per second per key (default 10).
    rate: float = DEFAULT_RATE
    #: ``SCREENSHOT_API_BURST``: token-bucket size per key (default 50).
    burst: int = DEFAULT_BURST
    #: ``SCREENSHOT_API_AUTH_FAILURE_BURST``: failed authentications per client address at once
    #: before its ``/v1`` requests get 429 (default 20).
    auth_failure_burst: int = DEFAULT_AUTH_FAILURE_BURST
    #: ``SCREENSHOT_API_AUTH_FAILURE_RATE``: failed authentications per second per address after
    #: that (default 0.2).
    auth_failure_rate: float = DEFAULT_AUTH_FAILURE_RATE
    #: ``SCREENSHOT_API_MAX_BODY``: bytes in a screenshot request body (default 16 KiB).
    max_body: int = DEFAULT_MAX_BODY
    #: ``SCREENSHOT_API_MAX_UPLOAD``: bytes in a job request body or file (default 2 MiB).
    max_upload: int = DEFAULT_MAX_UPLOAD
    #: ``SCREENSHOT_API_MAX_JOB_URLS``: URLs in one job (default 10,000).
    max_job_urls: int = DEFAULT_MAX_JOB_URLS
    #: ``SCREENSHOT_API_MAX_ACTIVE_JOBS``: unfinished jobs per key (default 4).
    max_active_jobs: int = DEFAULT_MAX_ACTIVE_JOBS
    #: ``SCREENSHOT_API_MAX_WAIT``: longest ``wait`` in seconds (default 60).
    max_wait: float = DEFAULT_MAX_WAIT
    #: ``SCREENSHOT_API_RESULT_TTL``: seconds results and job records are kept (default 7 days).
    result_ttl: int = DEFAULT_RESULT_TTL
    #: ``SCREENSHOT_API_HIGH_WATER``: broker mode queue depth that triggers 429 (default 500).
    high_water: int = DEFAULT_HIGH_WATER
    #: ``SCREENSHOT_API_TABS``: broker-less mode captures at once, tabs of one browser
    #: (default: ``SCREENSHOT_TABS``, the cores + 2, at most 8).
    tabs: int = 1
    #: ``SCREENSHOT_API_WAIT_QUEUE``: broker-less mode requests waiting for a tab (default 2×tabs).
    wait_queue: int = 2
    #: ``SCREENSHOT_API_UPLOADS``: broker-less mode uploads at once (default 4).
    uploads: int = DEFAULT_UPLOADS
    #: ``SCREENSHOT_API_STORAGE_DIR``: broker-less mode without a bucket (default ``api-data``).
    storage_dir: Path = Path(DEFAULT_STORAGE_DIR)
    #: ``SCREENSHOT_API_CALLBACK_ATTEMPTS``: attempts to deliver a job callback (default 0: no
    #: limit but ``callback_expiry``).
    callback_attempts: int = DEFAULT_CALLBACK_ATTEMPTS
    #: ``SCREENSHOT_API_CALLBACK_EXPIRY``: seconds after a job ends during which its callback is
    #: retried until acknowledged (default 1 day).
    callback_expiry: float = DEFAULT_CALLBACK_EXPIRY
    #: ``SCREENSHOT_API_JOB_LEASE``: broker mode, seconds a replica's lease on a job lasts; a
    #: job whose lease lapsed is taken over by another replica (default 10).
    job_lease: float = DEFAULT_JOB_LEASE
    #: ``SCREENSHOT_API_CALLBACK_BACKOFF``: first retry delay in seconds, doubling (default 1).
    callback_backoff: float = DEFAULT_CALLBACK_BACKOFF
    #: ``SCREENSHOT_API_CALLBACK_ALLOW_PRIVATE``: allow callbacks to private addresses (default
    #: false: a callback URL resolving to loopback, private or link-local addresses is refused).
    callback_allow_private: bool = False

    def __post_init__(self) -> None:
        if not self.keys:
            raise ConfigurationError("an ApiConfig needs at least one key")


def load_api_config(environ: Mapping[str, str] | None = None) -> ApiConfig:
    """Read :class:`ApiConfig` from ``environ`` (default: ``os.environ``)."""
    env = os.environ if environ is None else environ
    reader = EnvReader(env)
    tabs = reader.integer("SCREENSHOT_API_TABS", reader.integer("SCREENSHOT_TABS", DEFAULT_TABS))
    return ApiConfig(
        keys=parse_keys(env.get("SCREENSHOT_API_KEYS", "")),
        rate=reader.number("SCREENSHOT_API_RATE", DEFAULT_RATE, low=0.001),
        burst=reader.integer("SCREENSHOT_API_BURST", DEFAULT_BURST),
        auth_failure_burst=reader.integer(
            "SCREENSHOT_API_AUTH_FAILURE_BURST", DEFAULT_AUTH_FAILURE_BURST
        ),
        auth_failure_rate=reader.number(
            "SCREENSHOT_API_AUTH_FAILURE_RATE", DEFAULT_AUTH_FAILURE_RATE, low=0.001
        ),
        max_body=reader.integer("SCREENSHOT_API_MAX_BODY", DEFAULT_MAX_BODY, low=256),
        max_upload=reader.integer("SCREENSHOT_API_MAX_UPLOAD", DEFAULT_MAX_UPLOAD, low=256),
        max_job_urls=reader.integer("SCREENSHOT_API_MAX_JOB_URLS", DEFAULT_MAX_JOB_URLS),
        max_active_jobs=reader.integer("SCREENSHOT_API_MAX_ACTIVE_JOBS", DEFAULT_MAX_ACTIVE_JOBS),
        max_wait=reader.number("SCREENSHOT_API_MAX_WAIT", DEFAULT_MAX_WAIT, low=0),
        result_ttl=load_result_ttl(env),
        high_water=reader.integer("SCREENSHOT_API_HIGH_WATER", DEFAULT_HIGH_WATER),
        tabs=tabs,
        wait_queue=reader.integer("SCREENSHOT_API_WAIT_QUEUE", 2 * tabs, low=0),
        uploads=reader.integer("SCREENSHOT_API_UPLOADS", DEFAULT_UPLOADS),
        storage_dir=Path(env.get("SCREENSHOT_API_STORAGE_DIR", "").strip() or DEFAULT_STORAGE_DIR),
        callback_attempts=reader.integer(
            "SCREENSHOT_API_CALLBACK_ATTEMPTS", DEFAULT_CALLBACK_ATTEMPTS, low=0
        ),
        callback_expiry=reader.number(
            "SCREENSHOT_API_CALLBACK_EXPIRY", DEFAULT_CALLBACK_EXPIRY, low=1
        ),
        job_lease=reader.number("SCREENSHOT_API_JOB_LEASE", DEFAULT_JOB_LEASE, low=0.5),
        callback_backoff=reader.number(
            "SCREENSHOT_API_CALLBACK_BACKOFF", DEFAULT_CALLBACK_BACKOFF, low=0
        ),
        callback_allow_private=reader.boolean("SCREENSHOT_API_CALLBACK_ALLOW_PRIVATE", False),
    )


def load_result_ttl(environ: Mapping[str, str] | None = None) -> int:
    """``SCREENSHOT_API_RESULT_TTL`` alone (the bucket's lifecycle rule needs no keys)."""
    env = os.environ if environ is None else environ
    return EnvReader(env).integer("SCREENSHOT_API_RESULT_TTL", DEFAULT_RESULT_TTL, low=10)


def parse_keys(raw: str) -> tuple[ApiKey, ...]:
    """Parse ``SCREENSHOT_API_KEYS``: comma-separated ``key`` or ``name:key`` items.

    An unnamed key is named ``key-<first 8 hex digits of its SHA-256>``. Messages never
    include a key, only its position in the list.
    """
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise ConfigurationError(
            "SCREENSHOT_API_KEYS is required: one or more API keys, comma-separated, each "
            f"`key` or `name:key`, keys at least {MIN_KEY_LENGTH} characters "
            "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    keys: list[ApiKey] = []
    for position, item in enumerate(items, start=1):
        name, sep, secret = item.partition(":")
        if not sep or not _NAME.match(name):
            name, secret = "", item
        if len(secret) < MIN_KEY_LENGTH or any(ch.isspace() for ch in secret):
            raise ConfigurationError(
                f"SCREENSHOT_API_KEYS: key #{position} must be at least {MIN_KEY_LENGTH} "
                "characters without spaces"
            )
        digest = hash_key(secret)
        keys.append(ApiKey(name or f"key-{digest.hex()[:8]}", digest, Secret(secret)))
    digests = [key.digest for key in keys]
    if len(set(digests)) != len(digests):
        raise ConfigurationError("SCREENSHOT_API_KEYS: the same key is listed twice")
    names = [key.name for key in keys]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigurationError(f"SCREENSHOT_API_KEYS: the name {duplicates[0]!r} is used twice")
    return tuple(keys)
