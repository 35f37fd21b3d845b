#!/bin/sh
# Build the repository's Dockerfile, unchanged, on a machine without a Docker engine or an
# image registry (this project's CI machines): podman with chroot isolation, and the base
# image debian:bookworm-slim made locally with debootstrap from Debian's package servers.
#
#   deploy/podman/build-image.sh            # prints the image's name on its last line
#
# Cached: the base image is made once; the build is skipped when nothing the Dockerfile copies
# changed (the image carries a hash of those files as a label). Runs niced: the machine is
# shared with browser tests. Needs root (apt-get, debootstrap).
#
# Environment: IMAGE (default localhost/screenshots:dev), FORCE_BUILD=1 to rebuild anyway.
set -eu

IMAGE=${IMAGE:-localhost/screenshots:dev}
BASE=docker.io/library/debian:bookworm-slim
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LOW="nice -n 19 ionice -c3"

log() { echo "build-image: $*" >&2; }

# -- tools ------------------------------------------------------------------------------------
missing=""
for package in podman buildah debootstrap runc; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $package"
done
if [ -n "$missing" ]; then
    log "installing$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $LOW apt-get install -y -qq --no-install-recommends $missing
fi

# -- the base image, from Debian's servers --------------------------------------------------
if ! podman image exists "$BASE"; then
    rootfs=$(mktemp -d /var/tmp/bookworm-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    log "debootstrap bookworm (minbase) into $rootfs"
    $LOW debootstrap --variant=minbase bookworm "$rootfs" >&2
    # What the official slim image leaves out, so that apt-get in the build stays small.
    rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
    tar -C "$rootfs" -c . | podman import - "$BASE" >&2
    rm -rf "$rootfs"
    trap - EXIT
fi

# -- the image, unless what it is built from did not change --------------------------------
# The files the build context holds (.dockerignore is an allowlist): the Dockerfile, the
# packaging and the code.
source_hash=$(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard -- \
        Dockerfile .dockerignore pyproject.toml requirements.txt dispatcher.py \
        celeryconfig.py api.py screenshots tasks engines deploy/docker \
    | grep -zv '__pycache__' | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
current=$(podman image inspect --format '{{ index .Labels "screenshots.source-hash" }}' \
    "$IMAGE" 2>/dev/null || true)
if [ "$current" = "$source_hash" ] && [ "${FORCE_BUILD:-0}" != 1 ]; then
    log "$IMAGE is up to date ($source_hash)"
else
    log "building $IMAGE ($source_hash)"
    # A machine whose pip trusts a CA bundle of its own (a TLS-inspecting proxy in front of
    # the package index) lends it to pip in the build: mounted for the RUN steps only, so it
    # is in no layer of the image.
    mounts=""
    cert=${PIP_CERT:-$(pip3 config get global.cert 2>/dev/null || true)}
    if [ -n "$cert" ] && [ -f "$cert" ]; then
        pip_conf=$(mktemp)
        printf '[global]\ncert = /etc/build-ca.crt\n' > "$pip_conf"
        mounts="--volume $cert:/etc/build-ca.crt:ro --volume $pip_conf:/etc/pip.conf:ro"
    fi
    start=$(date +%s)
    # --format docker: the OCI format has no HEALTHCHECK. $mounts is a list of options.
    $LOW podman build --format docker --isolation chroot --network host $mounts \
        --label "screenshots.source-hash=$source_hash" -t "$IMAGE" "$ROOT" >&2
    [ -z "${pip_conf:-}" ] || rm -f "$pip_conf"
    log "built in $(( $(date +%s) - start )) s"
fi
log "size: $(podman image inspect --format '{{ .Size }}' "$IMAGE") bytes"
echo "$IMAGE"
