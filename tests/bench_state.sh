#!/bin/sh
# Scale-out with --state redis (make bench; docs/scaling.md): a real redis-server with
# appendonly yes + appendfsync always on a loopback port, serve replicas on the same 2 cores.
#   - a sync run's added latency and Redis round trips, memory vs redis (wrk, 1 connection);
#   - async runs per second end to end (accepted, queued, executed) with 1, 2 and 3 replicas,
#     and the round trips per async run;
#   - the cross-replica bounds: a breaker opened on one replica seen on another (the
#     test_breaker_redis measurement), a cancel sent to one replica stopping a run on another.
# Prints markdown lines starting with "|" or "#" for docs/benchmarks.md.
# env: BENCH_STATE_SECONDS (5): each load phase.
set -eu
FLUXROUTE=$1
SRCDIR=$2
BUILDDIR=$3
SECS=${BENCH_STATE_SECONDS:-5}
command -v wrk >/dev/null || { echo "# skipped: wrk not installed"; exit 0; }
command -v redis-server >/dev/null || { echo "# skipped: redis-server not installed"; exit 0; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fr-bench-state.XXXXXX")
PIDS=""
REDIS_PASS="bench-$$"
RPID=""
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  [ -n "$RPID" ] && kill "$RPID" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
rcli() { REDISCLI_AUTH="$REDIS_PASS" redis-cli -h 127.0.0.1 -p "$RPORT" "$@"; }
for _ in 1 2 3 4 5; do
  RPORT=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 25000 + 30000 ))
  mkdir -p "$TMP/redis"
  redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --requirepass "$REDIS_PASS" \
    --appendonly yes --appendfsync always --dir "$TMP/redis" >"$TMP/redis.log" 2>&1 &
  RPID=$!
  for _ in $(seq 60); do
    [ "$(rcli ping 2>/dev/null)" = PONG ] && break
    sleep 0.05
  done
  [ "$(rcli ping 2>/dev/null)" = PONG ] && break
  kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null || true; RPID=""
done
[ -n "$RPID" ] || { echo "# skipped: redis-server did not start"; exit 0; }
URL="redis://:$REDIS_PASS@127.0.0.1:$RPORT/0"

mkdir -p "$TMP/m"
cp "$SRCDIR/tests/data/serve/echo.yaml" "$TMP/m/"
printf 'router: {namespace: acme}\nagents: [{id: s, plugin: chaos, config: {delay: 30s}}]\npipeline: [{step: s}]\n' \
  >"$TMP/m/slow.yaml"
KEY=bench-key-0123456789
printf 'keys:\n  - {id: bench, sha256: %s, tenant: acme, namespace: acme, role: admin}\n' \
  "$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)" >"$TMP/keys.yaml"
AUTH="Authorization: Bearer $KEY"

# replica NAME ARGS...: starts serve; its URL in $TMP/NAME.url.
replica() {
  name=$1
  shift
  "$FLUXROUTE" serve --addr 127.0.0.1:0 --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" \
    --max-runs 256 --max-runs-per-tenant 256 --enable-chaos "$@" \
    >"$TMP/$name.out" 2>"$TMP/$name.err" &
  PIDS="$PIDS $!"
  for _ in $(seq 200); do
    u=$(sed -n 's/^listening on //p' "$TMP/$name.out")
    [ -n "$u" ] && { echo "$u" >"$TMP/$name.url"; return 0; }
    sleep 0.05
  done
  cat "$TMP/$name.err" >&2
  exit 1
}
stop_replicas() {
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  for p in $PIDS; do wait "$p" 2>/dev/null || true; done
  PIDS=""
}
metric() { # URL NAME: the sum of a metric's series
  curl -s -H "$AUTH" "$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%d\n", s }'
}

wrk_script() { # FILE BODY: a wrk script POSTing BODY that prints "RESULT requests mean_us non2xx"
  cat >"$1" <<LUA
wrk.method = "POST"
wrk.body = '$2'
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.headers["Content-Type"] = "application/json"
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %.1f %d\\n", summary.requests, latency.mean, summary.errors.status))
end
LUA
}
wrk_script "$TMP/sync.lua" '{"manifest": "echo.yaml", "input": {"n": 1}}'
wrk_script "$TMP/async.lua" '{"manifest": "echo.yaml", "input": {"n": 1}, "async": true}'

# ---- sync: memory vs redis ------------------------------------------------------------------
sync_phase() { # NAME STATE: "requests mean_us errors round_trips"
  replica "$1" --state "$2" --concurrency 0
  u=$(cat "$TMP/$1.url")
  wrk -t1 -c1 -d1s -s "$TMP/sync.lua" "$u/v1/run" >/dev/null 2>&1 || true
  before=$(metric "$u" fluxroute_state_round_trips_total)
  set -- $(wrk -t1 -c1 -d"${SECS}s" -s "$TMP/sync.lua" "$u/v1/run" 2>/dev/null | sed -n 's/^RESULT //p')
  after=$(metric "$u" fluxroute_state_round_trips_total)
  echo "$1 $2 $3 $((after - before))"
  stop_replicas
}
redis_usec() { # Redis's own CPU time in commands so far (INFO commandstats usec)
  rcli INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_[^:]*:calls=[0-9]*,usec=\([0-9]*\),.*/\1/p' | awk '{s += $1} END {print s + 0}'
}
set -- $(sync_phase mem memory)
mem_n=$1 mem_us=$2
echo "| sync run, 1 connection | memory | $mem_n runs | ${mem_us} µs mean | — |"
for fsync in always everysec; do
  rcli CONFIG SET appendfsync "$fsync" >/dev/null
  rcli CONFIG RESETSTAT >/dev/null
  set -- $(sync_phase red "$URL")
  red_n=$1 red_us=$2 red_err=$3 red_trips=$4
  rusec=$(redis_usec)
  echo "| sync run, 1 connection | redis, appendfsync $fsync | $red_n runs ($red_err non-2xx) | ${red_us} µs mean (+$(echo "$red_us $mem_us" | awk '{printf "%.0f", $1 - $2}') µs) | $(echo "$red_trips $red_n" | awk '{printf "%.2f", $1 / $2}') round trips per run (the replica's background watcher included); Redis CPU $(echo "$rusec $red_n" | awk '{printf "%.0f", $1 / $2}') µs per run |"
done
rcli CONFIG SET appendfsync always >/dev/null

# ---- an async submission's latency (the 202): memory vs redis ---------------------------------
async_submit() { # NAME STATE: "requests mean_us errors"
  replica "$1" --state "$2"
  u=$(cat "$TMP/$1.url")
  wrk -t1 -c1 -d1s -s "$TMP/async.lua" "$u/v1/run" >/dev/null 2>&1 || true
  wrk -t1 -c1 -d"${SECS}s" -s "$TMP/async.lua" "$u/v1/run" 2>/dev/null | sed -n 's/^RESULT //p'
  stop_replicas
}
set -- $(async_submit asm memory)
am_n=$1 am_us=$2
set -- $(async_submit asr "$URL")
ar_n=$1 ar_us=$2 ar_err=$3
rcli FLUSHDB >/dev/null
echo "| async submission (the 202), 1 connection | memory | $am_n runs | ${am_us} µs mean | — |"
echo "| async submission (the 202), 1 connection | redis, appendfsync always | $ar_n runs ($ar_err non-2xx) | ${ar_us} µs mean (+$(echo "$ar_us $am_us" | awk '{printf "%.0f", $1 - $2}') µs) | 2 round trips (the queued record, the entry) |"

# ---- async: 1, 2, 3 replicas ----------------------------------------------------------------
for n in 1 2 3; do
  rcli FLUSHDB >/dev/null
  rcli CONFIG RESETSTAT >/dev/null
  urls=""
  for i in $(seq 1 "$n"); do
    replica "a$i" --state "$URL"
    urls="$urls $(cat "$TMP/a$i.url")"
  done
  t0=$(date +%s%N)
  trips0=0
  for u in $urls; do trips0=$((trips0 + $(metric "$u" fluxroute_state_round_trips_total))); done
  i=0
  for u in $urls; do
    i=$((i + 1))
    wrk -t1 -c8 -d"${SECS}s" -s "$TMP/async.lua" "$u/v1/run" >"$TMP/wrk$i.txt" 2>&1 &
  done
  # Each wrk prints its RESULT line when it ends.
  for i in $(seq 1 "$n"); do
    for _ in $(seq $((SECS * 40 + 400))); do grep -q '^RESULT' "$TMP/wrk$i.txt" 2>/dev/null && break; sleep 0.05; done
  done
  accepted=0
  for i in $(seq 1 "$n"); do
    set -- $(sed -n 's/^RESULT //p' "$TMP/wrk$i.txt")
    accepted=$((accepted + $1 - $3))
  done
  # Until every accepted run has executed (the replicas' executions, summed).
  done_n=0
  for _ in $(seq 1200); do
    done_n=0
    for u in $urls; do done_n=$((done_n + $(metric "$u" fluxroute_run_executions_total))); done
    [ "$done_n" -ge "$accepted" ] && break
    sleep 0.05
  done
  t1=$(date +%s%N)
  trips1=0
  for u in $urls; do trips1=$((trips1 + $(metric "$u" fluxroute_state_round_trips_total))); done
  ms=$(( (t1 - t0) / 1000000 ))
  # Redis's own CPU time in commands (INFO commandstats usec), per executed run.
  rusec=$(redis_usec)
  echo "| async runs, $n replica(s) | redis | $accepted accepted, $done_n executed | $(echo "$done_n $ms" | awk '{printf "%.0f", $1 * 1000 / $2}') runs/s end to end | $(echo "$trips1 $trips0 $done_n" | awk '{printf "%.2f", ($1 - $2) / $3}') round trips per run; Redis CPU $(echo "$rusec $done_n" | awk '{printf "%.0f", $1 / $2}') µs per run |"
  stop_replicas
done

# ---- cross-replica bounds -------------------------------------------------------------------
rcli FLUSHDB >/dev/null
replica ca --state "$URL" --concurrency 4
replica cb --state "$URL" --concurrency 0
A=$(cat "$TMP/ca.url")
B=$(cat "$TMP/cb.url")
worst=0
for _ in 1 2 3 4 5; do
  id=$(curl -s -H "$AUTH" -H 'Content-Type: application/json' -d '{"manifest": "slow.yaml", "async": true}' "$A/v1/run" | jq -r .run_id)
  # Wait until it executes (on A: B consumes nothing).
  for _ in $(seq 200); do
    [ "$(curl -s -H "$AUTH" "$B/v1/runs/$id" | jq -r .status)" = running ] && break
    sleep 0.02
  done
  t0=$(date +%s%N)
  curl -s -o /dev/null -X DELETE -H "$AUTH" "$B/v1/runs/$id"
  for _ in $(seq 500); do
    [ "$(curl -s -H "$AUTH" "$B/v1/runs/$id" | jq -r .status)" = cancelled ] && break
    sleep 0.01
  done
  t1=$(date +%s%N)
  ms=$(( (t1 - t0) / 1000000 ))
  [ "$ms" -gt "$worst" ] && worst=$ms
done
stop_replicas
echo "| cancel sent to replica B, run executing on A | redis | 5 runs | worst ${worst} ms to cancelled (bound 1 s) | — |"
if [ -x "$BUILDDIR/tests/test_breaker_redis" ]; then
  FLUXROUTE=$FLUXROUTE FR_SRCDIR=$SRCDIR FR_BUILDDIR=$BUILDDIR sh "$SRCDIR/tests/state/test_breaker_redis.sh" 2>/dev/null |
    sed -n 's/^# measured: //p' | sed 's/^/# breakers: /'
fi
