#!/bin/sh
# SPDX-License-Identifier: MIT
# automake's LOG_COMPILER: runs one test. Scripts run as they are; programs
# run under valgrind when VALGRIND=1 (leaks and errors fail the test).
test=$1
shift
case "$test" in
*.sh) exec sh "$test" "$@" ;;
esac
if [ "${VALGRIND:-0}" = 1 ]; then
  exec valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --track-fds=no "$test" "$@"
fi
exec "$test" "$@"
