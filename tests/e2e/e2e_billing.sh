#!/bin/sh
# Billing that cannot be forged: serve bills only the provider calls the host made, with
# the usage the provider reported (never what a step outputs), in process or isolated,
# traced or not, failed attempts included, replays never; idempotency keys are 64 hex
# digits whatever the step id and distinct per call; the control plane keeps keys per
# tenant (schema 2, migrated from a schema-1 database with data, then schema 3); a call
# whose provider reported no usage is billed as usage_unknown with 0 tokens and shows on
# the invoice as its own line of amount 0; an event the control
# plane refuses is named on stderr, counted in fluxroute_usage_rejected_total and kept
# in <spool>.rejected, from which the documented command resubmits it.  127.0.0.1 only.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
P="$FR_BUILDDIR/tests/plugins/.libs"
CP_PID=""
stop_cp() {
  if [ -n "$CP_PID" ]; then kill "$CP_PID" 2>/dev/null; wait "$CP_PID" 2>/dev/null; fi
  CP_PID=""
}
trap 'stop_serve; stop_cp; rm -rf "$TMP"' EXIT
# SQL on the control plane's database: the sqlite3 shell, else Python's sqlite3 module.
if command -v sqlite3 >/dev/null 2>&1; then
  sql() { sqlite3 -separator "$(printf '\t')" "$DB" "$1"; }
  sql_script() { sqlite3 "$DB" <"$1"; }
elif command -v python3 >/dev/null 2>&1; then
  sql() {
    python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for row in db.execute(sys.argv[2]): print("\t".join(str(c) for c in row))' "$DB" "$1"
  }
  sql_script() { python3 -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).executescript(open(sys.argv[2]).read())' "$DB" "$1"; }
else
  echo "1..0 # SKIP needs the sqlite3 shell or python3"; exit 77
fi

ADMIN=billing-admin-key-1
start_cp() { # DB
  CONTROLPLANE_API_KEY=$ADMIN "$FLUXROUTE" controlplane --db "$1" --addr 127.0.0.1:0 \
    >"$TMP/cp.out" 2>"$TMP/cp.err" &
  CP_PID=$!
  CP_URL=""
  for _ in $(seq 1 200); do
    CP_URL=$(sed -n '1s/^listening on //p' "$TMP/cp.out"); [ -n "$CP_URL" ] && return 0
    kill -0 "$CP_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "control plane did not start:"; cat "$TMP/cp.err"; return 1
}
cp_req() { # METHOD PATH [DATA [KEY]]: sets $code, the answer in $TMP/out
  rm -f "$TMP/out"
  code=$(curl -sS --max-time 20 -o "$TMP/out" -w '%{http_code}' -X "$1" \
    -H "Authorization: Bearer ${4:-$ADMIN}" ${3:+-H "Content-Type: application/json" --data-binary "$3"} "$CP_URL$2")
}
event() { # KEY TENANT INPUT_TOKENS
  printf '{"idempotency_key":"%s","tenant":"%s","occurred_at":"2024-03-05T10:00:00Z","kind":"provider_call","model":"m","input_tokens":%s,"output_tokens":0,"runs":0}' "$@"
}
# usage_is NAME TENANT EVENTS INPUT OUTPUT: waits (10 s at most) for the tenant's usage
# totals to be exactly these, then judges them.
usage_is() {
  local want="$3 $4 $5" got=""
  for _ in $(seq 1 100); do
    cp_req GET "/v1/usage?tenant_id=$2"
    got=$(jq -r '"\(.events) \(.input_tokens) \(.output_tokens)"' "$TMP/out")
    [ "$got" = "$want" ] && break
    sleep 0.1
  done
  if [ "$got" = "$want" ]; then ok "$1: events, input, output tokens = $want"; else
    not_ok "$1: events, input, output tokens = $want" "got $got"; fi
}

# ---- the control plane: a schema-1 database with data, migrated at start -------------------
DB="$TMP/cp.db"
# Schema version 1, as fluxroute wrote it before keys were per tenant.
cat >"$TMP/schema1.sql" <<'SQL'
CREATE TABLE tenants(id TEXT PRIMARY KEY, name TEXT NOT NULL, namespace TEXT NOT NULL UNIQUE,
 status TEXT NOT NULL DEFAULT 'active', created_at INTEGER NOT NULL);
CREATE TABLE api_keys(id TEXT PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL,
 kind TEXT NOT NULL CHECK (kind IN ('admin','service','tenant')),
 tenant_id TEXT REFERENCES tenants(id), role TEXT NOT NULL, created_at INTEGER NOT NULL,
 revoked_at INTEGER);
CREATE TABLE usage_events(seq INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,
 tenant_id TEXT NOT NULL, occurred_at INTEGER NOT NULL, day INTEGER NOT NULL,
 billed_period TEXT NOT NULL, kind TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
 input_tokens INTEGER NOT NULL CHECK (input_tokens >= 0),
 output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),
 runs INTEGER NOT NULL CHECK (runs >= 0), received_at INTEGER NOT NULL);
CREATE INDEX usage_by_period ON usage_events(billed_period, tenant_id);
CREATE INDEX usage_by_tenant ON usage_events(tenant_id);
CREATE TABLE rate_cards(version INTEGER PRIMARY KEY, effective_from TEXT NOT NULL,
 effective_day INTEGER NOT NULL, currency TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE rate_card_prices(version INTEGER NOT NULL REFERENCES rate_cards(version),
 model TEXT NOT NULL, input_per_mtok INTEGER NOT NULL CHECK (input_per_mtok >= 0),
 output_per_mtok INTEGER NOT NULL CHECK (output_per_mtok >= 0),
 per_run INTEGER NOT NULL CHECK (per_run >= 0), PRIMARY KEY (version, model));
CREATE TABLE closed_periods(period TEXT PRIMARY KEY, closed_at INTEGER NOT NULL);
CREATE TABLE sla_reports(reporter TEXT NOT NULL, window_start INTEGER NOT NULL,
 window_end INTEGER NOT NULL, requests INTEGER NOT NULL, errors INTEGER NOT NULL,
 p50_ms INTEGER NOT NULL, p99_ms INTEGER NOT NULL, received_at INTEGER NOT NULL,
 PRIMARY KEY (reporter, window_start, window_end));
INSERT INTO tenants VALUES ('acme', 'Acme', 'acme', 'active', 1700000000);
INSERT INTO tenants VALUES ('globex', 'Globex', 'globex', 'active', 1700000000);
INSERT INTO usage_events VALUES (7, 'shared-key', 'acme', 1709632800, 19787, '2024-03',
 'provider_call', 'p', 'm', 10, 2, 0, 1709632801);
INSERT INTO usage_events VALUES (8, 'acme-run-1', 'acme', 1709632800, 19787, '2024-03',
 'run', '', '', 0, 0, 1, 1709632801);
PRAGMA user_version = 1;
SQL
sql_script "$TMP/schema1.sql"
start_cp "$DB" || exit 1
[ "$(sql 'PRAGMA user_version')" = 5 ] && ok "schema-1 database migrated to version 5 at start" ||
  not_ok "schema-1 database migrated to version 5" "user_version $(sql 'PRAGMA user_version')"
usage_is "migrated rows kept" acme 2 10 2
[ "$(sql 'SELECT count(*), sum(usage_unknown) FROM usage_events')" = "$(printf '2\t0')" ] &&
  ok "migrated rows: usage known (usage_unknown 0)" ||
  not_ok "migrated rows: usage_unknown 0" "$(sql 'SELECT idempotency_key, usage_unknown FROM usage_events')"
cp_req GET /v1/usage?tenant_id=acme
expect_jq "migrated rows: no calls of unknown usage" '.unknown_usage_calls == 0'
[ "$(sql "SELECT seq FROM usage_events WHERE idempotency_key = 'shared-key'")" = 7 ] &&
  ok "migrated rows keep their seq" || not_ok "migrated rows keep their seq"
cp_req POST /v1/service-keys
SVC=$(jq -r .key "$TMP/out")
cp_req POST /v1/usage "$(event shared-key globex 5)" "$SVC"
expect_jq "another tenant's identical key is stored" '.accepted == 1 and .duplicates == 0'
cp_req POST /v1/usage "$(event shared-key acme 99)" "$SVC"
expect_jq "the same tenant's key is still a duplicate" '.accepted == 0 and .duplicates == 1'
usage_is "globex counted under a key acme used" globex 1 5 0
usage_is "acme not counted twice" acme 2 10 2
# Both tenants at once, in one batch: both counted.
cp_req POST /v1/usage "{\"events\": [$(event batch-key acme 1), $(event batch-key globex 1)]}" "$SVC"
expect_jq "one key, two tenants, one batch" '.accepted == 2'
usage_is "acme: batch key counted" acme 3 11 2
usage_is "globex: batch key counted" globex 2 6 0
stop_cp
start_cp "$DB" || exit 1
[ "$(sql 'PRAGMA user_version')" = 5 ] && usage_is "restart on schema 5: nothing migrated twice" acme 3 11 2

# ---- serve reporting to it ----------------------------------------------------------------
for t in acme globex; do
  cp_req POST "/v1/tenants/$t/keys" '{"role": "operator"}'
  eval "KEY_$t=\$(jq -r .key \"\$TMP/out\")"
done
cp_req POST /v1/tenants/acme/keys '{"role": "admin"}'
ADMIN_TKEY=$(jq -r .key "$TMP/out")
export CONTROLPLANE_SERVICE_KEY=$SVC
SPOOL="$TMP/usage.spool"
export CONTROLPLANE_SPOOL=$SPOOL
# An event spooled by an earlier serve for a tenant the control plane does not know: it is
# re-sent at start and refused.
printf '%s\n' "$(event lost-key-1 ghost 42)" >"$SPOOL"

mkdir -p "$TMP/m"
# The manifests use the server's provider without declaring it (tenants cannot configure it).
# The mock counts words: "attempt N call K" is 4 input tokens, the reply "ok" 1 output token.
# `silent` answers as servers that report no usage do ("usage": null).
printf 'providers:\n  - {id: local, plugin: mock, config: {reply: ok}}\n  - {id: silent, plugin: mock, config: {reply: ok, usage: false}}\n' >"$TMP/providers.yaml"
LONG=$(printf 's%.0s' $(seq 1 200))
manifest() { # NAME NAMESPACE AGENTS PIPELINE: writes $TMP/m/NAME.yaml
  printf 'router: {namespace: %s}\nagents:\n%s\npipeline: %s\n' \
    "$2" "$3" "$4" >"$TMP/m/$1.yaml"
}
manifest forged acme '  - {id: forge, plugin: chaos, config: {output: {provider: local, model: mock-1, usage: {input_tokens: 1000000000000, output_tokens: 1000000000000}}}}
  - {id: ask, plugin: llm, provider: local, config: {prompt: "one two three"}}' '[{step: forge}, {step: ask}]'
manifest two acme '  - {id: two, plugin: twocalls, provider: local}' "[{step: $LONG, agent: two}]"
manifest zero acme '  - {id: two, plugin: twocalls, provider: local, config: {calls: 1, claim: 0}}' \
  '[{step: zero, agent: two}]'
manifest retry acme '  - {id: flaky, plugin: twocalls, provider: local, config: {fail_attempts: 1},
     retry: {max_attempts: 2, base_delay: 1ms}}' '[{step: retried, agent: flaky}]'
manifest failed acme '  - {id: doomed, plugin: twocalls, provider: local, config: {calls: 1, fail_attempts: 9},
     retry: {max_attempts: 1}}' '[{step: doomed, agent: doomed}]'
manifest isolated acme '  - {id: two, plugin: twocalls, provider: local, isolation: process}
  - {id: ask, plugin: llm, provider: local, isolation: process, config: {prompt: "a b c d e"}}' \
  '[{step: two, agent: two}, {step: ask}]'
manifest globex globex '  - {id: two, plugin: twocalls, provider: local}' '[{step: two, agent: two}]'
manifest silent initech '  - {id: ask, plugin: llm, provider: silent, config: {prompt: "one two three"}}
  - {id: known, plugin: llm, provider: local, config: {prompt: "one two"}}' '[{step: ask}, {step: known}]'
# forged.yaml runs the chaos test plugin: servers that gate it need --enable-chaos.
CHAOS=""
"$FLUXROUTE" serve --help 2>&1 | grep -q -- --enable-chaos && CHAOS=--enable-chaos
start_serve --manifest-dir "$TMP/m" --providers "$TMP/providers.yaml" --plugin-dir "$P" \
  --controlplane "$CP_URL" $CHAOS || exit 1
run() { # MANIFEST KEY [EXTRA JSON MEMBERS]
  req POST /v1/run "{\"manifest\": \"$1\"${3:+, $3}}" -H "Authorization: Bearer $2"
}

# ---- the refused spooled event: loud, counted, kept, resubmittable ---------------------------
for _ in $(seq 1 100); do [ -s "$SPOOL.rejected" ] && break; sleep 0.1; done
if grep -q "USAGE REJECTED.*lost-key-1.*ghost.*not found" "$TMP/serve.err"; then
  ok "a refused event is named on stderr: key, tenant, the control plane's reason"; else
  not_ok "refused event named on stderr" "$(tail -5 "$TMP/serve.err")"; fi
if [ "$(cut -f1 "$SPOOL.rejected" | jq -r .idempotency_key)" = lost-key-1 ] &&
  cut -f2 "$SPOOL.rejected" | grep -q 'tenant "ghost" not found'; then
  ok "the refused event is kept in <spool>.rejected with the reason"; else
  not_ok "refused event kept" "$(cat "$SPOOL.rejected" 2>&1)"; fi
req GET /metrics '' -H "Authorization: Bearer $ADMIN_TKEY"
if grep -qx 'fluxroute_usage_rejected_total 1' "$TMP/out"; then ok "metrics: fluxroute_usage_rejected_total 1"; else
  not_ok "metrics: fluxroute_usage_rejected_total 1" "$(grep usage_rejected "$TMP/out")"; fi
# The operator creates the tenant and resubmits, as cp_client.h documents.
cp_req POST /v1/tenants '{"id": "ghost"}'
cut -f1 "$SPOOL.rejected" | jq -s '{events: .}' | curl -sS --max-time 20 -o "$TMP/out" \
  -H "Authorization: Bearer $SVC" -H 'Content-Type: application/json' --data-binary @- "$CP_URL/v1/usage"
expect_jq "resubmitted from <spool>.rejected" '.accepted == 1'
usage_is "the resubmitted event is billed" ghost 1 42 0

# ---- forged output is not billed -----------------------------------------------------------
# Every acme total below is cumulative; acme starts at 3 events, 11 input, 2 output.
run forged.yaml "$KEY_acme"
expect_code "chaos step claiming 10^12 tokens, then an llm step" 200
usage_is "forged: only the mock's 3 + 1 tokens (a run and one call)" acme 5 14 3
run zero.yaml "$KEY_acme" '"trace": true'
expect_code "an agent calling the provider but claiming 0 tokens (traced)" 200
usage_is "claimed zero: the call's 4 + 1 tokens still billed" acme 7 18 4

# ---- a 200-character step id, two calls in one attempt ---------------------------------------
run two.yaml "$KEY_acme"
expect_code "200-character step id, two calls in one attempt" 200
usage_is "long step id: run + two call events, 8 + 2 tokens" acme 10 26 6
SERVE_KEYS="tenant_id = 'acme' AND idempotency_key NOT IN ('shared-key', 'acme-run-1', 'batch-key')"
if [ "$(sql "SELECT count(*) FROM usage_events WHERE $SERVE_KEYS")" = 7 ] &&
  [ "$(sql "SELECT count(*) FROM usage_events WHERE $SERVE_KEYS AND length(idempotency_key) = 64 AND idempotency_key NOT GLOB '*[^0-9a-f]*'")" = 7 ]; then
  ok "every key serve sent is 64 hex digits"; else
  not_ok "keys are 64 hex digits" "$(sql "SELECT idempotency_key FROM usage_events WHERE $SERVE_KEYS")"; fi
[ ! -s "$SPOOL.rejected" ] || [ "$(wc -l <"$SPOOL.rejected")" = 1 ] &&
  ok "nothing of serve's own refused" || not_ok "nothing refused" "$(cat "$SPOOL.rejected")"

# ---- failed attempts: their completed calls are billed ---------------------------------------
run retry.yaml "$KEY_acme"
expect_code "attempt 1 fails after two calls, attempt 2 succeeds" 200
usage_is "retried: both attempts' 4 calls billed" acme 15 42 10
run failed.yaml "$KEY_acme"
expect_jq "a step failing after its calls" '.status == "failed"'
usage_is "failed step: its completed call billed" acme 17 46 11

# ---- isolation: process -----------------------------------------------------------------------
run isolated.yaml "$KEY_acme"
expect_code "isolation: process" 200
expect_jq "isolated llm step ran" '.steps[1].output.usage.input_tokens == 5'
usage_is "isolated: the helper's calls billed (2 x 4+1, then 5+1)" acme 21 59 14

# ---- concurrent runs, and an async one ---------------------------------------------------------
pids=""
for i in 1 2 3 4 5 6 7 8; do
  curl -s -o "$TMP/par$i" -w '%{http_code}\n' --max-time 20 -H "Authorization: Bearer $KEY_acme" \
    --data-binary '{"manifest": "two.yaml"}' "$SERVE_URL/v1/run" >"$TMP/par$i.code" &
  pids="$pids $!"
done
for p in $pids; do wait "$p"; done
[ "$(cat "$TMP"/par?.code | sort -u)" = 200 ] && ok "8 concurrent runs" || not_ok "8 concurrent runs" "$(cat "$TMP"/par?.code)"
usage_is "8 concurrent runs: 8 runs and 16 calls, none lost or merged" acme 45 123 30
run zero.yaml "$KEY_acme" '"async": true'
expect_code "async run" 202
usage_is "async run billed like a synchronous one" acme 47 127 31

# ---- replays bill nothing; other tenants are billed apart --------------------------------------
run zero.yaml "$KEY_acme" '"trace": true'
rid=$(jq -r .run_id "$TMP/out")
usage_is "traced run before the replay" acme 49 131 32
req POST /v1/replay "{\"run_id\": \"$rid\"}" -H "Authorization: Bearer $KEY_acme"
expect_jq "replay of a run with a provider call" '.identical == true'
run globex.yaml "$KEY_globex"
expect_code "globex runs" 200
usage_is "globex billed its own calls" globex 5 14 2
# The client sends in order: had the replay reported, acme would have more by now.
usage_is "the replay billed nothing" acme 49 131 32
if [ "$(sql "SELECT count(*) FROM usage_events WHERE input_tokens >= 1000000000000 OR output_tokens >= 1000000000000")" = 0 ]; then
  ok "no forged 10^12 claim anywhere"; else not_ok "no forged claim stored"; fi

# ---- a provider that reports no usage: unknown, not 0 -------------------------------------------
cp_req POST /v1/tenants '{"id": "initech"}'
cp_req POST /v1/tenants/initech/keys '{"role": "operator"}'
KEY_initech=$(jq -r .key "$TMP/out")
run silent.yaml "$KEY_initech"
expect_code "a run whose provider reports no usage" 200
expect_jq "its llm output: usage null" '.steps[0].output | has("usage") and .usage == null'
expect_jq "its attempt's note" '.steps[0].attempts[0].notes == ["provider \"silent\" reported no token usage: its tokens are unknown (usage null), not 0"]'
expect_jq "the step beside it reports its usage" '.steps[1].output.usage == {"input_tokens": 2, "output_tokens": 1} and (.steps[1].attempts[0] | has("notes") | not)'
usage_is "initech: a run and two calls, only the known one's 2 + 1 tokens" initech 3 2 1
want_rows=$(printf 'provider_call\tsilent\tmock-1\t0\t0\t1\nprovider_call\tlocal\tmock-1\t2\t1\t0\nrun\t\t\t0\t0\t0')
got_rows=$(sql "SELECT kind, provider, model, input_tokens, output_tokens, usage_unknown FROM usage_events WHERE tenant_id = 'initech' ORDER BY kind, usage_unknown DESC")
[ "$got_rows" = "$want_rows" ] && ok "the silent call's event: usage_unknown true, tokens 0" ||
  not_ok "the silent call's event: usage_unknown true, tokens 0" "$got_rows"
cp_req GET /v1/usage?tenant_id=initech
expect_jq "usage totals count the call of unknown usage" '.unknown_usage_calls == 1'
cp_req POST /v1/billing/rates '{"effective_from": "2024-01-01", "prices": [{"model": "*", "input_per_mtok": 1000000, "output_per_mtok": 2000000, "per_run": 10000}]}'
expect_code "a rate card" 201
THIS_MONTH=$(date -u +%Y-%m)
cp_req GET "/v1/billing/invoice?tenant_id=initech&period=$THIS_MONTH"
expect_code "initech's invoice" 200
expect_jq "invoice: calls with unknown usage are their own last line, amount 0" '.lines[-1] == {"rate_card_version": null, "model": "mock-1", "kind": "unknown_usage_calls", "quantity": 1, "unit": "call", "unit_price_micros": 0, "amount_micros": 0, "amount": "0.00"} and ([.lines[] | select(.kind == "unknown_usage_calls")] | length) == 1'
expect_jq "invoice: the known call and the run are priced" '[.lines[:-1][] | [.kind, .quantity]] == [["runs", 1], ["input_tokens", 2], ["output_tokens", 1]] and .total_micros == 10000'
stop_serve
if grep -q "ERROR: AddressSanitizer\|runtime error:" "$TMP/serve.err" "$TMP/cp.err"; then
  not_ok "no sanitizer reports" "$(grep -m5 "ERROR\|runtime error" "$TMP/serve.err" "$TMP/cp.err")"; else
  ok "no sanitizer reports"; fi
finish
