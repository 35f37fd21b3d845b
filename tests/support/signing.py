"""A boto3 S3 client with fixed example credentials, for the tests that check our SigV4 signing
(links: ``test_presign``, uploads: ``test_signed_put``) against botocore's."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from screenshots.storage.presign import Credentials


def example_client(
    session_args: dict[str, str], endpoint: str | None, token: str | None, config: Config
) -> tuple[Any, Credentials]:
    """An S3 client for ``endpoint`` (AWS when ``None``) and the credentials it signs with."""
    session = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        aws_session_token=token,
        **session_args,
    )
    client = session.client("s3", config=config, endpoint_url=endpoint)
    frozen = session.get_credentials().get_frozen_credentials()
    return client, Credentials(frozen.access_key, frozen.secret_key, frozen.token)
