"""The screenshot service as a library; its folders are its architecture.

- :mod:`screenshots.core`: what every layer shares: options, URLs, storage keys, errors,
  settings, a shot and its result row;
- :mod:`screenshots.pipeline`: one URL end to end: capture, store, link, row (and the reuse of
  a recent screenshot);
- :mod:`screenshots.storage`: where images go (S3, a directory, memory);
- :mod:`screenshots.egress`: what a captured page may reach, and the proxy that enforces it;
- :mod:`screenshots.batch`: the batch front end: input files, the manifest, the report, the
  progress bar and the dispatcher's command line;
- :mod:`screenshots.delivery`: runners (embedded, or through RabbitMQ to Celery workers), the
  row store, the broker's topology and dead letters;
- :mod:`screenshots.api`: the HTTP API (``uvicorn api:app``);
- :mod:`screenshots.dev`: tooling for developers (benchmarks, the demo, local servers), not
  imported by the product.

The design card's entry points stay at the repository's root and are installed with the
package: ``dispatcher.py``, ``celeryconfig.py``, ``tasks/`` (the Celery app), ``engines/`` (the
pluggable capture engines) and ``api.py`` (``uvicorn api:app``).
"""

import os

# numpy's OpenBLAS starts a thread per core as it loads, and they spin a while waiting for
# work: 0.2 s of CPU in every process that imports numpy, on 2 cores (``python -c "import
# numpy, scipy.sparse.csgraph"``: 0.42 s user, 0.22 with one thread), in each dispatcher run
# among them. Nothing here multiplies matrices (hashes, look-alike groups and pixel diffs are
# element-wise), so one thread loses nothing. A value the user set is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
