#!/bin/sh
# Runs tests/test_journal_redis (the Redis journal backend, tests/state/
# test_journal_redis.c) against a real redis-server, as tests/state/test_breaker_redis.sh
# runs its program.
FR_REDIS_TEST_PROGRAM=test_journal_redis
. "${FR_SRCDIR:-.}/tests/state/test_breaker_redis.sh"
