#!/bin/sh
# Runs tests/test_breaker_redis (the shared breakers' Lua transitions, tests/state/
# test_breaker_redis.c) against a real redis-server started here (tests/redis_lib.sh).
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/redis_lib.sh"
redis_trap
if ! start_redis; then
  not_ok "redis-server started (Debian package redis-server)" "$(cat "$TMP/redis.log" 2>/dev/null)"
  finish
  exit
fi
if FR_TEST_REDIS_URL="$REDIS_URL" "$FR_BUILDDIR/tests/test_breaker_redis"; then
  ok "tests/test_breaker_redis"
else
  not_ok "tests/test_breaker_redis"
fi
finish
