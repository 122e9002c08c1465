#!/bin/sh
# serve and the control plane together: keys looked up in the control plane (revocation
# within 5 s), usage reported by serve and billed at the configured prices, the SLA
# measured from serve's counters; serve's /metrics (promtool), audit log and traceparent.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
S="$FR_SRCDIR/tests/data/serve"
CP_PID=""
trap 'stop_serve; [ -n "$CP_PID" ] && kill "$CP_PID" 2>/dev/null && wait "$CP_PID" 2>/dev/null; rm -rf "$TMP"' EXIT

export CONTROLPLANE_API_KEY=platform-admin-key-1
"$FLUXROUTE" controlplane --db "$TMP/cp.db" --addr 127.0.0.1:0 >"$TMP/cp.out" 2>"$TMP/cp.err" &
CP_PID=$!
CP_URL=""
for _ in $(seq 1 100); do
  CP_URL=$(sed -n '1s/^listening on //p' "$TMP/cp.out"); [ -n "$CP_URL" ] && break; sleep 0.05
done
[ -n "$CP_URL" ] || { cat "$TMP/cp.err"; exit 1; }
unset CONTROLPLANE_API_KEY
cp_req() { # METHOD PATH [DATA]
  curl -sS --max-time 20 -o "$TMP/cp.json" -w '%{http_code}' -X "$1" \
    -H "Authorization: Bearer platform-admin-key-1" ${3:+-H "Content-Type: application/json" --data-binary "$3"} "$CP_URL$2"
}
cp_req POST /v1/tenants '{"id": "acme", "name": "Acme", "namespace": "acme"}' >/dev/null
[ "$(cp_req POST /v1/tenants/acme/keys '{"role": "operator"}')" = 201 ] && ok "tenant key created" || not_ok "tenant key created"
TKEY=$(jq -r .key "$TMP/cp.json"); TKID=$(jq -r .key_id "$TMP/cp.json")
cp_req POST /v1/service-keys >/dev/null
export CONTROLPLANE_SERVICE_KEY=$(jq -r .key "$TMP/cp.json")
MONTH=$(date -u +%Y-%m)
# mock-1: 2 USD per million input tokens, 4 USD per million output tokens, 0.001 USD per run.
cp_req POST /v1/billing/rates "{\"effective_from\": \"$MONTH-01\", \"prices\": [{\"model\": \"mock-1\", \"input_per_mtok\": 2000000, \"output_per_mtok\": 4000000, \"per_run\": 0}, {\"model\": \"*\", \"input_per_mtok\": 0, \"output_per_mtok\": 0, \"per_run\": 1000}]}" >/dev/null

mkdir -p "$TMP/m"
cp "$S/chat.yaml" "$TMP/m/"
printf 'providers:\n  - {id: local, plugin: mock}\n' > "$TMP/providers.yaml"
export CONTROLPLANE_SPOOL="$TMP/usage.spool" AUDIT_LOG_PATH="$TMP/audit.log" SERVE_SLA_WINDOW_S=1
start_serve --manifest-dir "$TMP/m" --providers "$TMP/providers.yaml" --controlplane "$CP_URL" || exit 1

IN=0; OUT=0
for i in 1 2 3; do
  req POST /v1/run "{\"manifest\": \"chat.yaml\", \"input\": {\"topic\": \"rivers number $i\"}}" \
    -H "Authorization: Bearer $TKEY" -H "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
  expect_code "run $i with a control-plane key" 200
  IN=$((IN + $(jq .steps[0].output.usage.input_tokens "$TMP/out")))
  OUT=$((OUT + $(jq .steps[0].output.usage.output_tokens "$TMP/out")))
done
req POST /v1/run '{"manifest": "chat.yaml"}' -H "Authorization: Bearer not-a-key"
expect_code "unknown key" 401

# Usage arrives (batched by the client) and is billed at the card's prices.
for _ in $(seq 1 100); do
  cp_req GET "/v1/usage?tenant_id=acme" >/dev/null
  [ "$(jq -r .runs "$TMP/cp.json")" = 3 ] && [ "$(jq -r .input_tokens "$TMP/cp.json")" = "$IN" ] && break
  sleep 0.1
done
cp "$TMP/cp.json" "$TMP/out"
expect_jq "usage: 3 runs" ".runs == 3"
expect_jq "usage: tokens as the reports said" ".input_tokens == $IN and .output_tokens == $OUT"
cp_req GET "/v1/billing/invoice?tenant_id=acme&period=$MONTH" >/dev/null
cp "$TMP/cp.json" "$TMP/out"
expect_jq "invoice has the model's lines" '[.lines[].model] | index("mock-1") != null'
expect_jq "invoice: input tokens at 2/M" "[.lines[] | select(.model == \"mock-1\" and .kind == \"input_tokens\")][0].quantity == $IN"
expect_jq "invoice: output tokens at 4/M" "[.lines[] | select(.model == \"mock-1\" and .kind == \"output_tokens\")][0].quantity == $OUT"
expect_jq "invoice: total is the sum of its lines" '.total_micros == ([.lines[].amount_micros] | add)'

# The SLA comes from serve's own counters (1 s windows here).
sleep 2.2
for _ in $(seq 1 50); do
  cp_req GET /v1/sla >/dev/null
  [ "$(jq -r '.requests // 0' "$TMP/cp.json")" -ge 4 ] 2>/dev/null && break
  sleep 0.1
done
cp "$TMP/cp.json" "$TMP/out"
expect_jq "SLA measured from serve's requests" '.requests >= 4 and .reports >= 1'

# Revoking the key stops it working in serve within 5 s.
cp_req DELETE "/v1/tenants/acme/keys/$TKID" >/dev/null
t0=$(date +%s)
for _ in $(seq 1 70); do
  req POST /v1/run '{"manifest": "chat.yaml"}' -H "Authorization: Bearer $TKEY"
  [ "$code" = 401 ] && break
  sleep 0.1
done
took=$(( $(date +%s) - t0 ))
expect_code "revoked key refused" 401
if [ "$took" -le 6 ]; then ok "revocation took effect within 5 s (${took}s)"; else not_ok "revocation within 5 s" "${took}s"; fi

# serve's metrics and audit log: a control-plane key with the metrics role reads them and
# nothing else; the tenant's operator key does not.
req GET /metrics
expect_code "metrics without a key" 401
[ "$(cp_req POST /v1/tenants/acme/keys '{"role": "metrics"}')" = 201 ] && ok "metrics key created" || not_ok "metrics key created"
MKEY=$(jq -r .key "$TMP/cp.json")
req POST /v1/run '{"manifest": "chat.yaml"}' -H "Authorization: Bearer $MKEY"
expect_code "metrics key cannot run" 403
req GET /metrics "" -H "Authorization: Bearer $MKEY"
expect_code "metrics" 200
if grep -q 'fluxroute_http_requests_total{route="/v1/run",code="200"}' "$TMP/out"; then ok "metrics: requests by route"; else
  not_ok "metrics: requests by route" "$(grep http_requests "$TMP/out" | head -3)"; fi
if awk '/^fluxroute_runs_total\{namespace="acme",status="succeeded"\} / { found = $2 >= 3 } END { exit !found }' "$TMP/out"; then ok "metrics: runs by namespace"; else
  not_ok "metrics: runs by namespace" "$(grep runs_total "$TMP/out" | head -3)"; fi
if command -v promtool >/dev/null 2>&1; then
  if promtool check metrics < "$TMP/out" >"$TMP/promtool.txt" 2>&1; then ok "promtool check metrics"; else
    not_ok "promtool check metrics" "$(head -5 "$TMP/promtool.txt")"; fi
fi
stop_serve
fr audit-verify "$TMP/audit.log"
expect_rc "audit chain intact" 0
if [ "$(jq -s '[.[] | select(.action == "run_manifest" and .decision == "allowed" and .tenant == "acme")] | length' "$TMP/audit.log")" -ge 3 ]; then
  ok "audit: allowed runs with their tenant"; else not_ok "audit: allowed runs with their tenant"; fi
if [ "$(jq -s '[.[] | select(.decision == "denied")] | length' "$TMP/audit.log")" -ge 1 ]; then
  ok "audit: denied attempts"; else not_ok "audit: denied attempts"; fi
if grep -q "$TKEY" "$TMP/audit.log" "$TMP/serve.err" "$TMP/serve.out"; then not_ok "the key never appears"; else ok "the key never appears"; fi
finish
