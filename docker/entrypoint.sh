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
set -eu

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
