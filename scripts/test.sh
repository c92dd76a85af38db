#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs what is needed, then builds and runs every test three ways:
#   1. build-check/: -Werror build, `make check` (unit, end-to-end, browser,
#      source checks), then the unit tests again under valgrind;
#   2. build-asan/:  the same suite built with AddressSanitizer and UBSan;
#   3. `make format-check` (clang-format, .clang-format) and `make distcheck`
#      from build-check/ (the tarball builds and passes).
# Ends with one line "N passed, N failed" over all runs; exit 0 only if all passed.
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=$(nproc)

sh scripts/deps.sh test || exit 1
autoreconf -fi >/dev/null 2>&1 || { autoreconf -fi; exit 1; }

failed_runs=""
pass=0
fail=0

# Adds the counts of a test-suite.log summary; SKIP and XFAIL count as passed
# only when expected (skips are listed so nobody misses them).
count() {
  log=$1
  [ -f "$log" ] || return 0
  p=$(sed -n 's/^# PASS: *//p' "$log" | head -n 1)
  f=$(sed -n 's/^# FAIL: *//p' "$log" | head -n 1)
  e=$(sed -n 's/^# ERROR: *//p' "$log" | head -n 1)
  x=$(sed -n 's/^# XPASS: *//p' "$log" | head -n 1)
  pass=$((pass + ${p:-0}))
  fail=$((fail + ${f:-0} + ${e:-0} + ${x:-0}))
}

run_suite() {
  name=$1
  dir=$2
  shift 2
  echo "=== $name: configure $*"
  mkdir -p "$dir"
  (cd "$dir" && "$top/configure" --enable-werror "$@" >configure.log 2>&1) ||
    { cat "$dir/configure.log"; failed_runs="$failed_runs $name"; fail=$((fail + 1)); return; }
  echo "=== $name: build"
  if ! (cd "$dir" && make -j"$jobs" >build.log 2>&1); then
    tail -n 60 "$dir/build.log"
    failed_runs="$failed_runs $name"
    fail=$((fail + 1))
    return
  fi
  echo "=== $name: make check"
  (cd "$dir" && make -j"$jobs" check) || failed_runs="$failed_runs $name"
  count "$dir/test-suite.log"
}

run_suite "gcc -Werror" build-check
if [ -f build-check/Makefile ]; then
  echo "=== valgrind: unit tests"
  unit=$(cd build-check && ls tests/unit/*/test_* 2>/dev/null | grep -v '\.' | tr '\n' ' ')
  (cd build-check && make check VALGRIND=1 TESTS="$unit" TEST_SUITE_LOG=valgrind-suite.log) ||
    failed_runs="$failed_runs valgrind"
  count build-check/valgrind-suite.log
fi
run_suite "ASan+UBSan" build-asan --enable-sanitizers

echo "=== make format-check"
if (cd build-check && make format-check >format.log 2>&1); then
  pass=$((pass + 1))
  echo "format-check: clean"
else
  tail -n 40 build-check/format.log
  failed_runs="$failed_runs format-check"
  fail=$((fail + 1))
fi

echo "=== make distcheck"
if (cd build-check && make -j"$jobs" distcheck >distcheck.log 2>&1); then
  pass=$((pass + 1))
  tail -n 4 build-check/distcheck.log
else
  tail -n 80 build-check/distcheck.log
  failed_runs="$failed_runs distcheck"
  fail=$((fail + 1))
fi

[ -n "$failed_runs" ] && echo "failed:$failed_runs"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ -z "$failed_runs" ]
