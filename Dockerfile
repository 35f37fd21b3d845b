# One image for every process of the service: the Celery worker (the default command), the
# dispatcher, the HTTP API, Flower and the worker-metrics exporter. See deploy/README.md.
#
#   docker build -t screenshots .
#   docker run IMAGE                                             # a worker, as the Procfile's
#   docker run IMAGE python dispatcher.py urls.txt --out /data/run1
#   docker run IMAGE uvicorn api:app --host 0.0.0.0
#   docker run IMAGE celery -A tasks flower
#
# Everything comes from Debian bookworm and the lock file: Debian's Chromium and ChromeDriver,
# the fonts `make install` installs, Python 3.11, and every Python dependency at the version
# locked in requirements.txt. Nothing downloads a browser or a driver at build or run time.

# -- build: the virtual environment, in a stage of its own (no pip or sources in the image) ---
FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# Dependencies first, from the project's metadata alone, so that a change of the code reuses
# this (slow) layer. requirements.txt locks every extra, the test tools included: it is used
# as constraints (-c), so the image gets the runtime, the API and the Playwright engine at
# their locked versions and none of the test tools (pytest, mypy, SeaweedFS...). The README
# (pyproject's `readme`, only the package's long description) is an empty file: an edit of the
# README rebuilds nothing.
COPY pyproject.toml requirements.txt ./
RUN touch README.md && mkdir -p screenshots && touch screenshots/__init__.py \
 && pip install -c requirements.txt '.[api,playwright]' \
 && pip uninstall -y screenshots
COPY screenshots ./screenshots
COPY tasks ./tasks
COPY engines ./engines
COPY dispatcher.py celeryconfig.py api.py ./
RUN pip install --no-deps . \
 && pip check

# -- the image --------------------------------------------------------------------------------
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
# Chromium, ChromeDriver and the fonts are the Makefile's APT_PKGS (without python3.11-doc,
# the benchmark's pages); tini is the init (below).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      chromium chromium-driver chromium-headless-shell \
      fonts-dejavu-core fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji \
      python3.11 tini ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
# A non-root user: Chromium keeps its sandbox on (the engine adds --no-sandbox only as root).
RUN groupadd --gid 10001 screenshots \
 && useradd --uid 10001 --gid 10001 --home-dir /home/screenshots --create-home \
      --shell /usr/sbin/nologin screenshots \
 && install -d -o screenshots -g screenshots /data
COPY --from=build /opt/venv /opt/venv
COPY deploy/docker/entrypoint.sh /usr/local/bin/screenshots-entrypoint
COPY deploy/docker/healthcheck.sh /usr/local/bin/screenshots-healthcheck
COPY deploy/docker/stack_setup.py /usr/local/bin/screenshots-stack-setup
# XDG_CACHE_HOME: font caches and the like go to /tmp, so the root file system can be
# read-only (Kubernetes' readOnlyRootFilesystem; /tmp is then a volume). TMPDIR (made by the
# entry point): the browsers' profiles live under $TMPDIR/screenshots-chromium, and a worker or
# test running on the same machine outside any container sees the container's processes (one
# kernel) but not their owners (another PID namespace), so its orphan reaping would take the
# container's browsers for orphans and kill them. A directory of the container's own keeps
# them out of that reach (measured: the multi-host test's browsers were being killed).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    XDG_CACHE_HOME=/tmp/.cache \
    TMPDIR=/tmp/container
USER 10001:10001
WORKDIR /data

# tini is PID 1 and forwards SIGTERM to the command (without -g: only to it), which the
# worker's line `exec`s: the Celery main process gets SIGTERM and shuts down warm, its pool
# processes (in process groups of their own) finish their captures; tini also reaps the
# orphaned Chromium processes the worker kills (README, "Shutting workers down"). The entry
# point script `exec`s the command as given (and lets `python dispatcher.py` work in /data).
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/screenshots-entrypoint"]
# The Procfile's worker line, word for word (tests/test_deploy_manifests.py checks it); the
# settings come from the same environment variables.
CMD ["/bin/sh", "-c", "exec celery -A tasks worker --loglevel=INFO --concurrency=${WORKER_CONCURRENCY:-1} --hostname=${HONCHO_PROCESS_NAME:-celery}@%h --max-tasks-per-child=${WORKER_MAX_TASKS_PER_CHILD:-1000}"]
# What it checks depends on the command (a worker answers a ping through the broker, the API
# its /healthz...): see deploy/docker/healthcheck.sh.
HEALTHCHECK --interval=60s --timeout=20s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/screenshots-healthcheck"]
