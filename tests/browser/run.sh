#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/browser/run.sh -- the browser test, run by `make check`: starts the
# real relengd from the build tree (temporary state directory, 127.0.0.1 port
# 0, the example and hostcheck modules plus every appliance module that is
# built, web/ from the source tree), runs every *.test.mjs here with node's
# test runner (Debian's chromium, headless,
# driven by playwright-core), then stops the daemon with SIGTERM and requires
# exit 0. Exits with node's status; 77 (skipped) only with
# RELENGD_SKIP_BROWSER=1. node_modules is installed with `npm ci` next to a
# copy of package*.json under $top_builddir/tests/browser, so VPATH builds and
# `make distcheck` (read-only source tree) work.
set -u

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
src=$top_srcdir/tests/browser
work=$top_builddir/tests/browser
chromium=${CHROMIUM:-/usr/bin/chromium}
relengd=$top_builddir/core/relengd
module_path=$top_builddir/modules/.libs:$top_builddir/tests/modules/.libs
ready_timeout_s=20
stop_timeout_s=10

say() { echo "run.sh: $*"; }
fail() {
  echo "run.sh: FAIL: $*" >&2
  exit 1
}

if [ "${RELENGD_SKIP_BROWSER:-0}" = 1 ]; then
  say "SKIP: RELENGD_SKIP_BROWSER=1"
  exit 77
fi
command -v node >/dev/null 2>&1 ||
  fail "node not found: install the Debian package nodejs (apt-get install nodejs), or set RELENGD_SKIP_BROWSER=1 to skip"
command -v npm >/dev/null 2>&1 ||
  fail "npm not found: install the Debian package npm (apt-get install npm), or set RELENGD_SKIP_BROWSER=1 to skip"
[ -x "$chromium" ] ||
  fail "$chromium not found: install the Debian package chromium (apt-get install chromium), or set RELENGD_SKIP_BROWSER=1 to skip"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' ||
  fail "node $(node --version) is too old: Node.js 18 or newer is needed (Debian 12's nodejs is)"
[ -x "$relengd" ] || fail "$relengd is not built: run make first"
[ -f "$top_builddir/modules/.libs/example.so" ] || fail "the example module is not built ($top_builddir/modules/.libs/example.so)"
[ -f "$top_builddir/tests/modules/.libs/hostcheck.so" ] ||
  fail "the hostcheck test module is not built: run make check (or make tests/modules/hostcheck.la)"

# ---------------------------------------------------------------- node deps
# The wanted playwright-core version is the one in package-lock.json.
lock_version() {
  node -e 'const l=require(process.argv[1]); console.log(l.packages["node_modules/playwright-core"].version)' "$1"
}
have_version() {
  node -e 'try{console.log(require(process.argv[1]).version)}catch{console.log("none")}' \
    "$1/node_modules/playwright-core/package.json"
}
want=$(lock_version "$src/package-lock.json") || fail "cannot read $src/package-lock.json"
deps=""
if [ "$(have_version "$src")" = "$want" ]; then
  deps=$src # installed in the source tree already (in-tree build, or by hand)
else
  mkdir -p "$work" || fail "cannot create $work"
  if [ "$(cd "$src" && pwd -P)" != "$(cd "$work" && pwd -P)" ]; then
    cp "$src/package.json" "$src/package-lock.json" "$work/" || fail "cannot copy package*.json to $work"
  fi
  if [ "$(have_version "$work")" != "$want" ]; then
    say "installing playwright-core $want into $work (npm ci)"
    (cd "$work" && npm ci --no-audit --no-fund) ||
      fail "npm ci failed in $work: the npm registry must be reachable to install playwright-core"
  fi
  deps=$work
fi

# ---------------------------------------------------------------- the daemon
tmp=$(mktemp -d "${TMPDIR:-/tmp}/relengd-browser.XXXXXX") || fail "mktemp failed"
pid=""
log=$tmp/relengd.log

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [ -n "$pid" ] && running "$pid"; then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Whether process $1 runs (a zombie does not: dash reaps children only in wait).
running() {
  [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]
}

dump_log() {
  echo "---- relengd log ($log) ----" >&2
  cat "$log" >&2 2>/dev/null
  echo "---- end of relengd log ----" >&2
}

# An admin token of the daemon's own form: "rd_" + 43 base64url characters.
token=rd_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' | cut -c1-43)

# Only what we set reaches the daemon: drop RELENGD_* from the environment.
for v in $(env | sed -n 's/^\(RELENGD_[A-Za-z0-9_]*\)=.*/\1/p'); do
  unset "$v"
done

# The appliance modules that are built join the test modules; a module's
# browser test (<module>.test.mjs) skips itself when its module is absent.
modules="example hostcheck"
for m in proxy graph dispatch partials; do
  [ -f "$top_builddir/modules/.libs/$m.so" ] && modules="$modules $m"
done

mkdir "$tmp/state"
# The proxy module listens on a port of its own: any free one here.
RELENGD_PROXY_LISTEN=127.0.0.1:0 RELENGD_ADMIN_TOKEN=$token "$relengd" \
  -c "$top_srcdir/etc/relengd.conf" \
  --state-dir "$tmp/state" \
  --listen 127.0.0.1:0 \
  --ready-file "$tmp/ready.json" \
  --module-dir "$module_path" \
  --modules "$modules" \
  --set "http.web_root=$top_srcdir/web" \
  --set auth.anonymous_read=yes \
  --log-level debug \
  >"$log" 2>&1 </dev/null &
pid=$!

# Wait for the ready file (written atomically once serving), bounded.
port=""
i=0
while [ $i -lt $((ready_timeout_s * 10)) ]; do
  if [ -s "$tmp/ready.json" ]; then
    port=$(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); if(!(r.api>0))process.exit(1); console.log(r.api)' "$tmp/ready.json" 2>/dev/null) && break
    port=""
  fi
  if ! running "$pid"; then
    wait "$pid"
    rc=$?
    pid=""
    dump_log
    fail "relengd exited with status $rc before it was ready"
  fi
  sleep 0.1
  i=$((i + 1))
done
if [ -z "$port" ]; then
  dump_log
  fail "relengd was not ready within ${ready_timeout_s}s"
fi
say "relengd (pid $pid) ready on http://127.0.0.1:$port"

# ---------------------------------------------------------------- the test
mkdir -p "$work" || fail "cannot create $work"
rm -f "$work/overview.png"
say "the screenshot goes to $work/overview.png"
(
  cd "$work" &&
    RELENGD_URL=http://127.0.0.1:$port \
    RELENGD_ADMIN_TOKEN=$token \
    PLAYWRIGHT_DIR=$deps \
    SCREENSHOT=$work/overview.png \
    CHROMIUM=$chromium \
    RELENGD_MODULES=$modules \
    node --test --test-reporter=tap --test-concurrency=1 "$src"/*.test.mjs
)
node_rc=$?

# ---------------------------------------------------------------- stop
kill -TERM "$pid" 2>/dev/null
i=0
while running "$pid" && [ $i -lt $((stop_timeout_s * 10)) ]; do
  sleep 0.1
  i=$((i + 1))
done
if running "$pid"; then
  dump_log
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=""
  fail "relengd did not exit within ${stop_timeout_s}s of SIGTERM"
fi
wait "$pid"
daemon_rc=$?
pid=""
if [ "$daemon_rc" -ne 0 ]; then
  dump_log
  fail "relengd exited with status $daemon_rc after SIGTERM (want 0)"
fi
if [ "$node_rc" -ne 0 ]; then
  dump_log
  exit "$node_rc"
fi
[ -s "$work/overview.png" ] || fail "no screenshot at $work/overview.png"
exit 0
