#!/bin/sh
# Limits through the control plane (issue 26): GET/PUT /v1/tenants/ID/limits and
# /v1/keys/KEY_ID/limits (malformed documents 400 naming the field), the service-key
# readable GET /v1/tenants/ID/spend; serve picks changes up within 5 s through its key
# lookup; budgets priced with the rate card: 64 concurrent provider calls against a budget
# just above 10 calls' cost never spend past it, the refused fail with class
# budget_exceeded (not retried), and the control plane's invoice agrees with what serve let
# through; a restart seeds the spend from the control plane.  127.0.0.1 only.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
. "$FR_SRCDIR/tests/cp_lib.sh"
trap 'stop_serve; stop_cp; rm -rf "$TMP"' EXIT
ADMIN=limits-admin-key-1
start_cp

cp_req POST /v1/tenants '{"id": "acme"}'
cp_req POST /v1/tenants/acme/keys '{"role": "operator"}'
KEY=$(jq -r .key "$TMP/out")
KEY_ID=$(jq -r .key_id "$TMP/out")
cp_req POST /v1/tenants/acme/keys '{"role": "operator"}'
KEY2=$(jq -r .key "$TMP/out")
cp_req POST /v1/service-keys
SVC=$(jq -r .key "$TMP/out")
# One cent (10000 micro-units) per token, in and out: invoice lines round to cents, so the
# invoice and serve's exact count can be compared to the micro-unit.
cp_req POST /v1/billing/rates '{"effective_from": "2024-01-01", "prices": [{"model": "*", "input_per_mtok": 10000000000, "output_per_mtok": 10000000000, "per_run": 0}]}'
expect_code "a rate card" 201

# ---- the routes ---------------------------------------------------------------------------
cp_req GET /v1/tenants/acme/limits
expect_jq "no limits set: {}" '.tenant_id == "acme" and .limits == {}'
cp_req PUT /v1/tenants/acme/limits '{"requests_per_minute": -5}'
expect_code "a negative limit" 400
expect_jq "named" '.error.code == "invalid" and (.error.message | test("field \"requests_per_minute\": must not be negative"))'
cp_req PUT /v1/tenants/acme/limits '{"models": {"m": {"tokens_per_minut": 5}}}'
expect_jq "an unknown field, named" '.error.message | test("unknown field \"models.m.tokens_per_minut\"")'
cp_req PUT /v1/tenants/acme/limits '{"concurrent_runs": "8"}'
expect_jq "a wrong type, named" '.error.message | test("field \"concurrent_runs\": expected a non-negative integer, got string")'
cp_req PUT /v1/tenants/acme/limits '{"requests_per_minute": 1000}' "$SVC"
expect_code "a service key may not set limits" 403
cp_req PUT /v1/tenants/nobody/limits '{}'
expect_code "an unknown tenant" 404
cp_req PUT /v1/keys/no-such-key/limits '{}'
expect_code "an unknown key" 404
cp_req PUT /v1/tenants/acme/limits '{"requests_per_minute": 1000, "concurrent_runs": null}'
expect_code "PUT tenant limits" 200
expect_jq "stored as sent (null: no limit)" '.limits == {"requests_per_minute": 1000}'
cp_req GET /v1/tenants/acme/limits "" "$SVC"
expect_jq "a service key reads them" '.limits.requests_per_minute == 1000'
cp_req GET /v1/tenants/acme/limits "" "$KEY"
expect_jq "the tenant reads its own" '.limits.requests_per_minute == 1000'
cp_req PUT "/v1/keys/$KEY_ID/limits" '{"tokens_per_minute": 100000}'
expect_jq "PUT key limits" ".key_id == \"$KEY_ID\" and .limits.tokens_per_minute == 100000"
cp_req GET "/v1/keys/$KEY_ID/limits" "" "$SVC"
expect_jq "GET key limits" '.limits.tokens_per_minute == 100000'
cp_req GET "/v1/tenants/acme/spend" "" "$SVC"
expect_jq "spend, service-key readable" '.tenant_id == "acme" and .spent_micros == 0 and (.month | test("^20[0-9]{2}-[0-9]{2}$"))'
cp_req GET "/v1/tenants/acme/spend?month=2024-13" "" "$SVC"
expect_code "a bad month" 400

# ---- serve: limits through the lookup ---------------------------------------------------------
mkdir -p "$TMP/m"
WORDS=$(printf 'w%.0s ' $(seq 1 60))
BIG=$(printf 'w%.0s ' $(seq 1 450))
printf 'providers:\n  - {id: local, plugin: mock, config: {reply: "%s", delay: 150ms}}\n  - {id: big, plugin: mock, config: {reply: "%s"}}\n' \
  "$WORDS" "$BIG" >"$TMP/providers.yaml"
cat >"$TMP/m/ask.yaml" <<'YAML'
router: {namespace: acme}
agents: [{id: ask, plugin: llm, provider: local, config: {prompt: "one two three four", max_tokens: 40}}]
pipeline: [{step: ask}]
YAML
export CONTROLPLANE_SERVICE_KEY=$SVC CONTROLPLANE_SPOOL="$TMP/usage.spool"
# 64 concurrent runs of one tenant below: the budget must refuse them, not the tenant's
# share of --max-runs (a quarter by default), which a loaded machine can reach.
CAPS="--max-runs 128 --max-runs-per-tenant 64"
start_serve --manifest-dir "$TMP/m" --providers "$TMP/providers.yaml" --controlplane "$CP_URL" $CAPS || exit 1
A="Authorization: Bearer $KEY"
req GET /v1/limits '' -H "$A"
expect_jq "serve shows the control plane's limits" \
  '.tenant.limits.requests_per_minute == 1000 and .tenant.source == "controlplane" and .key.limits.tokens_per_minute == 100000'
# A change takes effect within 5 s (the lookup's cache).
cp_req PUT /v1/tenants/acme/limits '{"requests_per_minute": 1000, "monthly_budget_micros": 0}'
t0=$(date +%s%N)
for _ in $(seq 1 140); do
  req GET /v1/limits '' -H "$A"
  [ "$(jq -r '.tenant.limits.monthly_budget_micros' "$TMP/out")" = 0 ] && break
  sleep 0.05
done
took=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$(jq -r '.tenant.limits.monthly_budget_micros' "$TMP/out")" = 0 ] && [ "$took" -le 5600 ]; then
  ok "a control-plane change took effect in ${took} ms (<= 5 s + a poll)"
else not_ok "change within 5 s" "took ${took} ms: $(cat "$TMP/out")"; fi
req POST /v1/run '{"manifest": "ask.yaml"}' -H "$A"
expect_jq "a budget of 0 refuses the call: budget_exceeded, not retried" \
  '.status == "failed" and .steps[0].error.class == "budget_exceeded" and (.steps[0].attempts | length) == 1 and (.steps[0].error.message | test("limit monthly_budget_micros 0 reached .* it resets at 20"))'

# ---- the budget under 64 concurrent calls ---------------------------------------------------
# A call: 4 input tokens ("one two three four") + 40 output (max_tokens) = 44 tokens = 440000
# micro-units.  The budget: just above 10 calls' cost.
COST=440000
BUDGET=$((10 * COST + 1))
cp_req PUT /v1/tenants/acme/limits "{\"monthly_budget_micros\": $BUDGET}"
for _ in $(seq 1 140); do
  req GET /v1/limits '' -H "$A"
  [ "$(jq -r '.tenant.limits.monthly_budget_micros' "$TMP/out")" = "$BUDGET" ] && break
  sleep 0.05
done
i=0
while [ $i -lt 64 ]; do
  curl -s -o "$TMP/r.$i" --max-time 30 -X POST --data-binary '{"manifest": "ask.yaml"}' \
    -H "Authorization: Bearer $KEY2" "$SERVE_URL/v1/run" &
  i=$((i + 1))
done
wait_runs() {
  for _ in $(seq 1 600); do
    n=0
    # A report, or an error body (a refusal is counted, and fails the checks below).
    for f in "$TMP"/r.*; do jq -e '.status // .error' "$f" >/dev/null 2>&1 && n=$((n + 1)); done
    [ "$n" -ge 64 ] && return
    sleep 0.05
  done
}
wait_runs
succeeded=$(cat "$TMP"/r.* | jq -s '[.[] | select(.status == "succeeded")] | length')
budget_refused=$(cat "$TMP"/r.* | jq -s '[.[] | select(.steps[0].error.class == "budget_exceeded")] | length')
tokens=$(cat "$TMP"/r.* | jq -s '[.[] | select(.status == "succeeded") | .steps[0].output.usage | .input_tokens + .output_tokens] | add // 0')
spent=$((tokens * 10000))
if [ "$succeeded" -ge 1 ] && [ "$succeeded" -le 10 ] && [ $((succeeded + budget_refused)) = 64 ]; then
  ok "64 concurrent calls: $succeeded let through, $budget_refused refused budget_exceeded"
else not_ok "64 concurrent calls against the budget" "succeeded $succeeded, refused $budget_refused"; fi
if [ "$spent" -le "$BUDGET" ]; then ok "spent $spent <= budget $BUDGET (the bound: reservations cover every call)"; else
  not_ok "spent within the budget" "spent $spent > $BUDGET"; fi
req GET /v1/limits '' -H "$A"
expect_jq "serve's count: what it let through, nothing reserved" \
  ".tenant.usage.monthly_budget_micros.used == $spent and .tenant.usage.monthly_budget_micros.reserved == 0"
# The invoice agrees (usage reaches the control plane within ~100 ms, batched).
MONTH=$(date -u +%Y-%m)
for _ in $(seq 1 100); do
  cp_req GET "/v1/tenants/acme/spend?month=$MONTH" "" "$SVC"
  [ "$(jq -r .spent_micros "$TMP/out")" = "$spent" ] && break
  sleep 0.1
done
expect_jq "the control plane's invoice agrees: $spent" ".spent_micros == $spent"

# ---- a restart seeds the spend --------------------------------------------------------------
stop_serve
start_serve --manifest-dir "$TMP/m" --providers "$TMP/providers.yaml" --controlplane "$CP_URL" || exit 1
req GET /v1/limits '' -H "$A"
expect_jq "after a restart the budget starts from the control plane's spend" \
  ".tenant.usage.monthly_budget_micros.used == $spent"
stop_serve

# ---- the same budget shared by two replicas through Redis -------------------------------------
command -v redis-server >/dev/null 2>&1 || { echo "ok - two replicas # SKIP no redis-server"; finish; exit $?; }
. "$FR_SRCDIR/tests/redis_lib.sh"
A_PID=""
stop_a() { if [ -n "$A_PID" ]; then kill "$A_PID" 2>/dev/null; wait "$A_PID" 2>/dev/null; A_PID=""; fi; }
trap 'stop_serve; stop_a; stop_cp; stop_redis; rm -rf "$TMP"' EXIT
start_redis || { not_ok "redis-server did not start"; finish; exit 1; }
cp_req POST /v1/tenants '{"id": "globex"}'
cp_req POST /v1/tenants/globex/keys '{"role": "operator"}'
GKEY=$(jq -r .key "$TMP/out")
cp_req PUT /v1/tenants/globex/limits "{\"monthly_budget_micros\": $BUDGET}"
sed 's/namespace: acme/namespace: globex/' "$TMP/m/ask.yaml" > "$TMP/m/ask-globex.yaml"
start_serve --manifest-dir "$TMP/m" --providers "$TMP/providers.yaml" --controlplane "$CP_URL" \
  --state "$REDIS_URL" $CAPS || exit 1
A_URL=$SERVE_URL; A_PID=$SERVE_PID; SERVE_PID=""; mv "$TMP/serve.err" "$TMP/a.err"
CONTROLPLANE_SPOOL="$TMP/usage-b.spool" start_serve --manifest-dir "$TMP/m" --providers "$TMP/providers.yaml" \
  --controlplane "$CP_URL" --state "$REDIS_URL" $CAPS || exit 1
B_URL=$SERVE_URL
rm -f "$TMP"/r.*
i=0
while [ $i -lt 64 ]; do
  u=$A_URL; [ $((i % 2)) = 1 ] && u=$B_URL
  curl -s -o "$TMP/r.$i" --max-time 30 -X POST --data-binary '{"manifest": "ask-globex.yaml"}' \
    -H "Authorization: Bearer $GKEY" "$u/v1/run" &
  i=$((i + 1))
done
wait_runs
succeeded=$(cat "$TMP"/r.* | jq -s '[.[] | select(.status == "succeeded")] | length')
budget_refused=$(cat "$TMP"/r.* | jq -s '[.[] | select(.steps[0].error.class == "budget_exceeded")] | length')
tokens=$(cat "$TMP"/r.* | jq -s '[.[] | select(.status == "succeeded") | .steps[0].output.usage | .input_tokens + .output_tokens] | add // 0')
spent=$((tokens * 10000))
if [ "$succeeded" -ge 1 ] && [ "$succeeded" -le 10 ] && [ $((succeeded + budget_refused)) = 64 ] &&
  [ "$spent" -le "$BUDGET" ]; then
  ok "two replicas, one budget in Redis: $succeeded let through, spent $spent <= $BUDGET"
else not_ok "two replicas share the budget" "succeeded $succeeded, refused $budget_refused, spent $spent"; fi
req GET /v1/limits '' -H "Authorization: Bearer $GKEY"
expect_jq "Redis holds what both let through, nothing reserved" \
  ".tenant.usage.monthly_budget_micros.used == $spent and .tenant.usage.monthly_budget_micros.reserved == 0"
for _ in $(seq 1 100); do
  cp_req GET "/v1/tenants/globex/spend?month=$MONTH" "" "$SVC"
  [ "$(jq -r .spent_micros "$TMP/out")" = "$spent" ] && break
  sleep 0.1
done
expect_jq "the invoice agrees with both replicas: $spent" ".spent_micros == $spent"
# One warn line per threshold crossed, whichever replica crosses it: a call of 404 tokens
# (4 in, 400 out), a budget where the second call fits and passes 80%.
cp_req POST /v1/tenants '{"id": "initech"}'
cp_req POST /v1/tenants/initech/keys '{"role": "operator"}'
IKEY=$(jq -r .key "$TMP/out")
cat >"$TMP/m/big.yaml" <<'YAML'
router: {namespace: initech}
agents: [{id: ask, plugin: llm, provider: big, config: {prompt: "one two three four", max_tokens: 400}}]
pipeline: [{step: ask}]
YAML
cp_req PUT /v1/tenants/initech/limits '{"monthly_budget_micros": 0}'
at() { SERVE_URL=$1; shift; req "$@"; SERVE_URL=$B_URL; }
at "$A_URL" POST /v1/run '{"manifest": "big.yaml"}' -H "Authorization: Bearer $IKEY"
est=$(jq -r '.steps[0].error.message' "$TMP/out" | sed -n 's/.*this call reserves \([0-9]*\)).*/\1/p')
B2=$((4040000 + ${est:-0} + 10000)) # the first call's spend + the second's reservation
cp_req PUT /v1/tenants/initech/limits "{\"monthly_budget_micros\": $B2}"
for u in "$A_URL" "$B_URL"; do # each replica's lookup cache (5 s)
  for _ in $(seq 1 140); do
    at "$u" GET /v1/limits '' -H "Authorization: Bearer $IKEY"
    [ "$(jq -r .tenant.limits.monthly_budget_micros "$TMP/out")" = "$B2" ] && break
    sleep 0.05
  done
done
at "$A_URL" POST /v1/run '{"manifest": "big.yaml"}' -H "Authorization: Bearer $IKEY"
r1=$(jq -r .status "$TMP/out")
at "$B_URL" POST /v1/run '{"manifest": "big.yaml"}' -H "Authorization: Bearer $IKEY"
r2=$(jq -r .status "$TMP/out")
at "$A_URL" POST /v1/run '{"manifest": "big.yaml"}' -H "Authorization: Bearer $IKEY"
r3=$(jq -r '.steps[0].error.class' "$TMP/out")
if [ "$r1 $r2 $r3" = "succeeded succeeded budget_exceeded" ] && [ $((8080000 * 100)) -ge $((B2 * 80)) ]; then
  ok "initech: 2 calls through two replicas pass 80% of $B2, the third is refused"
else not_ok "initech's calls" "$r1 $r2 $r3 (estimate '$est', budget $B2)"; fi
got80=$(cat "$TMP/a.err" "$TMP/serve.err" | grep -c '"event":"budget_threshold".*"tenant":"initech","threshold_pct":80')
if [ "$got80" = 1 ]; then ok "the 80% crossing is reported once across the replicas"; else
  not_ok "one crossing report across replicas" "got $got80"; fi
stop_serve
stop_a
finish
