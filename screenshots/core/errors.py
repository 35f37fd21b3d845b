"""Every error the service raises on purpose, and whether it is worth retrying.

The split that matters is *permanent* versus *transient*:

- a :class:`PermanentError` will fail again the same way (bad URL, unknown host, refused
  connection, an error page): it becomes an ``error`` row at once;
- a :class:`TransientError` may succeed on another attempt (browser crashed, storage
  unreachable, page took too long): it is retried with backoff, and becomes an ``error`` row
  only when the attempts run out.

Messages are written for the person reading the results file: they say what went wrong with
*their* URL, not where in our code it happened.
"""

from __future__ import annotations


class ScreenshotError(Exception):
    """Base class of every error the service raises on purpose."""

    #: Whether another attempt may succeed. Subclasses override it.
    transient: bool = False

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class PermanentError(ScreenshotError):
    """Will fail the same way on every attempt: recorded as an ``error`` row at once."""


class TransientError(ScreenshotError):
    """May succeed on another attempt: retried with backoff before it is recorded."""

    transient = True


class ConfigurationError(ScreenshotError):
    """A setting is missing or has a bad value. Raised at start-up, never per URL."""


# -- input ---------------------------------------------------------------------------------


class InvalidURL(PermanentError):
    """The line is not a URL we accept (syntax, scheme, length, credentials)."""


class InvalidOption(PermanentError):
    """A capture option has an unknown name or a bad value."""


# -- capturing -----------------------------------------------------------------------------


class NavigationError(PermanentError):
    """The browser could not load the page: unknown host, refused connection, TLS error.

    ``code`` is the browser's own name for the failure (``net::ERR_NAME_NOT_RESOLVED``) when
    the engine knows it.
    """

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class RedirectLoop(NavigationError):
    """The page kept navigating on its own (meta refresh or script redirects) and never settled.

    HTTP redirect loops are Chromium's ``net::ERR_TOO_MANY_REDIRECTS``; this is the in-page kind,
    which Chromium lets run forever.
    """

    def __init__(self, navigations: int) -> None:
        super().__init__(
            f"redirect loop: the page navigated {navigations} times without settling "
            "(meta refresh or script redirects)",
            code="redirect loop",
        )
        self.navigations = navigations


class CaptureTimeout(TransientError):
    """The page did not finish within the capture deadline."""


class BrowserCrashed(TransientError):
    """The browser or its driver died or stopped answering; the engine restarts it."""


class EngineUnavailable(ConfigurationError):
    """The engine cannot start at all (browser or driver missing): no URL can succeed."""


# -- storing -------------------------------------------------------------------------------


class StorageUnavailable(TransientError):
    """The storage back end could not be reached or answered with a server error."""


class StorageRejected(ConfigurationError):
    """The storage back end refused us (no such bucket, access denied): fix the settings."""


class WorkerOffline(StorageUnavailable):
    """The page looked unreachable, and so did this worker's own services (broker, S3): the
    worker's host has lost its network, and the page said nothing about itself. Handled like a
    storage outage: the shot goes back to the queue for a worker that can reach it (see
    :mod:`screenshots.pipeline.reachability`)."""
