"""Real RabbitMQ and Redis for integration tests: a private vhost and a private Redis db.

Nothing here starts RabbitMQ or Redis: the machine (and ``.ci/run``) does. A service that does
not answer is a test *failure* with the command that starts it, never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

RABBIT_HOST = os.environ.get("TEST_RABBITMQ_HOST", "127.0.0.1")
RABBIT_PORT = int(os.environ.get("TEST_RABBITMQ_PORT", "5672"))
REDIS_HOST = os.environ.get("TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("TEST_REDIS_PORT", "6379"))
#: Redis databases the tests may use (flushed before use); others are left alone.
TEST_REDIS_DBS = range(10, 16)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def rabbitmqctl(*args: str) -> str:
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        pytest.fail("rabbitmqctl not found: the integration tests need a local RabbitMQ")
    done = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        pytest.fail(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


#: The free-disk limit (bytes, more than any disk) a test sets to raise RabbitMQ's disk alarm.
ALARM_DISK_LIMIT = "1000000000000000"
#: RabbitMQ's default free-disk limit (bytes), put back when a killed test left the one above.
DEFAULT_DISK_LIMIT = "50000000"


def no_resource_alarm(timeout: float = 15.0) -> None:
    """Fail unless RabbitMQ is free of resource alarms, first undoing the disk alarm a test
    stopped mid-way (a killed run) left behind: every worker would wait before it is ready."""
    limit = rabbitmqctl("eval", "rabbit_disk_monitor:get_disk_free_limit().").strip()
    if limit == ALARM_DISK_LIMIT:
        rabbitmqctl("set_disk_free_limit", DEFAULT_DISK_LIMIT)
    deadline = time.monotonic() + timeout
    while (alarms := rabbitmqctl("eval", "rabbit_alarm:get_alarms().").strip()) != "[]":
        if time.monotonic() >= deadline:
            pytest.fail(
                f"RabbitMQ has a resource alarm ({alarms}): it takes no message until it clears "
                "(free disk above `disk_free_limit`, memory under the watermark: `rabbitmqctl "
                "status`, under Alarms)"
            )
        time.sleep(0.5)


@dataclass
class Broker:
    vhost: str

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/{self.vhost}"


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[Broker]:
    """A fresh RabbitMQ vhost for this test session, deleted afterwards."""
    if not _reachable(RABBIT_HOST, RABBIT_PORT):
        pytest.fail(
            f"RabbitMQ is not answering on {RABBIT_HOST}:{RABBIT_PORT}: "
            "start it with `rabbitmq-server -detached`"
        )
    no_resource_alarm()
    vhost = f"screenshots-test-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield Broker(vhost)
    rabbitmqctl("delete_vhost", vhost)


@dataclass
class RedisDb:
    db: int

    @property
    def url(self) -> str:
        return f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.db}"


@pytest.fixture(scope="session")
def redis_db() -> Iterator[RedisDb]:
    """An emptied Redis database reserved for this session (one of 10-15)."""
    import redis

    if not _reachable(REDIS_HOST, REDIS_PORT):
        pytest.fail(
            f"Redis is not answering on {REDIS_HOST}:{REDIS_PORT}: start it with "
            '`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" '
            "--appendonly no`"
        )
    for db in TEST_REDIS_DBS:
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        # Claim the db atomically so parallel sessions on one machine do not collide.
        if client.set("screenshots-test-lock", str(os.getpid()), nx=True, ex=3600):
            client.flushdb()
            client.set("screenshots-test-lock", str(os.getpid()), ex=3600)
            yield RedisDb(db)
            client.flushdb()
            return
    pytest.fail("every test Redis database (10-15) is claimed; flush the stale ones")
