#!/bin/sh
# Budgets count the rate card's per_run price as the invoice does (issue 26): a run is
# charged when admitted, one that would pass the budget is refused 429 budget_exceeded,
# GET /v1/limits and the control plane's invoice agree to the micro-unit, a restart seeds
# the spend, a key's too (usage events name their key; GET /v1/tenants/ID/spend?key_id=);
# the same with `--state redis` (charged in the admission script); a budget spent this
# month is admitted again next month (FLUXROUTE_TESTING_CLOCK_OFFSET_FILE moves the
# limits' clock).
# 127.0.0.1 only.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
. "$FR_SRCDIR/tests/redis_lib.sh"
. "$FR_SRCDIR/tests/cp_lib.sh"
trap 'stop_serve; stop_cp; stop_redis; rm -rf "$TMP"' EXIT
ADMIN=run-price-admin-key-1
start_cp
cp_req POST /v1/service-keys
SVC=$(jq -r .key "$TMP/out")
# Tokens are free, a run costs one cent (10000 micro-units: invoice lines round to cents).
cp_req POST /v1/billing/rates '{"effective_from": "2024-01-01", "prices": [{"model": "*", "input_per_mtok": 0, "output_per_mtok": 0, "per_run": 10000}]}'
expect_code "a rate card with per_run" 201
mkdir -p "$TMP/m"
for t in acme globex initech hooli; do
  cp_req POST /v1/tenants "{\"id\": \"$t\"}"
  cp_req POST "/v1/tenants/$t/keys" '{"role": "operator"}'
  eval "KEY_$t=\$(jq -r .key \"\$TMP/out\")"
  eval "KEY_ID_$t=\$(jq -r .key_id \"\$TMP/out\")"
  printf 'router: {namespace: %s}\nagents: [{id: echo, plugin: echo}]\npipeline: [{step: echo}]\n' \
    "$t" >"$TMP/m/echo-$t.yaml"
done
cp_req PUT /v1/tenants/acme/limits '{"monthly_budget_micros": 35000}'
cp_req PUT /v1/tenants/globex/limits '{"monthly_budget_micros": 25000}'
# initech: a budget on its key only, whose spend must survive a restart too.
cp_req PUT "/v1/keys/$KEY_ID_initech/limits" '{"monthly_budget_micros": 25000}'
expect_code "a budget on initech's key ($KEY_ID_initech)" 200
export CONTROLPLANE_SERVICE_KEY=$SVC CONTROLPLANE_SPOOL="$TMP/usage.spool"
MONTH=$(date -u +%Y-%m)

runs() { # TENANT N: N runs one after the other; the codes in $codes
  codes=""
  for _ in $(seq 1 "$2"); do
    eval "k=\$KEY_$1"
    req POST /v1/run "{\"manifest\": \"echo-$1.yaml\", \"input\": {}}" -H "Authorization: Bearer $k"
    codes="$codes $code"
  done
  codes=${codes# }
}
invoice_is() { # TENANT MICROS: waits (10 s at most) for the invoice to say so
  for _ in $(seq 1 100); do
    cp_req GET "/v1/tenants/$1/spend?month=$MONTH" "" "$SVC"
    [ "$(jq -r .spent_micros "$TMP/out")" = "$2" ] && break
    sleep 0.1
  done
  expect_jq "$1's invoice agrees: $2" ".spent_micros == $2"
}

# ---- memory ---------------------------------------------------------------------------------
start_serve --manifest-dir "$TMP/m" --controlplane "$CP_URL" || exit 1
runs acme 4
if [ "$codes" = "200 200 200 429" ]; then ok "a budget of 3.5 runs admits 3 runs ($codes)"; else
  not_ok "runs against the budget" "$codes: $(cat "$TMP/out")"; fi
expect_jq "the 4th is refused budget_exceeded, naming per_run" \
  '.error.code == "budget_exceeded" and .error.limit == "monthly_budget_micros" and (.error.message | test("30000 spent .* a run costs 10000: the rate card.s per_run"))'
req GET /v1/limits '' -H "Authorization: Bearer $KEY_acme"
expect_jq "serve's count: 3 runs" '.tenant.usage.monthly_budget_micros.used == 30000'
invoice_is acme 30000
stop_serve
start_serve --manifest-dir "$TMP/m" --controlplane "$CP_URL" || exit 1
runs acme 1
if [ "$codes" = 429 ]; then ok "after a restart the runs' spend is seeded: still refused"; else
  not_ok "seeded after a restart" "$codes"; fi
# A key's budget: 2 runs, then the key's spend, read back per key, seeds it after a restart.
runs initech 3
if [ "$codes" = "200 200 429" ]; then ok "a key's budget of 2.5 runs admits 2 ($codes)"; else
  not_ok "a key's budget" "$codes: $(cat "$TMP/out")"; fi
for _ in $(seq 1 100); do
  cp_req GET "/v1/tenants/initech/spend?month=$MONTH&key_id=$KEY_ID_initech" "" "$SVC"
  [ "$(jq -r .spent_micros "$TMP/out")" = 20000 ] && break
  sleep 0.1
done
expect_jq "the control plane's spend of that key (usage events name their key)" \
  ".spent_micros == 20000 and .key_id == \"$KEY_ID_initech\""
cp_req GET "/v1/tenants/acme/spend?month=$MONTH&key_id=$KEY_ID_initech" "" "$SVC"
expect_jq "another tenant's share of that key: nothing" '.spent_micros == 0'
stop_serve
start_serve --manifest-dir "$TMP/m" --controlplane "$CP_URL" || exit 1
req GET /v1/limits '' -H "Authorization: Bearer $KEY_initech"
expect_jq "after a restart the key's budget starts from its spend" \
  '.key.usage.monthly_budget_micros.used == 20000'
runs initech 1
if [ "$codes" = 429 ]; then ok "and the key is still refused"; else
  not_ok "key seeded after a restart" "$codes"; fi
stop_serve

# ---- month rollover: the limits' clock moved by the testing hook -----------------------------
cp_req PUT /v1/tenants/hooli/limits '{"monthly_budget_micros": 15000}'
echo 0 >"$TMP/clock"
FLUXROUTE_TESTING_CLOCK_OFFSET_FILE="$TMP/clock" start_serve --manifest-dir "$TMP/m" \
  --controlplane "$CP_URL" || exit 1
runs hooli 2
if [ "$codes" = "200 429" ]; then ok "hooli's budget of 1.5 runs admits 1 this month"; else
  not_ok "hooli this month" "$codes: $(cat "$TMP/out")"; fi
retry=$(jq .error.retry_after_s "$TMP/out")
now=$(date -u +%s)
next=$(date -u -d "$(date -u +%Y-%m-01) +1 month" +%s)
if [ "$retry" -ge $((next - now - 5)) ] && [ "$retry" -le $((next - now + 5)) ]; then
  ok "its Retry-After is the month's end ($retry s)"
else not_ok "Retry-After at the month's end" "$retry, expected about $((next - now))"; fi
echo $((next - now + 1)) >"$TMP/clock" # the first second of next month
runs hooli 2
if [ "$codes" = "200 429" ]; then ok "next month: admitted again, then its budget is spent again"; else
  not_ok "hooli next month" "$codes: $(cat "$TMP/out")"; fi
after=$(date -u -d "$(date -u -d "@$next" +%Y-%m-01) +1 month" +%Y-%m-01T00:00:00Z)
req GET /v1/limits '' -H "Authorization: Bearer $KEY_hooli"
expect_jq "GET /v1/limits counts next month's run only, resetting the month after" \
  ".tenant.usage.monthly_budget_micros.used == 10000 and (.tenant.usage.monthly_budget_micros.reset | startswith(\"$after\"))"
grep -q 'testing hook: the limits. clock' "$TMP/serve.err" && ok "serve says the testing hook is on" ||
  not_ok "the testing hook's warning" "$(cat "$TMP/serve.err")"
stop_serve

# ---- redis ------------------------------------------------------------------------------------
if command -v redis-server >/dev/null 2>&1; then
  start_redis || { echo "redis-server did not start"; exit 1; }
  start_serve --manifest-dir "$TMP/m" --controlplane "$CP_URL" --state "$REDIS_URL" || exit 1
  runs globex 3
  if [ "$codes" = "200 200 429" ]; then ok "redis: a budget of 2.5 runs admits 2 ($codes)"; else
    not_ok "redis: runs against the budget" "$codes: $(cat "$TMP/out")"; fi
  expect_jq "redis: the 3rd is refused budget_exceeded" '.error.code == "budget_exceeded"'
  req GET /v1/limits '' -H "Authorization: Bearer $KEY_globex"
  expect_jq "redis: the count in Redis: 2 runs" '.tenant.usage.monthly_budget_micros.used == 20000'
  invoice_is globex 20000
  stop_serve
else
  ok "# SKIP redis: no redis-server"
fi
finish
