#!/bin/sh
# Limits of tenants and keys in `fluxroute serve` (issue 26), with `memory` state: the keys
# file's tenants: and limits: (unknown fields and bad documents refused at start, exit 2,
# naming the field; a budget without --controlplane refused), requests per minute (200
# concurrent requests against 50/min admit exactly 50, the rest 429 rate_limited with a
# right Retry-After), concurrent runs (too_many_runs), tokens per minute per provider call
# (reserve-then-settle; refused mid-run with class rate_limited), x-ratelimit-* headers,
# GET /v1/limits, the rejections metric, SIGHUP.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
mkdir -p "$TMP/m"
A="Authorization: Bearer a-key"
A2="Authorization: Bearer a2-key"
B="Authorization: Bearer b-key"
C="Authorization: Bearer c-key"
keys() { # KEY-A-LIMITS TENANT-BETA-LIMITS KEY-C-LIMITS
  cat > "$TMP/keys.yaml" <<YAML
tenants:
  - {id: beta, limits: $2}
keys:
  - {id: a-op, sha256: $(sha a-key), tenant: alpha, namespace: alpha, role: operator, limits: $1}
  - {id: a2-op, sha256: $(sha a2-key), tenant: alpha, namespace: alpha, role: operator}
  - {id: b-op, sha256: $(sha b-key), tenant: beta, namespace: beta, role: operator}
  - {id: c-op, sha256: $(sha c-key), tenant: gamma, namespace: gamma, role: operator, limits: $3}
YAML
}
cat > "$TMP/providers.yaml" <<'YAML'
providers:
  - {id: pause, plugin: mock, config: {delay: 700ms}}
  - {id: quick, plugin: mock}
YAML
for ns in alpha beta gamma; do
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
# 200 concurrent requests of one tenant below: the limits under test must refuse them, not
# the tenant's share of --max-runs (a quarter by default, 429 with Retry-After: 1), which a
# loaded machine reaches while the burst is admitted.
SERVE="--manifest-dir $TMP/m --keys $TMP/keys.yaml --providers $TMP/providers.yaml --max-runs 256 --max-runs-per-tenant 256"

# ---- bad keys files: refused at start (exit 2), the field named -------------------------
bad_keys() { # NAME TEXT WANT
  printf '%s\n' "$2" > "$TMP/bad.yaml"
  fr serve --addr 127.0.0.1:0 --manifest-dir "$TMP/m" --keys "$TMP/bad.yaml"
  expect_rc "$1" 2
  expect_err "$1" "$3"
}
K="{id: k, sha256: $(sha k), tenant: team, namespace: team, role: operator"
bad_keys "unknown top-level field" "keys: []
tenant: []" 'unknown field "tenant" in the keys file (expected keys, clients, tenants)'
bad_keys "unknown key field" "keys: [$K, rol: admin}]" 'unknown field "rol" in a key'
bad_keys "unknown tenant field" "tenants: [{id: t, limit: {}}]" 'unknown field "limit" in a tenant'
bad_keys "negative limit" "keys: [$K, limits: {requests_per_minute: -1}}]" \
  'key "k": limits: field "requests_per_minute": must not be negative'
bad_keys "quoted number" "tenants: [{id: t, limits: {concurrent_runs: '2'}}]" \
  'tenant "t": limits: field "concurrent_runs": expected a non-negative integer, got string'
bad_keys "unknown limit field" "tenants: [{id: t, limits: {models: {gpt-4o: {tpm: 5}}}}]" \
  'unknown field "models.gpt-4o.tpm"'
bad_keys "budget without the control plane" \
  "tenants: [{id: t, limits: {monthly_budget_micros: 1000}}]" \
  'tenant "t" sets monthly_budget_micros, but budgets need prices: start serve with --controlplane'

# ---- requests per minute: 200 at once against 50/min admit exactly 50 -------------------
keys "{requests_per_minute: 50}" "{concurrent_runs: 2}" "{tokens_per_minute: 1500}"
start_serve $SERVE || exit 1
t0=$(date +%s)
i=0
while [ $i -lt 200 ]; do
  curl -s -o /dev/null -D "$TMP/h.$i" -w '%{http_code}\n' --max-time 30 -X POST \
    --data-binary '{"manifest": "echo-alpha.yaml"}' -H "$A" "$SERVE_URL/v1/run" > "$TMP/c.$i" &
  i=$((i + 1))
done
wait_all() { # the curls above (serve itself is not a child of this subshell's wait list)
  for _ in $(seq 1 600); do
    [ "$(cat "$TMP"/c.* 2>/dev/null | grep -c .)" -ge 200 ] && return
    sleep 0.05
  done
}
wait_all
t1=$(date +%s)
admitted=$(cat "$TMP"/c.* | grep -cx 200)
refused=$(cat "$TMP"/c.* | grep -cx 429)
if [ "$admitted" = 50 ] && [ "$refused" = 150 ]; then
  ok "200 concurrent requests against 50/min: 50 admitted, 150 refused"
else
  not_ok "200 concurrent requests against 50/min" "admitted $admitted, refused $refused"
fi
# Retry-After: when the oldest of the 50 leaves the window (60 s after the burst began).
ra_bad=0
ra_seen=0
for f in "$TMP"/h.*; do
  grep -q '^HTTP/1.1 429' "$f" || continue
  ra_seen=$((ra_seen + 1))
  ra=$(sed -n 's/^Retry-After: \([0-9]*\).*/\1/p' "$f" | tr -d '\r')
  lo=$((60 - (t1 - t0) - 1))
  if [ -z "$ra" ] || [ "$ra" -gt 60 ] || [ "$ra" -lt "$lo" ]; then ra_bad=$((ra_bad + 1)); fi
done
if [ "$ra_bad" = 0 ] && [ "$ra_seen" = 150 ]; then ok "every 429 has Retry-After within (60 - elapsed) .. 60 s"; else
  not_ok "Retry-After of the refused" "$ra_bad wrong of $ra_seen"; fi
req POST /v1/run '{"manifest": "echo-alpha.yaml"}' -H "$A"
expect_code "the 201st, still within the minute" 429
expect_jq "its error names the limit" '.error.code == "rate_limited" and .error.limit == "requests_per_minute"'
expect_jq "its message names window and reset" \
  '.error.message | test("key \"a-op\": limit requests_per_minute 50 reached \\(at most 50 runs in any rolling 60 s\\); the next run is admitted in [0-9]+ s, at 20[0-9-]+T")'
if grep -qi '^x-ratelimit-limit-requests: 50' "$TMP/headers" &&
  grep -qi '^x-ratelimit-remaining-requests: 0' "$TMP/headers" &&
  grep -qi '^x-ratelimit-reset-requests: [0-9]*s' "$TMP/headers"; then
  ok "x-ratelimit-*-requests headers on the refusal"
else not_ok "x-ratelimit headers" "$(cat "$TMP/headers")"; fi
req GET /v1/limits '' -H "$A"
expect_code "GET /v1/limits" 200
expect_jq "the key's limit, used, remaining, reset" \
  '.key.id == "a-op" and .key.limits.requests_per_minute == 50 and .key.usage.requests_per_minute.used == 50 and .key.usage.requests_per_minute.remaining == 0 and (.key.usage.requests_per_minute.reset | test("Z$")) and .key.source == "keys_file"'
expect_jq "the tenant has none" '.tenant.id == "alpha" and .tenant.limits == {}'
if grep -qi '^x-ratelimit-limit-requests: 50' "$TMP/headers"; then
  ok "headers on every response to a limited key (GET /v1/limits)"
else not_ok "headers on GET /v1/limits" "$(cat "$TMP/headers")"; fi
# Another key of the same tenant is not limited, and gets no headers.
req POST /v1/run '{"manifest": "echo-alpha.yaml"}' -H "$A2"
expect_code "another key of the tenant" 200
if grep -qi '^x-ratelimit' "$TMP/headers"; then not_ok "no x-ratelimit for an unlimited key"; else
  ok "no x-ratelimit headers for an unlimited key"; fi

# ---- concurrent runs of a tenant: too_many_runs -----------------------------------------
for i in 1 2; do req POST /v1/run '{"manifest": "pause-beta.yaml", "async": true}' -H "$B"; done
expect_code "two runs in flight" 202
req POST /v1/run '{"manifest": "pause-beta.yaml"}' -H "$B"
expect_code "a third while two are in flight" 429
expect_jq "too_many_runs naming concurrent_runs" \
  '.error.code == "too_many_runs" and .error.limit == "concurrent_runs" and (.error.message | test("tenant \"beta\": limit concurrent_runs 2 reached"))'
if grep -q '^Retry-After: 1' "$TMP/headers"; then ok "too_many_runs has Retry-After"; else
  not_ok "Retry-After on too_many_runs"; fi
for _ in $(seq 1 100); do # the two end after 700 ms
  req POST /v1/run '{"manifest": "echo-beta.yaml"}' -H "$B"
  [ "$code" = 200 ] && break
  sleep 0.05
done
expect_code "admitted again once they ended" 200

# ---- tokens per minute, charged per provider call ---------------------------------------
# Each call reserves its request's bytes + max_tokens (200), then settles at the usage the
# mock reports (a few tokens): so calls go on under 1500 tokens a minute...
for i in 1 2 3 4 5; do
  req POST /v1/run '{"manifest": "quick-gamma.yaml"}' -H "$C"
  [ "$code" = 200 ] && [ "$(jq -r .status "$TMP/out")" = succeeded ] || break
done
if [ "$code" = 200 ] && [ "$(jq -r .status "$TMP/out")" = succeeded ]; then
  ok "calls settle at the usage reported: 5 runs under tokens_per_minute 1500"
else not_ok "5 runs under tokens_per_minute" "run $i: HTTP $code"; fi
rem=$(sed -n 's/^x-ratelimit-remaining-tokens: \([0-9]*\).*/\1/Ip' "$TMP/headers" | tr -d '\r')
used=$(jq '[.steps[].attempts[]?.provider_calls[]? | .input_tokens + .output_tokens] | add // 0' "$TMP/out" 2>/dev/null)
if [ -n "$rem" ] && [ "$rem" -lt 1500 ] && [ "$rem" -gt 1000 ]; then
  ok "x-ratelimit-remaining-tokens went down by what was used ($rem)"
else not_ok "x-ratelimit-remaining-tokens" "got '$rem'" "$(cat "$TMP/headers")"; fi
req GET /v1/limits '' -H "$C"
expect_jq "tokens used in the window" '.key.usage.tokens_per_minute.used > 0 and .key.usage.tokens_per_minute.used < 500'
# ... but a call whose reservation cannot fit is refused before the vendor: class
# rate_limited, not sent to the provider.
keys "{requests_per_minute: 50}" "{concurrent_runs: 2}" "{tokens_per_minute: 100}"
kill -HUP "$SERVE_PID"
for _ in $(seq 1 100); do
  grep -q "reloaded" "$TMP/serve.err" && break
  sleep 0.05
done
req GET /v1/limits '' -H "$C"
expect_jq "SIGHUP re-reads the limits" '.key.limits.tokens_per_minute == 100'
req POST /v1/run '{"manifest": "quick-gamma.yaml"}' -H "$C"
expect_jq "a call over tokens_per_minute fails its step: rate_limited" \
  '.status == "failed" and .steps[0].error.class == "rate_limited" and (.steps[0].error.message | test("limit tokens_per_minute 100"))'

# ---- metrics ------------------------------------------------------------------------------
fr_metric() { curl -s -H "$1" "$SERVE_URL/metrics"; }
cat >> "$TMP/keys.yaml" <<YAML
  - {id: admin, sha256: $(sha admin-key), tenant: ops, namespace: ops, role: admin}
YAML
kill -HUP "$SERVE_PID"
for _ in $(seq 1 100); do
  [ "$(grep -c reloaded "$TMP/serve.err")" -ge 2 ] && break
  sleep 0.05
done
fr_metric "Authorization: Bearer admin-key" > "$TMP/metrics"
check "rejections counted by tenant and limit" \
  grep -q '^fluxroute_limit_rejections_total{tenant="alpha",limit="requests_per_minute"} 151$' "$TMP/metrics"
check "concurrency rejections counted" \
  grep -q '^fluxroute_limit_rejections_total{tenant="beta",limit="concurrent_runs"} [1-9]' "$TMP/metrics"
check "token rejections counted" \
  grep -q '^fluxroute_limit_rejections_total{tenant="gamma",limit="tokens_per_minute"} [1-9]' "$TMP/metrics"
stop_serve
finish
