#!/bin/sh
# The image's HEALTHCHECK: one image runs every process type, so what "healthy" means depends
# on the command PID 1 (tini) runs. Exit 0 when healthy, 1 when not.
#
# - a Celery worker answers a ping sent through the broker to its own node name (the
#   Procfile's --hostname=${HONCHO_PROCESS_NAME:-celery}@%h: honcho's process name, else Celery's default
#   celery@%h): it is connected and its consumer loop turns, not merely alive;
# - the API answers GET /healthz; the worker-metrics exporter answers GET /metrics;
# - Flower accepts a connection on its port (its pages need the basic-auth password);
# - anything else (the dispatcher, a one-shot command) is healthy while it runs.
set -eu

command_line=$(tr '\0' ' ' < /proc/1/cmdline)

http_ok() {
    python - "$1" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as answer:
    sys.exit(0 if answer.status == 200 else 1)
PY
}

port_open() {
    python - "$1" <<'PY'
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10).close()
PY
}

case "$command_line" in
    *"celery -A tasks worker"*)
        case "$command_line" in
            *'--hostname=${HONCHO_PROCESS_NAME:-celery}@%h'*) node="${HONCHO_PROCESS_NAME:-celery}" ;;
            *) node=celery ;;
        esac
        exec celery -A tasks inspect ping --timeout 10 --destination "$node@$(hostname)" > /dev/null ;;
    *"celery -A tasks flower"*)
        port_open "${FLOWER_PORT:-5555}" ;;
    *uvicorn*)
        http_ok "http://127.0.0.1:${PORT:-8000}/healthz" ;;
    *screenshots-worker-metrics*)
        http_ok "http://127.0.0.1:${WORKER_METRICS_PORT:-9808}/metrics" ;;
    *)
        exit 0 ;;
esac
