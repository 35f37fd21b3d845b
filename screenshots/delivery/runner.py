"""The runner interface."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from screenshots.core.result import Result
from screenshots.core.shot import Shot


class Runner:
    """Captures shots and yields one :class:`~screenshots.core.result.Result` per shot, in
    completion order."""

    def check(self) -> None:  # pragma: no cover
        """Raise :class:`~screenshots.core.errors.ConfigurationError` now if the runner cannot work
        at all."""
        raise NotImplementedError

    def run(self, shots: Iterable[Shot]) -> Iterator[Result]:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover
        raise NotImplementedError
