#!/bin/sh
# What the deployment assets need from the binaries (issue 29):
# - fluxroute probe URL: exit 0 on 2xx, 1 otherwise (status, refused connection, timeout,
#   redirect, TLS failure; the URL's password masked), 2 for usage errors; https with
#   --cacert, mTLS with --cert/--key;
# - the control plane's metrics: --metrics-addr (or CONTROLPLANE_METRICS_ADDR) answers
#   /metrics, /healthz, /readyz without a key; /metrics on the API address needs an admin or
#   service key; fluxroute_cp_requests_total{route,code} by route pattern,
#   fluxroute_cp_usage_events_total{result} exact, fluxroute_cp_sqlite_busy_retries_total
#   counting while another connection holds the database;
# - serve's usage spool: queued, spooled while the control plane is down (depth > 0),
#   replayed once it is back (depth 0), rejected for an unknown tenant.
# 127.0.0.1 only.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
. "$FR_SRCDIR/tests/cp_lib.sh"
. "$FR_SRCDIR/tests/tls_lib.sh"
HOLD_PID=""
trap 'stop_serve; stop_cp; [ -n "$HOLD_PID" ] && kill "$HOLD_PID" 2>/dev/null; rm -rf "$TMP"' EXIT
ADMIN=deploy-admin-key-1

# mval FILE SERIES: the value of one series (the whole name with labels) in an exposition.
mval() { awk -v s="$2" '$1 == s {print $2; f = 1} END {if (!f) print "absent"}' "$1"; }
# wait_metric URL SERIES TEST VALUE: polls (20 s) until the series' value passes
# `test VALUE TEST`, e.g. wait_metric "$M" 'x{a="b"}' -ge 1.  The last value in $got.
wait_metric() {
  for _ in $(seq 1 400); do
    curl -s --max-time 5 "$1/metrics" >"$TMP/metrics" 2>/dev/null
    got=$(mval "$TMP/metrics" "$2")
    [ "$got" != absent ] && [ "$got" "$3" "$4" ] && return 0
    sleep 0.05
  done
  return 1
}

# ---- fluxroute probe ------------------------------------------------------------------------
fr probe
expect_rc "probe without a URL" 2
fr probe ftp://127.0.0.1/x
expect_rc "probe ftp://" 2
expect_err "probe ftp://" "not an http:// or https:// URL"
fr probe http://127.0.0.1:1/ --timeout soon
expect_rc "probe --timeout soon" 2
expect_err "probe --timeout soon" "--timeout soon: not a positive duration"
fr probe https://127.0.0.1:1/ --cert a.pem
expect_rc "probe --cert without --key" 2
fr probe http://127.0.0.1:1/ --cacert ca.pem
expect_rc "probe --cacert with http://" 2
fr probe http://user:s3cret@127.0.0.1:1/healthz
expect_rc "probe: connection refused" 1
expect_err "probe: connection refused, the URL named" "http://user:***@127.0.0.1:1/healthz"
expect_no_err "probe: the password masked" "s3cret"

start_cp
fr probe "$CP_URL/healthz"
expect_rc "probe a 200" 0
expect_out "probe a 200" "$CP_URL/healthz: HTTP 200"
fr probe "$CP_URL/v1/tenants"
expect_rc "probe a 401" 1
expect_err "probe a 401" "$CP_URL/v1/tenants: HTTP 401, not 2xx"
# A listener that accepts connections and never answers.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True); time.sleep(60)' >"$TMP/silent.port" &
HOLD_PID=$!
for _ in $(seq 1 200); do [ -s "$TMP/silent.port" ] && break; sleep 0.05; done
t0=$(date +%s%N)
fr probe "http://127.0.0.1:$(cat "$TMP/silent.port")/healthz" --timeout 300ms
took=$((($(date +%s%N) - t0) / 1000000))
expect_rc "probe: no answer within --timeout" 1
expect_err "probe: no answer within --timeout" "imed out"
[ "$took" -lt 5000 ] && ok "probe: --timeout 300ms gave up in ${took}ms" || not_ok "probe --timeout" "${took}ms"
kill "$HOLD_PID" 2>/dev/null; wait "$HOLD_PID" 2>/dev/null; HOLD_PID=""

# ---- the control plane's metrics -------------------------------------------------------------
cp_req POST /v1/tenants '{"id": "acme"}'
cp_req POST /v1/tenants/acme/keys '{"role": "operator"}'
TENANT_KEY=$(jq -r .key "$TMP/out")
cp_req POST /v1/service-keys
SVC=$(jq -r .key "$TMP/out")
code=$(curl -s -o "$TMP/out" -w '%{http_code}' "$CP_URL/metrics")
expect_code "cp /metrics without a key" 401
cp_req GET /metrics "" "$TENANT_KEY"
expect_code "cp /metrics with a tenant key" 403
cp_req GET /v1/metrics "" "$SVC"
expect_code "cp /metrics with a service key" 200
cp_req GET /metrics
expect_code "cp /metrics with the admin key" 200
check "cp /metrics: fluxroute_cp_requests_total by route pattern" \
  grep -q '^fluxroute_cp_requests_total{route="/tenants/{id}/keys",code="201"} 1$' "$TMP/out"
check "cp /metrics: 401s counted" grep -q '^fluxroute_cp_requests_total{route="/metrics",code="401"} 1$' "$TMP/out"
if command -v promtool >/dev/null 2>&1; then
  check "cp /metrics: promtool check metrics" sh -c 'promtool check metrics <"$1"' sh "$TMP/out"
fi
stop_cp

# --metrics-addr, then the same through CONTROLPLANE_METRICS_ADDR.
fr controlplane --db "$TMP/cp.db" --addr 127.0.0.1:0 --metrics-addr nowhere
expect_rc "cp --metrics-addr nowhere" 2
expect_err "cp --metrics-addr nowhere" "--metrics-addr nowhere"
start_cp_metrics() {
  CONTROLPLANE_API_KEY=$ADMIN CONTROLPLANE_METRICS_ADDR=127.0.0.1:0 "$FLUXROUTE" controlplane \
    --db "$TMP/cp.db" --addr "${1:-127.0.0.1:0}" >"$TMP/cp.out" 2>"$TMP/cp.err" &
  CP_PID=$!
  CPM_URL=""
  for _ in $(seq 1 200); do
    CP_URL=$(sed -n '1s/^listening on //p' "$TMP/cp.out")
    CPM_URL=$(sed -n '2s/^metrics listening on //p' "$TMP/cp.out")
    [ -n "$CPM_URL" ] && return 0
    sleep 0.05
  done
  echo "control plane did not start:"; cat "$TMP/cp.err"; exit 1
}
start_cp_metrics
fr probe "$CPM_URL/healthz"
expect_rc "cp metrics listener: /healthz" 0
fr probe "$CPM_URL/readyz"
expect_rc "cp metrics listener: /readyz" 0
fr probe "$CPM_URL/v1/tenants"
expect_rc "cp metrics listener: nothing else" 1
expect_err "cp metrics listener: nothing else" "HTTP 404"
curl -s "$CPM_URL/metrics" >"$TMP/metrics"
for n in fluxroute_cp_requests_total fluxroute_cp_usage_events_total fluxroute_cp_sqlite_busy_retries_total; do
  check "cp metrics listener: $n" grep -q "^# TYPE $n " "$TMP/metrics"
done
[ "$(mval "$TMP/metrics" 'fluxroute_cp_usage_events_total{result="accepted"}')" = 0 ] &&
  ok "cp: usage series exist at 0 from the start" || not_ok "usage series at 0" "$(grep usage_events "$TMP/metrics")"

ev() { # KEY TENANT
  printf '{"idempotency_key": "%s", "tenant": "%s", "occurred_at": "2026-01-02T03:04:05Z", "kind": "run", "runs": 1}' "$1" "$2"
}
cp_req POST /v1/usage "{\"events\": [$(ev k1 acme), $(ev k2 acme), $(ev k3 acme)]}" "$SVC"
expect_code "usage: three events" 202
cp_req POST /v1/usage "{\"events\": [$(ev k1 acme), $(ev k4 acme)]}" "$SVC"
expect_code "usage: one again, one new" 202
cp_req POST /v1/usage "{\"events\": [$(ev k5 acme), $(ev k6 nobody)]}" "$SVC"
expect_code "usage: an unknown tenant" 400
curl -s "$CPM_URL/metrics" >"$TMP/metrics"
a=$(mval "$TMP/metrics" 'fluxroute_cp_usage_events_total{result="accepted"}')
d=$(mval "$TMP/metrics" 'fluxroute_cp_usage_events_total{result="duplicate"}')
r=$(mval "$TMP/metrics" 'fluxroute_cp_usage_events_total{result="rejected"}')
[ "$a/$d/$r" = 4/1/2 ] && ok "usage events: 4 accepted, 1 duplicate, 2 rejected" ||
  not_ok "usage events by result" "accepted/duplicate/rejected = $a/$d/$r"
check "requests: /usage 202 twice" grep -q '^fluxroute_cp_requests_total{route="/usage",code="202"} 2$' "$TMP/metrics"

# Another connection holds the database's write lock for a second: the POST waits (and
# counts its retries), then succeeds.
python3 -c '
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(1.0)
db.execute("COMMIT")' "$TMP/cp.db" >"$TMP/lock.out" &
HOLD_PID=$!
for _ in $(seq 1 200); do grep -q locked "$TMP/lock.out" 2>/dev/null && break; sleep 0.02; done
cp_req POST /v1/usage "[$(ev k7 acme)]" "$SVC"
expect_code "usage while the database is locked: stored after the wait" 202
wait "$HOLD_PID"; HOLD_PID=""
curl -s "$CPM_URL/metrics" >"$TMP/metrics"
busy=$(mval "$TMP/metrics" fluxroute_cp_sqlite_busy_retries_total)
[ "$busy" != absent ] && [ "$busy" -ge 5 ] && ok "busy retries counted ($busy)" || not_ok "busy retries counted" "got $busy"
CP_PORT=${CP_URL##*:}
stop_cp

# ---- serve's usage spool ----------------------------------------------------------------------
# serve looks keys up in the control plane and caches a found key for 5 s: a run right after
# one that looked its key up needs no control plane, and its usage goes to the spool while
# the control plane is down.  The admin key may report usage and look keys up, so a
# control plane with an empty database (cp2.db) answers serve too: it rejects acme's events.
mkdir -p "$TMP/m"
cp "$FR_SRCDIR/tests/data/serve/echo.yaml" "$TMP/m/"
start_cp_metrics "127.0.0.1:$CP_PORT"
CONTROLPLANE_SERVICE_KEY=$ADMIN CONTROLPLANE_SPOOL="$TMP/usage.spool" start_serve \
  --manifest-dir "$TMP/m" --controlplane "http://127.0.0.1:$CP_PORT" \
  --metrics-addr 127.0.0.1:0 || exit 1
curl -s "$METRICS_URL/metrics" >"$TMP/metrics"
[ "$(mval "$TMP/metrics" 'fluxroute_usage_spool_events_total{state="spooled"}')/$(mval "$TMP/metrics" fluxroute_usage_spool_depth)" = 0/0 ] &&
  ok "spool series at 0 from the start" || not_ok "spool series at 0" "$(grep usage_spool "$TMP/metrics")"
run() { # NAME
  req POST /v1/run '{"manifest": "echo.yaml"}' -H "Authorization: Bearer $TENANT_KEY"
  expect_code "$1" 200
}
run "a run, the control plane up"
wait_metric "$METRICS_URL" 'fluxroute_usage_spool_events_total{state="sent"}' -ge 1 &&
  ok "sent: $got" || not_ok "event sent" "got $got"
run "a run (its key now cached)"
stop_cp
run "a run while the control plane is down"
run "another run while the control plane is down"
wait_metric "$METRICS_URL" 'fluxroute_usage_spool_events_total{state="spooled"}' -ge 2 &&
  ok "spooled: $got" || not_ok "events spooled" "got $got"
wait_metric "$METRICS_URL" fluxroute_usage_spool_depth -ge 2 &&
  ok "spool depth $got" || not_ok "spool depth" "got $got"
[ "$(mval "$TMP/metrics" 'fluxroute_usage_spool_events_total{state="queued"}')" -ge 4 ] &&
  ok "queued counted" || not_ok "queued counted" "$(grep usage_spool "$TMP/metrics")"
# Back on the same port: the spool is replayed.
start_cp_metrics "127.0.0.1:$CP_PORT"
wait_metric "$METRICS_URL" 'fluxroute_usage_spool_events_total{state="replayed"}' -ge 2 &&
  ok "replayed: $got" || not_ok "events replayed" "got $got"
wait_metric "$METRICS_URL" fluxroute_usage_spool_depth -eq 0 &&
  ok "spool depth back to 0" || not_ok "spool depth back to 0" "got $got"
# A control plane that does not know the tenant: replayed events are rejected.
run "a run (its key looked up again)"
stop_cp
run "a run while the control plane is down (2)"
wait_metric "$METRICS_URL" fluxroute_usage_spool_depth -ge 1 &&
  ok "spool depth $got" || not_ok "spool depth" "got $got"
mv "$TMP/cp.db" "$TMP/cp1.db"
start_cp_metrics "127.0.0.1:$CP_PORT"
wait_metric "$METRICS_URL" 'fluxroute_usage_spool_events_total{state="rejected"}' -ge 1 &&
  ok "rejected: $got" || not_ok "event rejected" "got $got"
wait_metric "$METRICS_URL" fluxroute_usage_spool_depth -eq 0 &&
  ok "spool depth back to 0 (rejected events are kept apart)" || not_ok "spool depth 0 after rejection" "got $got"
check "the rejected event is in <spool>.rejected" grep -q acme "$TMP/usage.spool.rejected"
if command -v promtool >/dev/null 2>&1; then
  curl -s "$METRICS_URL/metrics" >"$TMP/metrics"
  check "serve /metrics: promtool check metrics" sh -c 'promtool check metrics <"$1"' sh "$TMP/metrics"
fi
stop_serve
stop_cp

# ---- https and mTLS -------------------------------------------------------------------------
if command -v certtool >/dev/null 2>&1; then
  make_test_ca "probe" || { cat "$TMP/certtool.log"; not_ok "certtool made the test CA"; }
  export CONTROLPLANE_TLS_ENABLED=true CONTROLPLANE_TLS_CERT_FILE="$TMP/srv.pem" CONTROLPLANE_TLS_KEY_FILE="$TMP/srv.key"
  start_cp
  fr probe "$CP_URL/healthz" --cacert "$TMP/ca.pem"
  expect_rc "probe https with --cacert" 0
  fr probe "$CP_URL/healthz"
  expect_rc "probe https without the CA" 1
  expect_err "probe https without the CA: the reason" "$CP_URL/healthz: "
  stop_cp
  export CONTROLPLANE_TLS_REQUIRE_CLIENT_CERT=true CONTROLPLANE_TLS_CA_FILE="$TMP/ca.pem"
  start_cp
  fr probe "$CP_URL/healthz" --cacert "$TMP/ca.pem"
  [ "$rc" = 1 ] && ok "probe mTLS without a client certificate: exit 1" || not_ok "probe mTLS without cert" "exit $rc"
  fr probe "$CP_URL/healthz" --cacert "$TMP/ca.pem" --cert "$TMP/cli.pem" --key "$TMP/cli.key"
  expect_rc "probe mTLS with --cert and --key" 0
  stop_cp
else
  not_ok "certtool (gnutls-bin) is installed"
fi

for f in "$TMP/cp.err" "$TMP/serve.err"; do
  if grep -q "ERROR: AddressSanitizer\|runtime error:" "$f" 2>/dev/null; then not_ok "no sanitizer reports in $(basename "$f")" "$(head -30 "$f")"; fi
done
finish
