"""storage.presign: links signed here are botocore's links, character for character."""

from __future__ import annotations

import datetime as dt

import botocore.auth
import pytest
from botocore.config import Config

from screenshots.storage.presign import (
    PROBE_KEY,
    SIGNABLE_KEY,
    Credentials,
    LinkSigner,
    learn_signer,
)
from support.signing import example_client

NOW = dt.datetime(2026, 11, 29, 12, 34, 56)
CONFIG = Config(signature_version="s3v4", s3={"addressing_style": "path"})
KEYS = ["screenshots/ab/" + "ab" * 32 + ".png", "x.webp", "a/b/c-d_e.~f.jpeg"]

CASES = {
    "aws": ({"region_name": "eu-west-1"}, None, None),
    "aws us-east-1, session token": ({"region_name": "us-east-1"}, None, "tok/en+="),
    "seaweedfs on loopback": ({"region_name": "us-east-1"}, "http://127.0.0.1:8333", None),
    "https with the default port": ({"region_name": "auto"}, "https://minio.example:443/", None),
    "a path in the endpoint": ({"region_name": "us-east-1"}, "http://h.example:9000/s3", None),
}


@pytest.fixture(autouse=True)
def frozen_botocore_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: NOW)


def _client(case: str) -> tuple[object, Credentials]:
    session_args, endpoint, token = CASES[case]
    return example_client(session_args, endpoint, token, CONFIG)


def _botocore_link(client: object, key: str, expires: int = 600) -> str:
    return client.generate_presigned_url(  # type: ignore[attr-defined, no-any-return]
        "get_object", Params={"Bucket": "shots", "Key": key}, ExpiresIn=expires
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_signed_links_are_botocores(case: str) -> None:
    client, credentials = _client(case)
    signer = learn_signer(lambda key: _botocore_link(client, key), lambda: credentials)
    assert signer is not None
    for key in KEYS:
        for expires in (60, 600, 604800):
            mine = signer.sign(key, credentials, expires, NOW.replace(tzinfo=dt.UTC))
            assert mine == _botocore_link(client, key, expires)


def test_a_link_it_cannot_reproduce_teaches_nothing() -> None:
    client, credentials = _client("aws")
    link = _botocore_link(client, PROBE_KEY)
    assert LinkSigner.learn(link, PROBE_KEY, credentials) is not None
    tampered = link.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert LinkSigner.learn(tampered, PROBE_KEY, credentials) is None
    other = Credentials("AKIDOTHER", credentials.secret_key, None)
    assert LinkSigner.learn(link, PROBE_KEY, other) is None  # signed with other credentials
    assert LinkSigner.learn(link, "other/key.png", credentials) is None
    unsigned_v2 = "https://shots.s3.amazonaws.com/probe?AWSAccessKeyId=A&Signature=x&Expires=1"
    assert LinkSigner.learn(unsigned_v2, PROBE_KEY, credentials) is None


def test_no_credentials_no_signer() -> None:
    assert learn_signer(lambda key: "unused", lambda: None) is None


def test_signable_keys() -> None:
    assert all(SIGNABLE_KEY.fullmatch(key) for key in KEYS)
    for key in ("a b.png", "é.png", "a+b.png", "a?b", "a%20b", ""):
        assert not SIGNABLE_KEY.fullmatch(key)
