# SPDX-License-Identifier: MIT
# bench/common.sh -- sourced by the bench/*.sh scripts (after they set
# srcdir): messages, the build tree, the temporary directory, and starting
# relengd and waiting for its ready file. Nothing here contacts anything but
# 127.0.0.1.

say() { echo "bench: $*" >&2; }
fail() {
  echo "bench: $*" >&2
  exit 1
}

# bench_build TARGET...: picks the build tree -- $BUILDDIR, the source tree
# when it is configured in place, else build-bench/ under it -- configures it
# when it has no Makefile, and makes the targets. Sets builddir, buildlog and
# relengd.
bench_build() {
  if [ -n "${BUILDDIR:-}" ]; then
    builddir=$BUILDDIR
  elif [ -f "$srcdir/config.status" ]; then
    builddir=$srcdir
  else
    builddir=$srcdir/build-bench
  fi
  mkdir -p "$builddir"
  builddir=$(cd "$builddir" && pwd)
  buildlog=$builddir/bench-build.log
  if [ ! -f "$builddir/Makefile" ]; then
    if [ ! -x "$srcdir/configure" ]; then
      say "autoreconf -fi in $srcdir"
      (cd "$srcdir" && autoreconf -fi) >"$buildlog" 2>&1 || {
        cat "$buildlog" >&2
        fail "autoreconf failed"
      }
    fi
    say "configuring in $builddir"
    (cd "$builddir" && "$srcdir/configure") >>"$buildlog" 2>&1 || {
      tail -20 "$buildlog" >&2
      fail "configure failed (full log: $buildlog)"
    }
  fi
  say "building $* in $builddir (if needed)"
  make -C "$builddir" -j"$(nproc 2>/dev/null || echo 2)" "$@" >>"$buildlog" 2>&1 || {
    tail -30 "$buildlog" >&2
    fail "make failed (full log: $buildlog)"
  }
  relengd=$builddir/core/relengd
}

# Whether process $1 runs (a zombie does not: dash reaps children only in wait).
running() {
  [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]
}

# Only what a benchmark sets reaches the daemon: drops RELENGD_* from the
# environment, and prints a fresh admin token of the daemon's own form.
bench_clean_env() {
  for v in $(env | sed -n 's/^\(RELENGD_[A-Za-z0-9_]*\)=.*/\1/p'); do
    unset "$v"
  done
}
bench_token() {
  echo "rd_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' | cut -c1-43)"
}

# bench_wait_ready READY_FILE KEY PID LOG: prints the port the ready file
# gives for KEY ("api", "proxy", ...) once relengd (pid PID) has written it;
# shows LOG and fails when the daemon exits first or is not ready in 20 s.
# Call it as port=$(bench_wait_ready ...) || exit 1.
bench_wait_ready() {
  i=0
  while [ $i -lt 200 ]; do
    if [ -s "$1" ]; then
      p=$(sed -n "s/.*\"$2\"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p" "$1")
      if [ -n "$p" ]; then
        echo "$p"
        return 0
      fi
    fi
    running "$3" || {
      cat "$4" >&2
      fail "relengd exited before it was ready"
    }
    sleep 0.1
    i=$((i + 1))
  done
  cat "$4" >&2
  fail "relengd was not ready within 20 s"
}
