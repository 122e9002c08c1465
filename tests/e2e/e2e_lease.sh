#!/bin/sh
# End-to-end tests of coordination leases: processes racing for one key (file and redis
# backends), a holder killed with SIGKILL, renewal past several TTLs, a stolen lease and
# a Redis that goes down (lease_lost), configuration errors and exit 4.  Redis is a
# redis-server this script starts on a random loopback port with a password, and stops.
. "${FR_SRCDIR:-.}/tests/lib.sh"

. "${FR_SRCDIR:-.}/tests/redis_lib.sh"
redis_trap

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# bg NAME ARGS...: fluxroute in the background; NAME.out, NAME.err, NAME.rc in $TMP.
# waitbg waits for those (a bare `wait` would wait for redis-server too).
BG=""
bg() {
  name=$1
  shift
  (timeout 60 "$FLUXROUTE" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null
   echo $? >"$TMP/$name.rc") &
  BG="$BG $!"
}
waitbg() {
  for p in $BG; do wait "$p"; done
  BG=""
}
rc_of() { cat "$TMP/$1.rc" 2>/dev/null; }
# take NAME: makes a background run's output the one expect_* look at.
take() {
  cp "$TMP/$1.out" "$TMP/out"
  cp "$TMP/$1.err" "$TMP/err"
  rc=$(rc_of "$1")
}
token_of() { jq -r '.lease.fencing_token' "$TMP/$1.out" 2>/dev/null; }

# A manifest whose one step waits DELAY (through the host, cancellable).
manifest() { # NAME DELAY [EXTRA ROUTER YAML]
  cat >"$TMP/$1.yaml" <<EOF
router: {namespace: leases${3:+, $3}}
agents:
  - {id: work, plugin: chaos, config: {delay: $2}}
pipeline:
  - {step: work}
EOF
}
manifest slow 5s
manifest quick 150ms
manifest race 300ms
manifest long 4s
# Two independent 4s steps on one worker: when the lease is lost during the first, the
# second has not started and its error carries the lease's message.
cat >"$TMP/long2.yaml" <<EOF
router: {namespace: leases, worker_pool_size: 1, lease: {key: "run:leases:long"}}
agents:
  - {id: work, plugin: chaos, config: {delay: 4s}}
pipeline:
  - {step: first, agent: work}
  - {step: second, agent: work}
EOF
manifest off 10ms "lease: {enabled: false}"
manifest custom 10ms "lease: {key: shared/custom-key}"

CDIR="$TMP/coord"
export COORDINATION_DIR="$CDIR"
unset COORDINATION_ENABLED COORDINATION_MODE COORDINATION_TTL COORDINATION_REDIS_URL \
  COORDINATION_REDIS_PREFIX

# ---- configuration ------------------------------------------------------------------------
fr run "$TMP/quick.yaml" --json
expect_rc "coordination off" 0
expect_jq "coordination off: no lease in the report" '.lease == null'

export COORDINATION_ENABLED=1
COORDINATION_MODE=bogus fr run "$TMP/quick.yaml"
expect_rc "unknown COORDINATION_MODE" 2
expect_err "unknown COORDINATION_MODE" 'COORDINATION_MODE: unknown mode "bogus"'
COORDINATION_ENABLED=perhaps fr run "$TMP/quick.yaml"
expect_rc "invalid COORDINATION_ENABLED" 2
COORDINATION_TTL=5 fr run "$TMP/quick.yaml"
expect_rc "invalid COORDINATION_TTL" 2
expect_err "invalid COORDINATION_TTL" "COORDINATION_TTL"
fr run "$TMP/quick.yaml" --lease-wait soon
expect_rc "invalid --lease-wait" 2
expect_err "invalid --lease-wait" "--lease-wait soon"
COORDINATION_MODE=redis COORDINATION_REDIS_URL='rediss://:topsecret@127.0.0.1:1/0' fr run "$TMP/quick.yaml"
expect_rc "rediss refused" 2
expect_err "rediss refused" "TLS (rediss://) is not supported"
expect_no_err "rediss refused" "topsecret"

# ---- file backend ---------------------------------------------------------------------------
export COORDINATION_MODE=file COORDINATION_TTL=300ms
fr run "$TMP/quick.yaml" --json
expect_rc "file: run with lease" 0
expect_jq "file: report has the lease" '.lease.key == "run:leases:quick" and .lease.fencing_token >= 1'
first=$(jq '.lease.fencing_token' "$TMP/out")
fr run "$TMP/quick.yaml" --json
expect_jq "file: next token is larger" ".lease.fencing_token == $first + 1"
fr run "$TMP/off.yaml" --json
expect_jq "router.lease.enabled false: no lease" '.lease == null'
fr run "$TMP/custom.yaml" --json
expect_jq "router.lease.key" '.lease.key == "shared/custom-key"'
if [ -f "$CDIR/shared%2Fcustom-key.lease" ]; then ok "file: key sanitised into one file"
else not_ok "file: key sanitised into one file" "$(ls "$CDIR")"; fi

# Held elsewhere: exit 4 naming the holder.  The holder's run (5s, TTL 300ms: long enough
# for the checks below to start while it runs on a busy machine or a sanitizer build) keeps
# its lease through renewals: still held after more than three TTLs.
# wait_held BACKEND NAME: until the lease of manifest NAME is held (at most 10s).
wait_held() {
  for _ in $(seq 500); do
    held_$1 "$2" && return 0
    sleep 0.02
  done
  return 1
}

race_checks() { # BACKEND
  b=$1
  bg holder run "$TMP/slow.yaml" --json
  wait_held "$b" slow
  sleep 1  # more than three TTLs
  fr run "$TMP/slow.yaml"
  expect_rc "$b: held elsewhere" 4
  expect_err "$b: held elsewhere" "lease run:leases:slow is held by "
  expect_err "$b: held elsewhere" "--lease-wait"
  fr bench "$TMP/slow.yaml" --runs 2 --warmup 0
  expect_rc "$b: bench held elsewhere" 4
  waitbg
  if [ "$(rc_of holder)" = 0 ] && jq -e '.status == "succeeded" and .lease.fencing_token >= 1' "$TMP/holder.out" >/dev/null; then
    ok "$b: a 5s run with TTL 300ms keeps its lease through renewals"
  else
    not_ok "$b: a 5s run with TTL 300ms keeps its lease through renewals" "rc $(rc_of holder)" "$(cat "$TMP/holder.err")"
  fi

  # Racing without waiting: one runs, the other exits 4 (or both ran, one after the
  # other).  Over several rounds.
  bad=""
  for i in 1 2 3 4 5; do
    t0=$(now_ms)
    bg ra run "$TMP/race.yaml" --json
    bg rb run "$TMP/race.yaml" --json
    waitbg
    dt=$(($(now_ms) - t0))
    a=$(rc_of ra) bb=$(rc_of rb)
    case "$a$bb" in
      04|40) ;;
      00) [ "$dt" -ge 600 ] || bad="$bad round $i: both ran within ${dt}ms;" ;;
      *) bad="$bad round $i: exits $a $bb;" ;;
    esac
  done
  if [ -z "$bad" ]; then ok "$b: racing without --lease-wait: one runs, the other exits 4"
  else not_ok "$b: racing without --lease-wait" "$bad"; fi

  # Racing with --lease-wait: all run, one at a time (the wall time is at least the sum
  # of the delays) and their fencing tokens are consecutive.
  bad=""
  for i in 1 2 3; do
    t0=$(now_ms)
    for p in 1 2 3; do bg w$p run "$TMP/race.yaml" --json --lease-wait 20s; done
    waitbg
    dt=$(($(now_ms) - t0))
    [ "$(rc_of w1)$(rc_of w2)$(rc_of w3)" = 000 ] || bad="$bad round $i: exits $(rc_of w1)$(rc_of w2)$(rc_of w3);"
    [ "$dt" -ge 900 ] || bad="$bad round $i: 3 x 300ms runs took ${dt}ms (overlap);"
    toks=$(for p in 1 2 3; do token_of w$p; done | sort -n | tr '\n' ' ')
    set -- $toks
    [ $# -eq 3 ] && [ "$2" -eq $(($1 + 1)) ] && [ "$3" -eq $(($1 + 2)) ] ||
      bad="$bad round $i: tokens $toks;"
  done
  if [ -z "$bad" ]; then ok "$b: racing with --lease-wait: one at a time, tokens strictly increase"
  else not_ok "$b: racing with --lease-wait" "$bad"; fi

  # A holder killed with SIGKILL: its lease stays until the TTL passes, then another
  # process takes it with a larger token.
  COORDINATION_TTL=500ms timeout 60 "$FLUXROUTE" run "$TMP/long.yaml" --json >"$TMP/k.out" 2>&1 &
  kpid=$!
  wait_held "$b" long
  kill -9 "$kpid"
  wait "$kpid" 2>/dev/null
  killed_token=$(killed_token_$b)
  COORDINATION_TTL=500ms fr run "$TMP/long.yaml" --json
  expect_rc "$b: killed holder's lease still valid" 4
  t0=$(now_ms)
  COORDINATION_TTL=500ms fr run "$TMP/quick.yaml" --json  # another key: unaffected
  expect_rc "$b: other keys unaffected" 0
  manifest long 10ms
  COORDINATION_TTL=500ms fr run "$TMP/long.yaml" --json --lease-wait 10s
  expect_rc "$b: taken over after the TTL" 0
  expect_jq "$b: taken over with a larger token" ".lease.fencing_token > ${killed_token:-999999}"
  manifest long 4s
}

held_file() { grep -q '^holder [^-]' "$CDIR/run%3Aleases%3A$1.lease" 2>/dev/null; }
killed_token_file() { sed -n 's/^fencing //p' "$CDIR/run%3Aleases%3Along.lease"; }
race_checks file

# Memory: process-wide, so a bench's runs share one lease and it works in-process.
COORDINATION_MODE=memory fr bench "$TMP/quick.yaml" --runs 3 --warmup 0 --json
expect_rc "memory: bench under a lease" 0
expect_jq "memory: bench ran" '.runs == 3 and .failed_runs == 0'

# ---- redis backend ---------------------------------------------------------------------------
if ! start_redis --appendonly no; then
  not_ok "redis-server started (Debian package redis-server)" "$(cat "$TMP/redis.log" 2>/dev/null)"
  finish
  exit
fi
export COORDINATION_MODE=redis COORDINATION_REDIS_PREFIX=e2e
export COORDINATION_REDIS_URL="redis://:$REDIS_PASS@127.0.0.1:$RPORT/1"
fr run "$TMP/quick.yaml" --json
expect_rc "redis: run with lease" 0
expect_jq "redis: report has the lease" '.lease.key == "run:leases:quick" and .lease.fencing_token >= 1'
if [ "$(rcli -n 1 get e2e-fencing:run:leases:quick)" = "$(jq '.lease.fencing_token' "$TMP/out")" ]; then
  ok "redis: fencing counter in e2e-fencing:<key>"
else not_ok "redis: fencing counter in e2e-fencing:<key>"; fi
[ "$(rcli -n 1 exists e2e:run:leases:quick)" = 0 ] && ok "redis: released after the run" ||
  not_ok "redis: released after the run"

held_redis() { [ "$(rcli -n 1 exists "e2e:run:leases:$1")" = 1 ]; }
killed_token_redis() { rcli -n 1 get e2e:run:leases:long | cut -d' ' -f1; }
race_checks redis


# A stolen lease (key overwritten) cancels the run with lease_lost; a deleted key too.
for how in overwrite delete; do
  t0=$(now_ms)
  bg stolen run "$TMP/long2.yaml" --json
  wait_held redis long
  sleep 0.1
  if [ $how = overwrite ]; then rcli -n 1 set e2e:run:leases:long "999 thief" >/dev/null
  else rcli -n 1 del e2e:run:leases:long >/dev/null; fi
  waitbg
  dt=$(($(now_ms) - t0))
  take stolen
  expect_rc "redis: stolen lease ($how)" 1
  expect_jq "redis: stolen lease ($how)" '.status == "failed" and ([.steps[].error.class] == ["lease_lost", "lease_lost"])'
  if [ $how = overwrite ]; then
    msg="lease run:leases:long: renewal refused (held by thief)"
  else
    msg="lease run:leases:long: renewal refused (it expired or was deleted)"
  fi
  expect_err "redis: stolen lease ($how)" "$msg"
  expect_jq "redis: stolen lease ($how): the report says why" ".steps[1].error.message | contains(\"$msg\")"
  [ "$dt" -lt 3500 ] && ok "redis: cancelled before the step's 4s ($how, ${dt}ms)" ||
    not_ok "redis: cancelled before the step's 4s ($how, ${dt}ms)"
  rcli -n 1 del e2e:run:leases:long >/dev/null
done

# Redis going down mid-run: lease_lost once the TTL passed without a renewal.
t0=$(now_ms)
bg down run "$TMP/long2.yaml" --json
wait_held redis long
stop_redis
waitbg
dt=$(($(now_ms) - t0))
take down
expect_rc "redis down mid-run" 1
expect_jq "redis down mid-run" '[.steps[].error.class] == ["lease_lost", "lease_lost"]'
expect_jq "redis down mid-run" '.steps[1].error.message | contains("unreachable for longer than the TTL")'
expect_err "redis down mid-run" "lease run:leases:long: coordination backend unreachable for longer than the TTL"
expect_no_err "redis down mid-run: no password" "$REDIS_PASS"
if ! grep -qF "$REDIS_PASS" "$TMP/out"; then ok "redis down mid-run: no password in the report"
else not_ok "redis down mid-run: no password in the report"; fi
[ "$dt" -lt 3500 ] && ok "redis down: cancelled before the step's 4s (${dt}ms)" ||
  not_ok "redis down: cancelled before the step's 4s (${dt}ms)"

# Unreachable at start: exit 1, the URL without its password.
fr run "$TMP/quick.yaml"
expect_rc "redis unreachable" 1
expect_err "redis unreachable" "redis://:***@127.0.0.1:$RPORT/1"
expect_no_err "redis unreachable" "$REDIS_PASS"

finish
