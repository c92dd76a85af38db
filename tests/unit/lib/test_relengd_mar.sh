#!/bin/sh
# SPDX-License-Identifier: MIT
# relengd-mar from a shell: info/list/verify on the real fixtures, create ->
# list -> extract round trips (xz and bzip2, product information, signature
# slots), extract refusing to overwrite, diff -> patch reproducing a file,
# patch refusing the wrong source, and the exit codes (0 done, 1 failed,
# 2 usage).
set -u
top_srcdir=${top_srcdir:-$(dirname "$0")/../../..}
top_builddir=${top_builddir:-.}
mar=$top_builddir/cli/mar/relengd-mar
data=$top_srcdir/tests/unit/lib/data
[ -x "$mar" ] || {
  echo "relengd-mar not built: $mar"
  exit 1
}
work=$(mktemp -d "${TMPDIR:-/tmp}/test_relengd_mar.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM
fails=0
check() { # check DESCRIPTION EXPECTED_RC CMD...
  what=$1
  want=$2
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL: $what: exit $rc, wanted $want"
    cat "$work/out" "$work/err"
    fails=$((fails + 1))
  else
    echo "ok: $what"
  fi
}
has() { # has DESCRIPTION FILE TEXT
  if grep -qF -- "$3" "$2"; then echo "ok: $1"; else
    echo "FAIL: $1: no \"$3\" in:"
    cat "$2"
    fails=$((fails + 1))
  fi
}

check "info bz2 fixture" 0 "$mar" info "$data/build-mar_test-bz2.mar"
has "info shows the signature" "$work/out" "signature 0: algorithm 1 (RSA-PKCS1-SHA1), 256 bytes at 28"
has "info shows the channel" "$work/out" "channel: thunderbird-comm-esr"
check "list xz fixture" 0 "$mar" list "$data/build-mar_test-xz.mar"
has "list shows entries" "$work/out" "$(printf '96\t644\txz\tdefaults/pref/channel-prefs.js')"
check "verify good key" 0 "$mar" verify -k "$data/build-mar_test.pubkey" "$data/build-mar_test-bz2.mar"
check "verify wrong key" 1 "$mar" verify -k "$data/autograph_testmar-2048.pub.pem" \
  "$data/build-mar_test-bz2.mar"
has "verify names the failure" "$work/err" "does not verify"
check "verify unsigned" 1 "$mar" verify -k "$data/build-mar_test.pubkey" "$data/build-mar_test-xz.mar"
has "unsigned is said" "$work/err" "not signed"
check "verify without key" 2 "$mar" verify "$data/build-mar_test-bz2.mar"
check "unknown command" 2 "$mar" frobnicate
check "no command" 2 "$mar"
check "help" 0 "$mar" --help
check "info of a non-MAR" 1 "$mar" info "$data/SOURCES.md"
has "non-MAR is said" "$work/err" "not a MAR file"

# create -> list -> extract
mkdir -p "$work/tree/dir"
printf 'hello\n' >"$work/tree/a.txt"
head -c 100000 /dev/zero | tr '\0' 'z' >"$work/tree/dir/big"
chmod 755 "$work/tree/dir/big"
for c in -J -j; do
  check "create $c" 0 "$mar" create -C "$work/tree" -H release -V 1.0 -s 2:512 $c \
    "$work/out$c.mar" a.txt dir/big
  check "info of created $c" 0 "$mar" info "$work/out$c.mar"
  has "created has product info" "$work/out" "version: 1.0"
  has "created has the slot" "$work/out" "algorithm 2 (RSA-PKCS1-SHA384), 512 bytes"
  check "list created $c" 0 "$mar" list "$work/out$c.mar"
  has "mode kept" "$work/out" "$(printf '\t755\t')"
  check "extract created $c" 0 "$mar" extract -C "$work/x$c" "$work/out$c.mar"
  if cmp -s "$work/tree/a.txt" "$work/x$c/a.txt" && cmp -s "$work/tree/dir/big" "$work/x$c/dir/big"; then
    echo "ok: extracted files equal ($c)"
  else
    echo "FAIL: extracted files differ ($c)"
    fails=$((fails + 1))
  fi
  check "extract again refuses to overwrite" 1 "$mar" extract -C "$work/x$c" "$work/out$c.mar"
  has "overwrite is said" "$work/err" "already exists"
done
check "create with a hostile name" 1 "$mar" create -C "$work/tree" "$work/bad.mar" ../tree/a.txt
has "hostile name is said" "$work/err" "path component"
check "create with -H but no -V" 2 "$mar" create -H x "$work/bad.mar" a.txt

# diff -> patch
head -c 300000 /dev/urandom >"$work/old"
{ head -c 1000 "$work/old"; printf 'inserted'; tail -c +1001 "$work/old"; } >"$work/new"
check "diff" 0 "$mar" diff "$work/old" "$work/new" "$work/p"
if [ "$(head -c 8 "$work/p")" = MBDIFF10 ]; then echo "ok: MBDIFF10 magic"; else
  echo "FAIL: no MBDIFF10 magic"
  fails=$((fails + 1))
fi
check "patch" 0 "$mar" patch "$work/old" "$work/p" "$work/new2"
if cmp -s "$work/new" "$work/new2"; then echo "ok: patch reproduces new"; else
  echo "FAIL: patch result differs"
  fails=$((fails + 1))
fi
check "patch on the wrong source" 1 "$mar" patch "$work/new" "$work/p" "$work/new3"
has "wrong source is said" "$work/err" "source length"
check "patch with a missing file" 1 "$mar" patch "$work/old" "$work/nonexistent" "$work/new3"
check "diff usage" 2 "$mar" diff "$work/old"

[ "$fails" -eq 0 ] || {
  echo "$fails failures"
  exit 1
}
