#!/bin/sh
# Durable runs in the cluster (issue 30): `fluxroute worker --journal` journals queued runs
# to Redis.  (a) A worker killed with -9 mid-run: another resumes the run from its journal
# (same run id, completed calls not made again, executions 2, resumed_from, its trace
# replaying identically), and usage is counted once per call.  (b) A zombie worker frozen
# with SIGSTOP past its lease, then continued: its late appends are refused, it stops with
# lease_lost, and the journal holds nothing of it after the takeover.  (c) Bad input:
# --journal with --state memory, a journal of another manifest (a divergence), a corrupted
# journal.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
. "$FR_SRCDIR/tests/redis_lib.sh"
. "$FR_SRCDIR/tests/provider_lib.sh"
PIDS=""
cleanup() {
  for p in $PIDS; do kill -CONT "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null; done
  for p in $PIDS; do wait "$p" 2>/dev/null; done
  stop_cp
  stop_fakes
  stop_redis
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- (c) bad input: exit 2 before anything starts -------------------------------------------
fr worker --manifest-dir "$TMP" --state memory --journal
expect_rc "worker --journal --state memory" 2
fr serve --manifest-dir "$TMP" --keys /dev/null --journal
expect_rc "serve --journal (memory state)" 2
expect_err "serve --journal --state memory: says nothing is durable" "nothing of it is durable"
fr worker --manifest-dir "$TMP" --state redis://127.0.0.1:1 --journal-sync step
expect_rc "worker --journal-sync without --journal" 2
expect_err "worker --journal-sync without --journal: says so" "--journal-sync needs a journal: --journal"
fr worker --manifest-dir "$TMP" --state redis://127.0.0.1:1 --journal --journal-sync sometimes
expect_err "worker --journal-sync sometimes: refused" "expected effect, step or off"

if ! command -v redis-server >/dev/null 2>&1 || ! start_redis --appendonly yes --appendfsync always; then
  echo "ok - SKIP: no redis-server"
  exit 77
fi
R() { rcli -n 1 "$@"; }

# ---- the vendor, a control plane, the manifests ---------------------------------------------
export FAKE_JOURNAL_KEY=sk-journal-cluster
# Each call takes 150 ms: a run of 6 calls is long enough to be killed in the middle.
start_fake --openai-key "$FAKE_JOURNAL_KEY" --delay-ms 150 || exit 1
VPORT=$FAKE_PORT
requests() { fake_stats "$VPORT" | jq .requests; }
ADMIN=journal-admin-key-1
. "$FR_SRCDIR/tests/cp_lib.sh"
start_cp
cpq() {
  curl -sS --max-time 20 -X "$1" -H "Authorization: Bearer $ADMIN" \
    ${3:+-H "Content-Type: application/json" --data-binary "$3"} "$CP_URL$2"
}
cpq POST /v1/tenants '{"id": "alpha", "name": "Alpha", "namespace": "alpha"}' >/dev/null
KEY=$(cpq POST /v1/tenants/alpha/keys '{"role": "operator"}' | jq -r .key)
export CONTROLPLANE_SERVICE_KEY
CONTROLPLANE_SERVICE_KEY=$(cpq POST /v1/service-keys | jq -r .key)
check "control plane: tenant key and service key" test -n "$KEY" -a "$KEY" != null
mkdir -p "$TMP/m"
cat >"$TMP/providers.yaml" <<YAML
providers:
  - id: vendor
    plugin: openai
    config: {model: m, base_url: "http://127.0.0.1:$VPORT/v1", api_key_env: FAKE_JOURNAL_KEY}
YAML
cp "$FR_SRCDIR/tests/data/journal/cluster.yaml" "$TMP/m/chain.yaml"

# launch NAME ARGS...: fluxroute ARGS in the background, waiting (30 s) for its first line.
launch() {
  local name=$1 pid
  shift
  CONTROLPLANE_SPOOL="$TMP/$name.spool" "$FLUXROUTE" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  pid=$!
  PIDS="$PIDS $pid"
  eval "PID_$name=$pid"
  for _ in $(seq 1 600); do
    [ -s "$TMP/$name.out" ] && grep -q "listening on\|worker consuming" "$TMP/$name.out" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "# $name did not start:"; sed 's/^/#   /' "$TMP/$name.err"; return 1
}
# A 1 s visibility timeout: a dead or frozen worker's run is claimed about a second later.
COMMON="--manifest-dir $TMP/m --providers $TMP/providers.yaml --state $REDIS_URL
  --visibility-timeout 1s --controlplane $CP_URL"
# The replica only accepts runs (--concurrency 0): workers execute them.
# shellcheck disable=SC2086
launch s1 serve --addr 127.0.0.1:0 $COMMON --concurrency 0 || exit 1
URL=$(sed -n 's/^listening on //p' "$TMP/s1.out")

submit() { # MANIFEST: an async run; its id in $RUN
  RUN=$(curl -s --max-time 20 -X POST -H "Authorization: Bearer $KEY" \
    --data-binary "{\"manifest\": \"$1\", \"async\": true, \"trace\": true}" "$URL/v1/run" | jq -r .run_id)
}
J() { echo "fluxroute:{t:alpha}:journal:$1"; }
# entries RUN: the journal's entries, one JSON object per line, each with its token as "k".
entries() {
  R eval "local out = {}
    for i, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
      out[i] = e[2][2] .. ' ' .. string.sub(e[2][4], 18, -2) end
    return out" 1 "$(J "$1")" |
    while read -r k e; do printf '%s\n' "$e" | jq -c --arg k "$k" '. + {k: ($k | tonumber)}'; done
}
steps_done() { R xrange "$(J "$1")" - + | grep -c '"t":"step"'; }
wait_steps() { # RUN N: waits (20 s) for N step outcomes in the journal
  local until=$(($(date +%s) + 20))
  while [ "$(steps_done "$1")" -lt "$2" ] && [ "$(date +%s)" -lt "$until" ]; do sleep 0.02; done
  [ "$(steps_done "$1")" -ge "$2" ]
}
status_of() { R hget "fluxroute:{t:alpha}:run:$1" status; }
wait_status() { # RUN STATUS SECONDS
  local until=$(($(date +%s) + $3))
  while [ "$(status_of "$1")" != "$2" ] && [ "$(date +%s)" -lt "$until" ]; do sleep 0.1; done
  [ "$(status_of "$1")" = "$2" ]
}
usage_events() { cpq GET "/v1/usage?tenant_id=alpha" | jq -r .events; }

# ---- (a) a worker killed with -9 mid-run: another resumes the run ---------------------------
# shellcheck disable=SC2086
launch w1 worker $COMMON --concurrency 1 --journal || exit 1
fake_reset "$VPORT"
submit chain.yaml
A=$RUN
check "(a) submitted" test -n "$A" -a "$A" != null
if wait_steps "$A" 3; then ok "(a) three steps journaled to Redis"; else
  not_ok "(a) three steps journaled to Redis" "$(steps_done "$A") steps"; fi
kill -9 "$PID_w1"
wait "$PID_w1" 2>/dev/null
R_KILL=$(requests)
check "(a) killed mid-run (not finished)" test "$(status_of "$A")" != succeeded
# shellcheck disable=SC2086
launch w2 worker $COMMON --concurrency 1 --journal || exit 1
if wait_status "$A" succeeded 30; then ok "(a) the other worker finished the run"; else
  not_ok "(a) the other worker finished the run" "status $(status_of "$A"); $(tail -5 "$TMP/w2.err")"; fi
entries "$A" >"$TMP/a.entries"
# The calls the dead execution completed and journaled (provider effects before the resume).
RECORDED=$(awk '/"t":"resume"/ {exit} /"kind":"provider"/ && /"status":"OK"/ {n++} END {print n + 0}' "$TMP/a.entries")
check "(a) the journal holds completed calls of the first execution ($RECORDED)" test "$RECORDED" -ge 3
TOTAL=$(requests)
# Each call recorded is not made again; only the 6 - RECORDED others are (one of which may
# be the call in flight at the kill: at least once for that one).
check "(a) each recorded call reached the vendor once ($R_KILL before the kill, $TOTAL in all, $RECORDED recorded)" \
  test "$TOTAL" = $((R_KILL + 6 - RECORDED))
R hget "fluxroute:{t:alpha}:run:$A" report >"$TMP/out"
expect_jq "(a) report: succeeded, same run id, executions 2" \
  ".status == \"succeeded\" and .run_id == \"$A\" and .executions == 2"
expect_jq "(a) report: resumed_from names where it went live" '.resumed_from.step != null'
expect_jq "(a) report: the first three steps came from the journal" \
  '[.steps[:3][] | .from_journal] == [true, true, true] and (.steps[5].from_journal == false)'
check "(a) the journal: one resume, by execution 2, and the run's end" \
  sh -c "jq -se '([.[] | select(.t == \"resume\")] | length == 1 and .[0].execution == 2) and (.[-1].t == \"end\")' '$TMP/a.entries' >/dev/null"
R hget "fluxroute:{t:alpha}:run:$A" trace >"$TMP/a.trace"
fr replay "$TMP/a.trace"
expect_rc "(a) the resumed run's stored trace replays" 0
expect_out "(a) the resumed run's stored trace replays" "replay identical: 6 steps"
check "(a) the journal expires with the records' retention" test "$(R pttl "$(J "$A")")" -gt 0
# Usage: the run, and each of its 6 calls once (keys derive from run, step, attempt, call).
got=""
for _ in $(seq 1 100); do got=$(usage_events); [ "$got" = 7 ] && break; sleep 0.1; done
check "(a) usage counted once per call: 7 events (1 run + 6 calls; got $got)" test "$got" = 7

# ---- (b) a zombie: frozen past its lease, continued, fenced ---------------------------------
kill "$PID_w2"
wait "$PID_w2" 2>/dev/null
# shellcheck disable=SC2086
launch w3 worker $COMMON --concurrency 1 --journal || exit 1
submit chain.yaml
B=$RUN
wait_steps "$B" 2
kill -STOP "$PID_w3"
check "(b) the zombie is frozen mid-run" test "$(status_of "$B")" != succeeded
# shellcheck disable=SC2086
launch w4 worker $COMMON --concurrency 1 --journal || exit 1
# The other worker claims the run after the visibility timeout and resumes it.
until=$(($(date +%s) + 20))
while ! R xrange "$(J "$B")" - + | grep -q '"t":"resume"' && [ "$(date +%s)" -lt "$until" ]; do sleep 0.05; done
if R xrange "$(J "$B")" - + | grep -q '"t":"resume"'; then ok "(b) another worker took the run over (its resume journaled)"; else
  not_ok "(b) another worker took the run over (its resume journaled)"; fi
kill -CONT "$PID_w3"
until=$(($(date +%s) + 20))
while ! grep -q "stopped (lease_lost)" "$TMP/w3.err" && [ "$(date +%s)" -lt "$until" ]; do sleep 0.05; done
check "(b) the zombie's late append is refused" grep -q "journal append refused: its fencing token 1 is older than the run's newest (2)" "$TMP/w3.err"
check "(b) the zombie stops with lease_lost, writing no record, acknowledgement or usage" \
  grep -q "run $B: stopped (lease_lost)" "$TMP/w3.err"
if wait_status "$B" succeeded 30; then ok "(b) the run finished on the other worker"; else
  not_ok "(b) the run finished on the other worker" "status $(status_of "$B")"; fi
entries "$B" >"$TMP/b.entries"
check "(b) the journal has no entry of the zombie (token 1) after the takeover (token 2)" \
  sh -c "jq -se '(map(.k) | index(2)) as \$i | \$i != null and ([.[\$i:][] | select(.k < 2)] | length == 0)' '$TMP/b.entries' >/dev/null"
R hget "fluxroute:{t:alpha}:run:$B" report >"$TMP/out"
expect_jq "(b) the record is the taker's (executions 2)" '.status == "succeeded" and .executions == 2'

# ---- (c) a journal of another manifest, a corrupted journal ---------------------------------
kill "$PID_w4" "$PID_w3" 2>/dev/null
wait "$PID_w4" "$PID_w3" 2>/dev/null
# A journal another run wrote (other.yaml), under the id of a queued run of chain.yaml that
# looks started once before (its fencing counter at 1): the next execution resumes.
printf 'agents: [{id: echo, plugin: echo}]\npipeline: [{step: echo}]\n' >"$TMP/other.yaml"
fr run "$TMP/other.yaml" --journal "$TMP/other.journal"
expect_rc "(c) a journal of another manifest written" 0
plant() { # RUN FILE: the journal lines of FILE as RUN's Redis journal (token 1)
  R set "fluxroute:{t:alpha}:run:$1:fence" 1 >/dev/null
  while IFS= read -r line; do
    R xadd "$(J "$1")" '*' k 1 e "$line
" >/dev/null
  done <"$2"
}
submit chain.yaml
C=$RUN
head -1 "$TMP/other.journal" | sed "s/\"run_id\":\"[^\"]*\"/\"run_id\":\"$C\"/" >"$TMP/h.json"
# Re-checksum the header after naming this run.
body=$(cut -c18- "$TMP/h.json")
printf '%s %s\n' "$(printf '%s' "$body" | sha256sum | cut -c1-16)" "$body" >"$TMP/c.journal"
plant "$C" "$TMP/c.journal"
submit chain.yaml
D=$RUN
printf '0123456789abcdef {"t":"header"}\n' >"$TMP/d.journal"
plant "$D" "$TMP/d.journal"
fake_reset "$VPORT"
# shellcheck disable=SC2086
launch w5 worker $COMMON --concurrency 1 --journal || exit 1
wait_status "$C" failed 20
R hget "fluxroute:{t:alpha}:run:$C" report >"$TMP/out"
expect_jq "(c) a journal of another manifest: the run fails as a divergence naming both sha256" \
  '.status == "failed" and (.error.message | test("diverge from its journal: the manifest .* differs from the journal.s \\(sha256 [0-9a-f]{12}\\.\\.\\. journaled, [0-9a-f]{12}\\.\\.\\. now\\)"))'
wait_status "$D" failed 20
R hget "fluxroute:{t:alpha}:run:$D" report >"$TMP/out"
expect_jq "(c) a corrupted journal: refused naming the entry" \
  '.status == "failed" and (.error.message | test("entry 1 \\(byte 0\\) is corrupted: checksum mismatch"))'
check "(c) refused journals made no vendor request" test "$(requests)" = 0
finish
