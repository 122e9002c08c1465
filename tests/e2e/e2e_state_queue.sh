#!/bin/sh
# The durable run queue (issue 25): 3 serve replicas and a worker on one Redis (appendonly
# yes, appendfsync always) and a control plane.  200 async runs submitted round-robin each
# execute exactly once; a worker killed with -9 while it holds runs: each completes on
# another consumer and usage is counted once; a poison run (a plugin crashing its process)
# fails with class crashed after 3 executions and leaves the queue; Redis killed mid-load and
# restarted from its AOF loses no run answered 202, and submissions while it is down get 503
# state_unavailable; SIGTERM hands runs back; `fluxroute worker` refuses bad input (exit 2).
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
. "$FR_SRCDIR/tests/redis_lib.sh"
PIDS=""
CP_PID=""
cleanup() {
  for p in $PIDS $CP_PID; do kill -9 "$p" 2>/dev/null; done
  for p in $PIDS $CP_PID; do wait "$p" 2>/dev/null; done
  stop_redis
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- bad input: exit 2 before anything starts ------------------------------------------------
fr worker --manifest-dir "$TMP" --state memory
expect_rc "worker --state memory" 2
expect_err "worker --state memory: says why" "a worker takes runs from the durable queue"
fr worker --manifest-dir "$TMP" --state "rediss://:hunter2@127.0.0.1:1"
expect_rc "worker --state rediss://" 2
expect_no_err "worker --state rediss://: password masked" hunter2
fr worker --manifest-dir "$TMP" --state "ftp://x"
expect_err "worker: unknown scheme named" "unknown scheme 'ftp://'"
fr worker --state redis://127.0.0.1:1
expect_rc "worker without --manifest-dir" 2
fr worker --manifest-dir "$TMP" --state redis://127.0.0.1:1 --concurrency 0
expect_rc "worker --concurrency 0" 2
fr worker --manifest-dir "$TMP" --state redis://127.0.0.1:1 --visibility-timeout 1us
expect_rc "worker --visibility-timeout 1us" 2
fr worker --help
expect_out "worker --help" "--visibility-timeout"

if ! command -v redis-server >/dev/null 2>&1 || ! start_redis --appendonly yes --appendfsync always; then
  echo "ok - SKIP: no redis-server"
  exit 77
fi
R() { rcli -n 1 "$@"; }

# ---- a control plane: the tenant, its key, the service key ----------------------------------
ADMIN=queue-admin-key-1
. "$FR_SRCDIR/tests/cp_lib.sh"
start_cp
cpq() { # METHOD PATH [DATA]: the answer on stdout
  curl -sS --max-time 20 -X "$1" -H "Authorization: Bearer $ADMIN" \
    ${3:+-H "Content-Type: application/json" --data-binary "$3"} "$CP_URL$2"
}
cpq POST /v1/tenants '{"id": "alpha", "name": "Alpha", "namespace": "alpha"}' >/dev/null
KEY=$(cpq POST /v1/tenants/alpha/keys '{"role": "operator"}' | jq -r .key)
export CONTROLPLANE_SERVICE_KEY
CONTROLPLANE_SERVICE_KEY=$(cpq POST /v1/service-keys | jq -r .key)
check "control plane: tenant key and service key" test -n "$KEY" -a "$KEY" != null

# ---- manifests ---------------------------------------------------------------------------
mkdir -p "$TMP/m"
printf 'providers:\n  - {id: slow, plugin: mock, config: {reply: ok, delay: 2s}}\n' >"$TMP/providers.yaml"
printf 'router: {namespace: alpha}\nagents: [{id: echo, plugin: echo}]\npipeline: [{step: echo}]\n' \
  >"$TMP/m/echo.yaml"
cat >"$TMP/m/slow.yaml" <<'YAML'
router: {namespace: alpha}
agents: [{id: ask, plugin: llm, provider: slow, config: {prompt: "one two three"}}]
pipeline: [{step: ask}]
YAML
printf 'router: {namespace: alpha}\nagents: [{id: boom, plugin: chaos, config: {crash: true}}]\npipeline: [{step: boom}]\n' \
  >"$TMP/m/poison.yaml"

# launch NAME ARGS...: fluxroute ARGS in the background, waiting (30 s) for its metrics line;
# sets PID_NAME, URL_NAME (serve's address) and MURL_NAME (its metrics address).
launch() {
  local name=$1 pid url murl
  shift
  : >"$TMP/$name.out"
  CONTROLPLANE_SPOOL="$TMP/$name.spool" "$FLUXROUTE" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  pid=$!
  PIDS="$PIDS $pid"
  eval "PID_$name=$pid"
  for _ in $(seq 1 600); do
    murl=$(sed -n 's/^metrics listening on //p' "$TMP/$name.out")
    [ -n "$murl" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  url=$(sed -n 's/^listening on //p' "$TMP/$name.out")
  eval "URL_$name=\$url; MURL_$name=\$murl"
  [ -n "$murl" ] || { echo "# $name did not start:"; sed 's/^/#   /' "$TMP/$name.err"; return 1; }
}
# A 2 s visibility timeout: the heartbeat (a third of it) keeps a live consumer's runs
# unclaimed even on a busy machine (1 s was missed under two CPU hogs), and the killed and
# paused workers' runs are still claimed within the waits below.
COMMON="--manifest-dir $TMP/m --providers $TMP/providers.yaml --state $REDIS_URL
  --metrics-addr 127.0.0.1:0 --visibility-timeout 2s --concurrency 2 --controlplane $CP_URL"
# shellcheck disable=SC2086
for s in s1 s2 s3; do launch "$s" serve --addr 127.0.0.1:0 $COMMON || exit 1; done
# shellcheck disable=SC2086
launch w1 worker $COMMON || exit 1
check "worker: first line names Redis, password masked" \
  sh -c "head -1 '$TMP/w1.out' | grep -q '^worker consuming redis://:\*\*\*@127.0.0.1:$RPORT/1'"
check "no durability warning with appendonly yes, appendfsync always" \
  sh -c "! grep -q warning '$TMP/s1.err' '$TMP/w1.err'"

# submit SERVE MANIFEST: POST /v1/run async; the run id goes to $TMP/ids, the code to $code.
submit() {
  code=$(curl -s -o "$TMP/sub.out" -w '%{http_code}' --max-time 20 -X POST \
    -H "Authorization: Bearer $KEY" --data-binary "{\"manifest\": \"$2\", \"async\": true}" "$1/v1/run")
}
# count IDS STATUS: how many runs of file IDS have this status in their record.
count() {
  # shellcheck disable=SC2046
  R eval "local n = 0 for i = 1, #ARGV - 1 do
    if redis.call('HGET', 'fluxroute:{t:alpha}:run:' .. ARGV[i], 'status') == ARGV[#ARGV] then n = n + 1 end end
    return n" 0 $(cat "$1") "$2"
}
# executions IDS: the executions of each run of file IDS, one per line.
executions() {
  while read -r id; do R hget "fluxroute:{t:alpha}:run:$id" executions; done <"$1"
}
wait_count() { # SECONDS IDS STATUS WANT
  local until=$(($(date +%s) + $1))
  while [ "$(count "$2" "$3")" != "$4" ] && [ "$(date +%s)" -lt "$until" ]; do sleep 0.1; done
  [ "$(count "$2" "$3")" = "$4" ]
}
holds() { # PID: the run ids whose lease that process holds
  R --scan --pattern 'fluxroute:{t:alpha}:run:*:lease' | while read -r k; do
    R get "$k" | grep -q ":$1:" && echo "$k"; done |
    sed 's/^fluxroute:{t:alpha}:run:\(.*\):lease$/\1/'
}
usage_is() { # NAME EVENTS: waits (10 s at most) for the tenant's usage events to be EVENTS
  local got=""
  for _ in $(seq 1 100); do
    got=$(cpq GET "/v1/usage?tenant_id=alpha" | jq -r .events)
    [ "$got" = "$2" ] && break
    sleep 0.1
  done
  check "$1: $2 events (got $got)" test "$got" = "$2"
}
metric_sum() { # NAME: the sum of a metric over every process's /metrics
  for u in "$MURL_s1" "$MURL_s2" "$MURL_s3" "$MURL_w1"; do curl -s "$u/metrics"; done |
    awk -v m="$1" '$1 == m {s += $2} END {print s + 0}'
}

# ---- 200 async runs round-robin: each executes exactly once ------------------------------------
: >"$TMP/ids"
codes=""
for i in $(seq 1 200); do
  case $((i % 3)) in 0) u=$URL_s1 ;; 1) u=$URL_s2 ;; *) u=$URL_s3 ;; esac
  submit "$u" echo.yaml
  [ "$code" = 202 ] || codes="$codes $code"
  jq -r .run_id "$TMP/sub.out" >>"$TMP/ids"
done
check "200 async submissions: every one 202" test -z "$codes"
check "202 says queued" jq -e '.status == "queued"' "$TMP/sub.out"
if wait_count 30 "$TMP/ids" succeeded 200; then ok "200 runs succeeded"; else
  not_ok "200 runs succeeded" "succeeded: $(count "$TMP/ids" succeeded)"; fi
check "each run executed once (executions 1 in every record)" \
  test "$(executions "$TMP/ids" | grep -cx 1)" = 200
check "fluxroute_run_executions_total over the 4 processes: 200" test "$(metric_sum fluxroute_run_executions_total)" = 200
check "the queue is empty (acknowledged and deleted)" test "$(R xlen fluxroute:queue)" = 0
check "worker: /healthz on its metrics address" \
  test "$(curl -s -o /dev/null -w '%{http_code}' "$MURL_w1/healthz")" = 200
check "fluxroute_queue_depth exposed" sh -c "curl -s '$MURL_w1/metrics' | grep -q '^fluxroute_queue_depth '"
# Inline YAML, input, seed and trace travel with the entry.
code=$(curl -s -o "$TMP/sub.out" -w '%{http_code}' --max-time 20 -X POST -H "Authorization: Bearer $KEY" \
  --data-binary '{"manifest_yaml": "router: {namespace: alpha}\nagents: [{id: echo, plugin: echo}]\npipeline: [{step: echo}]\n", "input": {"q": 7}, "seed": 42, "trace": true, "async": true}' \
  "$URL_s2/v1/run")
jq -r .run_id "$TMP/sub.out" >"$TMP/inline"
check "inline async run: 202" test "$code" = 202
wait_count 20 "$TMP/inline" succeeded 1
R hget "fluxroute:{t:alpha}:run:$(cat "$TMP/inline")" report >"$TMP/out"
expect_jq "inline async run: input and seed kept, executions 1" \
  '.status == "succeeded" and .steps[0].output.input.q == 7 and .seed == 42 and .executions == 1'
R hget "fluxroute:{t:alpha}:run:$(cat "$TMP/inline")" trace >"$TMP/out"
expect_jq "inline async run: its trace stored" '.format == "fluxroute-trace"'
# Every run is readable from every replica (GET /v1/runs/{id}: the records), whichever
# process executed it.  One curl per replica, its 200 requests on one connection.
for u in "$URL_s1" "$URL_s2" "$URL_s3"; do
  # shellcheck disable=SC2046
  n=$(curl -s --max-time 60 -H "Authorization: Bearer $KEY" -w '\n' \
    $(sed "s|^|$u/v1/runs/|" "$TMP/ids") | jq -r 'select(.report.executions == 1) | .status' |
    grep -cx succeeded)
  check "all 200 runs read as succeeded (executions 1) on $u" test "$n" = 200
done

# ---- a worker killed with -9 while it holds runs --------------------------------------------
: >"$TMP/slow"
for i in $(seq 1 12); do
  case $((i % 3)) in 0) u=$URL_s1 ;; 1) u=$URL_s2 ;; *) u=$URL_s3 ;; esac
  submit "$u" slow.yaml
  jq -r .run_id "$TMP/sub.out" >>"$TMP/slow"
done
# The worker's consumer is named after its pid (host:pid:random); its leases say it holds runs.
for _ in $(seq 1 100); do holds "$PID_w1" >"$TMP/held"; [ -s "$TMP/held" ] && break; sleep 0.05; done
check "the worker holds runs" test -s "$TMP/held"
# A run going for more than 200 ms has its record say so (quicker ones skip the write).
check "a slow run's record says running while it runs" test "$(count "$TMP/slow" running)" -ge 1
kill -9 "$PID_w1"
if wait_count 30 "$TMP/slow" succeeded 12; then ok "12 slow runs succeeded, the killed worker's too"; else
  not_ok "12 slow runs succeeded" "succeeded: $(count "$TMP/slow" succeeded)"; fi
bad=""
while read -r id; do
  [ "$(R hget "fluxroute:{t:alpha}:run:$id" executions)" = 2 ] || bad="$bad $id"
  R hget "fluxroute:{t:alpha}:run:$id" node | grep -q ":$PID_w1:" && bad="$bad $id(node)"
done <"$TMP/held"
check "held runs: executions 2, finished by another node" test -z "$bad"
grep -vxFf "$TMP/held" "$TMP/slow" >"$TMP/others"
bad=$(executions "$TMP/others" | grep -vcx 1)
check "runs nobody killed ran once (held past the 2 s visibility timeout, never claimed)" test "$bad" = 0
check "fluxroute_queue_claimed_total counts the claims" test "$(metric_sum fluxroute_queue_claimed_total)" -ge 1
# Usage: 201 echo runs (a run event each) + 12 slow runs (a run and a provider call each),
# once each whatever ran twice.
want=$((201 + 12 * 2))
usage_is "usage counted once per run and call" "$want"

# ---- a stale executor: a worker paused (SIGSTOP) past the visibility timeout --------------------
# Its runs are claimed and finished by others; when it wakes and finishes them too, its
# older fencing token is refused: it neither overwrites their records nor bills them.
# shellcheck disable=SC2086
launch w3 worker $COMMON || exit 1
: >"$TMP/stale"
for i in $(seq 1 8); do submit "$URL_s2" slow.yaml; jq -r .run_id "$TMP/sub.out" >>"$TMP/stale"; done
for _ in $(seq 1 100); do holds "$PID_w3" >"$TMP/paused"; [ -s "$TMP/paused" ] && break; sleep 0.05; done
kill -STOP "$PID_w3"
check "the paused worker holds runs" test -s "$TMP/paused"
if wait_count 30 "$TMP/stale" succeeded 8; then ok "the paused worker's runs finished elsewhere"; else
  not_ok "the paused worker's runs finished elsewhere" "succeeded: $(count "$TMP/stale" succeeded)"; fi
kill -CONT "$PID_w3"
stale="fencing token 1 is older than the record's newest"
for _ in $(seq 1 100); do grep -q "$stale" "$TMP/w3.err" && break; sleep 0.1; done
check "the woken worker's outcome is refused (stale fencing token)" grep -q "$stale" "$TMP/w3.err"
bad=""
while read -r id; do
  [ "$(R hget "fluxroute:{t:alpha}:run:$id" executions)" = 2 ] || bad="$bad $id"
  [ "$(R hget "fluxroute:{t:alpha}:run:$id" status)" = succeeded ] || bad="$bad $id(status)"
done <"$TMP/paused"
check "their records are the newer execution's" test -z "$bad"
want=$((want + 8 * 2))
usage_is "usage still once per run and call" "$want"

# ---- SIGTERM: a worker hands back what it cannot finish within its grace ---------------------
# shellcheck disable=SC2086
launch w2 worker $COMMON --shutdown-grace 200ms || exit 1
: >"$TMP/term"
for i in $(seq 1 8); do submit "$URL_s1" slow.yaml; jq -r .run_id "$TMP/sub.out" >>"$TMP/term"; done
for _ in $(seq 1 100); do
  R --scan --pattern 'fluxroute:{t:alpha}:run:*:lease' | while read -r k; do R get "$k"; done |
    grep -q ":$PID_w2:" && break
  sleep 0.05
done
kill -TERM "$PID_w2"
wait "$PID_w2" 2>/dev/null
rc=$?
check "SIGTERM: the worker exits 0" test "$rc" = 0
check "SIGTERM: it says it handed runs back" grep -q "handed [0-9]* run(s) still executing back" "$TMP/w2.err"
if wait_count 30 "$TMP/term" succeeded 8; then ok "the handed-back runs completed elsewhere"; else
  not_ok "the handed-back runs completed elsewhere" "succeeded: $(count "$TMP/term" succeeded)"; fi

# ---- Redis killed mid-load and restarted from its AOF ---------------------------------------
: >"$TMP/acked"
: >"$TMP/refused"
(
  i=0
  while [ ! -e "$TMP/stop-load" ]; do
    i=$((i + 1))
    case $((i % 3)) in 0) u=$URL_s1 ;; 1) u=$URL_s2 ;; *) u=$URL_s3 ;; esac
    c=$(curl -s -o "$TMP/load.out" -w '%{http_code}' --max-time 20 -X POST \
      -H "Authorization: Bearer $KEY" --data-binary '{"manifest": "echo.yaml", "async": true}' "$u/v1/run")
    if [ "$c" = 202 ]; then jq -r .run_id "$TMP/load.out" >>"$TMP/acked"
    else printf '%s %s\n' "$c" "$(jq -r .error.code "$TMP/load.out" 2>/dev/null)" >>"$TMP/refused"; fi
    sleep 0.01
  done
) &
LOAD=$!
sleep 1
kill_redis
sleep 1
restart_redis --appendonly yes --appendfsync always
sleep 1
touch "$TMP/stop-load"
wait "$LOAD"
n_acked=$(wc -l <"$TMP/acked")
check "load while Redis was down: some 202 ($n_acked), some refused ($(wc -l <"$TMP/refused"))" \
  test "$n_acked" -gt 0 -a -s "$TMP/refused"
check "every refusal is 503 state_unavailable" sh -c "! grep -vqx '503 state_unavailable' '$TMP/refused'"
if wait_count 30 "$TMP/acked" succeeded "$n_acked"; then ok "no run answered 202 was lost: all $n_acked succeeded"; else
  not_ok "no run answered 202 was lost" "succeeded: $(count "$TMP/acked" succeeded) of $n_acked"; fi

# ---- a poison run: its consumers crash; failed as crashed after 3 executions ------------------
for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
for p in $PIDS; do wait "$p" 2>/dev/null; done
PIDS=""
# A replica that only submits (--concurrency 0), and workers that crash on the run.
# shellcheck disable=SC2086
launch sp serve --addr 127.0.0.1:0 $COMMON --concurrency 0 --enable-chaos || exit 1
submit "$URL_sp" poison.yaml
check "poison run accepted" test "$code" = 202
jq -r .run_id "$TMP/sub.out" >"$TMP/poison"
crashes=0
for _ in 1 2 3 4; do
  # shellcheck disable=SC2086
  launch pw worker $COMMON --enable-chaos --trust-plugin chaos || break
  for _ in $(seq 1 100); do
    kill -0 "$PID_pw" 2>/dev/null || break
    [ "$(count "$TMP/poison" failed)" = 1 ] && break
    sleep 0.05
  done
  if kill -0 "$PID_pw" 2>/dev/null; then kill -TERM "$PID_pw"; wait "$PID_pw" 2>/dev/null; break; fi
  crashes=$((crashes + 1))
done
check "3 consumers crashed on it, then it was failed" test "$crashes" = 3
id=$(cat "$TMP/poison")
R hget "fluxroute:{t:alpha}:run:$id" report >"$TMP/out"
expect_jq "poison: failed, class crashed, 3 executions" \
  '.status == "failed" and .error.class == "crashed" and .executions == 3'
check "poison: acknowledged (the queue is empty)" test "$(R xlen fluxroute:queue)" = 0

# ---- a named manifest edited after the run was queued: refused, saying so -------------------
cp "$TMP/m/echo.yaml" "$TMP/m/edited.yaml"
sleep 1.1 # serve checks a manifest file at most once a second
submit "$URL_sp" edited.yaml
jq -r .run_id "$TMP/sub.out" >"$TMP/edited"
printf '# edited\n' >>"$TMP/m/edited.yaml"
# A queued run cancelled on a replica before any consumer takes it: never started.
submit "$URL_sp" slow.yaml
jq -r .run_id "$TMP/sub.out" >"$TMP/cancelled"
code=$(curl -s -o "$TMP/out" -w '%{http_code}' -X DELETE -H "Authorization: Bearer $KEY" \
  "$URL_sp/v1/runs/$(cat "$TMP/cancelled")")
check "DELETE of a queued run: 202" test "$code" = 202
# shellcheck disable=SC2086
launch pw worker $COMMON || exit 1
if wait_count 20 "$TMP/edited" failed 1; then ok "edited manifest: the run failed"; else
  not_ok "edited manifest: the run failed" "status: $(count "$TMP/edited" failed)"; fi
R hget "fluxroute:{t:alpha}:run:$(cat "$TMP/edited")" report >"$TMP/out"
expect_jq "edited manifest: the report says it changed" \
  '.status == "failed" and (.error.message | test("edited.yaml.*changed after the run was queued"))'
if wait_count 20 "$TMP/cancelled" cancelled 1; then ok "the cancelled queued run: cancelled"; else
  not_ok "the cancelled queued run: cancelled" "record: $(R hgetall "fluxroute:{t:alpha}:run:$(cat "$TMP/cancelled")" | head -20)"; fi
curl -s -H "Authorization: Bearer $KEY" "$URL_sp/v1/runs/$(cat "$TMP/cancelled")" >"$TMP/out"
expect_jq "GET says cancelled, never started" '.status == "cancelled" and .report.steps == []'
kill -TERM "$PID_pw"
wait "$PID_pw" 2>/dev/null

# ---- the queue's cap: past --max-queued, 429 (Redis's memory stays bounded) ------------------
check "the queue is empty before the cap test" test "$(R xlen fluxroute:queue)" = 0
# shellcheck disable=SC2086
launch sq serve --addr 127.0.0.1:0 $COMMON --concurrency 0 --max-queued 2 || exit 1
submit "$URL_sq" echo.yaml
c1=$code
submit "$URL_sq" echo.yaml
check "two async runs under --max-queued 2: 202" test "$c1 $code" = "202 202"
submit "$URL_sq" echo.yaml
cp "$TMP/sub.out" "$TMP/out"
check "a third async run past --max-queued 2: 429" test "$code" = 429
expect_jq "... too_many_runs naming --max-queued" \
  '.error.code == "too_many_runs" and (.error.message | test("--max-queued"))'

# ---- Redis down at submission: 503 state_unavailable, never 202 --------------------------------
stop_redis
submit "$URL_sp" echo.yaml
check "Redis down: 503" test "$code" = 503
cp_out=$(cat "$TMP/sub.out")
check "Redis down: code state_unavailable, names the state" \
  sh -c "echo '$cp_out' | jq -e '.error.code == \"state_unavailable\"' >/dev/null"

# ---- the durability warning ------------------------------------------------------------------
restart_redis --appendonly yes --appendfsync everysec
# (it then stops: its metrics address is taken, by the replica's)
fr worker --manifest-dir "$TMP/m" --state "$REDIS_URL" --metrics-addr "${MURL_sp#http://}"
expect_err "appendfsync everysec: the worker warns" "appendfsync"
expect_err "... and says what it risks" "may be lost if Redis crashes"
finish
