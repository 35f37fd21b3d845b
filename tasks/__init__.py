"""The Celery application: ``celery -A tasks worker`` starts a worker.

Tasks are thin: they decode the message and call
:class:`screenshots.pipeline.screenshot.Pipeline`, where
the logic lives and is tested without a worker. Their module, :mod:`tasks.capture`, is
imported by the worker itself (``imports`` in ``celeryconfig.py``), not here: what only
publishes tasks (the dispatcher, the API) needs the app and the task's name
(:data:`tasks.celery.CAPTURE_TASK`), not the capture pipeline.
"""

from tasks.celery import app

__all__ = ["app"]
