#!/bin/sh
# End to end from the image: two worker containers (the image's default command) capture the
# demo pages with this machine's RabbitMQ, Redis and a SeaweedFS S3 gateway; the dispatcher
# runs on this machine (from .venv) and every link of its manifest must download a PNG.
#
#   deploy/podman/e2e-local.sh [IMAGE]     # default: what build-image.sh builds
#
# Everything it starts is its own: a RabbitMQ vhost (created and deleted with rabbitmqctl), a
# Redis database number (E2E_REDIS_DB, default 13), a SeaweedFS in a temporary directory, a
# page server on a free port. The browsers reach the page server on 127.0.0.1 through
# SCREENSHOT_EGRESS_ALLOW (the egress policy refuses loopback otherwise).
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
IMAGE=${1:-$("$ROOT/deploy/podman/build-image.sh" | tail -1)}
PY="$ROOT/.venv/bin/python"
TAG=e2e$$
VHOST=screenshots-$TAG
WORK=$(mktemp -d /tmp/screenshots-e2e.XXXXXX)
chmod 755 "$WORK"
RUN="nice -n 19 ionice -c3 podman --runtime runc"
# --no-healthcheck: podman runs HEALTHCHECKs from systemd timers, and there is no systemd
# here; these scripts run the check themselves when they need it.
LIMITS="--ulimit nofile=$(ulimit -Hn):$(ulimit -Hn) --ulimit nproc=4096:4096"
PIDS=""

log() { echo "e2e-local: $*" >&2; }

cleanup() {
    for n in 1 2; do $RUN stop --time 120 "$TAG-worker$n" > /dev/null 2>&1 || true; done
    for n in 1 2; do $RUN rm -f "$TAG-worker$n" > /dev/null 2>&1 || true; done
    for pid in $PIDS; do kill "$pid" 2> /dev/null || true; done
    for pid in $PIDS; do wait "$pid" 2> /dev/null || true; done
    rabbitmqctl -q delete_vhost "$VHOST" > /dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

rabbitmqctl -q add_vhost "$VHOST"
rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*'

# S3: a SeaweedFS of this run, with a `screenshots` bucket; it prints `export NAME=VALUE`.
"$PY" -m screenshots.dev.devservers.seaweedfs "$WORK/weed" > "$WORK/weed.env" 2> "$WORK/weed.log" &
PIDS="$PIDS $!"
deadline=$(( $(date +%s) + 120 ))
until grep -q SCREENSHOT_BUCKET "$WORK/weed.env"; do
    [ "$(date +%s)" -lt "$deadline" ] || { log "SeaweedFS did not start"; cat "$WORK/weed.log" >&2; exit 1; }
    sleep 1
done
. "$WORK/weed.env"
export CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672/$VHOST"
export CELERY_RESULT_BACKEND="redis://127.0.0.1:6379/${E2E_REDIS_DB:-13}"

# The pages: the demo's, on a free port of loopback.
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PY" -m http.server --bind 127.0.0.1 --directory "$ROOT/screenshots/dev/demo/pages" "$port" \
    > "$WORK/pages.log" 2>&1 &
PIDS="$PIDS $!"
for page in "$ROOT"/screenshots/dev/demo/pages/*.html; do
    echo "http://127.0.0.1:$port/$(basename "$page")"
done > "$WORK/urls.txt"

for n in 1 2; do
    # shellcheck disable=SC2086 # $LIMITS is a list of options
    $RUN run -d --no-healthcheck --name "$TAG-worker$n" $LIMITS --network host \
        -e CELERY_BROKER_URL -e CELERY_RESULT_BACKEND -e AWS_ENDPOINT_URL_S3 \
        -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_DEFAULT_REGION -e SCREENSHOT_BUCKET \
        -e SCREENSHOT_EGRESS_ALLOW=127.0.0.1 -e HONCHO_PROCESS_NAME="$TAG-worker$n" \
        -e WORKER_CONCURRENCY=1 "$IMAGE" > /dev/null
done

start=$(date +%s)
"$PY" "$ROOT/dispatcher.py" "$WORK/urls.txt" --out "$WORK/run1" >&2
log "dispatcher finished in $(( $(date +%s) - start )) s"

"$PY" - "$WORK/run1/results.jsonl" "$WORK/urls.txt" <<'PY'
import json, sys, urllib.request
rows = [json.loads(line) for line in open(sys.argv[1])]
urls = [line.strip() for line in open(sys.argv[2]) if line.strip()]
assert len(rows) == len(urls), f"{len(rows)} rows for {len(urls)} URLs"
for row in rows:
    assert row["status"] == "ok", row
    with urllib.request.urlopen(row["link"], timeout=30) as answer:
        assert answer.read(8) == b"\x89PNG\r\n\x1a\n", row["link"]
print(f"e2e-local: {len(rows)} rows ok, every link downloads a PNG", file=sys.stderr)
PY
for n in 1 2; do
    $RUN logs "$TAG-worker$n" 2>&1 | grep -c "succeeded in" | sed "s/^/e2e-local: worker$n ran /; s/$/ tasks/" >&2
done
