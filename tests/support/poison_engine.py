"""A stub engine plug-in that kills its own process on a chosen host, like an OOM kill would.

Loaded by workers through ``SCREENSHOT_ENGINES=poison=support.poison_engine:PoisonEngine``
(the engine plug-in mechanism), for the poison-message fault test.
"""

from __future__ import annotations

import os
import signal
from urllib.parse import urlsplit

from engines.base import Capture
from engines.stub import StubEngine
from screenshots.core.options import CaptureOptions

#: Capturing a URL on this host kills the worker process.
POISON_HOST = "kill-the-worker.test"


class PoisonEngine(StubEngine):
    name = "poison"

    def capture(self, url: str, options: CaptureOptions) -> Capture:
        if urlsplit(url).hostname == POISON_HOST:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().capture(url, options)
