"""List and requeue dead-lettered messages: ``screenshots-deadletters list|requeue``.

A message is dead-lettered when it cannot be decoded, names an unknown task, or kept killing
its worker (see :mod:`screenshots.delivery.topology` and :mod:`tasks.capture`). They wait in
``<queue>.dlq`` until
an operator looks at them. ``list`` shows them without removing them; ``requeue`` publishes
them to the work queue again (after a fix was deployed) and removes them from the DLQ.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kombu import Connection, Exchange, Message

from screenshots.core.settings import load_settings
from screenshots.delivery.topology import dead_letter_queue, dead_letter_queue_name

#: Messages handled at most per command.
DEFAULT_LIMIT = 1000


@dataclass(frozen=True)
class DeadLetter:
    """What an operator needs to know about one dead-lettered message."""

    task_id: str | None
    task: str | None
    reason: str | None
    deliveries: int | None
    urls: list[str]
    body_preview: str


def describe(message: Message) -> DeadLetter:
    headers = dict(message.headers or {})
    deaths = headers.get("x-death") or []
    reason = headers.get("x-first-death-reason")
    if deaths and isinstance(deaths, list) and isinstance(deaths[0], dict):
        reason = reason or deaths[0].get("reason")
    urls: list[str] = []
    body = message.body or b""
    raw = body.encode("utf-8", "replace") if isinstance(body, str) else bytes(body)
    preview = raw[:200].decode("utf-8", "replace")
    try:
        args = json.loads(raw)[0]
        urls = [str(shot.get("url")) for shot in args[0]]
    except Exception:  # noqa: BLE001, S110 - a dead letter may be anything: no URLs then
        pass
    count = headers.get("x-delivery-count")
    return DeadLetter(
        task_id=headers.get("id"),
        task=headers.get("task"),
        reason=str(reason) if reason else None,
        deliveries=int(count) if isinstance(count, int) else None,
        urls=urls,
        body_preview=preview,
    )


def _fetch(connection: Connection, queue: str, limit: int) -> Iterator[tuple[Any, Message]]:
    channel = connection.channel()
    bound = dead_letter_queue(queue)(channel)
    bound.declare()
    try:
        for _ in range(limit):
            message = bound.get(no_ack=False, accept=["json", "application/data", "text/plain"])
            if message is None:
                return
            yield channel, message
    finally:
        channel.close()  # unacked messages go back to the DLQ


def list_dead_letters(connection: Connection, queue: str, limit: int) -> list[DeadLetter]:
    """The dead letters, left in place."""
    return [describe(message) for _, message in _fetch(connection, queue, limit)]


def requeue_dead_letters(connection: Connection, queue: str, limit: int) -> int:
    """Publish dead letters back to the work queue; return how many were moved."""
    moved = 0
    producer = connection.Producer()
    exchange = Exchange(queue, type="topic")
    for _, message in _fetch(connection, queue, limit):
        headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
        producer.publish(
            message.body,
            exchange=exchange,
            routing_key=queue,
            headers=headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            delivery_mode=2,
            retry=True,
        )
        message.ack()
        moved += 1
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="screenshots-deadletters", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["list", "requeue"])
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT)
    parser.add_argument("--json", action="store_true", help="one JSON object per dead letter")
    args = parser.parse_args(argv)
    settings = load_settings()
    url = str(settings.broker_url) if settings.broker_url else "amqp://guest:guest@127.0.0.1//"
    try:
        options = {"confirm_publish": True}
        with Connection(url, connect_timeout=10, transport_options=options) as conn:
            conn.ensure_connection(max_retries=3)
            if args.command == "requeue":
                moved = requeue_dead_letters(conn, settings.queue, args.limit)
                print(f"requeued {moved} messages from {dead_letter_queue_name(settings.queue)}")
                return 0
            letters = list_dead_letters(conn, settings.queue, args.limit)
    except Exception as exc:  # noqa: BLE001 - one clear line
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for letter in letters:
        if args.json:
            print(json.dumps(letter.__dict__))
        else:
            urls = ", ".join(letter.urls[:3]) + (" …" if len(letter.urls) > 3 else "")
            print(
                f"{letter.task_id or '-'}  {letter.task or '(no task name)'}  "
                f"reason={letter.reason or '?'}  {urls or letter.body_preview[:60]!r}"
            )
    where = dead_letter_queue_name(settings.queue)
    print(f"{len(letters)} dead letters in {where}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
