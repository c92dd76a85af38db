#!/bin/sh
# SPDX-License-Identifier: MIT
# Source checks (after curl's checksrc): banned functions, the one module
# boundary (a module includes only core/module.h and core/services/*.h from
# the core), host-owned APIs used outside core/, missing SPDX lines, and
# unfinished-work markers. Prints each finding as file:line and fails.
set -u
cd "${top_srcdir:-$(dirname "$0")/..}" || exit 1
bad=0
report() { echo "checksrc: $1"; bad=$((bad + 1)); }

src=$(find core modules lib cli -name '*.[ch]' 2>/dev/null | sort)
all=$(find core modules lib cli tests -name '*.[ch]' -not -path '*/node_modules/*' 2>/dev/null | sort)

# 1. Banned functions in product code (tests may use what they like).
for f in $src; do
  grep -n -E '(^|[^_a-zA-Z0-9])(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|system)[[:space:]]*\(' "$f" |
    grep -v -E '^[0-9]+:[[:space:]]*(/\*|\*)' | while IFS= read -r l; do
      echo "checksrc: $f:${l%%:*}: banned function: ${l#*:}"
    done
done >/tmp/checksrc.$$
[ -s /tmp/checksrc.$$ ] && { cat /tmp/checksrc.$$; bad=$((bad + $(wc -l </tmp/checksrc.$$))); }
rm -f /tmp/checksrc.$$

# 2. The module boundary, and host-owned APIs outside core/.
for f in $(find modules -name '*.[ch]' 2>/dev/null); do
  mod=$(echo "$f" | cut -d/ -f2)
  grep -n '^#include "' "$f" | while IFS= read -r l; do
    inc=$(echo "$l" | sed 's/.*#include "\([^"]*\)".*/\1/')
    case "$inc" in
    config.h | core/module.h | core/services/*.h | "modules/$mod/"* | lib/*) ;;
    *.json.h) ;;
    *) echo "checksrc: $f:${l%%:*}: module includes \"$inc\" (only core/module.h, core/services/*.h, lib/ and its own files)" ;;
    esac
  done
  grep -n -E '(curl_global_|mg_[a-z_]+\(|sqlite3_open|sqlite3_close|event_base_(dispatch|loopbreak|loopexit|free)|pthread_create|[^a-z_]exit\(|abort\(|setenv\(|chdir\(|fork\()' "$f" |
    while IFS= read -r l; do
      echo "checksrc: $f:${l%%:*}: host-owned call in a module: ${l#*:}"
    done
done >/tmp/checksrc.$$
[ -s /tmp/checksrc.$$ ] && { cat /tmp/checksrc.$$; bad=$((bad + $(wc -l </tmp/checksrc.$$))); }
rm -f /tmp/checksrc.$$

# 3. Every source file says its licence; no unfinished-work markers.
for f in $all; do
  head -n 3 "$f" | grep -q 'SPDX-License-Identifier' || report "$f:1: no SPDX-License-Identifier line"
  grep -n -E '(TODO|FIXME|[^X]XXX[^X])' "$f" | while IFS= read -r l; do
    echo "checksrc: $f:${l%%:*}: unfinished-work marker"
  done
done >/tmp/checksrc.$$
[ -s /tmp/checksrc.$$ ] && { cat /tmp/checksrc.$$; bad=$((bad + $(wc -l </tmp/checksrc.$$))); }
rm -f /tmp/checksrc.$$

n=$(echo "$all" | wc -w)
if [ "$bad" -ne 0 ]; then
  echo "checksrc: $bad problems in $n files"
  exit 1
fi
echo "checksrc: $n files clean"
