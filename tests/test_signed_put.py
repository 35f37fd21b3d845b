"""storage.signed_put: uploads signed here carry botocore's headers, signature included."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import botocore.auth
import botocore.httpsession
import pytest
from botocore.config import Config

from screenshots.storage.presign import Credentials
from screenshots.storage.signed_put import (
    PutSigner,
    botocore_preparer,
    learn_put_signer,
)
from support.signing import example_client

NOW = dt.datetime(2026, 11, 29, 12, 34, 56)
PATH_STYLE = Config(
    signature_version="s3v4",
    s3={"addressing_style": "path"},
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
)

CASES: dict[str, tuple[dict[str, str], str | None, str | None, Config]] = {
    "aws": ({"region_name": "eu-west-1"}, None, None, PATH_STYLE),
    "aws us-east-1, session token": ({"region_name": "us-east-1"}, None, "tok/en+=", PATH_STYLE),
    "seaweedfs on loopback": (
        {"region_name": "us-east-1"},
        "http://127.0.0.1:8333",
        None,
        PATH_STYLE,
    ),
    "https with the default port": (
        {"region_name": "auto"},
        "https://minio.example:443/",
        None,
        PATH_STYLE,
    ),
    "a path in the endpoint": (
        {"region_name": "us-east-1"},
        "http://h.example:9000/s3",
        None,
        PATH_STYLE,
    ),
    "virtual-hosted addressing": (
        {"region_name": "eu-west-1"},
        None,
        None,
        Config(
            signature_version="s3v4",
            s3={"addressing_style": "virtual"},
            request_checksum_calculation="when_required",
        ),
    ),
}
#: Objects as the store phase writes them: versions (metadata, tags), keys, thumbnails.
OBJECTS: list[tuple[str, bytes, str, dict[str, str], str | None]] = [
    (
        "screenshots/ab/" + "ab" * 32 + ".png",
        b"\x89PNG" + bytes(range(256)) * 40,
        "image/png",
        {"width": "1280", "height": "800", "engine": "selenium", "http-status": "200"},
        None,
    ),
    (
        "screenshots/ab/" + "ab" * 32 + "/v/20261129T123456.000001Z.jpeg",
        b"\xff\xd8 jpeg",
        "image/jpeg",
        {"phash": "8f0f0f0f0f0f0f0f", "version": "screenshots/ab/x/v/1.jpeg"},
        "kind=version",
    ),
    ("screenshots/ab/" + "ab" * 32 + ".thumb.webp", b"RIFF", "image/webp", {}, None),
    ("a/b/c-d_e.~f.png", b"", "image/png", {}, "kind=version&keep=30d"),
]


@pytest.fixture(autouse=True)
def frozen_botocore_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: NOW)


def _client(case: str) -> tuple[Any, Credentials]:
    session_args, endpoint, token, config = CASES[case]
    return example_client(session_args, endpoint, token, config)


def _sent(headers: dict[str, str]) -> dict[str, str]:
    """The headers both send, by lower-case name (botocore's own bookkeeping left out)."""
    ignored = {"amz-sdk-invocation-id", "amz-sdk-request", "content-length", "expect"}
    return {name.lower(): value for name, value in headers.items() if name.lower() not in ignored}


@pytest.mark.parametrize("case", sorted(CASES))
def test_signed_uploads_are_botocores(case: str) -> None:
    client, credentials = _client(case)
    prepare = botocore_preparer(client, "shots")
    signer = learn_put_signer(prepare, credentials)
    assert signer is not None
    for key, data, content_type, metadata, tagging in OBJECTS:
        assert signer.accepts(key, content_type, metadata, tagging)
        url, theirs = prepare(key, data, content_type, metadata, tagging)
        mine = signer.headers(
            key, data, content_type, metadata, tagging, credentials, NOW.replace(tzinfo=dt.UTC)
        )
        assert signer.url(key) == url
        assert mine == _sent(theirs)  # every header, the signature and User-Agent included


def test_preparing_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probes are taken from botocore before its HTTP session sees them, and the client is
    left without the interception hook."""
    session = boto3.session.Session(
        aws_access_key_id="AKID", aws_secret_access_key="secret", region_name="us-east-1"
    )
    client = session.client("s3", config=PATH_STYLE, endpoint_url="http://127.0.0.1:9")
    sent: list[str] = []

    def record(self: object, request: Any) -> None:
        sent.append(request.url)
        raise RuntimeError("sent")

    monkeypatch.setattr(botocore.httpsession.URLLib3Session, "send", record)
    credentials = Credentials("AKID", "secret", None)
    assert learn_put_signer(botocore_preparer(client, "shots"), credentials) is not None
    assert sent == []
    with pytest.raises(RuntimeError, match="sent"):
        client.put_object(Bucket="shots", Key="k", Body=b"x")  # the hook is gone: sent
    assert sent == ["http://127.0.0.1:9/shots/k"]


def test_a_client_that_adds_checksums_teaches_nothing() -> None:
    """botocore's default since 2025 adds a CRC header this signer does not make: refused."""
    session = boto3.session.Session(
        aws_access_key_id="AKID", aws_secret_access_key="secret", region_name="us-east-1"
    )
    client = session.client(
        "s3",
        config=Config(signature_version="s3v4", request_checksum_calculation="when_supported"),
        endpoint_url="http://127.0.0.1:9",
    )
    credentials = Credentials("AKID", "secret", None)
    assert learn_put_signer(botocore_preparer(client, "shots"), credentials) is None


def test_requests_it_cannot_reproduce_teach_nothing() -> None:
    client, credentials = _client("aws")
    prepare = botocore_preparer(client, "shots")
    assert learn_put_signer(prepare, credentials) is not None
    other = Credentials("AKIDOTHER", credentials.secret_key, None)
    assert learn_put_signer(prepare, other) is None  # signed with other credentials
    wrong_secret = Credentials(credentials.access_key, "another-secret", None)
    assert learn_put_signer(prepare, wrong_secret) is None  # the signature differs

    def with_extra_header(*probe: Any) -> tuple[str, dict[str, str]]:
        url, headers = prepare(*probe)
        return url, {**headers, "x-amz-checksum-crc32": "AAAAAA=="}

    assert learn_put_signer(with_extra_header, credentials) is None


@pytest.mark.parametrize(
    ("key", "content_type", "metadata", "tagging"),
    [
        ("a b.png", "image/png", {}, None),
        ("é.png", "image/png", {}, None),
        ("a+b.png", "image/png", {}, None),
        ("k.png", "image/png", {"title": "caf\u00e9"}, None),
        ("k.png", "image/png", {"title": "two  spaces"}, None),
        ("k.png", "image/png", {"Upper": "x"}, None),
        ("k.png", "image/png", {"v": " lead"}, None),
        ("k.png", "image/png", {}, "a=b  c"),
        ("k.png", "image/png; x=\u00e9", {}, None),
    ],
)
def test_objects_it_does_not_sign_are_left_to_botocore(
    key: str, content_type: str, metadata: dict[str, str], tagging: str | None
) -> None:
    assert not PutSigner.accepts(key, content_type, metadata, tagging)
