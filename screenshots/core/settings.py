"""Every setting the service reads from the environment, read here and nowhere else.

Names follow the ecosystem: ``CELERY_BROKER_URL`` and ``CELERY_RESULT_BACKEND`` for Celery,
the standard ``AWS_*`` variables for S3 (boto3 reads the endpoint and credentials itself:
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``), and ``SCREENSHOT_*`` for our own.
A bad value is a :class:`~screenshots.core.errors.ConfigurationError` naming the variable. Secrets
are wrapped
in :class:`Secret` so they do not leak through ``repr`` or logs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from screenshots.core.errors import ConfigurationError
from screenshots.core.keys import DEFAULT_KEY_PREFIX
from screenshots.egress.policy import IPNetwork, parse_allow_list

#: Where Debian installs the full Chromium browser (run in its new headless mode).
FULL_CHROMIUM = "/usr/bin/chromium"
#: Where Debian's chromium-headless-shell package puts Chromium's old headless mode, a build
#: without the full browser's layer (``/usr/bin``'s of the same name is a script that does not
#: ``exec`` it).
HEADLESS_SHELL = "/usr/lib/chromium/chromium-headless-shell"


def default_chromium(shell: str = HEADLESS_SHELL, full: str = FULL_CHROMIUM) -> str:
    """The browser used when ``SCREENSHOT_CHROMIUM`` is not set: the headless shell when it is
    installed (``make install`` and the image install it), else the full browser.

    The shell is what Playwright itself launches for headless Chromium, and what Puppeteer
    recommends where performance matters. Measured on the benchmark's corpus: the same images
    byte for byte (100 pages), the whole test suite passes on it, and a screenshot through the
    whole pipeline takes 28-37% less CPU (35-52% more shots per second on 2 cores) than on the
    full browser (docs/benchmarks.md, nineteenth and twentieth sessions). It is not the full
    browser: a page that needs what only Chrome's own layer has (extensions, Chrome's
    preferences such as ``download_restrictions``) renders as in the shell;
    ``SCREENSHOT_CHROMIUM=/usr/bin/chromium`` shoots with the full browser.
    """
    return shell if os.access(shell, os.X_OK) else full


#: ``SCREENSHOT_CHROMIUM``'s default on this machine (:func:`default_chromium`).
DEFAULT_CHROMIUM = default_chromium()
#: Where Debian installs ChromeDriver.
DEFAULT_CHROMEDRIVER = "/usr/bin/chromedriver"
#: Captures a browser serves per tab before it is replaced by a fresh one (bounds its memory;
#: the Selenium engine's browser of 4 tabs is replaced every 800 captures).
DEFAULT_RECYCLE_AFTER = 200
#: Most tabs one browser gets by default: past this, run more pool processes (``-c``).
MAX_DEFAULT_TABS = 8


def default_tabs(cpus: int | None = None) -> int:
    """Captures one engine runs at once by default, each in a tab of the same browser: two more
    than the machine's cores, at most :data:`MAX_DEFAULT_TABS` (4 on 2 cores). A capture spends
    part of its time waiting (network, load events, the upload), so a few more tabs than cores
    keep the cores busy. Measured on 2 cores through the whole pipeline, one worker process
    (``python -m screenshots.dev.bench --only a,b --concurrency 2,1x3,1x4``): 3 tabs 5.09,
    4 tabs 5.53 shots/s, and two processes of 2 tabs 5.10 at 13% more CPU per shot: one
    browser per machine, with its tabs as the concurrency, is the cheapest."""
    if cpus is None:
        # The cores this process may run on (a container's cpuset), not the host's.
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(2, min(MAX_DEFAULT_TABS, (cpus or 1) + 2))


DEFAULT_TABS = default_tabs()
#: Seconds a presigned link stays valid: 7 days, the longest SigV4 allows.
DEFAULT_LINK_EXPIRY = 7 * 24 * 3600
#: Days earlier versions of a shot are kept by the lifecycle rule (a quarter: weekly runs keep
#: their last 13 images of each URL).
DEFAULT_VERSION_DAYS = 90
#: Hard limit, in seconds, on one Celery task; far below RabbitMQ's 30-minute consumer timeout.
DEFAULT_TASK_TIME_LIMIT = 600
#: Seconds an S3 request may wait for an answer before it counts as failed (and is retried).
DEFAULT_S3_READ_TIMEOUT = 20
#: Attempts per URL for transient failures (browser crash, storage hiccup, timeout).
DEFAULT_MAX_ATTEMPTS = 3
#: From this many earlier deliveries on, a batch that keeps killing its worker is given up:
#: error rows, and the message to the dead-letter queue. Below the queue's delivery-limit (5).
DEFAULT_POISON_DELIVERIES = 4


class Secret:
    """A string that prints as ``'**********'``; call ``str()`` only where it is really used."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __str__(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@dataclass(frozen=True)
class Settings:
    """The service's configuration. Build it with :func:`load_settings`."""

    #: ``CELERY_BROKER_URL``. Unset means the embedded mode: no broker, captures in-process.
    broker_url: Secret | None = None
    #: ``CELERY_RESULT_BACKEND``: where task results go (Redis). Required with a broker.
    result_backend: Secret | None = None
    #: ``SCREENSHOT_BUCKET``. Unset means local storage in the output directory.
    bucket: str | None = None
    #: ``SCREENSHOT_KEY_PREFIX``: prefix of every object key.
    key_prefix: str = DEFAULT_KEY_PREFIX
    #: ``SCREENSHOT_PUBLIC_BASE_URL``: for a public bucket, links are this + key, not presigned.
    public_base_url: str | None = None
    #: ``SCREENSHOT_LINK_EXPIRY``: seconds a presigned link stays valid.
    link_expiry: int = DEFAULT_LINK_EXPIRY
    #: ``SCREENSHOT_VERSION_DAYS``: days the bucket's lifecycle rule keeps a shot's earlier
    #: versions (:mod:`screenshots.storage.lifecycle`); 0 keeps them for ever.
    version_days: int = DEFAULT_VERSION_DAYS
    #: ``SCREENSHOT_S3_READ_TIMEOUT``: seconds an S3 request may wait for an answer.
    s3_read_timeout: int = DEFAULT_S3_READ_TIMEOUT
    #: ``SCREENSHOT_ENGINE``: engine used by workers when a task does not name one.
    engine: str = "selenium"
    #: ``SCREENSHOT_CHROMIUM``: path of the Chromium binary (default: the headless shell if
    #: installed, else ``/usr/bin/chromium``; :func:`default_chromium`).
    chromium_path: str = DEFAULT_CHROMIUM
    #: ``SCREENSHOT_CHROMEDRIVER``: path of the ChromeDriver binary.
    chromedriver_path: str = DEFAULT_CHROMEDRIVER
    #: ``SCREENSHOT_RECYCLE_AFTER``: captures per tab of a browser before it is replaced.
    recycle_after: int = DEFAULT_RECYCLE_AFTER
    #: ``SCREENSHOT_TABS``: captures one engine (one browser) runs at the same time, each in a
    #: tab of its own (default: the cores + 2, at most 8); a Celery task captures its batch on
    #: 1.5 x this many threads.
    tabs: int = DEFAULT_TABS
    #: ``SCREENSHOT_ISOLATION``: ``standard`` (default) lets an anonymous capture use the HTTP
    #: cache earlier captures of the same site filled (Chromium partitions the cache by
    #: top-level site; a capture with cookies, headers or a ``user:pass@`` URL never reads or
    #: writes it); ``strict`` gives every capture of the fleet an empty cache, whatever its
    #: ``isolation`` option says (see SECURITY.md). ``SCREENSHOT_KEEP_HTTP_CACHE``, which it
    #: supersedes, is read as an alias: ``true`` is ``standard``, ``false`` is ``strict``.
    isolation: Literal["standard", "strict"] = "standard"
    #: ``SCREENSHOT_MAX_ATTEMPTS``: attempts per URL for transient failures.
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    #: ``SCREENSHOT_TASK_TIME_LIMIT``: hard limit on one Celery task, in seconds.
    task_time_limit: int = DEFAULT_TASK_TIME_LIMIT
    #: ``SCREENSHOT_POISON_DELIVERIES``: deliveries after which a batch is dead-lettered.
    poison_deliveries: int = DEFAULT_POISON_DELIVERIES
    #: ``SCREENSHOT_STUB_LATENCY_MS``: time each stub capture sleeps (latency benchmarks).
    stub_latency_ms: int = 0
    #: ``SCREENSHOT_ENGINES``: extra engines, ``name=module:Class`` separated by commas
    #: (plug-ins that live outside ``engines/``).
    engine_plugins: dict[str, str] = field(default_factory=dict)
    #: ``SCREENSHOT_QUEUE``: name of the RabbitMQ work queue.
    queue: str = "screenshots"
    #: The AWS variables boto3 will read, kept for messages (secrets never included).
    s3_endpoint: str | None = field(default=None)
    #: ``SCREENSHOT_EGRESS_POLICY``: ``on`` (default) sends every request of the browsers
    #: through the egress proxy, which refuses private, loopback, link-local (cloud metadata)
    #: and other non-public addresses. ``off`` lets pages reach anything the worker can reach,
    #: the cloud metadata service and internal services included: only for trusted URLs on a
    #: network that enforces its own egress rules (see SECURITY.md).
    egress_enabled: bool = True
    #: ``SCREENSHOT_EGRESS_ALLOW``: addresses or CIDR networks exempt from the egress policy,
    #: comma-separated (``10.1.0.0/16,127.0.0.1``). Empty by default: nothing is exempt.
    egress_allow: tuple[IPNetwork, ...] = ()

    @property
    def distributed(self) -> bool:
        """Whether work goes through a broker to Celery workers."""
        return self.broker_url is not None

    def missing_result_backend(self) -> str | None:
        """Why this distributed configuration cannot carry results, if it cannot.

        With a broker but no ``CELERY_RESULT_BACKEND``, a worker would write its rows to its
        own host's Redis and the dispatcher would wait for them forever. Checked by what reads
        or writes results (worker, dispatcher, API), not when the settings are read: Celery's
        other commands (``celery -A tasks -b URL inspect ping``, ``status``, Flower) need no
        result backend, and failing there was a traceback on every one of them.
        """
        if self.broker_url is not None and self.result_backend is None:
            return (
                "CELERY_RESULT_BACKEND is required with CELERY_BROKER_URL "
                "(e.g. redis://127.0.0.1:6379/0)"
            )
        return None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read :class:`Settings` from ``environ`` (default: ``os.environ``)."""
    env = os.environ if environ is None else environ

    reader = EnvReader(env)
    text, integer = reader.text, reader.integer

    broker = text("CELERY_BROKER_URL")
    backend = text("CELERY_RESULT_BACKEND")
    schemes = ("amqp://", "amqps://", "pyamqp://", "redis://", "memory://")
    if broker is not None and not broker.startswith(schemes):
        raise ConfigurationError(
            f"CELERY_BROKER_URL must be an amqp:// URL, not {redact_url(broker)!r}"
        )
    if backend is not None and not backend.startswith(("redis://", "rediss://", "cache+memory")):
        raise ConfigurationError(
            f"CELERY_RESULT_BACKEND must be a redis:// URL, not {redact_url(backend)!r}"
        )
    public = text("SCREENSHOT_PUBLIC_BASE_URL")
    if public is not None and not public.startswith(("http://", "https://")):
        raise ConfigurationError("SCREENSHOT_PUBLIC_BASE_URL must start with http:// or https://")
    prefix = env.get("SCREENSHOT_KEY_PREFIX", DEFAULT_KEY_PREFIX)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return Settings(
        broker_url=Secret(broker) if broker else None,
        result_backend=Secret(backend) if backend else None,
        bucket=text("SCREENSHOT_BUCKET"),
        key_prefix=prefix,
        public_base_url=public.rstrip("/") + "/" if public else None,
        link_expiry=integer("SCREENSHOT_LINK_EXPIRY", DEFAULT_LINK_EXPIRY),
        version_days=integer("SCREENSHOT_VERSION_DAYS", DEFAULT_VERSION_DAYS, low=0),
        s3_read_timeout=integer("SCREENSHOT_S3_READ_TIMEOUT", DEFAULT_S3_READ_TIMEOUT),
        engine=text("SCREENSHOT_ENGINE") or "selenium",
        chromium_path=text("SCREENSHOT_CHROMIUM") or DEFAULT_CHROMIUM,
        chromedriver_path=text("SCREENSHOT_CHROMEDRIVER") or DEFAULT_CHROMEDRIVER,
        recycle_after=integer("SCREENSHOT_RECYCLE_AFTER", DEFAULT_RECYCLE_AFTER),
        tabs=integer("SCREENSHOT_TABS", DEFAULT_TABS),
        isolation=_isolation(text("SCREENSHOT_ISOLATION"), text("SCREENSHOT_KEEP_HTTP_CACHE")),
        max_attempts=integer("SCREENSHOT_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS),
        task_time_limit=integer("SCREENSHOT_TASK_TIME_LIMIT", DEFAULT_TASK_TIME_LIMIT, low=10),
        poison_deliveries=integer("SCREENSHOT_POISON_DELIVERIES", DEFAULT_POISON_DELIVERIES),
        stub_latency_ms=integer("SCREENSHOT_STUB_LATENCY_MS", 0, low=0),
        engine_plugins=parse_engine_plugins(text("SCREENSHOT_ENGINES") or ""),
        queue=text("SCREENSHOT_QUEUE") or "screenshots",
        s3_endpoint=text("AWS_ENDPOINT_URL_S3") or text("AWS_ENDPOINT_URL"),
        egress_enabled=_egress_enabled(text("SCREENSHOT_EGRESS_POLICY")),
        egress_allow=_egress_allow(text("SCREENSHOT_EGRESS_ALLOW")),
    )


def _isolation(value: str | None, keep_cache: str | None) -> Literal["standard", "strict"]:
    """``SCREENSHOT_ISOLATION``, or its superseded alias ``SCREENSHOT_KEEP_HTTP_CACHE``."""
    if keep_cache is not None:
        kept = EnvReader({"SCREENSHOT_KEEP_HTTP_CACHE": keep_cache}).boolean(
            "SCREENSHOT_KEEP_HTTP_CACHE", True
        )
        alias: Literal["standard", "strict"] = "standard" if kept else "strict"
        if value is not None and value.lower() != alias:
            raise ConfigurationError(
                f"SCREENSHOT_KEEP_HTTP_CACHE={keep_cache} contradicts SCREENSHOT_ISOLATION="
                f"{value}: drop SCREENSHOT_KEEP_HTTP_CACHE, which SCREENSHOT_ISOLATION replaces"
            )
        return alias
    if value is None or value.lower() == "standard":
        return "standard"
    if value.lower() == "strict":
        return "strict"
    raise ConfigurationError(f"SCREENSHOT_ISOLATION must be standard or strict, not {value!r}")


def _egress_enabled(value: str | None) -> bool:
    """``SCREENSHOT_EGRESS_POLICY``: ``on`` (the default) or ``off``."""
    if value is None or value.lower() == "on":
        return True
    if value.lower() == "off":
        return False
    raise ConfigurationError(f"SCREENSHOT_EGRESS_POLICY must be on or off, not {value!r}")


def _egress_allow(value: str | None) -> tuple[IPNetwork, ...]:
    """``SCREENSHOT_EGRESS_ALLOW``: comma-separated addresses or CIDR networks."""
    try:
        return parse_allow_list(value)
    except ValueError as exc:
        raise ConfigurationError(f"SCREENSHOT_EGRESS_ALLOW: {exc}") from None


def parse_engine_plugins(text: str) -> dict[str, str]:
    """``"a=pkg.mod:Class,b=other:Engine"`` → ``{"a": "pkg.mod:Class", ...}``."""
    plugins: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, target = item.partition("=")
        if not sep or not name.strip() or ":" not in target:
            raise ConfigurationError(
                f"SCREENSHOT_ENGINES entries look like name=module:Class, not {item!r}"
            )
        plugins[name.strip()] = target.strip()
    return plugins


class EnvReader:
    """Typed reads of environment variables, with errors naming the variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def integer(self, name: str, default: int, low: int = 1) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigurationError(f"{name} must be a whole number, not {raw!r}") from None
        if value < low:
            raise ConfigurationError(f"{name} must be at least {low}, not {value}")
        return value

    def number(self, name: str, default: float, low: float) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None
        if not value >= low or value == float("inf"):
            raise ConfigurationError(f"{name} must be a finite number of at least {low:g}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(f"{name} must be true or false, not {raw!r}")
