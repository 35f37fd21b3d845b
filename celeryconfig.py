"""Every Celery setting of the service, in one place.

Loaded by ``tasks`` (the worker) and by the dispatcher with ``app.config_from_object``. Values
that differ between deployments come from the environment through :mod:`screenshots.core.settings`;
the rest
are fixed here, each with the reason. See ``shared/research/celery-reliability.md`` for the
evidence behind the delivery settings.
"""

from __future__ import annotations

from kombu import Exchange, Queue

from screenshots.core.settings import load_settings
from screenshots.delivery.topology import on_blocked, on_unblocked

_settings = load_settings()

#: Default broker for a worker started with no ``CELERY_BROKER_URL``: the local RabbitMQ.
LOCAL_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
#: Default result backend for a worker started with no ``CELERY_RESULT_BACKEND``.
LOCAL_BACKEND = "redis://127.0.0.1:6379/0"

broker_url = str(_settings.broker_url) if _settings.broker_url else LOCAL_BROKER
result_backend = str(_settings.result_backend) if _settings.result_backend else LOCAL_BACKEND

# -- publishing: never lose a message silently -------------------------------------------
#: Publisher confirms: a publish returns only once RabbitMQ has the message (celery#5410).
#: on_blocked/on_unblocked (py-amqp's connection callbacks): a RabbitMQ resource alarm (low
#: disk, memory) blocks every publisher, and a worker starting then waited, never ready, in
#: silence; now its log says why (screenshots/delivery/topology.py).
broker_transport_options = {
    "confirm_publish": True,
    "on_blocked": on_blocked,
    "on_unblocked": on_unblocked,
}
task_publish_retry = True
task_publish_retry_policy = {
    "max_retries": 10,
    "interval_start": 0.5,
    "interval_step": 1.0,
    "interval_max": 5.0,
}

# -- connections -------------------------------------------------------------------------
broker_connection_retry_on_startup = True
#: Keep retrying the broker forever; an orchestrator restarts a worker that must give up.
broker_connection_max_retries = None
#: A channel error (e.g. consumer_timeout) reconnects instead of killing the worker.
broker_channel_error_retry = True
broker_heartbeat = 30
#: Each node's control queue (``<node>.celery.pidbox``: ping, inspect) is shared, not
#: exclusive (Celery 5.5+'s default). Exclusive, a worker whose node name is already connected
#: never becomes ready: it retries RESOURCE_LOCKED forever. That is a second
#: ``celery -A tasks worker`` on the same host (both ``celery@<host>``), or a worker restarted
#: while the broker still holds its dead predecessor's connection (until the heartbeat times
#: out). Shared, it starts and Celery warns that the name is in use, as before 5.5. Durable (and
#: deleted 10 s after its last consumer, ``control_queue_expires``): RabbitMQ 4 deprecates
#: transient queues that are not exclusive.
control_queue_exclusive = False
control_queue_durable = True
#: A running task whose ack can no longer reach the broker is cancelled on reconnect: it has
#: been requeued and will run again elsewhere (celery#6654).
worker_cancel_long_running_tasks_on_connection_loss = True

# -- the work queue: durable, replicated, topic exchange (needed for countdowns) -----------
task_default_queue = _settings.queue
task_default_exchange = _settings.queue
task_default_exchange_type = "topic"
task_default_routing_key = _settings.queue
task_default_queue_type = "quorum"
task_queues = [
    Queue(
        _settings.queue,
        Exchange(_settings.queue, type="topic"),
        routing_key=_settings.queue,
        queue_arguments={"x-queue-type": "quorum"},
    )
]
task_create_missing_queues = False

# -- delivery: at least once ---------------------------------------------------------------
#: Ack after the task returns, so a worker that dies mid-capture gets the URL redelivered.
task_acks_late = True
#: ...including when the pool process is killed (SIGKILL, OOM). Bounded by the quorum
#: queue's delivery-limit policy (see README).
task_reject_on_worker_lost = True
#: One message per process at a time: a slow page never holds others hostage.
worker_prefetch_multiplier = 1

# -- time limits, far below RabbitMQ's 30-minute consumer_timeout ---------------------------
task_time_limit = _settings.task_time_limit
task_soft_time_limit = max(5, _settings.task_time_limit - 30)

#: The task modules a worker imports when it starts (before its pool forks). ``tasks`` itself
#: only holds the app, so what publishes tasks (the dispatcher, the API) does not import the
#: worker's capture pipeline: that was 120 ms (numpy, Pillow, imagehash) of the dispatcher's
#: start, spent before its first URL was published (``python -X importtime dispatcher.py``).
imports = ("tasks.capture",)

#: Dead-letter undecodable messages instead of dropping them (see tasks/consumer.py).
worker_consumer = "tasks.consumer:DeadLetteringConsumer"

# -- worker hygiene -------------------------------------------------------------------------
#: Chromium memory is bounded by the engine's own recycling; this bounds the Python side.
worker_max_memory_per_child = 1_000_000  # KiB
worker_proc_alive_timeout = 30.0

# -- results: small rows in Redis, collected and deleted by the dispatcher -----------------
result_expires = 7 * 24 * 3600
result_extended = False
result_backend_always_retry = True
result_backend_max_retries = 20
redis_socket_timeout = 30
redis_socket_connect_timeout = 10
redis_socket_keepalive = True
redis_retry_on_timeout = True
redis_backend_health_check_interval = 30

# -- serialisation and monitoring -----------------------------------------------------------
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
#: Task events for Flower's live dashboard.
worker_send_task_events = True
task_send_sent_event = False
#: Report the STARTED state, so the API can tell "running" from "queued".
task_track_started = True
event_queue_ttl = 5.0
event_queue_expires = 60.0
