#!/bin/sh
# `fluxroute serve` end to end on an ephemeral loopback port: authentication, RBAC,
# tenant isolation, manifest names, runs (sync, async, SSE), traces and replay, limits,
# TLS and mTLS, SIGHUP reload, graceful shutdown.
. "${FR_SRCDIR:-.}/tests/lib.sh"
. "$FR_SRCDIR/tests/serve_lib.sh"
S="$FR_SRCDIR/tests/data/serve"
mkdir -p "$TMP/m"
cp "$S"/echo.yaml "$S"/chat.yaml "$S"/slow.yaml "$S"/slower.yaml "$S"/admin_only.yaml "$TMP/m/"
cat > "$TMP/keys.yaml" <<YAML
keys:
  - {id: acme-op, sha256: $(sha op-key-1), tenant: acme, namespace: acme, role: operator}
  - {id: acme-viewer, sha256: $(sha viewer-key-1), tenant: acme, namespace: acme, role: viewer}
  - {id: acme-admin, sha256: $(sha admin-key-1), tenant: acme, namespace: acme, role: admin}
  - {id: beta-admin, sha256: $(sha beta-key-1), tenant: beta, namespace: beta, role: admin}
  - {id: acme-newline, sha256: $(echo nl-key-1 | sha256sum | cut -d' ' -f1), tenant: acme, namespace: acme, role: operator}
clients:
  - {cn: acme-client, tenant: acme, namespace: acme, role: operator}
  - {cn: scraper, tenant: ops, namespace: ops, role: metrics}
YAML
OP="Authorization: Bearer op-key-1"
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --providers "$S/providers.yaml" \
  --enable-chaos --max-runs 2 --max-body 4096 || exit 1

# ---- health, auth ------------------------------------------------------------------------------
req GET /healthz; expect_code "healthz" 200
req GET /readyz; expect_code "readyz" 200
req GET /metrics; expect_code "metrics without a key" 401
req GET /metrics "" -H "Authorization: Bearer admin-key-1"; expect_code "metrics (admin)" 200
req POST /v1/run '{"manifest": "echo.yaml"}'
expect_code "no key" 401
expect_jq "no key" '.error.code == "unauthorized"'
check "no key: Bearer challenge" grep -qi '^WWW-Authenticate: Bearer realm="fluxroute"' "$TMP/headers"
req POST /v1/run '{"manifest": "echo.yaml"}' -H "Authorization: Bearer wrong"
expect_code "unknown key" 401
expect_jq "unknown key" '.error.message == "unknown API key"'
req POST /v1/run '{"manifest": "echo.yaml"}' -H "Authorization: Bearer nl-key-1"
expect_code "a key stored as echo KEY | sha256sum makes it" 401
expect_jq "a key stored with a newline: says so, and how to fix it" '.error.message | test("followed by a newline.*printf %s KEY [|] sha256sum")'
req POST /v1/run '{"manifest": "echo.yaml"}' -H "Authorization: Bearer viewer-key-1"
expect_code "viewer cannot run" 403
expect_jq "viewer cannot run" '.error.code == "forbidden"'
req POST /v1/validate '{"manifest": "echo.yaml"}' -H "Authorization: Bearer viewer-key-1"
expect_code "viewer can validate" 200
req POST /v1/run '{"manifest": "admin_only.yaml"}' -H "$OP"
expect_code "manifest rbac narrows" 403
req POST /v1/run '{"manifest": "admin_only.yaml"}' -H "Authorization: Bearer admin-key-1"
expect_code "admin may run admin_only" 200
# Another tenant's manifest does not exist, as far as this caller can tell (e2e_trust.sh
# has the variants).
req POST /v1/run '{"manifest": "echo.yaml"}' -H "Authorization: Bearer beta-key-1"
expect_code "other tenant's namespace" 404
expect_jq "other tenant's namespace" '.error.code == "manifest_not_found" and (.error.message | test("acme") | not)'

# ---- runs -----------------------------------------------------------------------------------------
req POST /v1/run '{"manifest": "echo.yaml", "input": {"x": 1}}' -H "$OP"
expect_code "sync run" 200
expect_jq "sync run report" '.status == "succeeded" and .steps[0].output == {"input": {"x": 1}, "steps": {}}'
if grep -qi '^X-FluxRoute-Overhead-Us: [0-9]' "$TMP/headers"; then ok "overhead header"; else not_ok "overhead header"; fi
req POST /v1/run '{"manifest_yaml": "router: {namespace: acme}\nagents: [{id: f, plugin: chaos, config: {fail_attempts: 1}}]\npipeline: [{step: f}]\n"}' -H "$OP"
expect_code "failed run is still 200" 200
expect_jq "failed run" '.status == "failed" and .steps[0].error.class == "unavailable"'
req POST /v1/run '{"manifest": "chat.yaml"}' -H "$OP"
expect_jq "server's provider replaces the manifest's" '.steps[0].output.model == "server-mock"'
req POST /run '{"manifest_path": "echo.yaml"}' -H "$OP"
expect_code "original path and body" 200
req POST /run '{"manifest_path": "/etc/passwd"}' -H "$OP"
expect_code "manifest_path absolute" 400
for bad in '../m/echo.yaml' '/etc/hosts' 'a/b.yaml' '..' '.hidden'; do
  req POST /v1/run "{\"manifest\": \"$bad\"}" -H "$OP"
  expect_code "traversal $bad" 400
done
req POST /v1/run '{"manifest": "missing.yaml"}' -H "$OP"
expect_code "unknown manifest" 404
# Request bodies are as strict as manifests: a misspelt field is named, never ignored.
req POST /v1/run '{"manifest": "echo.yaml", "inputs": {"x": 1}}' -H "$OP"
expect_code "unknown field in a run body" 400
expect_jq "unknown field in a run body" '.error.code == "unknown_field" and (.error.message | test("\"inputs\".*manifest, manifest_path, manifest_yaml, input, trace, async, seed"))'
req POST /v1/validate '{"manifest": "echo.yaml", "strict": true}' -H "$OP"
expect_jq "unknown field in a validate body" '.error.code == "unknown_field" and (.error.message | test("\"strict\""))'
req POST /v1/replay '{"run_id": "x", "verbose": 1}' -H "$OP"
expect_jq "unknown field in a replay body" '.error.code == "unknown_field" and (.error.message | test("\"verbose\""))'
req POST /v1/replay '{"trace_path": "/tmp/x.json"}' -H "$OP"
expect_code "trace_path refused" 400
expect_jq "trace_path refused" '.error.message | test("upload the trace")'
req POST /v1/run '{"manifest_yaml": "router: {namespace: acme}\nplugins: {dirs: [/tmp]}\nagents: [{id: e, plugin: echo}]\npipeline: [{step: e}]\n"}' -H "$OP"
expect_code "inline plugins.dirs" 400
expect_jq "inline plugins.dirs" '.error.code == "plugin_dirs_refused"'
req POST /v1/run '{"manifest_yaml": "router: {namespace: acme}\nproviders: [{id: mine, plugin: mock}]\nagents: [{id: e, plugin: echo}]\npipeline: [{step: e}]\n"}' -H "$OP"
expect_code "provider unknown to the server" 400
req POST /v1/run '{"manifest_yaml": "agents: [oops"}' -H "$OP"
expect_code "invalid inline manifest" 400
expect_jq "invalid inline manifest" '.error.code == "invalid_manifest" and (.error.errors[0].line >= 1)'
req POST /v1/run '{"manifest": ' -H "$OP"
expect_code "malformed JSON" 400
expect_jq "malformed JSON" '.error.message | test("byte")'
req POST /v1/run '{"manifest": "echo.yaml", "input": {"x": NaN}}' -H "$OP"
expect_code "NaN is not JSON" 400
expect_jq "NaN is not JSON" '.error.code == "malformed_json" and (.error.message | test("at byte 41"))'
req GET /v1/run '' -H "$OP"; expect_code "wrong method" 405
check "wrong method: Allow" grep -qi '^Allow: POST' "$TMP/headers"
req PUT /v1/runs/some-id '' -H "$OP"; expect_code "wrong method on a run" 405
check "wrong method on a run: Allow" grep -qi '^Allow: GET, DELETE' "$TMP/headers"
req GET /nowhere '' -H "$OP"; expect_code "unknown route" 404
big=$(head -c 5000 /dev/zero | tr '\0' 'a')
req POST /v1/run "{\"manifest\": \"echo.yaml\", \"input\": \"$big\"}" -H "$OP"
expect_code "body limit" 413

# Async, trace, replay, cross-tenant.
req POST /v1/run '{"manifest": "echo.yaml", "async": true, "trace": true}' -H "$OP"
expect_code "async" 202
rid=$(jq -r .run_id "$TMP/out")
for _ in $(seq 1 50); do
  req GET "/v1/runs/$rid" '' -H "$OP"
  [ "$(jq -r .status "$TMP/out")" = running ] || break
  sleep 0.05
done
expect_jq "async status" '.status == "succeeded" and .report.status == "succeeded" and .traced == true'
# Our threads carry names (top -H, ps -L, gdb): the async run's steps ran on the pool.
if cat /proc/"$SERVE_PID"/task/*/comm 2>/dev/null | grep -qx fr-worker; then ok "thread names"; else
  not_ok "thread names" "$(cat /proc/"$SERVE_PID"/task/*/comm 2>/dev/null | tr '\n' ' ')"; fi
req GET "/v1/runs/$rid/trace" '' -H "$OP"
expect_code "trace" 200
expect_jq "trace" '.format == "fluxroute-trace"'
cp "$TMP/out" "$TMP/trace.json"
req GET "/v1/runs/$rid" '' -H "Authorization: Bearer beta-key-1"
expect_code "other tenant's run" 404
req GET "/v1/runs/$rid/trace" '' -H "Authorization: Bearer beta-key-1"
expect_code "other tenant's trace" 404
req POST /v1/replay "{\"run_id\": \"$rid\"}" -H "$OP"
expect_code "replay by run id" 200
expect_jq "replay by run id" '.identical == true'
req POST /v1/replay "{\"trace\": $(cat "$TMP/trace.json")}" -H "$OP"
expect_jq "replay uploaded trace" '.identical == true'
req POST /v1/replay "{\"trace\": $(jq '.steps[0].output.hello = 1' "$TMP/trace.json")}" -H "$OP"
expect_jq "replay tampered trace" '.identical == false and .divergence.step == "echo"'
req POST /v1/replay '{"trace": {"format": "nope"}}' -H "$OP"
expect_code "invalid trace" 400

# Cancel a running run.
req POST /v1/run '{"manifest": "slow.yaml", "async": true}' -H "$OP"
rid=$(jq -r .run_id "$TMP/out")
if tr -d '\r' <"$TMP/headers" | grep -qix "Location: /v1/runs/$rid"; then ok "async 202: Location names the run"; else
  not_ok "async 202: Location names the run" "$(cat "$TMP/headers")"; fi
sleep 0.2
req DELETE "/v1/runs/$rid" '' -H "$OP"
expect_code "cancel" 202
sleep 0.3
req GET "/v1/runs/$rid" '' -H "$OP"
expect_jq "cancelled" '.status == "cancelled"'
req DELETE "/v1/runs/$rid" '' -H "$OP"
expect_code "cancel a finished run" 409

# SSE: step events, tokens, then the report.
curl -s -N --max-time 20 -X POST -H "$OP" -H "Accept: text/event-stream" \
  --data '{"manifest": "chat.yaml"}' "$SERVE_URL/v1/run" > "$TMP/sse.txt"
if grep -q '^event: token' "$TMP/sse.txt" && grep -q '^event: step' "$TMP/sse.txt" &&
  [ "$(grep '^event:' "$TMP/sse.txt" | tail -1)" = "event: report" ]; then ok "SSE: tokens, steps, report last"; else
  not_ok "SSE: tokens, steps, report last" "$(head -20 "$TMP/sse.txt")"; fi
tail -1 "$TMP/sse.txt" | sed 's/^data: //' > "$TMP/out"
grep '^data: ' "$TMP/sse.txt" | tail -1 | sed 's/^data: //' > "$TMP/out"
expect_jq "SSE report" '.status == "succeeded"'
sse_rid=$(jq -r .run_id "$TMP/out")
if [ "$(grep '^event:' "$TMP/sse.txt" | head -1)" = "event: run" ] &&
  grep '^data: ' "$TMP/sse.txt" | head -1 | grep -qF "{\"run_id\":\"$sse_rid\"}"; then
  ok "SSE: the first event names the run"; else not_ok "SSE: the first event names the run" "$(head -4 "$TMP/sse.txt")"; fi

# Concurrency limit: two slow runs (async, so no HTTP thread waits on them) fill
# --max-runs 2; the next request gets 429 with Retry-After.
for i in 1 2; do
  req POST /v1/run '{"manifest": "slower.yaml", "async": true}' -H "$OP"
done
req POST /v1/run '{"manifest": "echo.yaml"}' -H "$OP"
expect_code "concurrent run limit" 429
if grep -qi '^Retry-After: ' "$TMP/headers"; then ok "429 has Retry-After"; else not_ok "429 has Retry-After"; fi
sleep 4.2

# SIGHUP re-reads the keys file.
cat >> "$TMP/keys.yaml" <<YAML
  - {id: late, sha256: $(sha late-key), tenant: acme, namespace: acme, role: operator}
YAML
sed -i 's/^clients:$//; s/^  - {cn: .*$//' "$TMP/keys.yaml"
printf 'clients:\n  - {cn: acme-client, tenant: acme, namespace: acme, role: operator}\n  - {cn: scraper, tenant: ops, namespace: ops, role: metrics}\n' >> "$TMP/keys.yaml"
kill -HUP "$SERVE_PID"
sleep 0.3
req POST /v1/run '{"manifest": "echo.yaml"}' -H "Authorization: Bearer late-key"
expect_code "key added, SIGHUP" 200

# Graceful shutdown finishes the run in flight.
curl -s -o "$TMP/inflight.json" --max-time 20 -X POST -H "$OP" --data '{"manifest": "slow.yaml"}' "$SERVE_URL/v1/run" &
cpid=$!
sleep 0.3
kill -TERM "$SERVE_PID"
wait "$cpid"
wait "$SERVE_PID"; src=$?
SERVE_PID=""
cp "$TMP/inflight.json" "$TMP/out"
expect_jq "in-flight run finished at shutdown" '.status == "succeeded"'
if [ "$src" = 0 ]; then ok "serve exits 0 after SIGTERM"; else not_ok "serve exits 0 after SIGTERM" "exit $src"; fi

# ---- TLS and mTLS ------------------------------------------------------------------------------
if command -v certtool >/dev/null 2>&1; then
  (
    cd "$TMP" || exit 1
    printf 'cn = "FluxRoute test CA"\nca\ncert_signing_key\nexpiration_days = 2\n' >ca.tmpl
    printf 'cn = "127.0.0.1"\nip_address = "127.0.0.1"\ntls_www_server\nsigning_key\nencryption_key\nexpiration_days = 2\n' >srv.tmpl
    printf 'cn = "acme-client"\ntls_www_client\nsigning_key\nexpiration_days = 2\n' >cli.tmpl
    printf 'cn = "acme-client"\ntls_www_client\nsigning_key\nexpiration_days = 2\n' >self.tmpl
    printf 'cn = "scraper"\ntls_www_client\nsigning_key\nexpiration_days = 2\n' >scraper.tmpl
    certtool --generate-privkey --key-type=ecdsa --outfile ca.key &&
      certtool --generate-self-signed --load-privkey ca.key --template ca.tmpl --outfile ca.pem &&
      certtool --generate-privkey --key-type=ecdsa --outfile srv.key &&
      certtool --generate-certificate --load-privkey srv.key --load-ca-certificate ca.pem \
        --load-ca-privkey ca.key --template srv.tmpl --outfile srv.pem &&
      certtool --generate-privkey --key-type=ecdsa --outfile cli.key &&
      certtool --generate-certificate --load-privkey cli.key --load-ca-certificate ca.pem \
        --load-ca-privkey ca.key --template cli.tmpl --outfile cli.pem &&
      certtool --generate-privkey --key-type=ecdsa --outfile scraper.key &&
      certtool --generate-certificate --load-privkey scraper.key --load-ca-certificate ca.pem \
        --load-ca-privkey ca.key --template scraper.tmpl --outfile scraper.pem &&
      certtool --generate-privkey --key-type=ecdsa --outfile self.key &&
      certtool --generate-self-signed --load-privkey self.key --template self.tmpl --outfile self.pem
  ) >"$TMP/certtool.log" 2>&1 || { cat "$TMP/certtool.log"; not_ok "certtool made the test certificates"; }
  export ROUTER_TLS_ENABLED=true ROUTER_TLS_CERT_FILE="$TMP/srv.pem" ROUTER_TLS_KEY_FILE="$TMP/srv.key" \
    ROUTER_TLS_CA_FILE="$TMP/ca.pem" ROUTER_TLS_REQUIRE_CLIENT_CERT=true
  start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" || exit 1
  case $SERVE_URL in https://*) ok "TLS: https address" ;; *) not_ok "TLS: https address" ;; esac
  req POST /v1/run '{"manifest": "echo.yaml"}' --cacert "$TMP/ca.pem" --cert "$TMP/cli.pem" --key "$TMP/cli.key"
  expect_code "mTLS: valid client certificate" 200
  expect_jq "mTLS: run" '.status == "succeeded"'
  req GET /metrics '' --cacert "$TMP/ca.pem" --cert "$TMP/cli.pem" --key "$TMP/cli.key"
  expect_code "mTLS: an operator client may not read /metrics" 403
  req GET /metrics '' --cacert "$TMP/ca.pem" --cert "$TMP/scraper.pem" --key "$TMP/scraper.key"
  expect_code "mTLS: a metrics client reads /metrics" 200
  req POST /v1/run '{"manifest": "echo.yaml"}' --cacert "$TMP/ca.pem" --cert "$TMP/scraper.pem" --key "$TMP/scraper.key"
  expect_code "mTLS: a metrics client may not run" 403
  req POST /v1/run '{"manifest": "echo.yaml"}' --cacert "$TMP/ca.pem" -H "$OP"
  expect_code "mTLS: no client certificate" 401
  expect_jq "mTLS: no client certificate" '.error.code == "client_cert_required"'
  req POST /v1/run '{"manifest": "echo.yaml"}' --cacert "$TMP/ca.pem" --cert "$TMP/self.pem" --key "$TMP/self.key" -H "$OP"
  if [ "$code" = 401 ] || [ "$code" = 000 ]; then ok "mTLS: self-signed client certificate refused ($code)"; else
    not_ok "mTLS: self-signed client certificate refused" "got $code"; fi
  req GET /healthz '' --tls-max 1.1 --cacert "$TMP/ca.pem"
  if [ "$code" = 000 ]; then ok "TLS 1.1 refused"; else not_ok "TLS 1.1 refused" "got $code"; fi
  stop_serve
  ROUTER_TLS_CERT_FILE="$TMP/nope.pem" "$FLUXROUTE" serve --addr 127.0.0.1:0 --manifest-dir "$TMP/m" \
    --keys "$TMP/keys.yaml" >"$TMP/out" 2>"$TMP/err"
  rc=$?
  expect_rc "TLS misconfigured: fails at start" 2
  expect_err "TLS misconfigured: names the file" "nope.pem"
  unset ROUTER_TLS_ENABLED ROUTER_TLS_CERT_FILE ROUTER_TLS_KEY_FILE ROUTER_TLS_CA_FILE ROUTER_TLS_REQUIRE_CLIENT_CERT
else
  not_ok "certtool (gnutls-bin) is installed"
fi

# ---- edited manifests; retention by count (oldest finished runs go first) and by age -------------
stop_serve
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --enable-chaos --retention-count 2 || exit 1
# wait_for NAME WANT METHOD PATH BODY: repeats the request (10 s at most) until its answer
# passes the jq filter WANT (pooled pipelines are rechecked once a second).
wait_for() {
  local name=$1 want=$2 i
  shift 2
  for i in $(seq 1 100); do
    req "$@" -H "$OP"
    jq -e "$want" "$TMP/out" >/dev/null 2>&1 && { ok "$name: $want"; return; }
    sleep 0.1
  done
  not_ok "$name: $want" "HTTP $code: $(head -c 300 "$TMP/out" 2>/dev/null)"
}
# An edited manifest is picked up (within a second: pooled pipelines are rechecked).
printf 'router: {namespace: acme}\nagents: [{id: c, plugin: chaos, config: {output: {v: 1}}}]\npipeline: [{step: s, agent: c}]\n' > "$TMP/m/edit.yaml"
req POST /v1/run '{"manifest": "edit.yaml"}' -H "$OP"
expect_jq "edited manifest: first version" '.steps[0].output == {"v": 1}'
printf 'router: {namespace: acme}\nagents: [{id: c, plugin: chaos, config: {output: {v: 22}}}]\npipeline: [{step: s, agent: c}]\n' > "$TMP/m/edit.yaml"
wait_for "edited manifest: the new version runs" '.steps[0].output == {"v": 22}' POST /v1/run '{"manifest": "edit.yaml"}'
rm "$TMP/m/edit.yaml"
wait_for "deleted manifest: gone" '.error.code == "manifest_not_found"' POST /v1/run '{"manifest": "edit.yaml"}'
expect_code "deleted manifest: gone" 404

ids=""
for i in 1 2 3; do
  req POST /v1/run "{\"manifest\": \"echo.yaml\", \"input\": {\"i\": $i}}" -H "$OP"
  ids="$ids $(jq -r '.run_id // "none"' "$TMP/out")"
done
set -- $ids
req GET "/v1/runs/$1" '' -H "$OP"; expect_code "retention count: the oldest run is gone" 404
req GET "/v1/runs/$2" '' -H "$OP"; expect_code "retention count: the second is kept" 200
req GET "/v1/runs/$3" '' -H "$OP"; expect_code "retention count: the newest is kept" 200
expect_jq "retention count: the newest report" '.report.steps[0].output.input == {"i": 3}'
stop_serve
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --retention 3s || exit 1
req POST /v1/run '{"manifest": "echo.yaml"}' -H "$OP"
rid=$(jq -r '.run_id // "none"' "$TMP/out")
req GET "/v1/runs/$rid" '' -H "$OP"; expect_code "retention age: a new run is kept" 200
wait_for "retention age: runs older than --retention are gone" '.error.code == "run_not_found"' GET "/v1/runs/$rid" ''
stop_serve

# ---- synchronous runs: slow pipelines get threads of their own; hung plugins ---------------------
# A manifest's synchronous runs execute on the request thread once its runs are known to be
# quick; unknown or slow ones (waiting on providers) run on a thread of their own while the
# connection waits suspended, so they never hold the request threads.
cat > "$TMP/m/hang.yaml" <<'YAML'
router: {namespace: acme}
agents:
  - {id: stuck, plugin: chaos, timeout: 100ms, config: {hang: true, hang_for: 2s}, fallback: [rescue]}
  - {id: rescue, plugin: echo}
pipeline: [{step: s, agent: stuck}]
YAML
cat > "$TMP/m/hang_forever.yaml" <<'YAML'
router: {namespace: acme}
agents:
  - {id: stuck, plugin: chaos, timeout: 100ms, config: {hang: true}, fallback: [rescue]}
  - {id: rescue, plugin: echo}
pipeline: [{step: s, agent: stuck}]
YAML
# chaos trusted: its hangs are in-process calls the watchdog abandons.
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" --enable-chaos --trust-plugin chaos \
  --threads 2 || exit 1
# Four runs of 1.5 s at once on two request threads: they overlap, and health checks
# are answered meanwhile.
t0=$(date +%s%N)
pids=""
for i in 1 2 3 4; do
  curl -s -o "$TMP/slow$i.json" --max-time 20 -H "$OP" -d '{"manifest": "slow.yaml"}' "$SERVE_URL/v1/run" &
  pids="$pids $!"
done
sleep 0.3
req_within 1000 "healthz is not queued behind slow runs" GET /healthz
expect_code "healthz while slow runs wait" 200
wait $pids
t1=$(date +%s%N)
n_ok=0
for i in 1 2 3 4; do jq -e '.status == "succeeded"' "$TMP/slow$i.json" >/dev/null 2>&1 && n_ok=$((n_ok + 1)); done
[ "$n_ok" = 4 ] && ok "four slow synchronous runs succeeded" || not_ok "four slow synchronous runs succeeded" "$n_ok"
if [ $(( (t1 - t0) / 1000000 )) -lt 2900 ]; then ok "slow synchronous runs overlap (two request threads)"; else
  not_ok "slow synchronous runs overlap (two request threads)" "$(( (t1 - t0) / 1000000 ))ms"; fi
# A plugin hanging in such a run is abandoned at its deadline and the reply comes then.
t0=$(date +%s%N)
req POST /v1/run '{"manifest": "hang.yaml"}' -H "$OP"
t1=$(date +%s%N)
expect_code "hung plugin: answered" 200
expect_jq "hung plugin: abandoned, the fallback answered" \
  '.status == "succeeded" and .steps[0].answered_by == "rescue" and (.steps[0].attempts[0].message | test("hung"))'
if [ $(( (t1 - t0) / 1000000 )) -lt 1500 ]; then ok "hung plugin: answered at the deadline, not when the plugin returns"; else
  not_ok "hung plugin: answered at the deadline" "$(( (t1 - t0) / 1000000 ))ms"; fi
req POST /v1/run '{"manifest": "hang_forever.yaml"}' -H "$OP"
expect_jq "a plugin that never returns: the fallback answers" '.status == "succeeded" and .steps[0].answered_by == "rescue"'
t0=$(date +%s%N)
stop_serve
t1=$(date +%s%N)
if [ $(( (t1 - t0) / 1000000 )) -lt 10000 ]; then ok "shutdown with a hung plugin thread"; else not_ok "shutdown with a hung plugin thread" "$(( (t1 - t0) / 1000000 ))ms"; fi
if grep -q "hung plugin thread" "$TMP/serve.err"; then ok "shutdown names the hung threads"; else not_ok "shutdown names the hung threads" "$(cat "$TMP/serve.err")"; fi

# ---- GET /v1/runs: the tenant's runs, newest first, filtered and paged ---------------------------
start_serve --manifest-dir "$TMP/m" --keys "$TMP/keys.yaml" || exit 1
for i in 1 2 3; do req POST /v1/run "{\"manifest\": \"echo.yaml\", \"input\": {\"i\": $i}}" -H "$OP"; eval "lr$i=\$(jq -r .run_id \"\$TMP/out\")"; done
req POST /v1/run '{"manifest_yaml": "router: {namespace: acme}\nagents: [{id: e, plugin: echo}]\npipeline: [{step: e}]\n"}' -H "$OP"
lr4=$(jq -r .run_id "$TMP/out")
req POST /v1/run '{"manifest_yaml": "router: {namespace: beta}\nagents: [{id: e, plugin: echo}]\npipeline: [{step: e}]\n"}' -H "Authorization: Bearer beta-key-1"
br=$(jq -r .run_id "$TMP/out")
req GET "/v1/runs?limit=2" '' -H "$OP"
expect_code "list runs" 200
expect_jq "list runs: newest first, two, with a cursor" "[.runs[].run_id] == [\"$lr4\", \"$lr3\"] and (.next_cursor | type == \"string\") and .runs[0].manifest == null and .runs[1].manifest == \"echo.yaml\" and (.runs[1].started_at | test(\"^20[0-9-]+T[0-9:.]+Z$\")) and (.runs[1].finished_at | type == \"string\") and .runs[1].status == \"succeeded\""
cur=$(jq -r .next_cursor "$TMP/out")
req GET "/v1/runs?limit=2&cursor=$cur" '' -H "$OP"
expect_jq "list runs: the next page" "[.runs[].run_id] == [\"$lr2\", \"$lr1\"] and .next_cursor == null"
req GET "/v1/runs?manifest=echo.yaml&status=succeeded" '' -H "$OP"
expect_jq "list runs: by manifest and status" "[.runs[].run_id] == [\"$lr3\", \"$lr2\", \"$lr1\"]"
req GET "/v1/runs?status=failed" '' -H "$OP"
expect_jq "list runs: no failed runs" '.runs == [] and .next_cursor == null'
req GET "/v1/runs" '' -H "Authorization: Bearer beta-key-1"
expect_jq "list runs: another tenant sees only its own" "[.runs[].run_id] == [\"$br\"]"
for bad in "limit=0" "limit=201" "limit=x" "status=done" "cursor=-1"; do
  req GET "/v1/runs?$bad" '' -H "$OP"
  expect_code "list runs: $bad" 400
done
req POST /v1/runs '{}' -H "$OP"
expect_code "list runs: POST" 405
stop_serve

# ---- fluxroute keys new: a key and its keys-file line, used end to end ---------------------------
fr keys new --tenant acme --role operator
expect_rc "keys new" 0
newkey=$(head -1 "$TMP/out")
case $newkey in frk_????????????????????????????????????????????????) ok "keys new: frk_ and 48 hex digits" ;;
  *) not_ok "keys new: frk_ and 48 hex digits" "$newkey" ;; esac
{ echo "keys:"; sed -n 2p "$TMP/out"; } > "$TMP/newkeys.yaml"
check "keys new: the line holds the key's sha256, never the key" sh -c \
  "grep -q 'sha256: $(sha "$newkey")' '$TMP/newkeys.yaml' && ! grep -q '$newkey' '$TMP/newkeys.yaml'"
start_serve --manifest-dir "$TMP/m" --keys "$TMP/newkeys.yaml" || exit 1
req POST /v1/run '{"manifest": "echo.yaml"}' -H "Authorization: Bearer $newkey"
expect_jq "keys new: the key runs a manifest of its namespace" '.status == "succeeded"'
stop_serve
fr keys new --tenant acme --role boss
expect_rc "keys new: unknown role" 2
expect_err "keys new: unknown role" "expected viewer, operator, admin or metrics"
fr keys new
expect_rc "keys new: no tenant" 2

# ---- start-up errors ------------------------------------------------------------------------------
fr serve --addr 127.0.0.1:0 --manifest-dir "$TMP/m"
expect_rc "serve without --keys" 2
printf 'keys:\n  - {id: k, sha256: plaintext-key, tenant: a, namespace: acme, role: admin}\n' > "$TMP/badkeys.yaml"
fr serve --addr 127.0.0.1:0 --manifest-dir "$TMP/m" --keys "$TMP/badkeys.yaml"
expect_rc "keys file with a plaintext key" 2
expect_err "keys file with a plaintext key" "sha256"
finish
