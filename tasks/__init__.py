"""The Celery application and its tasks: ``celery -A tasks worker`` starts a worker.

Tasks are thin: they decode the message and call
:class:`screenshots.pipeline.screenshot.Pipeline`, where
the logic lives and is tested without a worker.
"""

from tasks import capture  # noqa: F401  (registers the tasks)
from tasks.celery import app

__all__ = ["app"]
