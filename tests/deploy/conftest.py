"""The deployment tests run only under ``make test-deploy`` (``SCREENSHOTS_TEST_DEPLOY=1``).

They need root, podman, network namespaces and minutes of a machine; ``make test`` leaves this
folder out (nothing here is collected without the variable).
"""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("SCREENSHOTS_TEST_DEPLOY") == "1" else ["test_*.py"]
