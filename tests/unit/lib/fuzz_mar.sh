#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the MAR reader's libFuzzer target (lib/fuzz/fuzz_mar, built by
# lib/local.mk with clang) for a bounded time, seeded with the fixture MARs.
# Skips (77) only when configure found no clang. Builds nothing itself.
set -u
top_srcdir=${top_srcdir:-$(dirname "$0")/../../..}
top_builddir=${top_builddir:-.}
fuzzer=$top_builddir/lib/fuzz/fuzz_mar
if [ ! -x "$fuzzer" ]; then
  if [ -z "${CLANG:-}" ] && ! grep -q '^CLANG = .' "$top_builddir/Makefile" 2>/dev/null; then
    echo "fuzz_mar: no clang, fuzz target not built: skipped"
    exit 77
  fi
  echo "fuzz_mar: $fuzzer missing although clang is configured"
  exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz_mar.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM
mkdir "$work/corpus"
cp "$top_srcdir"/tests/unit/lib/data/*.mar "$work/corpus/"
# -max_len fits the fixtures (about 1.2 KB) with room to grow; -timeout
# catches an input that loops; the whole run stays within 20 s.
"$fuzzer" -max_total_time="${FUZZ_SECONDS:-20}" -rss_limit_mb=1024 -timeout=10 \
  -max_len=4096 -seed=1 -print_final_stats=1 -artifact_prefix="$work/" \
  "$work/corpus" >"$work/log" 2>&1
rc=$?
tail -n 15 "$work/log"
if [ "$rc" -ne 0 ]; then
  echo "fuzz_mar: the fuzzer failed (exit $rc); crashing input:"
  for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
    [ -f "$f" ] && od -A d -t x1 "$f" | head -40
  done
  exit 1
fi
exit 0
