#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages relengd needs: `deps.sh run` for building
# and running, `deps.sh test` for that plus the test tools (browser, valgrind,
# real HTTP clients, the fuzzer), `deps.sh bench` for that plus the peers the
# benchmarks compare against (nginx, bsdiff, wrk).
# Needs root the first time; does nothing when everything is there already.
set -eu

run_pkgs="build-essential autoconf automake libtool pkg-config
  libsqlite3-dev libevent-dev libcurl4-openssl-dev libssl-dev libbz2-dev
  libjansson-dev libcivetweb-dev libinih-dev libcmocka-dev ca-certificates
  liblzma-dev libdivsufsort-dev"
test_pkgs="chromium valgrind xz-utils clang-format git curl wget python3 clang
  libclang-rt-14-dev"
bench_pkgs="nginx wrk bsdiff hyperfine time"

want="$run_pkgs"
[ "${1:-run}" = test ] && want="$run_pkgs $test_pkgs"
[ "${1:-run}" = bench ] && want="$run_pkgs $test_pkgs $bench_pkgs"

missing=""
for p in $want; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
# Node.js may come from Debian or elsewhere; only install Debian's when absent.
if [ "${1:-run}" != run ]; then
  command -v node >/dev/null 2>&1 || missing="$missing nodejs"
  command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi

if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing Debian packages:$missing" >&2
    echo "deps.sh: run as root, or: apt-get install$missing" >&2
    exit 1
  fi
  echo "deps.sh: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
