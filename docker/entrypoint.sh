#!/bin/sh
# SPDX-License-Identifier: MIT
# docker/entrypoint.sh -- starts relengd in the container with the
# configuration in /etc/relengd (mount your own etc/ there: relengd.conf and
# modules.d/<module>.conf), state in /var/lib/relengd and the API on
# 0.0.0.0:8080. relengd runs as PID 1 (exec) and stops cleanly on SIGTERM.
#
#   (no arguments)        relengd -c /etc/relengd/relengd.conf
#   --log-level debug ... relengd -c /etc/relengd/relengd.conf --log-level debug ...
#   relengctl status      any other command runs as it is
#   healthcheck           the image's HEALTHCHECK: GET /healthz on the port
#                         (and scheme) that relengd wrote to its ready file
set -eu

: "${RELENGD_READY_FILE:=/tmp/relengd-ready.json}"
export RELENGD_READY_FILE

if [ "${1:-}" = healthcheck ]; then
  port=$(sed -n 's/.*"api"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$RELENGD_READY_FILE" 2>/dev/null || true)
  if [ -z "$port" ]; then
    echo "healthcheck: relengd is not serving yet (no API port in $RELENGD_READY_FILE)" >&2
    exit 1
  fi
  scheme=http
  grep -q '"tls"[[:space:]]*:[[:space:]]*true' "$RELENGD_READY_FILE" && scheme=https
  # -k: a TLS certificate need not name 127.0.0.1; this only checks liveness
  exec curl -fsS -k --max-time 4 -o /dev/null "$scheme://127.0.0.1:$port/healthz"
fi

conf_dir=${RELENGD_CONF_DIR:-/etc/relengd}
conf=$conf_dir/relengd.conf

: "${RELENGD_STATE_DIR:=/var/lib/relengd}"
: "${RELENGD_LISTEN:=0.0.0.0:8080}"
: "${RELENGD_WEB_ROOT:=/usr/share/relengd/web}"
export RELENGD_STATE_DIR RELENGD_LISTEN RELENGD_WEB_ROOT

case "${1:-}" in
"" | -*)
  if [ ! -f "$conf" ]; then
    echo "entrypoint: $conf not found: mount your etc/ at $conf_dir" \
      "(docker run -v \"\$PWD/etc:$conf_dir:ro\" ...)" >&2
    exit 78
  fi
  if [ ! -d "$RELENGD_STATE_DIR" ] || [ ! -w "$RELENGD_STATE_DIR" ]; then
    echo "entrypoint: the state directory $RELENGD_STATE_DIR is not writable by uid $(id -u);" \
      "use a named volume, or chown the mounted directory to $(id -u):$(id -g)" >&2
    exit 73
  fi
  set -- relengd -c "$conf" "$@"
  ;;
esac
exec "$@"
