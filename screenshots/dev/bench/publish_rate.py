"""How fast the dispatcher alone publishes URLs into RabbitMQ, with publisher confirms.

Run in its own process by :mod:`screenshots.dev.bench.delivery` (the Celery configuration is read
from the
environment at import): ``python -m screenshots.dev.bench.publish_rate URLS BATCH`` prints one JSON
object.
No worker consumes; the queue is purged afterwards.
"""

from __future__ import annotations

import json
import sys
import time
import uuid


def main(argv: list[str]) -> int:
    count, batch_size = int(argv[0]), int(argv[1])
    from kombu import Connection

    from screenshots.core.options import CaptureOptions
    from screenshots.core.settings import load_settings
    from screenshots.core.shot import Shot
    from screenshots.delivery.distributed import DistributedRunner

    settings = load_settings()
    runner = DistributedRunner(
        settings, str(uuid.uuid4()), "stub", batch_size=batch_size, max_in_flight=count
    )
    with runner.app.connection_for_write() as connection:
        for queue in runner.app.conf.task_queues:
            queue(connection.default_channel).declare()
    options = CaptureOptions()
    shots = (Shot(n, f"http://publish-{n}.example/", options) for n in range(1, count + 1))
    batches, _ = runner._take_batches(shots, 0)
    started = time.perf_counter()
    runner._publish(batches)
    elapsed = time.perf_counter() - started
    with Connection(str(settings.broker_url)) as connection:
        depth = connection.default_channel.queue_declare(settings.queue, passive=True)
        connection.default_channel.queue_purge(settings.queue)
    runner.close()
    print(json.dumps({
        "urls": count,
        "batch_size": batch_size,
        "messages": len(batches),
        "seconds": round(elapsed, 3),
        "urls_per_s": round(count / elapsed, 1),
        "messages_per_s": round(len(batches) / elapsed, 1),
        "queued": depth.message_count,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
