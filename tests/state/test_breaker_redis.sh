#!/bin/sh
# Runs tests/test_breaker_redis (the shared breakers' Lua transitions, tests/state/
# test_breaker_redis.c) against a real redis-server started here (tests/redis_lib.sh).
# FR_REDIS_TEST_PROGRAM names another such program (tests/state/test_journal_redis.sh).
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/redis_lib.sh"
redis_trap
if ! start_redis; then
  not_ok "redis-server started (Debian package redis-server)" "$(cat "$TMP/redis.log" 2>/dev/null)"
  finish
  exit
fi
prog=${FR_REDIS_TEST_PROGRAM:-test_breaker_redis}
if FR_TEST_REDIS_URL="$REDIS_URL" "$FR_BUILDDIR/tests/$prog"; then
  ok "tests/$prog"
else
  not_ok "tests/$prog"
fi
finish
