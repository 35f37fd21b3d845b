"""The Celery application, configured from :mod:`celeryconfig`."""

from celery import Celery

#: Name under which tasks are published; the dispatcher sends by this name.
CAPTURE_TASK = "screenshots.capture"

app = Celery("screenshots")
app.config_from_object("celeryconfig")
