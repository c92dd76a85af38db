#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/dispatch.sh -- dispatch throughput and claim latency on loopback:
# builds relengd with the graph and dispatch modules and a load client
# (bench/dispatch_load.c: N lightweight workers speaking relengd-worker's
# protocol -- claim long-poll, one log chunk, report -- without running
# anything), starts relengd on 127.0.0.1 with a temporary state directory,
# then in one run:
#   1. /healthz requests/s with wrk (the HTTP floor of this machine);
#   2. drain: submits one 10,000-task graph to graph and lets the workers
#      drain it: tasks/s from submission to the last report, and the wait
#      from pending to claimed (queueing: 10,000 tasks pending at once);
#   3. waiting worker: 200 one-task graphs submitted one after another while
#      every worker waits in a claim: p50/p99 from pending to claimed;
# and prints a table with the ratio of tasks/s to /healthz requests/s.
#
#   bench/dispatch.sh                       8 workers, capacity 4, 10,000 tasks
#   BENCH_WORKERS=8 BENCH_CAPACITY=1 BENCH_TASKS=20000 bench/dispatch.sh
#   BENCH_SYNC=normal bench/dispatch.sh     [store] synchronous = normal (no fsync per commit)
#   BUILDDIR=/path/to/build bench/dispatch.sh
#
# Needs wrk, curl and a C compiler. Only 127.0.0.1 is contacted.
set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
workers=${BENCH_WORKERS:-8}
capacity=${BENCH_CAPACITY:-4}
tasks=${BENCH_TASKS:-10000}
probes=${BENCH_PROBES:-200}
hz_seconds=${BENCH_SECONDS:-5}
sync=${BENCH_SYNC:-full} # [store] synchronous: the appliance's default is full

. "$srcdir/bench/common.sh"
case "$workers$capacity$tasks$probes$hz_seconds" in
*[!0-9]*) fail "BENCH_WORKERS, BENCH_CAPACITY, BENCH_TASKS, BENCH_PROBES, BENCH_SECONDS: whole numbers" ;;
esac
[ "$workers" -ge 1 ] && [ "$workers" -le 64 ] || fail "BENCH_WORKERS must be 1..64"
[ "$tasks" -ge 1 ] && [ "$tasks" -le 50000 ] || fail "BENCH_TASKS must be 1..50000"
command -v wrk >/dev/null 2>&1 || fail "wrk not found (apt-get install wrk)"
command -v curl >/dev/null 2>&1 || fail "curl not found (apt-get install curl)"
cc=${CC:-cc}

# ------------------------------------------------------------------ build
bench_build core/relengd modules/graph.la modules/dispatch.la
load=$builddir/bench/dispatch-load
mkdir -p "$builddir/bench"
if [ ! -x "$load" ] || [ "$srcdir/bench/dispatch_load.c" -nt "$load" ]; then
  # shellcheck disable=SC2046 # pkg-config output is a list of flags
  "$cc" -O2 -Wall -o "$load" "$srcdir/bench/dispatch_load.c" \
    $(pkg-config --cflags --libs libcurl jansson) -lpthread || fail "cannot build the load client"
fi

# ------------------------------------------------------------------ daemon
tmp=$(mktemp -d)
pid=""
loadpid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  [ -n "$loadpid" ] && kill -KILL "$loadpid" 2>/dev/null || true
  if [ -n "$pid" ] && running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bench_clean_env
token=$(bench_token)
# max_waiting: every load worker may wait in a claim at once.
RELENGD_ADMIN_TOKEN=$token RELENGD_DISPATCH_MAX_WAITING=$workers \
  "$relengd" -c "$srcdir/etc/relengd.conf" \
  --state-dir "$tmp/state" --listen 127.0.0.1:0 --ready-file "$tmp/ready.json" \
  --module-dir "$builddir/modules/.libs" --modules "graph dispatch" \
  --set http.max_body=32MiB --set http.threads=64 --set "store.synchronous=$sync" --log-level warn \
  >"$tmp/relengd.log" 2>&1 </dev/null &
pid=$!
port=$(bench_wait_ready "$tmp/ready.json" api "$pid" "$tmp/relengd.log") || exit 1
base=http://127.0.0.1:$port
auth="Authorization: Bearer $token"
now_ms() { date +%s%3N; }

# ------------------------------------------------------- 1. /healthz floor
say "wrk /healthz for ${hz_seconds}s"
hz=$(wrk -t2 -c16 -d"${hz_seconds}s" --timeout 5s "$base/healthz" | awk '$1 == "Requests/sec:" { print $2 }')
[ -n "$hz" ] || fail "wrk gave no rate for /healthz"

# ------------------------------------------------------------- 2. drain
awk -v n="$tasks" 'BEGIN {
  printf "{\"name\":\"bench-drain\",\"branch\":\"bench\",\"tasks\":["
  for (i = 0; i < n; i++)
    printf "%s{\"label\":\"drain-%d\",\"workerType\":\"bench\",\"retries\":0,\"payload\":{\"command\":\"true\"}}", (i ? "," : ""), i
  printf "]}"
}' >"$tmp/graph.json"
total=$((tasks + probes))
"$load" "$base" "$token" bench "$workers" "$capacity" "$total" 30 >"$tmp/load.out" 2>"$tmp/load.err" &
loadpid=$!
sleep 1 # the workers are waiting in claims before the graph arrives
say "drain: $tasks tasks, $workers workers x capacity $capacity"
t0=$(now_ms)
gid=$(curl -fsS -H "$auth" -H 'Content-Type: application/json' --data-binary "@$tmp/graph.json" \
  "$base/api/v1/graph/graphs" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
t_sub=$(now_ms)
[ -n "$gid" ] || fail "the graph was not accepted"
state=""
i=0
while [ "$state" != completed ] && [ $i -lt 1200 ]; do
  sleep 0.05
  # the list is small (no tasks); the drain graph is the only one yet
  state=$(curl -fsS "$base/api/v1/graph/graphs" |
    sed -n 's/.*"id":"'"$gid"'".*"state":"\([a-z]*\)","submittedMs".*/\1/p')
  i=$((i + 1))
done
[ "$state" = completed ] || fail "the graph did not complete within 60 s (state: $state)"

# ------------------------------------------------------ 3. waiting worker
say "waiting worker: $probes one-task graphs, one at a time"
p=0
while [ $p -lt "$probes" ]; do
  curl -fsS -o /dev/null -H "$auth" -H 'Content-Type: application/json' \
    --data "{\"name\":\"probe\",\"tasks\":[{\"label\":\"lat-$p\",\"workerType\":\"bench\",\"payload\":{\"command\":\"true\"}}]}" \
    "$base/api/v1/graph/graphs" || fail "probe $p was not accepted"
  sleep 0.01
  p=$((p + 1))
done
wait "$loadpid" || fail "the load client failed: $(cat "$tmp/load.err")"
loadpid=""

kill -TERM "$pid"
i=0
while running "$pid" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
running "$pid" && fail "relengd did not stop within 10 s of SIGTERM"
pid=""

field() { sed -n "s/^$1 \\(.* \\)\\{0,1\\}$2=\\([-0-9]*\\).*/\\2/p" "$tmp/load.out"; }
n_drain=$(field drain n)
last=$(field drain last_report)
[ "$n_drain" = "$tasks" ] || fail "the load client completed $n_drain of $tasks drain tasks ($(cat "$tmp/load.err"))"
[ "$(field lat n)" = "$probes" ] || fail "the load client completed $(field lat n) of $probes probes"
elapsed=$((last - t0))
version=$("$relengd" --version | sed -n '1s/^relengd \([^ ]*\).*/\1/p')
echo
echo "relengd $version, loopback, $(nproc 2>/dev/null || echo '?') CPUs, $workers workers x capacity $capacity (claim + log chunk + report per task), store.synchronous=$sync"
first=$(field drain first_claim)
awk -v n="$tasks" -v el="$elapsed" -v sub_ms="$((t_sub - t0))" -v hz="$hz" -v dr="$((last - first))" \
  -v dp50="$(field drain p50)" -v dp99="$(field drain p99)" \
  -v lp50="$(field lat p50)" -v lp99="$(field lat p99)" -v np="$probes" 'BEGIN {
  tps = n / (el / 1000.0)
  printf "%-44s %12s %10s\n", "measure", "value", "target"
  printf "%-44s %12.0f %10s\n", "graph submit (" n " tasks), ms", sub_ms, ""
  printf "%-44s %12.0f %10s\n", "drain: tasks/s (submit to last report)", tps, ">= 1000"
  printf "%-44s %12.0f %10s\n", "drain: tasks/s (first claim to last report)", n / (dr / 1000.0), ""
  printf "%-44s %12d %10s\n", "drain: wait pending->claimed p50, ms", dp50, ""
  printf "%-44s %12d %10s\n", "drain: wait pending->claimed p99, ms", dp99, ""
  printf "%-44s %12d %10s\n", "waiting worker (" np " probes): p50, ms", lp50, ""
  printf "%-44s %12d %10s\n", "waiting worker (" np " probes): p99, ms", lp99, "< 50"
  printf "%-44s %12.0f %10s\n", "/healthz requests/s (wrk -t2 -c16)", hz, ""
  printf "%-44s %11.1f%% %10s\n", "tasks/s / healthz requests/s", 100 * tps / hz, ">= 25%"
}'
