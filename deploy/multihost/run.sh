#!/bin/sh
# Several hosts on one machine (shared/research/multihost.md): network namespaces on a bridge.
# A services host (the bridge's address: RabbitMQ and Redis forwarded to this machine's, a
# SeaweedFS and the pages bound there), two worker hosts running worker containers of the
# image, the dispatcher on a fourth. Every URL must end ok, and every link must open from the
# dispatcher's host: nothing may assume loopback or one host.
#
#   deploy/multihost/run.sh [IMAGE]          # needs root (ip netns, bridges); IMAGE as built
#                                            # by deploy/podman/build-image.sh
#
# Faults (MULTIHOST_FAULTS=1): once rows come in, every process of host 2 is SIGKILLed (its
# container), and the host rejoins later; with MULTIHOST_PARTITION=1, host 1's link is cut for
# 75 s first (host 2 is killed 30 s into it), then restored. Every URL must end with exactly
# one row, ok (no error row), every link must open from the dispatcher's host, and each host
# must run tasks again once back. Names and addresses are this run's own (MULTIHOST_NET,
# default 10.231.14: .1 services, .2 and .3 workers, .4 the dispatcher; Redis database
# MULTIHOST_REDIS_DB, default 7: the test suite flushes 10-15). MULTIHOST_LOGS=DIR keeps both
# workers' logs and the manifest there.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
IMAGE=${1:-$("$ROOT/deploy/podman/build-image.sh" | tail -1)}
NET=${MULTIHOST_NET:-10.231.14}
TAG=mh$$
BRIDGE=br$TAG
VHOST=screenshots-$TAG
WORK=$(mktemp -d /tmp/screenshots-multihost.XXXXXX)
chmod 755 "$WORK"
LOG_NAME=multihost
. "$ROOT/deploy/podman/lib.sh"

cleanup() {
    # The workers' logs outlive the run when MULTIHOST_LOGS names a directory.
    if [ -n "${MULTIHOST_LOGS:-}" ]; then
        mkdir -p "$MULTIHOST_LOGS"
        for h in 1 2; do
            $RUN logs "$TAG-worker$h" > "$MULTIHOST_LOGS/host$h-worker.log" 2>&1 || true
        done
        cp "$WORK/run1/results.jsonl" "$MULTIHOST_LOGS/results.jsonl" 2> /dev/null || true
    fi
    for h in 1 2; do $RUN rm -f --time 10 "$TAG-worker$h" > /dev/null 2>&1 || true; done
    stop_background
    for h in 1 2 3; do ip netns del "$TAG-h$h" 2> /dev/null || true; done
    ip link del "$BRIDGE" 2> /dev/null || true
    delete_vhost "$VHOST"
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# -- the network: a bridge (the services host) and three hosts on it ------------------------
ip link add "$BRIDGE" type bridge
ip addr add "$NET.1/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
for h in 1 2 3; do
    ip netns add "$TAG-h$h"
    ip link add "v$TAG$h" type veth peer name eth0 netns "$TAG-h$h"
    ip link set "v$TAG$h" master "$BRIDGE" up
    ip -n "$TAG-h$h" addr add "$NET.$((h + 1))/24" dev eth0
    ip -n "$TAG-h$h" link set eth0 up
    ip -n "$TAG-h$h" link set lo up
done

# -- the services host --------------------------------------------------------------------------
add_vhost "$VHOST"
# This machine's RabbitMQ and Redis listen on loopback (and guest may connect only from
# there): forwarded from the services host's address.
for port in 5672 6379; do
    socat "TCP-LISTEN:$port,bind=$NET.1,fork,reuseaddr" "TCP:127.0.0.1:$port" &
    PIDS="$PIDS $!"
done
"$PY" - "$WORK/weed" "$NET.1" > "$WORK/weed.env" 2> "$WORK/weed.log" <<'PY' &
import signal, sys
from pathlib import Path
from screenshots.dev.devservers.seaweedfs import start_seaweedfs, stop_seaweedfs
# SIGTERM (the cleanup's kill) must stop weed too: it runs in a session of its own.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server = start_seaweedfs(Path(sys.argv[1]), host=sys.argv[2])
server.client().create_bucket(Bucket="screenshots")
for name, value in server.env("screenshots").items():
    print(f"export {name}={value}", flush=True)
try:
    server.process.wait()
finally:
    stop_seaweedfs(server)
PY
PIDS="$PIDS $!"
use_seaweedfs
export CELERY_BROKER_URL="amqp://guest:guest@$NET.1:5672/$VHOST"
export CELERY_RESULT_BACKEND="redis://$NET.1:6379/${MULTIHOST_REDIS_DB:-7}"

port=$(free_port)
"$PY" -m http.server --bind "$NET.1" --directory "$ROOT/screenshots/dev/demo/pages" "$port" \
    > "$WORK/pages.log" 2>&1 &
PIDS="$PIDS $!"
rounds=5
[ "${MULTIHOST_FAULTS:-0}" != 1 ] || rounds=30
for round in $(seq "$rounds"); do
    for page in "$ROOT"/screenshots/dev/demo/pages/*.html; do
        echo "http://$NET.1:$port/$(basename "$page")?round=$round"
    done
done > "$WORK/urls.txt"

# -- two worker hosts: a worker container each, in the host's namespace -----------------------
for h in 1 2; do
    # shellcheck disable=SC2086 # $LIMITS is a list of options
    $RUN run -d --no-healthcheck --name "$TAG-worker$h" $LIMITS \
        --network "ns:/run/netns/$TAG-h$h" \
        -e CELERY_BROKER_URL -e CELERY_RESULT_BACKEND -e AWS_ENDPOINT_URL_S3 \
        -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_DEFAULT_REGION -e SCREENSHOT_BUCKET \
        -e SCREENSHOT_EGRESS_ALLOW="$NET.1" -e HONCHO_PROCESS_NAME="host$h" \
        -e WORKER_CONCURRENCY=1 "$IMAGE" > /dev/null
done

# -- the dispatcher's host -------------------------------------------------------------------
rows() { [ -f "$WORK/run1/results.jsonl" ] && wc -l < "$WORK/run1/results.jsonl" || echo 0; }
start=$(date +%s)
ip netns exec "$TAG-h3" "$PY" "$ROOT/dispatcher.py" "$WORK/urls.txt" --out "$WORK/run1" >&2 &
dispatcher=$!
if [ "${MULTIHOST_FAULTS:-0}" = 1 ]; then
    until [ "$(rows)" -ge 10 ]; do sleep 1; done
    if [ "${MULTIHOST_PARTITION:-0}" = 1 ]; then
        log "host1 cut off for 75 s at $(rows) rows"
        ip link set "v${TAG}1" down
        # Host 2 dies while host 1 is still cut off: once host 1 is back it is the only
        # worker, so the run goes on only if the host that rejoined serves again.
        sleep 30
    fi
    log "every process of host2 SIGKILLed at $(rows) rows"
    $RUN kill --signal KILL "$TAG-worker2" > /dev/null
    if [ "${MULTIHOST_PARTITION:-0}" = 1 ]; then
        sleep 45
        ip link set "v${TAG}1" up
        log "host1's link is up again at $(rows) rows"
    fi
    host1_back=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    target=$(( $(rows) + 10 ))
    until [ "$(rows)" -ge "$target" ] || ! kill -0 "$dispatcher" 2> /dev/null; do
        sleep 1
    done
    log "host2 rejoins at $(rows) rows"
    host2_back=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    $RUN start "$TAG-worker2" > /dev/null
fi
wait "$dispatcher"
log "dispatcher finished in $(( $(date +%s) - start )) s"

check_manifest "$WORK/run1/results.jsonl" "$WORK/urls.txt" "$TAG-h3"
for h in 1 2; do
    log "host$h's worker ran $(tasks_of "$TAG-worker$h") tasks"
done
# What the cut-off host did with the shots it held (requeued, never an error row).
$RUN logs "$TAG-worker1" 2>&1 | grep -E "cannot reach its services|storage unavailable|requeueing" \
    | sed 's/^/multihost: host1: /' | head -20 >&2 || true
# A host that came back serves again: its worker finished tasks after it rejoined (host 1
# after its link came up, host 2 after its restart). The first run may end before host 2 is
# back (with several tabs per worker it goes fast), so a second, short run is shot with both
# hosts up, once host 2's worker is ready again.
if [ "${MULTIHOST_FAULTS:-0}" = 1 ]; then
    waited=0
    until $RUN logs --since "$host2_back" "$TAG-worker2" 2>&1 | grep -q " ready\."; do
        waited=$((waited + 1))
        if [ "$waited" -gt 180 ]; then
            log "FAILED: host2's worker was not ready 180 s after its restart"
            exit 1
        fi
        sleep 1
    done
    for round in 1 2 3 4; do
        for page in "$ROOT"/screenshots/dev/demo/pages/*.html; do
            echo "http://$NET.1:$port/$(basename "$page")?after=$round"
        done
    done > "$WORK/urls2.txt"
    # Small batches: 24 URLs in the default batches (2 x tabs) would be only 3 messages.
    ip netns exec "$TAG-h3" "$PY" "$ROOT/dispatcher.py" "$WORK/urls2.txt" --out "$WORK/run2" \
        --batch-size 2 >&2
    check_manifest "$WORK/run2/results.jsonl" "$WORK/urls2.txt" "$TAG-h3"
    for h in 1 2; do
        eval "back=\$host${h}_back"
        since=$($RUN logs --since "$back" "$TAG-worker$h" 2>&1 | grep -c "succeeded in" || true)
        if [ "$since" -eq 0 ]; then
            log "FAILED: host$h ran no task after rejoining at $back"
            exit 1
        fi
        log "host$h served again after rejoining: $since tasks since $back"
    done
fi
