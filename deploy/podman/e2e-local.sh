#!/bin/sh
# End to end from the image: two worker containers (the image's default command) capture the
# demo pages with this machine's RabbitMQ, Redis and a SeaweedFS S3 gateway; the dispatcher
# runs on this machine (from .venv) and every link of its manifest must download a PNG. Then
# the API in a container of the same image (`uvicorn api:app`, broker mode): a
# POST /v1/screenshots captured by those workers, whose link downloads a PNG.
#
#   deploy/podman/e2e-local.sh [IMAGE]     # default: what build-image.sh builds
#
# Everything it starts is its own: a RabbitMQ vhost (created and deleted with rabbitmqctl), a
# Redis database number (E2E_REDIS_DB, default 6), a SeaweedFS in a temporary directory, a
# page server on a free port. The browsers reach the page server on 127.0.0.1 through
# SCREENSHOT_EGRESS_ALLOW (the egress policy refuses loopback otherwise).
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
IMAGE=${1:-$("$ROOT/deploy/podman/build-image.sh" | tail -1)}
TAG=e2e$$
VHOST=screenshots-$TAG
WORK=$(mktemp -d /tmp/screenshots-e2e.XXXXXX)
chmod 755 "$WORK"
LOG_NAME=e2e-local
. "$ROOT/deploy/podman/lib.sh"

cleanup() {
    for n in 1 2; do $RUN stop --time 120 "$TAG-worker$n" > /dev/null 2>&1 || true; done
    for name in "$TAG-worker1" "$TAG-worker2" "$TAG-api"; do
        $RUN rm -f --time 10 "$name" > /dev/null 2>&1 || true
    done
    stop_background
    delete_vhost "$VHOST"
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

add_vhost "$VHOST"

# S3: a SeaweedFS of this run, with a `screenshots` bucket; it prints `export NAME=VALUE`.
"$PY" -m screenshots.dev.devservers.seaweedfs "$WORK/weed" > "$WORK/weed.env" 2> "$WORK/weed.log" &
PIDS="$PIDS $!"
use_seaweedfs
export CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672/$VHOST"
export CELERY_RESULT_BACKEND="redis://127.0.0.1:6379/${E2E_REDIS_DB:-6}"

# The pages: the demo's, on a free port of loopback.
port=$(free_port)
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

check_manifest "$WORK/run1/results.jsonl" "$WORK/urls.txt"
for n in 1 2; do
    log "worker$n ran $(tasks_of "$TAG-worker$n") tasks"
done

# -- the API, in a container of the same image, in broker mode ---------------------------------
api_port=$(free_port)
api_key="e2e-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')"
# shellcheck disable=SC2086 # $LIMITS is a list of options
$RUN run -d --no-healthcheck --name "$TAG-api" $LIMITS --network host \
    -e CELERY_BROKER_URL -e CELERY_RESULT_BACKEND -e AWS_ENDPOINT_URL_S3 \
    -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_DEFAULT_REGION -e SCREENSHOT_BUCKET \
    -e SCREENSHOT_EGRESS_ALLOW=127.0.0.1 -e SCREENSHOT_API_KEYS="e2e:$api_key" \
    "$IMAGE" uvicorn api:app --host 127.0.0.1 --port "$api_port" > /dev/null
"$PY" - "http://127.0.0.1:$api_port" "$api_key" "$(head -1 "$WORK/urls.txt")" <<'PY' || {
import json, sys, time, urllib.error, urllib.request
base, key, url = sys.argv[1:]
deadline = time.monotonic() + 120
while True:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=5) as answer:
            break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("e2e-local: the API container did not answer /healthz within 120 s")
        time.sleep(1)
request = urllib.request.Request(
    base + "/v1/screenshots",
    data=json.dumps({"url": url, "wait": 60}).encode(),
    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
)
with urllib.request.urlopen(request, timeout=90) as answer:
    row = json.load(answer)
    assert answer.status == 200, (answer.status, row)
assert row["status"] == "ok", row
with urllib.request.urlopen(row["link"], timeout=30) as image:
    assert image.read(8) == b"\x89PNG\r\n\x1a\n", row["link"]
print(f"e2e-local: the API container answered {url} with an ok row whose link downloads a PNG",
      file=sys.stderr)
PY
    log "FAILED: the API in a container; its log:"
    $RUN logs "$TAG-api" 2>&1 | tail -30 >&2
    exit 1
}
