#!/bin/sh
# End-to-end tests of `fluxroute controlplane`: auth and roles, tenants and pagination,
# keys and lookups, usage idempotency, rate cards and invoices (JSON and CSV, closed
# periods bit for bit), summary, SLA, schema versions, body limit, bad JSON, concurrent
# writers, kill -9 while posting, the cp_client spool, and TLS/mTLS.  127.0.0.1 only.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/tls_lib.sh"
CP_LOAD="$FR_BUILDDIR/tests/cp_load"
CP_PID=""
LOOP_PIDS=""
stop_cp() { # [SIGNAL]
  if [ -n "$CP_PID" ]; then kill "-${1:-TERM}" "$CP_PID" 2>/dev/null; wait "$CP_PID" 2>/dev/null; fi
  CP_PID=""
}
trap 'for p in $LOOP_PIDS; do kill "$p" 2>/dev/null; done; stop_cp; rm -rf "$TMP"' EXIT

# start_cp DB [ADDR]: starts the server in the background, sets CP_URL / CP_PORT.
start_cp() {
  : >"$TMP/cp.out"
  "$FLUXROUTE" controlplane --db "$1" --addr "${2:-127.0.0.1:0}" >"$TMP/cp.out" 2>>"$TMP/cp.err" &
  CP_PID=$!
  CP_URL=""
  for _ in $(seq 1 200); do
    CP_URL=$(sed -n '1s/^listening on //p' "$TMP/cp.out")
    [ -n "$CP_URL" ] && break
    kill -0 "$CP_PID" 2>/dev/null || break
    sleep 0.05
  done
  CP_PORT=${CP_URL##*:}
  [ -n "$CP_URL" ] || { echo "control plane did not start:"; cat "$TMP/cp.err"; return 1; }
}

# req METHOD PATH KEY [DATA|@FILE] [HEADER]: sets $code, body in $TMP/out.
req() {
  local auth="X-No-Auth: 1"
  [ -n "$3" ] && auth="Authorization: Bearer $3"
  if [ -n "${4:-}" ]; then
    code=$(curl -sS --max-time 20 -o "$TMP/out" -D "$TMP/headers" -w '%{http_code}' -X "$1" -H "$auth" \
      -H "Content-Type: application/json" -H "${5:-X-Nothing: 1}" --data-binary "$4" "$CP_URL$2")
  else
    code=$(curl -sS --max-time 20 -o "$TMP/out" -D "$TMP/headers" -w '%{http_code}' -X "$1" -H "$auth" \
      -H "${5:-X-Nothing: 1}" "$CP_URL$2")
  fi
}
expect_code() { # NAME WANT
  if [ "$code" = "$2" ]; then ok "$1: HTTP $2"; else not_ok "$1: HTTP $2" "got $code: $(head -c 300 "$TMP/out")"; fi
}
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
event() { # KEY TENANT TIME KIND MODEL IN OUT RUNS
  printf '{"idempotency_key":"%s","tenant":"%s","occurred_at":"%s","kind":"%s","model":"%s","input_tokens":%s,"output_tokens":%s,"runs":%s}' "$@"
}
usage_of() { # TENANT FIELD -> prints the value
  req GET "/v1/usage?tenant_id=$1" "$ADMIN"
  jq -r ".$2" "$TMP/out"
}

DB="$TMP/cp.db"

# ---- command line ---------------------------------------------------------------------
fr controlplane --help
expect_rc "controlplane --help" 0
expect_out "controlplane --help" "create-admin-key"
fr controlplane bogus --db "$DB"
expect_rc "unknown subcommand" 2
fr controlplane create-admin-key --db "$DB"
expect_rc "create-admin-key" 0
ADMIN=$(head -1 "$TMP/out")
case $ADMIN in fra_????????????????????????????????????????????????) ok "admin key format" ;; *) not_ok "admin key format" "got $ADMIN" ;; esac
if grep -qF "$ADMIN" "$DB" "$DB-wal" 2>/dev/null; then not_ok "admin key stored hashed only"; else ok "admin key stored hashed only"; fi

export CONTROLPLANE_API_KEY=env-admin-secret-123
start_cp "$DB" || exit 1
unset CONTROLPLANE_API_KEY
case $CP_URL in http://127.0.0.1:[0-9]*) ok "prints listening on http://127.0.0.1:PORT" ;; *) not_ok "listening line" "got '$CP_URL'" ;; esac

# ---- health and auth --------------------------------------------------------------------
req GET /healthz ""
expect_code "healthz without key" 200
req GET /v1/readyz ""
expect_code "readyz" 200
req GET /v1/tenants ""
expect_code "no key" 401
expect_jq "no key" '.error.code == "unauthorized"'
req GET /v1/tenants "fra_not-a-real-key"
expect_code "invalid key" 401
req GET /tenants "env-admin-secret-123"
expect_code "CONTROLPLANE_API_KEY is an admin key" 200
req GET /v1/nowhere "$ADMIN"
expect_code "unknown route" 404
expect_jq "unknown route" '.error.code == "not_found"'

# ---- tenants ----------------------------------------------------------------------------
req POST /v1/tenants "$ADMIN" '{"id":"acme","name":"Acme Corp"}'
expect_code "create tenant" 201
expect_jq "create tenant" '.id == "acme" and .namespace == "acme" and .status == "active"'
req POST /tenants "$ADMIN" '{"id":"globex","namespace":"Globex-NS"}'
expect_code "create tenant (original path)" 201
expect_jq "namespace normalised" '.namespace == "globex-ns"'
req POST /v1/tenants "$ADMIN" '{"id":"acme"}'
expect_code "duplicate tenant" 409
req POST /v1/tenants "$ADMIN" '{"id":"other","namespace":"acme"}'
expect_code "namespace taken" 409
expect_jq "namespace taken" '.error.message | contains("already belongs to tenant \"acme\"")'
req POST /v1/tenants "$ADMIN" '{"id":"typo","nmae":"Typo Inc"}'
expect_code "unknown field in a tenant body" 400
expect_jq "unknown field in a tenant body: named" '.error.message | contains("nmae")'
req POST /v1/tenants "$ADMIN" '{"id":"Bad Id!"}'
expect_code "invalid tenant id" 400
req POST /v1/tenants "$ADMIN" '{"id":"x1","namespace":"9lives"}'
expect_code "namespace rule" 400
expect_jq "namespace rule" '.error.message | contains("^[a-z][a-z0-9_-]{1,31}$")'
req POST /v1/tenants "$ADMIN" '{"id":"x2","colour":"red"}'
expect_code "unknown field" 400
for i in 1 2 3 4 5; do req POST /v1/tenants "$ADMIN" "{\"id\":\"t0$i\"}"; done
req GET "/v1/tenants?page=2&page_size=2" "$ADMIN"
expect_jq "pagination" '.total == 7 and .page == 2 and .page_size == 2 and .tenants == ["t01", "t02"]'
req GET "/v1/tenants?page=9&page_size=2" "$ADMIN"
expect_jq "page past the end" '.tenants == [] and .total == 7'
req GET "/v1/tenants?page_size=500&page=x" "$ADMIN"
expect_jq "page_size clamped, bad page is 1" '.page_size == 200 and .page == 1 and (.tenants | length) == 7'
req GET "/v1/tenants?q=GLO" "$ADMIN"
expect_jq "q filter" '.tenants == ["globex"] and .total == 1'
req GET /v1/tenants/acme "$ADMIN"
expect_jq "get tenant" '.name == "Acme Corp"'
req GET /v1/tenants/nope "$ADMIN"
expect_code "unknown tenant" 404

# ---- keys, roles and lookups ----------------------------------------------------------
req POST /v1/tenants/acme/keys "$ADMIN" '{"role":"viewer"}'
expect_code "tenant key" 201
ACME_KEY=$(jq -r .key "$TMP/out")
ACME_KID=$(jq -r .key_id "$TMP/out")
req POST /v1/tenants/t01/keys "$ADMIN" '{"role":"metrics"}'
expect_code "tenant key with the metrics role" 201
expect_jq "tenant key with the metrics role" '.role == "metrics"'
T01_METRICS_KEY=$(jq -r .key "$TMP/out")
req GET /v1/tenants/t01 "$T01_METRICS_KEY"
expect_code "a metrics key reads nothing here" 403
req POST /v1/tenants/t01/keys "$ADMIN" '{"role":"root"}'
expect_code "unknown key role" 400
expect_jq "unknown key role" '.error.message | test("viewer, operator, admin or metrics")'
req POST /v1/tenants/globex/keys "$ADMIN"
GLOBEX_KEY=$(jq -r .key "$TMP/out")
req POST /v1/service-keys "$ADMIN"
expect_code "service key" 201
SVC=$(jq -r .key "$TMP/out")
req GET /v1/tenants/acme/keys "$ADMIN"
expect_jq "key list shows prefixes only" ".keys | length == 1 and .[0].prefix == \"$(printf %.12s "$ACME_KEY")\" and (.[0] | has(\"key\") | not) and (.[0] | has(\"sha256\") | not)"
req GET /v1/tenants/acme "$ACME_KEY"
expect_code "tenant key reads its tenant" 200
req GET /v1/tenants/globex "$ACME_KEY"
expect_code "tenant key reading another tenant" 404
req GET /v1/tenants "$ACME_KEY"
expect_jq "tenant key lists only itself" '.tenants == ["acme"] and .total == 1'
req GET "/v1/billing/invoice?tenant_id=globex&period=2024-01" "$ACME_KEY"
expect_code "tenant key: another tenant's invoice" 404
req GET "/v1/usage?tenant_id=globex" "$ACME_KEY"
expect_code "tenant key: another tenant's usage" 404
req POST /v1/tenants "$ACME_KEY" '{"id":"evil"}' "X-Role: admin"
expect_code "X-Role: admin with a tenant key" 403
req POST /v1/usage "$ACME_KEY" "$(event e0 acme 2024-01-10T00:00:00Z run "" 0 0 1)" "X-Role: admin"
expect_code "tenant key cannot post usage" 403
req GET "/v1/keys/lookup?sha256=$(sha "$ACME_KEY")" "$SVC"
expect_code "lookup" 200
expect_jq "lookup" ".tenant == \"acme\" and .namespace == \"acme\" and .role == \"viewer\" and .key_id == \"$ACME_KID\""
req GET "/v1/keys/lookup?sha256=$(sha "$ACME_KEY")" "$ACME_KEY"
expect_code "lookup with a tenant key" 403
req GET "/v1/keys/lookup?sha256=$(sha nope)" "$SVC"
expect_code "lookup unknown" 404
req GET "/v1/keys/lookup?sha256=xyz" "$SVC"
expect_code "lookup malformed" 400
req POST /v1/tenants "$SVC" '{"id":"svc"}'
expect_code "service key cannot create tenants" 403
req POST /v1/tenants/globex/suspend "$ADMIN"
expect_jq "suspend" '.status == "suspended"'
req GET "/v1/keys/lookup?sha256=$(sha "$GLOBEX_KEY")" "$SVC"
expect_code "lookup: suspended tenant" 404
req GET /v1/tenants/globex "$GLOBEX_KEY"
expect_code "suspended tenant's key" 403
req POST /v1/tenants/globex/unsuspend "$ADMIN"
req GET "/v1/keys/lookup?sha256=$(sha "$GLOBEX_KEY")" "$SVC"
expect_code "lookup after unsuspend" 200
req POST /v1/tenants/acme/keys "$ADMIN"
REVOKE_KEY=$(jq -r .key "$TMP/out")
REVOKE_KID=$(jq -r .key_id "$TMP/out")
req DELETE "/v1/tenants/acme/keys/$REVOKE_KID" "$ADMIN"
expect_code "revoke" 200
req GET /v1/tenants/acme "$REVOKE_KEY"
expect_code "revoked key" 401
req GET "/v1/keys/lookup?sha256=$(sha "$REVOKE_KEY")" "$SVC"
expect_code "lookup: revoked key" 404

# ---- usage ------------------------------------------------------------------------------
E1=$(event u1 acme 2024-01-10T10:00:00Z provider_call gpt 400000 100000 0)
req POST /v1/usage "$SVC" "$E1"
expect_code "one event" 202
expect_jq "one event" '.accepted == 1 and .duplicates == 0'
req POST /usage "$SVC" "$E1"
expect_jq "repeated idempotency key" '.accepted == 0 and .duplicates == 1'
req POST /v1/usage "$SVC" "[$(event u2 acme 2024-01-20T10:00:00Z provider_call gpt 1000000 0 0),$(event u3 acme 2024-01-20T11:00:00+02:00 run "" 0 0 7),$E1]"
expect_jq "array batch" '.accepted == 2 and .duplicates == 1'
req POST /v1/usage "$ADMIN" "{\"events\":[$(event u4 acme 2024-01-14T23:59:59Z run "" 0 0 3)]}"
expect_jq "events object" '.accepted == 1'
req POST /v1/usage "$SVC" "[$(event u5 acme 2024-01-11T00:00:00Z run "" 0 0 1),$(event u6 nobody 2024-01-11T00:00:00Z run "" 0 0 1)]"
expect_code "unknown tenant in a batch" 400
expect_jq "unknown tenant in a batch" '.error.code == "unknown_tenant" and .error.index == 1'
req POST /v1/usage "$SVC" "$(event u7 acme 2024-01-11T00:00:00Z run "" -5 0 1)"
expect_code "negative tokens" 400
req POST /v1/usage "$SVC" '{"tenant":"acme","occurred_at":"2024-01-11T00:00:00Z","kind":"run","runs":1}'
expect_code "missing idempotency key" 400
expect_jq "missing idempotency key" '.error.message | contains("idempotency_key is required")'
req POST /v1/usage "$SVC" '{"idempotency_key":"u8","tenant":"acme","occurred_at":"yesterday","kind":"run"}'
expect_code "bad occurred_at" 400
req POST /v1/usage "$SVC" '{"idempotency_key":"u9","tenant":"acme","occurred_at":"2024-01-11T00:00:00Z","kind":"run","runz":1}'
expect_code "misspelt field" 400
# Calls whose provider reported no usage: usage_unknown, tokens 0, counted apart.
unknown() { # KEY TENANT TIME KIND IN VALUE
  printf '{"idempotency_key":"%s","tenant":"%s","occurred_at":"%s","kind":"%s","model":"gpt","input_tokens":%s,"output_tokens":0,"usage_unknown":%s}' "$@"
}
for bad in '"yes"' 1 '[]'; do
  req POST /v1/usage "$SVC" "[$(event u10 acme 2024-02-03T00:00:00Z run "" 0 0 1),$(unknown u11 acme 2024-02-03T00:00:00Z provider_call 0 "$bad")]"
  expect_code "usage_unknown: $bad" 400
  expect_jq "usage_unknown: $bad is named" '.error.code == "invalid" and (.error.message | startswith("events[1].usage_unknown must be true or false"))'
done
req POST /v1/usage "$SVC" "$(unknown u11 acme 2024-02-03T00:00:00Z provider_call 5 true)"
expect_jq "usage_unknown with tokens" '.error.message == "usage_unknown is true, so input_tokens and output_tokens must be 0 (got 5 and 0)"'
req POST /v1/usage "$SVC" "$(unknown u11 acme 2024-02-03T00:00:00Z run 0 true)"
expect_jq "usage_unknown on a run" '.error.message == "usage_unknown is true, but only a provider_call may be"'
req POST /v1/usage "$SVC" "[$(unknown u11 acme 2024-02-03T00:00:00Z provider_call 0 true),$(unknown u12 acme 2024-02-04T00:00:00Z provider_call 0 true),$(unknown u13 acme 2024-02-04T00:00:00Z provider_call 0 false)]"
expect_jq "usage_unknown true and false" '.accepted == 3'
[ "$(usage_of acme unknown_usage_calls)" = 2 ] && ok "calls with unknown usage counted" ||
  not_ok "calls with unknown usage counted" "$(cat "$TMP/out")"
[ "$(usage_of acme runs)" = 10 ] && [ "$(usage_of acme input_tokens)" = 1400000 ] &&
  ok "usage totals: nothing lost, nothing doubled, failed batch not stored" ||
  not_ok "usage totals" "$(cat "$TMP/out")"

# ---- rate cards and invoices --------------------------------------------------------------
req POST /v1/billing/rates "$ADMIN" '{"effective_from":"2024-01-01","prices":[{"model":"gpt","input_per_mtok":-1,"output_per_mtok":0,"per_run":0}]}'
expect_code "negative price" 400
req POST /v1/billing/rates "$ADMIN" '{"effective_from":"2024-01-01","prices":[{"model":"gpt","input_per_mtok":1000000,"output_per_mtok":2000000}]}'
expect_code "missing price (zero only explicitly)" 400
expect_jq "missing price" '.error.message | contains("per_run is required")'
req POST /v1/billing/rates "$ACME_KEY" '{"effective_from":"2024-01-01","prices":[]}'
expect_code "tenant key cannot set rates" 403
req GET "/v1/billing/invoice?tenant_id=acme&period=2024-01" "$ADMIN"
expect_code "invoice without a rate card" 409
expect_jq "invoice without a rate card" '.error.code == "unpriced_usage"'
req POST /v1/billing/rates "$ADMIN" '{"effective_from":"2024-01-01","currency":"USD","prices":[{"model":"gpt","input_per_mtok":1000000,"output_per_mtok":2000000,"per_run":0},{"model":"*","input_per_mtok":0,"output_per_mtok":0,"per_run":1000}]}'
expect_code "rate card v1" 201
req POST /billing/rates "$ADMIN" '{"effective_from":"2024-01-15","prices":[{"model":"gpt","input_per_mtok":3000000,"output_per_mtok":2000000,"per_run":0},{"model":"*","input_per_mtok":0,"output_per_mtok":0,"per_run":2000}]}'
expect_code "rate card v2 mid-month" 201
req GET /v1/billing/rates "$ACME_KEY"
expect_jq "rates list" '(.cards | length) == 2 and .current.version == 2'
req GET "/v1/billing/invoice?tenant_id=acme&period=2024-01" "$ADMIN"
expect_code "invoice" 200
cp "$TMP/out" "$TMP/inv1.json"
# v1: gpt in 400k @1/M = 0.40, out 100k @2/M = 0.20, runs 3 @0.001 = 0.003 -> 0.00;
# v2: gpt in 1M @3/M = 3.00, runs 7 @0.002 = 0.014 -> 0.01.
expect_jq "invoice lines priced by the card in force" '[.lines[] | [.rate_card_version, .model, .kind, .quantity, .amount_micros]] == [[1,"","runs",3,0],[1,"gpt","input_tokens",400000,400000],[1,"gpt","output_tokens",100000,200000],[2,"","runs",7,10000],[2,"gpt","input_tokens",1000000,3000000]]'
expect_jq "invoice total = sum of rounded lines" '.total_micros == 3610000 and .total == "3.61" and .currency == "USD" and .status == "open"'
req GET "/v1/billing/invoice?tenant_id=acme&period=2024-01&format=CSV" "$ACME_KEY"
expect_code "invoice csv (tenant key, own tenant)" 200
cp "$TMP/out" "$TMP/inv1.csv"
if [ "$(tail -n +2 "$TMP/inv1.csv" | grep -v ',total,' | cut -d, -f5,6,7,8,11 | tr -d '\r' | sort)" = \
     "$(jq -r '.lines[] | "\(.rate_card_version),\(.model),\(.kind),\(.quantity),\(.amount_micros)"' "$TMP/inv1.json" | sort)" ] &&
   grep -q ',total,.*,3610000,3.61' "$TMP/inv1.csv"; then ok "CSV and JSON invoices agree"; else not_ok "CSV and JSON agree" "$(cat "$TMP/inv1.csv")"; fi
# Calls with unknown usage: their own line after the priced ones, amount 0, no card.
req GET "/v1/billing/invoice?tenant_id=acme&period=2024-02" "$ADMIN"
expect_code "invoice with calls of unknown usage" 200
expect_jq "calls with unknown usage: a line of amount 0" '.lines == [{"rate_card_version": null, "model": "gpt", "kind": "unknown_usage_calls", "quantity": 2, "unit": "call", "unit_price_micros": 0, "amount_micros": 0, "amount": "0.00"}] and .total_micros == 0'
req GET "/v1/billing/invoice?tenant_id=acme&period=2024-02&format=csv" "$ADMIN"
if grep -q '^acme,2024-02,open,USD,,gpt,unknown_usage_calls,2,call,0,0,0.00' "$TMP/out"; then
  ok "CSV: the line of calls with unknown usage"; else not_ok "CSV unknown usage line" "$(cat "$TMP/out")"; fi
req GET "/v1/billing/summary?month=2024-02" "$ADMIN"
expect_jq "summary counts calls with unknown usage" '.totals == [{"tenant_id": "acme", "invocations": 0, "input_tokens": 0, "output_tokens": 0, "unknown_usage_calls": 2, "currency": "USD", "amount_micros": 0}]'
req GET "/v1/billing/invoice?tenant_id=acme&period=2024-1" "$ADMIN"
expect_code "bad period" 400
req GET "/v1/billing/invoice?period=2024-01" "$ADMIN"
expect_code "invoice needs tenant_id" 400
req GET "/v1/billing/invoice?tenant_id=nope&period=2024-01" "$ADMIN"
expect_code "invoice of an unknown tenant" 404

# Closing a period: its invoice never changes again, late usage moves to the open month.
req POST /v1/usage "$SVC" "$(event g1 globex 2024-01-05T00:00:00Z provider_call gpt 2000000 0 0)"
THIS_MONTH=$(date -u +%Y-%m)
req POST "/v1/billing/periods/$THIS_MONTH/close" "$ADMIN"
expect_code "cannot close the running month" 409
req POST /v1/billing/periods/2024-01/close "$ADMIN"
expect_code "close 2024-01" 200
req GET "/v1/billing/invoice?tenant_id=acme&period=2024-01" "$ADMIN"
jq -e '.status == "closed"' "$TMP/out" >/dev/null && ok "closed invoice says so" || not_ok "closed invoice status"
cp "$TMP/out" "$TMP/inv2.json"
req POST /v1/usage "$SVC" "$(event late1 acme 2024-01-25T00:00:00Z run "" 0 0 5)"
expect_jq "late usage for a closed period is accepted" '.accepted == 1'
req POST /v1/billing/rates "$ADMIN" '{"effective_from":"2024-01-20","prices":[{"model":"*","input_per_mtok":0,"output_per_mtok":0,"per_run":0}]}'
expect_code "rate card reaching into a closed period" 409
req GET "/v1/billing/invoice?tenant_id=acme&period=2024-01" "$ADMIN"
if cmp -s "$TMP/out" "$TMP/inv2.json"; then ok "closed invoice reproducible bit for bit"; else not_ok "closed invoice bit for bit" "$(cat "$TMP/out")"; fi
req GET "/v1/billing/invoice?tenant_id=acme&period=2024-01&format=csv" "$ADMIN"
sed 's/,open,/,closed,/' "$TMP/inv1.csv" >"$TMP/inv1c.csv"
if cmp -s "$TMP/out" "$TMP/inv1c.csv"; then ok "closed CSV invoice unchanged"; else not_ok "closed CSV unchanged"; fi
req GET "/v1/billing/invoice?tenant_id=acme&period=$THIS_MONTH" "$ADMIN"
expect_jq "late usage billed in the open month at its own card's price" '[.lines[] | [.rate_card_version, .kind, .quantity, .amount_micros]] == [[2,"runs",5,10000]]'

# ---- summary ------------------------------------------------------------------------------
req GET "/v1/billing/summary?month=2024-01" "$ADMIN"
expect_code "summary" 200
expect_jq "summary" '.month == "2024-01" and ([.totals[].tenant_id] == ["acme", "globex"]) and .totals[0].amount_micros == 3610000 and .totals[1].amount_micros == 2000000 and .grand_total_micros == 5610000 and .grand_total_invocations == 10'
req GET "/billing/summary?month=2024-01" "$ACME_KEY"
expect_jq "summary with a tenant key shows only itself" '[.totals[].tenant_id] == ["acme"]'
req GET "/v1/billing/summary?month=24-01" "$ADMIN"
expect_code "summary bad month" 400
expect_jq "summary bad month" '.error.message == "invalid month format, expected YYYY-MM"'

# ---- SLA ------------------------------------------------------------------------------------
NOW=$(date -u +%s)
W0=$(date -u -d "@$((NOW - 120))" +%Y-%m-%dT%H:%M:%SZ)
W1=$(date -u -d "@$((NOW - 60))" +%Y-%m-%dT%H:%M:%SZ)
W2=$(date -u -d "@$NOW" +%Y-%m-%dT%H:%M:%SZ)
req GET /sla "$SVC"
expect_jq "SLA with no reports" '.requests == 0 and .availability == null'
req POST /v1/usage "$SVC" "{\"events\":[],\"sla\":{\"requests\":1000,\"errors\":2,\"latency_ms_p50\":10,\"latency_ms_p99\":90,\"window_start\":\"$W0\",\"window_end\":\"$W1\"}}"
expect_code "usage POST with an sla object" 202
req POST /v1/usage "$SVC" "{\"events\":[],\"sla\":{\"requests\":1000,\"errors\":2,\"latency_ms_p50\":10,\"latency_ms_p99\":90,\"window_start\":\"$W0\",\"window_end\":\"$W1\"}}"
req POST /v1/usage "$SVC" "{\"sla\":[{\"requests\":3000,\"errors\":0,\"latency_ms_p50\":20,\"latency_ms_p99\":150,\"window_start\":\"$W1\",\"window_end\":\"$W2\"}]}"
req GET /v1/sla "$SVC"
expect_code "SLA" 200
expect_jq "SLA measured from reports (replayed window counted once)" '.reports == 2 and .requests == 4000 and .errors == 2 and .availability_ppm == 999500 and .slo_met == true and .latency_ms_p50 == 17 and .latency_ms_p99 == 150'
req GET /sla "$ACME_KEY"
expect_code "SLA with a tenant key" 403
req GET /sla ""
expect_code "SLA without a key" 401

# ---- limits and malformed requests ----------------------------------------------------
head -c 1100000 /dev/zero | tr '\0' ' ' >"$TMP/big.json"
req POST /v1/usage "$SVC" "@$TMP/big.json"
expect_code "body over 1 MiB" 413
expect_jq "body over 1 MiB: serve's code" '.error.code == "payload_too_large"'
printf '{"events": [\n  {"idempotency_key": "x",, }]}' >"$TMP/bad.json"
req POST /v1/usage "$SVC" "@$TMP/bad.json"
expect_code "malformed JSON" 400
expect_jq "malformed JSON has a position" '.error.code == "bad_json" and (.error.message | test("line 2, column [0-9]+"))'
req PUT /v1/usage "$SVC" '{}'
expect_code "wrong method" 405
check "wrong method: Allow" grep -qi '^Allow: GET, POST' "$TMP/headers"
req DELETE /v1/tenants/acme "$ADMIN"
expect_code "tenants are suspended, not deleted" 405
check "tenant: Allow" grep -qi '^Allow: GET' "$TMP/headers"

# ---- concurrency: 8 writers at once -------------------------------------------------------
req POST /v1/tenants "$ADMIN" '{"id":"conc"}'
for w in 1 2 3 4 5 6 7 8; do
  (
    for b in $(seq 1 25); do
      body="["
      for k in $(seq 1 10); do
        [ "$k" -gt 1 ] && body="$body,"
        body="$body$(event "c$w-$b-$k" conc 2024-02-01T00:00:00Z run "" 1 0 1)"
      done
      curl -sS --max-time 20 -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $SVC" \
        --data-binary "$body]" "$CP_URL/v1/usage"
    done >"$TMP/loop$w.codes"
  ) &
  LOOP_PIDS="$LOOP_PIDS $!"
done
for p in $LOOP_PIDS; do wait "$p"; done
LOOP_PIDS=""
codes=$(cat "$TMP"/loop*.codes | sort | uniq -c | tr -s ' ')
[ "$codes" = " 200 202" ] && ok "8 concurrent writers: every request acknowledged" || not_ok "concurrent writers" "$codes"
[ "$(usage_of conc runs)" = 2000 ] && ok "8 concurrent writers: 2000 events stored" || not_ok "concurrent totals" "$(cat "$TMP/out")"

# ---- restart and schema versions -------------------------------------------------------------
stop_cp
start_cp "$DB" || exit 1
[ "$(usage_of acme runs)" = 15 ] && ok "state survives a restart" || not_ok "state after restart" "$(cat "$TMP/out")"
req GET "/v1/billing/invoice?tenant_id=acme&period=2024-01" "$ADMIN"
cmp -s "$TMP/out" "$TMP/inv2.json" && ok "closed invoice identical after restart" || not_ok "closed invoice after restart"
stop_cp
cp "$DB" "$TMP/newer.db"
# PRAGMA user_version lives at byte 60 of the header (big-endian): make it 99.
printf '\000\000\000\143' | dd of="$TMP/newer.db" bs=1 seek=60 conv=notrunc 2>/dev/null
fr controlplane --db "$TMP/newer.db" --addr 127.0.0.1:0
expect_rc "database from a newer version" 2
expect_err "database from a newer version" "schema version 99, written by a newer fluxroute"

# ---- kill -9 while a client posts thousands of events ------------------------------------------
start_cp "$DB" || exit 1
req POST /v1/tenants "$ADMIN" '{"id":"crash"}'
N=20000
"$CP_LOAD" post "$CP_URL" "$SVC" crash 0 "$N" 50 k >"$TMP/acked.log" 2>&1 &
LOAD_PID=$!
for _ in $(seq 1 200); do
  [ "$(tail -1 "$TMP/acked.log" | cut -d' ' -f2)" -ge 2000 ] 2>/dev/null && break
  sleep 0.02
done
stop_cp KILL
wait "$LOAD_PID"
load_rc=$?
ACKED=$(grep '^acked' "$TMP/acked.log" | tail -1 | cut -d' ' -f2)
ACKED=${ACKED:-0}
[ "$load_rc" != 0 ] && [ "$ACKED" -lt "$N" ] && ok "kill -9 interrupted the load after $ACKED acknowledged events" ||
  not_ok "kill -9 interrupted the load" "rc $load_rc, acked $ACKED"
start_cp "$DB" "127.0.0.1:$CP_PORT" || exit 1
stored=$(usage_of crash runs)
[ "$stored" -ge "$ACKED" ] && ok "every acknowledged event survived kill -9 ($stored >= $ACKED)" ||
  not_ok "acknowledged events survived kill -9" "stored $stored, acked $ACKED"
"$CP_LOAD" post "$CP_URL" "$SVC" crash "$ACKED" $((N - ACKED)) 100 k >/dev/null
[ "$(usage_of crash runs)" = "$N" ] && [ "$(usage_of crash input_tokens)" = $((N * 10)) ] &&
  ok "after re-sending the unacknowledged events: exactly $N, once" || not_ok "exactly once after crash" "$(cat "$TMP/out")"
"$CP_LOAD" post "$CP_URL" "$SVC" crash 0 "$N" 500 k >/dev/null
[ "$(usage_of crash runs)" = "$N" ] && ok "re-sending everything changes nothing" || not_ok "full re-send" "$(cat "$TMP/out")"

# ---- the cp_client spool: post while the control plane is down ------------------------------------
req POST /v1/tenants "$ADMIN" '{"id":"spool"}'
req GET /sla "$SVC"
sla_before=$(jq .requests "$TMP/out")
PORT=$CP_PORT
stop_cp
SPOOL="$TMP/usage.spool"
"$CP_LOAD" client "http://127.0.0.1:$PORT" "$SVC" "$SPOOL" spool 50 sp >"$TMP/out" 2>"$TMP/err"
[ "$(wc -l <"$SPOOL")" = 51 ] && ok "control plane down: 50 events + 1 SLA window spooled" || not_ok "spooled" "$(wc -l <"$SPOOL") lines"
grep -q "unreachable; spooling" "$TMP/err" && ok "client says it spools" || not_ok "client says it spools"
start_cp "$DB" "127.0.0.1:$PORT" || exit 1
"$CP_LOAD" client "$CP_URL" "$SVC" "$SPOOL" spool 0 sp >"$TMP/out" 2>"$TMP/err"
[ ! -s "$SPOOL" ] && ok "spool replayed and emptied" || not_ok "spool emptied" "$(wc -l <"$SPOOL") lines left"
[ "$(usage_of spool runs)" = 25 ] && [ "$(usage_of spool input_tokens)" = 250 ] && [ "$(usage_of spool events)" = 50 ] &&
  ok "spooled events arrived exactly once" || not_ok "spooled events once" "$(cat "$TMP/out")"
req GET /sla "$SVC"
[ "$(jq .requests "$TMP/out")" = $((sla_before + 1000)) ] && ok "spooled SLA window arrived once" || not_ok "SLA via spool" "$(cat "$TMP/out")"
"$CP_LOAD" client "$CP_URL" "$SVC" "$SPOOL" spool 50 sp >/dev/null 2>&1
[ "$(usage_of spool events)" = 50 ] && ok "the same events sent again are not doubled" || not_ok "not doubled" "$(cat "$TMP/out")"
"$CP_LOAD" lookup "$CP_URL" "$SVC" "$SPOOL" "$(sha "$ACME_KEY")" >"$TMP/out"
[ "$(jq -s '[.[] | .tenant == "acme" and .role == "viewer"] | all' "$TMP/out")" = true ] &&
  ok "cp_client lookup (and its cache)" || not_ok "cp_client lookup" "$(cat "$TMP/out")"
"$CP_LOAD" lookup "$CP_URL" "$SVC" "$SPOOL" "$(sha "$REVOKE_KEY")" >"$TMP/out"
grep -q NOT_FOUND "$TMP/out" && ok "cp_client lookup of a revoked key" || not_ok "cp_client revoked lookup" "$(cat "$TMP/out")"
stop_cp

# ---- TLS and mTLS -----------------------------------------------------------------------------------
if command -v certtool >/dev/null 2>&1; then
  make_test_ca "serve" || { cat "$TMP/certtool.log"; not_ok "certtool made the test CA"; }
  export CONTROLPLANE_TLS_ENABLED=true CONTROLPLANE_TLS_CERT_FILE="$TMP/srv.pem" CONTROLPLANE_TLS_KEY_FILE="$TMP/srv.key"
  start_cp "$DB" || exit 1
  case $CP_URL in https://127.0.0.1:*) ok "TLS: listening on https" ;; *) not_ok "TLS listening line" "$CP_URL" ;; esac
  code=$(curl -sS --max-time 10 --cacert "$TMP/ca.pem" -o "$TMP/out" -w '%{http_code}' -H "Authorization: Bearer $ADMIN" "$CP_URL/v1/tenants/acme")
  expect_code "TLS request" 200
  stop_cp
  export CONTROLPLANE_TLS_REQUIRE_CLIENT_CERT=true CONTROLPLANE_TLS_CA_FILE="$TMP/ca.pem"
  start_cp "$DB" || exit 1
  code=$(curl -s --max-time 10 --cacert "$TMP/ca.pem" -o "$TMP/out" -w '%{http_code}' "$CP_URL/healthz")
  [ "$code" != 200 ] && ok "mTLS: no client certificate refused ($code)" || not_ok "mTLS without a client cert"
  code=$(curl -sS --max-time 10 --cacert "$TMP/ca.pem" --cert "$TMP/cli.pem" --key "$TMP/cli.key" -o "$TMP/out" -w '%{http_code}' "$CP_URL/healthz")
  expect_code "mTLS with a client certificate" 200
  stop_cp
  unset CONTROLPLANE_TLS_ENABLED CONTROLPLANE_TLS_CERT_FILE CONTROLPLANE_TLS_KEY_FILE CONTROLPLANE_TLS_REQUIRE_CLIENT_CERT CONTROLPLANE_TLS_CA_FILE
  CONTROLPLANE_TLS_ENABLED=true fr controlplane --db "$DB" --addr 127.0.0.1:0
  expect_rc "TLS without cert files" 2
  expect_err "TLS without cert files" "CONTROLPLANE_TLS_CERT_FILE"
else
  not_ok "certtool (gnutls-bin) is installed"
fi

if grep -q "ERROR: AddressSanitizer\|runtime error:" "$TMP/cp.err"; then not_ok "no sanitizer reports from the server" "$(head -30 "$TMP/cp.err")"; else ok "no sanitizer reports from the server"; fi
finish
