#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/proxy.sh -- the proxy module against nginx, side by side in one run,
# on loopback: nginx serves the origin files (the 100 MiB one rate-limited,
# like a WAN origin), a second nginx is the caching peer (proxy_cache with
# proxy_cache_lock on), relengd's proxy module is ours. Prints one table:
#
#   hot 1 MiB, wrk -c50     throughput of each, ratio relengd/nginx (>= 1.0)
#   hot 1 KiB, wrk -c50     requests/s of each, ratio (>= 0.8)
#   cold herd, 50 clients   one 100 MiB object: origin bytes (one copy?),
#                           median and max first byte, last finish vs one
#                           cold download (<= 1.2x)
#   cold Range 0-1023       of an uncached 100 MiB object: time to answer
#   relengd peak RSS        VmHWM over the whole run (< 64 MiB)
#
#   bench/proxy.sh                        10 s per wrk run
#   BENCH_SECONDS=30 bench/proxy.sh
#   NGINX_WORKERS=auto bench/proxy.sh     nginx peer workers (default 1:
#                                         relengd serves on one loop thread)
#   ORIGIN_RATE=25m bench/proxy.sh        origin rate for the 100 MiB file
#   BUILDDIR=/path/to/build bench/proxy.sh
#
# Needs nginx and wrk (scripts/deps.sh bench), curl. Only 127.0.0.1.
set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
seconds=${BENCH_SECONDS:-10}
conns=50
threads=${BENCH_THREADS:-2}
workers=${NGINX_WORKERS:-1}
rate=${ORIGIN_RATE:-25m}
herd=50

. "$srcdir/bench/common.sh"

case "$seconds$threads" in
*[!0-9]*) fail "BENCH_SECONDS and BENCH_THREADS must be whole numbers" ;;
esac
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || fail "nginx not found: install the Debian package nginx (scripts/deps.sh bench)"
command -v wrk >/dev/null 2>&1 || fail "wrk not found: install the Debian package wrk"
command -v curl >/dev/null 2>&1 || fail "curl not found: install the Debian package curl"

# ------------------------------------------------------------------ build
bench_build core/relengd modules/proxy.la

# ------------------------------------------------------------------ setup
tmp=$(mktemp -d)
pid=""
origin_pid=""
peer_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  for p in $pid $origin_pid $peer_pid; do
    if [ -n "$p" ] && running "$p"; then kill -TERM "$p" 2>/dev/null || true; fi
  done
  sleep 0.2
  for p in $pid $origin_pid $peer_pid; do
    if [ -n "$p" ] && running "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
  done
  [ "${KEEP_TMP:-0}" = 1 ] && say "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

mkdir -p "$tmp/www" "$tmp/origin" "$tmp/peer/cache" "$tmp/state"
head -c 1048576 /dev/urandom >"$tmp/www/1m.bin"
head -c 1024 /dev/urandom >"$tmp/www/1k.bin"
head -c 104857600 /dev/urandom >"$tmp/www/100m.bin"
origin_port=$(free_port)
peer_port=$(free_port)

# nginx as the origin: plain files, the big one rate-limited per connection.
# Workers run as the invoking user (as root too: the files are private to it).
user=$(id -un)
cat >"$tmp/origin/nginx.conf" <<EOF
user $user;
worker_processes 2;
daemon off;
pid $tmp/origin/nginx.pid;
error_log $tmp/origin/error.log warn;
events { worker_connections 4096; }
http {
  log_format bench '\$request_uri \$status \$body_bytes_sent';
  access_log $tmp/origin/access.log bench;
  client_body_temp_path $tmp/origin/body;
  proxy_temp_path $tmp/origin/proxy;
  fastcgi_temp_path $tmp/origin/fastcgi;
  uwsgi_temp_path $tmp/origin/uwsgi;
  scgi_temp_path $tmp/origin/scgi;
  sendfile on;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$origin_port;
    root $tmp/www;
    location /100m.bin { limit_rate $rate; }
  }
}
EOF
# nginx as the caching peer, the textbook way: proxy_cache, lock on, a lock
# timeout long enough that waiting clients never go upstream themselves.
cat >"$tmp/peer/nginx.conf" <<EOF
user $user;
worker_processes $workers;
daemon off;
pid $tmp/peer/nginx.pid;
error_log $tmp/peer/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/peer/body;
  proxy_temp_path $tmp/peer/proxy;
  fastcgi_temp_path $tmp/peer/fastcgi;
  uwsgi_temp_path $tmp/peer/uwsgi;
  scgi_temp_path $tmp/peer/scgi;
  sendfile on;
  keepalive_requests 100000;
  proxy_cache_path $tmp/peer/cache levels=1:2 keys_zone=c:10m max_size=2g inactive=1h use_temp_path=off;
  upstream origin { server 127.0.0.1:$origin_port; keepalive 16; }
  server {
    listen 127.0.0.1:$peer_port;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache c;
      proxy_cache_valid 200 1h;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 120s;
      proxy_cache_lock_age 120s;
      add_header X-Cache \$upstream_cache_status;
    }
  }
}
EOF
"$nginx" -c "$tmp/origin/nginx.conf" -p "$tmp/origin" >"$tmp/origin/out.log" 2>&1 &
origin_pid=$!
"$nginx" -c "$tmp/peer/nginx.conf" -p "$tmp/peer" >"$tmp/peer/out.log" 2>&1 &
peer_pid=$!

mkdir -p "$tmp/etc/modules.d"
cp "$srcdir/etc/relengd.conf" "$tmp/etc/relengd.conf"
cat >"$tmp/etc/modules.d/proxy.conf" <<EOF
listen = 127.0.0.1:0
max_cache_size = 2GiB
[backend.o]
url = http://127.0.0.1:$origin_port
default_ttl = 1h
EOF
bench_clean_env
token=$(bench_token)
RELENGD_ADMIN_TOKEN=$token "$relengd" -c "$tmp/etc/relengd.conf" \
  --state-dir "$tmp/state" --listen 127.0.0.1:0 --ready-file "$tmp/ready.json" \
  --module-dir "$builddir/modules/.libs" --modules proxy --log-level warn \
  >"$tmp/relengd.log" 2>&1 </dev/null &
pid=$!
port=$(bench_wait_ready "$tmp/ready.json" proxy "$pid" "$tmp/relengd.log") || exit 1
ours=http://127.0.0.1:$port/o
peer=http://127.0.0.1:$peer_port
i=0
until curl -fsS -o /dev/null "http://127.0.0.1:$origin_port/1k.bin" 2>/dev/null &&
  curl -fsS -o /dev/null "$peer/1k.bin" 2>/dev/null; do
  i=$((i + 1))
  [ $i -lt 50 ] || {
    cat "$tmp/origin/error.log" "$tmp/origin/out.log" "$tmp/peer/error.log" "$tmp/peer/out.log" >&2
    fail "nginx did not start"
  }
  sleep 0.1
done

# ------------------------------------------------------------------ hot
rps() { printf '%s\n' "$1" | awk '$1 == "Requests/sec:" { print $2 }'; }
bytes_s() {
  printf '%s\n' "$1" | awk '$1 == "Transfer/sec:" {
    v = $2 + 0; u = $2; gsub(/[0-9.]/, "", u)
    if (u == "KB") v *= 1024; else if (u == "MB") v *= 1048576; else if (u == "GB") v *= 1073741824
    printf "%.0f\n", v }'
}
hot() { # name url -> "rps bytes/s"
  curl -fsS -o /dev/null "$2" && curl -fsS -o /dev/null "$2" # warm: cached by now
  out=$(wrk -t"$threads" -c"$conns" -d"${seconds}s" --timeout 10s "$2") || fail "wrk failed on $2"
  errs=$(printf '%s\n' "$out" | awk '/Non-2xx|Socket errors/ { print }')
  [ -z "$errs" ] || say "$1: $errs"
  echo "$(rps "$out") $(bytes_s "$out")"
}
say "hot 1 MiB: wrk -t$threads -c$conns -d${seconds}s"
set -- $(hot relengd "$ours/1m.bin")
r1m_rps=$1 r1m_bps=$2
set -- $(hot nginx "$peer/1m.bin")
n1m_rps=$1 n1m_bps=$2
say "hot 1 KiB: wrk -t$threads -c$conns -d${seconds}s"
set -- $(hot relengd "$ours/1k.bin")
r1k_rps=$1
set -- $(hot nginx "$peer/1k.bin")
n1k_rps=$1

# ------------------------------------------------------------------ cold
# One cold download alone (a key of its own), then the herd of 50 on another
# cold key, each client timing its first byte and its end.
single() {
  curl -fsS -o /dev/null -w '%{time_total}\n' "$1"
}
herd_run() { # url outfile
  : >"$2"
  pids=""
  for n in $(seq 1 $herd); do
    curl -fsS -o /dev/null --max-time 120 -w '%{time_starttransfer} %{time_total}\n' "$1" >>"$2" &
    pids="$pids $!"
  done
  # only the clients: a bare wait would wait for the servers too
  for p in $pids; do wait "$p" || true; done
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
origin_bytes() { awk -v u="$1" '$1 == u { s += $3 } END { print s + 0 }' "$tmp/origin/access.log"; }

say "cold: one download of 100 MiB at $rate/s, each side"
r_single=$(single "$ours/100m.bin?run=single")
n_single=$(single "$peer/100m.bin?run=single")
say "cold herd: $herd clients on one 100 MiB object, each side"
herd_run "$ours/100m.bin?run=herd-relengd" "$tmp/herd.relengd"
herd_run "$peer/100m.bin?run=herd-nginx" "$tmp/herd.nginx"
[ "$(wc -l <"$tmp/herd.relengd")" -eq $herd ] || fail "relengd herd: not every client finished"
[ "$(wc -l <"$tmp/herd.nginx")" -eq $herd ] || fail "nginx herd: not every client finished"
r_fb=$(awk '{ print $1 }' "$tmp/herd.relengd" | median)
n_fb=$(awk '{ print $1 }' "$tmp/herd.nginx" | median)
r_fbmax=$(awk '{ print $1 }' "$tmp/herd.relengd" | sort -n | tail -1)
n_fbmax=$(awk '{ print $1 }' "$tmp/herd.nginx" | sort -n | tail -1)
r_last=$(awk '{ print $2 }' "$tmp/herd.relengd" | sort -n | tail -1)
n_last=$(awk '{ print $2 }' "$tmp/herd.nginx" | sort -n | tail -1)
r_origin=$(origin_bytes "/100m.bin?run=herd-relengd")
n_origin=$(origin_bytes "/100m.bin?run=herd-nginx")

say "cold Range: bytes=0-1023 of an uncached 100 MiB object, each side"
r_range=$(curl -fsS -o /dev/null -r 0-1023 -w '%{http_code} %{time_total}' "$ours/100m.bin?run=range")
n_range=$(curl -fsS -o /dev/null -r 0-1023 -w '%{http_code} %{time_total}' "$peer/100m.bin?run=range")

rss_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")

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
[ "$rc" -eq 0 ] || fail "relengd exited with status $rc after SIGTERM"

# ------------------------------------------------------------------ table
version=$("$relengd" --version | sed -n '1s/^relengd \([^ ]*\).*/\1/p')
nver=$("$nginx" -v 2>&1 | sed 's/.*nginx\///')
echo
echo "relengd $version proxy vs nginx $nver proxy_cache (lock on, $workers worker(s)); loopback, $(nproc) CPUs"
echo "wrk -t$threads -c$conns -d${seconds}s; origin nginx, 100 MiB file at $rate/s; herd of $herd curl clients"
awk -v r1m="$r1m_bps" -v n1m="$n1m_bps" -v r1mr="$r1m_rps" -v n1mr="$n1m_rps" \
  -v r1k="$r1k_rps" -v n1k="$n1k_rps" \
  -v rs="$r_single" -v ns="$n_single" -v rfb="$r_fb" -v nfb="$n_fb" \
  -v rfbm="$r_fbmax" -v nfbm="$n_fbmax" -v rl="$r_last" -v nl="$n_last" \
  -v ro="$r_origin" -v no="$n_origin" -v rr="$r_range" -v nr="$n_range" -v rss="$rss_kib" '
  function verdict(ok) { return ok ? "ok" : "MISSED" }
  BEGIN {
    mib = 1048576
    printf "%-38s %14s %14s %8s  %s\n", "measure", "relengd", "nginx", "ratio", "target"
    printf "%-38s %14.1f %14.1f %8.2f  %s\n", "hot 1 MiB: MiB/s", r1m / mib, n1m / mib, r1m / n1m, ">= 1.0x " verdict(r1m / n1m >= 1.0)
    printf "%-38s %14.0f %14.0f %8.2f  %s\n", "hot 1 MiB: requests/s", r1mr, n1mr, r1mr / n1mr, ""
    printf "%-38s %14.0f %14.0f %8.2f  %s\n", "hot 1 KiB: requests/s", r1k, n1k, r1k / n1k, ">= 0.8x " verdict(r1k / n1k >= 0.8)
    printf "%-38s %14.2f %14.2f %8s  %s\n", "cold single 100 MiB download: s", rs, ns, "", ""
    printf "%-38s %14.2f %14.2f %8s  %s\n", "cold herd: origin MiB (one copy = 100)", ro / mib, no / mib, "", "= 100 " verdict(ro == 100 * mib)
    printf "%-38s %14.3f %14.3f %8s  %s\n", "cold herd: median first byte, s", rfb, nfb, "", "< 0.1 s " verdict(rfb < 0.1)
    printf "%-38s %14.3f %14.3f %8s  %s\n", "cold herd: slowest first byte, s", rfbm, nfbm, "", ""
    printf "%-38s %14.2f %14.2f %8s  %s\n", "cold herd: last client done, s", rl, nl, "", ""
    printf "%-38s %14.2f %14.2f %8s  %s\n", "cold herd: last done / single download", rl / rs, nl / ns, "", "<= 1.2x " verdict(rl / rs <= 1.2)
    split(rr, a, " "); split(nr, b, " ")
    printf "%-38s %14s %14s %8s  %s\n", "cold Range 0-1023: status, s", a[1] " " sprintf("%.3f", a[2]), b[1] " " sprintf("%.3f", b[2]), "", "before the download ends " verdict(a[2] < rs / 2)
    printf "%-38s %14.1f %14s %8s  %s\n", "relengd peak RSS (VmHWM), MiB", rss / 1024, "-", "", "< 64 MiB " verdict(rss < 65536)
  }'
