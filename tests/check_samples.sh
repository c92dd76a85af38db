#!/bin/sh
# SPDX-License-Identifier: MIT
# Every configuration key is documented where admins look: each module's
# etc/modules.d/NAME.conf lists exactly the keys of the module's table (as
# "# key = default" lines), and etc/relengd.conf mentions every core key.
set -u
src=${top_srcdir:-$(dirname "$0")/..}
build=${top_builddir:-.}
relengd="$build/core/relengd"
bad=0

keys_of() { sed -n 's/^#\{0,1\} *\([a-z_][a-z0-9_]*\) *=.*/\1/p' "$1" | sort -u; }

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

for conf in "$src"/etc/modules.d/*.conf; do
  name=$(basename "$conf" .conf)
  if ! "$relengd" -c "$src/etc/relengd.conf" --module-dir "$build/modules/.libs" \
    --print-sample "$name" >"$tmp/$name.sample" 2>"$tmp/$name.err"; then
    echo "check_samples: $name: $(cat "$tmp/$name.err")"
    bad=$((bad + 1))
    continue
  fi
  keys_of "$tmp/$name.sample" >"$tmp/want"
  keys_of "$conf" >"$tmp/have"
  if ! cmp -s "$tmp/want" "$tmp/have"; then
    echo "check_samples: $conf does not list exactly the module's keys:"
    diff "$tmp/want" "$tmp/have" | sed -n 's/^< /  missing: /p; s/^> /  unknown: /p'
    bad=$((bad + 1))
  else
    echo "check_samples: $name: $(wc -l <"$tmp/want") keys documented"
  fi
done

"$relengd" --print-sample core >"$tmp/core.sample" || exit 1
for k in $(keys_of "$tmp/core.sample"); do
  grep -q -E "^#? *$k *=" "$src/etc/relengd.conf" ||
    { echo "check_samples: etc/relengd.conf does not mention core key '$k'"; bad=$((bad + 1)); }
done
[ "$bad" -eq 0 ] || exit 1
echo "check_samples: core keys documented"
