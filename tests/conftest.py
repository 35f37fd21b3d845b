"""Fixtures shared by the whole suite; each lives in a module of ``tests/support``."""

import os

from support.echo_server import echo_server  # noqa: F401
from support.egress_servers import TEST_SITE_ALLOW
from support.seaweedfs import s3_bucket, seaweedfs  # noqa: F401
from support.services import rabbitmq, redis_db  # noqa: F401
from support.site import site  # noqa: F401

# The test site runs on 127.0.0.1, which the egress policy blocks (loopback): exempt it for the
# tests that capture it through load_settings(). The egress tests build their own Settings.
os.environ.setdefault("SCREENSHOT_EGRESS_ALLOW", TEST_SITE_ALLOW)


def pytest_sessionfinish(session: object, exitstatus: int) -> None:
    """Leave no browser behind: fault tests SIGKILL workers, whose pool processes then cannot
    close their browsers (their ChromeDriver dies, Chromium does not)."""
    from engines import chromium

    killed = chromium.reap_orphans()
    if killed:
        print(f"\nkilled {killed} orphaned browser processes left by killed workers")
