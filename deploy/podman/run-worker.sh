#!/bin/sh
# Smoke test of the image: a worker container, started with the image's default command (the
# Procfile's worker line), connects to this machine's RabbitMQ and Redis and answers a ping
# through the broker (the image's own health check); then SIGTERM stops it warm (exit 0).
#
#   deploy/podman/run-worker.sh [IMAGE]     # default: what build-image.sh builds
#
# It uses a RabbitMQ vhost of its own (created and deleted here with rabbitmqctl), so it never
# takes another job's tasks or shows up in another job's `celery inspect`. Prints the cold
# start (container start to first answered ping) and the stop time.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
IMAGE=${1:-$("$ROOT/deploy/podman/build-image.sh" | tail -1)}
NAME=screenshots-smoke-$$
VHOST=screenshots-smoke-$$
LOG_NAME=run-worker
. "$ROOT/deploy/podman/lib.sh"

cleanup() {
    $RUN rm -f "$NAME" > /dev/null 2>&1 || true
    delete_vhost "$VHOST"
}
trap cleanup EXIT INT TERM

add_vhost "$VHOST"

start=$(date +%s.%N)
# shellcheck disable=SC2086 # $LIMITS is a list of options
$RUN run -d --no-healthcheck --name "$NAME" $LIMITS --network host \
    -e CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672/$VHOST" \
    -e CELERY_RESULT_BACKEND="redis://127.0.0.1:6379/5" \
    -e SCREENSHOT_BUCKET=smoke -e AWS_ENDPOINT_URL_S3=http://127.0.0.1:9 \
    -e AWS_ACCESS_KEY_ID=smoke -e AWS_SECRET_ACCESS_KEY=smoke-secret \
    -e HONCHO_PROCESS_NAME="smoke$$" \
    "$IMAGE" > /dev/null

deadline=$(( $(date +%s) + 180 ))
until $RUN exec "$NAME" screenshots-healthcheck > /dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ] || ! $RUN container exists "$NAME" \
        || [ "$($RUN inspect --format '{{.State.Running}}' "$NAME")" != true ]; then
        log "the worker did not answer within 180 s; its log:"
        $RUN logs "$NAME" >&2 || true
        exit 1
    fi
    sleep 1
done
ready=$(date +%s.%N)
log "worker answered a ping through the broker $(awk "BEGIN { print $ready - $start }") s after start"

# podman stop sends SIGTERM to PID 1 (tini), which forwards it to celery: a warm shutdown.
$RUN stop --time 120 "$NAME" > /dev/null
stopped=$(date +%s.%N)
status=$($RUN inspect --format '{{.State.ExitCode}}' "$NAME")
log "stopped in $(awk "BEGIN { print $stopped - $ready }") s with exit status $status"
$RUN logs "$NAME" 2>&1 | tail -n 5 >&2
[ "$status" = 0 ]
