"""RabbitMQ topology: the work queue's dead-letter exchange, its queues, and the policy.

The work queue is a quorum queue (declared by Celery from :mod:`celeryconfig`). A *policy*,
not queue arguments (changing arguments of an existing queue fails with
``PRECONDITION_FAILED``), gives it:

- ``delivery-limit``: a message redelivered more than this many times (its worker died each
  time: OOM, segfault, hard time limit) is dead-lettered instead of looping forever;
- ``dead-letter-exchange`` with the ``at-least-once`` strategy (needs ``overflow:
  reject-publish``): dead-lettering itself never drops a message.

The dead-letter exchange is a fanout: every dead letter lands in ``<queue>.dlq`` (for
operators: ``screenshots-deadletters list|requeue``) and in a queue per dispatcher job, so a
running (or resumed) dispatcher learns which of its URLs died and records them as errors.

``screenshots-broker setup`` declares all of this; workers and the dispatcher declare the
exchange and the queues themselves too, so only the policy needs ``rabbitmqctl`` (or the
management API) once per vhost.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from typing import Any

from kombu import Connection, Exchange, Queue

from screenshots.core.settings import Settings, load_settings, redact_url

#: Deliveries of one message before it is dead-lettered (quorum queue ``delivery-limit``).
DEFAULT_DELIVERY_LIMIT = 5
#: Seconds an idle per-job dead-letter queue is kept before RabbitMQ deletes it (7 days).
JOB_DEAD_QUEUE_EXPIRES = 7 * 24 * 3600


def dead_letter_exchange_name(queue: str) -> str:
    return f"{queue}.dlx"


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}.dlq"


def job_dead_queue_name(queue: str, job_id: str) -> str:
    return f"{queue}.dead.{job_id}"


def dead_letter_exchange(queue: str) -> Exchange:
    return Exchange(dead_letter_exchange_name(queue), type="fanout", durable=True)


def dead_letter_queue(queue: str) -> Queue:
    """The operators' dead-letter queue: every dead letter, kept until handled."""
    return Queue(
        dead_letter_queue_name(queue),
        dead_letter_exchange(queue),
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


def job_dead_queue(queue: str, job_id: str) -> Queue:
    """A job's copy of the dead letters; deleted by RabbitMQ after a week unused."""
    return Queue(
        job_dead_queue_name(queue, job_id),
        dead_letter_exchange(queue),
        durable=True,
        queue_arguments={"x-expires": JOB_DEAD_QUEUE_EXPIRES * 1000},
    )


def declare_dead_letter_topology(connection: Connection, queue: str) -> None:
    """Declare the dead-letter exchange and the operators' queue (idempotent)."""
    with connection.channel() as channel:
        dead_letter_queue(queue)(channel).declare()


def policy_definition(queue: str, delivery_limit: int = DEFAULT_DELIVERY_LIMIT) -> dict[str, Any]:
    return {
        "delivery-limit": delivery_limit,
        "dead-letter-exchange": dead_letter_exchange_name(queue),
        "dead-letter-strategy": "at-least-once",
        "overflow": "reject-publish",
    }


def policy_command(
    queue: str, vhost: str = "/", delivery_limit: int = DEFAULT_DELIVERY_LIMIT
) -> list[str]:
    """The ``rabbitmqctl set_policy`` command that applies the work queue's policy."""
    return [
        "rabbitmqctl", "set_policy", "-p", vhost, f"{queue}-delivery",
        f"^{queue}$", json.dumps(policy_definition(queue, delivery_limit)),
        "--apply-to", "queues", "--priority", "10",
    ]


def vhost_of(broker_url: str) -> str:
    """The vhost named by an AMQP URL (``/`` when the path is empty or ``//``)."""
    path = broker_url.split("://", 1)[-1].split("/", 1)
    if len(path) < 2 or path[1] in ("", "/"):
        return "/"
    from urllib.parse import unquote

    return unquote(path[1].split("?", 1)[0])


def setup(settings: Settings, delivery_limit: int = DEFAULT_DELIVERY_LIMIT) -> str:
    """Declare the topology and apply the policy; return what was done, for the user."""
    url = str(settings.broker_url) if settings.broker_url else "amqp://guest:guest@127.0.0.1//"
    with Connection(url, connect_timeout=10) as connection:
        connection.ensure_connection(max_retries=3)
        declare_dead_letter_topology(connection, settings.queue)
    command = policy_command(settings.queue, vhost_of(url), delivery_limit)
    if shutil.which("rabbitmqctl") is None:
        return (
            f"declared {dead_letter_queue_name(settings.queue)} on {redact_url(url)}; "
            "rabbitmqctl is not on this machine, so run on the RabbitMQ host:\n  "
            + " ".join(_quote(part) for part in command)
        )
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl set_policy failed: {done.stderr.strip()}")
    return (
        f"declared {dead_letter_queue_name(settings.queue)} and set policy "
        f"{settings.queue}-delivery (delivery-limit {delivery_limit}) on {redact_url(url)}"
    )


log = logging.getLogger("screenshots.broker")


def on_blocked(reason: str) -> None:
    """RabbitMQ blocked this connection (``connection.blocked``): a resource alarm (free disk
    under ``disk_free_limit``, memory over its watermark) stops every publisher until it clears.
    A worker starting then never became ready and said nothing (it waits on its first
    publish); now it says why in its log. Set as ``on_blocked`` in ``broker_transport_options``
    (py-amqp calls it; its ``reason`` is generic)."""
    log.error(
        "the broker blocks this connection (%s): RabbitMQ has a resource alarm (low disk "
        "space or memory: `rabbitmqctl status`, under Alarms) and takes no message until it "
        "clears; waiting", reason,
    )


def on_unblocked() -> None:
    """The alarm of :func:`on_blocked` cleared."""
    log.warning("the broker unblocked this connection: its resource alarm cleared")


def broker_refusal(url: str, timeout: float = 4.0) -> str | None:
    """Why the broker at ``url`` refuses us for good, if it does: a vhost it does not have
    (``530 NOT_ALLOWED``) or credentials or permissions it rejects (``403 ACCESS_REFUSED``).

    A worker retries its broker connection for ever (``broker_connection_max_retries``), which
    is right while the broker is down or restarting, but these answers do not change by
    waiting: the worker looped on them, logging a traceback a second and never becoming
    ready, until something stopped it. ``None`` when the broker lets us in, and also when it
    cannot be reached at all (then retrying is the right thing).
    """
    from amqp.exceptions import AccessRefused, NotAllowed  # type: ignore[import-untyped]

    try:
        with Connection(url, connect_timeout=timeout) as connection:
            connection.connect()
    except (AccessRefused, NotAllowed) as exc:
        return f"the broker at {redact_url(url)} refuses this worker: {exc}"
    except Exception:  # noqa: BLE001 - unreachable, or anything else: Celery retries as before
        return None
    return None


def _quote(part: str) -> str:
    return f"'{part}'" if any(c in part for c in " {}\"^$") else part


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="screenshots-broker", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    setup_cmd = sub.add_parser("setup", help="declare dead-letter topology and apply the policy")
    setup_cmd.add_argument("--delivery-limit", type=int, default=DEFAULT_DELIVERY_LIMIT)
    args = parser.parse_args(argv)
    try:
        print(setup(load_settings(), args.delivery_limit))
    except Exception as exc:  # noqa: BLE001 - one clear line for any failure
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
