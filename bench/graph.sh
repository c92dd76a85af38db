#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/graph.sh -- the graph module's figures: submits random DAGs of 1k,
# 10k and 100k tasks (each task depends on 0-4 of the 300 tasks before it,
# so fan-in and fan-out vary as in real pushes; ~5% roots) over HTTP, then
# resolves every task with the in-process completer of
# tests/modules/graphbench.c (graph.runs started()+resolved() exactly as
# dispatch calls them, BENCH_BATCH runs per write transaction, dependents
# released as each resolves). Prints submission time (request to 201,
# validation and storage included), resolutions per second and the cost per
# task, so a step that is not linear shows as a growing cost.
# Targets (2 cores): 10k tasks accepted in < 0.5 s; >= 5,000 resolutions/s;
# cost per task flat from 1k to 100k.
#
#   bench/graph.sh                       sizes 1000 10000 100000, batch 500
#   BENCH_SIZES="1000 5000" BENCH_BATCH=100 bench/graph.sh
#   BUILDDIR=/path/to/build bench/graph.sh    use (and build) that build tree
#
# (curl's "Expect: 100-continue" is turned off: it would add curl's own 1 s
# wait to every large upload.)
# Needs curl and python3 (to generate the graphs). Only 127.0.0.1 is contacted.
set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
sizes=${BENCH_SIZES:-1000 10000 100000}
batch=${BENCH_BATCH:-500}
seed=${BENCH_SEED:-42}

. "$srcdir/bench/common.sh"

case "$batch$seed" in
*[!0-9]*) fail "BENCH_BATCH and BENCH_SEED must be whole numbers" ;;
esac
for n in $sizes; do
  case "$n" in *[!0-9]* | "") fail "BENCH_SIZES must be whole numbers" ;; esac
  [ "$n" -le 100000 ] || fail "sizes above 100000 are not supported"
done
command -v curl >/dev/null 2>&1 || fail "curl not found: install the Debian package curl"
command -v python3 >/dev/null 2>&1 || fail "python3 not found: install the Debian package python3"

# ------------------------------------------------------------------ build
bench_build core/relengd modules/graph.la tests/modules/graphbench.la

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

# ------------------------------------------------------------- the graphs
say "generating random DAGs: $sizes tasks (seed $seed)"
for n in $sizes; do
  python3 - "$n" "$seed" >"$tmp/graph-$n.json" <<'EOF'
import json, random, sys
n, seed = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(seed)
platforms = ["linux64", "win64", "macosx", "android"]
tasks = []
for i in range(n):
    deps = []
    if i > 0 and rnd.random() > 0.05:
        lo = max(0, i - 300)
        deps = sorted(set(rnd.randrange(lo, i) for _ in range(rnd.randint(1, 4))))
    tasks.append({
        "label": "t%d" % i,
        "workerType": "%s-test" % platforms[i % 4],
        "dependencies": ["t%d" % d for d in deps],
        "payload": {"command": ["./run", "suite-%d" % (i % 50)], "maxRunTime": 3600},
    })
json.dump({"name": "bench %d" % n, "branch": "bench", "tasks": tasks}, sys.stdout)
EOF
done

bench_clean_env
token=$(bench_token)
RELENGD_ADMIN_TOKEN=$token RELENGD_GRAPH_MAX_TASKS=100000 "$relengd" \
  -c "$srcdir/etc/relengd.conf" --state-dir "$tmp/state" --listen 127.0.0.1:0 \
  --ready-file "$tmp/ready.json" \
  --module-dir "$builddir/modules/.libs:$builddir/tests/modules/.libs" \
  --modules "graph graphbench" --set http.max_body=64MiB --set "http.web_root=$srcdir/web" \
  --log-level warn >"$tmp/relengd.log" 2>&1 </dev/null &
pid=$!
port=$(bench_wait_ready "$tmp/ready.json" api "$pid" "$tmp/relengd.log") || exit 1
base=http://127.0.0.1:$port
auth="Authorization: Bearer $token"

# ------------------------------------------------------------------- runs
rows=""
for n in $sizes; do
  say "$n tasks: submitting"
  t=$(curl -sS -o "$tmp/submit.json" -w '%{http_code} %{time_total}' --max-time 120 \
    -H "$auth" -H 'Content-Type: application/json' -H 'Expect:' \
    --data-binary "@$tmp/graph-$n.json" "$base/api/v1/graph/graphs") ||
    fail "submitting $n tasks failed"
  [ "${t%% *}" = 201 ] || {
    cat "$tmp/submit.json" >&2
    fail "submitting $n tasks: HTTP ${t%% *}"
  }
  submit_s=${t#* }
  gid=$(sed -n 's/.*"id"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$tmp/submit.json")
  say "$n tasks: resolving (graph $gid, $batch runs per transaction)"
  curl -fsS --max-time 600 -H "$auth" -H 'Content-Type: application/json' \
    -d "{\"batch\":$batch}" "$base/api/v1/graphbench/drain" >"$tmp/drain.json" ||
    fail "resolving $n tasks failed"
  resolved=$(sed -n 's/.*"resolved"[[:space:]]*:[[:space:]]*\([0-9]*\).*/\1/p' "$tmp/drain.json")
  ms=$(sed -n 's/.*"ms"[[:space:]]*:[[:space:]]*\([0-9]*\).*/\1/p' "$tmp/drain.json")
  [ "$resolved" = "$n" ] || fail "$n tasks: only $resolved resolved"
  state=$(curl -fsS "$base/api/v1/graph/graphs?limit=1" |
    sed -n 's/.*"state"[[:space:]]*:[[:space:]]*"\([a-z]*\)".*/\1/p' | head -1)
  [ "$state" = completed ] || fail "$n tasks: the graph is $state after every task resolved"
  row=$(awk -v n="$n" -v s="$submit_s" -v ms="$ms" 'BEGIN {
    if (ms < 1) ms = 1
    printf "%8d %12.3f %14.1f %16.0f %16.1f\n", n, s, s * 1e6 / n, n * 1000 / ms, ms * 1000 / n }')
  rows="$rows$row
"
done

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
[ "$rc" -eq 0 ] || fail "relengd exited with status $rc after SIGTERM"

echo
echo "graph bench: random DAGs (0-4 deps among the previous 300), $(nproc 2>/dev/null || echo '?') CPUs, $batch resolutions per transaction, synchronous=FULL"
printf "%8s %12s %14s %16s %16s\n" tasks "submit s" "submit us/task" "resolutions/s" "resolve us/task"
printf '%s' "$rows"
