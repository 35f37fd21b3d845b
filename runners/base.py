"""The runner interface."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from results import Result
from shots import Shot


class Runner:
    """Captures shots and yields one :class:`~results.Result` per shot, in completion order."""

    def check(self) -> None:  # pragma: no cover
        """Raise :class:`~errors.ConfigurationError` now if the runner cannot work at all."""
        raise NotImplementedError

    def run(self, shots: Iterable[Shot]) -> Iterator[Result]:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover
        raise NotImplementedError
