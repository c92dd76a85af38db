#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/http.sh -- HTTP throughput and latency of relengd on loopback: builds
# relengd if needed, starts it on 127.0.0.1 (port 0, temporary state
# directory, the example module), runs wrk against /healthz and
# /api/v1/status for a bounded time each, prints requests/s and latency
# percentiles in a table, and stops the daemon.
#
#   bench/http.sh                    10 s per endpoint, 2 threads, 16 connections
#   BENCH_SECONDS=30 BENCH_CONNECTIONS=64 bench/http.sh
#   BUILDDIR=/path/to/build bench/http.sh    use (and build) that build tree
#
# Needs wrk (Debian package wrk). Only 127.0.0.1 is contacted.
set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
seconds=${BENCH_SECONDS:-10}
conns=${BENCH_CONNECTIONS:-16}
threads=${BENCH_THREADS:-2}
endpoints=${BENCH_ENDPOINTS:-/healthz /api/v1/status}

. "$srcdir/bench/common.sh"

case "$seconds$conns$threads" in
*[!0-9]*) fail "BENCH_SECONDS, BENCH_CONNECTIONS and BENCH_THREADS must be whole numbers" ;;
esac
if [ "$seconds" -lt 1 ] || [ "$seconds" -gt 600 ]; then fail "BENCH_SECONDS must be 1..600"; fi
[ "$conns" -ge "$threads" ] || fail "BENCH_CONNECTIONS must be at least BENCH_THREADS"
command -v wrk >/dev/null 2>&1 || fail "wrk not found: install the Debian package wrk (apt-get install wrk)"
command -v curl >/dev/null 2>&1 || fail "curl not found: install the Debian package curl"

# ------------------------------------------------------------------ build
# An in-tree configured source tree builds in place; otherwise a VPATH build
# in $BUILDDIR (default build-bench/ under the source tree).
bench_build core/relengd modules/example.la

# ------------------------------------------------------------------ daemon
tmp=$(mktemp -d)
pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [ -n "$pid" ] && running "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_clean_env
token=$(bench_token)
RELENGD_ADMIN_TOKEN=$token "$relengd" -c "$srcdir/etc/relengd.conf" \
  --state-dir "$tmp/state" --listen 127.0.0.1:0 --ready-file "$tmp/ready.json" \
  --module-dir "$builddir/modules/.libs" --modules example \
  --set "http.web_root=$srcdir/web" --log-level warn \
  >"$tmp/relengd.log" 2>&1 </dev/null &
pid=$!

port=$(bench_wait_ready "$tmp/ready.json" api "$pid" "$tmp/relengd.log") || exit 1
base=http://127.0.0.1:$port
for ep in $endpoints; do
  curl -fsS -o /dev/null --max-time 5 "$base$ep" || fail "GET $ep does not answer 200"
done
version=$("$relengd" --version | sed -n '1s/^relengd \([^ ]*\).*/\1/p')

# ------------------------------------------------------------------ wrk
# wrk --latency prints "Requests/sec:", the 50/75/90/99% lines of its
# latency distribution with units (us, ms, s), and error counts; we turn
# them into one table row (latencies in ms).
summarise() {
  awk -v ep="$1" '
    function ms(v,   n) {
      n = v + 0
      if (v ~ /us$/) return n / 1000
      if (v ~ /ms$/) return n
      if (v ~ /m$/) return n * 60000
      if (v ~ /s$/) return n * 1000
      return n
    }
    $1 == "Requests/sec:" { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "90%" { p90 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /requests in/ { total = $1 }
    /Non-2xx or 3xx responses:/ { bad += $NF }
    /Socket errors:/ {
      for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { v = $i; sub(",", "", v); bad += v }
    }
    END {
      if (rps == "") exit 1
      printf "%-16s %12.0f %10s %9.3f %9.3f %9.3f %7d\n", ep, rps, total, p50, p90, p99, bad
    }'
}

say "relengd $version on $base; wrk: $threads threads, $conns connections, ${seconds}s per endpoint"
rows=""
for ep in $endpoints; do
  say "wrk $ep"
  out=$(wrk -t"$threads" -c"$conns" -d"${seconds}s" --timeout 5s --latency "$base$ep") ||
    fail "wrk failed on $ep"
  row=$(printf '%s\n' "$out" | summarise "$ep") || {
    printf '%s\n' "$out" >&2
    fail "could not read wrk's output for $ep"
  }
  rows="$rows$row
"
done

# ------------------------------------------------------------------ stop
kill -TERM "$pid"
i=0
while running "$pid" && [ $i -lt 100 ]; do
  sleep 0.1
  i=$((i + 1))
done
running "$pid" && fail "relengd did not stop within 10 s of SIGTERM"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 0 ] || {
  tail -20 "$tmp/relengd.log" >&2
  fail "relengd exited with status $rc after SIGTERM"
}

cpus=$(nproc 2>/dev/null || echo '?')
echo
echo "relengd $version, loopback, $cpus CPUs, wrk -t$threads -c$conns -d${seconds}s"
printf "%-16s %12s %10s %9s %9s %9s %7s\n" endpoint "requests/s" requests "p50 ms" "p90 ms" "p99 ms" errors
printf '%s' "$rows"
