"""Each URL's history in every storage back end: the same URL and options shot twice keeps
both images, listed oldest first, and the deterministic key holds the latest."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.stub import StubEngine
from screenshots.batch.history import history
from screenshots.core.options import CaptureOptions
from screenshots.core.shot import Shot
from screenshots.pipeline.screenshot import Pipeline
from screenshots.storage.base import Storage
from screenshots.storage.local import LocalStorage
from screenshots.storage.s3 import S3Storage
from support.seaweedfs import S3Server

URL = "http://history.example/"


def shoot_twice(storage: Storage) -> None:
    engine = StubEngine(latency=0.0)
    for width in (320, 320):  # the same URL and options
        row = Pipeline(storage).take(Shot(1, URL, CaptureOptions(width=width)), lambda: engine)
        assert row.ok and row.version_key


def check_history(storage: Storage) -> None:
    options = CaptureOptions(width=320)
    versions = history(storage, URL, options)
    assert len(versions) == 2 and versions[0].taken_at < versions[1].taken_at
    latest = storage.read(versions[1].key)
    key = versions[1].key.rsplit("/", 1)[0] + ".png"
    assert storage.read(key) == latest
    # a diff image beside a version is its diff_link, not a version
    storage.put(versions[1].key.removesuffix(".png") + ".diff.png", b"png", "image/png")
    again = history(storage, URL, options)
    assert [v.key for v in again] == [v.key for v in versions]
    assert again[1].diff_link is not None and again[0].diff_link is None


def test_local_storage_keeps_every_version(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    shoot_twice(storage)
    check_history(storage)
    # metadata files and writes in progress are not keys
    assert all(not k.endswith(".meta.json") for k in storage.keys("screenshots/"))
    assert storage.keys("nothing/here/") == []


@pytest.mark.integration
def test_s3_keeps_every_version(s3_bucket: tuple[S3Server, str]) -> None:
    server, bucket = s3_bucket
    storage = S3Storage(bucket, client=server.client(), link_expiry=600)
    shoot_twice(storage)
    check_history(storage)
