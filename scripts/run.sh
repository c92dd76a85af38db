#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs what is needed, builds relengd in build/, and runs it in the
# foreground with the defaults in etc/: dashboard and API on
# http://127.0.0.1:8080/, state in ./state. Extra arguments go to relengd.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)

sh scripts/deps.sh run
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
  autoreconf -fi
fi
mkdir -p build
cd build
[ -f Makefile ] || ../configure --sysconfdir=/etc
make -j"$(nproc)"
cd "$top"
exec build/core/relengd -c etc/relengd.conf --module-dir "$top/build/modules/.libs" "$@"
