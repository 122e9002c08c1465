#!/bin/sh
# Limits of tenants and keys shared by replicas (issue 26, `--state redis`): two serve
# replicas on one real redis-server share requests per minute (15 requests spread over both
# against 10/min admit exactly 10), concurrent runs, and token counts; GET /v1/limits on
# either shows what both counted.  Queued runs: a replica that only accepts (--concurrency 0)
# puts the limits of the tenant and key in the queue entry, and a `fluxroute worker`, then a
# replica whose keys file never named them, enforce them (tokens_per_minute: rate_limited).
# 127.0.0.1 only.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
. "$FR_SRCDIR/tests/redis_lib.sh"
command -v redis-server >/dev/null 2>&1 || { echo "1..0 # SKIP no redis-server"; exit 77; }
A_PID=""
W_PID=""
stop_w() { if [ -n "$W_PID" ]; then kill "$W_PID" 2>/dev/null; wait "$W_PID" 2>/dev/null; W_PID=""; fi; }
stop_a() { if [ -n "$A_PID" ]; then kill "$A_PID" 2>/dev/null; wait "$A_PID" 2>/dev/null; A_PID=""; fi; }
trap 'stop_serve; stop_a; stop_w; stop_redis; rm -rf "$TMP"' EXIT
start_redis || { echo "redis-server did not start"; exit 1; }
mkdir -p "$TMP/m"
cat > "$TMP/keys.yaml" <<YAML
tenants:
  - {id: beta, limits: {concurrent_runs: 2}}
  - {id: delta, limits: {tokens_per_minute: 50}}
keys:
  - {id: a-op, sha256: $(sha a-key), tenant: alpha, namespace: alpha, role: operator, limits: {requests_per_minute: 10}}
  - {id: b-op, sha256: $(sha b-key), tenant: beta, namespace: beta, role: operator}
  - {id: c-op, sha256: $(sha c-key), tenant: gamma, namespace: gamma, role: operator, limits: {tokens_per_minute: 100000}}
  - {id: d-op, sha256: $(sha d-key), tenant: delta, namespace: delta, role: operator}
  - {id: e-op, sha256: $(sha e-key), tenant: eps, namespace: eps, role: operator, limits: {tokens_per_minute: 60}}
YAML
cat > "$TMP/keys-other.yaml" <<YAML
keys:
  - {id: b-op, sha256: $(sha b-key), tenant: beta, namespace: beta, role: operator}
YAML
cat > "$TMP/providers.yaml" <<'YAML'
providers:
  - {id: pause, plugin: mock, config: {delay: 3s}}
  - {id: quick, plugin: mock}
YAML
for ns in alpha beta gamma delta eps; do
  printf 'router: {namespace: %s}\nagents: [{id: echo, plugin: echo}]\npipeline: [{step: echo}]\n' \
    "$ns" > "$TMP/m/echo-$ns.yaml"
  for p in pause quick; do
    cat > "$TMP/m/$p-$ns.yaml" <<YAML
router: {namespace: $ns}
agents: [{id: ask, plugin: llm, provider: $p, config: {prompt: "Tell me about {{input.topic}}", max_tokens: 200}}]
pipeline: [{step: ask}]
input: {topic: rivers}
YAML
  done
done
SERVE="--manifest-dir $TMP/m --keys $TMP/keys.yaml --providers $TMP/providers.yaml --state $REDIS_URL"
start_serve $SERVE || exit 1
A_URL=$SERVE_URL
A_PID=$SERVE_PID
SERVE_PID=""
cp "$TMP/serve.err" "$TMP/serve_a.err"
start_serve $SERVE || exit 1
B_URL=$SERVE_URL
at() { # URL METHOD PATH [BODY [CURL ARGS...]]: req against one replica
  SERVE_URL=$1
  shift
  req "$@"
  SERVE_URL=$B_URL
}

# ---- requests per minute, shared: 15 at once over both replicas, 10/min ---------------------
i=0
while [ $i -lt 15 ]; do
  u=$A_URL; [ $((i % 2)) = 1 ] && u=$B_URL
  curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 -X POST \
    --data-binary '{"manifest": "echo-alpha.yaml"}' -H "Authorization: Bearer a-key" "$u/v1/run" > "$TMP/c.$i" &
  i=$((i + 1))
done
for _ in $(seq 1 400); do
  [ "$(cat "$TMP"/c.* 2>/dev/null | grep -c .)" -ge 15 ] && break
  sleep 0.05
done
admitted=$(cat "$TMP"/c.* | grep -cx 200)
refused=$(cat "$TMP"/c.* | grep -cx 429)
if [ "$admitted" = 10 ] && [ "$refused" = 5 ]; then
  ok "two replicas share requests_per_minute 10: 10 admitted, 5 refused"
else not_ok "two replicas share requests_per_minute" "admitted $admitted, refused $refused"; fi
at "$A_URL" POST /v1/run '{"manifest": "echo-alpha.yaml"}' -H "Authorization: Bearer a-key"
expect_jq "replica A refuses the 16th: rate_limited" '.error.code == "rate_limited" and .error.retry_after_s > 0 and .error.retry_after_s <= 60'
hdr() { sed -n "s/^$1: \([0-9]*\).*/\1/Ip" "$TMP/headers" | tr -d '\r'; }
if [ "$(hdr x-ratelimit-limit-requests)" = 10 ] && [ "$(hdr x-ratelimit-remaining-requests)" = 0 ]; then
  ok "replica A's refusal says 0 requests remain (the admission script's count, both replicas')"
else not_ok "x-ratelimit-*-requests on replica A" "$(cat "$TMP/headers")"; fi
at "$B_URL" POST /v1/run '{"manifest": "echo-alpha.yaml"}' -H "Authorization: Bearer a-key"
if [ "$code" = 429 ] && [ "$(hdr x-ratelimit-remaining-requests)" = 0 ]; then
  ok "replica B's refusal says 0 requests remain too"
else not_ok "x-ratelimit-*-requests on replica B" "$code $(cat "$TMP/headers")"; fi
at "$B_URL" GET /v1/limits '' -H "Authorization: Bearer a-key"
expect_jq "replica B's GET /v1/limits counts both replicas' runs" \
  '.key.usage.requests_per_minute.used == 10 and .key.usage.requests_per_minute.remaining == 0'

# ---- concurrent runs, shared ------------------------------------------------------------------
B="Authorization: Bearer b-key"
at "$A_URL" POST /v1/run '{"manifest": "pause-beta.yaml", "async": true}' -H "$B"
expect_code "a run in flight on replica A" 202
R1=$(jq -r .run_id "$TMP/out")
at "$B_URL" POST /v1/run '{"manifest": "pause-beta.yaml", "async": true}' -H "$B"
expect_code "a second on replica B" 202
R2=$(jq -r .run_id "$TMP/out")
# Async runs go through the durable queue (e2e_state_queue.sh): wait until a consumer
# executes both (their records say running).
# The runs pause 3 s, so both are still in flight when the third asks, even on a busy
# machine where the queue takes a while to hand them out.
for _ in $(seq 1 200); do
  at "$A_URL" GET "/v1/runs/$R1" '' -H "$B"; s1=$(jq -r .status "$TMP/out")
  at "$A_URL" GET "/v1/runs/$R2" '' -H "$B"; s2=$(jq -r .status "$TMP/out")
  [ "$s1 $s2" = "running running" ] && break
  sleep 0.05
done
at "$A_URL" POST /v1/run '{"manifest": "pause-beta.yaml"}' -H "$B"
expect_jq "a third on replica A: too_many_runs (concurrent_runs 2 across replicas)" \
  '.error.code == "too_many_runs" and (.error.message | test("tenant \"beta\": limit concurrent_runs 2 reached \\(2 runs in flight"))'
for _ in $(seq 1 300); do
  at "$B_URL" POST /v1/run '{"manifest": "echo-beta.yaml"}' -H "$B"
  [ "$code" = 200 ] && break
  sleep 0.05
done
expect_code "admitted again once they ended (a leave reaches Redis)" 200

# ---- tokens, shared --------------------------------------------------------------------------
C="Authorization: Bearer c-key"
at "$A_URL" POST /v1/run '{"manifest": "quick-gamma.yaml"}' -H "$C"
expect_jq "a call through replica A" '.status == "succeeded"'
used=$(jq '.steps[0].output.usage | .input_tokens + .output_tokens' "$TMP/out")
if [ "$(hdr x-ratelimit-limit-tokens)" = 100000 ] &&
  [ "$(hdr x-ratelimit-remaining-tokens)" = $((100000 - used)) ] &&
  grep -qi '^x-ratelimit-reset-tokens: [1-9][0-9]*s' "$TMP/headers"; then
  ok "x-ratelimit-*-tokens with redis: $((100000 - used)) remain after the settled call"
else not_ok "x-ratelimit-*-tokens on replica A" "used $used; $(cat "$TMP/headers")"; fi
at "$B_URL" POST /v1/run '{"manifest": "quick-gamma.yaml"}' -H "$C"
used2=$(jq '.steps[0].output.usage | .input_tokens + .output_tokens' "$TMP/out")
if [ "$(hdr x-ratelimit-remaining-tokens)" = $((100000 - used - used2)) ]; then
  ok "replica B's x-ratelimit-remaining-tokens counts replica A's call too"
else not_ok "x-ratelimit-remaining-tokens on replica B" "$used + $used2; $(cat "$TMP/headers")"; fi
used=$((used + used2))
at "$B_URL" GET /v1/limits '' -H "$C"
expect_jq "replica B sees the tokens A settled ($used)" ".key.usage.tokens_per_minute.used == $used"
if [ "$(rcli -n 1 --scan --pattern 'fluxroute:{t:gamma}:tok:k:c-op' | wc -l)" = 1 ]; then
  ok "the counters are in Redis, in the tenant's hash tag"
else not_ok "counters in Redis" "$(rcli -n 1 --scan --pattern '*' | head)"; fi
stop_serve
stop_a

# ---- queued runs: the entry carries the limits, every consumer enforces them ----------------
# S accepts only (--concurrency 0); the worker, then replica B2 (whose keys file does not
# name delta, eps or their keys, and which never saw them call), execute.  Each call
# reserves its bytes + max_tokens 200: more than 50 (tenant delta) or 60 (key e-op).
start_serve $SERVE --concurrency 0 || exit 1
S_URL=$SERVE_URL
A_PID=$SERVE_PID
SERVE_PID=""
: >"$TMP/w.out"
"$FLUXROUTE" worker --manifest-dir "$TMP/m" --providers "$TMP/providers.yaml" --state "$REDIS_URL" \
  >"$TMP/w.out" 2>"$TMP/w.err" &
W_PID=$!
for _ in $(seq 1 600); do
  grep -q '^worker consuming' "$TMP/w.out" && break
  kill -0 "$W_PID" 2>/dev/null || break
  sleep 0.05
done
check "the worker started" grep -q '^worker consuming' "$TMP/w.out"
# queued CONSUMER NS KEY WHOSE LIMIT: an async run on S, polled (20 s) until it ends
queued() {
  at "$S_URL" POST /v1/run "{\"manifest\": \"quick-$2.yaml\", \"async\": true}" -H "Authorization: Bearer $3"
  [ "$code" = 202 ] || { not_ok "$1: $2's run accepted" "HTTP $code $(cat "$TMP/out")"; return; }
  id=$(jq -r .run_id "$TMP/out")
  for _ in $(seq 1 400); do
    at "$S_URL" GET "/v1/runs/$id" '' -H "Authorization: Bearer $3"
    case $(jq -r .status "$TMP/out") in succeeded | failed | cancelled) break ;; esac
    sleep 0.05
  done
  expect_jq "$1 enforces $4 tokens_per_minute $5 on a queued run: rate_limited" \
    ".status == \"failed\" and .report.steps[0].error.class == \"rate_limited\" and (.report.steps[0].error.message | test(\"$4.*limit tokens_per_minute $5 \"))"
}
queued "the worker" delta d-key 'tenant .delta.' 50
queued "the worker" eps e-key 'key .e-op.' 60
at "$S_URL" POST /v1/run '{"manifest": "quick-gamma.yaml", "async": true}' -H "Authorization: Bearer c-key"
id=$(jq -r .run_id "$TMP/out")
for _ in $(seq 1 400); do
  at "$S_URL" GET "/v1/runs/$id" '' -H "Authorization: Bearer c-key"
  case $(jq -r .status "$TMP/out") in succeeded | failed | cancelled) break ;; esac
  sleep 0.05
done
expect_jq "the worker runs a call within its key's limits" '.status == "succeeded"'
stop_w
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys-other.yaml" --providers "$TMP/providers.yaml" \
  --state "$REDIS_URL" --concurrency 1 || exit 1
queued "replica B2 (never saw the key)" delta d-key 'tenant .delta.' 50
queued "replica B2 (never saw the key)" eps e-key 'key .e-op.' 60
stop_serve
stop_a
finish
