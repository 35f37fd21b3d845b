"""Each URL's history in every storage back end: the same URL and options shot twice keeps
both images, listed oldest first, and the deterministic key holds the latest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engines.stub import StubEngine
from screenshots.batch.history import history
from screenshots.core.keys import thumbnail_key
from screenshots.core.options import CaptureOptions
from screenshots.core.shot import Shot
from screenshots.pipeline.screenshot import Pipeline
from screenshots.storage import lifecycle
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


@pytest.mark.integration
def test_versions_are_tagged_and_the_lifecycle_rule_expires_only_them(
    s3_bucket: tuple[S3Server, str],
) -> None:
    """The versions carry the tag the lifecycle rule selects; the latest image and its
    thumbnail do not, so the rule never removes what the deterministic key names."""
    server, bucket = s3_bucket
    client = server.client()
    storage = S3Storage(bucket, client=client, link_expiry=600)
    engine = StubEngine(latency=0.0)
    row = Pipeline(storage).take(Shot(1, URL, CaptureOptions(width=320)), lambda: engine)
    assert row.ok and row.key and row.version_key

    def tags(key: str) -> dict[str, str]:
        found = client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        return {tag["Key"]: tag["Value"] for tag in found}

    assert tags(row.version_key) == lifecycle.VERSION_TAGS
    assert tags(row.key) == {}
    assert tags(thumbnail_key(row.key)) == {}

    # The command a user runs: prints the rule, then puts it on the bucket.
    env = {**os.environ, **server.env(bucket), "SCREENSHOT_VERSION_DAYS": "30"}
    command = [sys.executable, "-m", "screenshots.storage.lifecycle"]
    printed = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    rule = json.loads(printed.stdout)["Rules"][0]
    assert rule["Expiration"] == {"Days": 30}
    assert rule["Filter"] == {
        "And": {"Prefix": "screenshots/", "Tags": [{"Key": "screenshots-kind", "Value": "version"}]}
    }
    applied = subprocess.run([*command, "--apply"], env=env, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    assert client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == [rule]

    # Bad settings: one line, no traceback.
    bad = {**env, "SCREENSHOT_BUCKET": "no-such-bucket-here"}
    refused = subprocess.run([*command, "--apply"], env=bad, capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.startswith("error: ")
    assert "Traceback" not in refused.stderr
