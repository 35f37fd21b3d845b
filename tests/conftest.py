"""Fixtures shared by the whole suite; each lives in a module of ``tests/support``."""

from support.seaweedfs import s3_bucket, seaweedfs  # noqa: F401
from support.services import rabbitmq, redis_db  # noqa: F401
from support.site import site  # noqa: F401
