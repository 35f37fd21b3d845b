#!/opt/venv/bin/python
"""``screenshots-stack-setup``: what a stack in containers needs once, besides the broker setup.

``screenshots-broker setup`` declares the dead-letter topology and applies the work queue's
policy with ``rabbitmqctl``; the image has no ``rabbitmqctl`` (it would bring Erlang into every
worker), so in a container it prints the command instead. This applies the *same* policy (the
one :func:`screenshots.delivery.topology.policy_command` builds, parsed back, so there is one
definition) through RabbitMQ's management HTTP API, and creates the S3 bucket when asked (with
the lifecycle rule that expires old versions of shots, :mod:`screenshots.storage.lifecycle`):

    screenshots-broker setup && screenshots-stack-setup --policy --bucket

Settings: ``RABBITMQ_MANAGEMENT_URL`` (``http://user:password@rabbitmq:15672``) for the
policy, the usual ``AWS_*`` variables and ``SCREENSHOT_BUCKET`` for the bucket,
``SCREENSHOT_QUEUE`` and ``CELERY_BROKER_URL`` (its vhost) as everywhere. Both steps are
idempotent and wait (up to ``--wait`` seconds) for the service to answer, so a one-shot
Compose service or Kubernetes Job may start with the rest of the stack.

Once ``screenshots-broker setup`` can apply the policy over the management API itself, the
``--policy`` step here can go.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from screenshots.core.settings import Settings, load_settings, redact_url
from screenshots.delivery.topology import policy_command, vhost_of

#: Seconds between two attempts while a service is not up yet.
RETRY_EVERY = 2.0


def policy_request(queue: str, vhost: str) -> tuple[str, str, dict[str, Any]]:
    """``(vhost, name, body)`` of the management API's ``PUT /api/policies/{vhost}/{name}``."""
    command = policy_command(queue, vhost)
    # rabbitmqctl set_policy -p VHOST NAME PATTERN DEFINITION --apply-to X --priority N
    name, pattern, definition = command[4], command[5], json.loads(command[6])
    body = {
        "pattern": pattern,
        "definition": definition,
        "apply-to": command[command.index("--apply-to") + 1],
        "priority": int(command[command.index("--priority") + 1]),
    }
    return command[3], name, body


def apply_policy(management_url: str, queue: str, vhost: str) -> str:
    """Apply the work queue's policy through the management API at ``management_url``."""
    parts = urlsplit(management_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("RABBITMQ_MANAGEMENT_URL must be http(s)://user:password@host:15672")
    base = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
    vhost, name, body = policy_request(queue, vhost)
    request = urllib.request.Request(
        f"{base}/api/policies/{quote(vhost, safe='')}/{quote(name, safe='')}",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    credentials = f"{parts.username or ''}:{parts.password or ''}".encode()
    request.add_header("Authorization", "Basic " + base64.b64encode(credentials).decode())
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
    return f"policy {name} applied to ^{queue}$ on vhost {vhost} ({redact_url(management_url)})"


def create_bucket(bucket: str) -> str:
    """Create ``bucket`` with boto3's settings from the environment, unless it exists."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    client = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
    try:
        client.head_bucket(Bucket=bucket)
        return f"bucket {bucket} exists"
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
    client.create_bucket(Bucket=bucket)
    return f"bucket {bucket} created"


def bucket_lifecycle(settings: Settings) -> str:
    """Put the lifecycle rule that expires a shot's earlier versions after
    ``SCREENSHOT_VERSION_DAYS`` (:mod:`screenshots.storage.lifecycle`) on the bucket."""
    from screenshots.storage import lifecycle

    if lifecycle.apply(settings) is None:
        return "no lifecycle rule (SCREENSHOT_VERSION_DAYS=0)"
    days = settings.version_days
    return f"lifecycle rule {lifecycle.RULE_ID!r}: versions expire after {days} days"


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the service is not up yet (rather than: it refused)."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500
    if isinstance(exc, (OSError, urllib.error.URLError)):
        return True
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

    return isinstance(exc, (EndpointConnectionError, ConnectTimeoutError))


def retrying(step: Callable[[], str], wait: float) -> str:
    """Run ``step`` until it succeeds or ``wait`` seconds have passed (then re-raise)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return step()
        except Exception as exc:
            if not transient(exc) or time.monotonic() >= deadline:
                raise
            print(f"waiting: {exc}", file=sys.stderr)
            time.sleep(RETRY_EVERY)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="screenshots-stack-setup", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--policy", action="store_true", help="apply the work queue's policy")
    parser.add_argument("--bucket", action="store_true", help="create SCREENSHOT_BUCKET")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for services")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if args.policy:
            url = os.environ.get("RABBITMQ_MANAGEMENT_URL", "").strip()
            if not url:
                raise ValueError("--policy needs RABBITMQ_MANAGEMENT_URL")
            broker = str(settings.broker_url) if settings.broker_url else ""
            vhost = vhost_of(broker) if broker else "/"
            print(retrying(lambda: apply_policy(url, settings.queue, vhost), args.wait))
        if args.bucket:
            bucket = settings.bucket
            if bucket is None:
                raise ValueError("--bucket needs SCREENSHOT_BUCKET")
            print(retrying(lambda: create_bucket(bucket), args.wait))
            print(bucket_lifecycle(settings))
    except Exception as exc:  # noqa: BLE001 - one clear line for any failure
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
