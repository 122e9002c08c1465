# A real redis-server for end-to-end tests, on a random loopback port with a password,
# in $TMP.  Source after tests/lib.sh (or serve_lib.sh).
#   start_redis [ARGS...]  starts it (extra redis-server arguments, e.g. --appendonly yes
#                          --appendfsync always); 1 when it could not start
#   stop_redis             stops it (SIGTERM) and waits; kill_redis stops it with SIGKILL
#   restart_redis [ARGS...] starts it again on the same port, with the same directory
#   rcli ARGS...           redis-cli against it
# Sets RPORT, RPID and REDIS_URL (redis://:PASSWORD@127.0.0.1:PORT/1).  The caller's EXIT
# trap must call stop_redis (redis_trap installs one that also removes $TMP).
REDIS_PASS="e2e-pw-$$"
RPID=""
RPORT=""
REDIS_URL=""
REDIS_ARGS=""
stop_redis() {
  if [ -n "$RPID" ]; then kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; RPID=""; fi
}
kill_redis() {
  if [ -n "$RPID" ]; then kill -9 "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; RPID=""; fi
}
redis_trap() {
  trap 'stop_redis; rm -rf "$TMP"' EXIT
  trap 'exit 130' INT TERM
}

rcli() { REDISCLI_AUTH="$REDIS_PASS" redis-cli -h 127.0.0.1 -p "$RPORT" "$@"; }

# Starts redis-server on $RPORT and waits (at most 3 s) until it answers PING.
redis_up() {
  mkdir -p "$TMP/redis"
  # shellcheck disable=SC2086
  redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --requirepass "$REDIS_PASS" \
    --dir "$TMP/redis" "$@" >>"$TMP/redis.log" 2>&1 &
  RPID=$!
  for _ in $(seq 60); do
    kill -0 "$RPID" 2>/dev/null || break
    if [ "$(rcli ping 2>/dev/null)" = PONG ] && kill -0 "$RPID" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  stop_redis
  return 1
}

start_redis() {
  for _ in 1 2 3 4 5 6 7 8; do
    RPORT=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 25000 + 30000 ))
    if redis_up "$@"; then
      REDIS_URL="redis://:$REDIS_PASS@127.0.0.1:$RPORT/1"
      return 0
    fi
  done
  return 1
}

restart_redis() {
  for _ in $(seq 40); do
    redis_up "$@" && return 0
    sleep 0.1
  done
  return 1
}
