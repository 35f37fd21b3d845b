"""Fixtures for a real SeaweedFS S3 server: ``seaweedfs`` (session) and ``s3_bucket``.

The process logic lives in :mod:`screenshots.dev.devservers.seaweedfs` (importable without pytest,
reused by
the benchmark and the demo); it is re-exported here for tests.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator

import pytest

from screenshots.dev.devservers.seaweedfs import (
    S3Server,
    SeaweedFSError,
    start_seaweedfs,
    stop_seaweedfs,
)

__all__ = ["S3Server", "s3_bucket", "seaweedfs", "start_seaweedfs", "stop_seaweedfs"]

_bucket_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS with S3 on a free loopback port, for the whole session.

    ``seaweedfs.process`` is the ``weed`` Popen: fault tests may SIGSTOP/SIGCONT or kill it
    (a killed server stays dead for the rest of the session).
    """
    try:
        server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    except SeaweedFSError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    stop_seaweedfs(server)


@pytest.fixture
def s3_bucket(seaweedfs: S3Server) -> Iterator[tuple[S3Server, str]]:
    """A fresh, empty bucket on the session's SeaweedFS: ``(server, bucket_name)``.

    Deleted afterwards (with its objects) if the server is still up, so volumes are freed.
    """
    name = f"test-{os.getpid()}-{next(_bucket_numbers)}"
    client = seaweedfs.client()
    client.create_bucket(Bucket=name)
    yield seaweedfs, name
    if seaweedfs.process.poll() is None:
        quick = seaweedfs.client(
            connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1, "mode": "standard"}
        )
        # A test may have stopped the server: not worth failing over.
        with contextlib.suppress(Exception):
            quick.delete_bucket(Bucket=name)  # SeaweedFS deletes non-empty buckets too
