#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/partials.sh -- partial-update generation speed.
#
# Part 1, the differ: relengd-mar diff (lib/mbsdiff: MBDIFF10 on a
# libdivsufsort suffix array) against Debian's bsdiff 4.3, side by side on
# the same pairs of real binaries, in one run:
#   mar-O2     relengd-mar (with libcrypto, liblzma, libbz2 linked in
#              statically: several MiB), built twice with -O2, the second
#              time with a one-line source change;
#   mar-g      the same two builds with -g (debug information);
#   libjvm     two releases of the JVM's libjvm.so, when two JDKs are
#              installed (a large, much changed pair; BENCH_LARGE=0 skips).
# For each: wall and CPU time (best of BENCH_RUNS), peak RSS (/usr/bin/time
# %M), patch size -- bsdiff's own (bzip2 inside) against ours compressed as
# Mozilla's packaging does (xz -7e --check=crc64, no BCJ) and, for the same
# compressor, with bzip2 -9 -- and the ratios. Both patches are applied back
# (bspatch, relengd-mar patch) and compared with the new file.
#
#   bench/partials.sh                  3 runs per tool and pair
#   BENCH_RUNS=5 BENCH_LARGE=0 bench/partials.sh
#   BUILDDIR=/path/to/build bench/partials.sh   use (and build) that tree
#
# Needs bsdiff, /usr/bin/time, xz, bzip2: sh scripts/deps.sh bench
set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
runs=${BENCH_RUNS:-3}
large=${BENCH_LARGE:-1}

. "$srcdir/bench/common.sh"

case "$runs" in
'' | *[!0-9]*) fail "BENCH_RUNS must be a whole number" ;;
esac
[ "$runs" -ge 1 ] && [ "$runs" -le 20 ] || fail "BENCH_RUNS must be 1..20"
for t in bsdiff bspatch xz bzip2 cc; do
  command -v "$t" >/dev/null 2>&1 || fail "$t not found: run sh scripts/deps.sh bench (as root)"
done
[ -x /usr/bin/time ] || fail "/usr/bin/time not found: run sh scripts/deps.sh bench (as root)"

# ------------------------------------------------------------------ build
bench_build cli/mar/relengd-mar
mar=$builddir/cli/mar/relengd-mar

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# ------------------------------------------------------------------ pairs
# Two builds of relengd-mar: the sources as they are, and a copy with one
# line added to main()'s usage output (every later function moves, as in a
# real rebuild).
mkdir -p "$work/src2"
cp -R "$srcdir/lib" "$srcdir/cli" "$srcdir/core" "$work/src2/"
sed 's|^    fputs("\\nExit status|    fputs("\\nSee lib/README.md.\\n", f);\n    fputs("\\nExit status|' \
  "$srcdir/cli/mar/relengd-mar.c" >"$work/src2/cli/mar/relengd-mar.c"
cmp -s "$srcdir/cli/mar/relengd-mar.c" "$work/src2/cli/mar/relengd-mar.c" &&
  fail "the one-line change did not apply to cli/mar/relengd-mar.c"
build_mar() { # build_mar SRC FLAGS OUT
  s=$1
  # shellcheck disable=SC2086 # FLAGS is a list
  cc $2 -include "$builddir/config.h" -I"$s" -I"$builddir" \
    $(pkg-config --cflags liblzma libdivsufsort libcrypto) -D_GNU_SOURCE -o "$3" \
    "$s"/lib/mar/*.c "$s"/lib/mbsdiff/*.c "$s"/lib/hash/*.c "$s"/lib/partial/*.c "$s"/cli/mar/*.c \
    -Wl,-Bstatic -llzma -lbz2 -lcrypto -Wl,-Bdynamic -ldivsufsort -lpthread -ldl \
    >>"$work/cc.log" 2>&1 || {
    tail -20 "$work/cc.log" >&2
    fail "building the relengd-mar pair failed"
  }
}
say "building the binary pairs"
build_mar "$srcdir" "-O2" "$work/mar-O2.old"
build_mar "$work/src2" "-O2" "$work/mar-O2.new"
build_mar "$srcdir" "-O2 -g" "$work/mar-g.old"
build_mar "$work/src2" "-O2 -g" "$work/mar-g.new"
pairs="mar-O2 mar-g"
if [ "$large" = 1 ]; then
  # Two different files (JDK directories are often symlinks of each other).
  jvm_old=""
  jvm_new=""
  for f in /usr/lib/jvm/*/lib/server/libjvm.so; do
    [ -f "$f" ] || continue
    if [ -z "$jvm_old" ]; then
      jvm_old=$f
    elif ! cmp -s "$f" "$jvm_old"; then
      jvm_new=$f
      break
    fi
  done
  if [ -n "$jvm_new" ]; then
    say "libjvm pair: $jvm_old -> $jvm_new"
    cp "$jvm_old" "$work/libjvm.old"
    cp "$jvm_new" "$work/libjvm.new"
    pairs="$pairs libjvm"
  else
    say "fewer than two JDKs installed: no libjvm pair"
  fi
fi

# ------------------------------------------------------------ measuring
# best_of CMD...: runs CMD $runs times; prints "wall cpu rss_kb" of the run
# with the least wall time.
best_of() {
  best=""
  i=0
  while [ "$i" -lt "$runs" ]; do
    /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || {
      cat "$work/err" >&2
      fail "$* failed"
    }
    line=$(awk '{ printf "%.2f %.2f %d\n", $1, $2 + $3, $4 }' "$work/time")
    if [ -z "$best" ] || awk -v a="$line" -v b="$best" \
      'BEGIN { split(a, x, " "); split(b, y, " "); exit !(x[1] < y[1]) }'; then
      best=$line
    fi
    i=$((i + 1))
  done
  echo "$best"
}
size() { wc -c <"$1" | tr -d ' '; }

printf '%-7s %7s %7s | %8s %8s %6s | %8s %8s %6s | %8s %8s %6s | %8s %8s %6s | %8s %6s\n' \
  pair old_MiB new_MiB bsdiff_s mbs_s speed bsd_cpu mbs_cpu speed bsd_MiB mbs_MiB mem \
  bsd_B mbs_xzB size mbs_bzB size >"$work/table"
for p in $pairs; do
  old=$work/$p.old
  new=$work/$p.new
  say "$p: bsdiff x$runs"
  b=$(best_of bsdiff "$old" "$new" "$work/$p.bsdiff")
  say "$p: relengd-mar diff x$runs"
  m=$(best_of "$mar" diff "$old" "$new" "$work/$p.mbdiff")
  # Both patches must reproduce the new file.
  bspatch "$old" "$work/$p.check" "$work/$p.bsdiff"
  cmp -s "$work/$p.check" "$new" || fail "$p: bspatch did not reproduce the new file"
  "$mar" patch "$old" "$work/$p.mbdiff" "$work/$p.check"
  cmp -s "$work/$p.check" "$new" || fail "$p: relengd-mar patch did not reproduce the new file"
  # Compressed as make_incremental_update.sh compresses a patch.
  xz --compress --lzma2 --format=xz --check=crc64 -T1 -7e -c "$work/$p.mbdiff" >"$work/$p.mbdiff.xz"
  bzip2 -9 -c "$work/$p.mbdiff" >"$work/$p.mbdiff.bz2"
  # shellcheck disable=SC2086 # word splitting of the measurements is wanted
  set -- $b $m
  awk -v p="$p" -v o="$(size "$old")" -v n="$(size "$new")" \
    -v bw="$1" -v bc="$2" -v br="$3" -v mw="$4" -v mc="$5" -v mr="$6" \
    -v bs="$(size "$work/$p.bsdiff")" -v mx="$(size "$work/$p.mbdiff.xz")" \
    -v mb="$(size "$work/$p.mbdiff.bz2")" 'BEGIN {
      d = 1048576
      printf "%-7s %7.2f %7.2f | %8.2f %8.2f %5.1fx | %8.2f %8.2f %5.1fx | %8.1f %8.1f %6.2f | %8d %8d %6.3f | %8d %6.3f\n",
        p, o / d, n / d, bw, mw, (mw > 0 ? bw / mw : 0), bc, mc, (mc > 0 ? bc / mc : 0),
        br / 1024, mr / 1024, mr / br, bs, mx, mx / bs, mb, mb / bs
    }' >>"$work/table"
done

echo
echo "Differ: Debian bsdiff 4.3 vs relengd-mar diff (lib/mbsdiff), best of $runs runs each"
echo "speed = bsdiff time / ours; mem = our peak RSS / bsdiff's; size = our patch / bsdiff's"
echo "(mbs_xzB: ours under xz -7e --check=crc64 as Mozilla ships patches; mbs_bzB: ours under"
echo " bzip2 -9, the compressor bsdiff uses inside its own patch)"
echo
cat "$work/table"

# =================================================== part 2: generation
# Partial generation on the daemon (modules/partials), the half that the
# diff cache is for. Two builds made of the pairs above (each binary a file
# of the tree) plus a 2 MiB text resource changed on one line, locale files,
# channel-prefs.js, update-settings.ini, precomplete and removed-files; the
# from and to trees of two locales (en-US, de) that differ only in their
# locale files. Both pairs of complete MARs are uploaded to a relengd with
# the partials module (temporary state, 127.0.0.1 port 0, default
# cache_min_size) and the en-US job runs first, then de. Reported: each
# job's wall time and phases (from the job), cache hits and misses, and the
# daemon's CPU use during the job from /proc (cores busy on average, and
# over the busiest second). Targets: de under 20% of en-US's time thanks to
# the cache; both cores busy during a job. BENCH_GEN=0 skips this part.
if [ "${BENCH_GEN:-1}" = 1 ]; then
  bench_build core/relengd modules/partials.la
  command -v curl >/dev/null 2>&1 || fail "curl not found: install the Debian package curl"
  gen=$work/gen
  mkdir -p "$gen"

  # text resource, 2 MiB; the to build changes one line
  awk 'BEGIN { for (i = 0; i < 40000; i++) printf "resource.%d = the value of resource number %d\n", i, i * 7 }' \
    >"$gen/omni.old"
  sed 's/^resource.20000 = .*/resource.20000 = changed in the new build/' "$gen/omni.old" >"$gen/omni.new"
  make_tree() { # make_tree DIR old|new LOCALE
    d=$1
    mkdir -p "$d/bin" "$d/browser" "$d/defaults/pref" "$d/locale"
    cp "$work/mar-O2.$2" "$d/bin/relengd-mar"
    cp "$work/mar-g.$2" "$d/bin/relengd-mar-debug"
    if [ -f "$work/libjvm.$2" ]; then
      mkdir -p "$d/lib"
      cp "$work/libjvm.$2" "$d/lib/libjvm.so"
    fi
    cp "$gen/omni.$2" "$d/browser/omni.ja"
    printf 'title = %s %s\n' "$3" "$2" >"$d/locale/strings.properties"
    printf 'pref("app.update.channel", "release");\n' >"$d/defaults/pref/channel-prefs.js"
    printf '[Settings]\nACCEPTED_MAR_CHANNEL_IDS=bench-release\n' >"$d/update-settings.ini"
    printf 'remove "bin/relengd-mar"\n' >"$d/precomplete"
    printf 'obsolete/\n' >"$d/removed-files"
    if [ "$2" = old ]; then mkdir -p "$d/obsolete" && echo gone >"$d/obsolete/file.txt"; fi
  }
  pack() { # pack DIR OUT VERSION
    (cd "$1" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$gen/list"
    # shellcheck disable=SC2046 # one argument per file name (no spaces in them)
    "$mar" create -C "$1" -H bench-release -V "$3" "$2" $(cat "$gen/list") ||
      fail "relengd-mar create $2 failed"
  }
  for loc in en-US de; do
    make_tree "$gen/from-$loc" old "$loc"
    make_tree "$gen/to-$loc" new "$loc"
    pack "$gen/from-$loc" "$gen/from-$loc.mar" 1.0
    pack "$gen/to-$loc" "$gen/to-$loc.mar" 2.0
  done

  state=$gen/state
  pid=""
  # shellcheck disable=SC2317 # called by the EXIT trap
  stop_daemon() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
  }
  trap stop_daemon EXIT
  bench_clean_env
  token=$(bench_token)
  RELENGD_ADMIN_TOKEN=$token "$relengd" -c "$srcdir/etc/relengd.conf" \
    --state-dir "$state" --listen 127.0.0.1:0 --ready-file "$gen/ready.json" \
    --module-dir "$builddir/modules/.libs" --modules partials --log-level warn \
    >"$gen/relengd.log" 2>&1 </dev/null &
  pid=$!
  port=$(bench_wait_ready "$gen/ready.json" api "$pid" "$gen/relengd.log") || exit 1
  base=http://127.0.0.1:$port/api/v1/partials
  auth="Authorization: Bearer $token"
  upload() {
    curl -fsS --max-time 120 -H "$auth" -H 'Content-Type: application/octet-stream' \
      --data-binary "@$1" "$base/uploads" | sed -n 's/.*"id"[[:space:]]*:[[:space:]]*"\([0-9a-f]*\)".*/\1/p'
  }
  jnum() { sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p"; }
  cpu_ticks() { sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }'; }
  # thread_ticks FILE: "tid ticks" of every daemon thread (utime + stime)
  thread_ticks() {
    for tf in /proc/"$pid"/task/*/stat; do
      tdir=${tf%/stat}
      sed 's/.*) //' "$tf" 2>/dev/null | awk -v t="${tdir##*/}" '{ print t, $12 + $13 }'
    done >"$1"
  }
  tck=$(getconf CLK_TCK)
  ncpu=$(nproc 2>/dev/null || echo 2)
  printf '%-6s %8s %8s %8s %8s %8s %8s %8s %5s %6s %6s %6s %7s %13s\n' locale wall_s download \
    unpack diff pack verify sign hits misses bypass cores peak1s busiest2_cpu_s >"$gen/table"
  first_ms=""
  for loc in en-US de; do
    from_id=$(upload "$gen/from-$loc.mar")
    to_id=$(upload "$gen/to-$loc.mar")
    [ -n "$from_id" ] && [ -n "$to_id" ] || fail "uploading the $loc MARs failed"
    : >"$gen/samples"
    thread_ticks "$gen/threads0"
    c0=$(cpu_ticks)
    w0=$(date +%s%N)
    id=$(curl -fsS -H "$auth" -H 'Content-Type: application/json' --data \
      "{\"from_upload\":\"$from_id\",\"to_upload\":\"$to_id\",\"platform\":\"linux64\",\"locale\":\"$loc\",\"update_number\":1}" \
      "$base/jobs" | jnum id)
    [ -n "$id" ] || fail "POST /jobs failed for $loc"
    # sample the daemon's CPU ticks every 100 ms until the job ends (bounded)
    n=0
    while [ $n -lt 6000 ]; do
      echo "$(date +%s%N) $(cpu_ticks)" >>"$gen/samples"
      curl -fsS -H "$auth" "$base/jobs/$id" >"$gen/job.json"
      grep -q '"state": *"\(done\|failed\)"' "$gen/job.json" && break
      sleep 0.1
      n=$((n + 1))
    done
    w1=$(date +%s%N)
    c1=$(cpu_ticks)
    thread_ticks "$gen/threads1"
    # the two threads that worked most during the job, in CPU seconds
    busiest=$(awk -v tck="$tck" 'NR == FNR { a[$1] = $2; next } { d = $2 - ($1 in a ? a[$1] : 0);
      if (d > b1) { b2 = b1; b1 = d } else if (d > b2) b2 = d }
      END { printf "%.2f+%.2f", b1 / tck, b2 / tck }' "$gen/threads0" "$gen/threads1")
    grep -q '"state": *"done"' "$gen/job.json" || {
      cat "$gen/job.json" >&2
      fail "the $loc job did not finish done"
    }
    tr ',' '\n' <"$gen/job.json" | tr -d '{}' >"$gen/job.lines"
    ph() { v=$(grep "\"$1\":" "$gen/job.lines" | head -1 | sed 's/.*: *//'); echo "${v:-0}"; }
    started=$(jnum started_ms <"$gen/job.json")
    finished=$(jnum finished_ms <"$gen/job.json")
    wall_ms=$((finished - started))
    [ -n "$first_ms" ] || first_ms=$wall_ms
    [ -n "${first_cpu:-}" ] || first_cpu=$((c1 - c0))
    second_cpu=$((c1 - c0))
    # the busiest second: the largest tick increase over 10 consecutive samples
    peak=$(awk -v tck="$tck" '{ t[NR] = $1; c[NR] = $2 }
      END { best = 0; for (i = 11; i <= NR; i++) { dt = (t[i] - t[i - 10]) / 1e9;
        if (dt > 0) { u = (c[i] - c[i - 10]) / tck / dt; if (u > best) best = u } } printf "%.2f", best }' \
      "$gen/samples")
    awk -v loc="$loc" -v w="$wall_ms" -v dl="$(ph download)" -v un="$(ph unpack)" \
      -v df="$(ph diff)" -v pk="$(ph pack)" -v vf="$(ph verify)" -v sg="$(ph sign)" \
      -v h="$(ph cache_hits)" -v m="$(ph cache_misses)" -v b="$(ph cache_bypassed)" \
      -v dc="$((c1 - c0))" -v dw="$((w1 - w0))" -v tck="$tck" -v pk1="$peak" -v bt="$busiest" 'BEGIN {
        printf "%-6s %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %5d %6d %6d %6.2f %7.2f %13s\n",
          loc, w / 1000, dl / 1000, un / 1000, df / 1000, pk / 1000, vf / 1000, sg / 1000,
          h, m, b, dc / tck / (dw / 1e9), pk1, bt }' >>"$gen/table"
    second_ms=$wall_ms
  done

  echo
  echo "Generation: relengd partials jobs (upload -> done), en-US first, then de sharing"
  echo "every file but the locale's; times in seconds from the job's phases; cores = the"
  echo "daemon's CPU time / wall time while the job ran ($ncpu cores here); peak1s = the"
  echo "busiest second; busiest2_cpu_s = CPU seconds of the two busiest daemon threads"
  echo "(the pool's; both near the diff time = both cores diffing; the load average was"
  echo "$(cut -d' ' -f1-3 /proc/loadavg) when the table was printed, other work competes)"
  echo
  cat "$gen/table"
  awk -v a="$first_ms" -v b="$second_ms" -v ca="$first_cpu" -v cb="$second_cpu" 'BEGIN {
    printf "\nsecond locale / first, wall time: %.3f (target < 0.20): %s\n", b / a, (b < 0.2 * a ? "met" : "NOT met")
    printf "second locale / first, daemon CPU time: %.3f (the work; wall time also counts waiting for\n", (ca > 0 ? cb / ca : 0)
    printf "  the CPU when the machine is loaded)\n" }'
  ls -l "$state/partials/jobs"/*/partial.mar 2>/dev/null | awk '{ printf "partial: %s bytes\n", $5 }'
fi
