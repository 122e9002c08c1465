#!/bin/sh
# End-to-end tests of --state (core/state/): the URLs serve accepts and refuses (exit 2,
# the password masked), and a serve whose Redis is reachable or not.  The cluster tests of
# the state's parts (records, queue, breakers) are in their own scripts.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "${FR_SRCDIR:-.}/tests/redis_lib.sh"
redis_trap

# Bad URLs: exit 2 before anything starts, naming --state and never the password.
for bad in "rediss://:hunter2@127.0.0.1:6379" "http://127.0.0.1:6379" "redis://:hunter2@127.0.0.1:99999" \
  "redis://127.0.0.1:6379/x" "redis://:hunter2@" "mongodb://u:hunter2@h" "u:hunter2@h:1"; do
  fr serve --addr 127.0.0.1:0 --manifest-dir "$TMP" --keys /dev/null --state "$bad"
  expect_rc "--state $bad" 2
  expect_err "--state $bad: names the option" "--state"
  if grep -q hunter2 "$TMP/err"; then not_ok "--state $bad: password masked" "$(cat "$TMP/err")"
  else ok "--state $bad: password masked"; fi
done
fr serve --addr 127.0.0.1:0 --manifest-dir "$TMP" --keys /dev/null --state "rediss://h"
expect_err "rediss: says TLS is not supported" "TLS (rediss://) is not supported"
fr serve --addr 127.0.0.1:0 --manifest-dir "$TMP" --keys /dev/null --state "http://h:1"
expect_err "unknown scheme: named" "unknown scheme 'http://'"
ROUTER_STATE_URL="ftp://x" fr serve --addr 127.0.0.1:0 --manifest-dir "$TMP" --keys /dev/null
expect_rc "ROUTER_STATE_URL is read" 2
expect_err "ROUTER_STATE_URL: the scheme named" "unknown scheme 'ftp://'"
ROUTER_STATE_PREFIX="a b" fr serve --addr 127.0.0.1:0 --manifest-dir "$TMP" --keys /dev/null \
  --state redis://127.0.0.1:1
expect_rc "a bad ROUTER_STATE_PREFIX" 2
expect_err "a bad ROUTER_STATE_PREFIX: named" "key prefix 'a b'"

[ "$failed" -eq 0 ]
