#!/bin/sh
# The image's entry point, run by tini: runs the command as given (exec, so it receives the
# signals tini forwards), with one convenience: `python dispatcher.py ARGS` works in any
# directory, as on a checkout. dispatcher.py is installed as a module beside the package, not
# as a file in the working directory (/data, where the URL files and run directories are), so
# it becomes `python -m dispatcher ARGS` when there is no ./dispatcher.py. It also makes
# $TMPDIR (see the Dockerfile).
set -eu
# TMPDIR (the Dockerfile's /tmp/container) may be on a fresh volume (/tmp of a pod).
mkdir -p "${TMPDIR:-/tmp}"
case "${1:-}" in
    python | python3 | python3.11)
        if [ "${2:-}" = dispatcher.py ] && [ ! -e dispatcher.py ]; then
            interpreter=$1
            shift 2
            set -- "$interpreter" -m dispatcher "$@"
        fi ;;
esac
exec "$@"
