#!/bin/sh
# Shared breakers (issue 25, core/state/breaker_redis.c): two serve replicas A and B on one
# Redis (--state redis://).  Failures through A open the agent's breaker; B refuses within
# 100 ms of the opening; after the cooldown, concurrent calls through A and B run exactly
# one probe at the vendor (tests/fake_vendor counts its requests); with Redis stopped a
# breaker agent fails with class state_unavailable saying why, and a manifest without
# breakers still runs.  Prints the Redis round trips per guarded call and the propagation
# time from A to B.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/redis_lib.sh"
. "$FR_SRCDIR/tests/provider_lib.sh"
PIDS=""
trap 'for p in $PIDS; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; stop_fakes; stop_redis; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

if ! start_redis; then
  not_ok "redis-server started (Debian package redis-server)" "$(cat "$TMP/redis.log" 2>/dev/null)"
  finish
  exit
fi
export FAKE_OPENAI_KEY=sk-breakers-1234
start_fake --openai-key "$FAKE_OPENAI_KEY" || exit 1

mkdir -p "$TMP/m"
cat >"$TMP/m/brk.yaml" <<YAML
router: {namespace: acme, run_timeout: 20s}
agents:
  - id: ask
    plugin: llm
    provider: oa
    config: {prompt: "{{input.text}}"}
    retry: {max_attempts: 1}
    circuit_breaker: {failure_threshold: 3, reset_timeout: 2s, probe_timeout: 5s}
pipeline: [{step: ask}]
YAML
cat >"$TMP/m/pbrk.yaml" <<YAML
router: {namespace: acme}
agents: [{id: viaprov, plugin: llm, provider: guarded, config: {prompt: "{{input.text}}"}, retry: {max_attempts: 1}}]
pipeline: [{step: viaprov}]
YAML
cat >"$TMP/m/plain.yaml" <<YAML
router: {namespace: acme}
agents: [{id: hi, plugin: echo}]
pipeline: [{step: hi}]
YAML
cat >"$TMP/providers.yaml" <<YAML
providers:
  - {id: oa, plugin: openai, config: {model: m, base_url: "http://127.0.0.1:$FAKE_PORT/v1", api_key_env: FAKE_OPENAI_KEY}}
  - id: guarded
    plugin: openai
    config: {model: m, base_url: "http://127.0.0.1:$FAKE_PORT/v1", api_key_env: FAKE_OPENAI_KEY}
    circuit_breaker: {failure_threshold: 3, reset_timeout: 2s}
YAML
KEY=breakers-test-key-0123456789
printf 'keys:\n  - {id: op, sha256: %s, tenant: acme, namespace: acme, role: operator}\n' \
  "$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)" >"$TMP/keys.yaml"

# start_replica NAME: a serve on --state redis; sets URL_NAME.
start_replica() {
  "$FLUXROUTE" serve --addr 127.0.0.1:0 --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" \
    --providers "$TMP/providers.yaml" --state "$REDIS_URL" >"$TMP/$1.out" 2>"$TMP/$1.err" &
  PIDS="$PIDS $!"
  for _ in $(seq 1 600); do
    u=$(sed -n 's/^listening on \(http:\/\/127\.0\.0\.1:[0-9]*\)$/\1/p' "$TMP/$1.out")
    if [ -n "$u" ]; then eval "URL_$1=\$u"; return 0; fi
    sleep 0.05
  done
  echo "replica $1 did not start:"; cat "$TMP/$1.err"
  return 1
}
start_replica A || exit 1
start_replica B || exit 1

# call REPLICA MANIFEST TEXT [OUT]: a synchronous run; the report in OUT ($TMP/out).
call() {
  eval "u=\$URL_$1"
  curl -s -o "${4:-$TMP/out}" --max-time 20 -H "Authorization: Bearer $KEY" \
    --data-binary "$(jq -cn --arg m "$2" --arg t "$3" '{manifest: $m, input: {text: $t}}')" \
    "$u/v1/run"
}
# post REPLICA PATH BODY OUT: a POST with the key; the HTTP status in $code.
post() {
  eval "u=\$URL_$1"
  code=$(curl -s -o "$4" -w '%{http_code}' --max-time 20 -H "Authorization: Bearer $KEY" \
    --data-binary "$3" "$u$2")
}
# traced REPLICA TEXT NAME: a traced guarded run through REPLICA; its trace in $TMP/NAME.trace.
traced() {
  post "$1" /v1/run "$(jq -cn --arg t "$2" '{manifest: "brk.yaml", input: {text: $t}, trace: true}')" "$TMP/$3.report"
  eval "u=\$URL_$1"
  code=$(curl -s -o "$TMP/$3.trace" -w '%{http_code}' --max-time 20 -H "Authorization: Bearer $KEY" \
    "$u/v1/runs/$(jq -r .run_id "$TMP/$3.report")/trace")
}
cls() { jq -r '.steps[0].error.class // "none"' "${1:-$TMP/out}"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
requests() { fake_stats "$FAKE_PORT" | jq .requests; }
evalsha_calls() { rcli info commandstats | tr -d '\r' | awk -F'[=,]' '/^cmdstat_evalsha:/ {print $2; f=1} END {if (!f) print 0}'; }

# ---- healthy: both replicas call; round trips per guarded call --------------------------
call A brk.yaml "hello a"
expect_jq "A: a guarded call succeeds" '.status == "succeeded"'
call B brk.yaml "hello b"
expect_jq "B: a guarded call succeeds" '.status == "succeeded"'
call B pbrk.yaml "hello provider"
expect_jq "B: a call through a guarded provider succeeds" '.status == "succeeded"'
traced A "hello traced" healthy
check "a traced guarded run through A (its trace: HTTP $code)" test "$code" = 200
e0=$(evalsha_calls)
n=20
for i in $(seq 1 $((n / 2))); do call A brk.yaml "hello $i"; call B brk.yaml "hello $i"; done
e1=$(evalsha_calls)
rt=$(echo "$e0 $e1 $n" | awk '{printf "%.2f", ($2 - $1) / $3}')
echo "# measured: $rt Redis round trips (EVALSHA) per healthy breaker-guarded call ($n sequential calls over A and B)"
check "at most 2 round trips (admit + record) per healthy guarded call" \
  awk -v r="$rt" 'BEGIN { exit !(r <= 2) }'

# ---- failures through A open the breaker; B refuses within 100 ms ------------------------
# B has just called (its cache is fresh); A's third failure opens the breaker.
call B brk.yaml "hello before"
for i in 1 2 3; do call A brk.yaml "@status=500 fail $i" "$TMP/open.json"; done
t_open=$(now_ms)
late_allowed=""
first_refusal=""
seen=""
for i in $(seq 1 200); do
  t=$(now_ms)
  call B brk.yaml "hello after $i"
  c=$(cls)
  seen="$seen $((t - t_open))ms:$c"
  if [ "$c" = circuit_open ]; then first_refusal=$((t - t_open)); break; fi
  [ $((t - t_open)) -ge 100 ] && late_allowed="$late_allowed $((t - t_open))ms:$c"
  [ $((t - t_open)) -ge 3000 ] && break
done
echo "# measured: B's first refusal came from a request started ${first_refusal:-never} ms after A's opening answer (B's requests, started after the opening answer:$seen)"
if [ -n "$first_refusal" ] && [ -z "$late_allowed" ]; then
  ok "B refuses with circuit_open within 100 ms of the opening on A"
else
  not_ok "B refuses with circuit_open within 100 ms of the opening on A" \
    "first refusal: ${first_refusal:-none}; requests started >= 100 ms after the opening and not refused:$late_allowed"
fi
expect_jq "B: the refusal says the breaker is open" \
  '.steps[0].error.message | test("circuit breaker agent:ask is open")'
cp "$TMP/open.json" "$TMP/out"
expect_jq "A: the third counted failure opened the breaker" \
  '.steps[0].error.class == "unavailable" and ([.breaker_transitions[] | [.from, .to]] == [["closed", "open"]])'
check "the breaker is open in Redis, under its namespace" \
  sh -c '[ "$(REDISCLI_AUTH="$1" redis-cli -h 127.0.0.1 -p "$2" -n 1 hget "fluxroute:breaker:{n:acme}:agent:ask" st)" = 1 ]' \
  sh "$REDIS_PASS" "$RPORT"

# ---- after the cooldown: exactly one probe across A and B -------------------------------
while [ $(($(now_ms) - t_open)) -lt 2200 ]; do sleep 0.05; done
r0=$(requests)
pids=""
for i in 1 2 3; do
  for r in A B; do
    call $r brk.yaml "@slow=1500 probe $r$i" "$TMP/probe.$r$i" &
    pids="$pids $!"
  done
done
for p in $pids; do wait "$p"; done
r1=$(requests)
check "exactly one probe reached the vendor (requests: $((r1 - r0)))" test $((r1 - r0)) -eq 1
succeeded=$(cat "$TMP"/probe.* | jq -s '[.[] | select(.status == "succeeded")] | length')
refused=$(cat "$TMP"/probe.* | jq -s '[.[] | select(.steps[0].error.class == "circuit_open")] | length')
check "one probe succeeded, the 5 other calls were refused (got $succeeded, $refused)" \
  test "$succeeded" = 1 -a "$refused" = 5
cat "$TMP"/probe.* | jq -s '[.[] | select(.status == "succeeded")][0]' >"$TMP/out"
expect_jq "the probe's run reports half_open then closed" \
  '[.breaker_transitions[] | [.from, .to]] == [["open", "half_open"], ["half_open", "closed"]]'
# Closed again everywhere (B may have cached the half-open state for 50 ms).
for i in $(seq 1 40); do
  call B brk.yaml "closed again $i"
  [ "$(cls)" = none ] && break
  sleep 0.05
done
expect_jq "B: calls go ahead once the probe succeeded" '.status == "succeeded"'

# ---- Redis lost ------------------------------------------------------------------------
stop_redis
for i in $(seq 1 60); do
  call A brk.yaml "no redis $i"
  [ "$(cls)" = state_unavailable ] && break
  sleep 0.05
done
expect_jq "Redis stopped: a breaker agent fails with class state_unavailable" \
  '.status == "failed" and .steps[0].error.class == "state_unavailable"'
expect_jq "Redis stopped: the message says why (the URL with the password masked)" \
  '.steps[0].error.message | test("circuit breaker agent:ask: breaker state unreachable: redis redis://:[*]{3}@127[.]0[.]0[.]1:[0-9]+/1: ")'
check "Redis stopped: the password is in no answer" sh -c '! grep -q "$1" "$2"' sh "$REDIS_PASS" "$TMP/out"
r0=$(requests)
call A brk.yaml "no redis either"
expect_jq "Redis stopped: not retried (one attempt)" '(.steps[0].attempts | length) == 1'
r1=$(requests)
check "Redis stopped: the call did not reach the vendor" test $((r1 - r0)) -eq 0
for i in $(seq 1 60); do
  call B pbrk.yaml "no redis $i"
  [ "$(cls)" = state_unavailable ] && break
  sleep 0.05
done
expect_jq "Redis stopped: a provider with a breaker fails with state_unavailable, saying why" \
  '.steps[0].error.class == "state_unavailable" and (.steps[0].error.message | test("circuit breaker provider:guarded: breaker state unreachable: redis redis://:[*]{3}@"))'
call B plain.yaml "still here"
expect_jq "Redis stopped: a manifest without breakers still runs" '.status == "succeeded"'
# Replays take the recorded admissions and never ask Redis.
post B /v1/replay "$(jq -c '{trace: .}' "$TMP/healthy.trace")" "$TMP/out"
expect_jq "Redis stopped: B replays a run recorded while Redis was up, identical" '.identical == true'
traced A "no redis, traced" down
if [ "$code" = 200 ]; then
  cp "$TMP/down.trace" "$TMP/out"
  expect_jq "the trace records the admission 'unavailable' and why" \
    '[.. | objects | select(.kind? == "breaker")][0] | .admission == "unavailable" and (.error | test("breaker state unreachable: redis"))'
  check "the trace holds no Redis password" sh -c '! grep -q "$1" "$2"' sh "$REDIS_PASS" "$TMP/down.trace"
  post B /v1/replay "$(jq -c '{trace: .}' "$TMP/down.trace")" "$TMP/out"
  expect_jq "a run that met an unreachable Redis replays identical" '.identical == true'
else
  echo "# the trace of a run made while Redis was down is not readable (HTTP $code): its replay is not checked"
fi

finish
