# What the scripts that run the image here share; sourced (`. deploy/podman/lib.sh`) after
# they set ROOT, WORK (their temporary directory) and LOG_NAME.

PY="$ROOT/.venv/bin/python"
# Containers run niced: the machine is shared with browser tests. The default runtime (crun)
# is refused in this sandbox, and so is an rlimit above what runc may set here (podman 4.3
# asks for 1048576 open files even with --ulimit host): runc, and limits given explicitly
# (this shell's open files, 4096 processes/threads for the user). Pass --no-healthcheck to
# `run`: podman runs HEALTHCHECKs from systemd timers, and there is no systemd here; the
# scripts run the check themselves when they need it.
RUN="nice -n 19 ionice -c3 podman --runtime runc"
LIMITS="--ulimit nofile=$(ulimit -Hn):$(ulimit -Hn) --ulimit nproc=4096:4096"
#: Processes started in the background, ended by stop_background.
PIDS=""

log() { echo "$LOG_NAME: $*" >&2; }

# A RabbitMQ vhost of the script's own: it never takes another job's tasks or shows up in
# another job's `celery inspect`. Deleted by delete_vhost.
add_vhost() {
    rabbitmqctl -q add_vhost "$1"
    rabbitmqctl -q set_permissions -p "$1" guest '.*' '.*' '.*'
}

delete_vhost() { rabbitmqctl -q delete_vhost "$1" > /dev/null 2>&1 || true; }

# End what was started in the background, and the children of each (socat forks one per
# connection; the SeaweedFS runner stops weed on SIGTERM).
stop_background() {
    for pid in $PIDS; do pkill -P "$pid" 2> /dev/null || true; kill "$pid" 2> /dev/null || true; done
    for pid in $PIDS; do wait "$pid" 2> /dev/null || true; done
}

# Wait (up to 120 s) for a SeaweedFS runner to print its settings to $WORK/weed.env, then
# export them (AWS_ENDPOINT_URL_S3, keys, SCREENSHOT_BUCKET).
use_seaweedfs() {
    deadline=$(( $(date +%s) + 120 ))
    until grep -q SCREENSHOT_BUCKET "$WORK/weed.env"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "SeaweedFS did not start"
            cat "$WORK/weed.log" >&2
            exit 1
        fi
        sleep 1
    done
    . "$WORK/weed.env"
}

# A free TCP port of loopback, for a page server.
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The manifest $1 has exactly one row per line of the URL file $2, every row ok, and every
# link downloads a PNG: from this machine, or from the network namespace $3.
check_manifest() {
    in_namespace=""
    [ -z "${3:-}" ] || in_namespace="ip netns exec $3"
    $in_namespace "$PY" - "$1" "$2" "$LOG_NAME" <<'PY'
import json, sys, urllib.request
rows = [json.loads(line) for line in open(sys.argv[1])]
urls = [line.strip() for line in open(sys.argv[2]) if line.strip()]
assert sorted(row["line"] for row in rows) == list(range(1, len(urls) + 1)), "one row per URL"
for row in rows:
    assert row["status"] == "ok", row
    with urllib.request.urlopen(row["link"], timeout=30) as answer:
        assert answer.read(8) == b"\x89PNG\r\n\x1a\n", row["link"]
print(f"{sys.argv[3]}: {len(rows)} rows ok, every link downloads a PNG", file=sys.stderr)
PY
}

# How many tasks the worker container $1 ran, from its log.
tasks_of() { $RUN logs "$1" 2>&1 | grep -c "succeeded in" || true; }
